//! The calls the fast path makes, as the wire layer knows them: which request
//! head a stream opens with. A leaf below both the wire layer (which encodes
//! the heads) and `conn.rs` (which builds them), so the wire imports nothing
//! from the layer above it.

/// The calls the load makes on the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastCall {
    Withdraw,
    Deposit,
    Transfer,
    WithdrawStream,
}

impl FastCall {
    /// Every call kind, in the order the request heads are built.
    pub const ALL: [FastCall; 4] = [
        FastCall::Withdraw,
        FastCall::Deposit,
        FastCall::Transfer,
        FastCall::WithdrawStream,
    ];

    /// The `:path` of its calls (after the target's path prefix).
    pub fn path(self) -> &'static str {
        match self {
            FastCall::Withdraw => "/bank.v1.Bank/Withdraw",
            FastCall::Deposit => "/bank.v1.Bank/Deposit",
            FastCall::Transfer => "/bank.v1.Bank/Transfer",
            FastCall::WithdrawStream => "/bank.v1.Bank/WithdrawStream",
        }
    }
}
