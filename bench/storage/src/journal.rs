//! Engine 1: the bank-server journal, re-implemented here (its codec is
//! private to the server crate). The frame is the server's byte for byte
//! (`server/src/backend/ledger/storage/codec.rs`): `len` u32 LE, `!len` u32 LE,
//! CRC-32 of the payload, then the op payload (tag, length-prefixed account
//! and request id, kind, amount, balance, sequence, to_balance, to_sequence,
//! outcome). A group is one `write` + one `fdatasync`, as `journal.rs` does;
//! recovery reads the file, checks every CRC and replays (as `scan.rs`).
//!
//! A variant the server does not have (yet): a *prezeroed* journal, whose
//! file is written full of zeros and synced ahead of use, in chunks of
//! [`PREZERO_CHUNK_BYTES`], so that a group overwrites allocated, written
//! blocks and its `fdatasync` has no file size or extent to commit (ext4 then
//! skips its metadata journal commit). Recovery stops at a zero header.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::engine::{sync_dir, Engine};
use crate::workload::{Ledger, Rec};

/// Bytes before a frame's payload: length, inverted length, checksum.
const HEADER_BYTES: usize = 12;
/// The server's payload tag of an op record.
const TAG_OP: u8 = 2;
/// The journal's file name (the server's generation-0 journal).
const FILE: &str = "journal.0";

/// A prezeroed journal grows by this much at a time.
pub const PREZERO_CHUNK_BYTES: u64 = 16 * 1024 * 1024;
/// Zeros written per `write` while prezeroing.
const ZERO_WRITE_BYTES: usize = 1024 * 1024;

/// An append-only journal file.
#[derive(Debug)]
pub struct Journal {
    file: Mutex<Tail>,
}

/// The file, where the next frame goes, and (prezeroed) how far it is zeroed.
#[derive(Debug)]
struct Tail {
    file: File,
    pos: u64,
    zeroed: Option<u64>,
}

impl Journal {
    /// Opens a new prezeroed journal in `dir`.
    pub fn open_prezeroed(dir: &Path) -> Result<Journal, String> {
        let journal = Journal::open(dir)?;
        {
            let mut tail = journal.file.lock();
            tail.zeroed = Some(tail.pos);
            tail.prezero().map_err(|e| e.to_string())?;
        }
        Ok(journal)
    }

    /// Opens (creating if missing) the journal in `dir`, appending at its end.
    pub fn open(dir: &Path) -> Result<Journal, String> {
        let path = dir.join(FILE);
        // As the server: opened for writing (not O_APPEND), positioned at the end.
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let pos = file.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
        sync_dir(dir)?;
        let tail = Tail {
            file,
            pos,
            zeroed: None,
        };
        Ok(Journal {
            file: Mutex::new(tail),
        })
    }

    /// The journal's path in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }
}

impl Engine for Journal {
    fn write_group(&self, recs: &[Rec]) -> Result<(), String> {
        let mut bytes = Vec::with_capacity(recs.len() * 112);
        recs.iter().for_each(|r| encode(r, &mut bytes));
        self.file.lock().write(&bytes).map_err(|e| e.to_string())
    }
}

impl Tail {
    /// One group: one write and one `fdatasync` (prezeroing first if needed).
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let end = self.pos + bytes.len() as u64;
        if self.zeroed.is_some_and(|z| end > z) {
            self.prezero()?;
        }
        if self.zeroed.is_some() {
            self.file.write_all_at(bytes, self.pos)?;
        } else {
            self.file.write_all(bytes)?;
        }
        self.file.sync_data()?;
        self.pos = end;
        Ok(())
    }

    /// Appends a chunk of zeros and syncs it (data and size).
    fn prezero(&mut self) -> std::io::Result<()> {
        let from = self.zeroed.unwrap_or(self.pos);
        let zeros = vec![0u8; ZERO_WRITE_BYTES];
        for i in 0..PREZERO_CHUNK_BYTES / ZERO_WRITE_BYTES as u64 {
            self.file
                .write_all_at(&zeros, from + i * ZERO_WRITE_BYTES as u64)?;
        }
        self.file.sync_all()?;
        self.zeroed = Some(from + PREZERO_CHUNK_BYTES);
        Ok(())
    }
}

/// Appends `rec`'s frame to `out`.
pub fn encode(rec: &Rec, out: &mut Vec<u8>) {
    let mut p = Vec::with_capacity(100);
    p.push(TAG_OP);
    put_str(&mut p, &rec.account);
    put_str(&mut p, &rec.request_id);
    p.push(rec.kind);
    for n in [rec.amount, rec.balance, rec.sequence, 0, 0] {
        p.extend_from_slice(&n.to_le_bytes());
    }
    p.push(rec.outcome);
    let len = p.len() as u32;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&p).to_le_bytes());
    out.extend_from_slice(&p);
}

fn put_str(p: &mut Vec<u8>, s: &str) {
    p.extend_from_slice(&(s.len() as u16).to_le_bytes());
    p.extend_from_slice(s.as_bytes());
}

/// Recovery: reads the whole journal, checks each frame, replays it.
pub fn recover(dir: &Path) -> Result<Ledger, String> {
    let mut buf = Vec::new();
    File::open(Journal::path(dir))
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(|e| e.to_string())?;
    let mut ledger = Ledger::default();
    let mut pos = 0;
    while pos < buf.len() {
        if buf[pos..].iter().take(HEADER_BYTES).all(|&b| b == 0) {
            break; // the zeroed, unused end of a prezeroed journal
        }
        let (rec, len) = decode(&buf[pos..]).ok_or(format!("bad frame at byte {pos}"))?;
        ledger.apply(rec);
        pos += len;
    }
    Ok(ledger)
}

/// The record at the start of `buf` and its frame's length, if valid.
fn decode(buf: &[u8]) -> Option<(Rec, usize)> {
    let word = |i: usize| Some(u32::from_le_bytes(buf.get(i..i + 4)?.try_into().ok()?));
    let (len, check, crc) = (word(0)?, word(4)?, word(8)?);
    if len != !check {
        return None;
    }
    let payload = buf.get(HEADER_BYTES..HEADER_BYTES + len as usize)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let rec = Cursor(payload).op()?;
    Some((rec, HEADER_BYTES + len as usize))
}

/// A bounds-checked reader over a payload.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn str(&mut self) -> Option<String> {
        let b = self.take(2)?;
        let len = usize::from(u16::from_le_bytes([b[0], b[1]]));
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }

    fn op(mut self) -> Option<Rec> {
        (self.u8()? == TAG_OP).then_some(())?;
        let (account, request_id, kind) = (self.str()?, self.str()?, self.u8()?);
        let (amount, balance, sequence) = (self.u64()?, self.u64()?, self.u64()?);
        let (_to_balance, _to_sequence) = (self.u64()?, self.u64()?);
        let outcome = self.u8()?;
        self.0.is_empty().then_some(Rec {
            account,
            request_id,
            kind,
            amount,
            outcome,
            balance,
            sequence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::record;

    #[test]
    fn a_frame_round_trips_and_is_about_100_bytes() {
        let rec = record(1, 2);
        let mut buf = Vec::new();
        encode(&rec, &mut buf);
        assert_eq!(buf.len(), 106);
        assert_eq!(decode(&buf), Some((rec, 106)));
        buf[20] ^= 1;
        assert_eq!(decode(&buf), None);
    }
}
