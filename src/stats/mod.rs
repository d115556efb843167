//! Statistics across trials: pure functions of per-trial values given in trial order.
//!
//! Invariant: every reduction is a sequential fold in trial order, so the bits of every
//! statistic are independent of thread count and shard split. Quantiles interpolate linearly
//! between order statistics (Hyndman & Fan type 7, the default of R and NumPy); `min` and `max`
//! are the quantiles 0 and 1.
//!
//! Confidence intervals of a mean respect the range of the metric ([`Domain`], [`CiMethod`]):
//! for values in `[0, inf)` the delta-method interval on the log scale,
//! `mean * exp(±t * se / mean)` (all-zero data give `[0, 0]`); for values in `[0, 1]` the
//! delta-method interval on the logit scale, `expit(logit(mean) ± t * se / (mean * (1 - mean)))`;
//! for unbounded values (paired differences) Student's t, `mean ± t * se`. `t` is Student's
//! 97.5% quantile with n - 1 degrees of freedom and `se = s / sqrt(n)`. When the relative
//! standard error is small the three agree; when it is not, the transformed intervals stay in
//! the range and follow the skew of the data. Where the transform is undefined (a mean on the
//! edge of the range with a non-zero spread, which bounded data cannot give except through
//! rounding) the t-interval is clipped to the range.
//!
//! Censoring: a censored trial's value is a lower bound of its true value (a trial not
//! recovered within the horizon reports the time up to the horizon). [`summarize`] says which
//! statistics are then lower bounds: the mean and the interval whenever any trial is censored;
//! a quantile (and `min`, `max`) exactly when it could be larger if the censored values were
//! larger (see [`quantile_is_lower_bound`]).
//!
//! Paired differences count a plan's wins only beyond float noise ([`differs`]).

use std::fmt;

/// A statistic of a metric across trials, as named in reports and expectations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stat {
    /// `mean`
    Mean,
    /// `min`: the smallest value.
    Min,
    /// `p1`: 1st percentile.
    P1,
    /// `p5`: 5th percentile.
    P5,
    /// `p10`: 10th percentile.
    P10,
    /// `p50`: the median.
    P50,
    /// `p90`: 90th percentile.
    P90,
    /// `p95`: 95th percentile.
    P95,
    /// `p99`: 99th percentile.
    P99,
    /// `max`: the largest value.
    Max,
    /// `ci95_low`: lower bound of the 95% confidence interval of the mean.
    Ci95Low,
    /// `ci95_high`: upper bound of the 95% confidence interval of the mean.
    Ci95High,
}

impl Stat {
    /// Every statistic, in report order.
    pub const ALL: [Stat; 12] = [
        Stat::Mean,
        Stat::Min,
        Stat::P1,
        Stat::P5,
        Stat::P10,
        Stat::P50,
        Stat::P90,
        Stat::P95,
        Stat::P99,
        Stat::Max,
        Stat::Ci95Low,
        Stat::Ci95High,
    ];

    /// The statistic's name, e.g. `"p95"`.
    pub fn name(self) -> &'static str {
        match self {
            Stat::Mean => "mean",
            Stat::Min => "min",
            Stat::P1 => "p1",
            Stat::P5 => "p5",
            Stat::P10 => "p10",
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
            Stat::Max => "max",
            Stat::Ci95Low => "ci95_low",
            Stat::Ci95High => "ci95_high",
        }
    }

    /// The statistic with the given name, if any (case-sensitive).
    pub fn from_name(name: &str) -> Option<Stat> {
        Stat::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The level of a quantile statistic (`min` is 0, `max` 1); `None` for the mean and the
    /// interval.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Stat::Min => Some(0.0),
            Stat::P1 => Some(0.01),
            Stat::P5 => Some(0.05),
            Stat::P10 => Some(0.10),
            Stat::P50 => Some(0.50),
            Stat::P90 => Some(0.90),
            Stat::P95 => Some(0.95),
            Stat::P99 => Some(0.99),
            Stat::Max => Some(1.0),
            Stat::Mean | Stat::Ci95Low | Stat::Ci95High => None,
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of statistics (e.g. those that are lower bounds), iterated in [`Stat::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatSet(u16);

impl StatSet {
    /// No statistic.
    pub const EMPTY: StatSet = StatSet(0);

    /// Adds `s`.
    pub fn insert(&mut self, s: Stat) {
        self.0 |= s.bit();
    }

    /// Whether `s` is in the set.
    pub fn contains(self, s: Stat) -> bool {
        self.0 & s.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The statistics in the set, in report order.
    pub fn iter(self) -> impl Iterator<Item = Stat> {
        Stat::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Stat> for StatSet {
    fn from_iter<I: IntoIterator<Item = Stat>>(iter: I) -> StatSet {
        let mut set = StatSet::EMPTY;
        for s in iter {
            set.insert(s);
        }
        set
    }
}

/// The values a metric can take; it decides the confidence interval of its mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// Any real value (paired differences).
    Real,
    /// `[0, inf)`: durations, counts, ratios.
    NonNegative,
    /// `[0, 1]`: shares.
    UnitInterval,
}

impl Domain {
    /// The interval method used for a mean of this domain.
    pub fn ci_method(self) -> CiMethod {
        match self {
            Domain::Real => CiMethod::T,
            Domain::NonNegative => CiMethod::Log,
            Domain::UnitInterval => CiMethod::Logit,
        }
    }
}

/// How a 95% confidence interval of a mean is computed (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiMethod {
    /// Student's t: `mean ± t * se`.
    T,
    /// Delta method on the log scale: `mean * exp(±t * se / mean)`, inside `[0, inf)`.
    Log,
    /// Delta method on the logit scale, inside `[0, 1]`.
    Logit,
}

impl CiMethod {
    /// The name written in reports: `t`, `log` or `logit`.
    pub fn name(self) -> &'static str {
        match self {
            CiMethod::T => "t",
            CiMethod::Log => "log",
            CiMethod::Logit => "logit",
        }
    }
}

/// What censoring did to a metric's summary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Censoring {
    /// Share of trials whose value is censored (a lower bound).
    pub share: f64,
    /// The statistics that are lower bounds of their true value.
    pub lower_bounds: StatSet,
}

/// The statistics reported for each metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Arithmetic mean.
    pub mean: f64,
    /// Smallest value.
    pub min: f64,
    /// 1st percentile.
    pub p1: f64,
    /// 5th percentile.
    pub p5: f64,
    /// 10th percentile.
    pub p10: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
    /// Lower bound of the 95% confidence interval of the mean (NaN when n < 2).
    pub ci95_low: f64,
    /// Upper bound of the 95% confidence interval of the mean (NaN when n < 2).
    pub ci95_high: f64,
    /// How the interval was computed.
    pub ci_method: CiMethod,
    /// For a metric that censoring can affect, the censored share and the statistics that are
    /// lower bounds; `None` for the others.
    pub censoring: Option<Censoring>,
}

impl Summary {
    /// The value of statistic `s`.
    pub fn get(&self, s: Stat) -> f64 {
        match s {
            Stat::Mean => self.mean,
            Stat::Min => self.min,
            Stat::P1 => self.p1,
            Stat::P5 => self.p5,
            Stat::P10 => self.p10,
            Stat::P50 => self.p50,
            Stat::P90 => self.p90,
            Stat::P95 => self.p95,
            Stat::P99 => self.p99,
            Stat::Max => self.max,
            Stat::Ci95Low => self.ci95_low,
            Stat::Ci95High => self.ci95_high,
        }
    }

    /// Whether statistic `s` is only a lower bound of its true value (censored trials enter it).
    pub fn is_lower_bound(&self, s: Stat) -> bool {
        self.censoring.is_some_and(|c| c.lower_bounds.contains(s))
    }

    /// The statistics that are lower bounds (empty without censoring).
    pub fn lower_bounds(&self) -> StatSet {
        self.censoring.map_or(StatSet::EMPTY, |c| c.lower_bounds)
    }
}

/// Mean and sample variance by a sequential fold (Welford), in the order given.
pub fn mean_var(values: &[f64]) -> (f64, f64) {
    let mut mean = 0.0;
    let mut m2 = 0.0;
    for (i, &x) in values.iter().enumerate() {
        let d = x - mean;
        mean += d / (i + 1) as f64;
        m2 += d * (x - mean);
    }
    let var = if values.len() > 1 {
        m2 / (values.len() - 1) as f64
    } else {
        f64::NAN
    };
    (if values.is_empty() { f64::NAN } else { mean }, var)
}

/// The order statistics a type-7 quantile `q` of `n` values uses: `(lo, hi, frac)`, the
/// estimate being `x[lo] + frac * (x[hi] - x[lo])` (`x[hi]` has weight 0 when `frac` is 0).
fn type7(n: usize, q: f64) -> (usize, usize, f64) {
    let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    (lo, (lo + 1).min(n - 1), h - lo as f64)
}

/// The type-7 quantile `q` of already sorted values.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let (lo, hi, frac) = type7(sorted.len(), q);
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

/// Whether the type-7 quantile `q` of `sorted` (every value, censored or not, ascending) is
/// only a lower bound of its true value; `exact` holds the uncensored values, ascending.
///
/// A censored value is a lower bound of a value that may be anything above it, and the
/// estimate is non-decreasing in every value, so the true estimate lies between the estimate
/// and the estimate with every censored value at +inf. That upper end's order statistic `k`
/// is `exact[k]` (or +inf past the end); the estimate is exact when each order statistic it
/// uses with a non-zero weight is the same either way. So a censored value that is smaller
/// than an order statistic used makes it a lower bound, while one tied with it need not (the
/// minimum of an uncensored 5 and a censored 5 is 5), and neither does one above it.
pub fn quantile_is_lower_bound(sorted: &[f64], exact: &[f64], q: f64) -> bool {
    if sorted.is_empty() || exact.len() == sorted.len() {
        return false;
    }
    let (lo, hi, frac) = type7(sorted.len(), q);
    let moves = |k: usize| exact.get(k).is_none_or(|&u| u != sorted[k]);
    moves(lo) || (frac > 0.0 && moves(hi))
}

/// Two-sided 97.5% quantile of Student's t with `df` degrees of freedom.
pub fn t975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    if df == 0 {
        return f64::NAN;
    }
    if df <= 30 {
        return TABLE[df - 1];
    }
    // Cornish-Fisher expansion (Abramowitz & Stegun 26.7.5); error < 1e-5 for df > 30.
    let z: f64 = Z975;
    let v = df as f64;
    let (z3, z5, z7, z9) = (z.powi(3), z.powi(5), z.powi(7), z.powi(9));
    z + (z3 + z) / (4.0 * v)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v.powi(3))
        + (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z) / (92_160.0 * v.powi(4))
}

/// The standard normal's 97.5% quantile.
const Z975: f64 = 1.959_963_984_540_054;

/// Mean and Student-t 95% confidence interval of the mean (for values of any sign).
pub fn mean_ci(values: &[f64]) -> (f64, f64, f64) {
    mean_ci_in(values, Domain::Real)
}

/// Mean and 95% confidence interval of the mean for values in `domain`, by its
/// [`Domain::ci_method`]; the bounds are NaN with fewer than two values.
pub fn mean_ci_in(values: &[f64], domain: Domain) -> (f64, f64, f64) {
    let (mean, var) = mean_var(values);
    if values.len() < 2 {
        return (mean, f64::NAN, f64::NAN);
    }
    let t = t975(values.len() - 1);
    let se = (var / values.len() as f64).sqrt();
    let (lo, hi) = interval(domain, mean, se, t);
    (mean, lo, hi)
}

/// The interval of a mean `m` with standard error `se` and quantile `t` in `domain`.
fn interval(domain: Domain, m: f64, se: f64, t: f64) -> (f64, f64) {
    let half = t * se;
    match domain {
        Domain::Real => (m - half, m + half),
        Domain::NonNegative => {
            if se == 0.0 && m >= 0.0 {
                (m, m)
            } else if m > 0.0 && se.is_finite() {
                let k = (half / m).exp();
                (m / k, m * k)
            } else {
                ((m - half).max(0.0), (m + half).max(0.0))
            }
        }
        Domain::UnitInterval => {
            if se == 0.0 && (0.0..=1.0).contains(&m) {
                (m, m)
            } else if m > 0.0 && m < 1.0 && se.is_finite() {
                let centre = (m / (1.0 - m)).ln();
                let d = half / (m * (1.0 - m));
                let expit = |x: f64| 1.0 / (1.0 + (-x).exp());
                (expit(centre - d).min(m), expit(centre + d).max(m))
            } else {
                ((m - half).clamp(0.0, 1.0), (m + half).clamp(0.0, 1.0))
            }
        }
    }
}

/// The Wilson score 95% interval of a share of `k` successes out of `n` (NaN for `n = 0`):
/// inside `[0, 1]`, and sensible at 0 and `n` where the normal interval collapses to a point.
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let (k, nf) = (k.min(n), n as f64);
    let p = k as f64 / nf;
    let z2 = Z975 * Z975;
    let denom = 1.0 + z2 / nf;
    let centre = (p + z2 / (2.0 * nf)) / denom;
    let half = Z975 * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    let lo = if k == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let hi = if k == n {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    (lo, hi)
}

/// Summarises values given in trial order, for a metric whose values lie in `domain`.
/// `censored`, for a metric that censoring can affect, flags each trial whose value is a lower
/// bound (same order and length as `values`). `scratch` is reused for sorting.
pub fn summarize(
    values: &[f64],
    domain: Domain,
    censored: Option<&[bool]>,
    scratch: &mut Vec<f64>,
) -> Summary {
    let (mean, lo, hi) = mean_ci_in(values, domain);
    scratch.clear();
    scratch.extend_from_slice(values);
    scratch.sort_by(f64::total_cmp);
    let q = |s: Stat| quantile_sorted(scratch, s.quantile().unwrap_or(f64::NAN));
    let censoring = censored.map(|flags| {
        let count = flags.iter().filter(|&&c| c).count();
        let mut lower_bounds = StatSet::EMPTY;
        if count > 0 {
            let mut exact: Vec<f64> = values
                .iter()
                .zip(flags)
                .filter(|&(_, &c)| !c)
                .map(|(&v, _)| v)
                .collect();
            exact.sort_by(f64::total_cmp);
            for s in Stat::ALL {
                let bound = match s.quantile() {
                    Some(level) => quantile_is_lower_bound(scratch, &exact, level),
                    None => true,
                };
                if bound {
                    lower_bounds.insert(s);
                }
            }
        }
        Censoring {
            share: if values.is_empty() {
                f64::NAN
            } else {
                count as f64 / values.len() as f64
            },
            lower_bounds,
        }
    });
    Summary {
        mean,
        min: q(Stat::Min),
        p1: q(Stat::P1),
        p5: q(Stat::P5),
        p10: q(Stat::P10),
        p50: q(Stat::P50),
        p90: q(Stat::P90),
        p95: q(Stat::P95),
        p99: q(Stat::P99),
        max: q(Stat::Max),
        ci95_low: lo,
        ci95_high: hi,
        ci_method: domain.ci_method(),
        censoring,
    }
}

/// Whether two values differ by more than float noise: `|a - b| > 1e-9 * max(1, |a|, |b|)`,
/// that is beyond a relative 1e-9 of the larger magnitude and beyond 1e-9 absolute (values of a
/// few ulps apart, from the same quantity summed in another order, are the same result).
pub fn differs(a: f64, b: f64) -> bool {
    (a - b).abs() > 1e-9 * 1f64.max(a.abs()).max(b.abs())
}

/// A paired comparison of a plan against the baseline on one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// Mean of (plan - baseline) over trials.
    pub mean_diff: f64,
    /// Lower 95% bound of the mean difference (Student's t).
    pub ci95_low: f64,
    /// Upper 95% bound of the mean difference (Student's t).
    pub ci95_high: f64,
    /// Share of trials in which the plan is better by more than float noise ([`differs`]).
    pub plan_wins_share: f64,
}

/// Paired difference `plan - baseline`, trial by trial; `lower_is_better` decides who wins.
pub fn paired(
    baseline: &[f64],
    plan: &[f64],
    lower_is_better: bool,
    scratch: &mut Vec<f64>,
) -> Paired {
    scratch.clear();
    scratch.extend(plan.iter().zip(baseline).map(|(p, b)| p - b));
    let (mean_diff, lo, hi) = mean_ci(scratch);
    let wins = plan
        .iter()
        .zip(baseline)
        .filter(|&(&p, &b)| {
            let better = if lower_is_better { p < b } else { p > b };
            better && differs(p, b)
        })
        .count();
    Paired {
        mean_diff,
        ci95_low: lo,
        ci95_high: hi,
        plan_wins_share: if scratch.is_empty() {
            f64::NAN
        } else {
            wins as f64 / scratch.len() as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed pseudo-random sequence of uniforms in (0, 1) (xorshift64).
    struct Uniform(u64);

    impl Uniform {
        fn new(seed: u64) -> Uniform {
            Uniform(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
    }

    #[test]
    fn quantiles_match_numpy_type7() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quantile_sorted(&v, 0.5), 5.5);
        assert!((quantile_sorted(&v, 0.9) - 9.1).abs() < 1e-12);
        assert_eq!(quantile_sorted(&v, 1.0), 10.0);
        assert_eq!(quantile_sorted(&v, 0.0), 1.0);
        assert!((quantile_sorted(&v, 0.1) - 1.9).abs() < 1e-12);
        assert!((quantile_sorted(&v, 0.05) - 1.45).abs() < 1e-12);
        let s = summarize(&v, Domain::NonNegative, None, &mut Vec::new());
        assert_eq!((s.min, s.max), (1.0, 10.0));
        assert!((s.p1 - 1.09).abs() < 1e-12 && (s.p10 - 1.9).abs() < 1e-12);
        for st in Stat::ALL {
            assert_eq!(Stat::from_name(st.name()), Some(st));
        }
    }

    #[test]
    fn mean_and_t_interval() {
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let (m, var) = mean_var(&v);
        assert_eq!(m, 5.0);
        assert!((var - 32.0 / 7.0).abs() < 1e-12);
        let (_, lo, hi) = mean_ci(&v);
        let half = 2.365 * (32.0f64 / 7.0 / 8.0).sqrt();
        assert!((lo - (5.0 - half)).abs() < 1e-9 && (hi - (5.0 + half)).abs() < 1e-9);
        assert!(mean_ci(&[1.0]).1.is_nan());
        assert!(mean_ci_in(&[1.0], Domain::NonNegative).2.is_nan());
    }

    #[test]
    fn t_quantile_is_continuous_past_the_table() {
        assert!((t975(31) - 2.0395).abs() < 1e-3);
        assert!((t975(120) - 1.9799).abs() < 1e-3);
        assert!((t975(1_000_000) - 1.96).abs() < 1e-3);
    }

    #[test]
    fn intervals_respect_the_range_where_t_does_not() {
        // Skewed non-negative data: the t-interval reaches below 0.
        let counts = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 12.0];
        assert!(mean_ci(&counts).1 < 0.0);
        let (m, lo, hi) = mean_ci_in(&counts, Domain::NonNegative);
        assert!(lo > 0.0 && lo < m && hi > m, "[{lo}, {hi}]");
        // The log scale is symmetric around the mean's logarithm.
        assert!(((m / lo).ln() - (hi / m).ln()).abs() < 1e-12);
        assert_eq!(mean_ci_in(&[0.0; 5], Domain::NonNegative), (0.0, 0.0, 0.0));
        assert_eq!(mean_ci_in(&[3.0; 5], Domain::NonNegative), (3.0, 3.0, 3.0));
        // Shares near 1: the t-interval passes 1.
        let avail = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.4];
        assert!(mean_ci(&avail).2 > 1.0);
        let (m, lo, hi) = mean_ci_in(&avail, Domain::UnitInterval);
        assert!(0.0 < lo && lo < m && m < hi && hi < 1.0, "[{lo}, {hi}]");
        // And near 0.
        let hit = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.6];
        let (m, lo, hi) = mean_ci_in(&hit, Domain::UnitInterval);
        assert!(0.0 < lo && lo < m && m < hi && hi < 1.0, "[{lo}, {hi}]");
        assert_eq!(mean_ci_in(&[1.0; 4], Domain::UnitInterval), (1.0, 1.0, 1.0));
        assert_eq!(mean_ci_in(&[0.0; 4], Domain::UnitInterval), (0.0, 0.0, 0.0));
        // Where the transform is undefined, the t-interval is clipped to the range.
        assert_eq!(interval(Domain::UnitInterval, 1.0, 0.1, 2.0), (0.8, 1.0));
        assert_eq!(interval(Domain::NonNegative, 0.0, 0.1, 2.0), (0.0, 0.2));
        assert_eq!(Domain::UnitInterval.ci_method().name(), "logit");
        assert_eq!(Domain::NonNegative.ci_method().name(), "log");
    }

    #[test]
    fn intervals_agree_with_t_when_the_relative_error_is_small() {
        let mut u = Uniform::new(7);
        let durations: Vec<f64> = (0..400).map(|_| 3600.0 + 60.0 * u.next()).collect();
        let shares: Vec<f64> = (0..400).map(|_| 0.5 + 0.01 * u.next()).collect();
        for (values, domain) in [
            (&durations, Domain::NonNegative),
            (&shares, Domain::UnitInterval),
        ] {
            let (m, tlo, thi) = mean_ci(values);
            let (m2, lo, hi) = mean_ci_in(values, domain);
            assert_eq!(m, m2);
            let half = thi - m;
            assert!(
                ((lo - tlo) / half).abs() < 1e-3,
                "{domain:?}: {lo} vs {tlo}"
            );
            assert!(
                ((hi - thi) / half).abs() < 1e-3,
                "{domain:?}: {hi} vs {thi}"
            );
        }
    }

    /// Share of `reps` samples of `n` draws whose interval covers the true mean.
    fn coverage(
        domain: Domain,
        n: usize,
        reps: usize,
        truth: f64,
        draw: impl Fn(f64) -> f64,
    ) -> f64 {
        let mut u = Uniform::new(11);
        let mut covered = 0;
        let mut sample = Vec::with_capacity(n);
        for _ in 0..reps {
            sample.clear();
            sample.extend((0..n).map(|_| draw(u.next())));
            let (_, lo, hi) = mean_ci_in(&sample, domain);
            let (min, max) = match domain {
                Domain::UnitInterval => (0.0, 1.0),
                Domain::NonNegative => (0.0, f64::INFINITY),
                Domain::Real => (f64::NEG_INFINITY, f64::INFINITY),
            };
            assert!(min <= lo && lo <= hi && hi <= max, "[{lo}, {hi}]");
            if lo <= truth && truth <= hi {
                covered += 1;
            }
        }
        covered as f64 / reps as f64
    }

    #[test]
    fn intervals_cover_the_true_mean_about_95_percent_of_the_time() {
        // Exponential durations (mean 1), a skewed non-negative metric.
        let c = coverage(Domain::NonNegative, 40, 4000, 1.0, |u| -u.ln());
        assert!((0.92..=0.97).contains(&c), "log: {c}");
        // Availability-like shares: 1 - 0.2 u^4 (mean 0.96), skewed towards 1.
        let c = coverage(Domain::UnitInterval, 40, 4000, 0.96, |u| {
            1.0 - 0.2 * u.powi(4)
        });
        assert!((0.92..=0.97).contains(&c), "logit: {c}");
        // Symmetric data for the t-interval.
        let c = coverage(Domain::Real, 40, 4000, 0.0, |u| u - 0.5);
        assert!((0.93..=0.97).contains(&c), "t: {c}");
    }

    #[test]
    fn wilson_interval() {
        let (lo, hi) = wilson(10, 100);
        assert!(
            (lo - 0.05523).abs() < 1e-4 && (hi - 0.17437).abs() < 1e-4,
            "[{lo}, {hi}]"
        );
        let (lo, hi) = wilson(0, 100);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.036_995).abs() < 1e-4, "{hi}");
        let (lo, hi) = wilson(100, 100);
        assert_eq!(hi, 1.0);
        assert!((lo - 0.963).abs() < 1e-3, "{lo}");
        assert!(wilson(0, 0).0.is_nan());
    }

    #[test]
    fn wins_ignore_float_noise() {
        let next = |x: f64| f64::from_bits(x.to_bits() + 1);
        // The same quantity summed in another order, and values one ulp apart: no win.
        let base = [0.3, 1e12, 5.0, 0.0, 7200.0];
        let plan = [0.1 + 0.2, next(1e12), 4.0, 5e-10, 7200.0 - 1e-3];
        assert_ne!(plan[0], base[0]);
        let p = paired(&base, &plan, true, &mut Vec::new());
        // Only 4.0 < 5.0 and 7200 - 1e-3 < 7200 are real differences (1e-6 would be noise at
        // 7200: below 1e-9 of it).
        assert_eq!(p.plan_wins_share, 2.0 / 5.0);
        let p = paired(&base, &plan, false, &mut Vec::new());
        assert_eq!(p.plan_wins_share, 0.0);
        assert!(!differs(0.1 + 0.2, 0.3));
        assert!(!differs(1e12, next(1e12)));
        assert!(differs(1.0, 1.0 + 2e-9));
        assert!(!differs(0.0, 1e-10));
    }

    #[test]
    fn paired_wins_respect_direction() {
        let b = [10.0, 10.0, 10.0, 10.0];
        let p = [9.0, 11.0, 8.0, 10.0];
        let lower = paired(&b, &p, true, &mut Vec::new());
        assert_eq!(lower.plan_wins_share, 0.5);
        assert_eq!(lower.mean_diff, -0.5);
        let higher = paired(&b, &p, false, &mut Vec::new());
        assert_eq!(higher.plan_wins_share, 0.25);
    }

    fn bounds(values: &[f64], censored: &[bool]) -> Vec<&'static str> {
        let s = summarize(values, Domain::NonNegative, Some(censored), &mut Vec::new());
        s.lower_bounds().iter().map(Stat::name).collect()
    }

    #[test]
    fn censored_largest_values_bound_the_mean_the_interval_and_the_top_quantiles() {
        // 100 trials, the largest one censored: p99 uses order statistics 98 and 99.
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let mut censored = vec![false; 100];
        censored[99] = true;
        assert_eq!(
            bounds(&values, &censored),
            ["mean", "p99", "max", "ci95_low", "ci95_high"]
        );
        let s = summarize(
            &values,
            Domain::NonNegative,
            Some(&censored),
            &mut Vec::new(),
        );
        assert_eq!(s.censoring.map(|c| c.share), Some(0.01));
        assert!(s.is_lower_bound(Stat::Max) && !s.is_lower_bound(Stat::P95));
        // No censoring: nothing is a bound, and the share is 0.
        assert!(bounds(&values, &[false; 100]).is_empty());
        let s = summarize(
            &values,
            Domain::NonNegative,
            Some(&[false; 100]),
            &mut Vec::new(),
        );
        assert_eq!(s.censoring.map(|c| c.share), Some(0.0));
        // A metric that cannot be censored has no censoring record at all.
        let s = summarize(&values, Domain::NonNegative, None, &mut Vec::new());
        assert!(s.censoring.is_none() && s.lower_bounds().is_empty());
    }

    #[test]
    fn a_small_censored_value_bounds_the_low_quantiles_too() {
        // A trial whose first failure came late: its value is capped at horizon minus that
        // failure, smaller than every uncensored value.
        let mut values: Vec<f64> = (10..=19).map(f64::from).collect();
        values.push(2.0);
        let mut censored = vec![false; 11];
        censored[10] = true;
        // Sorted: 2 (censored), 10..=19. Every quantile uses order statistic 0 or is
        // interpolated from positions that all shift if the censored value moves up.
        let b = bounds(&values, &censored);
        assert!(
            b.contains(&"min") && b.contains(&"p1") && b.contains(&"p50"),
            "{b:?}"
        );
        assert!(b.contains(&"max"), "{b:?}");
    }

    #[test]
    fn an_order_statistic_with_zero_weight_does_not_make_a_bound() {
        // 11 values: p90 is exactly order statistic 9 (h = 9.0), so a censored largest value
        // (order statistic 10) bounds max but not p90.
        let values: Vec<f64> = (0..=10).map(f64::from).collect();
        let mut censored = vec![false; 11];
        censored[10] = true;
        let b = bounds(&values, &censored);
        assert!(
            b.contains(&"max") && b.contains(&"p99") && !b.contains(&"p90"),
            "{b:?}"
        );
        assert!(
            b.contains(&"p95"),
            "p95 interpolates between 9 and 10: {b:?}"
        );
    }

    #[test]
    fn a_censored_value_tied_with_an_exact_one_leaves_it_exact() {
        // min(5, censored 5) is 5 whatever the censored trial's true value (at least 5).
        let b = bounds(&[5.0, 5.0, 9.0], &[false, true, false]);
        assert!(!b.contains(&"min"), "{b:?}");
        assert!(b.contains(&"mean") && b.contains(&"max"), "{b:?}");
        // A censored 3 below two 5s: the second order statistic is 5 either way (p50).
        let b = bounds(&[3.0, 5.0, 5.0], &[true, false, false]);
        assert!(b.contains(&"min") && !b.contains(&"p50"), "{b:?}");
        // Every trial censored: everything is a bound.
        assert_eq!(bounds(&[1.0, 2.0], &[true, true]).len(), Stat::ALL.len());
    }

    #[test]
    fn the_lower_bound_rule_matches_its_definition() {
        // A quantile is a lower bound exactly when raising the censored values changes it.
        let mut u = Uniform::new(3);
        for case in 0..3000 {
            let n = 1 + (u.next() * 25.0) as usize;
            // Few distinct values, so ties are common.
            let values: Vec<f64> = (0..n).map(|_| (u.next() * 6.0).floor()).collect();
            let censored: Vec<bool> = (0..n).map(|_| u.next() < 0.25).collect();
            let s = summarize(
                &values,
                Domain::NonNegative,
                Some(&censored),
                &mut Vec::new(),
            );
            let raised: Vec<f64> = values
                .iter()
                .zip(&censored)
                .map(|(&v, &c)| if c { v + 1e6 } else { v })
                .collect();
            let r = summarize(&raised, Domain::NonNegative, None, &mut Vec::new());
            for st in Stat::ALL.into_iter().filter(|st| st.quantile().is_some()) {
                let moved = r.get(st) != s.get(st);
                assert_eq!(
                    s.is_lower_bound(st),
                    moved,
                    "case {case} {st}: {values:?} {censored:?}"
                );
            }
        }
    }

    #[test]
    fn stat_sets() {
        let set: StatSet = [Stat::Max, Stat::Mean].into_iter().collect();
        assert_eq!(set.iter().collect::<Vec<_>>(), [Stat::Mean, Stat::Max]);
        assert!(set.contains(Stat::Max) && !set.contains(Stat::Min));
        assert!(StatSet::EMPTY.is_empty() && !set.is_empty());
    }
}
