//! [`Overlay`]: the writes the journal has made durable but the engine does not hold yet, in
//! memory, in front of the engine for every read. Owns the two layers (the active one the
//! committer applies groups to, the frozen one the flusher is writing to the engine) and the
//! merge of a layer's entries with the engine's. Must never let a read miss a write that was
//! acknowledged, nor show part of one.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use crate::prefix::{prefix_bounds, prefix_end};
use crate::{Batch, Engine, Op, Pair, StoreError};

/// A key's latest write in a layer: its value, or `None` where it was deleted (a tombstone, which
/// hides the engine's older value).
pub(crate) type Layer = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

#[derive(Default)]
struct Layers {
    active: Layer,
    /// Key and value bytes applied to `active` since it was frozen (overwrites count again: it
    /// is what the journal appended, which bounds memory from above).
    active_bytes: usize,
    frozen: Option<Arc<Layer>>,
}

/// The durable writes not yet in the engine.
#[derive(Default)]
pub(crate) struct Overlay {
    layers: RwLock<Layers>,
    /// Counts freezes. A scan reads it before and after reading the engine: writes reach the
    /// engine only by being frozen first, so an unchanged count means the engine held nothing the
    /// scan's copy of the layers had not seen.
    freezes: AtomicU64,
    /// Signalled at each freeze and thaw, for a committer waiting for room.
    room: Condvar,
    room_lock: Mutex<()>,
}

impl Overlay {
    fn read(&self) -> RwLockReadGuard<'_, Layers> {
        // Layers are only ever replaced whole under the write lock, so a panic elsewhere cannot
        // have left them half-changed.
        self.layers.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Layers> {
        self.layers.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `batches` visible, all at once; returns the bytes now applied to the active layer
    /// since the last freeze.
    pub(crate) fn apply(&self, batches: &[Batch]) -> usize {
        let mut layers = self.write();
        for op in batches.iter().flat_map(Batch::ops) {
            match op {
                Op::Put { key, value } => {
                    layers.active_bytes += key.len() + value.len();
                    layers.active.insert(key.clone(), Some(value.clone()));
                }
                Op::Delete { key } => {
                    layers.active_bytes += key.len();
                    layers.active.insert(key.clone(), None);
                }
            }
        }
        layers.active_bytes
    }

    /// Whether nothing was applied since the last freeze.
    pub(crate) fn is_empty(&self) -> bool {
        self.read().active.is_empty()
    }

    /// Moves the active layer to frozen and returns it, for the engine to take; `None` when the
    /// active layer is empty. The caller must have written the frozen layer away
    /// ([`Overlay::thaw`]) before freezing again.
    pub(crate) fn freeze(&self) -> Option<Arc<Layer>> {
        let frozen = {
            let mut layers = self.write();
            debug_assert!(layers.frozen.is_none(), "frozen twice without a flush");
            if layers.active.is_empty() {
                return None;
            }
            let frozen = Arc::new(std::mem::take(&mut layers.active));
            layers.active_bytes = 0;
            layers.frozen = Some(Arc::clone(&frozen));
            self.freezes.fetch_add(1, Ordering::AcqRel);
            frozen
        };
        self.made_room();
        Some(frozen)
    }

    /// Drops the frozen layer once the engine holds it durably.
    pub(crate) fn thaw(&self) {
        self.write().frozen = None;
        self.made_room();
    }

    fn made_room(&self) {
        let _held = self
            .room_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.room.notify_all();
    }

    /// Whether the active layer holds fewer than `limit` bytes, waiting up to `timeout` for a
    /// freeze to make it so.
    pub(crate) fn wait_below(&self, limit: usize, timeout: Duration) -> bool {
        let has_room = || self.read().active_bytes < limit;
        let held = self
            .room_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if has_room() {
            return true;
        }
        // Checked and waited under `room_lock`, which a freeze takes to signal: no wake-up lost.
        let _held = self.room.wait_timeout(held, timeout);
        has_room()
    }

    /// The value of `key`: the overlay's latest write, else the engine's.
    pub(crate) fn get(
        &self,
        engine: &dyn Engine,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        {
            let layers = self.read();
            let found = layers
                .active
                .get(key)
                .or_else(|| layers.frozen.as_ref().and_then(|f| f.get(key)));
            if let Some(latest) = found {
                return Ok(latest.clone());
            }
        }
        // Not written since the engine's last flush: the engine's value is the latest, or
        // newer (a flush since), which is still a whole write's.
        engine.get(key)
    }

    /// The overlay's entries with keys in `range`, the active layer's over the frozen one's, and
    /// the freeze count they were copied at.
    fn entries(&self, range: (Bound<&[u8]>, Bound<&[u8]>)) -> (Layer, u64) {
        let layers = self.read();
        let mut merged: Layer = match &layers.frozen {
            Some(frozen) => frozen
                .range::<[u8], _>(range)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            None => Layer::new(),
        };
        for (k, v) in layers.active.range::<[u8], _>(range) {
            merged.insert(k.clone(), v.clone());
        }
        (merged, self.freezes.load(Ordering::Acquire))
    }

    /// Up to `limit` pairs with keys in `range`, ascending; `base(asked)` reads up to `asked` of
    /// the engine's pairs of the same range: `limit` and as many more as the overlay may hide.
    fn scan(
        &self,
        range: (Bound<&[u8]>, Bound<&[u8]>),
        limit: usize,
        base: impl Fn(usize) -> Result<Vec<Pair>, StoreError>,
    ) -> Result<Vec<Pair>, StoreError> {
        let (overlay, (engine, asked)) = self.consistent(range, |overlay| {
            let asked = limit.saturating_add(overlay.values().filter(|v| v.is_none()).count());
            Ok((base(asked)?, asked))
        })?;
        Ok(merge(overlay, engine, limit, asked))
    }

    /// The overlay's entries in `range` and `read` of the engine (given those entries), with no
    /// freeze between the two.
    fn consistent<T>(
        &self,
        range: (Bound<&[u8]>, Bound<&[u8]>),
        read: impl Fn(&Layer) -> Result<T, StoreError>,
    ) -> Result<(Layer, T), StoreError> {
        loop {
            let (overlay, freezes) = self.entries(range);
            let engine = read(&overlay)?;
            if self.freezes.load(Ordering::Acquire) == freezes {
                return Ok((overlay, engine));
            }
            // A freeze since the copy: the engine may now hold writes the copy has not seen,
            // and the two could show part of one. Rare (a freeze a second at most): read again.
        }
    }

    /// All pairs whose key starts with `prefix`, ascending.
    pub(crate) fn scan_prefix(
        &self,
        engine: &dyn Engine,
        prefix: &[u8],
    ) -> Result<Vec<Pair>, StoreError> {
        let end = prefix_end(prefix);
        let range = prefix_bounds(prefix, end.as_deref());
        self.scan(range, usize::MAX, |_| engine.scan_prefix(prefix))
    }

    /// Pairs with `start <= key < end`, ascending, at most `limit`.
    pub(crate) fn scan_range(
        &self,
        engine: &dyn Engine,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Pair>, StoreError> {
        if start >= end || limit == 0 {
            return Ok(Vec::new());
        }
        let range = (Bound::Included(start), Bound::Excluded(end));
        self.scan(range, limit, |asked| engine.scan_range(start, end, asked))
    }

    /// The greatest pair whose key starts with `prefix`.
    pub(crate) fn last_with_prefix(
        &self,
        engine: &dyn Engine,
        prefix: &[u8],
    ) -> Result<Option<Pair>, StoreError> {
        let end = prefix_end(prefix);
        let range = prefix_bounds(prefix, end.as_deref());
        let (overlay, last) = self.consistent(range, |_| engine.last_with_prefix(prefix))?;
        let top = overlay
            .iter()
            .rev()
            .find_map(|(k, v)| Some((k.clone(), v.clone()?)));
        Ok(match last {
            // The overlay rewrote or deleted the engine's last key: unless the overlay has a
            // greater live key, the answer is further down the engine: let the merge find it
            // (sequence heads are read at start-up, when the overlay is empty).
            Some((key, _)) if overlay.contains_key(&key) => match top {
                Some(top) if top.0 >= key => Some(top),
                _ => self.scan_prefix(engine, prefix)?.pop(),
            },
            last => std::cmp::max_by(last, top, |a, b| {
                a.as_ref().map(|p| &p.0).cmp(&b.as_ref().map(|p| &p.0))
            }),
        })
    }
}

/// A frozen layer as the one batch the engine takes it in.
pub(crate) fn to_batch(layer: &Layer) -> Batch {
    let mut batch = Batch::default();
    for (key, value) in layer {
        match value {
            Some(value) => batch.put(key.clone(), value.clone()),
            None => batch.delete(key.clone()),
        };
    }
    batch
}

/// `overlay` over `engine` (both ascending), tombstones dropped, at most `limit` pairs. `asked`
/// is how many the engine was asked for: when it returned that many it has more past its last
/// key, so the merge stops there; and since it was asked for `limit` plus the overlay's
/// tombstones, the first `limit` visible pairs all lie below that key.
fn merge(overlay: Layer, engine: Vec<Pair>, limit: usize, asked: usize) -> Vec<Pair> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let engine_limited = engine.len() >= asked;
    let mut out = Vec::with_capacity(engine.len().min(limit));
    let mut overlay = overlay.into_iter().peekable();
    let mut engine = engine.into_iter().peekable();
    while out.len() < limit {
        let order = match (overlay.peek(), engine.peek()) {
            (None, None) => break,
            (Some(_), None) if engine_limited => break,
            (Some(_), None) => Less,
            (None, Some(_)) => Greater,
            (Some((ok, _)), Some((ek, _))) => ok.cmp(ek),
        };
        if order == Equal {
            engine.next();
        }
        if order == Greater {
            out.extend(engine.next());
        } else if let Some((key, Some(value))) = overlay.next() {
            out.push((key, value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, Option<&str>)]) -> Layer {
        entries
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
            .collect()
    }

    fn pairs(entries: &[(&str, &str)]) -> Vec<Pair> {
        entries
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn the_overlay_wins_and_its_tombstones_hide_the_engine() {
        let overlay = layer(&[("b", Some("B2")), ("c", None), ("e", Some("E"))]);
        let engine = pairs(&[("a", "A"), ("b", "B1"), ("c", "C"), ("d", "D")]);
        assert_eq!(
            merge(overlay, engine, usize::MAX, usize::MAX),
            pairs(&[("a", "A"), ("b", "B2"), ("d", "D"), ("e", "E")])
        );
    }

    #[test]
    fn a_limited_engine_read_is_not_extended_past_its_last_key() {
        // The engine was asked for 2 (limit 1 plus one tombstone) and has more after "b": "e"
        // from the overlay must not be returned ahead of engine keys it did not read.
        let overlay = layer(&[("a", None), ("e", Some("E"))]);
        let engine = pairs(&[("a", "A"), ("b", "B")]);
        assert_eq!(merge(overlay, engine, 1, 2), pairs(&[("b", "B")]));
    }
}
