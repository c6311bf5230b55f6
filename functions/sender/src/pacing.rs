//! How fast the sender may go: a rate per sending number (WhatsApp's default is 80 messages a
//! second, up to 1,000 once Meta raises it), a pause for a number the provider throttled, and
//! backoff delays with full jitter for retries.

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Meta's pair rate: one message per recipient every 6 seconds.
pub const RECIPIENT_GAP: Duration = Duration::from_secs(6);

pub struct Pacer {
    limiter: DefaultKeyedRateLimiter<String>,
    /// The time between two slots of one number.
    interval: Duration,
    paused: Mutex<HashMap<String, Instant>>,
    /// Messages waiting for a slot, by number: how far back in line one that gives up was.
    waiting: Mutex<HashMap<String, u32>>,
}

impl Pacer {
    /// `per_second` messages per sending number (per process: with several instances, set the
    /// event source's maximum concurrency so that instances × rate stays under the number's
    /// limit).
    pub fn new(per_second: u32) -> Self {
        let rate = NonZeroU32::new(per_second.max(1)).expect("at least 1");
        // Evenly spaced, no burst: a burst allowance would let a one-second window hold more
        // than the provider's per-second limit.
        let quota = Quota::per_second(rate).allow_burst(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(quota),
            interval: Duration::from_secs(1) / rate.get(),
            paused: Mutex::new(HashMap::new()),
            waiting: Mutex::new(HashMap::new()),
        }
    }

    /// How long the number is paused for, if it is (the provider throttled it).
    pub fn paused_for(&self, number: &str) -> Option<Duration> {
        let mut paused = self.paused.lock().expect("pacer lock");
        let until = *paused.get(number)?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            paused.remove(number);
            return None;
        }
        Some(left)
    }

    /// Slows a throttled number down: no sends from it for `pause`.
    pub fn pause(&self, number: &str, pause: Duration) {
        let until = Instant::now() + pause;
        let mut paused = self.paused.lock().expect("pacer lock");
        let e = paused.entry(number.to_string()).or_insert(until);
        *e = (*e).max(until);
    }

    /// Waits for the number's next slot.
    pub async fn ready(&self, number: &str) {
        self.limiter.until_key_ready(&number.to_string()).await;
    }

    /// Waits for the number's next slot, unless it comes after `deadline`. Then no slot is
    /// taken (the message goes to a later invocation instead of being cut off by this one's
    /// timeout, at a low rate with a large batch) and the error says about when its turn
    /// would come: one interval for each message that was still waiting for the number, this
    /// one included. Those that give up together get 1, 2, 3 … intervals, so they come back
    /// spread at the number's rate rather than all at once.
    pub async fn ready_before(
        &self,
        number: &str,
        deadline: Option<Instant>,
    ) -> Result<(), Duration> {
        let Some(deadline) = deadline else {
            self.ready(number).await;
            return Ok(());
        };
        let in_line = InLine::join(&self.waiting, number);
        match tokio::time::timeout_at(deadline.into(), self.ready(number)).await {
            Ok(()) => Ok(()),
            Err(_) => Err(self.interval.saturating_mul(in_line.leave())),
        }
    }
}

/// One message waiting for a number's slot; leaves the count when done or dropped (a task
/// cancelled while it waits must not stay counted).
struct InLine<'a> {
    waiting: &'a Mutex<HashMap<String, u32>>,
    number: &'a str,
    left: bool,
}

impl<'a> InLine<'a> {
    fn join(waiting: &'a Mutex<HashMap<String, u32>>, number: &'a str) -> Self {
        *waiting
            .lock()
            .expect("pacer lock")
            .entry(number.to_string())
            .or_default() += 1;
        Self {
            waiting,
            number,
            left: false,
        }
    }

    /// Leaves the line; how many were in it, this one included.
    fn leave(mut self) -> u32 {
        self.left = true;
        let mut waiting = self.waiting.lock().expect("pacer lock");
        let n = waiting.get(self.number).copied().unwrap_or(1);
        if n <= 1 {
            waiting.remove(self.number);
        } else {
            waiting.insert(self.number.to_string(), n - 1);
        }
        n.max(1)
    }
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        if !self.left {
            let mut waiting = self.waiting.lock().expect("pacer lock");
            if let Some(n) = waiting.get_mut(self.number) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    waiting.remove(self.number);
                }
            }
        }
    }
}

/// Exponential backoff with full jitter: a random delay up to `base × 2^tries`, capped.
pub fn backoff(tries: u32, base: Duration, cap: Duration) -> Duration {
    let ceiling = base
        .saturating_mul(2u32.saturating_pow(tries.min(16)))
        .min(cap);
    let ms = ceiling.as_millis().max(1) as u64;
    // Never zero: a retry that comes back at once would only fail again.
    Duration::from_millis(fastrand::u64(ms / 2..=ms))
}

/// Meta's advice for the pair rate (131056): wait 4^n seconds (1, 4, 16, …).
pub fn pair_rate_delay(tries: u32) -> Duration {
    Duration::from_secs(4u64.saturating_pow(tries.min(5))).min(Duration::from_secs(900))
}
