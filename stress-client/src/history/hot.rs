//! The fast path of the reader for the lines a history holds millions of
//! (`op`, `read`, `duplicate`): a small scanner over the line's bytes that
//! builds the checker's record directly, without allocating and without
//! serde's buffering of internally tagged enums (most of P14's parsing
//! time). It accepts only the plain spelling: any JSON it does not expect
//! (an escaped string, a float, a field twice or unknown, a missing one, a
//! word the names table does not know) gives `None`, and the line goes
//! through serde (`schema`), which accepts what is valid and words the error
//! for what is not. So this path never decides whether a line is wrong.

use bank_checker::{Duplicate, Op, Read};

use super::names::{flag_bit, kind_of, outcome_of};

/// A hot line, parsed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hot<'a> {
    /// An op, its transfer target `(to_account, to_balance, to_sequence)`
    /// if the line gave `to_account`, and its request id.
    Op(Op, Option<(u32, u64, u64)>, Option<&'a str>),
    Read(Read),
    Duplicate(Duplicate),
}

/// Parses `line` (one JSON object, no newline) if it is a plainly spelled
/// op, read or duplicate line; `None` otherwise.
pub fn parse(line: &[u8]) -> Option<Hot<'_>> {
    let mut s = Scan { b: line, i: 0 };
    let mut f = Fields::default();
    s.byte(b'{')?;
    if !s.peek_is(b'}') {
        loop {
            let key = s.string()?;
            s.byte(b':')?;
            f.take(key, &mut s)?;
            if s.peek_is(b'}') {
                break;
            }
            s.byte(b',')?;
        }
    }
    s.byte(b'}')?;
    s.end()?;
    f.build()
}

/// Every field a hot line may carry, as seen so far (`None`: not given).
#[derive(Default)]
struct Fields<'a> {
    kind_of_line: Option<&'a [u8]>,
    account: Option<u32>,
    op: Option<u32>,
    kind: Option<&'a [u8]>,
    outcome: Option<&'a [u8]>,
    resolved: Option<bool>,
    not_found: Option<bool>,
    at_once: Option<bool>,
    aborted: Option<bool>,
    flags: Option<u8>,
    amount: Option<u64>,
    send_ns: Option<u64>,
    /// `Some(None)`: `null`.
    recv_ns: Option<Option<u64>>,
    balance: Option<u64>,
    sequence: Option<u64>,
    to_account: Option<u32>,
    to_balance: Option<u64>,
    to_sequence: Option<u64>,
    request_id: Option<&'a [u8]>,
}

/// Sets `slot` once: a second time is a duplicate field (serde's to word).
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

impl<'a> Fields<'a> {
    fn take(&mut self, key: &[u8], s: &mut Scan<'a>) -> Option<()> {
        match key {
            b"type" => once(&mut self.kind_of_line, s.string()?),
            b"account" => once(&mut self.account, s.u32()?),
            b"op" => once(&mut self.op, s.u32()?),
            b"kind" => once(&mut self.kind, s.string()?),
            b"outcome" => once(&mut self.outcome, s.string()?),
            b"resolved" => once(&mut self.resolved, s.bool()?),
            b"not_found" => once(&mut self.not_found, s.bool()?),
            b"at_once" => once(&mut self.at_once, s.bool()?),
            b"aborted" => once(&mut self.aborted, s.bool()?),
            b"flags" => once(&mut self.flags, s.flags()?),
            b"amount" => once(&mut self.amount, s.u64()?),
            b"send_ns" => once(&mut self.send_ns, s.u64()?),
            b"recv_ns" => once(&mut self.recv_ns, s.nullable_u64()?),
            b"balance" => once(&mut self.balance, s.u64()?),
            b"sequence" => once(&mut self.sequence, s.u64()?),
            b"to_account" => once(&mut self.to_account, s.u32()?),
            b"to_balance" => once(&mut self.to_balance, s.u64()?),
            b"to_sequence" => once(&mut self.to_sequence, s.u64()?),
            b"request_id" => once(&mut self.request_id, s.string()?),
            _ => None,
        }
    }

    fn build(self) -> Option<Hot<'a>> {
        match self.kind_of_line? {
            b"op" => self.op_line(),
            b"read" => self.read_line(),
            b"duplicate" => self.duplicate_line(),
            _ => None,
        }
    }

    fn op_line(self) -> Option<Hot<'a>> {
        let only_op = self.op.is_none() && self.not_found.is_none() && self.at_once.is_none();
        if !only_op || self.aborted.is_some() {
            return None;
        }
        let op = Op {
            account: self.account?,
            kind: kind_of(self.kind?)?,
            outcome: outcome_of(self.outcome?)?,
            resolved: self.resolved.unwrap_or(false),
            flags: self.flags.unwrap_or(0),
            amount: self.amount?,
            send_ns: self.send_ns?,
            recv_ns: self.recv_ns?.unwrap_or(u64::MAX),
            balance: self.balance.unwrap_or(0),
            sequence: self.sequence.unwrap_or(0),
        };
        let to = self
            .to_account
            .map(|to| (to, self.to_balance.unwrap_or(0), self.to_sequence.unwrap_or(0)));
        // A leg's numbers without its account: let serde word it (or accept it).
        if to.is_none() && (self.to_balance.is_some() || self.to_sequence.is_some()) {
            return None;
        }
        // Only a request id is text the caller keeps: UTF-8 checked here.
        let id = match self.request_id {
            Some(id) => Some(std::str::from_utf8(id).ok()?),
            None => None,
        };
        Some(Hot::Op(op, to, id))
    }

    fn read_line(self) -> Option<Hot<'a>> {
        let others = self.op.is_some()
            || self.kind.is_some()
            || self.outcome.is_some()
            || self.resolved.is_some()
            || self.at_once.is_some()
            || self.aborted.is_some()
            || self.flags.is_some()
            || self.amount.is_some();
        let more = self.to_account.is_some()
            || self.to_balance.is_some()
            || self.to_sequence.is_some()
            || self.request_id.is_some();
        if others || more {
            return None;
        }
        Some(Hot::Read(Read {
            account: self.account?,
            not_found: self.not_found.unwrap_or(false),
            send_ns: self.send_ns?,
            // A read's answer time is required and never null.
            recv_ns: self.recv_ns??,
            balance: self.balance.unwrap_or(0),
            sequence: self.sequence.unwrap_or(0),
        }))
    }

    fn duplicate_line(self) -> Option<Hot<'a>> {
        let others = self.account.is_some()
            || self.kind.is_some()
            || self.resolved.is_some()
            || self.not_found.is_some()
            || self.amount.is_some()
            || self.to_account.is_some()
            || self.request_id.is_some();
        if others {
            return None;
        }
        Some(Hot::Duplicate(Duplicate {
            op: self.op?,
            at_once: self.at_once?,
            outcome: outcome_of(self.outcome?)?,
            aborted: self.aborted.unwrap_or(false),
            flags: self.flags.unwrap_or(0),
            send_ns: self.send_ns?,
            recv_ns: self.recv_ns?.unwrap_or(u64::MAX),
            balance: self.balance.unwrap_or(0),
            sequence: self.sequence.unwrap_or(0),
            to_balance: self.to_balance.unwrap_or(0),
            to_sequence: self.to_sequence.unwrap_or(0),
        }))
    }
}

/// A cursor over one line's bytes; whitespace between tokens is skipped.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn skip_ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn peek_is(&mut self, c: u8) -> bool {
        self.skip_ws();
        self.b.get(self.i) == Some(&c)
    }

    fn byte(&mut self, c: u8) -> Option<()> {
        self.peek_is(c).then(|| self.i += 1)
    }

    fn end(&mut self) -> Option<()> {
        self.skip_ws();
        (self.i == self.b.len()).then_some(())
    }

    /// A string of printable ASCII without escapes, as bytes (anything
    /// else, UTF-8 included, is serde's job).
    fn string(&mut self) -> Option<&'a [u8]> {
        self.byte(b'"')?;
        let start = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' => return None,
                0x20..=0x7e => self.i += 1,
                _ => return None,
            }
        }
        let text = &self.b[start..self.i];
        self.i += 1;
        Some(text)
    }

    /// An unsigned integer as JSON spells it: digits, no leading zero.
    fn u64(&mut self) -> Option<u64> {
        self.skip_ws();
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(d) = self.b.get(self.i).filter(|c| c.is_ascii_digit()) {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.i += 1;
        }
        let digits = self.i - start;
        let leading_zero = digits > 1 && self.b[start] == b'0';
        // A fraction or exponent follows: not an integer here.
        let more = matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E'));
        (digits > 0 && !leading_zero && !more).then_some(n)
    }

    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.u64()?).ok()
    }

    fn nullable_u64(&mut self) -> Option<Option<u64>> {
        match self.word(b"null") {
            true => Some(None),
            false => self.u64().map(Some),
        }
    }

    fn bool(&mut self) -> Option<bool> {
        if self.word(b"true") {
            return Some(true);
        }
        self.word(b"false").then_some(false)
    }

    /// Consumes `w` if the input continues with it.
    fn word(&mut self, w: &[u8]) -> bool {
        self.skip_ws();
        let hit = self.b[self.i..].starts_with(w);
        if hit {
            self.i += w.len();
        }
        hit
    }

    /// An array of flag names, as their bits.
    fn flags(&mut self) -> Option<u8> {
        self.byte(b'[')?;
        let mut bits = 0;
        if self.byte(b']').is_some() {
            return Some(0);
        }
        loop {
            bits |= flag_bit(self.string()?)?;
            if self.byte(b']').is_some() {
                return Some(bits);
            }
            self.byte(b',')?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::schema::{Line, OpLine};

    /// True when serde reads `line` as a history line.
    fn by_serde(line: &str) -> bool {
        serde_json::from_str::<Line>(line).is_ok()
    }

    fn op_line(o: &OpLine) -> String {
        serde_json::to_string(&Line::Op(o.clone())).unwrap()
    }

    #[test]
    fn plain_lines_parse_as_serde_reads_them() {
        let op = r#"{"type":"op","account":3,"kind":"transfer","outcome":"approved","flags":["replayed","waits"],"amount":5,"send_ns":10,"recv_ns":20,"balance":7,"sequence":2,"to_account":1,"to_balance":9,"to_sequence":4,"request_id":"r-1-a"}"#;
        let Some(Hot::Op(o, to, id)) = parse(op.as_bytes()) else {
            panic!("not parsed")
        };
        assert_eq!((o.account, o.amount, o.send_ns, o.recv_ns), (3, 5, 10, 20));
        assert_eq!((o.flags, o.balance, o.sequence), (Op::REPLAYED | Op::WAITS, 7, 2));
        assert_eq!((to, id), (Some((1, 9, 4)), Some("r-1-a")));
        let unknown = r#" { "type" : "op" , "account":0,"kind":"deposit","outcome":"unknown","amount":1,"send_ns":0,"recv_ns":null } "#;
        let Some(Hot::Op(o, None, None)) = parse(unknown.as_bytes()) else {
            panic!("not parsed")
        };
        assert_eq!(o.recv_ns, u64::MAX);
        let read = r#"{"type":"read","account":1,"send_ns":1,"recv_ns":2,"balance":3,"sequence":4}"#;
        assert!(matches!(parse(read.as_bytes()), Some(Hot::Read(r)) if r.balance == 3 && r.recv_ns == 2));
        let dup = r#"{"type":"duplicate","op":0,"at_once":true,"outcome":"unknown","aborted":true,"send_ns":1,"recv_ns":null}"#;
        assert!(
            matches!(parse(dup.as_bytes()), Some(Hot::Duplicate(d)) if d.aborted && d.recv_ns == u64::MAX)
        );
        let o = OpLine {
            account: 1,
            kind: "withdraw".into(),
            outcome: "insufficient_funds".into(),
            resolved: true,
            flags: vec!["aborted".into()],
            amount: u64::MAX,
            send_ns: 0,
            recv_ns: Some(9),
            balance: 0,
            sequence: 1,
            to_account: None,
            to_balance: 0,
            to_sequence: 0,
            request_id: None,
        };
        let Some(Hot::Op(got, None, None)) = parse(op_line(&o).as_bytes()) else {
            panic!("written line not parsed")
        };
        assert_eq!(
            (got.amount, got.resolved, got.flags),
            (u64::MAX, true, Op::ABORTED)
        );
    }

    #[test]
    fn anything_unusual_is_left_to_serde() {
        for line in [
            r#"{"type":"op","account":0,"kind":"deposit","outcome":"approved","amount":1,"send_ns":0,"recv_ns":1,"extra":1}"#,
            r#"{"type":"op","account":0,"account":0,"kind":"deposit","outcome":"approved","amount":1,"send_ns":0,"recv_ns":1}"#,
            r#"{"type":"op","account":0,"kind":"deposit","outcome":"approved","amount":1.0,"send_ns":0,"recv_ns":1}"#,
            r#"{"type":"op","account":0,"kind":"deposit","outcome":"approved","amount":01,"send_ns":0,"recv_ns":1}"#,
            r#"{"type":"op","account":0,"kind":"depos\u0069t","outcome":"approved","amount":1,"send_ns":0,"recv_ns":1}"#,
            r#"{"type":"op","account":0,"kind":"deposit","outcome":"maybe","amount":1,"send_ns":0,"recv_ns":1}"#,
            r#"{"type":"op","account":0,"kind":"deposit","outcome":"approved","amount":1,"send_ns":0}"#,
            r#"{"type":"op","account":0,"kind":"deposit","outcome":"approved","amount":18446744073709551616,"send_ns":0,"recv_ns":1}"#,
            r#"{"type":"read","account":0,"send_ns":0,"recv_ns":null}"#,
            r#"{"type":"read","account":0,"send_ns":0,"recv_ns":1,"op":2}"#,
            r#"{"type":"duplicate","op":0,"outcome":"approved","send_ns":0,"recv_ns":1}"#,
            r#"{"type":"header"}"#,
            r#"{"type":"op"} x"#,
            r#"{"type":"read","account":0,"send_ns":0,"recv_ns":1,}"#,
        ] {
            assert!(parse(line.as_bytes()).is_none(), "{line}");
        }
        // The escaped spelling is valid: serde reads it.
        assert!(by_serde(
            r#"{"type":"op","account":0,"kind":"depos\u0069t","outcome":"approved","amount":1,"send_ns":0,"recv_ns":1}"#
        ));
    }
}
