//! Entry points for the cargo-fuzz targets in `fuzz/`: each asserts a property that must hold
//! for every input, so the fuzzer finds both panics and broken round trips.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

use crate::json::{Reveal, from_json, to_json};
use crate::{FrameCodec, Message, MessageBuilder};

/// Decoding never panics; whatever decodes re-encodes to exactly the input, decodes again to the
/// same message, and survives `Debug` and the JSON form.
pub fn decode_round_trip(data: &[u8]) {
    let mut framed = BytesMut::from(data);
    while let Ok(Some(frame)) = FrameCodec.decode(&mut framed) {
        let _ = Message::decode(frame);
    }
    let Ok(msg) = Message::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    let mut b = MessageBuilder::with_spec(msg.spec(), msg.mti());
    for n in msg.fields() {
        b.field(n, msg.field(n).unwrap_or_default());
    }
    let again = b.build().expect("a decoded message re-encodes");
    assert_eq!(
        again.as_bytes().as_ref(),
        data,
        "re-encoding changed the bytes"
    );
    assert_eq!(
        Message::decode(again.as_bytes().clone()).ok().as_ref(),
        Some(&msg)
    );
    let _ = format!("{msg:?}");
    let json = to_json(&msg, Reveal::Unmasked).to_string();
    let back = from_json(&json).expect("the JSON form reads back");
    assert_eq!(
        back.as_bytes().as_ref(),
        data,
        "JSON round trip changed the bytes"
    );
}
