//! ISO 8583 for the processing-centre link: the message codec of `spec/iso8583.md` and its
//! framing.
//!
//! The dialect is data ([`spec::ASCII87`]); the codec holds no code of its own for any field.
//! Decoding validates every present field against the table and indexes the original bytes
//! without copying; building writes the wire form from a zeroizing arena. Nothing in this crate
//! prints a PAN or a CVC2: `Debug` masks DE 2 and hides DE 48.10, and errors name a field and an
//! offset, never a value.
#![forbid(unsafe_code)]

mod builder;
mod de48;
mod error;
mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod json;
mod kinds;
mod message;
pub mod spec;
mod types;

pub use builder::{ECHOED_FIELDS, MessageBuilder};
pub use de48::{De48, Subelements};
pub use error::{DecodeError, EncodeError, Location};
pub use frame::{FrameCodec, FrameError};
pub use kinds::{
    CardRequest, Condition, EntryMode, NetworkCode, Origin, Original, ReversalAttempt,
    original_data,
};
pub use message::Message;
pub use types::{
    Amount, Cavv, CofIndicator, DsTransactionId, Eci, MitReason, Mti, ProcessingCode, ResponseCode,
    Rrn, Stan, TransmissionTime, tag,
};

/// The largest message the link carries, frame header not counted.
pub const MAX_MESSAGE_LEN: usize = 8192;
