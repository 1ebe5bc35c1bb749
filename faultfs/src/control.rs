//! The commands a test writes to the control file `/.faultfs`:
//!
//! - `powerloss` — drop everything not synced;
//! - `powerloss random SEED` — drop a random half of it (seeded);
//! - `powerloss torn SEED` — drop it all but one write, torn at a 4 KiB boundary;
//! - `powerloss at-dirsync N` — arm: the power goes out (everything unsynced
//!   dropped) at the N-th directory fsync from now, before it counts (N ≥ 1).

use crate::model::Loss;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    PowerLoss(Loss),
    /// Lose power at the n-th directory fsync from now.
    AtDirSync(u32),
}

/// Parses one command (surrounding whitespace and a trailing newline ignored).
pub fn parse(bytes: &[u8]) -> Result<Command, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let words: Vec<&str> = text.split_whitespace().collect();
    let seed = |w: &str| {
        w.parse::<u64>()
            .map_err(|_| format!("seed {w:?} is not a number"))
    };
    match words.as_slice() {
        ["powerloss"] | ["powerloss", "all"] => Ok(Command::PowerLoss(Loss::All)),
        ["powerloss", "random", s] => Ok(Command::PowerLoss(Loss::Random(seed(s)?))),
        ["powerloss", "torn", s] => Ok(Command::PowerLoss(Loss::Torn(seed(s)?))),
        ["powerloss", "at-dirsync", n] => match n.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(Command::AtDirSync(n)),
            _ => Err(format!("at-dirsync {n:?}: expected a count of at least 1")),
        },
        _ => Err(format!(
            "{text:?}: expected `powerloss`, `powerloss random SEED`, `powerloss torn SEED` or `powerloss at-dirsync N`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_garbage_is_refused() {
        assert_eq!(parse(b"powerloss\n"), Ok(Command::PowerLoss(Loss::All)));
        assert_eq!(
            parse(b"powerloss random 5"),
            Ok(Command::PowerLoss(Loss::Random(5)))
        );
        assert_eq!(
            parse(b"powerloss torn 9\n"),
            Ok(Command::PowerLoss(Loss::Torn(9)))
        );
        assert!(parse(b"powerloss torn x").is_err());
        assert!(parse(b"reboot").is_err());
        assert_eq!(parse(b"powerloss at-dirsync 2"), Ok(Command::AtDirSync(2)));
        assert!(parse(b"powerloss at-dirsync 0").is_err());
    }
}
