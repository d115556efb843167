//! Statistics across trials: pure functions of per-trial values given in trial order.
//!
//! Invariant: every reduction is a sequential fold in trial order, so the bits of every
//! statistic are independent of thread count and shard split. Quantiles interpolate linearly
//! between order statistics (Hyndman & Fan type 7, the default of R and NumPy); confidence
//! intervals of the mean use Student's t with n - 1 degrees of freedom.

use serde::Serialize;

/// The statistics reported for each metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Arithmetic mean.
    pub mean: f64,
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
    /// Lower bound of the 95% confidence interval of the mean (null when n < 2).
    pub ci95_low: f64,
    /// Upper bound of the 95% confidence interval of the mean (null when n < 2).
    pub ci95_high: f64,
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

/// The type-7 quantile `q` of already sorted values.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
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
    let z: f64 = 1.959_963_984_540_054;
    let v = df as f64;
    let (z3, z5, z7, z9) = (z.powi(3), z.powi(5), z.powi(7), z.powi(9));
    z + (z3 + z) / (4.0 * v)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v.powi(3))
        + (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z) / (92_160.0 * v.powi(4))
}

/// Mean and 95% confidence interval of the mean.
pub fn mean_ci(values: &[f64]) -> (f64, f64, f64) {
    let (mean, var) = mean_var(values);
    if values.len() < 2 {
        return (mean, f64::NAN, f64::NAN);
    }
    let half = t975(values.len() - 1) * (var / values.len() as f64).sqrt();
    (mean, mean - half, mean + half)
}

/// Summarises values given in trial order. `scratch` is reused for sorting.
pub fn summarize(values: &[f64], scratch: &mut Vec<f64>) -> Summary {
    let (mean, lo, hi) = mean_ci(values);
    scratch.clear();
    scratch.extend_from_slice(values);
    scratch.sort_by(f64::total_cmp);
    Summary {
        mean,
        p50: quantile_sorted(scratch, 0.50),
        p90: quantile_sorted(scratch, 0.90),
        p95: quantile_sorted(scratch, 0.95),
        p99: quantile_sorted(scratch, 0.99),
        max: scratch.last().copied().unwrap_or(f64::NAN),
        ci95_low: lo,
        ci95_high: hi,
    }
}

/// A paired comparison of a plan against the baseline on one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// Mean of (plan - baseline) over trials.
    pub mean_diff: f64,
    /// Lower 95% bound of the mean difference.
    pub ci95_low: f64,
    /// Upper 95% bound of the mean difference.
    pub ci95_high: f64,
    /// Share of trials in which the plan is strictly better.
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
    let wins = scratch
        .iter()
        .filter(|&&d| if lower_is_better { d < 0.0 } else { d > 0.0 })
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

    #[test]
    fn quantiles_match_numpy_type7() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quantile_sorted(&v, 0.5), 5.5);
        assert!((quantile_sorted(&v, 0.9) - 9.1).abs() < 1e-12);
        assert_eq!(quantile_sorted(&v, 1.0), 10.0);
        assert_eq!(quantile_sorted(&v, 0.0), 1.0);
    }

    #[test]
    fn mean_and_ci() {
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let (m, var) = mean_var(&v);
        assert_eq!(m, 5.0);
        assert!((var - 32.0 / 7.0).abs() < 1e-12);
        let (_, lo, hi) = mean_ci(&v);
        let half = 2.365 * (32.0f64 / 7.0 / 8.0).sqrt();
        assert!((lo - (5.0 - half)).abs() < 1e-9 && (hi - (5.0 + half)).abs() < 1e-9);
        assert!(mean_ci(&[1.0]).1.is_nan());
    }

    #[test]
    fn t_quantile_is_continuous_past_the_table() {
        assert!((t975(31) - 2.0395).abs() < 1e-3);
        assert!((t975(120) - 1.9799).abs() < 1e-3);
        assert!((t975(1_000_000) - 1.96).abs() < 1e-3);
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
}
