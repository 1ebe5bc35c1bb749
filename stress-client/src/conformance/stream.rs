//! WithdrawStream, `stream-*`: one answer per request, in the order sent,
//! each carrying its request id, applied one after the other; an invalid
//! request (or one on an unknown account, or a conflicting id) ends the
//! stream with its status after every earlier request was answered, and
//! nothing after it is applied; an empty stream ends OK.

use bank::v1 as pb;
use tonic::{Code, Status};

use super::ctx::{check_answer, codes_text, fail, show, show_status, withdrawal, Cx, Step, Want};
use super::{check, Check};

pub fn checks() -> Vec<Check> {
    vec![
        check!("stream-in-order", "answers come in request order with their request ids and sequences 1..4, a denial among them", in_order),
        check!("stream-two-accounts", "one stream may withdraw from two accounts; each answer is that account's", two_accounts),
        check!("stream-replay", "a request id repeated on the stream is answered as a replay (replayed=true), debited once", replay),
        check!("stream-invalid-ends", "amount 0 ends the stream with INVALID_ARGUMENT after the earlier answers; later requests are not applied", invalid_ends),
        check!("stream-unknown-account-ends", "an unknown account ends the stream with NOT_FOUND (with a token: or PERMISSION_DENIED) after the earlier answers", unknown_ends),
        check!("stream-conflict-ends", "a request id reused with another amount ends the stream with ALREADY_EXISTS", conflict_ends),
        check!("stream-empty", "a stream without requests ends OK with no answers", empty),
    ]
}

/// What a stream gave back: its answers, and the status it ended with
/// (`None`: OK).
struct Streamed {
    answers: Vec<pb::OperationResult>,
    ended: Option<Status>,
}

/// Sends `requests` on one WithdrawStream (with `bank`) and reads it to its end.
pub async fn stream_as(
    cx: &Cx,
    bank: &crate::transport::Bank,
    requests: Vec<pb::WithdrawRequest>,
) -> (Vec<pb::OperationResult>, Option<Status>) {
    let s = streamed(cx, bank, requests).await;
    (s.answers, s.ended)
}

async fn streamed(cx: &Cx, bank: &crate::transport::Bank, requests: Vec<pb::WithdrawRequest>) -> Streamed {
    let request = cx.req(futures::stream::iter(requests));
    let mut answers = Vec::new();
    let mut inbound = match bank.clone().withdraw_stream(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            return Streamed {
                answers,
                ended: Some(status),
            }
        }
    };
    loop {
        match inbound.message().await {
            Ok(Some(answer)) => answers.push(answer),
            Ok(None) => return Streamed { answers, ended: None },
            Err(status) => {
                return Streamed {
                    answers,
                    ended: Some(status),
                }
            }
        }
    }
}

/// Streams `requests`; the answers must match `wants` in order, and the
/// stream must end with one of `end` (empty: OK).
async fn expect_stream(
    cx: &Cx,
    requests: Vec<pb::WithdrawRequest>,
    wants: &[Want],
    end: &[Code],
) -> Step<()> {
    let sent = format!("WithdrawStream {}", show(&requests));
    let got = streamed(cx, &cx.bank(), requests.clone()).await;
    if got.answers.len() != wants.len() {
        return fail(format!(
            "sent {sent}; got {} answers {} then {}; expected {} answers",
            got.answers.len(),
            show(&got.answers),
            ended_text(&got.ended),
            wants.len()
        ));
    }
    for (i, (answer, want)) in got.answers.iter().zip(wants).enumerate() {
        let which = format!("{sent}, answer {i}");
        let answer = check_answer(&which, Ok(answer.clone()), want)?;
        if answer.request_id != requests[i].request_id {
            return fail(format!(
                "sent {which}: request_id {:?}, expected {:?} (answers in request order)",
                answer.request_id, requests[i].request_id
            ));
        }
    }
    match (&got.ended, end) {
        (None, []) => Ok(()),
        (Some(s), codes) if codes.contains(&s.code()) => Ok(()),
        (ended, codes) => fail(format!(
            "sent {sent}; the stream ended with {}; expected {}",
            ended_text(ended),
            if codes.is_empty() {
                "OK".into()
            } else {
                codes_text(codes)
            }
        )),
    }
}

fn ended_text(ended: &Option<Status>) -> String {
    ended.as_ref().map_or_else(|| "OK".into(), show_status)
}

async fn in_order(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    let requests = vec![
        withdrawal(&a, 30, "s1", false),
        withdrawal(&a, 50, "s2", false),
        withdrawal(&a, 30, "s3", false),
        withdrawal(&a, 20, "s4", false),
    ];
    let wants = [
        Want::approved(70, 1),
        Want::approved(20, 2),
        Want::denied(20, 3),
        Want::approved(0, 4),
    ];
    expect_stream(&cx, requests, &wants, &[]).await?;
    cx.state(&a, 0, 4).await
}

async fn two_accounts(cx: Cx) -> Step<()> {
    let (a, b) = (cx.fresh(100).await?, cx.fresh(10).await?);
    let requests = vec![
        withdrawal(&a, 1, "1", false),
        withdrawal(&b, 2, "2", false),
        withdrawal(&a, 3, "3", false),
    ];
    let wants = [Want::approved(99, 1), Want::approved(8, 1), Want::approved(96, 2)];
    expect_stream(&cx, requests, &wants, &[]).await?;
    cx.state(&b, 8, 1).await
}

async fn replay(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    let requests = vec![withdrawal(&a, 10, "x", false), withdrawal(&a, 10, "x", false)];
    let wants = [Want::approved(90, 1), Want::approved(90, 1).replay()];
    expect_stream(&cx, requests, &wants, &[]).await?;
    cx.state(&a, 90, 1).await
}

async fn invalid_ends(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    let requests = vec![
        withdrawal(&a, 10, "a", false),
        withdrawal(&a, 10, "b", false),
        withdrawal(&a, 0, "c", false),
        withdrawal(&a, 10, "d", false),
    ];
    let wants = [Want::approved(90, 1), Want::approved(80, 2)];
    expect_stream(&cx, requests, &wants, &[Code::InvalidArgument]).await?;
    cx.state(&a, 80, 2).await
}

async fn unknown_ends(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    let nowhere = cx.account();
    let requests = vec![
        withdrawal(&a, 10, "a", false),
        withdrawal(&nowhere, 10, "b", false),
        withdrawal(&a, 10, "c", false),
    ];
    expect_stream(&cx, requests, &[Want::approved(90, 1)], cx.unknown_codes()).await?;
    cx.state(&a, 90, 1).await
}

async fn conflict_ends(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    let requests = vec![withdrawal(&a, 10, "x", false), withdrawal(&a, 11, "x", false)];
    expect_stream(&cx, requests, &[Want::approved(90, 1)], &[Code::AlreadyExists]).await?;
    cx.state(&a, 90, 1).await
}

async fn empty(cx: Cx) -> Step<()> {
    expect_stream(&cx, Vec::new(), &[], &[]).await
}
