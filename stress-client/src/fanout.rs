//! Many calls at once, spread over the runtime's threads: the setup and
//! after-run phases make one call per account or per unknown op (up to millions),
//! and polling them all from one task would leave every core but one idle.
//! Each call is its own task, at most `limit` at a time; dropping the
//! fan-out (a hard stop, or the first failure) aborts every task still running.

use std::future::Future;
use std::ops::ControlFlow;

use tokio::task::JoinSet;

/// Runs `call(i)` for every `i` in `0..count`, at most `limit` at once, and
/// hands each output to `each` as it completes; `each` may stop the whole
/// fan-out early with `ControlFlow::Break` (the calls still running are aborted).
pub async fn fan_out<T, F, Fut, E>(count: usize, limit: usize, mut call: F, mut each: E)
where
    T: Send + 'static,
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    E: FnMut(T) -> ControlFlow<()>,
{
    let mut running = JoinSet::new();
    let mut next = 0;
    loop {
        while next < count && running.len() < limit.max(1) {
            running.spawn(call(next));
            next += 1;
        }
        let Some(done) = running.join_next().await else {
            return;
        };
        // A task fails only if it panicked (our bug) or was aborted: no output.
        if let Ok(output) = done {
            if each(output).is_break() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_call_runs_once_and_a_break_stops_the_rest() {
        let mut seen = Vec::new();
        fan_out(
            100,
            7,
            |i| async move { i },
            |i| {
                seen.push(i);
                ControlFlow::Continue(())
            },
        )
        .await;
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        let mut outputs = 0;
        fan_out(
            100,
            3,
            |i| async move { i },
            |_| {
                outputs += 1;
                ControlFlow::Break(())
            },
        )
        .await;
        assert_eq!(outputs, 1);
    }
}
