//! Extra calls a worker makes on top of its money ops, to test two parts of
//! the contract under load: balance reads (`--read-ratio`, after a money op
//! completes) and retries (`--duplicate-ratio`: the op is sent a second time
//! under the same request id, half at once, half after the first answer),
//! and calls that must be refused (`--invalid-ratio`, see [`super::invalid`]).
//! They take no sequence number, count in neither `--requests` nor the
//! money-op throughput, and are bounded per worker. Their own seeded RNG
//! keeps the money-op sequence of a seed the same whatever the ratios.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::h2fast::Conn;
use crate::transport::Bank;
use bank::v1 as pb;
use futures::stream::FuturesUnordered;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tonic::Status;

use super::invalid::{self, InvalidPlan, Invalids};
use super::requests::{call_unary, InFlight, Names};
use crate::bound::{request, within};
use crate::recorder::{Recorder, Timing};
use crate::workload::Planned;

/// Extra calls one worker keeps in flight at most; past it, it skips them.
pub const EXTRAS_IN_FLIGHT_MAX: usize = 64;

/// A finished extra call.
pub enum Done {
    Read {
        account: u32,
        sent: Instant,
        received: Instant,
        reply: Result<pb::Account, Status>,
    },
    Copy {
        planned: Planned,
        sent: Instant,
        received: Instant,
        reply: Result<pb::OperationResult, Status>,
    },
    Invalid {
        plan: InvalidPlan,
        sent: Instant,
        received: Instant,
        /// The gRPC status code answered (0: OK).
        code: u8,
    },
}

type ExtraFuture = Pin<Box<dyn Future<Output = Done> + Send>>;

/// A second send and what is known of the pair so far.
struct Copy {
    at_once: bool,
    /// The original's index in the recorder, once it is recorded.
    op: Option<u32>,
    /// The copy's answer, if it came before the original was recorded.
    answer: Option<(Timing, Result<pb::OperationResult, Status>)>,
}

/// One worker's extra calls.
pub struct Extras {
    rng: SmallRng,
    read_ratio: f64,
    duplicate_ratio: f64,
    accounts: u32,
    timeout: Duration,
    pub calls: FuturesUnordered<ExtraFuture>,
    /// Copies by the op number of their original.
    copies: HashMap<u64, Copy>,
    invalids: Invalids,
    /// The worker's fast-path connection, if money ops take it: invalid
    /// calls go the same way (see [`invalid::call`]).
    fast: Option<Conn>,
}

/// What the extra calls of a worker are asked to be.
#[derive(Debug, Clone, Copy)]
pub struct Ratios {
    pub read: f64,
    pub duplicate: f64,
    pub invalid: f64,
    /// A `--token` is sent (an unknown account may then be PERMISSION_DENIED).
    pub token: bool,
}

impl Extras {
    pub fn new(seed: u64, worker: u32, ratios: Ratios, accounts: u32, timeout: Duration) -> Extras {
        let stream = seed ^ 0x5EED_E17A ^ u64::from(worker).wrapping_mul(0xD1B5_4A32_D192_ED03);
        Extras {
            rng: SmallRng::seed_from_u64(stream),
            read_ratio: ratios.read,
            duplicate_ratio: ratios.duplicate,
            accounts: accounts.max(1),
            timeout,
            calls: FuturesUnordered::new(),
            copies: HashMap::new(),
            invalids: Invalids::new(seed, worker, ratios.invalid, accounts, ratios.token),
            fast: None,
        }
    }

    /// Invalid calls take the fast path from now on when `fast` is given.
    pub fn use_fast_path(&mut self, fast: Option<Conn>) {
        self.fast = fast;
    }

    /// True while an extra call is in flight or a copy waits for its pair.
    pub fn busy(&self) -> bool {
        !self.calls.is_empty() || !self.copies.is_empty()
    }

    fn room(&self) -> bool {
        self.calls.len() < EXTRAS_IN_FLIGHT_MAX
    }

    /// Called as a money op is sent: maybe sends its copy at once, or marks
    /// it for a copy after its answer.
    pub fn on_send(&mut self, client: &Bank, names: &Arc<Names>, worker: u32, f: &InFlight) {
        if self.duplicate_ratio <= 0.0 || !self.room() || !self.rng.random_bool(self.duplicate_ratio.min(1.0))
        {
            return;
        }
        let at_once = self.rng.random_bool(0.5);
        self.copies.insert(
            f.planned.number,
            Copy {
                at_once,
                op: None,
                answer: None,
            },
        );
        if at_once {
            self.send_copy(client, names, worker, f.planned);
        }
    }

    /// Called once a money op is recorded as `op`: pairs it with its copy
    /// (sending an after-the-answer copy now), then maybe reads a balance.
    pub fn on_recorded(
        &mut self,
        client: &Bank,
        names: &Arc<Names>,
        worker: u32,
        planned: Planned,
        op: u32,
        rec: &mut Recorder,
    ) {
        if let Some(copy) = self.copies.get_mut(&planned.number) {
            copy.op = Some(op);
            if let Some((timing, reply)) = copy.answer.take() {
                self.pair(&planned, op, timing, reply, (names, worker), rec);
            } else if !copy.at_once {
                if self.room() {
                    self.send_copy(client, names, worker, planned);
                } else {
                    self.copies.remove(&planned.number);
                }
            }
        }
        if self.read_ratio > 0.0 && self.room() && self.rng.random_bool(self.read_ratio.min(1.0)) {
            let account = self.rng.random_range(0..self.accounts);
            self.send_read(client, names, account);
        }
        // The server knows the op's id once its answer took a sequence number.
        let known = rec
            .ops
            .get(op as usize)
            .is_some_and(|o| o.outcome.took_sequence());
        if let Some(plan) = self.invalids.maybe(known.then_some((planned, op))) {
            if self.room() {
                self.send_invalid(client, names, worker, plan);
            }
        }
    }

    /// Records a finished extra call.
    pub fn on_done(&mut self, done: Done, names: &Names, worker: u32, rec: &mut Recorder) {
        match done {
            Done::Read {
                account,
                sent,
                received,
                reply,
            } => rec.record_read(account, sent, received, reply),
            Done::Copy {
                planned,
                sent,
                received,
                reply,
            } => {
                let timing = Timing {
                    intended: sent,
                    sent,
                    received,
                };
                let Some(copy) = self.copies.get_mut(&planned.number) else {
                    return;
                };
                match copy.op {
                    Some(op) => self.pair(&planned, op, timing, reply, (names, worker), rec),
                    None => copy.answer = Some((timing, reply)),
                }
            }
            Done::Invalid {
                plan,
                sent,
                received,
                code,
            } => {
                let call = self
                    .invalids
                    .record(&plan, code, (rec.clock_ns(sent), rec.clock_ns(received)));
                rec.record_invalid(call);
            }
        }
    }

    /// Both halves of a pair are known: records the copy against op `op`.
    fn pair(
        &mut self,
        planned: &Planned,
        op: u32,
        timing: Timing,
        reply: Result<pb::OperationResult, Status>,
        (names, worker): (&Names, u32),
        rec: &mut Recorder,
    ) {
        let at_once = self.copies.remove(&planned.number).is_some_and(|c| c.at_once);
        let id_ok = reply
            .as_ref()
            .map_or(true, |r| names.is_request_id(worker, planned, &r.request_id));
        rec.record_copy(op, at_once, timing, reply, id_ok);
    }

    fn send_copy(&mut self, client: &Bank, names: &Arc<Names>, worker: u32, planned: Planned) {
        let sent = Instant::now();
        let f = InFlight {
            planned,
            intended: sent,
            sent,
        };
        let call = call_unary(client.clone(), Arc::clone(names), worker, f, self.timeout);
        self.calls.push(Box::pin(async move {
            let (f, received, reply) = call.await;
            Done::Copy {
                planned: f.planned,
                sent,
                received,
                reply,
            }
        }));
    }

    fn send_invalid(&mut self, client: &Bank, names: &Arc<Names>, worker: u32, plan: InvalidPlan) {
        let (client, names, timeout) = (client.clone(), Arc::clone(names), self.timeout);
        let fast = self.fast.clone();
        self.calls.push(Box::pin(async move {
            let sent = Instant::now();
            let code = invalid::call(client, fast, &names, worker, plan, timeout).await;
            Done::Invalid {
                plan,
                sent,
                received: Instant::now(),
                code,
            }
        }));
    }

    fn send_read(&mut self, client: &Bank, names: &Arc<Names>, account: u32) {
        let mut client = client.clone();
        let message = pb::GetBalanceRequest {
            account_id: names.account(account),
        };
        let timeout = self.timeout;
        self.calls.push(Box::pin(async move {
            let sent = Instant::now();
            let reply = within(timeout, client.get_balance(request(message, timeout))).await;
            Done::Read {
                account,
                sent,
                received: Instant::now(),
                reply,
            }
        }));
    }
}
