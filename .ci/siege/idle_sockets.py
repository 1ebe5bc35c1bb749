#!/usr/bin/env python3
"""Tools of .ci/siege/idle-sockets.sh (attack 1, "idle sockets stop the server").

hold   opens N TCP connections that send nothing (or a given prefix, e.g. half
       an HTTP request), prints "ready EPOCH" once all are connected, then watches
       which ones the server closes and when; on exit (after --seconds, or once
       all are closed) prints one JSON summary line.
probe  the victim: one fresh connection (from --source if given, over TLS if
       --tls-ca), and on it, in order, the calls given (health, open, deposit,
       balance), with a raw HTTP/2 gRPC client of a few lines (no grpcio);
       prints one JSON line: elapsed seconds (from --since, an epoch time,
       if given: e.g. when the attack began) and each answer. Exits 1 if any
       call fails or it ended later than --deadline.
scrape GET /metrics within --deadline; prints the body.

Only the standard library; loopback only.
"""

import argparse
import json
import os
import selectors
import socket
import ssl
import struct
import sys
import time
import urllib.request

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


def target(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


# ---------------------------------------------------------------- hold


CONNECT_BATCH = 256  # connections in flight at once (well inside any listen backlog)


def open_idle(addr, count, sources, send):
    """count connections to addr, round-robin over the source addresses;
    connected a batch at a time, so a full backlog's SYN retries overlap."""
    sockets = []
    for first in range(0, count, CONNECT_BATCH):
        batch = []
        for i in range(first, min(count, first + CONNECT_BATCH)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if sources:
                s.bind((sources[i % len(sources)], 0))
            s.setblocking(False)
            s.connect_ex(addr)
            batch.append(s)
        sel = selectors.DefaultSelector()
        for s in batch:
            sel.register(s, selectors.EVENT_WRITE)
        pending = len(batch)
        while pending:
            for key, _ in sel.select(timeout=30):
                s = key.fileobj
                sel.unregister(s)
                pending -= 1
                error = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    raise OSError(error, f"connect: {os.strerror(error)}")
                if send:
                    s.send(send)
                sockets.append((s, time.monotonic()))
        sel.close()
    return sockets


def hold(args):
    sources = [x for x in args.sources.split(",") if x]
    send = args.send.encode().decode("unicode_escape").encode("latin-1") if args.send else b""
    sockets = open_idle(target(args.target), args.count, sources, send)
    print(f"ready {time.time():.3f}", flush=True)
    ready = time.monotonic()
    sel = selectors.DefaultSelector()
    for s, opened in sockets:
        sel.register(s, selectors.EVENT_READ, opened)
    closes = []  # (seconds after its connect, seconds after ready)
    while len(closes) < len(sockets) and time.monotonic() - ready < args.seconds:
        for key, _ in sel.select(timeout=0.05):
            try:
                data = key.fileobj.recv(4096)
            except (ConnectionResetError, BlockingIOError, OSError) as e:
                if isinstance(e, BlockingIOError):
                    continue
                data = b""
            if data:
                continue  # an answer (e.g. an HTTP error): wait for the close
            now = time.monotonic()
            closes.append((now - key.data, now - ready))
            sel.unregister(key.fileobj)
    at_once = sum(1 for after_connect, _ in closes if after_connect < args.at_once_s)
    summary = {
        "opened": len(sockets),
        "closed": len(closes),
        "closed_at_once": at_once,
        "still_open": len(sockets) - len(closes),
        "last_close_s": round(max((c[1] for c in closes), default=0.0), 3),
        "first_late_close_s": round(
            min((c[1] for c in closes if c[0] >= args.at_once_s), default=0.0), 3
        ),
    }
    print(json.dumps(summary), flush=True)


# ---------------------------------------------------------------- probe


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, value):
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    raw = value.encode()
    return varint(number << 3 | 2) + varint(len(raw)) + raw


def parse(message):
    """{field number: value} of a protobuf message (varints and byte strings)."""
    fields, i = {}, 0
    while i < len(message):
        key, i = read_varint(message, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], i = read_varint(message, i)
        elif wire == 2:
            length, i = read_varint(message, i)
            fields[number], i = message[i : i + length], i + length
        else:
            raise ValueError(f"wire type {wire}")
    return fields


def read_varint(data, i):
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def hpack_int(n):
    if n < 127:
        return bytes([n])
    return bytes([127]) + varint(n - 127)


def literal(name, value):
    """A header as HPACK 'literal without indexing, new name', no Huffman."""
    return b"\x00" + hpack_int(len(name)) + name.encode() + hpack_int(len(value)) + value.encode()


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


class H2:
    """Just enough HTTP/2 for unary gRPC calls, one at a time."""

    def __init__(self, sock, scheme, authority, token):
        self.sock, self.scheme, self.authority, self.token = sock, scheme, authority, token
        self.buf, self.next_stream = b"", 1
        sock.sendall(PREFACE + frame(SETTINGS, 0, 0))

    def read_frame(self):
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self.buf += chunk
        length = int.from_bytes(self.buf[:3], "big")
        kind, flags = self.buf[3], self.buf[4]
        stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
        payload, self.buf = self.buf[9 : 9 + length], self.buf[9 + length :]
        return kind, flags, stream, payload

    def call(self, path, message):
        stream, self.next_stream = self.next_stream, self.next_stream + 2
        headers = [(":method", "POST"), (":scheme", self.scheme), (":path", path),
                   (":authority", self.authority), ("content-type", "application/grpc"), ("te", "trailers")]
        if self.token:
            headers.append(("authorization", f"Bearer {self.token}"))
        block = b"".join(literal(n, v) for n, v in headers)
        body = b"\x00" + struct.pack(">I", len(message)) + message
        self.sock.sendall(frame(HEADERS, END_HEADERS, stream, block) + frame(DATA, END_STREAM, stream, body))
        data = b""
        while True:
            kind, flags, sid, payload = self.read_frame()
            if kind == SETTINGS and not flags & ACK:
                self.sock.sendall(frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                self.sock.sendall(frame(PING, ACK, 0, payload))
            elif kind == GOAWAY:
                raise ConnectionError("GOAWAY from the server")
            elif sid == stream and kind == RST_STREAM:
                raise ConnectionError("the stream was reset")
            elif sid == stream and kind == DATA:
                data += payload
            if sid == stream and kind in (DATA, HEADERS) and flags & END_STREAM:
                break
        if len(data) < 5:
            raise RuntimeError(f"{path}: an error status (no message)")
        return parse(data[5:])


def run_call(h2, spec):
    kind, *rest = spec.split(":")
    if kind == "health":
        fields = h2.call("/grpc.health.v1.Health/Check", b"")
        assert fields.get(1) == 1, f"health: {fields}"
        return {"health": "SERVING"}
    if kind == "open":
        account, balance = rest
        fields = h2.call("/bank.v1.Bank/OpenAccount", field(1, account) + field(2, int(balance)))
        return {"open": account, "balance": fields.get(2, 0)}
    if kind == "deposit":
        account, amount, rid = rest
        fields = h2.call("/bank.v1.Bank/Deposit", field(1, account) + field(2, int(amount)) + field(3, rid))
        assert fields.get(2) == 1, f"deposit not approved: {fields}"
        return {"deposit": account, "balance": fields.get(3, 0)}
    if kind == "balance":
        (account,) = rest
        fields = h2.call("/bank.v1.Bank/GetBalance", field(1, account))
        return {"account": account, "balance": fields.get(2, 0)}
    raise ValueError(f"unknown call {spec}")


def probe(args):
    host, port = target(args.target)
    started = time.time()
    since = args.since or started
    result = {"ok": False, "started_at": round(started, 3), "started_after_s": round(started - since, 3)}
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(args.deadline)
        if args.source:
            sock.bind((args.source, 0))
        sock.connect((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        scheme = "http"
        if args.tls_ca:
            context = ssl.create_default_context(cafile=args.tls_ca)
            context.set_alpn_protocols(["h2"])
            sock = context.wrap_socket(sock, server_hostname="localhost")
            scheme = "https"
        h2 = H2(sock, scheme, f"localhost:{port}", args.token)
        result["answers"] = [run_call(h2, spec) for spec in args.call]
        result["ok"] = True
    except Exception as e:  # noqa: BLE001 - any failure is the victim's failure
        result["error"] = f"{type(e).__name__}: {e}"
    result["elapsed_s"] = round(time.time() - since, 3)
    print(json.dumps(result), flush=True)
    if not result["ok"] or result["elapsed_s"] > args.deadline:
        sys.exit(1)


def scrape(args):
    with urllib.request.urlopen(f"http://{args.target}/metrics", timeout=args.deadline) as r:
        sys.stdout.write(r.read().decode())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hold")
    h.add_argument("--target", required=True)
    h.add_argument("--count", type=int, required=True)
    h.add_argument("--sources", default="", help="comma-separated source addresses (127/8)")
    h.add_argument("--send", default="", help="bytes sent after connecting (escapes allowed)")
    h.add_argument("--seconds", type=float, required=True, help="longest watch")
    h.add_argument("--at-once-s", type=float, default=0.5, help="a close this soon after connect is 'at once'")
    p = sub.add_parser("probe")
    p.add_argument("--target", required=True)
    p.add_argument("--source", default="")
    p.add_argument("--tls-ca", default="")
    p.add_argument("--token", default="")
    p.add_argument("--deadline", type=float, default=1.0, help="seconds, from --since if given")
    p.add_argument("--since", type=float, default=0.0, help="epoch seconds the deadline counts from")
    p.add_argument("--call", action="append", required=True)
    s = sub.add_parser("scrape")
    s.add_argument("--target", required=True)
    s.add_argument("--deadline", type=float, default=1.0)
    args = parser.parse_args()
    {"hold": hold, "probe": probe, "scrape": scrape}[args.cmd](args)


if __name__ == "__main__":
    main()
