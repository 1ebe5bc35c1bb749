//! Hostile input against a real server: raw HTTP/2 requests whose bodies are
//! not valid gRPC (garbage, truncated frames, lying length prefixes, a
//! compressed flag without an encoding, bad protobuf, non-UTF-8 strings,
//! oversized messages) on every `bank.v1.Bank` method, plus extreme but
//! well-formed requests (u64::MAX amounts, empty, 10 KB and unicode ids,
//! conflicting request ids, more request ids than the retention bound), and
//! unfriendly clients (resets mid-frame, junk metadata, an idle stream held
//! open across shutdown, 10,000 streams open at once).
//!
//! Every case asserts the gRPC status the server answers with, that the same
//! connection still serves a normal call afterwards, and that the accounts the
//! hostile requests aimed at are untouched. Run with `--nocapture` to see the
//! input → status table.

#[allow(dead_code, unused_imports)]
mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use bank::v1::Account;
use bank_server::admission::ops::Ops;
use bank_server::backend::ledger::Ledger;
use bank_server::ServerConfig;
use bytes::{Buf, Bytes, BytesMut};
use common::*;
use prost::Message;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;

const VICTIM: &str = "victim";
const OTHER: &str = "other";
const VICTIM_BALANCE: u64 = 1_000;
/// The server's default `max_message_bytes`.
const LIMIT: usize = 64 * 1024;
const FIVE_MB: usize = 5 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Protobuf and gRPC framing by hand (prost only writes valid messages).

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    let mut buf = Vec::new();
    varint(&mut buf, v);
    buf.len()
}

/// A length-delimited field: tag, length, bytes (no UTF-8 check: that is the point).
fn field_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(buf, (u64::from(field) << 3) | 2);
    varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// `payload` followed by unknown fields (numbers 14 and 15, which no bank
/// message uses) so that the whole is exactly `total` bytes. prost skips
/// unknown fields, so the padded message means exactly what `payload` means:
/// if the server accepted it, it would take effect.
fn padded(payload: &[u8], total: usize) -> Vec<u8> {
    let mut out = payload.to_vec();
    assert!(total >= out.len() + 4, "room for the padding fields");
    loop {
        let room = total - out.len();
        // One field 15: tag (1 byte) + varint(len) + len bytes == room.
        if let Some(len) = (0..room)
            .rev()
            .find(|&len| 1 + varint_len(len as u64) + len == room)
        {
            field_bytes(&mut out, 15, &vec![b'p'; len]);
            assert_eq!(out.len(), total);
            return out;
        }
        // No exact fit at a varint boundary: spend two bytes on field 14 = 0.
        out.extend_from_slice(&[14 << 3, 0]);
    }
}

/// A gRPC length-prefixed message whose header claims `declared` bytes.
fn frame(compressed: u8, declared: u32, body: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(compressed);
    out.extend_from_slice(&declared.to_be_bytes());
    out.extend_from_slice(body);
    out.into()
}

/// A well-formed gRPC message.
fn msg(body: &[u8]) -> Bytes {
    frame(0, u32::try_from(body.len()).unwrap(), body)
}

/// Splits a response body into its gRPC messages.
fn parse_frames(mut data: Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    while data.has_remaining() {
        assert!(data.len() >= 5, "a whole gRPC header");
        assert_eq!(data.get_u8(), 0, "the server does not compress");
        let len = data.get_u32() as usize;
        assert!(data.len() >= len, "a whole gRPC message");
        out.push(data.split_to(len));
    }
    out
}

// ---------------------------------------------------------------------------
// A raw HTTP/2 client.

/// One HTTP/2 connection driven by hand.
struct Raw {
    send: h2::client::SendRequest<Bytes>,
    addr: SocketAddr,
}

/// What the server answered to one raw call.
#[derive(Debug)]
struct Reply {
    code: Code,
    message: String,
    /// True when the status came in the only HEADERS frame (gRPC's
    /// "Trailers-Only" response), false when it came in trailers after a body.
    trailers_only: bool,
    messages: Vec<Bytes>,
}

impl Reply {
    fn place(&self) -> &'static str {
        if self.trailers_only {
            "trailers-only"
        } else {
            "trailers"
        }
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<(Code, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Some((Code::from_i32(code), message))
}

async fn raw_connect(addr: SocketAddr) -> Raw {
    let tcp = TcpStream::connect(addr).await.expect("tcp connect");
    let (send, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Raw { send, addr }
}

impl Raw {
    /// Sends `body` as the whole request body of `method` and reads the answer.
    async fn call(&mut self, method: &str, headers: &[(&str, &str)], body: Bytes) -> Reply {
        tokio::time::timeout(PATIENCE, self.call_inner(method, headers, body))
            .await
            .unwrap_or_else(|_| panic!("{method}: no answer within {PATIENCE:?}"))
    }

    fn request(&self, method: &str, headers: &[(&str, &str)]) -> http::Request<()> {
        let mut request = http::Request::post(format!("http://{}/bank.v1.Bank/{method}", self.addr))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap()
    }

    async fn call_inner(&mut self, method: &str, headers: &[(&str, &str)], body: Bytes) -> Reply {
        let mut send = self
            .send
            .clone()
            .ready()
            .await
            .expect("the connection is still up");
        let (response, mut body_tx) = send
            .send_request(self.request(method, headers), false)
            .expect("send the request headers");
        // h2 buffers what the flow-control window does not let through yet. The
        // server may already have answered (and closed the stream) from the
        // headers or the first bytes; then sending fails, and the answer below
        // is what counts.
        let _ = body_tx.send_data(body, true);
        let response = response
            .await
            .unwrap_or_else(|e| panic!("{method}: the server reset the stream instead of answering: {e}"));
        assert_eq!(response.status(), http::StatusCode::OK, "{method}: HTTP status");
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.as_bytes().to_vec());
        assert!(
            content_type.is_some_and(|ct| ct.starts_with(b"application/grpc")),
            "{method}: a gRPC response"
        );
        if let Some((code, message)) = grpc_status(response.headers()) {
            return Reply {
                code,
                message,
                trailers_only: true,
                messages: Vec::new(),
            };
        }
        let mut body = response.into_body();
        let mut data = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap_or_else(|e| panic!("{method}: response body broke: {e}"));
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = body
            .trailers()
            .await
            .unwrap_or_else(|e| panic!("{method}: trailers broke: {e}"))
            .unwrap_or_else(|| panic!("{method}: no trailers"));
        let (code, message) = grpc_status(&trailers).unwrap_or_else(|| panic!("{method}: no grpc-status"));
        Reply {
            code,
            message,
            trailers_only: false,
            messages: parse_frames(data.freeze()),
        }
    }

    /// Opens a call, sends `partial` and resets the stream without finishing it.
    async fn reset_midway(&mut self, method: &str, partial: Bytes) {
        let mut send = self
            .send
            .clone()
            .ready()
            .await
            .expect("the connection is still up");
        let (_response, mut body_tx) = send
            .send_request(self.request(method, &[]), false)
            .expect("send the request headers");
        // A partial frame may already be refused (stream closed): that is fine too.
        let _ = body_tx.send_data(partial, false);
        body_tx.send_reset(h2::Reason::CANCEL);
    }

    /// A normal `GetBalance` on this connection: the server still serves it.
    async fn balance(&mut self, id: &str) -> (u64, u64) {
        let reply = self
            .call("GetBalance", &[], msg(&get_balance(id).encode_to_vec()))
            .await;
        assert_eq!(reply.code, Code::Ok, "GetBalance after hostile input: {reply:?}");
        let account = Account::decode(reply.messages[0].clone()).expect("an Account");
        (account.balance, account.sequence)
    }
}

// ---------------------------------------------------------------------------
// Every method, with a valid request that would change something if applied.

struct Method {
    name: &'static str,
    streaming: bool,
    /// A valid request aimed at the victim (applied, it would change state).
    payload: Vec<u8>,
    /// Field numbers of the account-id and request-id strings.
    account_field: u32,
    request_field: Option<u32>,
}

fn methods() -> Vec<Method> {
    vec![
        Method {
            name: "OpenAccount",
            streaming: false,
            payload: open_req("intruder", 5).encode_to_vec(),
            account_field: 1,
            request_field: None,
        },
        Method {
            name: "GetBalance",
            streaming: false,
            payload: get_balance(VICTIM).encode_to_vec(),
            account_field: 1,
            request_field: None,
        },
        Method {
            name: "Deposit",
            streaming: false,
            payload: deposit(VICTIM, 7, "hostile").encode_to_vec(),
            account_field: 1,
            request_field: Some(3),
        },
        Method {
            name: "Withdraw",
            streaming: false,
            payload: withdraw(VICTIM, 7, "hostile").encode_to_vec(),
            account_field: 1,
            request_field: Some(3),
        },
        Method {
            name: "WithdrawStream",
            streaming: true,
            payload: withdraw(VICTIM, 7, "hostile-stream").encode_to_vec(),
            account_field: 1,
            request_field: Some(3),
        },
        Method {
            name: "Transfer",
            streaming: false,
            payload: transfer(VICTIM, OTHER, 7, "hostile").encode_to_vec(),
            account_field: 1,
            request_field: Some(4),
        },
        Method {
            name: "GetOperation",
            streaming: false,
            payload: get_op(VICTIM, "hostile-fence").encode_to_vec(),
            account_field: 1,
            request_field: Some(2),
        },
    ]
}

/// One hostile request body and the status it must get.
struct Case {
    name: String,
    headers: Vec<(&'static str, &'static str)>,
    body: Bytes,
    expect: Code,
}

fn case(name: &str, body: Bytes, expect: Code) -> Case {
    Case {
        name: name.to_owned(),
        headers: Vec::new(),
        body,
        expect,
    }
}

fn cases(m: &Method) -> Vec<Case> {
    let p = &m.payload;
    let hundred = padded(p, 100);
    let mut out = vec![
        case(
            "garbage bytes (not a gRPC frame)",
            Bytes::from_static(b"\xde\xad\xbe\xef GET / HTTP/1.1\r\n\r\n not grpc at all"),
            Code::Internal,
        ),
        case(
            "garbage after a 0 flag (length prefix of ASCII text)",
            Bytes::from_static(b"\x00this is plain text, not protobuf"),
            Code::OutOfRange,
        ),
        case(
            "empty body (no message at all)",
            Bytes::new(),
            // A stream with no request is a stream that ends at once: OK, no answers.
            if m.streaming { Code::Ok } else { Code::Internal },
        ),
        case(
            "a lone byte (partial gRPC header)",
            Bytes::from_static(b"\x00"),
            Code::Internal,
        ),
        case(
            "truncated frame: header says 100 bytes, 10 follow",
            frame(0, 100, &hundred[..10]),
            Code::Internal,
        ),
        case(
            "length prefix 4 GiB - 1 (u32::MAX), 10 bytes follow",
            frame(0, u32::MAX, &hundred[..10]),
            Code::OutOfRange,
        ),
        case(
            "complete message of limit + 1 bytes",
            msg(&padded(p, LIMIT + 1)),
            Code::OutOfRange,
        ),
        case(
            "compressed flag set, no grpc-encoding",
            frame(1, u32::try_from(p.len()).unwrap(), p),
            Code::Internal,
        ),
        case(
            "compression flag 2 (neither 0 nor 1)",
            frame(2, u32::try_from(p.len()).unwrap(), p),
            Code::Internal,
        ),
        Case {
            name: "grpc-encoding: gzip (not enabled) + compressed flag".into(),
            headers: vec![("grpc-encoding", "gzip")],
            body: frame(1, u32::try_from(p.len()).unwrap(), p),
            expect: Code::Unimplemented,
        },
        case(
            "valid frame, protobuf with wire type 7",
            msg(b"\x0f\x01\x02"),
            Code::Internal,
        ),
        case(
            "valid frame, protobuf string running past the end",
            msg(b"\x0a\x64abc"),
            Code::Internal,
        ),
        case(
            "valid frame, protobuf varint of 11 bytes",
            msg(b"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
            Code::Internal,
        ),
        case(
            "valid frame, account id sent with the varint wire type",
            msg(b"\x08\x05"),
            Code::Internal,
        ),
        case(
            "5 MB message (valid protobuf, 5 MiB of unknown field)",
            msg(&padded(p, FIVE_MB)),
            Code::OutOfRange,
        ),
    ];
    let mut non_utf8 = p.clone();
    field_bytes(&mut non_utf8, m.account_field, b"vic\xfftim\xc3");
    out.push(case("non-UTF-8 account id", msg(&non_utf8), Code::Internal));
    if let Some(field) = m.request_field {
        let mut non_utf8 = p.clone();
        field_bytes(&mut non_utf8, field, b"\xc0\x80id");
        out.push(case("non-UTF-8 request id", msg(&non_utf8), Code::Internal));
    }
    out
}

/// The accounts the hostile calls aim at are exactly as opened, and no
/// hostile request id was recorded or fenced.
async fn assert_untouched(bank: &mut Bank) {
    assert_eq!(state(bank, VICTIM).await, (VICTIM_BALANCE, 0), "victim untouched");
    assert_eq!(state(bank, OTHER).await, (0, 0), "other untouched");
    assert_eq!(
        code(bank.get_balance(get_balance("intruder")).await),
        Code::NotFound,
        "no hostile OpenAccount took effect"
    );
    // GetOperation of an unseen id answers NOT_APPLIED with replayed = false;
    // an id a hostile call had recorded or fenced would answer replayed = true.
    for rid in ["hostile", "hostile-stream", "hostile-fence"] {
        let r = ok(bank.get_operation(get_op(VICTIM, rid)).await);
        assert_eq!(
            (r.outcome(), r.replayed),
            (Outcome::NotApplied, false),
            "request id {rid:?} was never seen"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_answers_malformed_frames_with_a_status_and_keeps_serving() {
    let mut s = start(config(|_| {})).await;
    open_all(&mut s.bank, &[(VICTIM, VICTIM_BALANCE), (OTHER, 0)]).await;
    let mut raw = raw_connect(s.addr).await;
    let mut table = Vec::new();
    for m in methods() {
        for c in cases(&m) {
            let reply = raw.call(m.name, &c.headers, c.body).await;
            println!(
                "| {} | {} | {:?} ({}) | {} |",
                m.name,
                c.name,
                reply.code,
                reply.place(),
                reply.message
            );
            table.push((m.name, c.name.clone(), reply.code));
            assert_eq!(reply.code, c.expect, "{} / {}: {reply:?}", m.name, c.name);
            assert!(
                reply.messages.is_empty(),
                "{} / {}: no answer message",
                m.name,
                c.name
            );
            // The same connection serves a normal call afterwards, and nothing moved.
            assert_eq!(
                raw.balance(VICTIM).await,
                (VICTIM_BALANCE, 0),
                "{} / {}",
                m.name,
                c.name
            );
        }
    }
    assert_eq!(table.len(), 7 * 15 + 7 + 5, "every method got every case");
    // A fresh connection through the generated client is served too.
    let mut fresh = BankClient::new(connect(s.addr).await.unwrap());
    assert_untouched(&mut fresh).await;
    assert_eq!(state(&mut s.bank, VICTIM).await, (VICTIM_BALANCE, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_messages_on_a_unary_call_and_resets_midway_change_nothing() {
    let mut s = start(config(|_| {})).await;
    open_all(&mut s.bank, &[(VICTIM, VICTIM_BALANCE), (OTHER, 0)]).await;
    let mut raw = raw_connect(s.addr).await;
    for m in methods().into_iter().filter(|m| !m.streaming) {
        // A client that resets the stream halfway through a frame.
        let half = msg(&m.payload).slice(..m.payload.len() / 2 + 3);
        raw.reset_midway(m.name, half).await;
        assert_eq!(
            raw.balance(VICTIM).await,
            (VICTIM_BALANCE, 0),
            "{}: after a reset",
            m.name
        );
        // A whole message and the header of a second one that never comes.
        let mut body = msg(&m.payload).to_vec();
        body.extend_from_slice(&frame(0, 100, b"x")[..]);
        let reply = raw.call(m.name, &[], body.into()).await;
        println!(
            "| {} | whole message + truncated second | {:?} ({}) | {} |",
            m.name,
            reply.code,
            reply.place(),
            reply.message
        );
        assert_eq!(reply.code, Code::Internal, "{}: {reply:?}", m.name);
        assert_eq!(raw.balance(VICTIM).await, (VICTIM_BALANCE, 0), "{}", m.name);
    }
    // Two whole messages on a unary call: tonic decodes the first, reads and
    // discards the rest; the deposit takes effect once.
    open_all(&mut s.bank, &[("twice", 0)]).await;
    let one = deposit("twice", 5, "twice-1").encode_to_vec();
    let mut body = msg(&one).to_vec();
    body.extend_from_slice(&msg(&deposit("twice", 6, "twice-2").encode_to_vec()));
    let reply = raw.call("Deposit", &[], body.into()).await;
    assert_eq!(reply.code, Code::Ok, "{reply:?}");
    assert_eq!(reply.messages.len(), 1);
    assert_eq!(
        state(&mut s.bank, "twice").await,
        (5, 1),
        "applied once, the first message"
    );
    // An unknown method of the bank service, and an unknown service.
    let reply = raw.call("Steal", &[], msg(b"")).await;
    assert_eq!(reply.code, Code::Unimplemented, "{reply:?}");
    assert_untouched(&mut s.bank).await;
}

// ---------------------------------------------------------------------------
// Well-formed but extreme requests, through the generated client.

/// Every money-moving or reading RPC on `id`, each expected to be refused with
/// `expect` without touching any account.
async fn refused_everywhere(bank: &mut Bank, id: &str, rid: &str, expect: Code, what: &str) {
    let codes = [
        ("OpenAccount", code(bank.open_account(open_req(id, 1)).await)),
        ("GetBalance", code(bank.get_balance(get_balance(id)).await)),
        ("Deposit", code(bank.deposit(deposit(id, 1, rid)).await)),
        ("Withdraw", code(bank.withdraw(withdraw(id, 1, rid)).await)),
        (
            "WithdrawStream",
            code(stream_once(bank, withdraw(id, 1, rid)).await),
        ),
        (
            "Transfer from",
            code(bank.transfer(transfer(id, VICTIM, 1, rid)).await),
        ),
        (
            "Transfer to",
            code(bank.transfer(transfer(VICTIM, id, 1, rid)).await),
        ),
        (
            "GetOperation",
            code(
                bank.get_operation(get_op(id, if rid.is_empty() { "r" } else { rid }))
                    .await,
            ),
        ),
    ];
    for (method, got) in codes {
        println!("| {method} | {what} | {got:?} |");
        assert_eq!(got, expect, "{method} with {what}");
    }
}

/// Sends one request on a fresh `WithdrawStream`: its only answer, or the
/// status that ended the stream.
async fn stream_once(bank: &mut Bank, request: WithdrawRequest) -> Result<OperationResult, Status> {
    let mut answers = bank
        .withdraw_stream(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let first = answers.message().await?.expect("one answer or an error status");
    assert!(answers.message().await?.is_none(), "exactly one answer");
    Ok(first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_long_and_unicode_ids_are_checked_in_bytes() {
    let mut s = start(config(|_| {})).await;
    let bank = &mut s.bank;
    open_all(bank, &[(VICTIM, VICTIM_BALANCE), (OTHER, 0)]).await;
    let ten_kb = "k".repeat(10 * 1024);
    let bad_accounts = [
        ("".to_owned(), "empty account id"),
        ("x".repeat(129), "129-byte account id"),
        (ten_kb.clone(), "10 KB account id"),
        ("ü".repeat(65), "65 × 'ü' = 130-byte account id"),
    ];
    for (id, what) in &bad_accounts {
        refused_everywhere(bank, id, "rid", Code::InvalidArgument, what).await;
    }
    let bad_requests = [
        ("r".repeat(65), "65-byte request id"),
        (ten_kb.clone(), "10 KB request id"),
        ("é".repeat(33), "33 × 'é' = 66-byte request id"),
    ];
    for (rid, what) in &bad_requests {
        assert_eq!(
            code(bank.deposit(deposit(VICTIM, 1, rid)).await),
            Code::InvalidArgument,
            "{what}"
        );
        assert_eq!(
            code(bank.withdraw(withdraw(VICTIM, 1, rid)).await),
            Code::InvalidArgument,
            "{what}"
        );
        assert_eq!(
            code(stream_once(bank, withdraw(VICTIM, 1, rid)).await),
            Code::InvalidArgument,
            "{what}"
        );
        assert_eq!(
            code(bank.transfer(transfer(VICTIM, OTHER, 1, rid)).await),
            Code::InvalidArgument,
            "{what}"
        );
        assert_eq!(
            code(bank.get_operation(get_op(VICTIM, rid)).await),
            Code::InvalidArgument,
            "{what}"
        );
    }
    assert_eq!(
        code(bank.get_operation(get_op(VICTIM, "")).await),
        Code::InvalidArgument,
        "GetOperation needs a request id"
    );
    assert_eq!(
        state(bank, VICTIM).await,
        (VICTIM_BALANCE, 0),
        "nothing refused took effect"
    );
    assert_eq!(state(bank, OTHER).await, (0, 0));

    // Valid but unusual: exactly at the byte limits, multi-byte, format
    // characters (control characters are refused: see tests/principals.rs).
    let odd_accounts = [
        "ü".repeat(64),
        "a".repeat(128),
        "\u{200b}".into(),
        "🦀 bank \u{202e}".into(),
        " ".into(),
    ];
    for (i, id) in odd_accounts.iter().enumerate() {
        let rid = if i % 2 == 0 {
            "é".repeat(32)
        } else {
            " ".repeat(64)
        };
        ok(bank.open_account(open_req(id, 10)).await);
        let d = ok(bank.deposit(deposit(id, 5, &rid)).await);
        assert_eq!(
            (d.balance, d.sequence, d.request_id.as_str()),
            (15, 1, rid.as_str())
        );
        assert_eq!(
            ok(bank.get_operation(get_op(id, &rid)).await),
            OperationResult { replayed: true, ..d }
        );
        let w = stream_once(bank, withdraw(id, 15, ""))
            .await
            .expect("a stream answer");
        assert_eq!((w.outcome(), w.balance, w.sequence), (Outcome::Approved, 0, 2));
        assert_eq!(state(bank, id).await, (0, 2));
    }
    // An empty request id is allowed on money-moving calls: no idempotency, each applies.
    ok(bank.deposit(deposit(VICTIM, 1, "")).await);
    ok(bank.deposit(deposit(VICTIM, 1, "")).await);
    assert_eq!(state(bank, VICTIM).await, (VICTIM_BALANCE + 2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn u64_max_amounts_are_denied_in_band_or_refused_without_effect() {
    let mut s = start(config(|_| {})).await;
    let bank = &mut s.bank;
    const MAX: u64 = u64::MAX;
    open_all(bank, &[(VICTIM, VICTIM_BALANCE), (OTHER, 0), ("rich", MAX)]).await;

    // Withdrawing u64::MAX: denied in-band, takes a sequence number, no money moves.
    let w = ok(bank.withdraw(withdraw(VICTIM, MAX, "w-max")).await);
    assert_eq!(
        (w.outcome(), w.balance, w.sequence),
        (Outcome::InsufficientFunds, VICTIM_BALANCE, 1)
    );
    let w = stream_once(bank, withdraw(VICTIM, MAX, "ws-max"))
        .await
        .expect("a stream answer");
    assert_eq!(
        (w.outcome(), w.balance, w.sequence),
        (Outcome::InsufficientFunds, VICTIM_BALANCE, 2)
    );
    let t = ok(bank.transfer(transfer(VICTIM, OTHER, MAX, "t-max")).await);
    assert_eq!(
        (t.outcome(), t.balance, t.sequence, t.to_balance, t.to_sequence),
        (Outcome::InsufficientFunds, VICTIM_BALANCE, 3, 0, 1)
    );

    // Credits that would overflow: FAILED_PRECONDITION, nothing changes, no id recorded.
    assert_eq!(
        code(bank.deposit(deposit(VICTIM, MAX, "d-max")).await),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(bank.deposit(deposit("rich", 1, "d-one")).await),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(bank.transfer(transfer(VICTIM, "rich", 1, "t-one")).await),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(bank.transfer(transfer("rich", VICTIM, MAX, "t-all")).await),
        Code::FailedPrecondition
    );
    assert_eq!(state(bank, VICTIM).await, (VICTIM_BALANCE, 3));
    assert_eq!(state(bank, OTHER).await, (0, 1));
    assert_eq!(state(bank, "rich").await, (MAX, 0));
    for (id, rid) in [
        (VICTIM, "d-max"),
        ("rich", "d-one"),
        (VICTIM, "t-one"),
        ("rich", "t-all"),
    ] {
        let r = ok(bank.get_operation(get_op(id, rid)).await);
        assert_eq!(
            (r.outcome(), r.replayed),
            (Outcome::NotApplied, false),
            "{rid} left no trace"
        );
    }

    // At the edge, without overflow: u64::MAX moves whole.
    let t = ok(bank.transfer(transfer("rich", OTHER, MAX, "t-edge")).await);
    assert_eq!(
        (t.outcome(), t.balance, t.to_balance),
        (Outcome::Approved, 0, MAX)
    );
    let d = ok(bank.deposit(deposit("rich", MAX, "d-edge")).await);
    assert_eq!((d.outcome(), d.balance), (Outcome::Approved, MAX));
    let w = ok(bank.withdraw(withdraw("rich", MAX, "w-edge")).await);
    assert_eq!((w.outcome(), w.balance), (Outcome::Approved, 0));
    assert_eq!(
        code(bank.deposit(deposit(OTHER, 1, "")).await),
        Code::FailedPrecondition
    );
    assert_eq!(state(bank, OTHER).await, (MAX, 2), "t-max (denied) and t-edge");
    assert_eq!(state(bank, "rich").await, (0, 3));
    // Amount 0 is the other end: INVALID_ARGUMENT.
    assert_eq!(
        code(bank.deposit(deposit(VICTIM, 0, "")).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(bank.withdraw(withdraw(VICTIM, 0, "")).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(bank.transfer(transfer(VICTIM, OTHER, 0, "")).await),
        Code::InvalidArgument
    );
    assert_eq!(state(bank, VICTIM).await, (VICTIM_BALANCE, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_reused_with_other_parameters_is_already_exists_and_changes_nothing() {
    let mut s = start(config(|_| {})).await;
    let bank = &mut s.bank;
    open_all(bank, &[(VICTIM, VICTIM_BALANCE), (OTHER, 0), ("third", 0)]).await;
    let first = ok(bank.deposit(deposit(VICTIM, 5, "r")).await);
    assert_eq!((first.balance, first.sequence), (VICTIM_BALANCE + 5, 1));
    let conflicts = [
        (
            "Deposit, other amount",
            code(bank.deposit(deposit(VICTIM, 6, "r")).await),
        ),
        (
            "Withdraw, same amount",
            code(bank.withdraw(withdraw(VICTIM, 5, "r")).await),
        ),
        (
            "WithdrawStream, same amount",
            code(stream_once(bank, withdraw(VICTIM, 5, "r")).await),
        ),
        (
            "Transfer, same amount",
            code(bank.transfer(transfer(VICTIM, OTHER, 5, "r")).await),
        ),
    ];
    for (what, got) in conflicts {
        assert_eq!(got, Code::AlreadyExists, "{what}");
    }
    let t = ok(bank.transfer(transfer(VICTIM, OTHER, 5, "t")).await);
    assert_eq!(
        code(bank.transfer(transfer(VICTIM, "third", 5, "t")).await),
        Code::AlreadyExists,
        "same id, other target"
    );
    assert_eq!(
        code(bank.transfer(transfer(VICTIM, OTHER, 6, "t")).await),
        Code::AlreadyExists,
        "same id, other amount"
    );
    assert_eq!(
        state(bank, VICTIM).await,
        (VICTIM_BALANCE, 2),
        "only the first uses applied"
    );
    assert_eq!(state(bank, OTHER).await, (5, 1));
    assert_eq!(state(bank, "third").await, (0, 0));
    // The same parameters replay; the id is per account, so "r" is free elsewhere.
    assert_eq!(
        ok(bank.deposit(deposit(VICTIM, 5, "r")).await),
        OperationResult {
            replayed: true,
            ..first
        }
    );
    assert_eq!(
        ok(bank.transfer(transfer(VICTIM, OTHER, 5, "t")).await),
        OperationResult { replayed: true, ..t }
    );
    let elsewhere = ok(bank.deposit(deposit(OTHER, 6, "r")).await);
    assert!(!elsewhere.replayed);
    assert_eq!(state(bank, VICTIM).await, (VICTIM_BALANCE, 2));
}

// ---------------------------------------------------------------------------
// More request ids than the retention bound.

/// A bank server wired by `bank_server::router` (as `run` wires it), with
/// the `Ops` in the test's hands so the ledger can be inspected between
/// calls. Stops when the sender drops.
async fn serve_with_ops(config: ServerConfig) -> (Arc<Ops>, Bank, oneshot::Sender<()>) {
    let ops = Arc::new(Ops::new(Arc::new(Ledger::new(config.ledger.clone()))));
    let (router, _health) = bank_server::router(Arc::clone(&ops), &config, Default::default(), None)
        .await
        .expect("router");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
            let _ = stopped.await;
        }),
    );
    let channel = connect(addr).await.expect("connect");
    (ops, BankClient::new(channel), stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_past_the_retention_bound_are_forgotten_oldest_first() {
    const RETENTION: usize = 100;
    const SENT: u64 = 1_000;
    let (ops, mut bank, _stop) = serve_with_ops(config(|c| c.ledger.request_id_retention = RETENTION)).await;
    open_all(&mut bank, &[(VICTIM, 0), (OTHER, 0)]).await;
    let log = |id: &str| {
        let account = ops.backend().account_blocking(id).unwrap();
        let account = account.handle::<bank_server::backend::ledger::Account>().unwrap();
        account.request_log_len()
    };
    for i in 0..SENT {
        let d = ok(bank.deposit(deposit(VICTIM, 1, &format!("r{i}"))).await);
        assert_eq!(d.sequence, i + 1);
        let (len, forgotten) = log(VICTIM);
        assert!(len <= RETENTION, "after {} ids the log holds {len}", i + 1);
        assert_eq!(
            len as u64 + forgotten,
            i + 1,
            "every id is either held or counted as forgotten"
        );
    }
    assert_eq!(log(VICTIM), (RETENTION, SENT - RETENTION as u64));
    assert_eq!(log(OTHER), (0, 0), "bounds are per account");
    // The newest 100 are replayed with their results...
    for i in SENT - RETENTION as u64..SENT {
        let r = ok(bank.get_operation(get_op(VICTIM, &format!("r{i}"))).await);
        assert_eq!(
            (r.outcome(), r.replayed, r.sequence),
            (Outcome::Approved, true, i + 1)
        );
        let again = ok(bank.deposit(deposit(VICTIM, 1, &format!("r{i}"))).await);
        assert!(again.replayed, "a repeat of a retained id is a replay");
    }
    // ...the older ones have an unknown outcome (and are fenced from then on).
    for i in [0, 1, 450, SENT - RETENTION as u64 - 1] {
        assert_eq!(
            code(bank.get_operation(get_op(VICTIM, &format!("r{i}"))).await),
            Code::FailedPrecondition,
            "r{i} was forgotten"
        );
        let late = ok(bank.deposit(deposit(VICTIM, 1, &format!("r{i}"))).await);
        assert_eq!(
            (late.outcome(), late.replayed),
            (Outcome::NotApplied, true),
            "r{i} is fenced"
        );
    }
    assert_eq!(
        state(&mut bank, VICTIM).await,
        (SENT, SENT),
        "replays and fenced copies applied nothing"
    );
    // Fencing is an entry too: a flood of GetOperation of unseen ids stays bounded.
    for i in 0..SENT {
        let r = bank.get_operation(get_op(VICTIM, &format!("unseen{i}"))).await;
        assert_eq!(code(r), Code::FailedPrecondition);
        assert!(log(VICTIM).0 <= RETENTION);
    }
    assert_eq!(log(VICTIM).0, RETENTION);
    assert_eq!(state(&mut bank, VICTIM).await, (SENT, SENT));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_metadata_does_not_break_a_call() {
    let mut s = start(config(|_| {})).await;
    open_all(&mut s.bank, &[(VICTIM, VICTIM_BALANCE)]).await;
    let mut raw = raw_connect(s.addr).await;
    let body = msg(&get_balance(VICTIM).encode_to_vec());
    let junk: &[(&str, &str)] = &[
        ("grpc-timeout", "soon"),
        ("grpc-timeout", "-5S"),
        ("grpc-timeout", "123456789S"),
        ("grpc-timeout", "99999999H"),
        ("grpc-encoding", "identity"),
        ("grpc-accept-encoding", "zstd, br, x-nope"),
        (
            "x-padding",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ),
    ];
    for header in junk {
        let reply = raw.call("GetBalance", &[*header], body.clone()).await;
        println!(
            "| GetBalance | header {}: {} | {:?} ({}) |",
            header.0,
            header.1,
            reply.code,
            reply.place()
        );
        assert_eq!(reply.code, Code::Ok, "{header:?}: {reply:?}");
        let deposit_body = msg(&deposit(VICTIM, 1, "").encode_to_vec());
        let reply = raw.call("Deposit", &[*header], deposit_body).await;
        assert_eq!(reply.code, Code::Ok, "{header:?}: {reply:?}");
    }
    let (balance, sequence) = raw.balance(VICTIM).await;
    assert_eq!(
        (balance, sequence),
        (VICTIM_BALANCE + junk.len() as u64, junk.len() as u64)
    );
}

// ---------------------------------------------------------------------------
// A client that holds a stream open and idle during shutdown.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stream_is_ended_with_unavailable_at_shutdown_without_waiting_for_the_grace() {
    // A grace far longer than the test's patience: returning in time proves
    // the server did not sit out the grace period for the idle stream.
    let mut s = start(config(|c| c.shutdown_grace = 3 * PATIENCE)).await;
    open_all(&mut s.bank, &[(VICTIM, VICTIM_BALANCE)]).await;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let requests = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut answers = ok(s.bank.withdraw_stream(requests).await);
    tx.send(withdraw(VICTIM, 1, "")).await.unwrap();
    assert_eq!(
        answers.message().await.unwrap().unwrap().balance,
        VICTIM_BALANCE - 1
    );
    // The stream stays open (`tx` lives) and idle.
    s.trigger_shutdown();
    let ended = tokio::time::timeout(PATIENCE, answers.message())
        .await
        .expect("the idle stream is ended at shutdown");
    assert_eq!(code(ended), Code::Unavailable);
    s.stopped()
        .await
        .expect("run returns Ok, well before the grace period");
    drop(tx);
}

// ---------------------------------------------------------------------------
// Ten thousand streams open at the same time.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_streams_open_at_once_are_all_served() {
    const STREAMS: usize = 10_000;
    // 1,000 streams per connection, under the server's 1,024.
    const CONNECTIONS: usize = 10;
    const ACCOUNTS: usize = 8;
    const OPENING: u64 = 1_000_000;
    let mut s = start(config(|_| {})).await;
    let ids: Vec<String> = (0..ACCOUNTS).map(|i| format!("s{i}")).collect();
    for id in &ids {
        ok(s.bank.open_account(open_req(id, OPENING)).await);
    }
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(connect(s.addr).await.expect("connect"));
    }
    let opening = (0..STREAMS).map(|i| {
        let mut bank = BankClient::new(channels[i % CONNECTIONS].clone());
        let account = ids[i % ACCOUNTS].clone();
        tokio::spawn(async move {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            tx.send(withdraw(&account, 1, "")).await.unwrap();
            let mut answers = bank
                .withdraw_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await?
                .into_inner();
            let first = answers.message().await?.expect("a first answer");
            Ok::<_, Status>((account, tx, answers, first))
        })
    });
    let opened = tokio::time::timeout(2 * PATIENCE, futures::future::join_all(opening))
        .await
        .expect("10,000 streams answered in time");
    let mut open = Vec::with_capacity(STREAMS);
    for stream in opened {
        let (account, tx, answers, first) = stream.unwrap().expect("every stream is served");
        assert_eq!(first.outcome(), Outcome::Approved);
        open.push((account, tx, answers));
    }
    // Every stream has answered and none has ended (each still holds its
    // sender): 10,000 are open at once. The server still serves everyone else.
    assert_eq!(open.len(), STREAMS);
    let per_account = (STREAMS / ACCOUNTS) as u64;
    for id in &ids {
        assert_eq!(state(&mut s.bank, id).await, (OPENING - per_account, per_account));
    }
    // A second request on every open stream, then the streams end cleanly.
    let second = open.into_iter().map(|(account, tx, mut answers)| {
        tokio::spawn(async move {
            tx.send(withdraw(&account, 1, "")).await.unwrap();
            let answer = answers.message().await?.expect("a second answer");
            drop(tx);
            assert!(answers.message().await?.is_none(), "the stream ends with OK");
            Ok::<_, Status>(answer)
        })
    });
    let answered = tokio::time::timeout(2 * PATIENCE, futures::future::join_all(second))
        .await
        .expect("10,000 second answers in time");
    for answer in answered {
        assert_eq!(answer.unwrap().expect("served").outcome(), Outcome::Approved);
    }
    for id in &ids {
        assert_eq!(
            state(&mut s.bank, id).await,
            (OPENING - 2 * per_account, 2 * per_account)
        );
    }
}
