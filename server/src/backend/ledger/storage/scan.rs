//! Reading a journal or snapshot back: every frame in order, and what ends
//! it. A frame that is not valid, with no valid frame anywhere after it, is a
//! torn tail: after a crash (no clean-shutdown marker) it is most likely a
//! write the crash cut short, whose callers never heard back (every
//! acknowledged batch was synced whole first), so the caller cuts it off and
//! logs how many bytes went; nothing here can prove those bytes were never
//! acknowledged (a cut or a damaged file looks the same), and the log says
//! so. After a clean shutdown the marker decides instead (see `dir`). A bad
//! frame *followed by* a valid one is damage inside acknowledged data: the
//! caller refuses to start and names the offset.
//!
//! Limit: without a marker, a flipped byte inside the very last frame looks
//! exactly like a torn write, and is cut off like one; the offset is logged.

use super::codec::{decode, Frame};
use super::Record;

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scanned {
    /// The valid records, in order.
    pub records: Vec<Record>,
    /// Bytes up to the end of the last valid frame.
    pub valid_len: u64,
    /// Where the last valid frame starts, if any.
    pub last_frame_at: Option<u64>,
    /// A torn tail after `valid_len`, and what was wrong with it.
    pub torn: Option<String>,
}

/// Damage inside acknowledged data: the byte offset and what is wrong there.
#[derive(Debug, PartialEq, Eq)]
pub struct Damage {
    pub offset: u64,
    pub reason: String,
}

/// Reads every frame of `buf`.
pub fn scan(buf: &[u8]) -> Result<Scanned, Damage> {
    let mut out = Scanned::default();
    let mut pos = 0usize;
    while pos < buf.len() {
        match decode(&buf[pos..]) {
            Frame::Valid(record, len) => {
                out.records.push(record);
                out.last_frame_at = Some(pos as u64);
                pos += len;
            }
            Frame::Incomplete => return tail(buf, pos, "a frame cut short".into(), out),
            Frame::Bad(reason) => return tail(buf, pos, reason, out),
        }
    }
    out.valid_len = pos as u64;
    Ok(out)
}

/// Ends a scan at the first frame that is not valid, at `pos`.
fn tail(buf: &[u8], pos: usize, reason: String, mut out: Scanned) -> Result<Scanned, Damage> {
    out.valid_len = pos as u64;
    if let Some(next) = (pos + 1..buf.len()).find(|&q| matches!(decode(&buf[q..]), Frame::Valid(..))) {
        return Err(Damage {
            offset: pos as u64,
            reason: format!("{reason}, followed by a valid record at byte {next}"),
        });
    }
    out.torn = Some(format!("{reason} at byte {pos} ({} bytes)", buf.len() - pos));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::codec::encode;
    use super::*;

    fn journal(n: u64) -> (Vec<u8>, Vec<usize>) {
        let mut buf = Vec::new();
        let mut starts = Vec::new();
        for i in 0..n {
            starts.push(buf.len());
            let account = format!("acct-{i}").into();
            let owner = None;
            encode(
                &Record::Open {
                    account,
                    balance: i,
                    owner,
                },
                &mut buf,
            );
        }
        (buf, starts)
    }

    #[test]
    fn a_cut_anywhere_keeps_exactly_the_whole_frames_before_it() {
        let (buf, starts) = journal(6);
        for cut in 0..=buf.len() {
            let s = scan(&buf[..cut]).expect("a cut is a torn tail, not damage");
            let whole = starts
                .iter()
                .filter(|&&st| frame_end(&starts, &buf, st) <= cut)
                .count();
            assert_eq!(s.records.len(), whole, "cut at {cut}");
            assert_eq!(s.torn.is_some(), s.valid_len < cut as u64);
        }
    }

    fn frame_end(starts: &[usize], buf: &[u8], start: usize) -> usize {
        starts.iter().copied().find(|&st| st > start).unwrap_or(buf.len())
    }

    #[test]
    fn a_flipped_byte_before_the_last_frame_is_damage_naming_its_offset() {
        let (buf, starts) = journal(6);
        let last = *starts.last().unwrap();
        for i in 0..last {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            let frame = starts.iter().rev().find(|&&st| st <= i).unwrap();
            match scan(&bad) {
                Err(d) => assert_eq!(d.offset, *frame as u64, "byte {i}"),
                Ok(s) => panic!("byte {i} flipped went unseen: {} records", s.records.len()),
            }
        }
    }
}
