//! Entry point for the cargo-fuzz target `fuzz/fuzz_targets/assist_params.rs`: whatever arrives,
//! every service's decoder answers without panicking, and every refusal renders in every Format.

use crate::answer::Answer;
use crate::render::render;
use crate::requests::{Payload, Service, decode};
use crate::values::Format;

/// Feeds the input to every service as a query, a form body and a JSON body.
pub fn decode_everything(data: &[u8]) {
    for service in Service::ALL {
        for payload in [
            Payload::Query(data),
            Payload::Form(data),
            Payload::Json(data),
        ] {
            if let Err(rejection) = decode(service, payload) {
                let answer = Answer {
                    service,
                    result: Err(rejection.fault),
                };
                for format in [Format::Csv, Format::Xml, Format::Soap, Format::Json] {
                    let _ = render(&answer, format);
                }
            }
        }
    }
}
