//! The words a history file uses for the checker's enums and flag bits, both
//! ways. One table per enum, so the writer and the reader cannot disagree.

use bank_checker::{Invalid, Kind, Op, Outcome};

const KINDS: [(Kind, &str); 3] = [
    (Kind::Deposit, "deposit"),
    (Kind::Withdraw, "withdraw"),
    (Kind::Transfer, "transfer"),
];

const OUTCOMES: [(Outcome, &str); 5] = [
    (Outcome::Approved, "approved"),
    (Outcome::InsufficientFunds, "insufficient_funds"),
    (Outcome::NotApplied, "not_applied"),
    (Outcome::Unknown, "unknown"),
    (Outcome::Invalid, "invalid"),
];

const INVALIDS: [(Invalid, &str); 3] = [
    (Invalid::ZeroAmount, "zero_amount"),
    (Invalid::UnknownAccount, "unknown_account"),
    (Invalid::ReusedId, "reused_id"),
];

/// The flag bits of [`Op::flags`] (also a duplicate's) by name.
const FLAGS: [(u8, &str); 7] = [
    (Op::REPLAYED, "replayed"),
    (Op::WRONG_ID, "wrong_id"),
    (Op::NOT_FOUND, "not_found"),
    (Op::FROM_COPY, "from_copy"),
    (Op::WAITS, "waits"),
    (Op::LOOKUP_NOT_FOUND, "lookup_not_found"),
    (Op::ABORTED, "aborted"),
];

fn name_of<T: PartialEq + Copy>(table: &[(T, &'static str)], value: T) -> &'static str {
    table.iter().find(|(v, _)| *v == value).map_or("?", |(_, n)| n)
}

fn value_of<T: Copy>(table: &[(T, &'static str)], name: &str, what: &str) -> Result<T, String> {
    table
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(v, _)| *v)
        .ok_or_else(|| {
            let known: Vec<&str> = table.iter().map(|(_, n)| *n).collect();
            format!("unknown {what} {name:?} (known: {})", known.join(", "))
        })
}

pub fn kind_name(k: Kind) -> &'static str {
    name_of(&KINDS, k)
}

pub fn kind(name: &str) -> Result<Kind, String> {
    value_of(&KINDS, name, "kind")
}

pub fn outcome_name(o: Outcome) -> &'static str {
    name_of(&OUTCOMES, o)
}

pub fn outcome(name: &str) -> Result<Outcome, String> {
    value_of(&OUTCOMES, name, "outcome")
}

pub fn invalid_name(i: Invalid) -> &'static str {
    name_of(&INVALIDS, i)
}

pub fn invalid(name: &str) -> Result<Invalid, String> {
    value_of(&INVALIDS, name, "invalid call")
}

/// The names of the bits set in `flags`, in table order.
pub fn flag_names(flags: u8) -> Vec<String> {
    FLAGS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, n)| (*n).to_owned())
        .collect()
}

/// The value called `name`, spelled in bytes (the reader's fast path).
fn lookup<T: Copy>(table: &[(T, &'static str)], name: &[u8]) -> Option<T> {
    table.iter().find(|(_, n)| n.as_bytes() == name).map(|(v, _)| *v)
}

/// The kind called `name` (`None`: no such kind).
pub fn kind_of(name: &[u8]) -> Option<Kind> {
    lookup(&KINDS, name)
}

/// The outcome called `name` (`None`: no such outcome).
pub fn outcome_of(name: &[u8]) -> Option<Outcome> {
    lookup(&OUTCOMES, name)
}

/// The bit of the flag called `name` (`None`: no such flag).
pub fn flag_bit(name: &[u8]) -> Option<u8> {
    lookup(&FLAGS, name)
}

/// The bits named in `names`.
pub fn flags(names: &[String]) -> Result<u8, String> {
    names
        .iter()
        .try_fold(0u8, |acc, n| Ok(acc | value_of(&FLAGS, n, "flag")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_bit_round_trips() {
        let all = FLAGS.iter().fold(0u8, |acc, (bit, _)| acc | bit);
        assert_eq!(flags(&flag_names(all)), Ok(all));
        assert!(flags(&["bogus".to_owned()]).unwrap_err().contains("bogus"));
        assert_eq!(
            outcome(outcome_name(Outcome::InsufficientFunds)),
            Ok(Outcome::InsufficientFunds)
        );
    }
}
