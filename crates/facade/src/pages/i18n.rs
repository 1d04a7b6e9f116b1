//! The pages' words in Russian and English: one table per language, so that a screen never shows
//! half of each. The language is the order's `Language`, else the merchant's default.
//!
//! Owns every sentence a shopper reads, the shopper's words for a decline included. Must never
//! hold markup (the renderer escapes these like any other value) or anything an attacker could
//! use to tell one decline reason from another beyond the engine's [`ShopperReason`].

use assist::values::{Language, ParamValue};
use orders::{OrderRecord, ShopperReason};

use crate::merchants::Merchant;

pub(crate) use crate::html::Lang;

impl Lang {
    /// The order's `Language`, else the merchant's.
    pub(crate) fn of(order: &OrderRecord, merchant: &Merchant) -> Lang {
        let language = order
            .details
            .language
            .as_deref()
            .and_then(|l| Language::parse(l).ok())
            .unwrap_or(merchant.language);
        match language {
            Language::Ru => Lang::Ru,
            Language::En => Lang::En,
        }
    }
}

/// Every sentence of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Msg {
    Title,
    Order,
    TestPayment,
    Security,
    PayByCard,
    CardData,
    NewCardData,
    CardNumber,
    Expiry,
    Month,
    Year,
    Cvc,
    Holder,
    Remember,
    Pay,
    NewCard,
    Delete,
    Expired,
    FirstName,
    LastName,
    Email,
    DeleteTitle,
    DeleteText,
    DeleteYes,
    Cancel,
    PaidTitle,
    PaidText,
    DeclinedTitle,
    TryAgain,
    ReturnToShop,
    TimedOutTitle,
    TimedOutText,
    ProcessingTitle,
    ProcessingText,
    LimitTitle,
    LimitText,
    StaleForm,
    RetypeCard,
    NotFoundTitle,
    NotFoundText,
    UnavailableTitle,
    UnavailableText,
    ErrPanLength,
    ErrPanLuhn,
    ErrPanBrand,
    ErrExpiry,
    ErrCardExpired,
    ErrCvc,
    ErrHolder,
    ErrRequired,
    ErrEmail,
    ErrChooseCard,
}

/// The sentence `msg` in `lang`.
pub(crate) fn text(lang: Lang, msg: Msg) -> &'static str {
    let (ru, en) = pair(msg);
    match lang {
        Lang::Ru => ru,
        Lang::En => en,
    }
}

fn pair(msg: Msg) -> (&'static str, &'static str) {
    use Msg as M;
    match msg {
        M::Title => ("Оплата заказа", "Order payment"),
        M::Order => ("Заказ", "Order"),
        M::TestPayment => ("Тестовый платёж", "Test payment"),
        M::Security => (
            "Безопасность платежей подтверждена сертификатом PCI DSS. Все операции проводятся по требованиям Visa, Mastercard и МИР с использованием протокола 3-D Secure. Assist не передает платежные данные сторонним лицам",
            "Payment security is confirmed by a PCI DSS certificate. All operations follow the rules of Visa, Mastercard and MIR and use the 3-D Secure protocol. Assist does not pass payment data to third parties",
        ),
        M::PayByCard => ("Оплата картой", "Pay by card"),
        M::CardData => ("Данные карты", "Card details"),
        M::NewCardData => ("Данные новой карты", "New card details"),
        M::CardNumber => ("Номер карты", "Card number"),
        M::Expiry => ("Срок", "Expiry"),
        M::Month => ("Месяц", "Month"),
        M::Year => ("Год", "Year"),
        M::Cvc => ("CVC-код", "CVC code"),
        M::Holder => ("Владелец карты", "Cardholder"),
        M::Remember => (
            "Запомнить карту для будущих покупок",
            "Remember the card for future purchases",
        ),
        M::Pay => ("Заплатить", "Pay"),
        M::NewCard => ("Новая карта", "New card"),
        M::Delete => ("Удалить карту", "Delete the card"),
        M::Expired => ("срок истёк", "expired"),
        M::FirstName => ("Имя", "First name"),
        M::LastName => ("Фамилия", "Last name"),
        M::Email => ("E-mail", "E-mail"),
        M::DeleteTitle => ("Удаление карты", "Deleting the card"),
        M::DeleteText => (
            "Мы больше не будем хранить эту карту. Если вы захотите оплатить ею, все данные придётся вводить заново.",
            "We will no longer store this card. If you want to pay with it, you will have to enter all its details again.",
        ),
        M::DeleteYes => ("Удалить", "Delete"),
        M::Cancel => ("Отмена", "Cancel"),
        M::PaidTitle => ("Оплата прошла успешно", "Payment successful"),
        M::PaidText => ("Спасибо! Заказ оплачен.", "Thank you! The order is paid."),
        M::DeclinedTitle => ("Платёж не прошёл", "The payment did not go through"),
        M::TryAgain => ("Попробовать ещё раз", "Try again"),
        M::ReturnToShop => ("Вернуться в магазин", "Return to the shop"),
        M::TimedOutTitle => ("Время на оплату истекло", "The time to pay has run out"),
        M::TimedOutText => (
            "Заказ больше нельзя оплатить. Оформите его в магазине заново.",
            "This order can no longer be paid. Please place it again in the shop.",
        ),
        M::ProcessingTitle => ("Платёж обрабатывается", "The payment is being processed"),
        M::ProcessingText => (
            "Обновите страницу через несколько секунд.",
            "Refresh this page in a few seconds.",
        ),
        M::LimitTitle => ("Слишком много попыток", "Too many attempts"),
        M::LimitText => (
            "Слишком много неудачных попыток оплаты. Оплата временно недоступна; обратитесь в магазин.",
            "There were too many unsuccessful payment attempts. Payment is unavailable for now; please contact the shop.",
        ),
        M::StaleForm => (
            "Страница устарела. Проверьте данные и отправьте форму ещё раз.",
            "This page was out of date. Please check the details and submit again.",
        ),
        M::RetypeCard => (
            "Проверка 3-D Secure не завершена. Введите данные карты ещё раз.",
            "The 3-D Secure check did not finish. Please enter the card details again.",
        ),
        M::NotFoundTitle => ("Заказ не найден", "Order not found"),
        M::NotFoundText => (
            "Проверьте ссылку или вернитесь в магазин.",
            "Check the link or go back to the shop.",
        ),
        M::UnavailableTitle => (
            "Сервис временно недоступен",
            "Service temporarily unavailable",
        ),
        M::UnavailableText => (
            "Деньги не списаны. Попробуйте ещё раз через несколько минут.",
            "No money was taken. Please try again in a few minutes.",
        ),
        M::ErrPanLength => (
            "Номер карты — от 12 до 19 цифр",
            "A card number has 12 to 19 digits",
        ),
        M::ErrPanLuhn => (
            "Номер карты введён с ошибкой",
            "The card number has a typing error",
        ),
        M::ErrPanBrand => (
            "Карты этой платёжной системы не принимаются",
            "Cards of this payment system are not accepted",
        ),
        M::ErrExpiry => ("Укажите месяц и год", "Enter the month and year"),
        M::ErrCardExpired => ("Срок действия карты истёк", "The card has expired"),
        M::ErrCvc => ("CVC — 3 или 4 цифры", "The CVC has 3 or 4 digits"),
        M::ErrHolder => (
            "Латинскими буквами, как на карте",
            "In Latin letters, as on the card",
        ),
        M::ErrRequired => ("Заполните поле", "Please fill in this field"),
        M::ErrEmail => ("Неверный адрес", "Not a valid address"),
        M::ErrChooseCard => ("Выберите карту", "Choose a card"),
    }
}

/// What a declined payment tells the shopper.
pub(crate) fn reason(lang: Lang, r: ShopperReason) -> &'static str {
    use ShopperReason as S;
    let (ru, en) = match r {
        S::DeclinedByBank => (
            "Банк отклонил платёж. Обратитесь в банк или оплатите другой картой.",
            "The bank declined the payment. Please contact your bank or use another card.",
        ),
        S::InsufficientFunds => (
            "Недостаточно средств на карте.",
            "There is not enough money on the card.",
        ),
        S::WrongCvc => ("Неверный CVC-код.", "The CVC code is wrong."),
        S::Expired => ("Срок действия карты истёк.", "The card has expired."),
        S::WrongCardDetails => (
            "Данные карты указаны неверно.",
            "The card details are wrong.",
        ),
        S::ThreeDsFailed => (
            "Не удалось подтвердить платёж по 3-D Secure.",
            "The payment could not be confirmed with 3-D Secure.",
        ),
        S::LimitReached => (
            "Превышен лимит расходов по карте или в магазине.",
            "A spending limit of the card or of the shop was reached.",
        ),
        S::CardUnavailable => (
            "Эту сохранённую карту больше нельзя использовать.",
            "This saved card can no longer be used.",
        ),
        S::TryLater => (
            "Платёж не прошёл по техническим причинам. Попробуйте ещё раз позже.",
            "The payment failed for a technical reason. Please try again later.",
        ),
    };
    match lang {
        Lang::Ru => ru,
        Lang::En => en,
    }
}
