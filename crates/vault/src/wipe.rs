//! Buffers that hold a frame of the vault protocol on its way out, wiped once it is sent.
//!
//! A tokenize request carries a PAN, a detokenize answer a PAN and a holder, a hello the client's
//! secret. Each is encoded into a [`WipingBuf`] (never reallocated without wiping the old
//! allocation, wiped when the last `Bytes` view of it drops, i.e. once the codec has copied it),
//! and the codec's own write buffer is wiped by [`wipe_sent`] after every flush. Owns nothing
//! else; must never hand out a frame in a buffer that is freed unwiped.

use bytes::{Bytes, BytesMut};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::wire::Writer;

/// An encode buffer that wipes every allocation it ever used: the one it grows out of at once,
/// its last one when dropped.
#[derive(Debug, Default)]
pub struct WipingBuf(Vec<u8>);

impl WipingBuf {
    /// An empty buffer with room for `capacity` bytes before it first grows.
    pub fn with_capacity(capacity: usize) -> WipingBuf {
        WipingBuf(Vec::with_capacity(capacity))
    }

    /// The encoded frame as `Bytes`; this buffer is wiped when the last view of it drops.
    pub fn into_bytes(self) -> Bytes {
        Bytes::from_owner(self)
    }

    fn grow_for(&mut self, more: usize) {
        let needed = self.0.len().saturating_add(more);
        if needed <= self.0.capacity() {
            return;
        }
        // `Vec` would reallocate and free the old block as it is; copy by hand and wipe it.
        let mut bigger = Vec::with_capacity(needed.max(self.0.capacity().saturating_mul(2)));
        bigger.extend_from_slice(&self.0);
        self.0.zeroize();
        self.0 = bigger;
    }
}

impl AsRef<[u8]> for WipingBuf {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Writer for WipingBuf {
    fn put_u8(&mut self, v: u8) {
        self.put_slice(&[v]);
    }
    fn put_slice(&mut self, v: &[u8]) {
        self.grow_for(v.len());
        self.0.extend_from_slice(v);
    }
}

impl Zeroize for WipingBuf {
    /// Zeroes the whole allocation (length and spare capacity), then empties the buffer.
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for WipingBuf {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for WipingBuf {}

/// Wipes a codec's write buffer once everything in it has been written (call it after a flush):
/// the bytes already sent still sit in its allocation, before and after its current view.
pub fn wipe_sent(buf: &mut BytesMut) {
    if buf.is_empty() {
        zero_allocation(buf);
        buf.clear();
    }
}

/// Moves an empty buffer's view back to the start of its allocation (an empty, unshared
/// `BytesMut` reclaims the space before its view without allocating) and zeroes all of it,
/// leaving its length at the whole allocation.
fn zero_allocation(buf: &mut BytesMut) {
    // Asking for one byte more than the view holds makes it reclaim the space before it. Refused
    // when the view already starts at the allocation's start (nothing to reclaim) or the
    // allocation is shared with a `Bytes` (the view is then all this buffer may touch); either
    // way what follows zeroes all it can reach.
    let _ = buf.try_reclaim(buf.capacity().saturating_add(1));
    buf.resize(buf.capacity(), 0);
    buf[..].zeroize();
}

#[cfg(test)]
mod tests {
    use bytes::Buf;

    use super::*;

    const PAN: &[u8] = b"4111111111111111";

    #[test]
    fn the_encode_buffer_zeroizes_on_drop_and_when_it_grows() {
        fn wiped_on_drop<T: ZeroizeOnDrop>() {}
        wiped_on_drop::<WipingBuf>();
        let mut w = WipingBuf::with_capacity(4);
        for _ in 0..8 {
            w.put_bytes(PAN);
        }
        assert_eq!(w.as_ref().len(), 8 * (2 + PAN.len()));
        let capacity = w.0.capacity();
        w.zeroize();
        assert_eq!((w.as_ref().len(), w.0.capacity()), (0, capacity));
        // What the codec sees is the frame itself.
        let mut w = WipingBuf::with_capacity(4);
        w.put_bytes(PAN);
        assert_eq!(&w.into_bytes()[2..], PAN);
    }

    #[test]
    fn the_codec_buffer_is_zeroed_over_its_whole_allocation_once_sent() {
        let mut buf = BytesMut::with_capacity(64);
        for _ in 0..3 {
            buf.extend_from_slice(PAN);
            let sent = buf.len();
            buf.advance(sent);
        }
        let allocation = 64;
        zero_allocation(&mut buf);
        assert!(buf.len() >= allocation);
        assert!(
            buf.iter().all(|b| *b == 0),
            "a sent PAN is left in the buffer"
        );
        buf.clear();
        buf.extend_from_slice(PAN);
        buf.advance(PAN.len());
        wipe_sent(&mut buf);
        assert!(buf.is_empty() && buf.capacity() >= allocation);
        // A buffer still holding unsent bytes is left alone.
        buf.extend_from_slice(PAN);
        wipe_sent(&mut buf);
        assert_eq!(&buf[..], PAN);
    }
}
