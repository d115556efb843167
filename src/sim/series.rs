//! Per-trial time series for charts: user success and the offered load / capacity of chosen
//! services, integrated exactly over fixed buckets aligned on the trial's first failure.
//!
//! A [`Recorder`] is reused across trials (no allocation per trial); an engine feeds it the
//! intervals between its events (the flow engine from `accumulate`), and it splits each at
//! bucket boundaries. Engine-independent: it sees rates over intervals and load ratios, never
//! an engine's state.

use crate::engine::{SimDuration, SimTime};

/// Where the buckets are: `buckets` of `width`, the first starting `before` the first failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeriesSpec {
    /// Time shown before the first failure.
    pub before: SimDuration,
    /// Bucket width.
    pub width: SimDuration,
    /// Number of buckets.
    pub buckets: usize,
}

impl SeriesSpec {
    /// Bucket centres in seconds relative to the first failure.
    pub fn centres(&self) -> Vec<f64> {
        let w = self.width.as_secs_f64();
        let b = self.before.as_secs_f64();
        (0..self.buckets)
            .map(|i| (i as f64 + 0.5) * w - b)
            .collect()
    }
}

/// One trial's buckets.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// The bucket layout.
    pub spec: SeriesSpec,
    /// Services whose load ratio is recorded.
    pub tracked: Vec<usize>,
    /// Start of bucket 0 in this trial, in nanoseconds (negative when the first failure comes
    /// sooner than `before`; None: the trial has no failure and nothing is recorded).
    pub origin: Option<i128>,
    /// User requests offered per bucket.
    pub offered: Vec<f64>,
    /// User requests that succeeded per bucket.
    pub ok: Vec<f64>,
    /// Per tracked service (`k * slots + j`): the peak offered load / capacity while it was
    /// up in slot `j` of the whole trial (slots of the bucket width from time 0; NaN when it
    /// was down throughout). A re-entry storm can last seconds: a peak, not an average, shows
    /// it; slots let the storm be aligned on the trial's technical recovery afterwards.
    pub peak: Vec<f64>,
    /// Slots per tracked service.
    pub slots: usize,
}

impl Recorder {
    /// An empty recorder.
    pub fn new(spec: SeriesSpec, tracked: Vec<usize>, horizon: SimTime) -> Recorder {
        let b = spec.buckets;
        let k = tracked.len();
        let slots = (horizon.0 / spec.width.0.max(1)) as usize + 1;
        Recorder {
            spec,
            tracked,
            origin: None,
            offered: vec![0.0; b],
            ok: vec![0.0; b],
            peak: vec![f64::NAN; slots * k],
            slots,
        }
    }

    /// Clears the buckets for a trial whose first failure starts at `first_failure`.
    pub fn reset(&mut self, first_failure: Option<SimTime>) {
        self.origin = first_failure.map(|f| i128::from(f.0) - i128::from(self.spec.before.0));
        for v in [&mut self.offered, &mut self.ok] {
            v.iter_mut().for_each(|x| *x = 0.0);
        }
        self.peak.iter_mut().for_each(|x| *x = f64::NAN);
    }

    /// Adds the interval `[from, to)`, during which rates were constant: user requests
    /// offered and succeeding per second, and per service `load(svc)`, its arrivals and
    /// capacity per second.
    pub fn add(
        &mut self,
        from: SimTime,
        to: SimTime,
        (users, users_ok): (f64, f64),
        load: impl Fn(usize) -> (f64, f64),
    ) {
        let Some(origin) = self.origin else { return };
        let n = self.spec.buckets;
        let w = i128::from(self.spec.width.0.max(1));
        let end = origin + w * n as i128;
        let (a, b) = (i128::from(from.0).max(origin), i128::from(to.0).min(end));
        let mut t = a;
        while t < b {
            // Native 64-bit arithmetic where the numbers fit (they always do within a
            // horizon of u64 nanoseconds; `stop - t` is at most one width): the same numbers
            // as 128-bit, without library calls.
            let d = t - origin;
            let k = match u64::try_from(d) {
                Ok(d) => (d / w as u64) as usize,
                Err(_) => (d / w) as usize,
            };
            let stop = (origin + (k as i128 + 1) * w).min(b);
            let secs = (stop - t) as u64 as f64 / 1e9;
            self.offered[k] += users * secs;
            self.ok[k] += users_ok * secs;
            t = stop;
        }
        // Peaks, on the trial's own slot grid.
        let w = self.spec.width.0.max(1);
        let first = (from.0 / w) as usize;
        let last = (to.0.saturating_sub(1) / w) as usize;
        for (i, &svc) in self.tracked.iter().enumerate() {
            let (arrivals, cap) = load(svc);
            if cap > 0.0 && to > from {
                let r = arrivals / cap;
                for j in first..=last.min(self.slots - 1) {
                    let p = &mut self.peak[i * self.slots + j];
                    if p.is_nan() || r > *p {
                        *p = r;
                    }
                }
            }
        }
    }

    /// Adds counts of user requests offered and served over `[from, to)` (the request engine's
    /// windows), split between buckets in proportion to time.
    pub(crate) fn add_counts(&mut self, from: SimTime, to: SimTime, offered: f64, ok: f64) {
        let Some(origin) = self.origin else { return };
        if to <= from {
            return;
        }
        let len = (to.0 - from.0) as f64;
        let w = i128::from(self.spec.width.0.max(1));
        let end = origin + w * self.spec.buckets as i128;
        let (a, b) = (i128::from(from.0).max(origin), i128::from(to.0).min(end));
        let mut t = a;
        while t < b {
            let k = ((t - origin) / w) as usize;
            let stop = (origin + (k as i128 + 1) * w).min(b);
            let share = (stop - t) as f64 / len;
            self.offered[k] += offered * share;
            self.ok[k] += ok * share;
            t = stop;
        }
    }

    /// A burst of calls landed on service `svc` at `at`: its slot's peak is at least the
    /// burst's load ratio `ratio` (the storm measure: calls over the storm window).
    pub fn burst(&mut self, svc: usize, at: SimTime, ratio: f64) {
        if self.origin.is_none() {
            return;
        }
        let j = (at.0 / self.spec.width.0.max(1)) as usize;
        for (i, &s) in self.tracked.iter().enumerate() {
            if s == svc && j < self.slots {
                let p = &mut self.peak[i * self.slots + j];
                if p.is_nan() || ratio > *p {
                    *p = ratio;
                }
            }
        }
    }
}
