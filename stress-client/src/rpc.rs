//! The per-RPC breakdown: which call an op travelled as (stream withdrawal,
//! unary withdrawal, deposit, transfer, or an extra balance read) and one
//! latency histogram and call count per kind. Fixed-size arrays indexed by
//! [`Rpc`], so recording takes no lock and allocates nothing per op.

use bank_checker::Kind;
use hdrhistogram::Histogram;

use crate::histogram::record_us;

/// Significant figures of the breakdown histograms (per RPC, per stage):
/// two (1% precision) keep a worker's share small (~2 KB each instead of
/// ~16 KB at three), since every worker keeps one per kind and per stage.
pub const BREAKDOWN_SIGFIGS: u8 = 2;

/// A fresh breakdown histogram (microseconds, auto-resizing).
pub fn new_breakdown_histogram() -> Histogram<u64> {
    Histogram::new(BREAKDOWN_SIGFIGS).expect("2 significant figures is a valid histogram")
}

/// The calls the breakdown tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    WithdrawStream,
    Withdraw,
    Deposit,
    Transfer,
    GetBalance,
}

/// How many kinds of call there are.
pub const RPC_KINDS: usize = 5;

impl Rpc {
    /// Every kind, in report order.
    pub const ALL: [Rpc; RPC_KINDS] = [
        Rpc::WithdrawStream,
        Rpc::Withdraw,
        Rpc::Deposit,
        Rpc::Transfer,
        Rpc::GetBalance,
    ];

    /// The call a money op of `kind` travels as; `streamed` when withdrawals go over `WithdrawStream`.
    pub fn of(kind: Kind, streamed: bool) -> Rpc {
        match kind {
            Kind::Withdraw if streamed => Rpc::WithdrawStream,
            Kind::Withdraw => Rpc::Withdraw,
            Kind::Deposit => Rpc::Deposit,
            Kind::Transfer => Rpc::Transfer,
        }
    }

    /// The JSON key (`per_rpc.<key>`).
    pub fn key(self) -> &'static str {
        match self {
            Rpc::WithdrawStream => "withdraw_stream",
            Rpc::Withdraw => "withdraw",
            Rpc::Deposit => "deposit",
            Rpc::Transfer => "transfer",
            Rpc::GetBalance => "get_balance",
        }
    }

    /// The name people read.
    pub fn label(self) -> &'static str {
        match self {
            Rpc::WithdrawStream => "withdraw (stream)",
            Rpc::Withdraw => "withdraw (unary)",
            Rpc::Deposit => "deposit",
            Rpc::Transfer => "transfer",
            Rpc::GetBalance => "read (GetBalance)",
        }
    }
}

/// Calls and measured latencies per kind of call.
#[derive(Debug, Clone)]
pub struct PerRpc {
    /// Every call made, warmup included.
    pub calls: [u64; RPC_KINDS],
    /// Latency (µs) of the calls sent after warmup.
    pub latency: [Histogram<u64>; RPC_KINDS],
}

impl Default for PerRpc {
    fn default() -> Self {
        PerRpc {
            calls: [0; RPC_KINDS],
            latency: std::array::from_fn(|_| new_breakdown_histogram()),
        }
    }
}

impl PerRpc {
    /// Counts one call of `rpc`; `latency_us` when it was sent after warmup.
    pub fn record(&mut self, rpc: Rpc, latency_us: Option<u64>) {
        self.calls[rpc as usize] += 1;
        if let Some(us) = latency_us {
            self.record_latency(rpc as usize, us);
        }
    }

    /// Records the latency of a call of kind index `rpc` (see [`Rpc::ALL`]),
    /// already counted; an index outside the kinds is ignored.
    pub fn record_latency(&mut self, rpc: usize, latency_us: u64) {
        if let Some(h) = self.latency.get_mut(rpc) {
            record_us(h, latency_us);
        }
    }

    /// Adds another worker's breakdown.
    pub fn add(&mut self, other: &PerRpc) {
        for i in 0..RPC_KINDS {
            self.calls[i] += other.calls[i];
            // Auto-resizing histograms of equal precision always add.
            let _ = self.latency[i].add(&other.latency[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_land_in_their_kind_and_add_up() {
        assert_eq!(Rpc::of(Kind::Withdraw, true), Rpc::WithdrawStream);
        assert_eq!(Rpc::of(Kind::Withdraw, false), Rpc::Withdraw);
        assert_eq!(Rpc::of(Kind::Transfer, true), Rpc::Transfer);
        let mut a = PerRpc::default();
        a.record(Rpc::Deposit, Some(100));
        a.record(Rpc::Deposit, None);
        a.record(Rpc::GetBalance, Some(7));
        let mut total = PerRpc::default();
        total.add(&a);
        total.add(&a);
        assert_eq!(total.calls[Rpc::Deposit as usize], 4);
        assert_eq!(total.latency[Rpc::Deposit as usize].len(), 2);
        assert_eq!(total.latency[Rpc::GetBalance as usize].max(), 7);
        assert_eq!(total.calls[Rpc::Transfer as usize], 0);
    }
}
