//! Replays the fuzz seeds and every crasher the fuzzer ever found (`testdata/fuzz/`, one file
//! per scenario or bug) through the fuzz target's property.

#[test]
fn every_fuzz_case_still_holds() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/fuzz");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        iso8583::fuzzing::decode_round_trip(&std::fs::read(&path).unwrap());
        count += 1;
    }
    assert!(count >= 2, "the seeds are missing");
}
