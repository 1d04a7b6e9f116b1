//! The result notification to the merchant's server (spec "Result notification"): an order and
//! the operation it reports, flattened into the spec's form fields in the spec's order, with
//! `customernumber` and `token` for a card on file, sealed over the operation's amount.
//!
//! Owns that field list. Takes every value from the answer model's own [`OrderRecord`] and
//! [`OperationRecord`] fields, so a notification never spells a field differently from an
//! orderstate answer. Must never carry a card number beyond the masked one.

use std::collections::HashMap;

use time::PrimitiveDateTime;

use crate::answer::{CheckData, Field, OperationRecord, OrderRecord, Value, format_date};
use crate::codes::Fault;
use crate::integrity::{AnswerIntegrity, answer_x};
use crate::values::{CardToken, MerchantId};

/// The spec's fields, in its order (`customernumber` and `token` follow when they apply).
pub const FIELDS: [&str; 36] = [
    "merchant_id",
    "ordernumber",
    "billnumber",
    "testmode",
    "ordercomment",
    "orderamount",
    "ordercurrency",
    "amount",
    "currency",
    "firstname",
    "lastname",
    "middlename",
    "email",
    "ipaddress",
    "meantypename",
    "meansubtype",
    "meannumber",
    "cardholder",
    "cardexpirationdate",
    "issuebank",
    "bankcountry",
    "orderdate",
    "orderstate",
    "responsecode",
    "message",
    "customermessage",
    "recommendation",
    "approvalcode",
    "processingname",
    "operationtype",
    "operationdate",
    "authresult",
    "slipno",
    "packetdate",
    "signature",
    "checkvalue",
];

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Whose order.
    pub merchant: MerchantId,
    /// The order as it is now.
    pub order: OrderRecord,
    /// The operation reported; `None` for an order that expired unpaid.
    pub operation: Option<OperationRecord>,
    /// The order's CustomerNumber, when its card is on file.
    pub customernumber: Option<String>,
    /// The saved card's token, likewise (seed 001).
    pub token: Option<CardToken>,
}

fn flat(fields: Vec<Field>, into: &mut HashMap<&'static str, String>) {
    for f in fields {
        if let Field::Value(name, Value::Text(v)) = f {
            into.entry(name).or_insert(v);
        }
    }
}

impl Notification {
    /// Fills `packetdate`, `signature`, `checkvalue` over X = merchant_id + ordernumber +
    /// amount + currency + orderstate, where amount and currency are the operation's (the
    /// order's for a timeout).
    pub fn seal(
        &mut self,
        how: &AnswerIntegrity<'_>,
        packetdate: PrimitiveDateTime,
    ) -> Result<(), Fault> {
        let (amount, currency) = match &self.operation {
            Some(op) => (op.amount.to_string(), op.currency),
            None => (self.order.orderamount.to_string(), self.order.ordercurrency),
        };
        let x = answer_x(
            &self.merchant.to_string(),
            &self.order.ordernumber,
            &amount,
            currency.alpha(),
            self.order.orderstate.as_str(),
        );
        let (signature, checkvalue) = how.seal(&x)?;
        self.order.checkdata = CheckData {
            packetdate,
            signature,
            checkvalue,
        };
        Ok(())
    }

    /// The form fields, names and values, in the spec's order; every field present, empty when
    /// it does not apply.
    pub fn form(&self) -> Vec<(&'static str, String)> {
        let mut values = HashMap::new();
        // The operation's own billnumber (extended), amount, currency and IP come first.
        if let Some(op) = &self.operation {
            flat(op.fields(false), &mut values);
        }
        flat(self.order.fields(), &mut values);
        values.insert("merchant_id", self.merchant.to_string());
        values.insert("packetdate", format_date(self.order.checkdata.packetdate));
        if self.operation.is_none() {
            values.insert("amount", self.order.orderamount.to_string());
            values.insert("currency", self.order.ordercurrency.to_string());
        }
        if values.get("ipaddress").is_none_or(String::is_empty) {
            let ip = self.order.customer.ipaddress.map(|ip| ip.to_string());
            values.insert("ipaddress", ip.unwrap_or_default());
        }
        let mut form: Vec<_> = FIELDS
            .iter()
            .map(|name| (*name, values.remove(name).unwrap_or_default()))
            .collect();
        if let (Some(c), Some(t)) = (&self.customernumber, &self.token) {
            form.push(("customernumber", c.clone()));
            form.push(("token", t.to_string()));
        }
        form
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::codes::OperationType;
    use crate::render::tests::{operation, order};
    use crate::values::Amount;

    fn value(form: &[(&'static str, String)], name: &str) -> String {
        form.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name}"))
    }

    #[test]
    fn the_spec_fields_in_order_sealed_over_the_operations_amount() {
        let mut op = operation(2);
        op.operationtype = OperationType::Cancel;
        op.amount = Amount::from_minor(150);
        let mut n = Notification {
            merchant: MerchantId(111111),
            order: order(),
            operation: Some(op),
            customernumber: Some("1234".into()),
            token: Some(CardToken(uuid::Uuid::from_u128(1))),
        };
        n.seal(
            &AnswerIntegrity::Checkvalue("secret"),
            datetime!(2026-03-10 12:00:07),
        )
        .unwrap();
        let form = n.form();
        let names: Vec<_> = form.iter().map(|(name, _)| *name).collect();
        assert_eq!(names[..FIELDS.len()], FIELDS);
        assert_eq!(names[FIELDS.len()..], ["customernumber", "token"]);
        assert_eq!(value(&form, "billnumber"), "5360051305345061.2");
        assert_eq!(value(&form, "operationtype"), "300");
        assert_eq!(
            (value(&form, "amount"), value(&form, "orderamount")),
            ("1.50".into(), "4.00".into())
        );
        assert_eq!(
            value(&form, "checkvalue"),
            crate::integrity::checkvalue("secret", "111111ok1.50RUBCanceled")
        );
        assert_eq!(value(&form, "packetdate"), "10.03.2026 12:00:07");
        assert_eq!(value(&form, "meannumber"), "411111****1111");
        assert_eq!(
            value(&form, "token"),
            "00000000-0000-0000-0000-000000000001"
        );
    }

    #[test]
    fn an_order_without_operation_carries_its_own_amount_and_no_card_on_file_fields() {
        let mut n = Notification {
            merchant: MerchantId(111111),
            order: order(),
            operation: None,
            customernumber: Some("1234".into()),
            token: None,
        };
        n.seal(
            &AnswerIntegrity::Checkvalue("secret"),
            datetime!(2026-03-10 12:00:07),
        )
        .unwrap();
        let form = n.form();
        assert_eq!(form.len(), FIELDS.len(), "customernumber only with a token");
        assert_eq!(value(&form, "billnumber"), "5360051305345061");
        assert_eq!(value(&form, "amount"), "4.00");
        assert_eq!(value(&form, "operationtype"), "");
        // The spec's vector: SALT secret, X 111111ok4.00RUBCanceled.
        assert_eq!(
            value(&form, "checkvalue"),
            "74DEB154081757F1E8097DDFAC35FC5C"
        );
    }
}
