//! Writes a history file: the checker's [`History`] as it was handed to the
//! in-run checker, line by line, between a header (run, process, first clock
//! anchor) and an end line (counts, second anchor). `.zst` names are written
//! zstd-compressed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use bank_checker::{Duplicate, History, InvalidCall, Op, Read, TransferLeg};

use super::names::{flag_names, invalid_name, kind_name, outcome_name};
use super::schema::{
    AccountLine, Anchor, DuplicateLine, EndLine, FinalLine, Header, InvalidLine, Line, OpLine, ReadLine,
    FORMAT, VERSION,
};

/// zstd level for `.zst` files: fast, still ~10x smaller than the text.
const ZSTD_LEVEL: i32 = 3;

/// Who wrote the history, and the two clock anchors.
#[derive(Debug, Clone)]
pub struct Meta {
    pub run_id: String,
    pub process_id: u32,
    pub role: String,
    pub start_anchor: Anchor,
    pub end_anchor: Anchor,
}

/// The request ids of some ops: (op number, id), sorted by op number.
/// stress-client gives those of the ops whose outcome stayed unknown, the
/// ones `check --target` asks `GetOperation` about.
pub type RequestIds = [(u32, String)];

/// Writes `history` to `path` (compressed when the name ends in `.zst`).
pub fn write(path: &Path, history: &History, ids: &RequestIds, meta: &Meta) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write history {}: {e}", path.display());
    let file = File::create(path).map_err(fail)?;
    if path.extension().is_some_and(|e| e == "zst") {
        let mut enc = zstd::Encoder::new(file, ZSTD_LEVEL).map_err(fail)?;
        write_lines(&mut BufWriter::new(&mut enc), history, ids, meta).map_err(fail)?;
        enc.finish().map_err(fail)?.sync_all().map_err(fail)
    } else {
        let mut out = BufWriter::new(file);
        write_lines(&mut out, history, ids, meta).map_err(fail)?;
        out.into_inner()
            .map_err(|e| fail(e.into_error()))?
            .sync_all()
            .map_err(fail)
    }
}

/// Every line of the file, in order.
pub fn write_lines(out: &mut impl Write, h: &History, ids: &RequestIds, meta: &Meta) -> std::io::Result<()> {
    let header = Header {
        format: FORMAT.to_owned(),
        version: VERSION,
        run_id: meta.run_id.clone(),
        process_id: meta.process_id,
        role: meta.role.clone(),
        start_anchor: meta.start_anchor,
    };
    line(out, &Line::Header(header))?;
    for a in &h.accounts {
        line(
            out,
            &Line::Account(AccountLine {
                id: a.account_id.clone(),
                initial_balance: a.initial_balance,
            }),
        )?;
    }
    let mut legs = h.transfers.iter().peekable();
    let mut ids = ids.iter().peekable();
    for (i, op) in h.ops.iter().enumerate() {
        let leg = legs.next_if(|l| l.op as usize == i);
        let id = ids.next_if(|(at, _)| *at as usize == i).map(|(_, id)| id.clone());
        line(out, &Line::Op(op_line(op, leg, id)))?;
    }
    for r in &h.reads {
        line(out, &Line::Read(read_line(r)))?;
    }
    for d in &h.duplicates {
        line(out, &Line::Duplicate(duplicate_line(d)))?;
    }
    for c in &h.invalid {
        line(out, &Line::Invalid(invalid_line(c)))?;
    }
    let finals = final_lines(h);
    for f in &finals {
        line(out, &Line::Final(f.clone()))?;
    }
    let end = EndLine {
        accounts: h.accounts.len() as u64,
        ops: h.ops.len() as u64,
        reads: h.reads.len() as u64,
        duplicates: h.duplicates.len() as u64,
        invalid: h.invalid.len() as u64,
        finals: finals.len() as u64,
        end_anchor: meta.end_anchor,
    };
    line(out, &Line::End(end))?;
    out.flush()
}

fn line(out: &mut impl Write, l: &Line) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, l)?;
    out.write_all(b"\n")
}

/// `u64::MAX` (never) is `null` in the file.
fn time(ns: u64) -> Option<u64> {
    (ns != u64::MAX).then_some(ns)
}

fn op_line(op: &Op, leg: Option<&TransferLeg>, request_id: Option<String>) -> OpLine {
    OpLine {
        account: op.account,
        kind: kind_name(op.kind).to_owned(),
        outcome: outcome_name(op.outcome).to_owned(),
        resolved: op.resolved,
        flags: flag_names(op.flags),
        amount: op.amount,
        send_ns: op.send_ns,
        recv_ns: time(op.recv_ns),
        balance: op.balance,
        sequence: op.sequence,
        to_account: leg.map(|l| l.to_account),
        to_balance: leg.map_or(0, |l| l.to_balance),
        to_sequence: leg.map_or(0, |l| l.to_sequence),
        request_id,
    }
}

fn read_line(r: &Read) -> ReadLine {
    ReadLine {
        account: r.account,
        not_found: r.not_found,
        send_ns: r.send_ns,
        recv_ns: r.recv_ns,
        balance: r.balance,
        sequence: r.sequence,
    }
}

fn duplicate_line(d: &Duplicate) -> DuplicateLine {
    DuplicateLine {
        op: d.op,
        at_once: d.at_once,
        outcome: outcome_name(d.outcome).to_owned(),
        aborted: d.aborted,
        flags: flag_names(d.flags),
        send_ns: d.send_ns,
        recv_ns: time(d.recv_ns),
        balance: d.balance,
        sequence: d.sequence,
        to_balance: d.to_balance,
        to_sequence: d.to_sequence,
    }
}

fn invalid_line(c: &InvalidCall) -> InvalidLine {
    InvalidLine {
        what: invalid_name(c.what).to_owned(),
        kind: kind_name(c.kind).to_owned(),
        account: (c.account != InvalidCall::NO_INDEX).then_some(c.account),
        op: (c.op != InvalidCall::NO_INDEX).then_some(c.op),
        amount: c.amount,
        expected: c.expected,
        also: (c.also != InvalidCall::NO_CODE).then_some(c.also),
        got: c.got,
        send_ns: c.send_ns,
        recv_ns: c.recv_ns,
    }
}

/// One final line per account whose final read was attempted and told
/// something (a balance, or NOT_FOUND).
fn final_lines(h: &History) -> Vec<FinalLine> {
    h.accounts
        .iter()
        .enumerate()
        .filter(|(_, a)| a.final_balance.is_some() || a.final_sequence.is_some() || a.final_not_found)
        .map(|(i, a)| FinalLine {
            account: i as u32,
            balance: a.final_balance,
            sequence: a.final_sequence,
            not_found: a.final_not_found,
        })
        .collect()
}
