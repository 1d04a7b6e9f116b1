//! The `iso8583` binary as a person debugging a link uses it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iso8583"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn reference_hex() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/reference_0100.hex"
    ))
    .unwrap()
}

#[test]
fn decode_masks_by_default_and_round_trips_through_encode() {
    let out = run(&["decode"], reference_hex().as_bytes());
    assert!(out.status.success());
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(json.contains("\"2\": \"411111******1111\""), "{json}");
    assert!(!json.contains("4111111111111111"));
    assert!(!json.contains("\"10\""), "CVC2 must be left out: {json}");

    let out = run(
        &["decode", "--reveal-card-data"],
        reference_hex().as_bytes(),
    );
    let unmasked = String::from_utf8(out.stdout).unwrap();
    assert!(unmasked.contains("4111111111111111") && unmasked.contains("\"10\": \"123\""));

    let out = run(&["encode"], unmasked.as_bytes());
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        reference_hex().trim()
    );
}

#[test]
fn decode_leaves_out_the_expiry_and_the_cavv_by_default() {
    let out = run(&["decode"], reference_hex().as_bytes());
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(!json.contains("\"14\""), "DE 14 must be left out: {json}");
    assert!(
        !json.contains("\"21\""),
        "DE 48.21 must be left out: {json}"
    );
}

#[test]
fn the_old_unmasked_flag_is_refused_with_what_it_did() {
    let out = run(&["decode", "--unmasked"], reference_hex().as_bytes());
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("--reveal-card-data") && err.contains("in clear"),
        "{err}"
    );
}

#[test]
fn framed_raw_input_is_accepted() {
    let out = run(
        &["encode", "--framed", "--raw"],
        br#"{"mti":"0800","fields":{"7":"1123143015","11":"1","70":"301"}}"#,
    );
    assert!(out.status.success());
    assert_eq!(&out.stdout[..2], &[0, 39]);
    let out = run(&["decode", "--raw"], &out.stdout);
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(json.contains("\"11\": \"000001\""), "{json}");
}

#[test]
fn bad_input_exits_non_zero_with_the_codec_error() {
    let mut hex = reference_hex();
    hex.push_str("00");
    let out = run(&["decode"], hex.as_bytes());
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("1 bytes left after the last field"), "{err}");
    assert!(!err.contains("4111111111111111"));

    let out = run(&["encode"], br#"{"mti":"0100","fields":{"2":"4111x"}}"#);
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("DE 2: byte at offset 4")
    );
    let out = run(&["decode"], b"zz");
    assert!(!out.status.success());
}
