//! The pages' HTML, server-rendered: one layout (the order's header as the seeds show it) and one
//! function per screen. Every value that is not a literal of this file goes through [`escape`]
//! (shared with the cabinet in `crate::html`).
//!
//! Owns the markup, the element ids and classes `pay.css`, `pay.js` and the browser tests rely
//! on. Must never render a card number beyond its last four digits, a CVC, or an inline script
//! or style (the policy forbids them).

use std::fmt::Write as _;

use super::form::{Ask, FieldErrors, field};
use super::i18n::{Lang, Msg, text};

pub(crate) use crate::html::{amount, escape};

/// What the top of every page of an order shows.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) lang: Lang,
    pub(crate) merchant: String,
    pub(crate) amount: String,
    pub(crate) order_number: String,
    pub(crate) comment: Option<String>,
    pub(crate) test: bool,
}

impl Head {
    fn t(&self, m: Msg) -> &'static str {
        text(self.lang, m)
    }
}

/// The basket of a chip, drawn inline: no image to fetch, no font that might lack the glyph.
const BASKET: &str = "<svg viewBox=\"0 0 24 24\" width=\"16\" height=\"16\" aria-hidden=\"true\">\
<path fill=\"currentColor\" d=\"M9 3h6l1 2h4v2H4V5h4l1-2zM6 9h12l-1 12H7L6 9z\"/></svg>";

/// A saved card as a chip.
#[derive(Debug, Clone)]
pub(crate) struct Chip {
    pub(crate) token: String,
    pub(crate) last4: String,
    pub(crate) expiry: String,
    pub(crate) brand: &'static str,
    pub(crate) active: bool,
}

/// A whole page: the layout around `body`.
pub(crate) fn page(head: &Head, body: &str) -> String {
    let mut s = String::with_capacity(4096 + body.len());
    let _ = write!(
        s,
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — {merchant}</title>\
         <link rel=\"stylesheet\" href=\"/pay/static/pay.css\">\
         <script src=\"/pay/static/pay.js\" defer></script></head>\n<body><main>\
         <header><p class=\"merchant\" id=\"merchant\">{merchant}</p>\
         <p class=\"amount\" id=\"amount\">{amount}</p>\
         <p class=\"order\" id=\"order\">{order} {number}</p>",
        lang = head.lang.code(),
        title = escape(head.t(Msg::Title)),
        merchant = escape(&head.merchant),
        amount = escape(&head.amount),
        order = escape(head.t(Msg::Order)),
        number = escape(&head.order_number),
    );
    if let Some(c) = &head.comment {
        let _ = write!(s, "<p class=\"comment\" id=\"comment\">{}</p>", escape(c));
    }
    if head.test {
        let _ = write!(
            s,
            "<p class=\"test\" id=\"test-mark\">{}</p>",
            escape(head.t(Msg::TestPayment))
        );
    }
    let _ = write!(
        s,
        "<p class=\"security\">{}</p></header>\n{body}\n</main></body></html>\n",
        escape(head.t(Msg::Security))
    );
    s
}

/// A page with a title and a sentence (not found, limit, time-out…), and optionally a link.
pub(crate) fn notice(
    head: &Head,
    id: &str,
    title: Msg,
    body: &str,
    link: Option<(&str, Msg)>,
) -> String {
    let mut s = format!(
        "<section class=\"notice\" id=\"{id}\"><h1>{}</h1><p>{}</p>",
        escape(head.t(title)),
        escape(body)
    );
    if let Some((href, label)) = link {
        let _ = write!(
            s,
            "<p><a class=\"button\" id=\"return\" href=\"{}\">{}</a></p>",
            escape(href),
            escape(head.t(label))
        );
    }
    s.push_str("</section>");
    page(head, &s)
}

/// The chips row: `+`, then each card with its basket. `selected` is the chosen card's token;
/// `None` with `new` means the new-card form is open.
fn chips(head: &Head, base: &str, chips: &[Chip], selected: Option<&str>, new: bool) -> String {
    let mut s = String::from("<nav class=\"chips\" id=\"chips\">");
    let _ = write!(
        s,
        "<a class=\"chip add{}\" id=\"add-card\" href=\"{base}?new=1\" title=\"{t}\" aria-label=\"{t}\">+</a>",
        if new { " on" } else { "" },
        base = escape(base),
        t = escape(head.t(Msg::NewCard)),
    );
    for c in chips {
        let on = selected == Some(c.token.as_str());
        let label = format!("•••• {}  {}", c.last4, c.expiry);
        let _ = write!(s, "<span class=\"chipbox\">");
        if c.active {
            let _ = write!(
                s,
                "<a class=\"chip{on}\" data-last4=\"{l4}\" href=\"{base}?card={tok}\">\
                 <span class=\"brand\">{brand}</span> {label}</a>",
                on = if on { " on" } else { "" },
                l4 = escape(&c.last4),
                base = escape(base),
                tok = escape(&c.token),
                brand = escape(c.brand),
                label = escape(&label),
            );
        } else {
            let _ = write!(
                s,
                "<span class=\"chip off\" data-last4=\"{l4}\" aria-disabled=\"true\">\
                 <span class=\"brand\">{brand}</span> {label} <small>{exp}</small></span>",
                l4 = escape(&c.last4),
                brand = escape(c.brand),
                label = escape(&label),
                exp = escape(head.t(Msg::Expired)),
            );
        }
        let _ = write!(
            s,
            "<a class=\"basket\" data-last4=\"{l4}\" href=\"{base}/remove?card={tok}\" title=\"{t}\" aria-label=\"{t}\">{BASKET}</a></span>",
            l4 = escape(&c.last4),
            base = escape(base),
            tok = escape(&c.token),
            t = escape(head.t(Msg::Delete)),
        );
    }
    s.push_str("</nav>");
    s
}

fn error_of(errors: &FieldErrors, name: &str, lang: Lang) -> String {
    let msg = errors
        .iter()
        .find(|(f, _)| *f == name)
        .map_or("", |(_, m)| text(lang, *m));
    format!(
        "<span class=\"error\" id=\"error-{name}\" data-for=\"{name}\" role=\"alert\">{}</span>",
        escape(msg)
    )
}

/// What the new-card form shows besides the inputs.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewCardView {
    /// The saved cards (the form was opened with `+`), or none.
    pub(crate) chips: Vec<Chip>,
    /// Customer fields to ask for.
    pub(crate) ask: Ask,
    /// Show "remember the card".
    pub(crate) offer_save: bool,
    /// Checks that failed, by field.
    pub(crate) errors: FieldErrors,
    /// Values typed before that are not card data (month, year, holder, customer fields).
    pub(crate) kept: Vec<(&'static str, String)>,
    /// A sentence above the form (a stale form, a 3-D Secure that did not finish).
    pub(crate) note: Option<Msg>,
}

fn kept<'a>(v: &'a NewCardView, name: &str) -> &'a str {
    v.kept
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, s)| s)
}

/// The new-card form (seed 000's first and fourth screens).
pub(crate) fn new_card(head: &Head, base: &str, csrf: &str, v: &NewCardView) -> String {
    let lang = head.lang;
    let t = |m| escape(text(lang, m));
    let mut s = format!("<section class=\"pay\"><h1>{}</h1>", t(Msg::PayByCard));
    if !v.chips.is_empty() {
        s.push_str(&chips(head, base, &v.chips, None, true));
    }
    if let Some(note) = v.note {
        let _ = write!(s, "<p class=\"note\" id=\"note\">{}</p>", t(note));
    }
    let _ = write!(
        s,
        "<form class=\"card\" id=\"card-form\" method=\"post\" action=\"{base}\" novalidate \
         data-err-pan-luhn=\"{luhn}\" data-err-pan-length=\"{len}\" data-err-expiry=\"{exp}\" \
         data-err-expired=\"{expired}\" data-err-cvc=\"{cvc}\">\
         <input type=\"hidden\" name=\"{csrf_name}\" value=\"{csrf}\">\
         <h2>{title}</h2>\
         <label for=\"pan\">{number} <span class=\"brand\" id=\"brand\"></span></label>\
         <input id=\"pan\" name=\"{pan}\" autocomplete=\"cc-number\" inputmode=\"numeric\" \
         maxlength=\"23\" placeholder=\"0000 0000 0000 0000\" required>{pan_error}\
         <div class=\"row\"><div><label for=\"exp_month\">{expiry}</label>\
         <span class=\"expiry\"><input id=\"exp_month\" name=\"{month}\" autocomplete=\"cc-exp-month\" \
         inputmode=\"numeric\" maxlength=\"2\" placeholder=\"MM\" aria-label=\"{month_l}\" value=\"{mv}\" required>\
         <span>/</span><input id=\"exp_year\" name=\"{year}\" autocomplete=\"cc-exp-year\" \
         inputmode=\"numeric\" maxlength=\"4\" placeholder=\"YY\" aria-label=\"{year_l}\" value=\"{yv}\" required>\
         </span>{month_error}</div>\
         <div><label for=\"cvc\">{cvc_l}</label><input id=\"cvc\" name=\"{cvc_n}\" type=\"password\" \
         autocomplete=\"cc-csc\" inputmode=\"numeric\" maxlength=\"4\" placeholder=\"000\" required>{cvc_error}</div></div>\
         <label for=\"holder\">{holder_l}</label><input id=\"holder\" name=\"{holder}\" \
         autocomplete=\"cc-name\" maxlength=\"26\" value=\"{hv}\" autocapitalize=\"characters\">{holder_error}",
        base = escape(base),
        luhn = t(Msg::ErrPanLuhn),
        len = t(Msg::ErrPanLength),
        exp = t(Msg::ErrExpiry),
        expired = t(Msg::ErrCardExpired),
        cvc = t(Msg::ErrCvc),
        csrf_name = field::CSRF,
        csrf = escape(csrf),
        title = t(if v.chips.is_empty() {
            Msg::CardData
        } else {
            Msg::NewCardData
        }),
        number = t(Msg::CardNumber),
        pan = field::PAN,
        pan_error = error_of(&v.errors, field::PAN, lang),
        expiry = t(Msg::Expiry),
        month = field::MONTH,
        month_l = t(Msg::Month),
        mv = escape(kept(v, field::MONTH)),
        year = field::YEAR,
        year_l = t(Msg::Year),
        yv = escape(kept(v, field::YEAR)),
        month_error = error_of(&v.errors, field::MONTH, lang),
        cvc_l = t(Msg::Cvc),
        cvc_n = field::CVC,
        cvc_error = error_of(&v.errors, field::CVC, lang),
        holder_l = t(Msg::Holder),
        holder = field::HOLDER,
        hv = escape(kept(v, field::HOLDER)),
        holder_error = error_of(&v.errors, field::HOLDER, lang),
    );
    for (asked, name, label, auto, kind) in [
        (
            v.ask.firstname,
            field::FIRSTNAME,
            Msg::FirstName,
            "given-name",
            "text",
        ),
        (
            v.ask.lastname,
            field::LASTNAME,
            Msg::LastName,
            "family-name",
            "text",
        ),
        (v.ask.email, field::EMAIL, Msg::Email, "email", "email"),
    ] {
        if asked {
            let _ = write!(
                s,
                "<label for=\"{name}\">{l}</label><input id=\"{name}\" name=\"{name}\" type=\"{kind}\" \
                 autocomplete=\"{auto}\" maxlength=\"70\" value=\"{v}\" required>{e}",
                l = t(label),
                v = escape(kept(v, name)),
                e = error_of(&v.errors, name, lang),
            );
        }
    }
    if v.offer_save {
        let _ = write!(
            s,
            "<label class=\"check\"><input type=\"checkbox\" id=\"remember\" name=\"{}\" value=\"1\" checked> {}</label>",
            field::REMEMBER,
            t(Msg::Remember)
        );
    }
    let _ = write!(
        s,
        "<button type=\"submit\" id=\"pay\">{} {}</button></form></section>",
        t(Msg::Pay),
        escape(&head.amount)
    );
    page(head, &s)
}

/// The CVC-only form of a saved card (seed 000's second and third screens).
pub(crate) fn one_click(
    head: &Head,
    base: &str,
    csrf: &str,
    all: &[Chip],
    chosen: &Chip,
    errors: &FieldErrors,
) -> String {
    let lang = head.lang;
    let t = |m| escape(text(lang, m));
    let mut s = format!("<section class=\"pay\"><h1>{}</h1>", t(Msg::PayByCard));
    s.push_str(&chips(head, base, all, Some(&chosen.token), false));
    let _ = write!(
        s,
        "<form class=\"card\" id=\"cvc-form\" method=\"post\" action=\"{base}/oneclick\" novalidate \
         data-err-cvc=\"{err}\"><input type=\"hidden\" name=\"{csrf_name}\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"{card}\" value=\"{token}\"><h2>{title}</h2>\
         <dl class=\"saved\"><div><dt>{number}</dt><dd id=\"masked\">•••• •••• •••• {last4}</dd></div>\
         <div><dt>{expiry}</dt><dd>{exp}</dd></div></dl>\
         <label for=\"cvc\">{cvc_l}</label><input id=\"cvc\" name=\"{cvc_n}\" type=\"password\" \
         autocomplete=\"cc-csc\" inputmode=\"numeric\" maxlength=\"4\" placeholder=\"000\" required autofocus>{cvc_error}\
         <button type=\"submit\" id=\"pay\">{pay} {amount}</button></form></section>",
        base = escape(base),
        err = t(Msg::ErrCvc),
        csrf_name = field::CSRF,
        csrf = escape(csrf),
        card = field::CARD,
        token = escape(&chosen.token),
        title = t(Msg::CardData),
        number = t(Msg::CardNumber),
        last4 = escape(&chosen.last4),
        expiry = t(Msg::Expiry),
        exp = escape(&chosen.expiry.replace('/', " / ")),
        cvc_l = t(Msg::Cvc),
        cvc_n = field::CVC,
        cvc_error = error_of(errors, field::CVC, lang),
        pay = t(Msg::Pay),
        amount = escape(&head.amount),
    );
    page(head, &s)
}

/// The confirmation before a saved card is deleted (seed 000's fifth screen).
pub(crate) fn confirm_remove(head: &Head, base: &str, csrf: &str, chip: &Chip) -> String {
    let t = |m| escape(text(head.lang, m));
    let s = format!(
        "<section class=\"notice\" id=\"confirm-remove\"><h1>{title}</h1>\
         <p class=\"chip\">•••• {last4}  {exp}</p><p>{text}</p>\
         <form method=\"post\" action=\"{base}/remove\"><input type=\"hidden\" name=\"{csrf_name}\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"{card}\" value=\"{token}\">\
         <button type=\"submit\" id=\"confirm\">{yes}</button> \
         <a class=\"button secondary\" id=\"cancel\" href=\"{base}\">{no}</a></form></section>",
        title = t(Msg::DeleteTitle),
        last4 = escape(&chip.last4),
        exp = escape(&chip.expiry),
        text = t(Msg::DeleteText),
        base = escape(base),
        csrf_name = field::CSRF,
        csrf = escape(csrf),
        card = field::CARD,
        token = escape(&chip.token),
        yes = t(Msg::DeleteYes),
        no = t(Msg::Cancel),
    );
    page(head, &s)
}

/// The result of an approved payment.
pub(crate) fn paid(head: &Head, card: Option<&str>, back: Option<&str>) -> String {
    let t = |m| escape(text(head.lang, m));
    let mut s = format!(
        "<section class=\"result ok\" id=\"result\" data-state=\"paid\"><h1>{}</h1><p>{}</p>",
        t(Msg::PaidTitle),
        t(Msg::PaidText)
    );
    if let Some(c) = card {
        let _ = write!(s, "<p class=\"chip\">{}</p>", escape(c));
    }
    if let Some(href) = back {
        let _ = write!(
            s,
            "<p><a class=\"button\" id=\"return\" href=\"{}\">{}</a></p>",
            escape(href),
            t(Msg::ReturnToShop)
        );
    }
    s.push_str("</section>");
    page(head, &s)
}

/// The result of a declined payment: why, and "try again" while the order may still be paid.
pub(crate) fn declined(
    head: &Head,
    base: &str,
    why: &str,
    retry_csrf: Option<&str>,
    back: Option<&str>,
) -> String {
    let t = |m| escape(text(head.lang, m));
    let mut s = format!(
        "<section class=\"result no\" id=\"result\" data-state=\"declined\"><h1>{}</h1><p id=\"reason\">{}</p>",
        t(Msg::DeclinedTitle),
        escape(why)
    );
    if let Some(csrf) = retry_csrf {
        let _ = write!(
            s,
            "<form method=\"post\" action=\"{base}/retry\"><input type=\"hidden\" name=\"{}\" value=\"{}\">\
             <button type=\"submit\" id=\"retry\">{}</button></form>",
            field::CSRF,
            escape(csrf),
            t(Msg::TryAgain),
            base = escape(base),
        );
    }
    if let Some(href) = back {
        let _ = write!(
            s,
            "<p><a class=\"button secondary\" id=\"return\" href=\"{}\">{}</a></p>",
            escape(href),
            t(Msg::ReturnToShop)
        );
    }
    s.push_str("</section>");
    page(head, &s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(lang: Lang) -> Head {
        Head {
            lang,
            merchant: "OOO <Shop> & Co".into(),
            amount: amount(lang, 12_000, 643),
            order_number: "A\"1".into(),
            comment: Some("<script>alert(1)</script>".into()),
            test: true,
        }
    }

    #[test]
    fn every_value_is_escaped() {
        let html = page(&head(Lang::En), "");
        assert!(html.contains("OOO &lt;Shop&gt; &amp; Co"));
        assert!(html.contains("A&quot;1"));
        assert!(!html.contains("<script>alert"));
    }

    #[test]
    fn the_form_carries_the_autocomplete_names_and_no_inline_code() {
        let v = NewCardView {
            offer_save: true,
            ..NewCardView::default()
        };
        let html = new_card(&head(Lang::Ru), "/pay/page/1", "tok", &v);
        for needle in [
            "autocomplete=\"cc-number\"",
            "autocomplete=\"cc-exp-month\"",
            "autocomplete=\"cc-exp-year\"",
            "autocomplete=\"cc-csc\"",
            "autocomplete=\"cc-name\"",
            "inputmode=\"numeric\"",
            "name=\"remember\" value=\"1\" checked",
            "Запомнить карту для будущих покупок",
            "Тестовый платёж",
        ] {
            assert!(html.contains(needle), "{needle}");
        }
        assert!(
            !html.contains("<script>") && !html.contains("style=") && !html.contains("onclick")
        );
    }

    #[test]
    fn an_error_is_shown_next_to_its_field() {
        let v = NewCardView {
            errors: vec![(field::CVC, Msg::ErrCvc)],
            ..NewCardView::default()
        };
        let html = new_card(&head(Lang::En), "/p", "t", &v);
        assert!(html.contains(
            "id=\"error-cvc\" data-for=\"cvc\" role=\"alert\">The CVC has 3 or 4 digits<"
        ));
        assert!(html.contains("id=\"error-pan\" data-for=\"pan\" role=\"alert\"><"));
    }
}
