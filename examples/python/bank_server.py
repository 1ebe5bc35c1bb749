#!/usr/bin/env python3
"""A bank.v1 server in Python, written only from proto/bank/v1/bank.proto.

The contract in a second language, and the example to point the stress-client
at: each account is a monitor (a threading.Lock with the processing delay slept
inside it, and a Condition for withdrawals waiting for funds), request ids make
ops idempotent, GetOperation fences unseen ids, transfers lock both accounts in
id order, and every op that reaches an account's critical section takes its
next sequence number. grpcio's sync server holds one thread per open stream,
so --max-workers must stay above the client's --streams.

    pip install -r examples/python/requirements.txt
    python examples/python/bank_server.py --listen 127.0.0.1:50051 &
    ./target/release/stress-client --target http://127.0.0.1:50051 --accounts 4
"""

import argparse
import signal
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from bank_client import DEFAULT_PROTO_DIR, generate_stubs

MAX_ACCOUNT_ID_BYTES = 128
MAX_REQUEST_ID_BYTES = 64
MAX_MESSAGE_BYTES = 64 * 1024  # a larger request is OUT_OF_RANGE, as the contract says
# grpcio itself refuses larger messages with RESOURCE_EXHAUSTED, not the
# contract's OUT_OF_RANGE: its own limit is set far above MAX_MESSAGE_BYTES
# and the handlers check the size.
GRPCIO_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_BALANCE = 2**64 - 1
MAX_WAITERS_PER_ACCOUNT = 64  # withdrawals waiting for funds on one account
MAX_WAIT_FOR_FUNDS_S = 10.0  # the longest a withdrawal waits, whatever its deadline
PENDING = object()  # the stored "result" of a withdrawal still waiting for funds
pb = None  # the generated bank_pb2 module, set in main()


class Refused(Exception):
    """An answer that is a status, not a result."""

    def __init__(self, code, details):
        super().__init__(details)
        self.code, self.details = code, details


def has_control(text):
    """A NUL or other control character (C0, DEL, C1): refused in any id."""
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


def check_ids(*account_ids, request_id=""):
    for account_id in account_ids:
        if not account_id or len(account_id.encode()) > MAX_ACCOUNT_ID_BYTES:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "account id must be 1..=128 bytes")
        if has_control(account_id):
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "account id must not hold control characters")
    if len(request_id.encode()) > MAX_REQUEST_ID_BYTES:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "request id must be at most 64 bytes")
    if has_control(request_id):
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "request id must not hold control characters")


def check_size(request):
    if request.ByteSize() > MAX_MESSAGE_BYTES:
        raise Refused(grpc.StatusCode.OUT_OF_RANGE, f"the message is over {MAX_MESSAGE_BYTES} bytes")


def check_amount(amount):
    if amount == 0:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "amount must be greater than 0")


def replay(stored):
    """A stored result answered again: it does not take effect twice."""
    again = pb.OperationResult()
    again.CopyFrom(stored)
    again.replayed = True
    return again


class Account:
    """One monitor. Every field is read and written only under `lock`."""

    def __init__(self, account_id, balance):
        self.id = account_id
        self.lock = threading.Lock()
        self.funds = threading.Condition(self.lock)
        self.balance = balance
        self.sequence = 0  # the last sequence number given out; gapless
        self.waiters = 0
        self.log = {}  # request id -> (fingerprint, result); fingerprint None: fenced

    def next_sequence(self):
        self.sequence += 1
        return self.sequence

    def lookup(self, request_id, fingerprint):
        """The answer to a repeated request id, or None for a fresh one."""
        if not request_id or request_id not in self.log:
            return None
        stored_fp, stored = self.log[request_id]
        if stored_fp is None:  # fenced by GetOperation: a late copy never applies
            return replay(stored)
        if stored_fp != fingerprint:
            raise Refused(grpc.StatusCode.ALREADY_EXISTS, f"request id {request_id!r} was used with other parameters")
        if stored is PENDING:
            raise Refused(grpc.StatusCode.ABORTED, f"request id {request_id!r} is still waiting for funds")
        return replay(stored)

    def remember(self, request_id, fingerprint, result):
        if request_id:
            self.log[request_id] = (fingerprint, result)
        return result


def abandoned(context):
    """The client stopped waiting before the op took the lock: it will not apply."""
    return not context.is_active()


class Bank:
    """The bank.v1.Bank servicer."""

    def __init__(self, delay_s, max_accounts, new_account=Account):
        self.delay_s = delay_s
        self.max_accounts = max_accounts
        self.new_account = new_account  # unusual_server.py passes an Account with quirks
        self.accounts = {}
        self.registry = threading.Lock()

    def account(self, account_id):
        check_ids(account_id)
        with self.registry:
            account = self.accounts.get(account_id)
        if account is None:
            raise Refused(grpc.StatusCode.NOT_FOUND, f"no account {account_id!r}")
        return account

    def open_account(self, r, context):
        check_ids(r.account_id)
        with self.registry:
            if r.account_id in self.accounts:
                raise Refused(grpc.StatusCode.ALREADY_EXISTS, f"account {r.account_id!r} exists")
            if len(self.accounts) >= self.max_accounts:
                raise Refused(grpc.StatusCode.RESOURCE_EXHAUSTED, "the server holds --max-accounts accounts")
            self.accounts[r.account_id] = self.new_account(r.account_id, r.initial_balance)
        return pb.Account(account_id=r.account_id, balance=r.initial_balance, sequence=0)

    def get_balance(self, r, context):
        a = self.account(r.account_id)
        with a.lock:
            return pb.Account(account_id=a.id, balance=a.balance, sequence=a.sequence)

    def deposit(self, r, context):
        check_amount(r.amount)
        check_ids(r.account_id, request_id=r.request_id)
        a, fp = self.account(r.account_id), ("deposit", r.amount)
        with a.lock:
            stored = a.lookup(r.request_id, fp)
            if stored is not None:
                return stored
            if abandoned(context):
                return a.remember(r.request_id, fp, pb.OperationResult(request_id=r.request_id, outcome=pb.OUTCOME_NOT_APPLIED))
            if a.balance + r.amount > MAX_BALANCE:
                raise Refused(grpc.StatusCode.FAILED_PRECONDITION, "the balance would overflow")
            time.sleep(self.delay_s)
            a.balance += r.amount
            a.funds.notify_all()
            result = pb.OperationResult(request_id=r.request_id, outcome=pb.OUTCOME_APPROVED, balance=a.balance, sequence=a.next_sequence())
            return a.remember(r.request_id, fp, result)

    def withdraw(self, r, context):
        check_amount(r.amount)
        check_ids(r.account_id, request_id=r.request_id)
        a, fp = self.account(r.account_id), ("withdraw", r.amount)
        with a.lock:
            stored = a.lookup(r.request_id, fp)
            if stored is not None:
                return stored
            if abandoned(context):
                return a.remember(r.request_id, fp, pb.OperationResult(request_id=r.request_id, outcome=pb.OUTCOME_NOT_APPLIED))
            if r.wait_for_funds and a.balance < r.amount:
                self.wait_for_funds(a, r, fp, context)
            time.sleep(self.delay_s)
            outcome = pb.OUTCOME_APPROVED if a.balance >= r.amount else pb.OUTCOME_INSUFFICIENT_FUNDS
            if outcome == pb.OUTCOME_APPROVED:
                a.balance -= r.amount
            result = pb.OperationResult(request_id=r.request_id, outcome=outcome, balance=a.balance, sequence=a.next_sequence())
            return a.remember(r.request_id, fp, result)

    def wait_for_funds(self, a, r, fp, context):
        """Waits (the lock released meanwhile) until funds or the deadline; under `a.lock`."""
        if a.waiters >= MAX_WAITERS_PER_ACCOUNT:
            raise Refused(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many withdrawals wait on this account")
        remaining = context.time_remaining()
        patience = MAX_WAIT_FOR_FUNDS_S if remaining is None else min(remaining, MAX_WAIT_FOR_FUNDS_S)
        a.remember(r.request_id, fp, PENDING)
        a.waiters += 1
        try:
            a.funds.wait_for(lambda: a.balance >= r.amount, timeout=max(patience, 0.0))
        finally:
            a.waiters -= 1

    def transfer(self, r, context):
        check_amount(r.amount)
        check_ids(r.from_account_id, r.to_account_id, request_id=r.request_id)
        if r.from_account_id == r.to_account_id:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "a transfer needs two different accounts")
        src, dst = self.account(r.from_account_id), self.account(r.to_account_id)
        fp = ("transfer", dst.id, r.amount)
        first, second = sorted((src, dst), key=lambda a: a.id)  # one global order: no deadlock
        with first.lock, second.lock:
            stored = src.lookup(r.request_id, fp)
            if stored is not None:
                return stored
            if abandoned(context):
                return src.remember(r.request_id, fp, pb.OperationResult(request_id=r.request_id, outcome=pb.OUTCOME_NOT_APPLIED))
            approved = src.balance >= r.amount
            if approved and dst.balance + r.amount > MAX_BALANCE:
                raise Refused(grpc.StatusCode.FAILED_PRECONDITION, "the target balance would overflow")
            time.sleep(self.delay_s)
            if approved:
                src.balance -= r.amount
                dst.balance += r.amount
                dst.funds.notify_all()
            result = pb.OperationResult(
                request_id=r.request_id,
                outcome=pb.OUTCOME_APPROVED if approved else pb.OUTCOME_INSUFFICIENT_FUNDS,
                balance=src.balance, sequence=src.next_sequence(),
                to_balance=dst.balance, to_sequence=dst.next_sequence())
            return src.remember(r.request_id, fp, result)

    def get_operation(self, r, context):
        if not r.request_id:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "request id must not be empty")
        check_ids(r.account_id, request_id=r.request_id)
        a = self.account(r.account_id)
        with a.lock:
            if r.request_id in a.log:
                stored = a.log[r.request_id][1]
                if stored is PENDING:
                    raise Refused(grpc.StatusCode.ABORTED, f"request id {r.request_id!r} is still waiting for funds")
                return replay(stored)
            # Unseen: fence it, so a late copy is answered as a replay of this.
            return a.remember(r.request_id, None, pb.OperationResult(request_id=r.request_id, outcome=pb.OUTCOME_NOT_APPLIED))


def servicer(bank, pb_grpc):
    """The generated servicer class, each RPC mapped to a Bank method; a
    Refused becomes the call's status (after the answers a stream already sent)."""

    def unary(method):
        def handler(self, request, context):
            try:
                check_size(request)
                return method(request, context)
            except Refused as e:
                context.abort(e.code, e.details)
        return handler

    def withdraw_stream(self, requests, context):
        try:
            for request in requests:  # answered one by one, in order
                check_size(request)
                yield bank.withdraw(request, context)
        except Refused as e:
            context.abort(e.code, e.details)

    methods = {
        "OpenAccount": unary(bank.open_account), "GetBalance": unary(bank.get_balance),
        "Deposit": unary(bank.deposit), "Withdraw": unary(bank.withdraw),
        "Transfer": unary(bank.transfer), "GetOperation": unary(bank.get_operation),
        "WithdrawStream": withdraw_stream,
    }
    return type("BankServicer", (pb_grpc.BankServicer,), methods)()


def parse_duration(text):
    """'1ms', '250us', '0.5s' or a number of seconds."""
    for suffix, scale in (("us", 1e-6), ("ms", 1e-3), ("s", 1.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


def main():
    global pb
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:50051", help="host:port (port 0: any free port)")
    parser.add_argument("--processing-delay", type=parse_duration, default="1ms",
                        help="time slept inside each money op's critical section (default: %(default)s)")
    parser.add_argument("--max-workers", type=int, default=256,
                        help="server threads; keep above the client's --streams (default: %(default)s)")
    parser.add_argument("--max-accounts", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bank-stubs-") as out_dir:
        pb, pb_grpc = generate_stubs(DEFAULT_PROTO_DIR, out_dir)
        limits = [("grpc.max_receive_message_length", GRPCIO_MAX_MESSAGE_BYTES)]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.max_workers), options=limits)
        bank = Bank(args.processing_delay, args.max_accounts)
        pb_grpc.add_BankServicer_to_server(servicer(bank, pb_grpc), server)
        checks = health.HealthServicer()
        for service in ("", "bank.v1.Bank"):
            checks.set(service, health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(checks, server)
        port = server.add_insecure_port(args.listen)
        if port == 0:
            sys.exit(f"cannot listen on {args.listen}")
        server.start()
        print(f"bank_server.py listening on port {port}", flush=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        server.stop(grace=5).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
