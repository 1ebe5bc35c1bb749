#!/usr/bin/env python3
"""Attack 3 of issue 18, as a client: alice withdraws with request id
`pay-rent`; bob sends GetOperation of many unseen ids on his own account
(each fences an id); alice retries `pay-rent`. Exits 0 when the retry is a
replay and alice's balance did not move, 1 (saying why) otherwise.
Stubs are generated from proto/ at start (grpcio-tools), as
examples/python/bank_client.py does."""

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

import grpc

REPO_ROOT = Path(__file__).resolve().parents[2]


def stubs(out_dir):
    from grpc_tools import protoc

    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    proto_dir = REPO_ROOT / "proto"
    args = ["grpc_tools.protoc", f"-I{proto_dir}", f"-I{well_known}", f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}", str(proto_dir / "bank/v1/bank.proto")]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed on bank.proto")
    sys.path.insert(0, str(out_dir))
    return (importlib.import_module("bank.v1.bank_pb2"), importlib.import_module("bank.v1.bank_pb2_grpc"))


def attack(pb, bank, alice, bob, fences):
    """Runs the attack; returns what went wrong, or None."""
    as_alice = [("authorization", f"Bearer {alice}")]
    as_bob = [("authorization", f"Bearer {bob}")]
    bank.OpenAccount(pb.OpenAccountRequest(account_id="alice-acc", initial_balance=1000),
                     metadata=as_alice, timeout=10)
    bank.OpenAccount(pb.OpenAccountRequest(account_id="bob-acc", initial_balance=0),
                     metadata=as_bob, timeout=10)
    rent = pb.WithdrawRequest(account_id="alice-acc", amount=100, request_id="pay-rent")
    paid = bank.Withdraw(rent, metadata=as_alice, timeout=10)
    if paid.balance != 900 or paid.replayed:
        return f"alice's first withdrawal: {paid}"
    refused = 0
    for i in range(fences):
        try:
            bank.GetOperation(pb.GetOperationRequest(account_id="bob-acc", request_id=f"probe-{i}"),
                              metadata=as_bob, timeout=10)
        except grpc.RpcError as e:
            # Past the cap bob's own oldest fences go; an unseen id may be one of them.
            if e.code() != grpc.StatusCode.FAILED_PRECONDITION:
                return f"bob's GetOperation {i}: {e.code()} {e.details()}"
            refused += 1
    print(f"  bob: {fences} GetOperation of unseen ids ({refused} FAILED_PRECONDITION: his own forgotten ones)")
    retry = bank.Withdraw(rent, metadata=as_alice, timeout=10)
    print(f"  alice's retry of pay-rent: balance {retry.balance}, replayed={retry.replayed}")
    if not retry.replayed or retry.balance != 900:
        return f"alice's retry was applied again: {retry}"
    now = bank.GetBalance(pb.GetBalanceRequest(account_id="alice-acc"), metadata=as_alice, timeout=10)
    if (now.balance, now.sequence) != (900, 1):
        return f"alice's balance moved: {now}"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--alice-token", required=True)
    parser.add_argument("--bob-token", required=True)
    parser.add_argument("--fences", type=int, default=1200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bank-siege-stubs-") as out_dir:
        pb, pb_grpc = stubs(out_dir)
        with grpc.insecure_channel(args.target) as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
            wrong = attack(pb, pb_grpc.BankStub(channel), args.alice_token, args.bob_token, args.fences)
    if wrong:
        print(f"  ATTACK SUCCEEDED: {wrong}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
