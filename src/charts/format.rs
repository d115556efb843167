//! Numbers for people: metric names with units and display scales, value formatting, "nice"
//! axis ticks and ranges.
//!
//! Invariants: pure functions of their arguments (no locale, no clock), so labels are the same
//! on every machine; the display scale of a metric is the single place where seconds become
//! minutes and shares become percent.

/// How a metric is shown: its name, unit and the factor from report units to display units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricDisplay {
    /// Human name.
    pub name: &'static str,
    /// Display unit.
    pub unit: &'static str,
    /// Report value × `scale` = displayed value.
    pub scale: f64,
}

impl MetricDisplay {
    /// `name (unit)`, or the name alone without a unit.
    pub fn label(&self) -> String {
        if self.unit.is_empty() {
            self.name.to_string()
        } else {
            format!("{} ({})", self.name, self.unit)
        }
    }
}

const MIN: f64 = 1.0 / 60.0;

/// The display of a metric key; unknown keys are shown as they are, unscaled.
pub fn metric_display(key: &str) -> MetricDisplay {
    let (name, unit, scale): (&'static str, &'static str, f64) = match key {
        "technical_mttr_s" => ("technical MTTR", "min", MIN),
        "operational_mttr_s" => ("operational MTTR", "min", MIN),
        "restoration_gap_s" => ("restoration gap", "min", MIN),
        "availability" => ("availability", "%", 100.0),
        "blast_radius_services" => ("services hit", "%", 100.0),
        "blast_radius_requests" => ("requests failed", "%", 100.0),
        "storm_peak_ratio" => ("storm peak", "load / capacity", 1.0),
        "overload_s" => ("overload time", "min", MIN),
        "excess_work" => ("excess work", "requests", 1.0),
        "cascade_count" => ("cascade", "services", 1.0),
        "degraded_auth_accepts" => ("degraded-auth accepts", "requests", 1.0),
        "auth_rejects_post_recovery" => ("auth rejects after recovery", "requests", 1.0),
        "stale_reads" => ("stale reads", "reads", 1.0),
        "out_of_order_replays" => ("out-of-order replays", "messages", 1.0),
        "lost_work" => ("lost work", "messages", 1.0),
        "routing_failures" => ("routing failures", "requests", 1.0),
        "recovery_success_rate" => ("recovery success rate", "%", 100.0),
        "never_technically_recovered_share" => {
            ("never technically recovered", "% of trials", 100.0)
        }
        "never_operationally_restored_share" => {
            ("never operationally restored", "% of trials", 100.0)
        }
        _ => {
            return MetricDisplay {
                name: "",
                unit: "",
                scale: 1.0,
            };
        }
    };
    MetricDisplay { name, unit, scale }
}

/// The label of a metric key with its unit (the key itself when unknown).
pub fn metric_label(key: &str) -> String {
    let d = metric_display(key);
    if d.name.is_empty() {
        key.to_string()
    } else {
        d.label()
    }
}

/// A value with about three significant digits, `k`/`M` for large magnitudes, a true minus
/// sign, and `n/a` for non-finite values.
pub fn value(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let a = v.abs();
    let body = if a >= 1e6 {
        format!("{}M", trim(a / 1e6, 3))
    } else if a >= 1e4 {
        format!("{}k", trim(a / 1e3, 3))
    } else {
        trim(a, 3)
    };
    if v < 0.0 && body.chars().any(|c| c.is_ascii_digit() && c != '0') {
        format!("\u{2212}{body}")
    } else {
        body
    }
}

/// A signed value: `+` for positive, a true minus for negative.
pub fn signed(v: f64) -> String {
    let s = value(v);
    if v > 0.0 && v.is_finite() && s != "0" {
        format!("+{s}")
    } else {
        s
    }
}

/// `a` with `sig` significant digits, at most 2 decimals below 1000, trailing zeros dropped.
fn trim(a: f64, sig: i32) -> String {
    if a == 0.0 {
        return "0".into();
    }
    let mag = a.log10().floor() as i32;
    let decimals = (sig - 1 - mag).clamp(0, 2) as usize;
    let s = format!("{a:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A tick label for `v` on an axis whose ticks are `step` apart.
pub fn tick(v: f64, step: f64) -> String {
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    if v.abs() >= 1e4 {
        return value(v);
    }
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let s = format!("{:.*}", decimals.min(6), v.abs());
    if v < 0.0 { format!("\u{2212}{s}") } else { s }
}

/// The tick step for about `target` ticks over `span` (1, 2 or 5 times a power of ten).
pub fn nice_step(span: f64, target: usize) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / target.max(1) as f64;
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    let m = if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    };
    m * p
}

/// Linear ticks inside `[min, max]`, with their step.
pub fn linear_ticks(min: f64, max: f64, target: usize) -> (Vec<f64>, f64) {
    let step = nice_step(max - min, target);
    let mut out = Vec::new();
    let first = (min / step - 1e-9).ceil() as i64;
    let last = (max / step + 1e-9).floor() as i64;
    for k in first..=last.min(first + 200) {
        out.push(k as f64 * step);
    }
    (out, step)
}

/// Log ticks inside `[min, max]` (both > 0): powers of ten, plus 2 and 5 times them when
/// the range spans fewer than three decades.
pub fn log_ticks(min: f64, max: f64) -> Vec<f64> {
    let lo = min.log10().floor() as i32;
    let hi = max.log10().ceil() as i32;
    let mults: &[f64] = if hi - lo <= 3 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let mut out = Vec::new();
    for e in lo..=hi {
        for m in mults {
            let v = m * 10f64.powi(e);
            if v >= min * (1.0 - 1e-9) && v <= max * (1.0 + 1e-9) {
                out.push(v);
            }
        }
    }
    out
}

/// The largest 1, 2 or 5 times a power of ten at or below `v` (> 0): a log axis's lower end.
pub fn log_floor(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&c| c <= v * (1.0 + 1e-12))
        .unwrap_or(p)
}

/// The smallest 1, 2 or 5 times a power of ten at or above `v` (> 0): a log axis's upper end.
pub fn log_ceil(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&c| c >= v * (1.0 - 1e-12))
        .unwrap_or(10.0 * p)
}

/// A linear range around finite `values`: padded by 5% of the span, starting at 0 when the
/// data are non-negative and their minimum is small against their maximum, never empty.
pub fn auto_range(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.into_iter().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    if lo >= 0.0 && lo <= 0.3 * hi {
        lo = 0.0;
    }
    let span = hi - lo;
    if span <= 0.0 {
        let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
        return (lo - pad, hi + pad);
    }
    let pad = span * 0.05;
    let lo = if lo == 0.0 { 0.0 } else { lo - pad };
    (lo, hi + pad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_like_a_person_wrote_them() {
        assert_eq!(value(0.0), "0");
        assert_eq!(value(12.345), "12.3");
        assert_eq!(value(1.5), "1.5");
        assert_eq!(value(0.1234), "0.12");
        assert_eq!(value(123.4), "123");
        assert_eq!(value(12_345.0), "12.3k");
        assert_eq!(value(2_500_000.0), "2.5M");
        assert_eq!(value(-3.0), "\u{2212}3");
        assert_eq!(value(-0.0001), "0");
        assert_eq!(value(f64::NAN), "n/a");
        assert_eq!(signed(4.0), "+4");
        assert_eq!(signed(-4.0), "\u{2212}4");
        assert_eq!(signed(0.0), "0");
    }

    #[test]
    fn ticks_are_round_numbers_inside_the_range() {
        let (t, step) = linear_ticks(0.0, 100.0, 5);
        assert_eq!(step, 20.0);
        assert_eq!(t, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let (t, _) = linear_ticks(-7.0, 13.0, 4);
        assert_eq!(t, vec![-5.0, 0.0, 5.0, 10.0]);
        assert_eq!(tick(0.5, 0.1), "0.5");
        assert_eq!(tick(-20.0, 10.0), "\u{2212}20");
        assert_eq!(log_ticks(0.5, 20.0), vec![0.5, 1.0, 2.0, 5.0, 10.0, 20.0]);
        assert_eq!(
            log_ticks(0.01, 1000.0),
            vec![0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]
        );
        assert_eq!((log_floor(0.045), log_ceil(70.0)), (0.02, 100.0));
        assert_eq!((log_floor(0.01), log_ceil(40.0)), (0.01, 50.0));
        assert_eq!((log_floor(3.0), log_ceil(3.0)), (2.0, 5.0));
    }

    #[test]
    fn ranges_start_at_zero_for_small_minima() {
        assert_eq!(auto_range([1.0, 10.0]), (0.0, 10.5));
        let (lo, hi) = auto_range([90.0, 100.0]);
        assert!((lo - 89.5).abs() < 1e-9 && (hi - 100.5).abs() < 1e-9);
        assert_eq!(auto_range([f64::NAN]), (0.0, 1.0));
        assert_eq!(auto_range([0.0, 0.0]), (-1.0, 1.0));
    }

    #[test]
    fn metrics_have_units() {
        assert_eq!(metric_label("technical_mttr_s"), "technical MTTR (min)");
        assert_eq!(metric_display("availability").scale, 100.0);
        assert_eq!(metric_label("made_up"), "made_up");
        assert_eq!(
            metric_label("never_technically_recovered_share"),
            "never technically recovered (% of trials)"
        );
        assert_eq!(
            metric_label("never_operationally_restored_share"),
            "never operationally restored (% of trials)"
        );
        assert_eq!(metric_label("never_restored_share"), "never_restored_share");
    }
}
