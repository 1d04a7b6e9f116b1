#![no_main]
// Every Assist service's parameter and JSON decoding, on the same bytes as query, form and JSON.
libfuzzer_sys::fuzz_target!(|data: &[u8]| assist::fuzzing::decode_everything(data));
