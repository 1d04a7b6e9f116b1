//! Property tests: anything built within the formats round-trips, and no input panics.

use bytes::Bytes;
use iso8583::spec::{ASCII87, Charset, FieldSpec, Length, Prefix, Spec};
use iso8583::{Message, MessageBuilder, Mti};
use proptest::prelude::*;

fn value_for(spec: &FieldSpec) -> BoxedStrategy<Vec<u8>> {
    let (min, max) = match spec.length {
        Length::Fixed(n) => (usize::from(n), usize::from(n)),
        other => (0, usize::from(other.max())),
    };
    let byte = match spec.charset {
        Charset::N => prop::sample::select(b"0123456789".to_vec()).boxed(),
        Charset::An => prop::sample::select(b"0123456789ABCXYZabcxyz".to_vec()).boxed(),
        Charset::Ans => (0x20u8..=0x7e).boxed(),
    };
    prop::collection::vec(byte, min..=max).boxed()
}

/// A field number and its raw value.
type Value = (u8, Vec<u8>);

/// Random subsets of the table's plain fields with random values; DE 48 gets valid subelements.
fn message() -> impl Strategy<Value = (u16, Vec<Value>, Vec<Value>)> {
    let plain: Vec<BoxedStrategy<Option<Value>>> = ASCII87
        .fields()
        .filter(|f| f.subelements.is_none())
        .map(|f| {
            let n = f.number;
            prop::option::of(value_for(f).prop_map(move |v| (n, v))).boxed()
        })
        .collect();
    let subs = prop::collection::btree_map(
        prop::sample::select(vec![1u8, 2, 3, 10, 20, 22]),
        prop::collection::vec(prop::sample::select(b"0123456789".to_vec()), 3..=8),
        0..4,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(tag, mut v)| {
                // Fit each tag's own length rules from the table.
                let len = match tag {
                    1 | 2 => 1,
                    10 => 3,
                    20 => 2,
                    _ => v.len(),
                };
                v.truncate(len);
                (tag, v)
            })
            .collect::<Vec<_>>()
    });
    (0u16..=9999, plain, subs)
        .prop_map(|(mti, fields, subs)| (mti, fields.into_iter().flatten().collect(), subs))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn built_messages_round_trip((mti, fields, subs) in message()) {
        let mut b = MessageBuilder::new(Mti::new(mti).unwrap());
        for (n, v) in &fields {
            b.field(*n, v);
        }
        if !subs.is_empty() {
            let pairs: Vec<(u8, &[u8])> = subs.iter().map(|(t, v)| (*t, v.as_slice())).collect();
            b.de48(&pairs);
        }
        let built = b.build().unwrap();
        let decoded = Message::decode(built.as_bytes().clone()).unwrap();
        prop_assert_eq!(&decoded, &built);
        for (n, v) in &fields {
            prop_assert_eq!(decoded.field(*n), Some(v.as_slice()));
        }
        let mut again = Vec::new();
        let mut b2 = MessageBuilder::new(decoded.mti());
        for n in decoded.fields() {
            b2.field(n, decoded.field(n).unwrap());
        }
        b2.encode_into(&mut again).unwrap();
        prop_assert_eq!(&again[..], &built.as_bytes()[..]);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Message::decode(Bytes::from(bytes));
    }

    #[test]
    fn mutated_reference_never_panics(pos in 0usize..275, byte in any::<u8>(), cut in 0usize..=275) {
        let hex = include_str!("../testdata/reference_0100.hex");
        let mut msg = hex::decode(hex.trim()).unwrap();
        msg[pos] = byte;
        msg.truncate(cut);
        if let Ok(m) = Message::decode(Bytes::from(msg.clone())) {
            prop_assert_eq!(&m.as_bytes()[..], &msg[..]);
            let _ = format!("{m:?}");
        }
    }
}

/// A second dialect is a second table: packed-BCD length prefixes, nothing else changed.
static BCD_FIELDS: [FieldSpec; 2] = [
    FieldSpec {
        number: 2,
        name: "PAN",
        charset: Charset::N,
        length: Length::LlVar { max: 19 },
        exposure: iso8583::spec::Exposure::MaskPan,
        subelements: None,
    },
    FieldSpec {
        number: 54,
        name: "Additional amounts",
        charset: Charset::Ans,
        length: Length::LllVar { max: 120 },
        exposure: iso8583::spec::Exposure::Clear,
        subelements: None,
    },
];
static BCD: Spec = Spec::new("bcd-test", Prefix::Bcd, &BCD_FIELDS);

#[test]
fn a_bcd_dialect_is_only_a_table() {
    let msg = MessageBuilder::with_spec(&BCD, Mti::AUTH_REQUEST)
        .field(2, b"4111111111111111")
        .field(54, b"x")
        .build()
        .unwrap();
    let wire = msg.as_bytes();
    assert_eq!(&wire[12..13], &[0x16]);
    assert_eq!(&wire[29..31], &[0x00, 0x01]);
    let back = Message::decode_with(&BCD, wire.clone()).unwrap();
    assert_eq!(back.field(2), Some(&b"4111111111111111"[..]));
    assert!(format!("{back:?}").contains("411111******1111"));
}
