//! Property tests: no input makes parsing panic.

use proptest::prelude::*;

const NAMES: &[&str] = &[
    "Merchant_ID",
    "login",
    "PASSWORD",
    "Format",
    "OrderNumber",
    "OrderAmount",
    "OrderCurrency",
    "BillNumber",
    "Amount",
    "Currency",
    "PaymentToken",
    "TokenType",
    "RecurringIndicator",
    "RecurringMinAmount",
    "RecurringMaxAmount",
    "RecurringCount",
    "RecurringMaxDate",
    "StartYear",
    "StartMonth",
    "StartDay",
    "EndYear",
    "EndHour",
    "ClientIP",
    "ChequeItems",
    "Email",
    "checkvalue",
];

fn field() -> impl Strategy<Value = String> {
    (prop::sample::select(NAMES), "\\PC{0,40}|[0-9.,]{0,18}")
        .prop_map(|(n, v)| format!("{n}={}", v.replace(['&', '='], "%26")))
}

proptest! {
    #[test]
    fn any_bytes(data in prop::collection::vec(any::<u8>(), 0..400)) {
        assist::fuzzing::decode_everything(&data);
    }

    #[test]
    fn plausible_forms(fields in prop::collection::vec(field(), 0..20)) {
        assist::fuzzing::decode_everything(fields.join("&").as_bytes());
    }

    #[test]
    fn plausible_json(m in "\\PC{0,12}", l in "\\PC{0,24}", c in "\\PC{0,40}", t in "\\PC{0,40}") {
        let body = serde_json::json!({"merchant": {"merchant_id": m, "login": l, "password": l},
            "customernumber": c, "token": t});
        assist::fuzzing::decode_everything(body.to_string().as_bytes());
    }
}
