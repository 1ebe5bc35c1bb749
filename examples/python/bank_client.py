#!/usr/bin/env python3
"""A small Python client for bank-server, written only from proto/bank/v1/bank.proto.

It proves that any gRPC language can use the bank: it generates its stubs from
the .proto with grpcio-tools (into a temporary folder, at startup), then walks
through every RPC on a fresh pair of accounts and checks each answer against
what the contract promises. It prints each step in plain words and exits 1 on
the first surprise (2 if it cannot even start).

    pip install -r examples/python/requirements.txt
    ./target/release/bank-server &
    python examples/python/bank_client.py --target 127.0.0.1:50051
"""

import argparse
import importlib
import sys
import tempfile
import uuid
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PROTO_DIR = REPO_ROOT / "proto"
PROTO_FILE = "bank/v1/bank.proto"


class Surprise(Exception):
    """The server answered something the contract does not allow."""


def expect(condition, what):
    """An explicit check (unlike `assert`, `python -O` does not remove it)."""
    if not condition:
        raise Surprise(what)


def generate_stubs(proto_dir, out_dir):
    """Runs protoc (bundled with grpcio-tools) on bank.proto; imports the result."""
    from grpc_tools import protoc

    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(Path(proto_dir) / PROTO_FILE),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {proto_dir / PROTO_FILE}")
    sys.path.insert(0, str(out_dir))
    return (
        importlib.import_module("bank.v1.bank_pb2"),
        importlib.import_module("bank.v1.bank_pb2_grpc"),
    )


class Walkthrough:
    def __init__(self, channel, pb, pb_grpc, timeout, token=False):
        self.pb = pb
        # With a token, a server answers PERMISSION_DENIED for an account the
        # caller does not own whether or not it exists (bank.proto, "Principals").
        self.token = token
        self.bank = pb_grpc.BankStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)
        self.timeout = timeout
        self.step_no = 0
        run = uuid.uuid4().hex[:12]
        self.a = f"py-{run}-alice"
        self.b = f"py-{run}-bob"

    # ---- helpers ---------------------------------------------------------

    def step(self, text):
        self.step_no += 1
        print(f"\n[{self.step_no}] {text}", flush=True)

    @staticmethod
    def ok(text):
        print(f"    ok: {text}", flush=True)

    def outcome_name(self, value):
        return self.pb.Outcome.Name(value)

    def check_result(self, r, outcome, balance, sequence, replayed=False, request_id=None):
        """Checks an OperationResult field by field, naming what differs."""
        got = (self.outcome_name(r.outcome), r.balance, r.sequence, r.replayed)
        want = (outcome, balance, sequence, replayed)
        expect(
            got == want,
            f"expected (outcome, balance, sequence, replayed) = {want}, got {got}",
        )
        if request_id is not None:
            expect(
                r.request_id == request_id,
                f"expected request_id {request_id!r}, got {r.request_id!r}",
            )

    def check_account(self, account_id, balance, sequence):
        acct = self.bank.GetBalance(
            self.pb.GetBalanceRequest(account_id=account_id), timeout=self.timeout
        )
        got = (acct.balance, acct.sequence)
        expect(
            got == (balance, sequence),
            f"{account_id}: expected (balance, sequence) = {(balance, sequence)}, got {got}",
        )
        self.ok(f"{account_id} has balance {balance} at sequence {sequence}")

    def expect_status(self, codes, call, *args):
        """Runs a call that must fail with the given gRPC status code (or one of a tuple)."""
        codes = codes if isinstance(codes, tuple) else (codes,)
        names = " or ".join(c.name for c in codes)
        try:
            call(*args, timeout=self.timeout)
        except grpc.RpcError as e:
            expect(
                e.code() in codes,
                f"expected status {names}, got {e.code().name}: {e.details()}",
            )
            self.ok(f"refused with {e.code().name} ({e.details()})")
            return
        raise Surprise(f"expected status {names}, but the call succeeded")

    # ---- the walk-through --------------------------------------------------

    def run(self):
        pb, bank, t = self.pb, self.bank, self.timeout

        self.step("Health: grpc.health.v1 reports bank.v1.Bank as SERVING")
        for service in ("bank.v1.Bank", ""):
            status = self.health.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=t
            ).status
            name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
            expect(
                status == health_pb2.HealthCheckResponse.SERVING,
                f"health of {service!r} is {name}",
            )
            self.ok(f"service {service or '(whole server)'!r} is {name}")

        self.step(f"OpenAccount {self.a} with 100 and {self.b} with 0")
        acct = bank.OpenAccount(
            pb.OpenAccountRequest(account_id=self.a, initial_balance=100), timeout=t
        )
        expect(
            (acct.account_id, acct.balance, acct.sequence) == (self.a, 100, 0),
            f"unexpected new account {acct}",
        )
        bank.OpenAccount(pb.OpenAccountRequest(account_id=self.b, initial_balance=0), timeout=t)
        self.ok("both opened; opening takes no sequence number (sequence 0)")

        self.step("Deposit 50 (request id dep-1): approved, balance 150, sequence 1")
        dep = bank.Deposit(
            pb.DepositRequest(account_id=self.a, amount=50, request_id="dep-1"), timeout=t
        )
        self.check_result(dep, "OUTCOME_APPROVED", 150, 1, request_id="dep-1")
        self.ok("approved: balance 150, sequence 1")

        self.step("Withdraw 70 (request id wd-1): approved, balance 80, sequence 2")
        wd1 = bank.Withdraw(
            pb.WithdrawRequest(account_id=self.a, amount=70, request_id="wd-1"), timeout=t
        )
        self.check_result(wd1, "OUTCOME_APPROVED", 80, 2, request_id="wd-1")
        self.ok("approved: balance 80, sequence 2")

        self.step("Withdraw 500 (request id wd-2): denied in-band, balance unchanged")
        wd2 = bank.Withdraw(
            pb.WithdrawRequest(account_id=self.a, amount=500, request_id="wd-2"), timeout=t
        )
        self.check_result(wd2, "OUTCOME_INSUFFICIENT_FUNDS", 80, 3, request_id="wd-2")
        self.ok("OUTCOME_INSUFFICIENT_FUNDS (not an error status): balance 80, "
                "and the denial still took sequence 3")

        amounts = [30, 60, 20, 40, 1]
        self.step(f"WithdrawStream: {len(amounts)} withdrawals {amounts} on one bidi stream")
        requests = [
            pb.WithdrawRequest(account_id=self.a, amount=a, request_id=f"s-{i}")
            for i, a in enumerate(amounts)
        ]
        answers = list(bank.WithdrawStream(iter(requests), timeout=t))
        expect(
            len(answers) == len(amounts),
            f"expected {len(amounts)} answers, got {len(answers)}",
        )
        balance, sequence = 80, 3
        for i, (amount, r) in enumerate(zip(amounts, answers)):
            sequence += 1
            if amount <= balance:
                balance -= amount
                outcome = "OUTCOME_APPROVED"
            else:
                outcome = "OUTCOME_INSUFFICIENT_FUNDS"
            self.check_result(r, outcome, balance, sequence, request_id=f"s-{i}")
            self.ok(f"answer {i + 1}: withdraw {amount} -> {outcome}, "
                    f"balance {balance}, sequence {sequence}")
        self.ok("every request answered once, in the order sent")
        self.check_account(self.a, balance, sequence)

        self.step("Replay: Withdraw 70 again with request id wd-1")
        again = bank.Withdraw(
            pb.WithdrawRequest(account_id=self.a, amount=70, request_id="wd-1"), timeout=t
        )
        self.check_result(again, "OUTCOME_APPROVED", 80, 2, replayed=True, request_id="wd-1")
        self.ok("the stored result came back with replayed=true (balance 80, sequence 2 "
                "as at the time)")
        self.check_account(self.a, balance, sequence)
        self.ok("no second withdrawal took place")

        self.step("Same request id wd-1 with other parameters (Withdraw 71)")
        self.expect_status(
            grpc.StatusCode.ALREADY_EXISTS,
            bank.Withdraw,
            pb.WithdrawRequest(account_id=self.a, amount=71, request_id="wd-1"),
        )

        self.step("GetOperation of a known id (dep-1)")
        stored = bank.GetOperation(
            pb.GetOperationRequest(account_id=self.a, request_id="dep-1"), timeout=t
        )
        self.check_result(stored, "OUTCOME_APPROVED", 150, 1, replayed=True, request_id="dep-1")
        self.ok("the deposit's stored result: approved, balance 150, sequence 1, replayed=true")

        lost = f"lost-{uuid.uuid4().hex[:8]}"
        self.step(f"GetOperation of an id the server never saw ({lost})")
        fenced = bank.GetOperation(
            pb.GetOperationRequest(account_id=self.a, request_id=lost), timeout=t
        )
        got = (fenced.request_id, self.outcome_name(fenced.outcome), fenced.balance,
               fenced.sequence)
        expect(
            got == (lost, "OUTCOME_NOT_APPLIED", 0, 0),
            f"expected ({lost!r}, OUTCOME_NOT_APPLIED, balance 0, sequence 0), got {got}",
        )
        self.ok("OUTCOME_NOT_APPLIED: the id is now fenced")
        late = bank.Withdraw(
            pb.WithdrawRequest(account_id=self.a, amount=5, request_id=lost), timeout=t
        )
        self.check_result(late, "OUTCOME_NOT_APPLIED", 0, 0, replayed=True, request_id=lost)
        self.ok("a late Withdraw 5 with that id is answered as a replay of a "
                "not-applied operation")
        self.check_account(self.a, balance, sequence)
        self.ok("and it changed nothing")

        self.step(f"Transfer 20 from {self.a} to {self.b} (request id tr-1)")
        tr = bank.Transfer(
            pb.TransferRequest(
                from_account_id=self.a, to_account_id=self.b, amount=20, request_id="tr-1"
            ),
            timeout=t,
        )
        balance -= 20
        sequence += 1
        self.check_result(tr, "OUTCOME_APPROVED", balance, sequence, request_id="tr-1")
        expect(
            (tr.to_balance, tr.to_sequence) == (20, 1),
            f"expected target (balance, sequence) = (20, 1), got "
            f"{(tr.to_balance, tr.to_sequence)}",
        )
        self.ok(f"approved: source balance {balance} at sequence {sequence}, "
                "target balance 20 at sequence 1")

        self.step("Error statuses")
        print("    Withdraw of amount 0:")
        self.expect_status(
            grpc.StatusCode.INVALID_ARGUMENT,
            bank.Withdraw,
            pb.WithdrawRequest(account_id=self.a, amount=0),
        )
        print("    Transfer to the same account:")
        self.expect_status(
            grpc.StatusCode.INVALID_ARGUMENT,
            bank.Transfer,
            pb.TransferRequest(from_account_id=self.a, to_account_id=self.a, amount=1),
        )
        print("    GetBalance of an unknown account:")
        unknown = (grpc.StatusCode.NOT_FOUND,)
        if self.token:
            unknown += (grpc.StatusCode.PERMISSION_DENIED,)
        self.expect_status(
            unknown,
            bank.GetBalance,
            pb.GetBalanceRequest(account_id=f"py-nobody-{uuid.uuid4().hex[:8]}"),
        )
        print("    OpenAccount of an id that is taken:")
        self.expect_status(
            grpc.StatusCode.ALREADY_EXISTS,
            bank.OpenAccount,
            pb.OpenAccountRequest(account_id=self.a, initial_balance=1),
        )

        self.step("GetBalance at the end: refused calls changed nothing")
        self.check_account(self.a, balance, sequence)
        self.check_account(self.b, 20, 1)


def open_channel(args):
    """A plaintext channel, or with --tls-ca a TLS one (with --token, every
    call carries `authorization: Bearer TOKEN`)."""
    if not args.tls_ca:
        return grpc.insecure_channel(args.target)
    credentials = grpc.ssl_channel_credentials(root_certificates=args.tls_ca.read_bytes())
    if args.token:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(args.token))
    return grpc.secure_channel(args.target, credentials)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051",
                        help="host:port of bank-server (default: %(default)s)")
    parser.add_argument("--proto-dir", type=Path, default=DEFAULT_PROTO_DIR,
                        help="folder holding bank/v1/bank.proto (default: the repo's proto/)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="deadline of each call, in seconds (default: %(default)s)")
    parser.add_argument("--tls-ca", type=Path,
                        help="CA certificate (PEM): connect over TLS, trusting it")
    parser.add_argument("--token",
                        help="bearer token sent with every call (needs --tls-ca: "
                             "gRPC sends call credentials over TLS only)")
    args = parser.parse_args()
    if args.token and not args.tls_ca:
        parser.error("--token needs --tls-ca")

    with tempfile.TemporaryDirectory(prefix="bank-stubs-") as out_dir:
        pb, pb_grpc = generate_stubs(args.proto_dir, out_dir)
        print(f"Generated Python stubs from {args.proto_dir / PROTO_FILE}")
        with open_channel(args) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=args.timeout)
            except grpc.FutureTimeoutError:
                print(f"FAILED: could not connect to {args.target}", file=sys.stderr)
                return 2
            print(f"Connected to bank-server at {args.target}")
            walk = Walkthrough(channel, pb, pb_grpc, args.timeout, bool(args.token))
            try:
                walk.run()
            except Surprise as e:
                print(f"\nFAILED at step {walk.step_no}: {e}", file=sys.stderr)
                return 1
            except grpc.RpcError as e:
                print(f"\nFAILED at step {walk.step_no}: unexpected status "
                      f"{e.code().name}: {e.details()}", file=sys.stderr)
                return 1
    print(f"\nAll {walk.step_no} steps passed: the Python client agrees with the contract.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
