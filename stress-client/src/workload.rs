//! Workload generation: each worker draws its ops from its own seeded RNG, so
//! a seed reproduces the op sequence. Every op gets a request id unique to the
//! run, derived from (run id, worker, op number) so it need not be stored.

use std::sync::Arc;

use bank_checker::Kind;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// How op amounts are chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Amounts {
    /// Uniform over MIN..=MAX.
    Range(u64, u64),
    /// Dealt round-robin: op n of worker w takes `list[(w + n) % len]`, so
    /// `70,80` with two workers reproduces the textbook's two customers.
    List(Vec<u64>),
}

/// The workload's shape, shared by all workers.
#[derive(Debug, Clone)]
pub struct Mix {
    pub amounts: Amounts,
    pub deposit_ratio: f64,
    pub transfer_ratio: f64,
    pub wait_for_funds: f64,
}

/// One op, planned before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub kind: Kind,
    pub account: u32,
    /// Target of a transfer (unused otherwise).
    pub to_account: u32,
    pub amount: u64,
    pub wait_for_funds: bool,
    /// The op's number within its worker; with the worker it names the request id.
    pub number: u64,
}

/// One worker's op generator.
#[derive(Debug)]
pub struct Generator {
    mix: Arc<Mix>,
    accounts: u32,
    rng: SmallRng,
    worker: u32,
    next_number: u64,
}

impl Generator {
    /// The generator of worker `worker` under `seed`, over `accounts` accounts.
    pub fn new(mix: Arc<Mix>, accounts: u32, seed: u64, worker: u32) -> Self {
        // Spread worker seeds apart so neighbouring workers do not correlate.
        let worker_seed = seed ^ u64::from(worker).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Generator {
            mix,
            accounts: accounts.max(1),
            rng: SmallRng::seed_from_u64(worker_seed),
            worker,
            next_number: 0,
        }
    }

    /// The next op.
    pub fn next_op(&mut self) -> Planned {
        let roll: f64 = self.rng.random();
        let transfers_possible = self.accounts >= 2;
        let kind = if roll < self.mix.deposit_ratio {
            Kind::Deposit
        } else if transfers_possible && roll < self.mix.deposit_ratio + self.mix.transfer_ratio {
            Kind::Transfer
        } else {
            Kind::Withdraw
        };
        let account = self.rng.random_range(0..self.accounts);
        let to_account = if kind == Kind::Transfer {
            self.other_account(account)
        } else {
            account
        };
        let amount = self.amount();
        let wait_for_funds = kind == Kind::Withdraw && self.rng.random_bool(self.mix.wait_for_funds);
        let number = self.next_number;
        self.next_number += 1;
        Planned {
            kind,
            account,
            to_account,
            amount,
            wait_for_funds,
            number,
        }
    }

    fn amount(&mut self) -> u64 {
        match &self.mix.amounts {
            Amounts::Range(min, max) => self.rng.random_range(*min..=*max),
            Amounts::List(list) => {
                let turn = u64::from(self.worker).wrapping_add(self.next_number);
                list.get((turn % list.len().max(1) as u64) as usize)
                    .copied()
                    .unwrap_or(1)
            }
        }
    }

    fn other_account(&mut self, account: u32) -> u32 {
        // Uniform over the other accounts: draw from n-1 and skip `account`.
        let pick = self.rng.random_range(0..self.accounts - 1);
        if pick >= account {
            pick + 1
        } else {
            pick
        }
    }
}

/// The id of account `index` in run `run_id`.
pub fn account_id(run_id: &str, index: u32) -> String {
    format!("stress-{run_id}-{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix() -> Arc<Mix> {
        Arc::new(Mix {
            amounts: Amounts::Range(1, 100),
            deposit_ratio: 0.2,
            transfer_ratio: 0.3,
            wait_for_funds: 0.5,
        })
    }

    #[test]
    fn same_seed_same_ops_and_kinds_follow_the_mix() {
        let mut a = Generator::new(mix(), 4, 7, 3);
        let mut b = Generator::new(mix(), 4, 7, 3);
        let ops: Vec<Planned> = (0..10_000).map(|_| a.next_op()).collect();
        assert!(ops.iter().all(|op| *op == b.next_op()));
        let deposits = ops.iter().filter(|o| o.kind == Kind::Deposit).count();
        let transfers = ops.iter().filter(|o| o.kind == Kind::Transfer).count();
        assert!((1_500..2_500).contains(&deposits), "{deposits}");
        assert!((2_500..3_500).contains(&transfers), "{transfers}");
        assert!(ops
            .iter()
            .filter(|o| o.kind == Kind::Transfer)
            .all(|o| o.account != o.to_account));
        assert!(ops.iter().all(|o| (1..=100).contains(&o.amount) && o.account < 4));
    }

    #[test]
    fn listed_amounts_are_dealt_round_robin() {
        let mix = Arc::new(Mix {
            amounts: Amounts::List(vec![70, 80]),
            ..(*mix()).clone()
        });
        let first: Vec<u64> = (0..2)
            .map(|w| Generator::new(Arc::clone(&mix), 1, 9, w).next_op().amount)
            .collect();
        assert_eq!(first, [70, 80]);
        let mut g = Generator::new(mix, 1, 9, 0);
        let amounts: Vec<u64> = (0..4).map(|_| g.next_op().amount).collect();
        assert_eq!(amounts, [70, 80, 70, 80]);
    }

    #[test]
    fn one_account_means_no_transfers() {
        let mut g = Generator::new(mix(), 1, 1, 0);
        assert!((0..1000).all(|_| g.next_op().kind != Kind::Transfer));
    }
}
