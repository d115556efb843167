//! Time series and distributions for charts: what a run reports over time, aligned on each
//! trial's first failure, and the empirical distributions of the MTTRs.
//!
//! Everything here is computed from counts and fixed-point sums that are associative, so the
//! figures are identical for any thread count or shard split.

use serde::Serialize;

/// A quantity over time across trials: per bucket, the mean and the 5th and 95th percentiles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Band {
    /// Bucket centres, seconds relative to the first failure (negative: before it).
    pub t_s: Vec<f64>,
    /// Mean across the trials with data in the bucket (NaN without data).
    pub mean: Vec<f64>,
    /// 5th percentile across trials (NaN without data).
    pub p5: Vec<f64>,
    /// 95th percentile across trials (NaN without data).
    pub p95: Vec<f64>,
    /// Trials with data in the bucket.
    pub trials: Vec<u64>,
}

/// One plan's time series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanSeries {
    /// Plan name.
    pub plan: String,
    /// User success rate per bucket (0..1).
    pub availability: Band,
    /// The service whose mean peak offered load / capacity is highest in any bucket.
    pub stressed_service: String,
    /// Peak offered load / capacity of that service per bucket (while it is up), with times
    /// relative to each trial's technical recovery (the re-entry storm lines up at 0).
    pub load_ratio: Band,
    /// Median technical MTTR, seconds after the first failure (where recovery is marked).
    pub technical_recovery_s: f64,
    /// Median operational MTTR, seconds after the first failure.
    pub operational_recovery_s: f64,
}

/// Empirical distribution of a metric: its quantiles at `0, 1, ..., 100` percent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Distribution {
    /// Plan name.
    pub plan: String,
    /// Metric key.
    pub metric: String,
    /// 101 quantiles (type 7), from the minimum to the maximum.
    pub quantiles: Vec<f64>,
}

/// Fixed-point scale of the sums (2^32): integer sums are associative, so the mean does not
/// depend on how trials were split between threads or shards.
const SCALE: f64 = 4_294_967_296.0;
/// Histogram bins per decade.
const PER_DECADE: f64 = 16.0;
/// Decades covered by the histograms.
const DECADES: f64 = 6.0;
/// Bins: one below the range, `DECADES * PER_DECADE` inside it, one above.
const BINS: usize = (DECADES * PER_DECADE) as usize + 2;

/// How values map onto histogram bins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Scale {
    /// Success rates in [0, 1], binned by the failure share `1 - a` from 1e-6 to 1.
    Success,
    /// Ratios from 1e-3 to 1e3, binned logarithmically.
    Ratio,
}

impl Scale {
    /// The histogram key of a value (increasing in the key's own order).
    fn key(self, v: f64) -> f64 {
        match self {
            Scale::Success => 1.0 - v.clamp(0.0, 1.0),
            Scale::Ratio => v.max(0.0),
        }
    }

    /// Lower end of the key range.
    fn low(self) -> f64 {
        match self {
            Scale::Success => 1e-6,
            Scale::Ratio => 1e-3,
        }
    }

    fn bin(self, v: f64) -> usize {
        let k = self.key(v);
        let low = self.low();
        if k.is_nan() || k < low {
            return 0;
        }
        let x = ((k / low).log10() * PER_DECADE).floor();
        (x as usize + 1).min(BINS - 1)
    }

    /// The value a bin stands for: the geometric middle of its key range.
    fn value(self, bin: usize) -> f64 {
        let low = self.low();
        let key = match bin {
            0 => 0.0,
            b if b == BINS - 1 => low * 10f64.powf(DECADES),
            b => low * 10f64.powf((b as f64 - 0.5) / PER_DECADE),
        };
        match self {
            Scale::Success => 1.0 - key,
            Scale::Ratio => key,
        }
    }
}

/// Mean and quantile histograms of one quantity per bucket, across trials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BandAcc {
    scale: Scale,
    buckets: usize,
    sum: Vec<i128>,
    n: Vec<u64>,
    hist: Vec<u32>,
}

impl BandAcc {
    /// Empty.
    pub fn new(scale: Scale, buckets: usize) -> BandAcc {
        BandAcc {
            scale,
            buckets,
            sum: vec![0; buckets],
            n: vec![0; buckets],
            hist: vec![0; buckets * BINS],
        }
    }

    /// Adds one trial's value in bucket `b`.
    pub fn add(&mut self, b: usize, v: f64) {
        self.add_run(b, v, &mut None);
    }

    /// [`BandAcc::add`] for a trial's buckets in turn: `last` keeps the previous value's bin,
    /// reused when the value repeats (neighbouring buckets often hold the same value; the
    /// bin takes a logarithm).
    pub fn add_run(&mut self, b: usize, v: f64, last: &mut Option<(f64, usize)>) {
        if !v.is_finite() || b >= self.buckets {
            return;
        }
        let x = v * SCALE;
        // `x.round()` as an integer. Where it fits in 64 bits, without library calls: the
        // conversion truncates, and the fraction left is exact (below 2^53 it is a float's
        // exact fractional part; above, 0), so rounding half away from zero is one comparison.
        self.sum[b] += if x.abs() < 9.0e18 {
            let t = x as i64;
            let frac = x - t as f64;
            i128::from(if frac >= 0.5 {
                t + 1
            } else if frac <= -0.5 {
                t - 1
            } else {
                t
            })
        } else {
            x.round() as i128
        };
        self.n[b] += 1;
        let bin = match *last {
            Some((x, bin)) if x == v => bin,
            _ => self.scale.bin(v),
        };
        *last = Some((v, bin));
        self.hist[b * BINS + bin] += 1;
    }

    /// Adds another accumulator (of the same layout).
    pub fn merge(&mut self, o: &BandAcc) {
        // (Wrapping: sums of one run never come near the limits; a damaged shard that does
        // must not abort the process.)
        for (a, b) in self.sum.iter_mut().zip(&o.sum) {
            *a = a.wrapping_add(*b);
        }
        for (a, b) in self.n.iter_mut().zip(&o.n) {
            *a = a.wrapping_add(*b);
        }
        for (a, b) in self.hist.iter_mut().zip(&o.hist) {
            *a = a.wrapping_add(*b);
        }
    }

    /// The `q` quantile of bucket `b` from its histogram (nearest rank; NaN without data).
    fn quantile(&self, b: usize, q: f64) -> f64 {
        let n = self.n[b];
        if n == 0 {
            return f64::NAN;
        }
        // The key order runs opposite to the value for success rates.
        let q = match self.scale {
            Scale::Success => 1.0 - q,
            Scale::Ratio => q,
        };
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0u64;
        for bin in 0..BINS {
            seen += u64::from(self.hist[b * BINS + bin]);
            if seen >= rank {
                return self.scale.value(bin);
            }
        }
        f64::NAN
    }

    /// The band at bucket centres `t_s`.
    pub fn band(&self, t_s: Vec<f64>) -> Band {
        let b = self.buckets;
        Band {
            t_s,
            mean: (0..b)
                .map(|k| {
                    if self.n[k] == 0 {
                        f64::NAN
                    } else {
                        self.sum[k] as f64 / SCALE / self.n[k] as f64
                    }
                })
                .collect(),
            p5: (0..b).map(|k| self.quantile(k, 0.05)).collect(),
            p95: (0..b).map(|k| self.quantile(k, 0.95)).collect(),
            trials: self.n.clone(),
        }
    }
}

/// Per plan: the availability band and the load band of its tracked service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SeriesAcc {
    /// Bucket layout.
    pub spec: crate::sim::series::SeriesSpec,
    /// Tracked (most stressed) service per plan.
    pub tracked: Vec<usize>,
    /// Availability per plan.
    pub availability: Vec<BandAcc>,
    /// Load ratio per plan.
    pub load: Vec<BandAcc>,
}

impl SeriesAcc {
    /// Empty, for `tracked.len()` plans.
    pub fn new(spec: crate::sim::series::SeriesSpec, tracked: Vec<usize>) -> SeriesAcc {
        let p = tracked.len();
        SeriesAcc {
            spec,
            availability: vec![BandAcc::new(Scale::Success, spec.buckets); p],
            load: vec![BandAcc::new(Scale::Ratio, spec.buckets); p],
            tracked,
        }
    }

    /// Adds one trial of plan `p` recorded in `rec` (tracking that plan's service first);
    /// `technical_mttr_s` aligns the load on the trial's technical recovery (NaN: never).
    pub fn add_trial(
        &mut self,
        p: usize,
        rec: &crate::sim::series::Recorder,
        technical_mttr_s: f64,
    ) {
        let Some(origin) = rec.origin else { return };
        let mut last = None;
        for b in 0..self.spec.buckets {
            if rec.offered[b] > 0.0 {
                self.availability[p].add_run(b, rec.ok[b] / rec.offered[b], &mut last);
            }
        }
        if !technical_mttr_s.is_finite() {
            return;
        }
        // Bucket b of the load band is centred at recovery - before + (b + 1/2) width.
        let w = self.spec.width.0.max(1) as f64;
        let first_failure = origin as f64 + self.spec.before.0 as f64;
        let mut last = None;
        let recovery = first_failure + technical_mttr_s * 1e9;
        for b in 0..self.spec.buckets {
            let centre = recovery - self.spec.before.0 as f64 + (b as f64 + 0.5) * w;
            if centre < 0.0 {
                continue;
            }
            let j = (centre / w) as usize;
            if j < rec.slots {
                let v = rec.peak[j];
                if !v.is_nan() {
                    self.load[p].add_run(b, v, &mut last);
                }
            }
        }
    }

    /// Bytes its vectors hold (for the memory budget).
    pub fn heap_bytes(&self) -> usize {
        self.availability
            .iter()
            .chain(&self.load)
            .map(|b| b.sum.len() * 16 + b.n.len() * 8 + b.hist.len() * 4)
            .sum()
    }

    /// Whether `o` has this accumulator's layout: the same buckets, tracked services, plans
    /// and vector lengths (so that [`SeriesAcc::merge`] and the bands read only what exists).
    pub fn same_shape(&self, o: &SeriesAcc) -> bool {
        let band = |a: &BandAcc, b: &BandAcc| {
            a.scale == b.scale
                && a.buckets == b.buckets
                && a.sum.len() == b.sum.len()
                && a.n.len() == b.n.len()
                && a.hist.len() == b.hist.len()
                && b.sum.len() == b.buckets
                && b.n.len() == b.buckets
                && b.hist.len() == b.buckets * BINS
        };
        self.spec == o.spec
            && self.tracked == o.tracked
            && self.availability.len() == o.availability.len()
            && self.load.len() == o.load.len()
            && self
                .availability
                .iter()
                .zip(&o.availability)
                .all(|(a, b)| band(a, b))
            && self.load.iter().zip(&o.load).all(|(a, b)| band(a, b))
    }

    /// Adds another accumulator of the same run.
    pub fn merge(&mut self, o: &SeriesAcc) {
        for (a, b) in self.availability.iter_mut().zip(&o.availability) {
            a.merge(b);
        }
        for (a, b) in self.load.iter_mut().zip(&o.load) {
            a.merge(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sums round each value as `f64::round` does (half away from zero).
    #[test]
    fn band_sums_round_half_away_from_zero() {
        let mut a = BandAcc::new(Scale::Ratio, 1);
        // Exact halves, values just below a half, fractions, and values past 2^53 and 2^63
        // once scaled.
        let values = [
            0.0,
            0.5 / SCALE,
            -0.5 / SCALE,
            2.5 / SCALE,
            -3.5 / SCALE,
            0.49999999999999994 / SCALE,
            1e-9,
            -1e-9,
            1.0,
            -7.25,
            12345.678901234,
            4.5e12,
            -4.5e12,
            1e18,
            -2e15,
        ];
        let mut want: i128 = 0;
        for v in values {
            a.add_run(0, v, &mut None);
            want += (v * SCALE).round() as i128;
        }
        assert_eq!(a.sum[0], want);
    }

    #[test]
    fn bins_round_trip_within_their_width() {
        for v in [0.5, 0.9, 0.99, 0.999, 0.9999] {
            let b = Scale::Success.bin(v);
            let back = Scale::Success.value(b);
            assert!(
                ((1.0 - back) / (1.0 - v)).ln().abs() < 0.16,
                "{v} -> {back}"
            );
        }
        assert_eq!(Scale::Success.value(Scale::Success.bin(1.0)), 1.0);
        for v in [0.01, 0.5, 1.0, 3.0, 50.0] {
            let back = Scale::Ratio.value(Scale::Ratio.bin(v));
            assert!((back / v).ln().abs() < 0.16, "{v} -> {back}");
        }
    }

    #[test]
    fn band_mean_is_exact_and_quantiles_follow_the_histogram() {
        let mut a = BandAcc::new(Scale::Ratio, 1);
        for i in 1..=100 {
            a.add(0, f64::from(i) / 100.0);
        }
        let band = a.band(vec![0.0]);
        assert!((band.mean[0] - 0.505).abs() < 1e-9);
        assert!((band.p5[0] / 0.05).ln().abs() < 0.16, "{}", band.p5[0]);
        assert!((band.p95[0] / 0.95).ln().abs() < 0.16, "{}", band.p95[0]);
        // Merging in any order gives the same accumulator.
        let (mut x, mut y) = (BandAcc::new(Scale::Ratio, 1), BandAcc::new(Scale::Ratio, 1));
        for i in 0..50 {
            x.add(0, f64::from(i) * 0.37);
            y.add(0, f64::from(i) * 1.91);
        }
        let mut xy = x.clone();
        xy.merge(&y);
        let mut yx = y.clone();
        yx.merge(&x);
        assert_eq!(xy, yx);
        // Success rates: p5 is the low tail.
        let mut s = BandAcc::new(Scale::Success, 1);
        for i in 0..100 {
            s.add(0, if i < 10 { 0.5 } else { 0.999 });
        }
        let band = s.band(vec![0.0]);
        assert!(band.p5[0] < 0.6 && band.p95[0] > 0.99, "{band:?}");
    }
}
