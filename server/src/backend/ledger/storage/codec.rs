//! The on-disk form of a [`Record`]: a frame of `len` (u32 LE), `!len`
//! (u32 LE: a flipped bit in the length is seen, not followed), the CRC-32 of
//! the payload (u32 LE), then the payload. Fixed little-endian fields and
//! length-prefixed ids: no serde, no schema to drift. Decoding never panics:
//! a journal is external input.

use std::sync::Arc;

use super::super::op::{OpKind, Outcome};
use super::Stored;

/// Bytes before a frame's payload: length, inverted length, checksum.
pub const HEADER_BYTES: usize = 12;
/// The largest payload a frame may carry (ids are at most 128 bytes each).
pub const MAX_PAYLOAD_BYTES: usize = 1024;

const TAG_OPEN: u8 = 1;
const TAG_OP: u8 = 2;
const TAG_FENCE: u8 = 3;
const TAG_STATE: u8 = 4;

/// One durable change (journal), or one piece of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `OpenAccount`: the account, its initial balance, and the principal
    /// that opened it (`--auth-tokens`), if any.
    Open {
        account: Arc<str>,
        balance: u64,
        owner: Option<Arc<str>>,
    },
    /// An op: its parameters (the request log's fingerprint) and its result,
    /// which carries the new balance(s) and sequence number(s). In a snapshot
    /// it is a remembered request id only.
    Op {
        account: Arc<str>,
        request_id: Arc<str>,
        kind: OpKind,
        amount: u64,
        result: Stored,
    },
    /// A request id fenced by `GetOperation` (or by a call dropped at the gate).
    Fence { account: Arc<str>, request_id: Arc<str> },
    /// Snapshot only: an account as it stood, before its remembered ids.
    State {
        account: Arc<str>,
        balance: u64,
        sequence: u64,
        forgotten: u64,
        owner: Option<Arc<str>>,
    },
}

/// Appends `record`'s frame to `out`.
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    let mut payload = Vec::with_capacity(96);
    payload_of(record, &mut payload);
    // Payloads are far below MAX_PAYLOAD_BYTES: ids are length-checked.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

fn payload_of(record: &Record, p: &mut Vec<u8>) {
    match record {
        Record::Open {
            account,
            balance,
            owner,
        } => {
            p.push(TAG_OPEN);
            put_str(p, account);
            p.extend_from_slice(&balance.to_le_bytes());
            put_str(p, owner.as_deref().unwrap_or(""));
        }
        Record::Op {
            account,
            request_id,
            kind,
            amount,
            result,
        } => op_payload(p, account, request_id, kind, *amount, result),
        Record::Fence { account, request_id } => {
            p.push(TAG_FENCE);
            put_str(p, account);
            put_str(p, request_id);
        }
        Record::State {
            account,
            balance,
            sequence,
            forgotten,
            owner,
        } => {
            p.push(TAG_STATE);
            put_str(p, account);
            for n in [*balance, *sequence, *forgotten] {
                p.extend_from_slice(&n.to_le_bytes());
            }
            put_str(p, owner.as_deref().unwrap_or(""));
        }
    }
}

fn op_payload(p: &mut Vec<u8>, account: &str, request_id: &str, kind: &OpKind, amount: u64, r: &Stored) {
    p.push(TAG_OP);
    put_str(p, account);
    put_str(p, request_id);
    put_kind(p, kind);
    for n in [amount, r.balance, r.sequence, r.to_balance, r.to_sequence] {
        p.extend_from_slice(&n.to_le_bytes());
    }
    p.push(outcome_byte(r.outcome));
}

fn put_str(p: &mut Vec<u8>, s: &str) {
    // Ids are at most 128 bytes (checked before any record is made).
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    p.extend_from_slice(&len.to_le_bytes());
    p.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

fn put_kind(p: &mut Vec<u8>, kind: &OpKind) {
    match kind {
        OpKind::Deposit => p.push(0),
        OpKind::Withdraw => p.push(1),
        OpKind::TransferTo(to) => {
            p.push(2);
            put_str(p, to);
        }
    }
}

fn outcome_byte(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Approved => 0,
        Outcome::InsufficientFunds => 1,
        Outcome::NotApplied => 2,
    }
}

/// What is at one offset of a file.
#[derive(Debug)]
pub enum Frame {
    /// A whole, valid record and the frame's length in bytes.
    Valid(Record, usize),
    /// Fewer bytes left than the frame needs: a write cut short.
    Incomplete,
    /// A complete frame that is not valid (why).
    Bad(String),
}

/// Reads the frame at the start of `buf`.
pub fn decode(buf: &[u8]) -> Frame {
    if buf.len() < HEADER_BYTES {
        return Frame::Incomplete;
    }
    let word = |i: usize| u32::from_le_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    let (len, check, crc) = (word(0), word(4), word(8));
    if len != !check {
        return Frame::Bad("the frame's length and its check disagree".into());
    }
    let len = len as usize;
    if len > MAX_PAYLOAD_BYTES {
        return Frame::Bad(format!("a frame of {len} bytes (at most {MAX_PAYLOAD_BYTES})"));
    }
    let Some(payload) = buf.get(HEADER_BYTES..HEADER_BYTES + len) else {
        return Frame::Incomplete;
    };
    if crc32fast::hash(payload) != crc {
        return Frame::Bad("checksum mismatch".into());
    }
    match Reader(payload).record() {
        Some(record) => Frame::Valid(record, HEADER_BYTES + len),
        None => Frame::Bad("a checksummed payload that does not parse".into()),
    }
}

/// A cursor over a payload; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }

    fn u64(&mut self) -> Option<u64> {
        let b = self.bytes(8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }

    fn str(&mut self) -> Option<Arc<str>> {
        let b = self.bytes(2)?;
        let len = usize::from(u16::from_le_bytes([b[0], b[1]]));
        let s = std::str::from_utf8(self.bytes(len)?).ok()?;
        Some(Arc::from(s))
    }

    /// An owner: the empty string stands for none.
    fn owner(&mut self) -> Option<Option<Arc<str>>> {
        let s = self.str()?;
        Some((!s.is_empty()).then_some(s))
    }

    fn kind(&mut self) -> Option<OpKind> {
        match self.u8()? {
            0 => Some(OpKind::Deposit),
            1 => Some(OpKind::Withdraw),
            2 => Some(OpKind::TransferTo(self.str()?)),
            _ => None,
        }
    }

    fn outcome(&mut self) -> Option<Outcome> {
        match self.u8()? {
            0 => Some(Outcome::Approved),
            1 => Some(Outcome::InsufficientFunds),
            2 => Some(Outcome::NotApplied),
            _ => None,
        }
    }

    fn record(mut self) -> Option<Record> {
        let record = match self.u8()? {
            TAG_OPEN => Record::Open {
                account: self.str()?,
                balance: self.u64()?,
                owner: self.owner()?,
            },
            TAG_OP => self.op()?,
            TAG_FENCE => Record::Fence {
                account: self.str()?,
                request_id: self.str()?,
            },
            TAG_STATE => Record::State {
                account: self.str()?,
                balance: self.u64()?,
                sequence: self.u64()?,
                forgotten: self.u64()?,
                owner: self.owner()?,
            },
            _ => return None,
        };
        // Trailing bytes mean a payload this version did not write.
        self.0.is_empty().then_some(record)
    }

    fn op(&mut self) -> Option<Record> {
        let account = self.str()?;
        let request_id = self.str()?;
        let kind = self.kind()?;
        let amount = self.u64()?;
        let (balance, sequence, to_balance, to_sequence) =
            (self.u64()?, self.u64()?, self.u64()?, self.u64()?);
        let outcome = self.outcome()?;
        let result = Stored {
            outcome,
            balance,
            sequence,
            to_balance,
            to_sequence,
        };
        Some(Record::Op {
            account,
            request_id,
            kind,
            amount,
            result,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Record> {
        let result = Stored {
            outcome: Outcome::Approved,
            balance: 5,
            sequence: 2,
            to_balance: 7,
            to_sequence: 9,
        };
        vec![
            Record::Open {
                account: "a".into(),
                balance: u64::MAX,
                owner: None,
            },
            Record::Op {
                account: "a".into(),
                request_id: "r1".into(),
                kind: OpKind::TransferTo("b".into()),
                amount: 3,
                result,
            },
            Record::Fence {
                account: "a".into(),
                request_id: "".into(),
            },
            Record::State {
                account: "é".into(),
                balance: 1,
                sequence: 2,
                forgotten: 3,
                owner: Some("alice".into()),
            },
        ]
    }

    #[test]
    fn records_round_trip_and_every_truncation_is_incomplete() {
        for record in samples() {
            let mut buf = Vec::new();
            encode(&record, &mut buf);
            match decode(&buf) {
                Frame::Valid(back, len) => assert_eq!((back, len), (record.clone(), buf.len())),
                other => panic!("{other:?}"),
            }
            for cut in 0..buf.len() {
                assert!(matches!(decode(&buf[..cut]), Frame::Incomplete), "cut at {cut}");
            }
        }
    }

    #[test]
    fn every_single_bit_flip_is_caught() {
        for record in samples() {
            let mut buf = Vec::new();
            encode(&record, &mut buf);
            for i in 0..buf.len() * 8 {
                let mut bad = buf.clone();
                bad[i / 8] ^= 1 << (i % 8);
                assert!(!matches!(decode(&bad), Frame::Valid(..)), "bit {i} of {record:?}");
            }
        }
    }
}
