//! Reads a history file back into the checker's [`History`]: the inverse of
//! `write`. Whatever is wrong (not JSON, a line out of place, a count that
//! does not match the end line, a reference to nothing, a truncated file)
//! is an error naming the file and the line; nothing is guessed. The lines
//! a history holds millions of take the fast path (`hot`) when plainly
//! spelled; every other line, and any line that path declines, goes through
//! serde (`schema`), which also words the errors.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use bank_checker::{AccountState, Duplicate, History, InvalidCall, Op, Outcome, Read, TransferLeg};

use super::hot::{self, Hot};
use super::names::{flags, invalid, kind, outcome};
use super::schema::{
    DuplicateLine, EndLine, FinalLine, Header, InvalidLine, Line, OpLine, ReadLine, FORMAT, VERSION,
};

/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// The read buffer: big enough that a line rarely straddles two fills.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// One file, read.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub header: Header,
    pub end: EndLine,
    pub history: History,
    /// (op number, request id) of the ops of unknown outcome whose line
    /// gave one, sorted by op: what `check --target` settles.
    pub request_ids: Vec<(u32, String)>,
}

/// Reads the history at `path` (zstd-compressed or not, told by its first bytes).
pub fn read(path: &Path) -> Result<Parsed, String> {
    let fail = |e: std::io::Error| format!("{}: cannot read: {e}", path.display());
    let mut file = BufReader::with_capacity(READ_BUFFER_BYTES, File::open(path).map_err(fail)?);
    let compressed = file.fill_buf().map_err(fail)?.starts_with(&ZSTD_MAGIC);
    let name = path.display().to_string();
    match compressed {
        true => {
            let decoder = zstd::Decoder::with_buffer(file).map_err(fail)?;
            parse(BufReader::with_capacity(READ_BUFFER_BYTES, decoder), &name)
        }
        false => {
            // A plain file's size bounds its ops: room for them at once
            // spares the copies (and page faults) of a growing vector.
            let bytes = file.get_ref().metadata().map_or(0, |m| m.len());
            let ops = usize::try_from(bytes / OP_LINE_BYTES_MIN).unwrap_or(0);
            parse_into(file, &name, ops)
        }
    }
}

/// About the shortest op line (`{"type":"op","account":0,"kind":"deposit",`
/// `"outcome":"unknown","amount":1,"send_ns":0,"recv_ns":null}` and a newline):
/// a plain file's size over it bounds its ops closely enough to size the
/// vector once. Only a hint: more ops still fit (the vector grows).
const OP_LINE_BYTES_MIN: u64 = 100;

/// Parses the lines of one history; `name` is used in the messages.
pub fn parse(input: impl BufRead, name: &str) -> Result<Parsed, String> {
    parse_into(input, name, 0)
}

/// As [`parse`], with room made for `ops` ops at once.
fn parse_into(mut input: impl BufRead, name: &str, ops: usize) -> Result<Parsed, String> {
    let mut state = Builder::default();
    state.h.ops.reserve_exact(ops);
    // One buffer for every line: no allocation per line.
    let mut buf = Vec::with_capacity(512);
    let mut number = 0u64;
    let at = |n: u64, msg: String| format!("{name}:{n}: {msg}");
    loop {
        buf.clear();
        let bytes = input
            .read_until(b'\n', &mut buf)
            .map_err(|e| at(number + 1, format!("cannot read: {e}")))?;
        if bytes == 0 {
            break;
        }
        number += 1;
        if state.end.is_some() {
            return Err(at(number, "text after the end line".into()));
        }
        state.line(buf.trim_ascii_end()).map_err(|m| at(number, m))?;
    }
    state.finish().map_err(|m| format!("{name}:{}: {m}", number + 1))
}

/// The history as it is being read.
#[derive(Default)]
struct Builder {
    header: Option<Header>,
    end: Option<EndLine>,
    h: History,
    finals: u64,
    request_ids: Vec<(u32, String)>,
}

impl Builder {
    /// Takes one line (without its newline).
    fn line(&mut self, text: &[u8]) -> Result<(), String> {
        // The fast path only past the header, which must come first.
        if self.header.is_some() {
            match hot::parse(text) {
                Some(Hot::Op(op, to, id)) => return self.push_op(op, to, id),
                Some(Hot::Read(r)) => return self.push_read(r),
                Some(Hot::Duplicate(d)) => return self.push_duplicate(d),
                None => {}
            }
        }
        let line: Line = serde_json::from_slice(text).map_err(|e| format!("not a history line: {e}"))?;
        self.take(line)
    }

    fn take(&mut self, line: Line) -> Result<(), String> {
        let Some(_) = &self.header else {
            return match line {
                Line::Header(h) => self.start(h),
                _ => Err("the first line must be the header (type \"header\")".into()),
            };
        };
        match line {
            Line::Header(_) => Err("a second header".into()),
            Line::Account(a) => {
                if !self.h.ops.is_empty() {
                    return Err("account lines must come before the ops".into());
                }
                self.h
                    .accounts
                    .push(AccountState::opened(a.id, a.initial_balance));
                Ok(())
            }
            Line::Op(o) => self.op(o),
            Line::Read(r) => self.read(r),
            Line::Duplicate(d) => self.duplicate(d),
            Line::Invalid(c) => self.invalid(c),
            Line::Final(f) => self.final_state(f),
            Line::End(e) => {
                self.end = Some(e);
                Ok(())
            }
        }
    }

    fn start(&mut self, h: Header) -> Result<(), String> {
        if h.format != FORMAT {
            return Err(format!("format {:?} is not {FORMAT:?}", h.format));
        }
        if h.version != VERSION {
            return Err(format!(
                "version {} is not supported (this build reads version {VERSION})",
                h.version
            ));
        }
        self.header = Some(h);
        Ok(())
    }

    fn account(&self, a: u32) -> Result<u32, String> {
        match (a as usize) < self.h.accounts.len() {
            true => Ok(a),
            false => Err(format!(
                "account {a} is not declared (there are {})",
                self.h.accounts.len()
            )),
        }
    }

    fn op(&mut self, o: OpLine) -> Result<(), String> {
        let op = Op {
            account: o.account,
            kind: kind(&o.kind)?,
            outcome: outcome(&o.outcome)?,
            resolved: o.resolved,
            flags: flags(&o.flags)?,
            amount: o.amount,
            send_ns: o.send_ns,
            recv_ns: o.recv_ns.unwrap_or(u64::MAX),
            balance: o.balance,
            sequence: o.sequence,
        };
        let to = o.to_account.map(|to| (to, o.to_balance, o.to_sequence));
        self.push_op(op, to, o.request_id.as_deref())
    }

    /// Checks what `op` names and adds it, with its transfer target
    /// `(to_account, to_balance, to_sequence)` and its request id.
    fn push_op(&mut self, op: Op, to: Option<(u32, u64, u64)>, id: Option<&str>) -> Result<(), String> {
        let index = u32::try_from(self.h.ops.len()).map_err(|_| "more than 2^32 ops".to_owned())?;
        self.account(op.account)?;
        match (op.kind == bank_checker::Kind::Transfer, to) {
            (true, Some((to, to_balance, to_sequence))) => self.h.transfers.push(TransferLeg {
                op: index,
                to_account: self.account(to)?,
                to_balance,
                to_sequence,
            }),
            (true, None) => return Err("a transfer needs to_account".into()),
            (false, Some(_)) => return Err("only a transfer has to_account".into()),
            (false, None) => {}
        }
        match id {
            Some("") => return Err("request_id is empty".into()),
            // Only an op still in doubt is ever asked about: keep only those.
            Some(id) if op.outcome == Outcome::Unknown => self.request_ids.push((index, id.to_owned())),
            _ => {}
        }
        self.h.ops.push(op);
        Ok(())
    }

    fn read(&mut self, r: ReadLine) -> Result<(), String> {
        self.push_read(Read {
            account: r.account,
            not_found: r.not_found,
            send_ns: r.send_ns,
            recv_ns: r.recv_ns,
            balance: r.balance,
            sequence: r.sequence,
        })
    }

    fn push_read(&mut self, r: Read) -> Result<(), String> {
        self.account(r.account)?;
        self.h.reads.push(r);
        Ok(())
    }

    /// Duplicates and invalid calls name ops by number, so they come after them.
    fn op_ref(&self, op: u32) -> Result<u32, String> {
        match (op as usize) < self.h.ops.len() {
            true => Ok(op),
            false => Err(format!(
                "op {op} does not come before this line (ops so far: {})",
                self.h.ops.len()
            )),
        }
    }

    fn duplicate(&mut self, d: DuplicateLine) -> Result<(), String> {
        self.push_duplicate(Duplicate {
            op: d.op,
            at_once: d.at_once,
            outcome: outcome(&d.outcome)?,
            aborted: d.aborted,
            flags: flags(&d.flags)?,
            send_ns: d.send_ns,
            recv_ns: d.recv_ns.unwrap_or(u64::MAX),
            balance: d.balance,
            sequence: d.sequence,
            to_balance: d.to_balance,
            to_sequence: d.to_sequence,
        })
    }

    fn push_duplicate(&mut self, d: Duplicate) -> Result<(), String> {
        self.op_ref(d.op)?;
        self.h.duplicates.push(d);
        Ok(())
    }

    fn invalid(&mut self, c: InvalidLine) -> Result<(), String> {
        let account = c.account.map(|a| self.account(a)).transpose()?;
        let op = c.op.map(|o| self.op_ref(o)).transpose()?;
        self.h.invalid.push(InvalidCall {
            what: invalid(&c.what)?,
            kind: kind(&c.kind)?,
            account: account.unwrap_or(InvalidCall::NO_INDEX),
            op: op.unwrap_or(InvalidCall::NO_INDEX),
            amount: c.amount,
            expected: c.expected,
            also: c.also.unwrap_or(InvalidCall::NO_CODE),
            got: c.got,
            send_ns: c.send_ns,
            recv_ns: c.recv_ns,
        });
        Ok(())
    }

    fn final_state(&mut self, f: FinalLine) -> Result<(), String> {
        let index = self.account(f.account)? as usize;
        let a = &mut self.h.accounts[index];
        if a.final_balance.is_some() || a.final_not_found {
            return Err(format!("a second final line for account {}", f.account));
        }
        (a.final_balance, a.final_sequence, a.final_not_found) = (f.balance, f.sequence, f.not_found);
        self.finals += 1;
        Ok(())
    }

    fn finish(self) -> Result<Parsed, String> {
        let header = self.header.ok_or("empty file: no header line")?;
        let end = self
            .end
            .ok_or("truncated: no end line (the writer did not finish)")?;
        let h = self.h;
        let counted = [
            ("accounts", h.accounts.len() as u64, end.accounts),
            ("ops", h.ops.len() as u64, end.ops),
            ("reads", h.reads.len() as u64, end.reads),
            ("duplicates", h.duplicates.len() as u64, end.duplicates),
            ("invalid", h.invalid.len() as u64, end.invalid),
            ("finals", self.finals, end.finals),
        ];
        if let Some((what, got, said)) = counted.iter().find(|(_, got, said)| got != said) {
            return Err(format!("the end line counts {said} {what}, the file holds {got}"));
        }
        Ok(Parsed {
            header,
            end,
            history: h,
            request_ids: self.request_ids,
        })
    }
}
