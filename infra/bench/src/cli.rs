//! What every benchmark binary reads from its command line and how it reports times.

use std::str::FromStr;
use std::time::Duration;

/// The word after `name` on the command line (`--rows 1000` gives `1000`), if there is one.
pub fn value(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// The value after `name`, or `default` when it is missing or does not parse.
pub fn arg<T: FromStr>(name: &str, default: T) -> T {
    value(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The `p` quantile (0 to 1) of durations sorted ascending, by nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// `d` in milliseconds, as the reports print it.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
