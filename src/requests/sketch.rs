//! A bounded latency sketch: an HDR-style log-linear histogram of nanosecond values.
//!
//! A value below 2^[`SUB_BITS`] ns has its own bucket; above, each power of two is split into
//! 2^[`SUB_BITS`] equal buckets, so a bucket spans at most 1/2^SUB_BITS of its lower edge and a
//! quantile read at the bucket's midpoint is within [`RELATIVE_ERROR`] of the exact order
//! statistic's value. Memory is fixed (every u64 value has a bucket), whatever the number of
//! requests; the mean is kept exactly as a sum.

/// Sub-buckets per power of two, as a power of two.
pub const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets in all: one per value below `SUB`, then `SUB` per remaining power of two.
const BUCKETS: usize = ((64 - SUB_BITS + 1) as usize) * SUB as usize;

/// Largest relative error of a quantile read from the sketch: half a bucket's width over its
/// lower edge, 1/2^(SUB_BITS+1) = 0.39%.
pub const RELATIVE_ERROR: f64 = 1.0 / (2 * SUB) as f64;

/// The histogram. Reused across trials ([`Sketch::clear`] touches only the used range).
#[derive(Debug, Clone)]
pub struct Sketch {
    counts: Vec<u64>,
    n: u64,
    sum_s: f64,
    lo: usize,
    hi: usize,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch::new()
    }
}

/// The bucket of value `v` (ns).
#[inline]
fn bucket(v: u64) -> usize {
    if v < SUB {
        v as usize
    } else {
        let e = 63 - v.leading_zeros(); // >= SUB_BITS
        let sub = (v >> (e - SUB_BITS)) & (SUB - 1);
        ((e - SUB_BITS + 1) as usize) * SUB as usize + sub as usize
    }
}

/// The lower edge and width of bucket `b`.
fn edges(b: usize) -> (f64, f64) {
    let sub = SUB as usize;
    if b < sub {
        (b as f64, 1.0)
    } else {
        let e = (b / sub) as u32 - 1 + SUB_BITS;
        let k = (b % sub) as u64;
        let width = 2f64.powi((e - SUB_BITS) as i32);
        ((SUB + k) as f64 * width, width)
    }
}

impl Sketch {
    /// An empty sketch.
    pub fn new() -> Sketch {
        Sketch {
            counts: vec![0; BUCKETS],
            n: 0,
            sum_s: 0.0,
            lo: usize::MAX,
            hi: 0,
        }
    }

    /// Forgets every value.
    pub fn clear(&mut self) {
        if self.n > 0 {
            self.counts[self.lo..=self.hi].fill(0);
        }
        self.n = 0;
        self.sum_s = 0.0;
        self.lo = usize::MAX;
        self.hi = 0;
    }

    /// Adds a value in nanoseconds.
    #[inline]
    pub fn add(&mut self, ns: u64) {
        let b = bucket(ns);
        self.counts[b] += 1;
        self.lo = self.lo.min(b);
        self.hi = self.hi.max(b);
        self.n += 1;
        self.sum_s += ns as f64 * 1e-9;
    }

    /// Values added.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// The exact mean in seconds (NaN when empty).
    pub fn mean_s(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            self.sum_s / self.n as f64
        }
    }

    /// The `q` quantile in seconds (the midpoint of the bucket holding the order statistic of
    /// rank `ceil(q n)`; NaN when empty).
    pub fn quantile_s(&self, q: f64) -> f64 {
        if self.n == 0 {
            return f64::NAN;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for b in self.lo..=self.hi {
            seen += self.counts[b];
            if seen >= rank {
                let (lo, w) = edges(b);
                let mid = if w <= 1.0 { lo } else { lo + w / 2.0 };
                return mid * 1e-9;
            }
        }
        f64::NAN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotone_and_cover_their_values() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 40, u64::MAX / 3, u64::MAX]) {
            let b = bucket(v);
            assert!(b >= last || v >= 1 << 40);
            last = b;
            let (lo, w) = edges(b);
            assert!(lo <= v as f64 && (v as f64) <= lo + w, "{v}: {lo} {w}");
            assert!(w <= (lo / SUB as f64).max(1.0));
        }
        assert!(bucket(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles_are_within_the_stated_error() {
        let mut s = Sketch::new();
        // 1 ms .. 10 s, uneven.
        let values: Vec<u64> = (1..=20_000u64).map(|i| i * i * 25_000).collect();
        for &v in &values {
            s.add(v);
        }
        for q in [0.01, 0.5, 0.9, 0.99, 1.0] {
            let rank = ((q * values.len() as f64).ceil() as usize).max(1);
            let exact = values[rank - 1] as f64 * 1e-9;
            let got = s.quantile_s(q);
            assert!(
                (got - exact).abs() <= RELATIVE_ERROR * exact,
                "q {q}: {got} vs {exact}"
            );
        }
        let mean = values.iter().map(|&v| v as f64 * 1e-9).sum::<f64>() / values.len() as f64;
        assert!((s.mean_s() - mean).abs() < 1e-9 * mean);
        s.clear();
        assert!(s.mean_s().is_nan() && s.quantile_s(0.5).is_nan());
        s.add(5);
        assert_eq!(s.quantile_s(0.99), 5e-9);
    }
}
