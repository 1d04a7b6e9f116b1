//! The entry point of the `simulator_answer` cargo-fuzz target: whatever decodable message arrives,
//! the issuer decides and books it and the server frames an answer, without panicking, and the
//! answer is a message the codec reads back as the response to the request.

use std::sync::OnceLock;

use bytes::Bytes;
use iso8583::Message;

use crate::auth_value::IssuerKey;
use crate::issuer::{Arrival, Issuer};
use crate::ledger::Delivery;

/// One frame body (no length header), as a connection would hand it on.
pub fn answer(frame_body: &[u8]) {
    let Ok(msg) = Message::decode(Bytes::copy_from_slice(frame_body)) else {
        return;
    };
    // One issuer for the whole run, so state from earlier inputs (bookings, seen STANs, used
    // CAVVs) meets later ones, as on a long-lived connection.
    static ISSUER: OnceLock<Issuer> = OnceLock::new();
    let issuer = ISSUER.get_or_init(|| {
        Issuer::new(
            IssuerKey::from_bytes([7; 32]),
            None,
            1_024,
            std::time::Duration::from_secs(60),
        )
        .expect("no ledger file to open")
    });
    let arrival = Arrival {
        connection: 1,
        delivery: Delivery::Sent,
    };
    let Some(framed) = crate::server::respond(issuer, &msg, arrival) else {
        assert!(msg.mti().response().is_none(), "a request went unanswered");
        return;
    };
    let framed = framed.expect("the answer to a decodable request encodes");
    let answer = Message::decode(framed.slice(2..)).expect("the simulator's answer decodes");
    assert_eq!(Some(answer.mti()), msg.mti().response());
    assert_eq!(answer.stan(), msg.stan(), "the answer echoes DE 11");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_request_and_a_network_message_are_answered() {
        let reference = include_str!("../../iso8583/testdata/reference_0100.hex");
        answer(&hex::decode(reference.trim()).unwrap());
        answer(b"garbage");
    }
}
