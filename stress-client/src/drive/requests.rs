//! Turns a planned op into its wire request, and runs one unary call with the
//! per-call deadline (sent to the server, and enforced on the client's clock
//! by [`crate::bound`]). Shared by the unary and stream paths of a worker.
//! On the fast path ([`crate::h2fast`]) the request is encoded straight into
//! framed bytes from messages and a buffer the worker reuses ([`Scratch`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::h2fast::{self, Conn};
use crate::transport::Bank;
use bank::v1 as pb;
use bank_checker::Kind;
use bytes::{Bytes, BytesMut};
use tonic::Status;

use crate::bound::{request, within};
use crate::request_id::RequestId;
use crate::workload::Planned;

/// The run's names: its id and the ids of its accounts.
#[derive(Debug)]
pub struct Names {
    pub run_id: String,
    pub accounts: Vec<String>,
}

/// An op on its way: what it is and when it was meant to go and went.
#[derive(Debug, Clone, Copy)]
pub struct InFlight {
    pub planned: Planned,
    pub intended: Instant,
    pub sent: Instant,
}

impl Names {
    /// The id of account `index`. The generator only draws indices of the
    /// run's accounts, so any other is a client bug and stops the worker
    /// (the run then ends with exit 2), never a silent "" or account 0.
    pub fn account(&self, index: u32) -> String {
        self.account_ref(index).to_owned()
    }

    /// The id of account `index`, borrowed (same bounds as [`Names::account`]).
    pub fn account_ref(&self, index: u32) -> &str {
        match self.accounts.get(index as usize) {
            Some(id) => id,
            None => panic!(
                "account index {index} outside the run's {} accounts",
                self.accounts.len()
            ),
        }
    }

    /// Writes the request id of `planned` sent by `worker` into `out`
    /// (replacing what it held; the same id as [`Names::request_id`]).
    pub fn write_request_id(&self, out: &mut String, worker: u32, planned: &Planned) {
        self.request_id_of(worker, planned).write_into(out);
    }

    /// True when `got` is the request id of `planned` sent by `worker`
    /// (checked without building the id).
    pub fn is_request_id(&self, worker: u32, planned: &Planned, got: &str) -> bool {
        RequestId::parse(&self.run_id, got) == Some(self.request_id_of(worker, planned))
    }

    /// The request id of `planned` sent by `worker`.
    pub fn request_id(&self, worker: u32, planned: &Planned) -> String {
        self.request_id_of(worker, planned).to_string()
    }

    /// The request id of `planned` sent by `worker`, not yet written out.
    pub fn request_id_of(&self, worker: u32, planned: &Planned) -> RequestId<'_> {
        RequestId::op(&self.run_id, worker, planned.number)
    }

    /// The withdrawal request of `planned`.
    pub fn withdraw(&self, worker: u32, planned: &Planned) -> pb::WithdrawRequest {
        pb::WithdrawRequest {
            account_id: self.account(planned.account),
            amount: planned.amount,
            request_id: self.request_id(worker, planned),
            wait_for_funds: planned.wait_for_funds,
        }
    }
}

/// Runs `f` as one unary call with `timeout`; returns it with the reply and arrival time.
pub async fn call_unary(
    mut client: Bank,
    names: Arc<Names>,
    worker: u32,
    f: InFlight,
    timeout: Duration,
) -> (InFlight, Instant, Result<pb::OperationResult, Status>) {
    let p = &f.planned;
    let reply = match p.kind {
        Kind::Withdraw => {
            let req = request(names.withdraw(worker, p), timeout);
            within(timeout, client.withdraw(req)).await
        }
        Kind::Deposit => {
            let req = pb::DepositRequest {
                account_id: names.account(p.account),
                amount: p.amount,
                request_id: names.request_id(worker, p),
            };
            within(timeout, client.deposit(request(req, timeout))).await
        }
        Kind::Transfer => {
            let req = pb::TransferRequest {
                from_account_id: names.account(p.account),
                to_account_id: names.account(p.to_account),
                amount: p.amount,
                request_id: names.request_id(worker, p),
            };
            within(timeout, client.transfer(request(req, timeout))).await
        }
    };
    (f, Instant::now(), reply)
}

/// One worker's reused request messages and encode buffer: encoding an op
/// allocates nothing once their strings have grown to size.
#[derive(Debug, Default)]
pub struct Scratch {
    withdraw: pb::WithdrawRequest,
    deposit: pb::DepositRequest,
    transfer: pb::TransferRequest,
    buf: BytesMut,
}

impl Scratch {
    /// The framed request of `planned` sent by `worker`.
    pub fn body(&mut self, names: &Names, worker: u32, planned: &Planned) -> Result<Bytes, Status> {
        let p = planned;
        match p.kind {
            Kind::Withdraw => {
                let m = &mut self.withdraw;
                set(&mut m.account_id, names.account_ref(p.account));
                names.write_request_id(&mut m.request_id, worker, p);
                (m.amount, m.wait_for_funds) = (p.amount, p.wait_for_funds);
                h2fast::framing::encode(m, &mut self.buf)
            }
            Kind::Deposit => {
                let m = &mut self.deposit;
                set(&mut m.account_id, names.account_ref(p.account));
                names.write_request_id(&mut m.request_id, worker, p);
                m.amount = p.amount;
                h2fast::framing::encode(m, &mut self.buf)
            }
            Kind::Transfer => {
                let m = &mut self.transfer;
                set(&mut m.from_account_id, names.account_ref(p.account));
                set(&mut m.to_account_id, names.account_ref(p.to_account));
                names.write_request_id(&mut m.request_id, worker, p);
                m.amount = p.amount;
                h2fast::framing::encode(m, &mut self.buf)
            }
        }
    }
}

fn set(field: &mut String, value: &str) {
    field.clear();
    field.push_str(value);
}

/// The fast path's call of `f`: `body` (its framed request) on `conn`, cut at `timeout`.
pub async fn call_fast(
    conn: Conn,
    f: InFlight,
    body: Result<Bytes, Status>,
    timeout: Duration,
) -> (InFlight, Instant, Result<pb::OperationResult, Status>) {
    let rpc = match f.planned.kind {
        Kind::Withdraw => h2fast::FastCall::Withdraw,
        Kind::Deposit => h2fast::FastCall::Deposit,
        Kind::Transfer => h2fast::FastCall::Transfer,
    };
    let reply = match body {
        Ok(body) => match tokio::time::timeout(timeout, h2fast::unary::call(&conn, rpc, body)).await {
            Ok(reply) => reply,
            Err(_) => Err(crate::bound::deadline_exceeded(timeout)),
        },
        Err(status) => Err(status),
    };
    (f, Instant::now(), reply)
}
