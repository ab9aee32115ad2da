//! A circuit breaker per endpoint: `failures` failures within `window` open it for `cooldown`;
//! a success closes it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Default)]
pub(crate) struct Breaker {
    failures: VecDeque<Instant>,
    open_until: Option<Instant>,
}

impl Breaker {
    pub(crate) fn is_open(&self) -> bool {
        self.open_until.is_some_and(|t| Instant::now() < t)
    }

    pub(crate) fn failure(&mut self, failures: usize, window: Duration, cooldown: Duration) {
        let now = Instant::now();
        self.failures.push_back(now);
        while self
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            self.failures.pop_front();
        }
        if self.failures.len() >= failures {
            self.open_until = Some(now + cooldown);
        }
    }

    pub(crate) fn success(&mut self) {
        self.failures.clear();
        self.open_until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_three_failures_in_the_window() {
        let mut b = Breaker::default();
        let (w, c) = (Duration::from_secs(30), Duration::from_secs(60));
        b.failure(3, w, c);
        b.failure(3, w, c);
        assert!(!b.is_open());
        b.failure(3, w, c);
        assert!(b.is_open());
        b.success();
        assert!(!b.is_open());
    }
}
