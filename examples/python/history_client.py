#!/usr/bin/env python3
"""Drives a bank.v1 server from Python and writes a history file that
`stress-client check` judges (format: docs/history.md, version 1).

It shows that the history format is a contract any client can produce: a few
threads send deposits, withdrawals, transfers and balance reads on fresh
accounts, time each call on the process's monotonic clock, settle failed
calls with GetOperation, read the final balances and write the lines.

    pip install -r examples/python/requirements.txt
    python examples/python/history_client.py --target 127.0.0.1:50051 --history py.jsonl
    stress-client check py.jsonl            # exit 0 passed, 1 failed, 3 inconclusive
"""

import argparse
import json
import random
import sys
import tempfile
import threading
import time
import uuid

import grpc

from bank_client import DEFAULT_PROTO_DIR, generate_stubs

OUTCOMES = {1: "approved", 2: "insufficient_funds", 3: "not_applied"}


class Recorder:
    """The history's records, appended from several threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []
        self.reads = []

    def op(self, line):
        with self.lock:
            self.ops.append(line)

    def read(self, line):
        with self.lock:
            self.reads.append(line)


def answered(line, r, transfer):
    """Fills an op line from an OperationResult."""
    name = OUTCOMES.get(r.outcome)
    if name is None:  # outside the contract: recorded like an unknown outcome
        line.update(outcome="invalid", recv_ns=None)
        return line
    line.update(outcome=name, balance=r.balance, sequence=r.sequence)
    if r.replayed:
        line["flags"] = ["replayed"]
    if transfer:
        line.update(to_balance=r.to_balance, to_sequence=r.to_sequence)
    return line


def one_op(bank, pb, ids, rng, request_id, timeout):
    """Sends one random money op; returns its history line."""
    a = rng.randrange(len(ids))
    amount = rng.randint(1, 100)
    kind = rng.choice(["deposit", "withdraw", "withdraw", "transfer"] if len(ids) > 1 else ["deposit", "withdraw"])
    # request_id lets `stress-client check --target` settle the op if it stays unknown.
    line = {"type": "op", "account": a, "kind": kind, "amount": amount, "request_id": request_id}
    if kind == "transfer":
        to = (a + 1 + rng.randrange(len(ids) - 1)) % len(ids)
        line["to_account"] = to
        call, req = bank.Transfer, pb.TransferRequest(
            from_account_id=ids[a], to_account_id=ids[to], amount=amount, request_id=request_id)
    elif kind == "deposit":
        call, req = bank.Deposit, pb.DepositRequest(account_id=ids[a], amount=amount, request_id=request_id)
    else:
        call, req = bank.Withdraw, pb.WithdrawRequest(account_id=ids[a], amount=amount, request_id=request_id)
    line["send_ns"] = time.monotonic_ns()
    try:
        r = call(req, timeout=timeout)
        line["recv_ns"] = time.monotonic_ns()
        return answered(line, r, kind == "transfer")
    except grpc.RpcError:
        return settle(bank, pb, ids[a], request_id, line, kind == "transfer", timeout)


def settle(bank, pb, account_id, request_id, line, transfer, timeout):
    """The call failed: asks GetOperation; unknown if that cannot tell."""
    try:
        r = bank.GetOperation(pb.GetOperationRequest(account_id=account_id, request_id=request_id), timeout=timeout)
        line.update(resolved=True, recv_ns=time.monotonic_ns())
        return answered(line, r, transfer)
    except grpc.RpcError:
        line.update(outcome="unknown", recv_ns=None)
        return line


def worker(bank, pb, ids, rec, args, t):
    rng = random.Random(args.seed * 1000 + t)
    for n in range(args.ops // args.threads):
        rec.op(one_op(bank, pb, ids, rng, f"{args.run_id}-{t:x}-{n:x}", args.timeout))
        if rng.random() < args.read_ratio:
            a = rng.randrange(len(ids))
            send = time.monotonic_ns()
            try:
                acc = bank.GetBalance(pb.GetBalanceRequest(account_id=ids[a]), timeout=args.timeout)
            except grpc.RpcError:
                continue
            rec.read({"type": "read", "account": a, "send_ns": send, "recv_ns": time.monotonic_ns(),
                      "balance": acc.balance, "sequence": acc.sequence})


def anchor():
    return {"mono_ns": time.monotonic_ns(), "wall_unix_ns": time.time_ns()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", required=True, help="host:port of a plaintext bank.v1 server")
    p.add_argument("--history", required=True, help="where to write the history (.jsonl)")
    p.add_argument("--ops", type=int, default=600)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--accounts", type=int, default=2)
    p.add_argument("--initial-balance", type=int, default=500)
    p.add_argument("--read-ratio", type=float, default=0.1)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--run-id", default=uuid.uuid4().hex[:12])
    args = p.parse_args()
    if args.ops < 1 or args.threads < 1 or args.accounts < 1:
        p.error("--ops, --threads and --accounts must be at least 1")
    pb, pb_grpc = generate_stubs(DEFAULT_PROTO_DIR, tempfile.mkdtemp())
    bank = pb_grpc.BankStub(grpc.insecure_channel(args.target))
    start = anchor()
    ids = [f"py-{args.run_id}-{i}" for i in range(args.accounts)]
    for i in ids:
        bank.OpenAccount(pb.OpenAccountRequest(account_id=i, initial_balance=args.initial_balance), timeout=args.timeout)
    rec = Recorder()
    threads = [threading.Thread(target=worker, args=(bank, pb, ids, rec, args, t)) for t in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    finals = []
    for a, i in enumerate(ids):
        acc = bank.GetBalance(pb.GetBalanceRequest(account_id=i), timeout=args.timeout)
        finals.append({"type": "final", "account": a, "balance": acc.balance, "sequence": acc.sequence})
    lines = [{"type": "header", "format": "bank-history", "version": 1, "run_id": args.run_id,
              "process_id": 0, "role": "run", "start_anchor": start}]
    lines += [{"type": "account", "id": i, "initial_balance": args.initial_balance} for i in ids]
    lines += rec.ops + rec.reads + finals
    lines.append({"type": "end", "accounts": len(ids), "ops": len(rec.ops), "reads": len(rec.reads),
                  "duplicates": 0, "invalid": 0, "finals": len(finals), "end_anchor": anchor()})
    with open(args.history, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, separators=(",", ":")) + "\n")
    print(f"wrote {len(rec.ops)} ops and {len(rec.reads)} reads to {args.history}")


if __name__ == "__main__":
    sys.exit(main())
