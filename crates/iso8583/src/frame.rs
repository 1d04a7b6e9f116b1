//! Framing on the link: each message is preceded by its length as a 2-byte big-endian number,
//! the header not counted, at most [`MAX_MESSAGE_LEN`] bytes. A frame that announces more is a
//! framing error: the peer is not speaking this protocol, and the connection must be closed.
//!
//! Decoded frames own their bytes, and the read buffer is wiped behind them, so that a message
//! holding card data can be wiped when it is dropped.
//!
//! Partial frames stay in the read buffer (the decoder returns `None` until a whole frame is
//! there), so a read can be cancelled inside `select!` without losing bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};
use zeroize::Zeroize;

use crate::{MAX_MESSAGE_LEN, Message};

const HEADER_LEN: usize = 2;

/// Why the link cannot go on reading or writing frames. Every variant ends the connection: after
/// a bad header there is no telling where the next frame starts.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A header announces, or a message to send needs, more than the frame limit.
    #[error("frame announces {len} bytes, over the {max}-byte limit")]
    TooLong {
        /// The length announced (or needed), in bytes.
        len: usize,
        /// The limit, [`MAX_MESSAGE_LEN`].
        max: usize,
    },
    /// A header announces zero bytes, or an empty message was to be sent: no message is empty.
    #[error("frame announces an empty message")]
    Empty,
    /// The connection failed underneath the codec.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
}

/// `tokio_util` codec for length-prefixed frames; items are the raw messages, undecoded, so that
/// the caller decides where (and on which task) to run [`Message::decode`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameCodec;

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(header) = src.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        if len > MAX_MESSAGE_LEN {
            return Err(FrameError::TooLong {
                len,
                max: MAX_MESSAGE_LEN,
            });
        }
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if src.len() < HEADER_LEN + len {
            src.reserve(HEADER_LEN + len - src.len());
            return Ok(None);
        }
        // The frame gets a buffer of its own and its bytes are wiped from the read buffer:
        // a frame may carry a PAN or CVC2, and a slice sharing the read buffer's allocation
        // could never be wiped when the message is done with (see `Message`'s `Drop`).
        let frame = Bytes::copy_from_slice(&src[HEADER_LEN..HEADER_LEN + len]);
        src[..HEADER_LEN + len].zeroize();
        src.advance(HEADER_LEN + len);
        Ok(Some(frame))
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode(&item[..], dst)
    }
}

impl Encoder<&[u8]> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        match u16::try_from(item.len()) {
            Ok(0) => Err(FrameError::Empty),
            Ok(len) if item.len() <= MAX_MESSAGE_LEN => {
                dst.reserve(HEADER_LEN + item.len());
                dst.put_u16(len);
                dst.put_slice(item);
                Ok(())
            }
            _ => Err(FrameError::TooLong {
                len: item.len(),
                max: MAX_MESSAGE_LEN,
            }),
        }
    }
}

impl Encoder<&Message> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode(&item.as_bytes()[..], dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_a_whole_frame() {
        let mut buf = BytesMut::from(&[0u8, 5, b'0', b'8'][..]);
        assert!(FrameCodec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"001");
        buf.extend_from_slice(&[0, 1]);
        assert_eq!(FrameCodec.decode(&mut buf).unwrap().unwrap(), &b"08001"[..]);
        assert!(FrameCodec.decode(&mut buf).unwrap().is_none());
        assert_eq!(buf.len(), 2);
    }

    #[test]
    fn refuses_oversize_and_empty_frames() {
        let mut buf = BytesMut::from(&[0x20u8, 0x01][..]);
        assert!(matches!(
            FrameCodec.decode(&mut buf),
            Err(FrameError::TooLong { len: 8193, .. })
        ));
        let mut buf = BytesMut::from(&[0u8, 0][..]);
        assert!(matches!(
            FrameCodec.decode(&mut buf),
            Err(FrameError::Empty)
        ));
        let mut out = BytesMut::new();
        let big = vec![b'0'; MAX_MESSAGE_LEN + 1];
        assert!(FrameCodec.encode(&big[..], &mut out).is_err());
        assert!(out.is_empty());
    }
}
