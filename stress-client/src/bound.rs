//! Client-side bounds on calls. A deadline sent in `grpc-timeout` is only a
//! request: a server may ignore it, and tonic enforces it only until the
//! response headers arrive, so a server that sends headers and then nothing
//! would hold a call forever. Every call the client makes goes through
//! [`within`], which cuts it at the same deadline on the client's own clock.

use std::future::Future;
use std::time::Duration;

use tonic::{Request, Status};

/// `message` as a request carrying `timeout` as its gRPC deadline.
pub fn request<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Runs `call` for at most `timeout`; past it, `DEADLINE_EXCEEDED` (the call
/// is dropped, which resets its HTTP/2 stream).
pub async fn within<T, F>(timeout: Duration, call: F) -> Result<T, Status>
where
    F: Future<Output = Result<tonic::Response<T>, Status>>,
{
    match tokio::time::timeout(timeout, call).await {
        Ok(reply) => reply.map(tonic::Response::into_inner),
        Err(_) => Err(deadline_exceeded(timeout)),
    }
}

/// The status of a call cut at `timeout` on the client's clock.
pub fn deadline_exceeded(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!("no answer within {timeout:?} (client-side deadline)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_that_never_answers_is_cut() {
        let never = std::future::pending::<Result<tonic::Response<()>, Status>>();
        let status = within(Duration::ZERO, never).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        let ready = async { Ok(tonic::Response::new(7)) };
        assert_eq!(within(Duration::from_secs(1), ready).await.unwrap(), 7);
    }
}
