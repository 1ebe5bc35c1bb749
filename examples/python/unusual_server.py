#!/usr/bin/env python3
"""Correct but unusual bank.v1 servers: bank_server.py with quirks.

A checker that flags a correct server is as useless as one that passes a
broken one. Each quirk below makes bank_server.py behave in a way the
contract (proto/bank/v1/bank.proto) allows but the project's own server
rarely or never shows; every one of them must pass the stress-client's
verdict (and `stress-client conformance`). Quirks combine: --quirk a,b.

  group-commit       money ops are applied at once but answered together, at
                     the next tick of a commit clock (--commit-interval).
  fail-before-apply  --quirk-rate of the money calls answer UNAVAILABLE before
                     anything is checked or applied (the id stays unseen, so
                     GetOperation fences it: NOT_APPLIED).
  fail-after-apply   --quirk-rate of the money ops are applied and recorded,
                     then answered UNAVAILABLE (GetOperation and a retry give
                     the stored result, replayed = true).
  shed-load          a money call finding --shed-above calls in flight on its
                     account is refused RESOURCE_EXHAUSTED before anything.
  late-answers       --quirk-rate of the money ops are applied, then answered
                     only after the call's deadline has passed (--late-by when
                     the call has none, as on WithdrawStream).
  follower-reads     GetBalance is served by a follower that applies the
                     leader's log (one global order, appended under the
                     accounts' locks) and has caught up with every op before
                     that op is answered (and before any GetOperation answer);
                     it lags by the ops applied but not yet answered, and an
                     answer waits --follower-lag after applying.
  deadlines          a money op waits for an account's lock only until its
                     deadline; then its id is recorded as not applied and it
                     is answered DEADLINE_EXCEEDED by the server itself.
  bounded-retention  each account remembers its last --retention request ids;
                     GetOperation of an id it does not know, on an account that
                     has forgotten some, answers FAILED_PRECONDITION (and
                     fences the id). A client must not resend ids older than
                     that: run with --retention well above the ops in flight.

    python examples/python/unusual_server.py --quirk follower-reads --listen 127.0.0.1:0
"""

import argparse
import collections
import random
import signal
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

import bank_server
from bank_client import DEFAULT_PROTO_DIR, generate_stubs
from bank_server import PENDING, Account, Bank, Refused, check_ids, parse_duration, servicer

QUIRKS = ("group-commit", "fail-before-apply", "fail-after-apply", "shed-load", "late-answers",
          "follower-reads", "deadlines", "bounded-retention")
DEADLINE_MARGIN_S = 0.002  # the deadlines quirk gives up this much before the client would
LATE_MARGIN_S = 0.2  # a late answer comes this long after the deadline
FOLLOWER_TICK_S = 0.02  # the follower also catches up by itself this often
NO_DEADLINE_S = 86_400.0  # grpcio reports a call without a deadline as one this far away, or more
DEADLINE = threading.local()  # .at: the monotonic instant the current money op gives up the lock wait


def time_left(context):
    """Seconds until the call's deadline; None when it has none (grpcio then
    answers a huge number, which no timeout accepts)."""
    remaining = context.time_remaining()
    return None if remaining is None or remaining > NO_DEADLINE_S else remaining


class DeadlinePassed(Exception):
    """The lock was not free before the op's deadline."""


class DeadlineLock:
    """A lock whose `with` waits no longer than the calling thread's DEADLINE.at;
    acquire() and Condition waits block as usual."""

    def __init__(self):
        self._lock = threading.Lock()

    def acquire(self, blocking=True, timeout=-1):
        return self._lock.acquire(blocking, timeout)

    def release(self):
        self._lock.release()

    def __enter__(self):
        at = getattr(DEADLINE, "at", None)
        if at is None:
            self._lock.acquire()
        elif not self._lock.acquire(timeout=max(at - time.monotonic(), 0.0)):
            raise DeadlinePassed()
        return self

    def __exit__(self, *exc):
        self._lock.release()


class Follower:
    """A replica of every account's (balance, sequence), fed by the leader's log
    in the log's order: its state is always that after some prefix of it."""

    def __init__(self):
        self.log, self.log_lock = [], threading.Lock()
        self.state, self.state_lock = {}, threading.Lock()

    def append(self, effects):
        """Called under the locks of every account the op touched."""
        with self.log_lock:
            self.log.append(effects)

    def opened(self, account_id, balance):
        with self.state_lock:
            self.state.setdefault(account_id, (balance, 0))

    def catch_up(self):
        with self.state_lock:
            with self.log_lock:
                entries, self.log = self.log, []
            for effects in entries:
                for account_id, balance, sequence in effects:
                    self.state[account_id] = (balance, sequence)

    def read(self, account_id):
        with self.state_lock:
            return self.state.get(account_id)


class QuirkAccount(Account):
    """An account whose lock honours deadlines, whose ops feed a follower, and
    whose request log is bounded, as the quirks ask."""

    def __init__(self, account_id, balance, deadlines, follower, retention):
        super().__init__(account_id, balance)
        if deadlines:
            self.lock = DeadlineLock()
            self.funds = threading.Condition(self.lock)
        self.follower, self.retention = follower, retention
        self.order, self.forgot = collections.deque(), False

    def remember(self, request_id, fingerprint, result):
        if self.follower is not None and result is not PENDING and result.sequence:
            effects = [(self.id, result.balance, result.sequence)]
            if fingerprint and fingerprint[0] == "transfer":
                effects.append((fingerprint[1], result.to_balance, result.to_sequence))
            self.follower.append(effects)
        if self.retention and request_id and request_id not in self.log:
            self.order.append(request_id)
            self.forget_oldest()
        return super().remember(request_id, fingerprint, result)

    def forget_oldest(self):
        """Drops ids past the retention, oldest first (a waiting withdrawal's id stays)."""
        for _ in range(len(self.order)):
            if len(self.order) <= self.retention:
                return
            oldest = self.order.popleft()
            if self.log.get(oldest, (None, None))[1] is PENDING:
                self.order.append(oldest)
                continue
            self.log.pop(oldest, None)
            self.forgot = True


class Unusual(Bank):
    """bank_server.Bank with the quirks of `args.quirk` around its RPCs."""

    def __init__(self, args):
        self.q = set(args.quirk)
        self.args, self.rng = args, random.Random(args.seed)
        self.follower = Follower() if "follower-reads" in self.q else None
        retention = args.retention if "bounded-retention" in self.q else None
        deadlines = "deadlines" in self.q
        super().__init__(args.processing_delay, args.max_accounts,
                         lambda i, b: QuirkAccount(i, b, deadlines, self.follower, retention))
        self.in_flight, self.in_flight_lock = collections.Counter(), threading.Lock()
        self.commit = threading.Condition()
        self.commit_epoch = 0
        if "group-commit" in self.q:
            self.ticker(args.commit_interval, self.tick)
        if self.follower is not None:
            self.ticker(FOLLOWER_TICK_S, self.follower.catch_up)

    @staticmethod
    def ticker(period_s, action):
        def loop():
            while True:
                time.sleep(period_s)
                action()
        threading.Thread(target=loop, daemon=True).start()

    def tick(self):
        with self.commit:
            self.commit_epoch += 1
            self.commit.notify_all()

    def roll(self, quirk):
        return quirk in self.q and self.rng.random() < self.args.quirk_rate

    # --- money ops: every quirk wraps the plain server's method -------------

    def deposit(self, r, context):
        return self.money(super().deposit, r, context, r.account_id)

    def withdraw(self, r, context):
        return self.money(super().withdraw, r, context, r.account_id)

    def transfer(self, r, context):
        return self.money(super().transfer, r, context, r.from_account_id)

    def money(self, inner, r, context, account_id):
        if self.roll("fail-before-apply"):
            raise Refused(grpc.StatusCode.UNAVAILABLE, "quirk fail-before-apply: refused before applying")
        with self.admitted(account_id):
            result = self.apply(inner, r, context, account_id)
        if self.roll("fail-after-apply"):
            raise Refused(grpc.StatusCode.UNAVAILABLE, "quirk fail-after-apply: applied, answer lost")
        self.before_answer(context)
        return result

    def admitted(self, account_id):
        """shed-load: refuses a call that finds --shed-above calls in flight on its account."""
        bank = self

        class Slot:
            def __enter__(self):
                if "shed-load" not in bank.q:
                    return self
                with bank.in_flight_lock:
                    if bank.in_flight[account_id] >= bank.args.shed_above:
                        raise Refused(grpc.StatusCode.RESOURCE_EXHAUSTED, "quirk shed-load: too many calls on this account")
                    bank.in_flight[account_id] += 1
                return self

            def __exit__(self, *exc):
                if "shed-load" in bank.q:
                    with bank.in_flight_lock:
                        bank.in_flight[account_id] -= 1
                        if bank.in_flight[account_id] <= 0:
                            del bank.in_flight[account_id]

        return Slot()

    def apply(self, inner, r, context, account_id):
        """Runs the plain op; under `deadlines`, its lock waits end at the deadline."""
        remaining = time_left(context) if "deadlines" in self.q else None
        if remaining is None:
            return inner(r, context)
        DEADLINE.at = time.monotonic() + remaining - DEADLINE_MARGIN_S
        try:
            return inner(r, context)
        except DeadlinePassed:
            DEADLINE.at = None
            self.not_applied(account_id, r.request_id)
            raise Refused(grpc.StatusCode.DEADLINE_EXCEEDED, "quirk deadlines: the lock was not free before the deadline")
        finally:
            DEADLINE.at = None

    def not_applied(self, account_id, request_id):
        """Records an abandoned op's id as not applied, unless a copy of it got there first."""
        if not request_id:
            return
        a = self.account(account_id)
        with a.lock:
            if request_id not in a.log:
                a.remember(request_id, None, bank_server.pb.OperationResult(
                    request_id=request_id, outcome=bank_server.pb.OUTCOME_NOT_APPLIED))

    def before_answer(self, context):
        """What happens between applying an op and answering it."""
        if "group-commit" in self.q:
            with self.commit:
                epoch = self.commit_epoch
                self.commit.wait_for(lambda: self.commit_epoch > epoch)
        if self.follower is not None:
            time.sleep(self.args.follower_lag)
            self.follower.catch_up()
        if self.roll("late-answers"):
            remaining = time_left(context)
            time.sleep((self.args.late_by if remaining is None else remaining) + LATE_MARGIN_S)

    # --- reads and lookups --------------------------------------------------

    def open_account(self, r, context):
        answer = super().open_account(r, context)
        if self.follower is not None:
            self.follower.opened(r.account_id, r.initial_balance)
        return answer

    def get_balance(self, r, context):
        if self.follower is None:
            return super().get_balance(r, context)
        check_ids(r.account_id)
        state = self.follower.read(r.account_id)
        if state is None:  # never opened (or its opening is still being answered)
            return super().get_balance(r, context)
        return bank_server.pb.Account(account_id=r.account_id, balance=state[0], sequence=state[1])

    def get_operation(self, r, context):
        if "bounded-retention" in self.q and r.request_id:
            check_ids(r.account_id, request_id=r.request_id)
            a = self.account(r.account_id)
            with a.lock:
                if r.request_id not in a.log and a.forgot:
                    a.remember(r.request_id, None, bank_server.pb.OperationResult(
                        request_id=r.request_id, outcome=bank_server.pb.OUTCOME_NOT_APPLIED))
                    raise Refused(grpc.StatusCode.FAILED_PRECONDITION,
                                  "quirk bounded-retention: this account has forgotten older ids; the id is fenced")
        answer = super().get_operation(r, context)
        if self.follower is not None:
            self.follower.catch_up()
        return answer


def parse_quirks(text):
    quirks = [q for q in text.split(",") if q]
    unknown = [q for q in quirks if q not in QUIRKS]
    if unknown or not quirks:
        raise argparse.ArgumentTypeError(f"unknown quirk(s) {unknown or text!r}; known: {', '.join(QUIRKS)}")
    return quirks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quirk", type=parse_quirks, required=True, help="one or more of: " + ", ".join(QUIRKS))
    parser.add_argument("--listen", default="127.0.0.1:50051", help="host:port (port 0: any free port)")
    parser.add_argument("--processing-delay", type=parse_duration, default="1ms")
    parser.add_argument("--max-workers", type=int, default=256, help="server threads; keep above the client's --streams")
    parser.add_argument("--max-accounts", type=int, default=1_000_000)
    parser.add_argument("--quirk-rate", type=float, default=0.05, help="share of money ops hit by the random quirks")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--commit-interval", type=parse_duration, default="5ms")
    parser.add_argument("--shed-above", type=int, default=2, help="calls in flight on one account before shedding")
    parser.add_argument("--late-by", type=parse_duration, default="1.5s",
                        help="how late an answer without a deadline comes (above the client's --timeout)")
    parser.add_argument("--follower-lag", type=parse_duration, default="2ms")
    parser.add_argument("--retention", type=int, default=256, help="request ids kept per account")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bank-stubs-") as out_dir:
        bank_server.pb, pb_grpc = generate_stubs(DEFAULT_PROTO_DIR, out_dir)
        # grpcio's own message limit far above the contract's, as bank_server.py
        # sets it, so an oversized request is the contract's OUT_OF_RANGE.
        limits = [("grpc.max_receive_message_length", bank_server.GRPCIO_MAX_MESSAGE_BYTES)]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.max_workers), options=limits)
        pb_grpc.add_BankServicer_to_server(servicer(Unusual(args), pb_grpc), server)
        port = server.add_insecure_port(args.listen)
        if port == 0:
            sys.exit(f"cannot listen on {args.listen}")
        server.start()
        print(f"unusual_server.py ({','.join(args.quirk)}) listening on port {port}", flush=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
