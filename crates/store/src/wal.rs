//! The write-ahead log: numbered segment files in a directory beside the database, each a run of
//! records, one per group commit (`length u32 LE | CRC-32 u32 LE | segment number u64 LE |
//! payload`, the payload the group's ops, the CRC over the number and the payload), and an empty
//! record where a segment was ended. Owns the files: appending with `fdatasync`, starting the next
//! segment, retiring segments the engine holds, and reading them all back after a crash. Must
//! never report an append before it is on disk, nor skip a whole record when reading back: only
//! the tail of the newest segment after its last whole record (one whose append never returned)
//! is dropped.
//!
//! A retired segment is kept as the spare the next one is written over, rather than deleted:
//! overwriting a file's allocated blocks changes no metadata, so each `fdatasync` writes the
//! record alone instead of also committing the file system's journal (ext4: 0.18 against 0.22 ms
//! a sync here, and a third of the tail). Its old records carry its old number, which is how a
//! read tells where the new ones end.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::dir::{directory_error, sync_dir};
use crate::{Batch, StoreError};

const EXTENSION: &str = "wal";
/// The retired segment waiting to be written over; not a segment until renamed to one.
const SPARE: &str = "spare";
const HEADER: usize = 16;
const PUT: u8 = 1;
const DELETE: u8 = 2;
/// A record longer than this is corruption, not a group (group commit caps a group at 16 MiB, and
/// a single batch larger than that goes alone; none comes near this).
const MAX_RECORD: usize = 1 << 30;

/// The log directory and the segment being appended to.
pub(crate) struct Wal {
    dir: PathBuf,
    current: Segment,
    /// The encoded record, kept between appends so its buffer is reused.
    buffer: Vec<u8>,
}

struct Segment {
    number: u64,
    file: File,
    /// Where the next record goes: the end of this segment's records, not of the file (a spare
    /// holds its former records past it).
    end: u64,
}

impl Wal {
    /// Reads back every segment in `dir` (created if missing), oldest first, as the batches to
    /// replay, and the number of the newest. The caller must make the engine hold them durably
    /// and [`remove_through`] that number before it [`Wal::start`]s appending.
    pub(crate) fn recover(dir: &Path) -> Result<(Vec<Batch>, Option<u64>), StoreError> {
        // Owner only: the log holds the same bytes as the database (ciphertext in the vault).
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| directory_error(dir, e))?;
        let numbers = segment_numbers(dir)?;
        let mut replay = Vec::new();
        for (i, &number) in numbers.iter().enumerate() {
            let path = segment_path(dir, number);
            let bytes = std::fs::read(&path).map_err(|e| segment_error(&path, e))?;
            let newest = i + 1 == numbers.len();
            // The newest segment's tail after its last whole record is one whose append never
            // returned: dropped. Anywhere else a record that is not whole is damage.
            if let Err(offset) = read_records(&bytes, number, newest, &mut replay)
                && !newest
            {
                return Err(segment_error(
                    &path,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("a damaged record at byte {offset}, before the newest segment"),
                    ),
                ));
            }
        }
        Ok((replay, numbers.last().copied()))
    }

    /// Starts appending in `dir`, in the segment after `after`.
    pub(crate) fn start(dir: &Path, after: Option<u64>) -> Result<Wal, StoreError> {
        Ok(Wal {
            dir: dir.to_path_buf(),
            current: Segment::create(dir, after.map_or(1, |n| n + 1))?,
            buffer: Vec::new(),
        })
    }

    /// Appends `batches` as one record and returns once it is on disk.
    pub(crate) fn append(&mut self, batches: &[Batch]) -> Result<(), StoreError> {
        self.buffer.clear();
        self.buffer.extend_from_slice(&[0; HEADER]);
        for op in batches.iter().flat_map(Batch::ops) {
            match op {
                crate::Op::Put { key, value } => {
                    self.buffer.push(PUT);
                    put_bytes(&mut self.buffer, key);
                    put_bytes(&mut self.buffer, value);
                }
                crate::Op::Delete { key } => {
                    self.buffer.push(DELETE);
                    put_bytes(&mut self.buffer, key);
                }
            }
        }
        self.current.write(&mut self.buffer, &self.dir)
    }

    /// Ends the current segment (an empty record, on disk) and starts the next, over the spare
    /// when there is one; returns the number of the segment it ended.
    pub(crate) fn rotate(&mut self) -> Result<u64, StoreError> {
        self.buffer.clear();
        self.buffer.extend_from_slice(&[0; HEADER]);
        self.current.write(&mut self.buffer, &self.dir)?;
        let next = Segment::create(&self.dir, self.current.number + 1)?;
        Ok(std::mem::replace(&mut self.current, next).number)
    }
}

/// Retires every segment numbered `last` or lower in `dir`, oldest first, each durably before
/// the next, so that the segments left are always the newest ones and a replay never applies an
/// older write over a newer one that the engine holds. The newest of them becomes the spare when
/// there is none; the others are deleted.
pub(crate) fn remove_through(dir: &Path, last: u64) -> Result<(), StoreError> {
    let retired: Vec<u64> = segment_numbers(dir)?
        .into_iter()
        .filter(|&n| n <= last)
        .collect();
    let spare = dir.join(SPARE);
    for (i, &number) in retired.iter().enumerate() {
        let path = segment_path(dir, number);
        if i + 1 == retired.len() && !spare.exists() {
            std::fs::rename(&path, &spare)
        } else {
            std::fs::remove_file(&path)
        }
        .map_err(|e| segment_error(&path, e))?;
        sync_dir(dir)?;
    }
    Ok(())
}

impl Segment {
    /// Segment `number`: the spare renamed, or a new file.
    fn create(dir: &Path, number: u64) -> Result<Segment, StoreError> {
        let path = segment_path(dir, number);
        let spare = dir.join(SPARE);
        if spare.exists() {
            std::fs::rename(&spare, &path).map_err(|e| segment_error(&spare, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            // A spare's blocks are what is reused: its old records stay past the new ones.
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| segment_error(&path, e))?;
        // The segment's name must survive a power loss before any append to it is acknowledged.
        sync_dir(dir)?;
        Ok(Segment {
            number,
            file,
            end: 0,
        })
    }

    /// Fills in the header of the record in `buffer` (the header's room, then the payload) and
    /// writes it at the end of the segment's records, on disk when this returns.
    fn write(&mut self, buffer: &mut [u8], dir: &Path) -> Result<(), StoreError> {
        let len = u32::try_from(buffer.len() - HEADER).unwrap_or(u32::MAX);
        buffer[8..HEADER].copy_from_slice(&self.number.to_le_bytes());
        let crc = crc32fast::hash(&buffer[8..]);
        buffer[..4].copy_from_slice(&len.to_le_bytes());
        buffer[4..8].copy_from_slice(&crc.to_le_bytes());
        self.file
            .write_all_at(buffer, self.end)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| segment_error(&segment_path(dir, self.number), e))?;
        self.end += buffer.len() as u64;
        Ok(())
    }
}

fn put_bytes(buffer: &mut Vec<u8>, bytes: &[u8]) {
    // A key or value of 4 GiB or more cannot be in a group (capped far below that).
    buffer.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
    buffer.extend_from_slice(bytes);
}

/// Decodes the records of segment `number` into `out`, a batch each, up to its end record, or
/// for the `newest` segment up to where its records stop (a record of the file's former life as
/// another segment, or the end of the file); `Err(offset)` where a record that should be whole is
/// not (what precedes it is in `out`).
fn read_records(
    mut bytes: &[u8],
    number: u64,
    newest: bool,
    out: &mut Vec<Batch>,
) -> Result<(), usize> {
    let total = bytes.len();
    loop {
        let offset = total - bytes.len();
        let Some((header, rest)) = bytes.split_first_chunk::<HEADER>() else {
            // A segment that was ended has its end record; only the newest may stop anywhere.
            return if newest && bytes.is_empty() {
                Ok(())
            } else {
                Err(offset)
            };
        };
        let [l0, l1, l2, l3, c0, c1, c2, c3, n @ ..] = *header;
        let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
        let crc = u32::from_le_bytes([c0, c1, c2, c3]);
        if u64::from_le_bytes(n) != number && newest {
            return Ok(());
        }
        let Some(payload) = rest.get(..len).filter(|_| len <= MAX_RECORD) else {
            return Err(offset);
        };
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&n);
        hasher.update(payload);
        if hasher.finalize() != crc || u64::from_le_bytes(n) != number {
            return Err(offset);
        }
        if len == 0 {
            return Ok(());
        }
        out.push(decode_ops(payload).ok_or(offset)?);
        bytes = &rest[len..];
    }
}

fn decode_ops(mut payload: &[u8]) -> Option<Batch> {
    fn take<'a>(payload: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?) as usize;
        let bytes = payload.get(4..4 + len)?;
        *payload = &payload[4 + len..];
        Some(bytes)
    }
    let mut batch = Batch::default();
    while let Some((&tag, rest)) = payload.split_first() {
        payload = rest;
        match tag {
            PUT => {
                let key = take(&mut payload)?;
                let value = take(&mut payload)?;
                batch.put(key, value);
            }
            DELETE => {
                batch.delete(take(&mut payload)?);
            }
            _ => return None,
        }
    }
    Some(batch)
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}.{EXTENSION}"))
}

/// The numbers of the segments in `dir`, ascending; other files are left alone.
fn segment_numbers(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let entries = std::fs::read_dir(dir).map_err(|e| directory_error(dir, e))?;
    let mut numbers = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| directory_error(dir, e))?.path();
        if path.extension().and_then(|e| e.to_str()) == Some(EXTENSION)
            && let Some(number) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
        {
            numbers.push(number);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

fn segment_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Journal {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(key: &str, value: Option<&str>) -> Batch {
        let mut b = Batch::default();
        match value {
            Some(v) => b.put(key, v),
            None => b.delete(key),
        };
        b
    }

    /// Appends `groups` in segment 1 (and each `None` a rotation), then drops the log as a crash
    /// would leave it.
    fn log(dir: &Path, groups: &[Option<Batch>]) {
        let mut wal = Wal::start(dir, None).unwrap();
        for group in groups {
            match group {
                Some(batch) => wal.append(std::slice::from_ref(batch)).unwrap(),
                None => drop(wal.rotate().unwrap()),
            }
        }
    }

    #[test]
    fn appended_groups_read_back_in_order_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Wal::recover(dir.path()).unwrap(), (Vec::new(), None));
        let mut wal = Wal::start(dir.path(), None).unwrap();
        wal.append(&[batch("a", Some("1")), batch("b", None)])
            .unwrap();
        wal.rotate().unwrap();
        wal.append(&[batch("a", Some("2"))]).unwrap();
        drop(wal);
        // One batch per group, the group's ops in order.
        let mut first = batch("a", Some("1"));
        first.delete("b");
        let (replay, last) = Wal::recover(dir.path()).unwrap();
        assert_eq!(replay, vec![first, batch("a", Some("2"))]);
        assert_eq!(last, Some(2));
    }

    #[test]
    fn a_torn_tail_of_the_newest_segment_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        log(
            dir.path(),
            &[Some(batch("a", Some("1"))), Some(batch("b", Some("2")))],
        );
        let path = segment_path(dir.path(), 1);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let (replay, _) = Wal::recover(dir.path()).unwrap();
        assert_eq!(replay, vec![batch("a", Some("1"))]);
    }

    #[test]
    fn a_damaged_record_before_the_newest_segment_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        log(
            dir.path(),
            &[
                Some(batch("a", Some("1"))),
                None,
                Some(batch("b", Some("2"))),
            ],
        );
        let path = segment_path(dir.path(), 1);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER + 2] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = Wal::recover(dir.path()).expect_err("refused");
        assert!(matches!(err, StoreError::Journal { .. }), "{err:?}");
    }

    #[test]
    fn a_segment_written_over_the_spare_ends_where_its_own_records_do() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::start(dir.path(), None).unwrap();
        wal.append(&[batch("old", Some(&"x".repeat(500)))]).unwrap();
        wal.append(&[batch("old", Some(&"y".repeat(500)))]).unwrap();
        let ended = wal.rotate().unwrap();
        remove_through(dir.path(), ended).unwrap();
        assert!(dir.path().join(SPARE).exists(), "kept to be written over");
        // Segment 2 is new; segment 3 is written over segment 1's records.
        wal.append(&[batch("a", Some("1"))]).unwrap();
        wal.rotate().unwrap();
        wal.append(&[batch("b", Some("2"))]).unwrap();
        drop(wal);
        let (replay, last) = Wal::recover(dir.path()).unwrap();
        assert_eq!(replay, vec![batch("a", Some("1")), batch("b", Some("2"))]);
        assert_eq!(last, Some(3));
    }

    #[test]
    fn retiring_keeps_the_newer_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::start(dir.path(), None).unwrap();
        wal.append(&[batch("a", Some("1"))]).unwrap();
        let ended = wal.rotate().unwrap();
        wal.append(&[batch("b", Some("2"))]).unwrap();
        remove_through(dir.path(), ended).unwrap();
        drop(wal);
        let (replay, _) = Wal::recover(dir.path()).unwrap();
        assert_eq!(replay, vec![batch("b", Some("2"))]);
    }
}
