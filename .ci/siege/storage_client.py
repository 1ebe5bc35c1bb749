#!/usr/bin/env python3
"""The client side of .ci/siege/storage.sh (attack 6, storage tampering).

Stubs are generated from proto/ at start (grpcio-tools), as in
examples/python/bank_client.py. Two modes:

  deposit-until-refused ACCOUNT READY_FILE: opens ACCOUNT (balance 0),
      deposits 1 at a time (each with its own request id), touches READY_FILE
      after 20 acknowledged deposits and goes on until a deposit is refused.
      The refusal must be UNAVAILABLE; then the balance must still read
      exactly the acknowledged sum (reads continue), and another deposit and
      an OpenAccount must be UNAVAILABLE too. Gives up after 20 s.
  deposits ACCOUNT N: opens ACCOUNT and makes N acknowledged deposits.

Prints one line per finding; exits 1 on any surprise.
"""

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

import grpc

REPO_ROOT = Path(__file__).resolve().parents[2]
GIVE_UP_S = 20.0
READY_AFTER = 20
CALL_TIMEOUT_S = 5.0


def stubs(out_dir):
    from grpc_tools import protoc

    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    proto = REPO_ROOT / "proto"
    args = ["protoc", f"-I{proto}", f"-I{well_known}", f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}", str(proto / "bank/v1/bank.proto")]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, str(out_dir))
    return (importlib.import_module("bank.v1.bank_pb2"),
            importlib.import_module("bank.v1.bank_pb2_grpc"))


def fail(why):
    print(f"storage client: FAILED: {why}", flush=True)
    sys.exit(1)


class Client:
    def __init__(self, pb, stub, token):
        self.pb, self.stub = pb, stub
        self.meta = [("authorization", f"Bearer {token}")] if token else []

    def call(self, method, request):
        return getattr(self.stub, method)(request, timeout=CALL_TIMEOUT_S, metadata=self.meta)

    def open(self, account):
        self.call("OpenAccount", self.pb.OpenAccountRequest(account_id=account, initial_balance=0))

    def deposit(self, account, rid):
        return self.call("Deposit", self.pb.DepositRequest(account_id=account, amount=1, request_id=rid))

    def balance(self, account):
        return self.call("GetBalance", self.pb.GetBalanceRequest(account_id=account)).balance


def until_refused(client, account, ready):
    client.open(account)
    acked, started = 0, time.monotonic()
    while time.monotonic() - started < GIVE_UP_S:
        try:
            client.deposit(account, f"d{acked}")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE:
                fail(f"deposit refused with {e.code()}, not UNAVAILABLE: {e.details()}")
            print(f"deposit {acked + 1} refused UNAVAILABLE: {e.details()}", flush=True)
            break
        acked += 1
        if acked == READY_AFTER:
            Path(ready).touch()
        time.sleep(0.005)
    else:
        fail(f"{acked} deposits acknowledged in {GIVE_UP_S:.0f} s, none refused")
    balance = client.balance(account)
    if balance != acked:
        fail(f"balance reads {balance}, but {acked} deposits of 1 were acknowledged")
    print(f"reads continue: balance {balance} = the {acked} acknowledged deposits", flush=True)
    for what, call in [("a deposit", lambda: client.deposit(account, "again")),
                       ("an OpenAccount", lambda: client.open(account + "-2"))]:
        try:
            call()
            fail(f"{what} was acknowledged after the refusal")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE:
                fail(f"{what} answered {e.code()}, not UNAVAILABLE")
    print("later writes: UNAVAILABLE", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--token", default="")
    p.add_argument("mode", choices=["deposit-until-refused", "deposits"])
    p.add_argument("account")
    p.add_argument("arg")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pb, grpc_mod = stubs(tmp)
        channel = grpc.insecure_channel(a.target)
        client = Client(pb, grpc_mod.BankStub(channel), a.token)
        if a.mode == "deposit-until-refused":
            until_refused(client, a.account, a.arg)
        else:
            client.open(a.account)
            for i in range(int(a.arg)):
                client.deposit(a.account, f"d{i}")
            print(f"{a.arg} deposits acknowledged", flush=True)


if __name__ == "__main__":
    main()
