//! The fast path ([`stress_client::h2fast`]) against a real bank server and
//! against raw HTTP/2 servers that answer in every way the protocol allows
//! (a message cut into one-byte DATA frames, several answers in one frame,
//! trailers-only errors, every status code, no grpc-status, resets, GOAWAY,
//! answers far larger than the default flow-control window) and in ways it
//! does not (bytes that are not HTTP/2, bodies that are not protobuf, a cut
//! message): each must come back as tonic's client would report it, never
//! as a panic or a hang. Every server binds 127.0.0.1:0; nothing sleeps.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bank::v1 as pb;
use bank_checker::{Kind, Outcome};
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use h2::server::SendResponse;
use h2::RecvStream;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use prost::Message;
use stress_client::h2fast::{self, framing, unary, Bidi, CallHeaders, Conn, FastCall};
use stress_client::progress::Live;
use stress_client::recorder::{Recorder, Timing};
use stress_client::workload::Planned;
use tokio::io::AsyncWriteExt;
use tonic::Code;

#[path = "support/servers.rs"]
mod servers;
use servers::{listener, real_bank};

/// Past this a call is taken to hang (a client that stopped giving flow
/// control back stalls forever): the test fails instead of waiting.
const HANG_LIMIT: Duration = Duration::from_secs(30);

/// How one raw server answers each call.
type Handler = Arc<dyn Fn(Request<RecvStream>, SendResponse<Bytes>) -> BoxFuture<'static, ()> + Send + Sync>;

/// A raw HTTP/2 server on 127.0.0.1:0 that answers every call with `handler`.
async fn raw_server(handler: Handler) -> SocketAddr {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(socket).await else {
                    return;
                };
                while let Some(Ok((request, respond))) = conn.accept().await {
                    tokio::spawn(handler(request, respond));
                }
            });
        }
    });
    addr
}

fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Request<RecvStream>, SendResponse<Bytes>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    Arc::new(move |request, respond| Box::pin(f(request, respond)))
}

async fn conn(addr: SocketAddr) -> Conn {
    let headers = CallHeaders {
        timeout: Some(Duration::from_secs(10)),
        metadata: Vec::new(),
        tls: None,
    };
    h2fast::connect(&format!("http://{addr}"), &headers)
        .await
        .expect("connect")
}

/// Reads requests until `count` whole messages have arrived (releasing
/// the window as it goes); the request side need not end.
async fn messages(body: &mut RecvStream, count: usize) -> Vec<pb::WithdrawRequest> {
    let mut deframer = BytesMut::new();
    let mut out = Vec::new();
    while out.len() < count {
        while let Ok(Some(m)) = framing::next_message(&mut deframer) {
            out.push(pb::WithdrawRequest::decode(m).expect("a request"));
        }
        if out.len() >= count {
            break;
        }
        let Some(Ok(chunk)) = body.data().await else { break };
        let _ = body.flow_control().release_capacity(chunk.len());
        deframer.extend_from_slice(&chunk);
    }
    out
}

/// The request id of the call's first request.
async fn request_id(request: Request<RecvStream>) -> String {
    let mut body = request.into_body();
    let first = messages(&mut body, 1).await;
    first.into_iter().next().map(|r| r.request_id).unwrap_or_default()
}

fn ok_head() -> Response<()> {
    let mut head = Response::new(());
    head.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    head
}

fn trailers(code: i32, message: &'static str) -> HeaderMap {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from(code));
    if !message.is_empty() {
        t.insert("grpc-message", HeaderValue::from_static(message));
    }
    t
}

fn answer(id: &str, sequence: u64) -> pb::OperationResult {
    pb::OperationResult {
        request_id: id.into(),
        outcome: pb::Outcome::Approved as i32,
        balance: 1000 - sequence,
        sequence,
        ..Default::default()
    }
}

fn framed<M: Message>(m: &M) -> Bytes {
    framing::encode(m, &mut BytesMut::new()).expect("encode")
}

fn withdraw(account: &str, request_id: &str) -> Bytes {
    framed(&pb::WithdrawRequest {
        account_id: account.into(),
        amount: 1,
        request_id: request_id.into(),
        wait_for_funds: false,
    })
}

async fn call(conn: &Conn, body: Bytes) -> Result<pb::OperationResult, tonic::Status> {
    unary::call::<pb::OperationResult>(conn, FastCall::Withdraw, body).await
}

// ---------------------------------------------------------------- a real bank

#[tokio::test]
async fn a_real_bank_answers_unary_calls_and_a_stream_with_their_request_ids() {
    let addr = real_bank().await;
    let mut client = pb::bank_client::BankClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    for id in ["a", "b"] {
        let open = pb::OpenAccountRequest {
            account_id: id.into(),
            initial_balance: 100,
        };
        client.open_account(open).await.unwrap();
    }
    let conn = conn(addr).await;
    let w = call(&conn, withdraw("a", "r-1")).await.unwrap();
    assert_eq!((w.request_id.as_str(), w.balance, w.sequence), ("r-1", 99, 1));
    let deposit = framed(&pb::DepositRequest {
        account_id: "a".into(),
        amount: 10,
        request_id: "r-2".into(),
    });
    let d: pb::OperationResult = unary::call(&conn, FastCall::Deposit, deposit).await.unwrap();
    assert_eq!((d.request_id.as_str(), d.balance), ("r-2", 109));
    let transfer = framed(&pb::TransferRequest {
        from_account_id: "a".into(),
        to_account_id: "b".into(),
        amount: 9,
        request_id: "r-3".into(),
    });
    let t: pb::OperationResult = unary::call(&conn, FastCall::Transfer, transfer).await.unwrap();
    assert_eq!((t.balance, t.to_balance), (100, 109));
    let missing = call(&conn, withdraw("nobody", "r-4")).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let mut stream = Bidi::open(&conn).unwrap();
    for i in 0..5 {
        stream.send(withdraw("b", &format!("s-{i}")));
    }
    for i in 0..5 {
        let a = stream.next().await.unwrap().expect("an answer");
        assert_eq!((a.request_id, a.balance), (format!("s-{i}"), 108 - i));
    }
}

// ---------------------------------------------------------------- framing

#[tokio::test]
async fn an_answer_cut_into_one_byte_data_frames_is_read_whole() {
    let addr = raw_server(handler(|request, mut respond| async move {
        let _ = request_id(request).await;
        let mut tx = respond.send_response(ok_head(), false).unwrap();
        for byte in framed(&answer("split", 7)).iter() {
            tx.send_data(Bytes::copy_from_slice(&[*byte]), false).unwrap();
        }
        tx.send_trailers(trailers(0, "")).unwrap();
    }))
    .await;
    let got = call(&conn(addr).await, withdraw("x", "split")).await.unwrap();
    assert_eq!(got, answer("split", 7));
}

#[tokio::test]
async fn several_answers_in_one_data_frame_on_a_stream_come_out_in_order() {
    const ANSWERS: u64 = 4;
    let addr = raw_server(handler(|request, mut respond| async move {
        let mut body = request.into_body();
        let mut all = BytesMut::new();
        // Wait for all requests, then answer them in one DATA frame.
        assert_eq!(
            messages(&mut body, ANSWERS as usize).await.len(),
            ANSWERS as usize
        );
        for i in 0..ANSWERS {
            all.extend_from_slice(&framed(&answer(&format!("m-{i}"), i + 1)));
        }
        let mut tx = respond.send_response(ok_head(), false).unwrap();
        tx.send_data(all.freeze(), false).unwrap();
        tx.send_trailers(trailers(0, "")).unwrap();
    }))
    .await;
    let conn = conn(addr).await;
    let mut stream = Bidi::open(&conn).unwrap();
    for i in 0..ANSWERS {
        stream.send(withdraw("x", &format!("m-{i}")));
    }
    for i in 0..ANSWERS {
        assert_eq!(
            stream.next().await.unwrap(),
            Some(answer(&format!("m-{i}"), i + 1))
        );
    }
    assert_eq!(stream.next().await.unwrap(), None, "the stream ends with OK");
}

#[tokio::test]
async fn answers_far_larger_than_the_windows_keep_flowing() {
    // 24 answers of 1 MiB: more than the stream and the connection windows,
    // so a client that did not give capacity back would stall.
    const BIG: usize = 1 << 20;
    const CALLS: usize = 24;
    let addr = raw_server(handler(|request, mut respond| async move {
        let _ = request_id(request).await;
        let mut tx = respond.send_response(ok_head(), false).unwrap();
        tx.send_data(framed(&answer(&"x".repeat(BIG), 1)), false).unwrap();
        tx.send_trailers(trailers(0, "")).unwrap();
    }))
    .await;
    let conn = conn(addr).await;
    for i in 0..CALLS {
        let got = tokio::time::timeout(HANG_LIMIT, call(&conn, withdraw("x", "big")))
            .await
            .unwrap_or_else(|_| panic!("call {i} stalled: the window was not given back"));
        assert_eq!(got.unwrap().request_id.len(), BIG);
    }
}

// ---------------------------------------------------------------- statuses

/// A server that answers the call whose request id is a status code `n`
/// trailers-only with code `n`, and the others with an answer followed by
/// trailers carrying the code in the request id after `t-`.
async fn status_server() -> SocketAddr {
    raw_server(handler(|request, mut respond| async move {
        let id = request_id(request).await;
        let (only, code) = match id.strip_prefix("t-") {
            Some(code) => (false, code.parse::<i32>().unwrap()),
            None => (true, id.parse::<i32>().unwrap()),
        };
        if only {
            let mut head = ok_head();
            head.headers_mut().extend(trailers(code, "went%20wrong"));
            let _ = respond.send_response(head, true);
            return;
        }
        let mut tx = respond.send_response(ok_head(), false).unwrap();
        tx.send_data(framed(&answer("late", 1)), false).unwrap();
        tx.send_trailers(trailers(code, "after%20the%20answer")).unwrap();
    }))
    .await
}

#[tokio::test]
async fn every_status_code_comes_back_as_its_code_trailers_only_or_not() {
    let conn = conn(status_server().await).await;
    for n in 1..=16 {
        let only = call(&conn, withdraw("x", &n.to_string())).await.unwrap_err();
        assert_eq!((i32::from(only.code()), only.message()), (n, "went wrong"));
        let late = call(&conn, withdraw("x", &format!("t-{n}"))).await.unwrap_err();
        assert_eq!((i32::from(late.code()), late.message()), (n, "after the answer"));
    }
    // OK without a message is no answer.
    let empty = call(&conn, withdraw("x", "0")).await.unwrap_err();
    assert_eq!(empty.code(), Code::Internal, "{empty:?}");
    assert!(call(&conn, withdraw("x", "t-0")).await.is_ok());
}

#[tokio::test]
async fn a_trailers_only_error_ends_a_stream_with_its_status() {
    let conn = conn(status_server().await).await;
    let mut stream = Bidi::open(&conn).unwrap();
    stream.send(withdraw("x", "5"));
    let status = stream.next().await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::NotFound, "went wrong"));
}

#[tokio::test]
async fn an_answer_without_grpc_status_maps_its_http_status() {
    let addr = raw_server(handler(|request, mut respond| async move {
        let http: u16 = request_id(request).await.parse().unwrap();
        let mut head = Response::new(());
        *head.status_mut() = StatusCode::from_u16(http).unwrap();
        let _ = respond.send_response(head, true);
    }))
    .await;
    let conn = conn(addr).await;
    let cases = [
        (200, Code::Unknown),
        (503, Code::Unavailable),
        (404, Code::Unimplemented),
    ];
    for (http, code) in cases {
        let status = call(&conn, withdraw("x", &http.to_string())).await.unwrap_err();
        assert_eq!(status.code(), code, "{http}: {status:?}");
    }
}

// ---------------------------------------------------------------- resets, GOAWAY

#[tokio::test]
async fn resets_fail_the_call_with_the_code_of_their_reason_and_the_op_is_unknown() {
    let addr = raw_server(handler(|request, mut respond| async move {
        let reason = match request_id(request).await.as_str() {
            "refused" => h2::Reason::REFUSED_STREAM,
            "cancel" => h2::Reason::CANCEL,
            _ => h2::Reason::INTERNAL_ERROR,
        };
        respond.send_reset(reason);
    }))
    .await;
    let conn = conn(addr).await;
    let cases = [
        ("refused", Code::Unavailable),
        ("cancel", Code::Cancelled),
        ("internal", Code::Internal),
    ];
    for (id, code) in cases {
        let status = call(&conn, withdraw("x", id)).await.unwrap_err();
        assert_eq!(status.code(), code, "{id}: {status:?}");
        assert_recorded_unknown(status);
    }
}

/// A failed call is recorded as an op of unknown outcome, to be settled by
/// `GetOperation` (which fences its id: from then on it is known not applied
/// unless it was): the same classification as for a tonic failure.
fn assert_recorded_unknown(status: tonic::Status) {
    let now = Instant::now();
    let mut rec = Recorder::new(0, now, now, None, Arc::new(Live::default()));
    let planned = Planned {
        kind: Kind::Withdraw,
        account: 0,
        to_account: 0,
        amount: 1,
        wait_for_funds: false,
        number: 0,
    };
    let timing = Timing {
        intended: now,
        sent: now,
        received: now,
    };
    rec.record(&planned, timing, Err(status), true);
    assert_eq!(rec.ops[0].outcome, Outcome::Unknown);
    assert_eq!(rec.failures.len(), 1);
}

#[tokio::test]
async fn a_goaway_fails_the_calls_in_flight_and_the_next_call_reconnects() {
    let (listener, addr) = listener().await;
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let first = seen.fetch_add(1, Ordering::SeqCst) == 0;
            tokio::spawn(goaway_or_answer(socket, first));
        }
    });
    let conn = conn(addr).await;
    let status = call(&conn, withdraw("x", "doomed")).await.unwrap_err();
    // The GOAWAY's reason, or the closed connection, whichever the client sees first.
    assert!(
        matches!(status.code(), Code::Internal | Code::Unavailable),
        "{status:?}"
    );
    assert!(
        status.message().contains("h2 protocol error") || status.message().contains("connection error"),
        "{status:?}"
    );
    assert_recorded_unknown(status);
    // The connection is gone: the next call makes a new one and is answered.
    let got = call(&conn, withdraw("x", "again")).await.unwrap();
    assert_eq!(got.request_id, "fine");
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_stream_opened_on_a_dead_connection_waits_for_a_new_one_with_its_requests() {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(goaway_or_answer(socket, std::mem::take(&mut first)));
        }
    });
    let conn = conn(addr).await;
    assert!(call(&conn, withdraw("x", "doomed")).await.is_err());
    // The connection is dead; the request is queued until a new one is up.
    let mut stream = Bidi::open(&conn).unwrap();
    stream.send(withdraw("x", "queued"));
    let answer = tokio::time::timeout(HANG_LIMIT, stream.next())
        .await
        .expect("no hang");
    assert_eq!(answer.unwrap().map(|a| a.request_id), Some("fine".to_owned()));
    assert_eq!(stream.next().await.unwrap(), None);
}

/// The first connection takes one call and then goes away (GOAWAY with
/// INTERNAL_ERROR, closing the connection); later ones answer.
async fn goaway_or_answer(socket: tokio::net::TcpStream, first: bool) {
    let Ok(mut conn) = h2::server::handshake(socket).await else {
        return;
    };
    while let Some(Ok((request, mut respond))) = conn.accept().await {
        if first {
            conn.abrupt_shutdown(h2::Reason::INTERNAL_ERROR);
            let _ = std::future::poll_fn(|cx| conn.poll_closed(cx)).await;
            drop((request, respond));
            return;
        }
        let _ = request_id(request).await;
        let mut tx = respond.send_response(ok_head(), false).unwrap();
        tx.send_data(framed(&answer("fine", 1)), false).unwrap();
        tx.send_trailers(trailers(0, "")).unwrap();
    }
}

#[tokio::test]
async fn a_server_that_closes_before_the_handshake_is_a_clear_connect_error() {
    let (listener, addr) = listener().await;
    let accepted = tokio::spawn(async move { listener.accept().await.map(|(s, _)| s) });
    // Connected; the server takes the TCP connection and never speaks HTTP/2.
    let connecting =
        tokio::spawn(
            async move { h2fast::connect(&format!("http://{addr}"), &CallHeaders::default()).await },
        );
    let socket = accepted.await.unwrap().unwrap();
    drop(socket);
    let err = connecting.await.unwrap().unwrap_err();
    assert!(
        err.contains("cannot connect") && err.contains("handshake"),
        "{err}"
    );
}

// ---------------------------------------------------------------- garbage

#[tokio::test]
async fn a_server_that_does_not_speak_http2_is_a_clear_connect_error() {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\nnot http/2 at all\0\xff")
                .await;
        }
    });
    let err = h2fast::connect(&format!("http://{addr}"), &CallHeaders::default())
        .await
        .unwrap_err();
    assert!(
        err.contains("cannot connect") && err.contains("handshake"),
        "{err}"
    );
}

#[tokio::test]
async fn garbage_answers_are_internal_errors_not_panics() {
    let addr = raw_server(handler(|request, mut respond| async move {
        let payload: &'static [u8] = match request_id(request).await.as_str() {
            "not-protobuf" => &[0, 0, 0, 0, 3, 0xff, 0xff, 0xff],
            "compressed" => &[1, 0, 0, 0, 1, 0],
            "cut" => &[0, 0, 0, 0, 9, 1, 2],
            _ => &[0, 0xff, 0xff, 0xff, 0xff],
        };
        let mut tx = respond.send_response(ok_head(), false).unwrap();
        tx.send_data(Bytes::from_static(payload), false).unwrap();
        tx.send_trailers(trailers(0, "")).unwrap();
    }))
    .await;
    let conn = conn(addr).await;
    let cases = [
        ("not-protobuf", Code::Internal, ""),
        ("compressed", Code::Internal, "compressed-flag"),
        ("cut", Code::Internal, "Unexpected EOF"),
        ("huge", Code::OutOfRange, "too large"),
    ];
    for (id, code, words) in cases {
        let status = call(&conn, withdraw("x", id)).await.unwrap_err();
        assert_eq!(status.code(), code, "{id}: {status:?}");
        assert!(status.message().contains(words), "{id}: {status:?}");
    }
    // The connection still works after all that.
    let mut stream = Bidi::open(&conn).unwrap();
    stream.send(withdraw("x", "compressed"));
    assert_eq!(stream.next().await.unwrap_err().code(), Code::Internal);
}

// ---------------------------------------------------------------- the connection's own protocol work

/// A raw server as [`raw_server`], its HTTP/2 side configured by `builder`.
async fn raw_server_with(builder: h2::server::Builder, handler: Handler) -> SocketAddr {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (handler, builder) = (Arc::clone(&handler), builder.clone());
            tokio::spawn(async move {
                let Ok(mut conn) = builder.handshake::<_, Bytes>(socket).await else {
                    return;
                };
                while let Some(Ok((request, respond))) = conn.accept().await {
                    tokio::spawn(handler(request, respond));
                }
            });
        }
    });
    addr
}

/// Answers each call with its own request id.
fn echo() -> Handler {
    handler(|request, mut respond| async move {
        let id = request_id(request).await;
        let mut tx = respond.send_response(ok_head(), false).unwrap();
        tx.send_data(framed(&answer(&id, 1)), false).unwrap();
        tx.send_trailers(trailers(0, "")).unwrap();
    })
}

#[tokio::test]
async fn tiny_windows_and_one_stream_at_a_time_still_carry_every_call() {
    // A 7-byte stream window: each request goes out in pieces as the server
    // gives window back; one stream at a time: calls wait for a free one; a
    // header table of 0: the heads go as plain literals (h2's decoder does
    // not insist, so the size update itself is proven in wire::hpack's tests).
    let mut builder = h2::server::Builder::new();
    builder
        .initial_window_size(7)
        .max_concurrent_streams(1)
        .header_table_size(0);
    let conn = conn(raw_server_with(builder, echo()).await).await;
    let ids: Vec<String> = (0..20).map(|i| format!("call-{i}-{}", "x".repeat(100))).collect();
    let calls = ids.iter().map(|id| call(&conn, withdraw("x", id)));
    let answers = tokio::time::timeout(HANG_LIMIT, futures::future::join_all(calls))
        .await
        .expect("no call stalls on flow control or the stream limit");
    for (id, got) in ids.iter().zip(answers) {
        assert_eq!(&got.unwrap().request_id, id);
    }
}

#[tokio::test]
async fn a_header_block_spread_over_continuation_frames_is_read_whole() {
    let addr = raw_server(handler(|request, mut respond| async move {
        let _ = request_id(request).await;
        let mut tx = respond.send_response(ok_head(), false).unwrap();
        tx.send_data(framed(&answer("long", 1)), false).unwrap();
        // Trailers larger than one 16 KiB frame: HEADERS + CONTINUATION.
        let mut t = trailers(7, "denied");
        let long = "v".repeat(40 << 10);
        t.insert("x-long", HeaderValue::from_str(&long).unwrap());
        tx.send_trailers(t).unwrap();
    }))
    .await;
    let conn = conn(addr).await;
    let status = call(&conn, withdraw("x", "long")).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::PermissionDenied, "denied")
    );
    // The connection (and its header table) is still in step.
    assert_eq!(
        call(&conn, withdraw("x", "long")).await.unwrap_err().code(),
        Code::PermissionDenied
    );
}

/// A server that completes the handshake by hand, then answers the first
/// call with `reply` (raw frames): what no conforming server sends.
async fn hand_written_server(reply: &'static [u8]) -> SocketAddr {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Empty SETTINGS, then the answer to the client's PING.
                let mut hello = vec![0, 0, 0, 4, 0, 0, 0, 0, 0];
                hello.extend_from_slice(&[0, 0, 8, 6, 1, 0, 0, 0, 0]);
                hello.extend_from_slice(b"bankping");
                if socket.write_all(&hello).await.is_err() {
                    return;
                }
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                // Wait for the first HEADERS (type 1) after the preface and SETTINGS.
                while !seen.windows(2).any(|w| w == [1, 5] || w == [1, 4]) || seen.len() < 60 {
                    use tokio::io::AsyncReadExt;
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(reply).await;
                let _ = tokio::time::timeout(HANG_LIMIT, socket.readable()).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn protocol_violations_end_the_connection_with_internal_errors_not_panics() {
    let cases: [(&'static [u8], &str); 4] = [
        // HEADERS on stream 1 whose block is not HPACK.
        (
            &[0, 0, 4, 1, 4, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff],
            "COMPRESSION_ERROR",
        ),
        // A frame larger than the client allows.
        (&[0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1], "FRAME_SIZE_ERROR"),
        // DATA on a stream the client never opened.
        (&[0, 0, 1, 0, 0, 0, 0, 0, 9, 0], "never opened"),
        // A PUSH_PROMISE, though push is off.
        (&[0, 0, 4, 5, 4, 0, 0, 0, 1, 0, 0, 0, 2], "PUSH_PROMISE"),
    ];
    for (reply, words) in cases {
        let conn = conn(hand_written_server(reply).await).await;
        let status = tokio::time::timeout(HANG_LIMIT, call(&conn, withdraw("x", "bad")))
            .await
            .expect("no hang")
            .unwrap_err();
        assert_eq!(status.code(), Code::Internal, "{words}: {status:?}");
        assert!(status.message().contains(words), "{words}: {status:?}");
        assert_recorded_unknown(status);
    }
}

#[tokio::test]
async fn a_call_that_gives_up_waiting_for_a_stream_does_not_hold_up_the_next() {
    // One stream at a time; the first call is held until released.
    let (release, arrived) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let (held, here) = (Arc::clone(&release), Arc::clone(&arrived));
    let mut builder = h2::server::Builder::new();
    builder.max_concurrent_streams(1);
    let addr = raw_server_with(
        builder,
        handler(move |request, mut respond| {
            let (held, here) = (Arc::clone(&held), Arc::clone(&here));
            async move {
                let id = request_id(request).await;
                if id == "hold" {
                    here.notify_one();
                    held.notified().await;
                }
                let mut tx = respond.send_response(ok_head(), false).unwrap();
                tx.send_data(framed(&answer(&id, 1)), false).unwrap();
                tx.send_trailers(trailers(0, "")).unwrap();
            }
        }),
    )
    .await;
    let conn = conn(addr).await;
    let first = tokio::spawn({
        let conn = conn.clone();
        async move { call(&conn, withdraw("x", "hold")).await }
    });
    arrived.notified().await;
    // The second waits in line behind the held call, then gives up.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(50), call(&conn, withdraw("x", "quitter"))).await;
    assert!(gave_up.is_err(), "the second call cannot have a stream yet");
    let third = tokio::spawn({
        let conn = conn.clone();
        async move { call(&conn, withdraw("x", "third")).await }
    });
    tokio::task::yield_now().await;
    release.notify_one();
    assert_eq!(first.await.unwrap().unwrap().request_id, "hold");
    let third = tokio::time::timeout(HANG_LIMIT, third)
        .await
        .expect("the third call gets the freed stream");
    assert_eq!(third.unwrap().unwrap().request_id, "third");
}

#[tokio::test]
async fn a_graceful_goaway_lets_the_call_in_flight_finish_and_the_connection_reconnects_by_itself() {
    let (listener, addr) = listener().await;
    let accepted = Arc::new(tokio::sync::Notify::new());
    let on_accept = Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((socket, _)) = listener.accept().await {
            on_accept.notify_one();
            tokio::spawn(answer_after_goaway(socket, std::mem::take(&mut first)));
        }
    });
    let conn = conn(addr).await;
    accepted.notified().await;
    // The server sends GOAWAY once the call is open, then answers it.
    let answered = tokio::time::timeout(HANG_LIMIT, call(&conn, withdraw("x", "in-flight")))
        .await
        .expect("no hang");
    assert_eq!(answered.unwrap().request_id, "in-flight");
    // No call asked for it: the connection's own task opens the next one.
    tokio::time::timeout(HANG_LIMIT, accepted.notified())
        .await
        .expect("a new connection after the GOAWAY");
    let next = call(&conn, withdraw("x", "next")).await.unwrap();
    assert_eq!(next.request_id, "next");
}

/// Answers every call with its request id; on the `draining` connection
/// a graceful GOAWAY (which keeps the streams already open) goes out
/// before the first answer.
async fn answer_after_goaway(socket: tokio::net::TcpStream, draining: bool) {
    let Ok(mut conn) = h2::server::handshake(socket).await else {
        return;
    };
    while let Some(Ok((request, mut respond))) = conn.accept().await {
        if draining {
            conn.graceful_shutdown();
        }
        tokio::spawn(async move {
            let id = request_id(request).await;
            let mut tx = respond.send_response(ok_head(), false).unwrap();
            tx.send_data(framed(&answer(&id, 1)), false).unwrap();
            tx.send_trailers(trailers(0, "")).unwrap();
        });
    }
}

#[tokio::test]
async fn a_server_that_closes_every_connection_after_the_handshake_gets_spaced_out_attempts() {
    // Backoff waits of the first attempts: 10 + 20 + 40 + 80 ms at least.
    const ATTEMPTS: usize = 6;
    const SPACED_AT_LEAST: Duration = Duration::from_millis(150);
    let (listener, addr) = listener().await;
    let (tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = tx.send(Instant::now());
            tokio::spawn(handshake_then_goaway(socket));
        }
    });
    let _conn = conn(addr).await;
    let first = accepted.recv().await.expect("the first connection");
    let mut last = first;
    for _ in 0..ATTEMPTS {
        last = tokio::time::timeout(HANG_LIMIT, accepted.recv())
            .await
            .expect("the connection keeps trying")
            .expect("accepted");
    }
    let spent = last - first;
    assert!(
        spent >= SPACED_AT_LEAST,
        "{} connections in {spent:?}: reconnects are not spaced out",
        ATTEMPTS + 1
    );
}

/// Completes the client's handshake (SETTINGS, the answer to its PING),
/// then goes away at once (GOAWAY, no stream processed).
async fn handshake_then_goaway(mut socket: tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut reply = vec![0, 0, 0, 4, 0, 0, 0, 0, 0];
    reply.extend_from_slice(&[0, 0, 8, 6, 1, 0, 0, 0, 0]);
    reply.extend_from_slice(b"bankping");
    reply.extend_from_slice(&[0, 0, 8, 7, 0, 0, 0, 0, 0]);
    reply.extend_from_slice(&[0; 8]);
    if socket.write_all(&reply).await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
}
