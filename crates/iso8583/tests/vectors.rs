//! Every message kind of `spec/iso8583.md`, built with the crate's builders and compared byte for
//! byte with a vector written out by hand from the spec (MTI, bitmap in hex, each field with its
//! prefix), then decoded back.

use bytes::Bytes;
use iso8583::{
    Amount, CardRequest, CofIndicator, Condition, EntryMode, Message, MessageBuilder, Mti,
    NetworkCode, Origin, Original, ProcessingCode, ResponseCode, ReversalAttempt, Rrn, Stan,
    TransmissionTime, tag,
};

const PAN: &[u8] = b"4111111111111111";
const CAVV: &[u8] = b"AAABBEg0VhI0VniQEjRWAAAAAAA=";
const DS_ID: &[u8] = b"8a880dc0-d2d2-4067-bcb1-b08d1690b26e";

/// MTI, bitmap given in hex, then the fields' bytes as they go on the wire.
fn wire(mti: &str, bitmap_hex: &str, fields: &[&str]) -> Vec<u8> {
    let mut out = mti.as_bytes().to_vec();
    out.extend(hex::decode(bitmap_hex).unwrap());
    for f in fields {
        out.extend_from_slice(f.as_bytes());
    }
    out
}

fn origin(stan: u32) -> Origin<'static> {
    Origin {
        transmission: TransmissionTime::from_ascii(b"1123143015").unwrap(),
        stan: Stan::new(stan).unwrap(),
        acquirer: b"123456",
        terminal: b"TERM0001",
        merchant: b"452739",
        merchant_name: None,
        merchant_category: None,
    }
}

fn card_request() -> CardRequest<'static> {
    CardRequest {
        pan: PAN,
        processing: ProcessingCode::Purchase,
        amount: Amount(12345),
        local_time: *b"173015",
        local_date: *b"1123",
        expiry: *b"3012",
        entry_mode: EntryMode::Keyed,
        condition: Condition::Ecommerce,
        rrn: Rrn::from_number(42).unwrap(),
        additional: &[],
        currency: 643,
    }
}

fn reference_0100() -> Message {
    let additional: [(u8, &[u8]); 6] = [
        (tag::COF_INDICATOR, b"I"),
        (tag::CVC2, b"123"),
        (tag::ECI, b"05"),
        (tag::CAVV, CAVV),
        (tag::THREE_DS_VERSION, b"2.2.0"),
        (tag::DS_TRANSACTION_ID, DS_ID),
    ];
    let request = CardRequest {
        additional: &additional,
        ..card_request()
    };
    let mut b = MessageBuilder::card_request(Mti::AUTH_REQUEST, &request, &origin(42));
    // Fields the kind does not require go in afterwards, in any order.
    b.field(43, b"DEMO SHOP>MOSCOW RU").field(18, b"5999");
    b.build().unwrap()
}

fn check(built: &Message, expected: &[u8]) {
    assert_eq!(
        built.as_bytes().as_ref(),
        expected,
        "\n built: {}\nwanted: {}",
        hex::encode(built.as_bytes()),
        hex::encode(expected)
    );
    let decoded = Message::decode(Bytes::copy_from_slice(expected)).unwrap();
    assert_eq!(&decoded, built);
    for n in built.fields() {
        assert_eq!(decoded.field(n), built.field(n), "DE {n}");
    }
}

#[test]
fn reference_0100_first_use_cof() {
    let de48 = "0101I10031232002052128AAABBEg0VhI0VniQEjRWAAAAAAA=22052.2.023368a880dc0-d2d2-4067-bcb1-b08d1690b26e";
    let expected = wire(
        "0100",
        "723C448108E18000",
        &[
            "16",
            "4111111111111111",
            "000000",
            "000000012345",
            "1123143015",
            "000042",
            "173015",
            "1123",
            "3012",
            "5999",
            "010",
            "59",
            "06",
            "123456",
            "000000000042",
            "TERM0001",
            "452739         ",
            "DEMO SHOP>MOSCOW RU                     ",
            "099",
            de48,
            "643",
        ],
    );
    let msg = reference_0100();
    check(&msg, &expected);
    let file = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/reference_0100.hex"
    ))
    .unwrap();
    assert_eq!(
        hex::decode(file.trim()).unwrap(),
        expected,
        "testdata/reference_0100.hex"
    );

    assert_eq!(msg.stan(), Stan::new(42));
    assert_eq!(msg.amount(), Some(Amount(12345)));
    assert_eq!(msg.currency(), Some(643));
    let de48 = msg.de48().unwrap();
    assert_eq!(de48.cof_indicator(), Some(CofIndicator::FirstUse));
    assert_eq!(de48.get(tag::CAVV), Some(CAVV));
}

#[test]
fn debug_shows_neither_the_expiry_nor_the_cavv_nor_the_cvc2() {
    let msg = reference_0100();
    let shown = format!("{msg:?}");
    let cavv = std::str::from_utf8(msg.de48().unwrap().get(21).unwrap()).unwrap();
    assert!(!shown.contains(cavv), "CAVV in Debug: {shown}");
    assert!(shown.contains("14: <hidden>"), "{shown}");
    assert!(
        !shown.contains("21: ") && !shown.contains("10: "),
        "{shown}"
    );
    assert!(shown.contains("411111******1111"), "{shown}");
}

#[test]
fn approval_0110_echoes_the_request() {
    let request = reference_0100();
    let mut b = MessageBuilder::response_to(&request);
    b.field(38, b"A1B2C3")
        .response_code(ResponseCode::APPROVED)
        .de48(&[
            (tag::NETWORK_TRANSACTION_ID, b"NTI000000000042"),
            (30, b"M"),
            (31, b"2"),
        ]);
    let expected = wire(
        "0110",
        "722000010EC18000",
        &[
            "16",
            "4111111111111111",
            "000000",
            "000000012345",
            "1123143015",
            "000042",
            "06",
            "123456",
            "000000000042",
            "A1B2C3",
            "00",
            "TERM0001",
            "452739         ",
            "029",
            "0315NTI000000000042",
            "3001M",
            "31012",
            "643",
        ],
    );
    let msg = b.build().unwrap();
    check(&msg, &expected);
    assert!(msg.response_code().unwrap().is_approved());
    assert_eq!(
        msg.de48().unwrap().network_transaction_id(),
        Some(&b"NTI000000000042"[..])
    );
}

#[test]
fn financial_0200_and_refund() {
    let additional: [(u8, &[u8]); 3] = [(1, b"M"), (2, b"R"), (3, b"NTI000000000042")];
    let req = CardRequest {
        processing: ProcessingCode::Refund,
        entry_mode: EntryMode::CredentialOnFile,
        condition: Condition::MerchantInitiated,
        additional: &additional,
        ..card_request()
    };
    let msg = MessageBuilder::card_request(Mti::FINANCIAL_REQUEST, &req, &origin(7))
        .build()
        .unwrap();
    let expected = wire(
        "0200",
        "723C048108C18000",
        &[
            "16",
            "4111111111111111",
            "200000",
            "000000012345",
            "1123143015",
            "000007",
            "173015",
            "1123",
            "3012",
            "100",
            "08",
            "06",
            "123456",
            "000000000042",
            "TERM0001",
            "452739         ",
            "029",
            "0101M0201R0315NTI000000000042",
            "643",
        ],
    );
    check(&msg, &expected);
    let resp = MessageBuilder::response_to(&msg)
        .response_code(ResponseCode::INSUFFICIENT_FUNDS)
        .build()
        .unwrap();
    let expected = wire(
        "0210",
        "722000010AC08000",
        &[
            "16",
            "4111111111111111",
            "200000",
            "000000012345",
            "1123143015",
            "000007",
            "06",
            "123456",
            "000000000042",
            "51",
            "TERM0001",
            "452739         ",
            "643",
        ],
    );
    check(&resp, &expected);
}

#[test]
fn completion_0220_and_0230() {
    let auth = reference_0100();
    let original = Original::of(&auth).unwrap();
    let msg = MessageBuilder::completion(&original, PAN, b"3012", Amount(10000), &origin(43))
        .build()
        .unwrap();
    let de90 = "010000004211231430150000012345600000000000";
    let mut expected = wire(
        "0220",
        "F224000108C08000",
        &[
            "16",
            "4111111111111111",
            "000000",
            "000000010000",
            "1123143015",
            "000043",
            "3012",
            "06",
            "123456",
            "000000000042",
            "TERM0001",
            "452739         ",
            "643",
            de90,
        ],
    );
    // Secondary bitmap (DE 90) sits right after the primary one.
    expected.splice(12..12, hex::decode("0000004000000000").unwrap());
    check(&msg, &expected);
    let resp = MessageBuilder::response_to(&msg)
        .response_code(ResponseCode::APPROVED)
        .build()
        .unwrap();
    assert_eq!(resp.mti(), Mti::COMPLETION_ADVICE_RESPONSE);
    assert!(!resp.has(90), "a response echoes only the listed fields");
}

#[test]
fn reversals_0400_0420_0421_and_responses() {
    let auth = reference_0100();
    let de90 = "010000004211231430150000012345600000000000";
    let original = Original::of(&auth).unwrap();
    let reversal = |attempt| {
        MessageBuilder::reversal(attempt, &original, Some(PAN), None, &origin(44))
            .build()
            .unwrap()
    };
    for (msg, mti) in [
        (reversal(ReversalAttempt::Request), "0400"),
        (reversal(ReversalAttempt::Advice), "0420"),
        (reversal(ReversalAttempt::AdviceRepeat), "0421"),
    ] {
        let mut expected = wire(
            mti,
            "F220000108C08000",
            &[
                "16",
                "4111111111111111",
                "000000",
                "000000012345",
                "1123143015",
                "000044",
                "06",
                "123456",
                "000000000042",
                "TERM0001",
                "452739         ",
                "643",
                de90,
            ],
        );
        expected.splice(12..12, hex::decode("0000004000000000").unwrap());
        check(&msg, &expected);
        let resp = MessageBuilder::response_to(&msg)
            .response_code(ResponseCode::APPROVED)
            .build()
            .unwrap();
        let want = if mti == "0400" {
            Mti::REVERSAL_RESPONSE
        } else {
            Mti::REVERSAL_ADVICE_RESPONSE
        };
        assert_eq!(resp.mti(), want);
    }
    // A partial reversal: DE 4 stays the original's, DE 95 carries what stays authorized; a
    // reversal of a card that is gone goes without DE 2.
    let partial = MessageBuilder::reversal(
        ReversalAttempt::Request,
        &original,
        None,
        Some(Amount(234)),
        &origin(45),
    )
    .build()
    .unwrap();
    assert_eq!(partial.amount(), Some(Amount(12345)));
    assert!(partial.field(2).is_none());
    assert_eq!(
        partial.field(95),
        Some(&b"000000000234000000000234C00000000C00000000"[..])
    );
    assert_eq!(partial.field(90), Some(de90.as_bytes()));
}

#[test]
fn network_0800_and_0810() {
    for (code, de70) in [
        (NetworkCode::SignOn, "001"),
        (NetworkCode::SignOff, "002"),
        (NetworkCode::Echo, "301"),
    ] {
        let msg = MessageBuilder::network(
            code,
            TransmissionTime::from_ascii(b"1123143015").unwrap(),
            Stan::new(1).unwrap(),
        )
        .build()
        .unwrap();
        let mut expected = wire("0800", "8220000000000000", &["1123143015", "000001", de70]);
        expected.splice(12..12, hex::decode("0400000000000000").unwrap());
        check(&msg, &expected);
        let resp = MessageBuilder::response_to(&msg)
            .response_code(ResponseCode::APPROVED)
            .build()
            .unwrap();
        let mut expected = wire("0810", "8220000000000000", &["1123143015", "000001", "00"]);
        expected[4..12].copy_from_slice(&hex::decode("0220000002000000").unwrap());
        assert_eq!(
            resp.as_bytes().as_ref(),
            &expected[..],
            "0810 has no DE 70 unless the answerer adds it"
        );
    }
}
