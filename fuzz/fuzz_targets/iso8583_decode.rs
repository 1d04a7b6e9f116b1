#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| iso8583::fuzzing::decode_round_trip(data));
