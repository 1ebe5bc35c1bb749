#!/usr/bin/env python3
"""Attacks 4 and 5 of issue 18 (and its NUL ids and existence probes), as
two principals would run them against a bank-server with --auth-tokens.
Driven by .ci/siege/principals.sh, which starts and restarts the server.

    principals.py PHASE --target HOST:PORT --tokens FILE --pid PID --quota N

PHASE `first`: alice's open WithdrawStream works until her token is dropped
from the file and the server gets SIGHUP; then its next message is
UNAUTHENTICATED and her balance stops changing. Bob opens accounts until
RESOURCE_EXHAUSTED at the per-principal quota; alice can still open hers.
Bob hears PERMISSION_DENIED alike for alice's account and for none; NUL and
other control characters in ids are INVALID_ARGUMENT.
PHASE `restarted` (same data dir): bob is still at his quota, alice is not,
and alice's balance is what the first phase left. Exits 1 on any surprise.
"""

import argparse
import importlib
import os
import queue
import signal
import sys
import tempfile
import time
from pathlib import Path

import grpc

REPO = Path(__file__).resolve().parents[2]
ALICE = "alice-siege-token-0123456789"
BOB = "bob-siege-token-9876543210"
TIMEOUT_S = 10


def fail(what):
    print(f"principals.py: FAILED: {what}", file=sys.stderr, flush=True)
    sys.exit(1)


def expect(condition, what):
    if not condition:
        fail(what)


def stubs():
    """Generates the bank.v1 stubs from proto/ into a temporary folder."""
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="siege-principals-")
    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    args = ["protoc", f"-I{REPO / 'proto'}", f"-I{well_known}", f"--python_out={out}",
            f"--grpc_python_out={out}", str(REPO / "proto/bank/v1/bank.proto")]
    expect(protoc.main(args) == 0, "protoc failed on bank.proto")
    sys.path.insert(0, out)
    return (importlib.import_module("bank.v1.bank_pb2"),
            importlib.import_module("bank.v1.bank_pb2_grpc"))


class Client:
    """Calls as one principal (its token on every call)."""

    def __init__(self, stub, pb, token):
        self.stub, self.pb, self.md = stub, pb, [("authorization", f"Bearer {token}")]

    def call(self, method, request):
        """(code, answer or details) of one unary call."""
        try:
            return grpc.StatusCode.OK, getattr(self.stub, method)(request, metadata=self.md, timeout=TIMEOUT_S)
        except grpc.RpcError as e:
            return e.code(), e.details()

    def open(self, account, balance):
        return self.call("OpenAccount", self.pb.OpenAccountRequest(account_id=account, initial_balance=balance))

    def balance(self, account):
        return self.call("GetBalance", self.pb.GetBalanceRequest(account_id=account))


def write_tokens(path, lines):
    """Replaces the token file at once (a rename): a reload never sees it half written."""
    fresh = f"{path}.new"
    with open(fresh, "w") as f:
        f.write("".join(f"{who} {token}\n" for who, token in lines))
    os.replace(fresh, path)


def reload_until(args, probe, want):
    """Rewrites nothing: sends SIGHUP until `probe` (a GetBalance) answers `want`."""
    os.kill(args.pid, signal.SIGHUP)
    for _ in range(200):
        if probe() == want:
            return
        time.sleep(0.025)
    fail(f"the reload did not take effect ({want} expected)")


def revoked_stream_stops_spending(args, pb, alice, bob):
    """Attack 4."""
    requests = queue.Queue()

    def feed():
        while (item := requests.get()) is not None:
            yield item

    answers = alice.stub.WithdrawStream(feed(), metadata=alice.md, timeout=60)
    for i in range(3):
        requests.put(pb.WithdrawRequest(account_id="a-main", amount=1, request_id=f"s{i}"))
        r = next(answers)
        expect(r.balance == 999 - i, f"stream answer {i}: {r}")
    write_tokens(args.tokens, [("bob", BOB)])
    reload_until(args, lambda: alice.balance("a-main")[0], grpc.StatusCode.UNAUTHENTICATED)
    requests.put(pb.WithdrawRequest(account_id="a-main", amount=1, request_id="s-after"))
    try:
        r = next(answers)
        fail(f"a revoked token's stream approved another withdrawal: {r}")
    except grpc.RpcError as e:
        expect(e.code() == grpc.StatusCode.UNAUTHENTICATED, f"revoked stream ended {e.code()}")
    requests.put(None)
    write_tokens(args.tokens, [("alice", ALICE), ("bob", BOB)])
    reload_until(args, lambda: alice.balance("a-main")[0], grpc.StatusCode.OK)
    code, a = alice.balance("a-main")
    expect((a.balance, a.sequence) == (997, 3), f"alice's balance kept changing: {a}")
    print("attack 4: the revoked stream ended UNAUTHENTICATED at its next message; balance 997, unchanged")


def one_principal_cannot_take_every_slot(args, alice, bob):
    """Attack 5."""
    opened = 1  # b-main
    while True:
        code, answer = bob.open(f"b-{opened}", 1)
        if code != grpc.StatusCode.OK:
            break
        opened += 1
        expect(opened <= args.quota, f"bob opened {opened} accounts past the quota {args.quota}")
    expect(code == grpc.StatusCode.RESOURCE_EXHAUSTED, f"bob's open past the quota: {code} {answer}")
    expect("--max-accounts-per-principal" in answer, f"the refusal names the limit: {answer}")
    expect(opened == args.quota, f"bob opened {opened}, the quota is {args.quota}")
    expect(alice.open("a-second", 5)[0] == grpc.StatusCode.OK, "alice can still open hers")
    print(f"attack 5: bob stopped at {opened} accounts (RESOURCE_EXHAUSTED naming the flag); alice opened hers")


def nothing_leaks_and_control_chars_are_refused(pb, alice, bob):
    for account in ("a-main", "no-such-account"):
        for method, request in [
            ("GetBalance", pb.GetBalanceRequest(account_id=account)),
            ("Deposit", pb.DepositRequest(account_id=account, amount=1, request_id="x")),
            ("Withdraw", pb.WithdrawRequest(account_id=account, amount=1, request_id="x")),
            ("GetOperation", pb.GetOperationRequest(account_id=account, request_id="x")),
            ("Transfer", pb.TransferRequest(from_account_id=account, to_account_id="b-main",
                                            amount=1, request_id="x")),
        ]:
            code, _ = bob.call(method, request)
            expect(code == grpc.StatusCode.PERMISSION_DENIED, f"bob's {method} on {account}: {code}")
    for bad in ("nul\0id", "new\nline", "del\x7f", "c1\x85"):
        for method, request in [
            ("OpenAccount", pb.OpenAccountRequest(account_id=bad, initial_balance=1)),
            ("Deposit", pb.DepositRequest(account_id="a-main", amount=1, request_id=bad)),
            ("GetOperation", pb.GetOperationRequest(account_id="a-main", request_id=bad)),
        ]:
            code, _ = alice.call(method, request)
            expect(code == grpc.StatusCode.INVALID_ARGUMENT, f"{method} with {bad!r}: {code}")
    print("existence: PERMISSION_DENIED alike for alice's account and for none; control characters: INVALID_ARGUMENT")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("phase", choices=["first", "restarted"])
    p.add_argument("--target", required=True)
    p.add_argument("--tokens", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--quota", type=int, required=True)
    args = p.parse_args()
    pb, pb_grpc = stubs()
    channel = grpc.insecure_channel(args.target)
    grpc.channel_ready_future(channel).result(timeout=TIMEOUT_S)
    stub = pb_grpc.BankStub(channel)
    alice, bob = Client(stub, pb, ALICE), Client(stub, pb, BOB)
    if args.phase == "first":
        expect(alice.open("a-main", 1000)[0] == grpc.StatusCode.OK, "alice opens a-main")
        expect(bob.open("b-main", 1000)[0] == grpc.StatusCode.OK, "bob opens b-main")
        revoked_stream_stops_spending(args, pb, alice, bob)
        one_principal_cannot_take_every_slot(args, alice, bob)
        nothing_leaks_and_control_chars_are_refused(pb, alice, bob)
        return
    code, answer = bob.open("b-after-restart", 1)
    expect(code == grpc.StatusCode.RESOURCE_EXHAUSTED, f"after a restart bob's open: {code} {answer}")
    expect(alice.open("a-after-restart", 1)[0] == grpc.StatusCode.OK, "alice opens after a restart")
    code, a = alice.balance("a-main")
    expect(code == grpc.StatusCode.OK and a.balance == 997, f"alice's balance after a restart: {a}")
    print("restart: bob's recovered accounts still count (RESOURCE_EXHAUSTED); alice opens hers")


if __name__ == "__main__":
    main()
