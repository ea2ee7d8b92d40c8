//! How hard a run may press one target: how many writes, and how many reads, are in flight at
//! once (`max_concurrency`) and how many requests start per second (`max_requests_per_second`).
//! Targets publish such limits (Databricks' SCIM API answers 429 past a few requests per
//! second per workspace); keeping under them costs less than being throttled and retried.
//!
//! The rate is kept by one [`Pacer`] per target, shared by every request made to it (reads,
//! writes and their retries), which spaces their starts evenly. Concurrency is kept by
//! [`each_limited`], which `apply` uses for each group of independent items; the groups still
//! follow one another in the plan's order, and results are taken in the items' order, so a
//! concurrent run decides exactly what a sequential one would. Reads (list pages of every kind
//! read at once, reads by id) are held to the same number by a semaphore the endpoint shares
//! among its clones (`ScimEndpoint::read`).

use futures_util::stream::{self, StreamExt};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// A target's limits, from `[target] max_concurrency` and `max_requests_per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Write requests in flight at once, and read requests in flight at once (at least 1; 1 is
    /// one after the other).
    pub max_concurrency: usize,
    /// Requests started per second, reads included; `None`: as fast as the target answers.
    pub max_requests_per_second: Option<f64>,
}

/// The default concurrency: enough to hide a target's latency, few enough that no target we
/// know of throttles it.
pub const DEFAULT_MAX_CONCURRENCY: usize = 4;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            max_requests_per_second: None,
        }
    }
}

impl Limits {
    /// The limits, refused when they cannot be kept: no concurrency at all, or a rate that is
    /// not a positive number.
    pub fn new(
        max_concurrency: usize,
        max_requests_per_second: Option<f64>,
    ) -> Result<Limits, String> {
        if max_concurrency == 0 {
            return Err("max_concurrency is at least 1".into());
        }
        if let Some(rate) = max_requests_per_second {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(format!(
                    "max_requests_per_second is a positive number, not {rate}"
                ));
            }
        }
        Ok(Limits {
            max_concurrency,
            max_requests_per_second,
        })
    }
}

/// Spaces the starts of the requests to one target at least `1 / rate` apart, across every
/// task that shares it: each caller is given the next free start and sleeps until then.
#[derive(Debug)]
pub struct Pacer {
    /// `None`: no rate limit, nothing waits.
    interval: Option<Duration>,
    /// When the next request may start.
    next: tokio::sync::Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn new(max_requests_per_second: Option<f64>) -> Pacer {
        Pacer {
            interval: max_requests_per_second
                .filter(|rate| rate.is_finite() && *rate > 0.0)
                .map(|rate| Duration::from_secs_f64(1.0 / rate)),
            next: tokio::sync::Mutex::new(None),
        }
    }

    /// Waits until this request may start.
    pub async fn ready(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let start = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let start = next.map_or(now, |next| next.max(now));
            *next = Some(start + interval);
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

/// Runs the futures of `work`, at most `limit` at once, and gives their outputs in `work`'s
/// order (whatever order they finished in). Taken as made futures, not items and a closure:
/// a closure held across the awaits trips the compiler's proof that the run is `Send`.
pub async fn each_limited<O, Fut>(work: Vec<Fut>, limit: usize) -> Vec<O>
where
    Fut: Future<Output = O>,
{
    // Each item done is a step of the run's progress (`crate::progress`).
    stream::iter(work)
        .buffered(limit.max(1))
        .inspect(|_| crate::progress::note(crate::progress::Step::Wrote))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_that_cannot_be_kept_are_refused() {
        assert!(Limits::new(0, None).is_err());
        assert!(Limits::new(1, Some(0.0)).is_err());
        assert!(Limits::new(1, Some(f64::NAN)).is_err());
        assert!(Limits::new(1, Some(-3.0)).is_err());
        assert_eq!(
            Limits::new(2, Some(10.0)),
            Ok(Limits {
                max_concurrency: 2,
                max_requests_per_second: Some(10.0)
            })
        );
    }

    /// Five paced starts at 20 a second take at least four intervals (a lower bound only:
    /// a busy machine makes it longer, never shorter).
    #[tokio::test]
    async fn a_pacer_spaces_starts_by_its_interval() {
        let pacer = Pacer::new(Some(20.0));
        let begun = Instant::now();
        for _ in 0..5 {
            pacer.ready().await;
        }
        assert!(Instant::now() - begun >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn each_limited_keeps_the_items_order() {
        let items = [30u64, 1, 20, 2];
        let work = items
            .iter()
            .map(|wait| async move {
                tokio::time::sleep(Duration::from_millis(*wait)).await;
                *wait
            })
            .collect();
        let outputs = each_limited(work, 3).await;
        assert_eq!(outputs, items);
    }
}
