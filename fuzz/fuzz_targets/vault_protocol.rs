#![no_main]
// Whatever the vault protocol decoder accepts must encode back to the same bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| vault::protocol::fuzz_decode(data));
