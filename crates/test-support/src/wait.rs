//! Polling with a deadline: tests wait for a condition, never for a fixed time.

use std::time::{Duration, Instant};

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(5);

/// Polls `check` until it returns `Some`, and returns that value; panics naming `what` when
/// `timeout` passes first. For tests on plain threads.
pub fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not true after {timeout:?}"
        );
        std::thread::sleep(POLL);
    }
}

/// Polls `condition` until it holds, yielding to the runtime in between; panics naming
/// `what` when `timeout` passes first. For `#[tokio::test]`s.
pub async fn eventually_async(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not true after {timeout:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_value_found() {
        let mut calls = 0;
        let got = eventually(Duration::from_secs(5), "third call", || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(got, 3);
    }

    #[test]
    #[should_panic(expected = "never: not true after")]
    fn panics_at_the_deadline() {
        eventually::<()>(Duration::from_millis(20), "never", || None);
    }

    #[tokio::test]
    async fn async_form_waits_for_the_condition() {
        let start = Instant::now();
        eventually_async("10 ms passed", Duration::from_secs(5), || {
            start.elapsed() >= Duration::from_millis(10)
        })
        .await;
        assert!(start.elapsed() >= Duration::from_millis(10));
    }
}
