//! An order's result notifications on its page: each notification with its state and every
//! attempt (time, HTTP status, the merchant's codes, the error), and a "re-send" button, through
//! the outbox's own calls (`Outbox::notifications`, `Outbox::resend`) under the session's
//! merchant.
//!
//! Owns that section and the re-send form. Must never show a notification of another merchant
//! (the outbox filters by the merchant it is given) or a form field of a notification.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use orders::OrderRecord;
use outbox::{AttemptOutcome, Kind, NoticeId, NoticeState, NotificationView, OutboxError};
use time::{OffsetDateTime, UtcOffset};

use super::html::{csrf_field, escape};
use super::i18n::{Lang, Msg};
use super::{Visit, posted};
use crate::Facade;

/// The section of the order's page; empty when the process runs no outbox.
pub(crate) fn section(visit: &Visit<'_>, order: &OrderRecord) -> String {
    let Some(outbox) = visit.facade.outbox() else {
        return String::new();
    };
    let lang = visit.lang;
    let mut s = format!("<h2>{}</h2>", escape(lang.t(Msg::Notifications)));
    let listed = outbox.notifications(Some(visit.merchant.vault_id.as_str()), order.bill.get());
    let views = match listed {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "cabinet could not read an order's notifications");
            let _ = write!(
                s,
                "<p class=\"muted\">{}</p>",
                escape(lang.t(Msg::Unavailable))
            );
            return s;
        }
    };
    if views.is_empty() {
        let _ = write!(
            s,
            "<p id=\"no-notifications\" class=\"muted\">{}</p>",
            escape(lang.t(Msg::NoNotifications))
        );
        return s;
    }
    let zone = visit.merchant.time_zone;
    for v in &views {
        s.push_str(&notification(lang, zone, visit.csrf(), order, v));
    }
    s
}

fn notification(
    lang: Lang,
    zone: UtcOffset,
    csrf: &str,
    order: &OrderRecord,
    v: &NotificationView,
) -> String {
    let n = &v.notice;
    let kind = match n.kind {
        Kind::Payment => Msg::OpPayment,
        Kind::Charge => Msg::OpCharge,
        Kind::Cancel => Msg::OpCancel,
        Kind::Timeout => Msg::NotifyTimeouts,
    };
    let state = match n.state {
        NoticeState::Pending => Msg::NoticePending,
        NoticeState::Acknowledged => Msg::NoticeAcknowledged,
        NoticeState::Refused => Msg::NoticeRefused,
        NoticeState::Failed => Msg::NoticeFailed,
    };
    let mut s = format!(
        "<section class=\"notification\" id=\"notification-{op}\"><p><strong>{kind}</strong> \
         ({bill}.{op}) — <span class=\"notice-state\">{state}</span></p>",
        kind = escape(lang.t(kind)),
        bill = order.bill,
        op = n.id.operation,
        state = escape(lang.t(state)),
    );
    let _ = write!(
        s,
        "<table class=\"attempts\"><thead><tr><th>{}</th><th>HTTP</th><th>firstcode</th>\
         <th>secondcode</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        escape(lang.t(Msg::AttemptAt)),
        escape(lang.t(Msg::AttemptError)),
        escape(lang.t(Msg::Status)),
    );
    for a in &v.attempts {
        let outcome = match a.outcome {
            AttemptOutcome::Acknowledged => Msg::NoticeAcknowledged,
            AttemptOutcome::Refused => Msg::NoticeRefused,
            AttemptOutcome::Retry => Msg::NoticeRetry,
            AttemptOutcome::Failed => Msg::NoticeFailed,
        };
        let by_hand = if a.by_hand {
            format!(" ({})", lang.t(Msg::ByHand))
        } else {
            String::new()
        };
        let _ = write!(
            s,
            "<tr class=\"attempt\"><td>{at}</td><td>{status}</td><td>{first}</td><td>{second}</td>\
             <td>{error}</td><td>{outcome}{by_hand}</td></tr>",
            at = escape(&when_ms(a.at_ms, zone)),
            status = a.status.map_or_else(String::new, |s| s.to_string()),
            first = escape(a.firstcode.as_deref().unwrap_or_default()),
            second = escape(a.secondcode.as_deref().unwrap_or_default()),
            error = escape(a.error.as_deref().unwrap_or_default()),
            outcome = escape(lang.t(outcome)),
            by_hand = escape(&by_hand),
        );
    }
    let _ = write!(
        s,
        "</tbody></table><form method=\"post\" action=\"/cabinet/orders/{bill}/notifications/{op}/resend\">\
         {csrf}<button class=\"quiet resend\" type=\"submit\">{resend}</button></form></section>",
        bill = order.bill,
        op = n.id.operation,
        csrf = csrf_field(csrf),
        resend = escape(lang.t(Msg::Resend)),
    );
    s
}

/// Milliseconds since the epoch in the merchant's zone, `YYYY-MM-DD HH:MM:SS`.
fn when_ms(ms: u64, zone: UtcOffset) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    OffsetDateTime::from_unix_timestamp(secs).map_or_else(
        |_| String::new(),
        |t| {
            let t = t.to_offset(zone);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        },
    )
}

/// `POST /cabinet/orders/{bill}/notifications/{operation}/resend`.
pub(crate) async fn resend(
    State(facade): State<Arc<Facade>>,
    Path((bill, operation)): Path<(String, u32)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (visit, _) = match posted(&facade, &headers, &uri, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let order = match super::orders::order_of(&visit, &bill) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let back = format!("/cabinet/orders/{}", order.bill);
    let Some(outbox) = facade.outbox() else {
        return visit.not_found();
    };
    let id = NoticeId {
        bill: order.bill.get(),
        operation,
    };
    let result = outbox
        .resend(Some(visit.merchant.vault_id.as_str()), id)
        .await;
    tracing::info!(
        target: "audit",
        merchant = %visit.merchant.id,
        bill = %order.bill,
        operation,
        ok = result.is_ok(),
        "cabinet notification re-send"
    );
    let lang = visit.lang;
    match result {
        Ok(_) => visit.done(&back, true, lang.t(Msg::Resent)),
        Err(OutboxError::Unknown(_)) => visit.not_found(),
        Err(OutboxError::InFlight(_)) => visit.done(&back, false, lang.t(Msg::ResendInFlight)),
        Err(e) => {
            tracing::warn!(error = %e, "cabinet notification re-send failed");
            visit.done(&back, false, lang.t(Msg::Unavailable))
        }
    }
}
