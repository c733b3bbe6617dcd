//! A progress bar on stderr while records are generated (redrawn in place on a terminal,
//! a line every few seconds otherwise), the pace a `--rate` sets, and the final summary.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Keeps generation at `rate` records per second: how long to wait before record `n`.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    start: Instant,
    rate: f64,
}

impl Pace {
    pub fn new(start: Instant, rate: f64) -> Pace {
        Pace { start, rate: rate.max(1e-6) }
    }

    /// The wait before record `n` may go at `now` (none when behind or on time).
    pub fn wait_before(&self, n: u64, now: Instant) -> Option<Duration> {
        let due = self.start + Duration::from_secs_f64(n as f64 / self.rate);
        due.checked_duration_since(now).filter(|d| !d.is_zero())
    }

    /// Records between checks of the pace: about a hundredth of a second's worth.
    pub fn check_every(&self) -> u64 {
        ((self.rate / 100.0) as u64).max(1)
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub struct Progress {
    start: Instant,
    last: Instant,
    total: Option<u64>,
    terminal: bool,
    quiet: bool,
}

impl Progress {
    pub fn new(total: Option<u64>, quiet: bool) -> Progress {
        let now = Instant::now();
        Progress { start: now, last: now, total, terminal: std::io::stderr().is_terminal(), quiet }
    }

    /// Redraws when due (every 200 ms on a terminal, 5 s otherwise).
    pub fn update(&mut self, records: u64, bytes: u64) {
        if self.quiet {
            return;
        }
        let every = if self.terminal { Duration::from_millis(200) } else { Duration::from_secs(5) };
        let now = Instant::now();
        if now.duration_since(self.last) < every {
            return;
        }
        self.last = now;
        let secs = now.duration_since(self.start).as_secs_f64().max(1e-3);
        let rate = records as f64 / secs;
        let line = match self.total {
            Some(total) if total > 0 => {
                let done = (records as f64 / total as f64).min(1.0);
                let filled = (done * 30.0) as usize;
                let eta = if rate > 0.0 { (total.saturating_sub(records)) as f64 / rate } else { 0.0 };
                format!(
                    "[{}{}] {:>3.0}% {} / {} records, {}, {} records/s, {:.0} s left",
                    "#".repeat(filled),
                    " ".repeat(30 - filled),
                    done * 100.0,
                    thousands(records),
                    thousands(total),
                    mb(bytes),
                    thousands(rate as u64),
                    eta
                )
            }
            _ => format!("{} records, {}, {} records/s (Ctrl-C stops)", thousands(records), mb(bytes), thousands(rate as u64)),
        };
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal { write!(err, "\r\x1b[2K{line}") } else { writeln!(err, "{line}") };
        let _ = err.flush();
    }

    /// The summary: what was written where, how fast.
    pub fn finish(&self, records: u64, bytes: u64, to: &str, per_stream: &[(String, u64)]) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let mut s = format!(
            "{} records ({}) to {to} in {secs:.2} s: {} records/s, {:.1} MB/s",
            thousands(records),
            mb(bytes),
            thousands((records as f64 / secs) as u64),
            bytes as f64 / 1e6 / secs
        );
        if per_stream.len() > 1 {
            let parts: Vec<String> = per_stream.iter().map(|(name, n)| format!("{name} {}", thousands(*n))).collect();
            s.push_str(&format!(" ({})", parts.join(", ")));
        }
        if !self.quiet && self.terminal {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_holds_records_back_until_their_time() {
        let start = Instant::now();
        let pace = Pace::new(start, 1000.0);
        assert_eq!(pace.wait_before(0, start), None);
        assert_eq!(pace.wait_before(500, start), Some(Duration::from_millis(500)));
        assert_eq!(pace.wait_before(500, start + Duration::from_secs(1)), None, "behind: no wait");
        assert_eq!(pace.check_every(), 10);
    }

    #[test]
    fn counts_are_written_with_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(100), "100");
    }
}
