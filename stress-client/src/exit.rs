//! The process exit codes and the one place that decides among them: a run
//! can fail its setup, find a violation, cross a `--threshold` and be
//! inconclusive at once, and exactly one code must come out, the most severe.

use bank_checker::Verdict;

/// The process exit codes (documented in the README, docs/cli.md and `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The run completed and the consistency check passed.
    Passed = 0,
    /// The consistency check found a violation.
    Violation = 1,
    /// Usage, connection or setup failure.
    Failure = 2,
    /// The run completed but what was observed cannot decide the check
    /// (e.g. the server stopped answering mid-run).
    Inconclusive = 3,
    /// The run passed its check but crossed a `--threshold`.
    Thresholds = 4,
}

impl Exit {
    /// Severity, highest first: 2 (usage, connection, setup), 1 (violation),
    /// 4 (thresholds), 3 (inconclusive), 0. A wrong ledger outranks slow
    /// answers; slow answers outrank "could not decide", which is not a finding.
    fn severity(self) -> u8 {
        match self {
            Exit::Passed => 0,
            Exit::Inconclusive => 1,
            Exit::Thresholds => 2,
            Exit::Violation => 3,
            Exit::Failure => 4,
        }
    }

    /// The more severe of the two.
    pub fn max(self, other: Exit) -> Exit {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

/// What a finished run found, as far as the exit code cares.
#[derive(Debug, Clone, Copy)]
pub struct Findings {
    /// Operations completed (none proves nothing: a failure, not a pass).
    pub operations: u64,
    pub verdict: Verdict,
    /// Some `--threshold` was crossed.
    pub thresholds_crossed: bool,
}

/// The exit code of a finished run: the most severe that applies.
pub fn decide(f: Findings) -> Exit {
    let verdict = match f.verdict {
        Verdict::Passed => Exit::Passed,
        Verdict::Failed => Exit::Violation,
        Verdict::Inconclusive => Exit::Inconclusive,
    };
    let nothing_done = if f.operations == 0 {
        Exit::Failure
    } else {
        Exit::Passed
    };
    let crossed = if f.thresholds_crossed {
        Exit::Thresholds
    } else {
        Exit::Passed
    };
    verdict.max(nothing_done).max(crossed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Exit; 5] = [
        Exit::Passed,
        Exit::Violation,
        Exit::Failure,
        Exit::Inconclusive,
        Exit::Thresholds,
    ];

    #[test]
    fn precedence_is_2_then_1_then_4_then_3_then_0() {
        let order = [2, 1, 4, 3, 0];
        for a in ALL {
            for b in ALL {
                let rank = |e: Exit| order.iter().position(|c| *c == e as u8).unwrap();
                let expected = if rank(a) <= rank(b) { a } else { b };
                assert_eq!(a.max(b), expected, "{a:?} with {b:?}");
                assert_eq!(b.max(a), expected, "{b:?} with {a:?}");
            }
        }
    }

    #[test]
    fn a_run_decides_by_its_worst_finding() {
        let f = |operations, verdict, thresholds_crossed| {
            decide(Findings {
                operations,
                verdict,
                thresholds_crossed,
            }) as u8
        };
        assert_eq!(f(10, Verdict::Passed, false), 0);
        assert_eq!(f(10, Verdict::Passed, true), 4);
        assert_eq!(f(10, Verdict::Inconclusive, false), 3);
        assert_eq!(f(10, Verdict::Inconclusive, true), 4);
        assert_eq!(f(10, Verdict::Failed, true), 1);
        assert_eq!(f(0, Verdict::Failed, true), 2);
        assert_eq!(f(0, Verdict::Passed, false), 2);
    }
}
