//! Each way a message can be malformed gets its own error, naming where, never the value.

use bytes::Bytes;
use iso8583::spec::Charset;
use iso8583::{DecodeError, EncodeError, Location, Message, MessageBuilder, Mti};

fn reference() -> Vec<u8> {
    let hex = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/reference_0100.hex"
    ))
    .unwrap();
    hex::decode(hex.trim()).unwrap()
}

fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    Message::decode(Bytes::copy_from_slice(bytes))
}

/// 0800 with DE 7, 11 and 70, with `de7` in place of DE 7's value.
fn network_with_de7(de7: &[u8]) -> Vec<u8> {
    let mut v = b"0800".to_vec();
    v.extend(hex::decode("82200000000000000400000000000000").unwrap());
    v.extend_from_slice(de7);
    v.extend_from_slice(b"000001301");
    v
}

#[test]
fn truncated_anywhere_names_the_part() {
    let msg = reference();
    assert_eq!(
        decode(&msg[..3]),
        Err(DecodeError::Truncated {
            at: Location::Mti,
            offset: 0
        })
    );
    assert_eq!(
        decode(&msg[..9]),
        Err(DecodeError::Truncated {
            at: Location::PrimaryBitmap,
            offset: 4
        })
    );
    // 4 MTI + 8 bitmap + "16" + 10 digits of the PAN.
    assert_eq!(
        decode(&msg[..24]),
        Err(DecodeError::Truncated {
            at: Location::Field(2),
            offset: 14
        })
    );
    for cut in 0..msg.len() {
        assert!(
            decode(&msg[..cut]).is_err(),
            "a message cut at {cut} decoded"
        );
    }
    let net = network_with_de7(b"1123143015");
    assert!(decode(&net).is_ok());
    assert_eq!(
        decode(&net[..15]),
        Err(DecodeError::Truncated {
            at: Location::SecondaryBitmap,
            offset: 12
        })
    );
}

#[test]
fn bad_mti_and_bitmap_bits() {
    let mut msg = reference();
    msg[1] = b'x';
    assert_eq!(decode(&msg), Err(DecodeError::BadMti));

    let mut net = network_with_de7(b"1123143015");
    net[12] |= 0x80;
    assert_eq!(decode(&net), Err(DecodeError::Bit65Set));

    // Found by the fuzzer: bit 1 set, secondary all zeros.
    let mut net = b"0800".to_vec();
    net.extend(hex::decode("82200000000000000000000000000000").unwrap());
    net.extend_from_slice(b"1123143015000001");
    assert_eq!(decode(&net), Err(DecodeError::EmptySecondaryBitmap));

    let mut msg = reference();
    msg[4] |= 0x08; // DE 5: not in the table
    assert_eq!(
        decode(&msg),
        Err(DecodeError::UnknownField {
            at: Location::Field(5)
        })
    );
}

#[test]
fn bad_length_prefix_and_too_long_values() {
    let mut msg = reference();
    msg[12] = b'x'; // first digit of DE 2's LL
    assert_eq!(
        decode(&msg),
        Err(DecodeError::BadLengthPrefix {
            at: Location::Field(2),
            offset: 12
        })
    );
    let mut msg = reference();
    msg[12..14].copy_from_slice(b"20");
    assert_eq!(
        decode(&msg),
        Err(DecodeError::ValueTooLong {
            at: Location::Field(2),
            len: 20,
            max: 19
        })
    );
    // A length prefix promising more than the message holds is "truncated", never an allocation.
    let mut msg = reference();
    msg[12..14].copy_from_slice(b"19");
    assert!(decode(&msg).is_err());
}

#[test]
fn non_digit_in_n_field() {
    let mut net = network_with_de7(b"11231430x5");
    assert_eq!(
        decode(&net),
        Err(DecodeError::BadCharacter {
            at: Location::Field(7),
            offset: 28,
            charset: Charset::N
        })
    );
    net = network_with_de7(b"1123143015");
    let last = net.len() - 1;
    net[last] = b' ';
    assert!(matches!(
        decode(&net),
        Err(DecodeError::BadCharacter {
            at: Location::Field(70),
            ..
        })
    ));
}

#[test]
fn duplicate_de48_tag_and_trailing_bytes() {
    let mut msg = reference();
    let de48_start = msg.len() - 3 - 99;
    msg[de48_start + 5..de48_start + 7].copy_from_slice(b"01"); // "10" (CVC2) becomes a second "01"
    assert_eq!(
        decode(&msg),
        Err(DecodeError::DuplicateSubelement {
            at: Location::Subelement(48, 1)
        })
    );
    let mut msg = reference();
    msg.extend_from_slice(b"XY");
    assert_eq!(
        decode(&msg),
        Err(DecodeError::TrailingBytes {
            count: 2,
            offset: 275
        })
    );
    assert!(matches!(
        decode(&vec![b'0'; 9000]),
        Err(DecodeError::MessageTooLong { len: 9000, .. })
    ));
}

#[test]
fn errors_never_show_values() {
    let mut msg = reference();
    msg[20] = b'A'; // inside the PAN
    let err = decode(&msg).unwrap_err().to_string();
    assert!(!err.contains("411111"), "{err}");
    assert_eq!(
        err,
        "DE 2: byte at offset 20 is not allowed in an `n` value"
    );
}

#[test]
fn encoding_refuses_what_does_not_fit() {
    let mut b = MessageBuilder::new(Mti::AUTH_REQUEST);
    b.field(11, b"1234567");
    assert_eq!(
        b.build().unwrap_err(),
        EncodeError::ValueTooLong {
            at: Location::Field(11),
            len: 7,
            max: 6
        }
    );
    let mut b = MessageBuilder::new(Mti::AUTH_REQUEST);
    b.field(2, b"41111111x1111111");
    assert!(matches!(
        b.build(),
        Err(EncodeError::BadCharacter {
            at: Location::Field(2),
            offset: 8,
            ..
        })
    ));
    let mut b = MessageBuilder::new(Mti::AUTH_REQUEST);
    b.field(5, b"1");
    assert_eq!(
        b.build().unwrap_err(),
        EncodeError::UnknownField {
            at: Location::Field(5)
        }
    );
    let mut b = MessageBuilder::new(Mti::AUTH_REQUEST);
    b.de48(&[(10, b"123"), (1, b"I")]);
    assert_eq!(
        b.build().unwrap_err(),
        EncodeError::SubelementOrder {
            at: Location::Field(48)
        }
    );
    let mut b = MessageBuilder::new(Mti::AUTH_REQUEST);
    b.de48(&[(10, b"12")]);
    assert!(matches!(
        b.build(),
        Err(EncodeError::Subelement(DecodeError::ValueTooShort { .. }))
    ));
    let mut b = MessageBuilder::new(Mti::AUTH_REQUEST);
    b.amount(iso8583::Amount(1_000_000_000_000));
    assert_eq!(
        b.build().unwrap_err(),
        EncodeError::AmountTooLarge {
            at: Location::Field(4)
        }
    );
    let mut out = Vec::new();
    assert!(b.encode_into(&mut out).is_err());
    assert!(out.is_empty(), "nothing is written on error");
}
