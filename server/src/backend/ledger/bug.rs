//! The names of the bug zoo's bugs (`--inject-bug NAME`) and what each does;
//! where each is planted is `zoo` (and the backends' own hooks).

/// One bug the server can be told to plant; `None` (no bug) by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InjectedBug {
    #[default]
    None,
    LostUpdate,
    NonAtomicTransfer,
    DoubleApplyRetry,
    StaleRead,
    PartialApply,
    BadOutcome,
}

impl InjectedBug {
    /// Every real bug (not `None`), in the order the README lists them.
    pub const ALL: [InjectedBug; 6] = [
        InjectedBug::LostUpdate,
        InjectedBug::NonAtomicTransfer,
        InjectedBug::DoubleApplyRetry,
        InjectedBug::StaleRead,
        InjectedBug::PartialApply,
        InjectedBug::BadOutcome,
    ];

    /// The bug's name on the command line (`--inject-bug NAME`).
    pub fn name(self) -> &'static str {
        match self {
            InjectedBug::None => "none",
            InjectedBug::LostUpdate => "lost-update",
            InjectedBug::NonAtomicTransfer => "non-atomic-transfer",
            InjectedBug::DoubleApplyRetry => "double-apply-retry",
            InjectedBug::StaleRead => "stale-read",
            InjectedBug::PartialApply => "partial-apply",
            InjectedBug::BadOutcome => "bad-outcome",
        }
    }

    /// What the bug does, in one line (help text and the startup warning).
    pub fn about(self) -> &'static str {
        match self {
            InjectedBug::None => "no bug",
            InjectedBug::LostUpdate => "withdrawals read, sleep and write back WITHOUT the lock",
            InjectedBug::NonAtomicTransfer => {
                "a transfer debits and credits in two separate critical sections"
            }
            InjectedBug::DoubleApplyRetry => {
                "a retried approved request is answered from the log AND applied again"
            }
            InjectedBug::StaleRead => "GetBalance answers from a cache refreshed every 50 ms",
            InjectedBug::PartialApply => {
                "1 in 10 deposits/withdrawals applies half its amount and answers INTERNAL"
            }
            InjectedBug::BadOutcome => "1 in 20 answers carries the outcome value 7 (not in the enum)",
        }
    }
}
