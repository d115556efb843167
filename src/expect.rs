//! CI expectations: a tiny comparison language checked against a finished run.
//!
//! A scenario file lists expectations as strings. Each one compares two
//! operands, at least one of which measures something:
//!
//! ```text
//! expr     := operand OP operand
//! OP       := "<" | "<=" | ">" | ">=" | "==" | "!="
//! operand  := ref | "ci(" ref ")" | number
//! ref      := PLAN "." METRIC "." STAT  |  PLAN "." SHARE
//! PLAN     := [letters digits - _]+          (no ".", e.g. `all-at-once`)
//! METRIC   := one of the metric keys passed to `parse`
//! SHARE    := never_technically_recovered_share | never_operationally_restored_share
//! STAT     := mean | min | p1 | p5 | p10 | p50 | p90 | p95 | p99 | max
//!           | ci95_low | ci95_high
//! number   := [+-]? float unit?  |  [+-]? (float duration-unit)+
//! unit     := ms | s | m | h | d        (durations, converted to seconds)
//!           | %                         (divided by 100)
//! ```
//!
//! Whitespace is free between tokens (but a unit must follow its number
//! directly). Examples:
//!
//! ```text
//! staged.operational_mttr_s.p95 < 90m          90 minutes = 5400 seconds
//! staged.storm_peak_ratio.p99 <= 1.2
//! all-at-once.availability.mean >= 99.5%       99.5% = 0.995
//! all-at-once.availability.p5 >= 95%           the low tail of a higher-is-better metric
//! staged.cascade_count.mean < all-at-once.cascade_count.mean
//! ci(staged.technical_mttr_s.mean) < 2h        the whole 95% CI must be below 2h
//! ci(staged.lost_work.mean) < all-at-once.lost_work.mean   paired difference
//! staged.never_operationally_restored_share <= 1%          plan-level share, no statistic
//! staged.technical_mttr_s.p50 < 1h30m          compound duration = 5400 seconds
//! ```
//!
//! Rules checked by [`parse`]:
//!
//! * plan names must be among the known plans, metric keys among the known
//!   metrics (or one of the two shares); unknown names get a "did you mean"
//!   hint (edit distance at most 2) or the list of known names;
//! * a metric needs a statistic (hint: "add a statistic, e.g. `.p95`"); a share
//!   takes none;
//! * the former `never_restored_share` is refused: it was ambiguous and is
//!   split into `never_technically_recovered_share` (a failed component still
//!   down at the horizon) and `never_operationally_restored_share` (not
//!   operationally restored within the horizon), which the hint names;
//! * `ci(...)` may only wrap a ref whose statistic is `mean`;
//! * at least one side must be a ref (`1 < 2` measures nothing);
//! * a `ci(...)` compared with another ref is a paired comparison: both sides
//!   must use `.mean` of the same metric, on two different plans.
//!
//! Evaluation ([`evaluate`]) against a [`Measurements`] source:
//!
//! * a number is a constant and a ref is [`Measurements::stat`];
//! * if a number is on the left and a ref on the right, the comparison is
//!   flipped (`2h > x.y.mean` is `x.y.mean < 2h`) so that [`Outcome::measured`]
//!   is always the measured side;
//! * `ci(r) OP number`: for `<`/`<=` the upper bound `ci95_high` of `r`'s mean
//!   is compared, for `>`/`>=` the lower bound `ci95_low`, so the whole
//!   interval must satisfy the comparison; for `==`/`!=` the mean itself is
//!   compared;
//! * `ci(a) OP b` (b a ref of another plan): the paired difference `a - b`
//!   across trials ([`Measurements::paired`]) decides: `<` passes if its
//!   `ci95_high < 0`, `<=` if `ci95_high <= 0`, `>` if `ci95_low > 0`, `>=` if
//!   `ci95_low >= 0`, and `==`/`!=` compare the mean difference with 0;
//!   `measured` is a's mean, `threshold` b's mean and `margin` the distance of
//!   the deciding bound from 0 (positive when passed). `a OP ci(b)` is read as
//!   `ci(b) OP' a` with the flipped operator;
//! * every comparison treats a difference within a relative 1e-9 (at least 1e-9 absolute)
//!   as float noise: `==` holds and `!=` fails within it, `<` and `>` need more than it,
//!   `<=` and `>=` accept it;
//! * a NaN value (measured, threshold or interval bound) never passes: a run
//!   that failed must never pass silently.
//!
//! Censored values ([`Bound`]): a statistic that includes trials not recovered
//! within the horizon is only a lower bound of its true value. A comparison
//! passes only when it holds for every true value the bounds allow, fails
//! when it holds for none, and is *undecided* otherwise, which does not pass
//! either ([`Outcome::decided`] is false). With a lower bound of 8h,
//! `x.operational_mttr_s.p95 < 2h` fails (the true value is even larger),
//! `x.operational_mttr_s.p95 > 1h` passes, and `x.operational_mttr_s.p95 < 10h`
//! is undecided. A paired difference `a - b` is a lower bound when only a's
//! values are, an upper bound when only b's are, and unknown when both are;
//! `==` can only be decided between exact values. The margin is still the
//! distance computed from the values as measured.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::fmt;

use crate::metrics::Censor;
pub use crate::stats::Stat;

/// The former plan-level field, refused since it was split in two (see the module docs).
pub const RETIRED_NEVER_RESTORED_SHARE: &str = "never_restored_share";

/// Whether `metric` names a plan-level share (written without a statistic):
/// `never_technically_recovered_share` or `never_operationally_restored_share`.
pub fn is_plan_share(metric: &str) -> bool {
    Censor::from_share_key(metric).is_some()
}

/// The simulator's metric keys as of writing; callers should pass their own
/// list to [`parse`], this is a convenient default (used by the tests).
pub const DEFAULT_METRICS: &[&str] = &[
    "technical_mttr_s",
    "operational_mttr_s",
    "restoration_gap_s",
    "availability",
    "blast_radius_services",
    "blast_radius_requests",
    "storm_peak_ratio",
    "overload_s",
    "excess_work",
    "cascade_count",
    "degraded_auth_accepts",
    "auth_rejects_post_recovery",
    "stale_reads",
    "out_of_order_replays",
    "lost_work",
    "recovery_success_rate",
];

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==` (with a relative tolerance of 1e-9)
    Eq,
    /// `!=` (with a relative tolerance of 1e-9)
    Ne,
}

impl Op {
    /// The operator's source text, e.g. `"<="`.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// The operator with its sides swapped: `a < b` is `b > a`.
    pub fn flip(self) -> Op {
        match self {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            Op::Eq => Op::Eq,
            Op::Ne => Op::Ne,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// A reference to a measured value: `PLAN.METRIC.STAT`, or a plan-level share
/// (`PLAN.never_operationally_restored_share`) with `stat` `None`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ref {
    /// The plan name, e.g. `all-at-once`.
    pub plan: String,
    /// The metric key, e.g. `operational_mttr_s`, or a plan-level share.
    pub metric: String,
    /// The statistic; `None` only for a plan-level share.
    pub stat: Option<Stat>,
}

impl Ref {
    /// The same plan and metric with another statistic.
    pub fn with_stat(&self, stat: Stat) -> Ref {
        Ref {
            plan: self.plan.clone(),
            metric: self.metric.clone(),
            stat: Some(stat),
        }
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.plan, self.metric)?;
        if let Some(s) = self.stat {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A measured value, e.g. `staged.availability.mean`.
    Ref(Ref),
    /// A confidence-aware mean, e.g. `ci(staged.technical_mttr_s.mean)`.
    Ci(Ref),
    /// A constant, already converted to base units (seconds, fractions).
    Number(f64),
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Ref(r) => write!(f, "{r}"),
            Operand::Ci(r) => write!(f, "ci({r})"),
            Operand::Number(n) => write!(f, "{n}"),
        }
    }
}

/// A parsed expectation. Its `Display` is the canonical text
/// (`LHS OP RHS`, numbers in base units), which parses back to the same value.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// The text as the user wrote it.
    pub text: String,
    /// The left side.
    pub lhs: Operand,
    /// The operator.
    pub op: Op,
    /// The right side.
    pub rhs: Operand,
}

impl Expectation {
    /// The comparison with the measured side on the left: `2h > x.y.mean` reads as
    /// `x.y.mean < 2h`.
    pub fn measured_first(&self) -> (&Operand, Op, &Operand) {
        match (&self.lhs, &self.rhs) {
            (Operand::Number(_), Operand::Ref(_) | Operand::Ci(_)) => {
                (&self.rhs, self.op.flip(), &self.lhs)
            }
            _ => (&self.lhs, self.op, &self.rhs),
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.lhs, self.op, self.rhs)
    }
}

/// A problem found while parsing an expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// Offset, in chars (not bytes), into the expression string.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when known.
    pub hint: Option<String>,
}

impl ExprError {
    fn new(offset: usize, message: impl Into<String>, hint: Option<String>) -> Self {
        ExprError {
            offset,
            message: message.into(),
            hint,
        }
    }

    /// A multi-line report: the message, the expression with a caret under
    /// the offending char, and the hint if any.
    pub fn render(&self, text: &str) -> String {
        let mut out = format!("error: {}\n  {}\n  ", self.message, text);
        out.extend(text.chars().take(self.offset).map(|c| match c {
            '\t' => '\t',
            _ => ' ',
        }));
        out.push('^');
        if let Some(h) = &self.hint {
            out.push_str("\n  hint: ");
            out.push_str(h);
        }
        out
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at char {}: {}", self.offset, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ExprError {}

/// Parses `text` and checks its names: plan names must be in `plans`, metric
/// keys in `metrics` (or a plan-level share), with "did you mean" hints
/// (edit distance <= 2) or the list of known names. Returns every error it
/// can find (always at least the first), sorted by offset. Never panics.
pub fn parse(text: &str, plans: &[&str], metrics: &[&str]) -> Result<Expectation, Vec<ExprError>> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
        plans,
        metrics,
        errors: Vec::new(),
    };
    let parsed = p.expectation();
    let mut errors = p.errors;
    match parsed {
        Some((lhs, op, rhs)) if errors.is_empty() => Ok(Expectation {
            text: text.to_string(),
            lhs,
            op,
            rhs,
        }),
        _ => {
            if errors.is_empty() {
                errors.push(ExprError::new(0, "invalid expectation", None));
            }
            errors.sort_by_key(|e| e.offset);
            Err(errors)
        }
    }
}

/// What a measured value says about the true value it estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The value is the true value.
    Exact,
    /// The true value is at least the value (censored trials enter it).
    Lower,
    /// The true value is at most the value.
    Upper,
    /// The value says nothing certain about the true value.
    Unknown,
}

impl Bound {
    /// The true values the bound allows for a measured `v`, as `(low, high)`.
    fn range(self, v: f64) -> (f64, f64) {
        match self {
            Bound::Exact => (v, v),
            Bound::Lower => (v, f64::INFINITY),
            Bound::Upper => (f64::NEG_INFINITY, v),
            Bound::Unknown => (f64::NEG_INFINITY, f64::INFINITY),
        }
    }

    /// The bound of `a - b` for values bounded by `self` and `b`.
    pub fn minus(self, b: Bound) -> Bound {
        let (a_lo, a_hi) = self.range(0.0);
        let (b_lo, b_hi) = b.range(0.0);
        match ((a_lo - b_hi).is_finite(), (a_hi - b_lo).is_finite()) {
            (true, true) => Bound::Exact,
            (true, false) => Bound::Lower,
            (false, true) => Bound::Upper,
            (false, false) => Bound::Unknown,
        }
    }
}

/// A measured value and what it says about the true value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value {
    /// The value as measured.
    pub value: f64,
    /// How it relates to the true value.
    pub bound: Bound,
}

impl Value {
    /// An exact value.
    pub fn exact(value: f64) -> Value {
        Value {
            value,
            bound: Bound::Exact,
        }
    }
}

/// What evaluation needs from a finished run.
pub trait Measurements {
    /// The statistic of a plan's metric (or a plan-level share when stat is
    /// None), with its bound. None if unknown.
    fn stat(&self, r: &Ref) -> Option<Value>;
    /// Paired difference `a - b` of two plans' metric across trials:
    /// (mean, ci95_low, ci95_high). None if unknown.
    fn paired(&self, a: &Ref, b: &Ref) -> Option<(f64, f64, f64)>;
}

/// The result of evaluating one expectation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The measured side's value used (after flipping a `number OP ref`
    /// comparison; a CI bound for `ci(..) OP number`; a's mean for paired).
    pub measured: f64,
    /// How `measured` relates to its true value.
    pub measured_bound: Bound,
    /// The other side's value used (b's mean for a paired comparison).
    pub threshold: f64,
    /// How `threshold` relates to its true value (exact for a number).
    pub threshold_bound: Bound,
    /// How far from failing, positive when the values as measured satisfy the
    /// comparison, in the units of the values: e.g. `threshold - measured`
    /// for `<`, `measured - threshold` for `>`, `-|measured - threshold|` for
    /// `==`, `|measured - threshold|` for `!=`; for a paired comparison the
    /// deciding bound's distance from 0.
    pub margin: f64,
    /// Whether the bounds decide the comparison: false when it holds for
    /// some true values they allow and not for others (then it does not pass).
    pub decided: bool,
    /// Whether the expectation holds for every true value. Always false if a
    /// value used is NaN.
    pub passed: bool,
}

/// Evaluates an expectation against a run's measurements; see the module
/// docs for the rules. Errors when a value is missing or the expectation is
/// malformed (e.g. built by hand with two numbers). Never panics.
pub fn evaluate(e: &Expectation, m: &dyn Measurements) -> Result<Outcome, String> {
    let (lhs, op, rhs) = e.measured_first();
    match (lhs, rhs) {
        (Operand::Number(_), _) => Err(format!(
            "`{e}` measures nothing: at least one side must be a metric reference"
        )),
        (Operand::Ref(a), Operand::Number(t)) => Ok(compare(op, lookup(m, a)?, Value::exact(*t))),
        (Operand::Ref(a), Operand::Ref(b)) => Ok(compare(op, lookup(m, a)?, lookup(m, b)?)),
        (Operand::Ref(a), Operand::Ci(b)) => paired(m, b, op.flip(), a),
        (Operand::Ci(a), Operand::Ref(b) | Operand::Ci(b)) => paired(m, a, op, b),
        (Operand::Ci(a), Operand::Number(t)) => {
            require_mean(a)?;
            let bound = match op {
                Op::Lt | Op::Le => a.with_stat(Stat::Ci95High),
                Op::Gt | Op::Ge => a.with_stat(Stat::Ci95Low),
                Op::Eq | Op::Ne => a.with_stat(Stat::Mean),
            };
            Ok(compare(op, lookup(m, &bound)?, Value::exact(*t)))
        }
    }
}

fn lookup(m: &dyn Measurements, r: &Ref) -> Result<Value, String> {
    m.stat(r)
        .ok_or_else(|| format!("no value for `{r}` in this run"))
}

fn require_mean(r: &Ref) -> Result<(), String> {
    if r.stat == Some(Stat::Mean) {
        Ok(())
    } else {
        Err(format!("ci() applies to a mean, not `{r}`"))
    }
}

fn tolerance(a: f64, b: f64) -> f64 {
    1e-9 * 1f64.max(a.abs()).max(b.abs())
}

/// Whether `a OP b` holds for every pair of true values the bounds allow
/// (`Some(true)`), for none (`Some(false)`), or for some only (`None`).
/// `==` and `!=` allow a difference of `tol`.
pub fn decide(op: Op, a: Value, b: Value, tol: f64) -> Option<bool> {
    let (a_lo, a_hi) = a.bound.range(a.value);
    let (b_lo, b_hi) = b.bound.range(b.value);
    let exact = a.bound == Bound::Exact && b.bound == Bound::Exact;
    let apart = a_lo > b_hi + tol || b_lo > a_hi + tol;
    let (always, never) = match op {
        // Differences within float noise (`tol`) are no differences: `<` needs more, `<=`
        // accepts them.
        Op::Lt => (a_hi < b_lo - tol, a_lo >= b_hi - tol),
        Op::Le => (a_hi <= b_lo + tol, a_lo > b_hi + tol),
        Op::Gt => (a_lo > b_hi + tol, a_hi <= b_lo + tol),
        Op::Ge => (a_lo >= b_hi - tol, a_hi < b_lo - tol),
        Op::Eq => {
            let close = (a.value - b.value).abs() <= tol;
            (exact && close, apart || (exact && !close))
        }
        Op::Ne => {
            let close = (a.value - b.value).abs() <= tol;
            (apart || (exact && !close), exact && close)
        }
    };
    match (always, never) {
        (true, _) => Some(true),
        (false, true) => Some(false),
        (false, false) => None,
    }
}

/// The outcome of `a OP b` decided on `(x, y)` (the values that decide, e.g. a
/// paired bound and 0), reported with `measured` and `threshold`.
fn outcome(op: Op, measured: Value, threshold: Value, x: Value, y: Value, tol: f64) -> Outcome {
    let diff = x.value - y.value;
    let margin = match op {
        Op::Lt | Op::Le => -diff,
        Op::Gt | Op::Ge => diff,
        Op::Eq => -diff.abs(),
        Op::Ne => diff.abs(),
    };
    let nan = [measured.value, threshold.value, x.value, y.value]
        .iter()
        .any(|v| v.is_nan());
    let verdict = if nan {
        Some(false)
    } else {
        decide(op, x, y, tol)
    };
    Outcome {
        measured: measured.value,
        measured_bound: measured.bound,
        threshold: threshold.value,
        threshold_bound: threshold.bound,
        margin,
        decided: verdict.is_some(),
        passed: verdict == Some(true),
    }
}

fn compare(op: Op, measured: Value, threshold: Value) -> Outcome {
    let tol = tolerance(measured.value, threshold.value);
    outcome(op, measured, threshold, measured, threshold, tol)
}

fn paired(m: &dyn Measurements, a: &Ref, op: Op, b: &Ref) -> Result<Outcome, String> {
    require_mean(a)?;
    if b.stat != Some(Stat::Mean) {
        return Err(format!(
            "a ci() comparison between plans needs `.mean` on both sides, not `{b}`"
        ));
    }
    let measured = lookup(m, a)?;
    let threshold = lookup(m, b)?;
    let (mean, low, high) = m
        .paired(a, b)
        .ok_or_else(|| format!("no paired difference for `{a}` - `{b}` in this run"))?;
    let tol = tolerance(measured.value, threshold.value);
    let deciding = match op {
        Op::Lt | Op::Le => high,
        Op::Gt | Op::Ge => low,
        Op::Eq | Op::Ne => mean,
    };
    let diff = Value {
        value: deciding,
        bound: measured.bound.minus(threshold.bound),
    };
    Ok(outcome(
        op,
        measured,
        threshold,
        diff,
        Value::exact(0.0),
        tol,
    ))
}

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------

/// Where the parts of a parsed ref start, for later error offsets.
#[derive(Debug, Clone, Copy)]
struct RefSpans {
    metric: usize,
    stat: Option<usize>,
}

/// A parsed operand and where its parts are.
struct Parsed {
    operand: Operand,
    start: usize,
    spans: Option<RefSpans>,
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    plans: &'a [&'a str],
    metrics: &'a [&'a str],
    errors: Vec<ExprError>,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '%' | '+')
}

fn text_of(chars: &[char]) -> String {
    chars.iter().collect()
}

const OPERATOR_HINT: &str = "use one of <, <=, >, >=, ==, !=";
const REF_HINT: &str = "write PLAN.METRIC.STAT, e.g. `staged.operational_mttr_s.p95`";
const UNIT_HINT: &str = "units: ms, s, m, h, d (durations, in seconds) or %";

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Records a syntax error; parsing stops.
    fn fail<T>(
        &mut self,
        offset: usize,
        message: impl Into<String>,
        hint: Option<&str>,
    ) -> Option<T> {
        self.errors
            .push(ExprError::new(offset, message, hint.map(str::to_string)));
        None
    }

    fn word(&mut self) -> Vec<char> {
        let start = self.pos;
        while self.peek().is_some_and(is_word_char) {
            self.pos += 1;
        }
        self.chars.get(start..self.pos).unwrap_or_default().to_vec()
    }

    fn expectation(&mut self) -> Option<(Operand, Op, Operand)> {
        self.skip_ws();
        if self.peek().is_none() {
            return self.fail(0, "empty expectation", Some(REF_HINT));
        }
        let lhs = self.operand()?;
        let op = self.operator()?;
        let rhs = self.operand()?;
        self.skip_ws();
        if let Some(c) = self.peek() {
            let rest = text_of(self.chars.get(self.pos..).unwrap_or_default());
            let hint = if c.is_alphabetic() && matches!(rhs.operand, Operand::Number(_)) {
                "a unit must follow its number directly, e.g. `90m`"
            } else {
                "an expectation is `LEFT OP RIGHT`; remove the extra text"
            };
            return self.fail(
                self.pos,
                format!("unexpected trailing input `{rest}`"),
                Some(hint),
            );
        }
        if self.errors.is_empty() {
            self.check_sides(&lhs, &rhs);
        }
        Some((lhs.operand, op, rhs.operand))
    }

    /// Checks that need both sides: something is measured, and paired ci
    /// comparisons are well-formed.
    fn check_sides(&mut self, lhs: &Parsed, rhs: &Parsed) {
        let (ci, other) = match (&lhs.operand, &rhs.operand) {
            (Operand::Number(_), Operand::Number(_)) => {
                self.errors.push(ExprError::new(
                    lhs.start,
                    "nothing measured: both sides are numbers",
                    Some(
                        "compare a metric with a number, e.g. `staged.availability.mean >= 99.5%`"
                            .into(),
                    ),
                ));
                return;
            }
            (Operand::Ci(a), Operand::Ref(b) | Operand::Ci(b)) => ((a, lhs), (b, rhs)),
            (Operand::Ref(a), Operand::Ci(b)) => ((b, rhs), (a, lhs)),
            _ => return,
        };
        let ((a, _), (b, bp)) = (ci, other);
        let Some(bs) = bp.spans else { return };
        if b.stat != Some(Stat::Mean) {
            self.errors.push(ExprError::new(
                bs.stat.unwrap_or(bs.metric),
                "a ci() comparison between plans needs `.mean` on both sides",
                Some(format!("use `{}.{}.mean`", b.plan, b.metric)),
            ));
        }
        if a.metric != b.metric {
            self.errors.push(ExprError::new(
                bs.metric,
                format!(
                    "a ci() comparison between plans needs the same metric on both sides, not `{}` and `{}`",
                    a.metric, b.metric
                ),
                Some(format!("use `{}`", a.metric)),
            ));
        }
        if a.plan == b.plan {
            self.errors.push(ExprError::new(
                bp.start,
                format!("plan `{}` is compared with itself", a.plan),
                Some("a paired ci() comparison needs two different plans".into()),
            ));
        }
    }

    fn operator(&mut self) -> Option<Op> {
        self.skip_ws();
        let at = self.pos;
        let next = self.chars.get(at + 1).copied();
        let (op, len) = match (self.peek(), next) {
            (Some('<'), Some('=')) => (Op::Le, 2),
            (Some('<'), _) => (Op::Lt, 1),
            (Some('>'), Some('=')) => (Op::Ge, 2),
            (Some('>'), _) => (Op::Gt, 1),
            (Some('='), Some('=')) => (Op::Eq, 2),
            (Some('!'), Some('=')) => (Op::Ne, 2),
            (Some('='), _) => {
                // Recoverable: report, then read it as `==`.
                self.errors.push(ExprError::new(
                    at,
                    "`=` is not a comparison operator",
                    Some("use `==` to compare for equality".into()),
                ));
                (Op::Eq, 1)
            }
            (None, _) => return self.fail(at, "missing comparison operator", Some(OPERATOR_HINT)),
            (Some(c), _) => {
                return self.fail(
                    at,
                    format!("expected a comparison operator, found `{c}`"),
                    Some(OPERATOR_HINT),
                );
            }
        };
        self.pos += len;
        Some(op)
    }

    fn operand(&mut self) -> Option<Parsed> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            None => {
                return self.fail(
                    start,
                    "expected a metric reference or a number",
                    Some(REF_HINT),
                );
            }
            Some(c) if !is_word_char(c) => {
                return self.fail(
                    start,
                    format!("expected a metric reference or a number, found `{c}`"),
                    Some(REF_HINT),
                );
            }
            Some(_) => {}
        }
        let word = self.word();
        if word == ['c', 'i'] {
            let save = self.pos;
            self.skip_ws();
            if self.peek() == Some('(') {
                self.pos += 1;
                return self.ci_operand(start);
            }
            self.pos = save;
        }
        if starts_numeric(&word) {
            match parse_number(&word, start) {
                Ok(n) => {
                    return Some(Parsed {
                        operand: Operand::Number(n),
                        start,
                        spans: None,
                    });
                }
                Err(e) if !looks_like_ref(&word) => {
                    self.errors.push(e);
                    return None;
                }
                Err(_) => {}
            }
        }
        let (r, spans) = self.reference(&word, start, false)?;
        Some(Parsed {
            operand: Operand::Ref(r),
            start,
            spans: Some(spans),
        })
    }

    /// After `ci(`.
    fn ci_operand(&mut self, start: usize) -> Option<Parsed> {
        self.skip_ws();
        let inner = self.pos;
        if !self.peek().is_some_and(is_word_char) {
            return self.fail(
                inner,
                "expected a metric reference inside ci()",
                Some("e.g. `ci(staged.technical_mttr_s.mean)`"),
            );
        }
        let word = self.word();
        if starts_numeric(&word) && (parse_number(&word, inner).is_ok() || !looks_like_ref(&word)) {
            return self.fail(
                inner,
                "ci() wraps a metric reference, not a number",
                Some("e.g. `ci(staged.technical_mttr_s.mean) < 2h`"),
            );
        }
        let parsed = self.reference(&word, inner, true);
        self.skip_ws();
        if self.peek() != Some(')') {
            return self.fail(self.pos, "expected `)` to close `ci(`", None);
        }
        self.pos += 1;
        let (r, spans) = parsed?;
        let stat_ok = match r.stat {
            Some(Stat::Mean) => true,
            // An unknown statistic was already reported.
            None => spans.stat.is_some(),
            Some(_) => false,
        };
        if !stat_ok {
            self.errors.push(ExprError::new(
                spans.stat.unwrap_or(spans.metric),
                "ci() applies to a mean",
                Some(format!("use `ci({}.{}.mean)`", r.plan, r.metric)),
            ));
        }
        Some(Parsed {
            operand: Operand::Ci(r),
            start,
            spans: Some(spans),
        })
    }

    /// Splits `PLAN.METRIC.STAT` and checks the names. Name errors are
    /// recorded and parsing goes on; shape errors stop it.
    fn reference(&mut self, word: &[char], start: usize, in_ci: bool) -> Option<(Ref, RefSpans)> {
        let mut parts: Vec<(usize, String)> = Vec::new();
        let mut seg_start = 0;
        for (i, c) in word.iter().enumerate() {
            if *c == '.' {
                parts.push((
                    start + seg_start,
                    text_of(word.get(seg_start..i).unwrap_or_default()),
                ));
                seg_start = i + 1;
            }
        }
        parts.push((
            start + seg_start,
            text_of(word.get(seg_start..).unwrap_or_default()),
        ));
        if let Some((at, _)) = parts.get(3) {
            return self.fail(
                at.saturating_sub(1),
                "too many `.`-separated parts",
                Some(REF_HINT),
            );
        }
        let what = ["a plan name", "a metric name", "a statistic"];
        for (k, (at, s)) in parts.iter().enumerate() {
            if s.is_empty() {
                let w = what.get(k).copied().unwrap_or("a name");
                return self.fail(*at, format!("expected {w}"), Some(REF_HINT));
            }
        }
        let end = start + word.len();
        let (plan_at, plan) = parts.first().cloned().unwrap_or((start, String::new()));
        if !self.plans.contains(&plan.as_str()) {
            let hint = suggest(&plan, self.plans.iter().copied(), "plans");
            self.errors.push(ExprError::new(
                plan_at,
                format!("unknown plan `{plan}`"),
                Some(hint),
            ));
        }
        let Some((metric_at, metric)) = parts.get(1).cloned() else {
            self.errors.push(ExprError::new(
                end,
                format!("expected `.METRIC` after plan `{plan}`"),
                Some(REF_HINT.into()),
            ));
            let spans = RefSpans {
                metric: end,
                stat: None,
            };
            let r = Ref {
                plan,
                metric: String::new(),
                stat: None,
            };
            return Some((r, spans));
        };
        let stat_part = parts.get(2).cloned();
        let mut stat = None;
        if let Some((stat_at, name)) = &stat_part {
            stat = Stat::from_name(name);
            if stat.is_none() {
                let hint = suggest(name, Stat::ALL.iter().map(|s| s.name()), "statistics");
                self.errors.push(ExprError::new(
                    *stat_at,
                    format!("unknown statistic `{name}`"),
                    Some(hint),
                ));
            }
        }
        if is_plan_share(&metric) {
            if let Some((stat_at, name)) = &stat_part {
                self.errors.push(ExprError::new(
                    *stat_at,
                    format!("`{metric}` is a plan-level share and takes no statistic"),
                    Some(format!("remove `.{name}`")),
                ));
            }
        } else if metric == RETIRED_NEVER_RESTORED_SHARE {
            self.errors.push(ExprError::new(
                metric_at,
                format!(
                    "`{RETIRED_NEVER_RESTORED_SHARE}` was ambiguous and has been split in two"
                ),
                Some(format!(
                    "use `{}` (a failed component was still down at the horizon) or `{}` (not operationally restored within the horizon)",
                    Censor::Technical.share_key(),
                    Censor::Operational.share_key()
                )),
            ));
        } else if !self.metrics.contains(&metric.as_str()) {
            let known = self
                .metrics
                .iter()
                .copied()
                .chain(Censor::ALL.iter().map(|c| c.share_key()));
            let hint = suggest(&metric, known, "metrics");
            self.errors.push(ExprError::new(
                metric_at,
                format!("unknown metric `{metric}`"),
                Some(hint),
            ));
        } else if stat_part.is_none() && !in_ci {
            self.errors.push(ExprError::new(
                metric_at,
                format!("metric `{metric}` needs a statistic"),
                Some("add a statistic, e.g. `.p95`".into()),
            ));
        }
        let spans = RefSpans {
            metric: metric_at,
            stat: stat_part.map(|(at, _)| at),
        };
        Some((Ref { plan, metric, stat }, spans))
    }
}

fn starts_numeric(word: &[char]) -> bool {
    word.first()
        .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | '+' | '-'))
}

/// `x.y` where `y` starts like a name: a ref, not a number.
fn looks_like_ref(word: &[char]) -> bool {
    word.windows(2).any(|w| match w {
        ['.', c] => c.is_alphabetic() || *c == '_',
        _ => false,
    })
}

fn unit_factor(unit: &str) -> Option<f64> {
    match unit {
        "ms" => Some(0.001),
        "s" => Some(1.0),
        "m" => Some(60.0),
        "h" => Some(3600.0),
        "d" => Some(86400.0),
        _ => None,
    }
}

/// Parses `[+-]? float unit?` or a compound duration like `1h30m`; `start`
/// is the char offset of `word` in the expression.
fn parse_number(word: &[char], start: usize) -> Result<f64, ExprError> {
    let digit_at = |i: usize| word.get(i).is_some_and(char::is_ascii_digit);
    let mut i = 0;
    let sign = match word.first() {
        Some('-') => {
            i = 1;
            -1.0
        }
        Some('+') => {
            i = 1;
            1.0
        }
        _ => 1.0,
    };
    let mut total = 0.0;
    let mut components = 0;
    loop {
        let lit_start = i;
        let mut digits = 0;
        while digit_at(i) {
            i += 1;
            digits += 1;
        }
        if word.get(i) == Some(&'.') {
            i += 1;
            while digit_at(i) {
                i += 1;
                digits += 1;
            }
        }
        if digits == 0 {
            return Err(ExprError::new(
                start + lit_start,
                "expected a number",
                Some("e.g. `1.2`, `90m`, `99.5%`".into()),
            ));
        }
        if matches!(word.get(i), Some('e' | 'E')) {
            let mut j = i + 1;
            if matches!(word.get(j), Some('+' | '-')) {
                j += 1;
            }
            let exp_digits = j;
            while digit_at(j) {
                j += 1;
            }
            if j > exp_digits {
                i = j;
            }
        }
        let lit = text_of(word.get(lit_start..i).unwrap_or_default());
        let value: f64 = lit.parse().map_err(|_| {
            ExprError::new(start + lit_start, format!("invalid number `{lit}`"), None)
        })?;
        let unit_start = i;
        while word.get(i).is_some_and(|c| c.is_alphabetic() || *c == '%') {
            i += 1;
        }
        let unit = text_of(word.get(unit_start..i).unwrap_or_default());
        components += 1;
        let at_end = i >= word.len();
        match unit.as_str() {
            "" if components > 1 => {
                return Err(ExprError::new(
                    start + lit_start,
                    format!("missing unit after `{lit}`"),
                    Some("every part of a compound duration needs a unit, e.g. `1h30m`".into()),
                ));
            }
            "" | "%" => {
                if !at_end {
                    let c = word.get(i).copied().unwrap_or(' ');
                    return Err(ExprError::new(
                        start + i,
                        format!("unexpected `{c}` in number"),
                        Some(UNIT_HINT.into()),
                    ));
                }
                if unit == "%" && components > 1 {
                    return Err(ExprError::new(
                        start + unit_start,
                        "a percentage cannot be combined with a duration",
                        Some(UNIT_HINT.into()),
                    ));
                }
                total = if unit == "%" { value / 100.0 } else { value };
                break;
            }
            u => match unit_factor(u) {
                Some(f) => {
                    total += value * f;
                    if at_end {
                        break;
                    }
                }
                None => {
                    return Err(ExprError::new(
                        start + unit_start,
                        format!("unknown unit `{u}`"),
                        Some(UNIT_HINT.into()),
                    ));
                }
            },
        }
    }
    let v = sign * total;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(ExprError::new(start, "number out of range", None))
    }
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        if let Some(first) = cur.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            if let Some(slot) = cur.get_mut(j + 1) {
                *slot = sub.min(del).min(ins);
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(0)
}

/// "did you mean `x`?" for the closest name within distance 2, else the list
/// of known names.
fn suggest<'n>(name: &str, known: impl Iterator<Item = &'n str> + Clone, kind: &str) -> String {
    let best = known
        .clone()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, k)) => format!("did you mean `{k}`?"),
        None => {
            let list: Vec<String> = known.map(|k| format!("`{k}`")).collect();
            if list.is_empty() {
                format!("no {kind} are defined")
            } else {
                format!("known {kind}: {}", list.join(", "))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const PLANS: &[&str] = &["staged", "all-at-once", "canary_2"];

    fn ok(text: &str) -> Expectation {
        match parse(text, PLANS, DEFAULT_METRICS) {
            Ok(e) => e,
            Err(errs) => panic!("`{text}` failed: {errs:?}"),
        }
    }

    fn errs(text: &str) -> Vec<ExprError> {
        match parse(text, PLANS, DEFAULT_METRICS) {
            Ok(e) => panic!("`{text}` parsed as {e:?}"),
            Err(errs) => errs,
        }
    }

    /// Char offset of `needle` in `text`.
    fn at(text: &str, needle: &str) -> usize {
        text[..text.find(needle).unwrap()].chars().count()
    }

    fn r(plan: &str, metric: &str, stat: Option<Stat>) -> Ref {
        Ref {
            plan: plan.into(),
            metric: metric.into(),
            stat,
        }
    }

    // ---- parsing: the examples ------------------------------------------

    #[test]
    fn parses_examples() {
        let e = ok("staged.operational_mttr_s.p95 < 90m");
        assert_eq!(
            e.lhs,
            Operand::Ref(r("staged", "operational_mttr_s", Some(Stat::P95)))
        );
        assert_eq!(e.op, Op::Lt);
        assert_eq!(e.rhs, Operand::Number(5400.0));

        let e = ok("staged.storm_peak_ratio.p99 <= 1.2");
        assert_eq!(e.op, Op::Le);
        assert_eq!(e.rhs, Operand::Number(1.2));

        let e = ok("all-at-once.availability.mean >= 99.5%");
        assert_eq!(
            e.lhs,
            Operand::Ref(r("all-at-once", "availability", Some(Stat::Mean)))
        );
        assert_eq!(e.op, Op::Ge);
        assert_eq!(e.rhs, Operand::Number(0.995));

        let e = ok("staged.cascade_count.mean < all-at-once.cascade_count.mean");
        assert_eq!(
            e.rhs,
            Operand::Ref(r("all-at-once", "cascade_count", Some(Stat::Mean)))
        );

        let e = ok("ci(staged.technical_mttr_s.mean) < 2h");
        assert_eq!(
            e.lhs,
            Operand::Ci(r("staged", "technical_mttr_s", Some(Stat::Mean)))
        );
        assert_eq!(e.rhs, Operand::Number(7200.0));

        let e = ok("staged.never_operationally_restored_share <= 1%");
        assert_eq!(
            e.lhs,
            Operand::Ref(r("staged", "never_operationally_restored_share", None))
        );
        assert_eq!(e.rhs, Operand::Number(0.01));
        let e = ok("staged.never_technically_recovered_share == 0");
        assert_eq!(
            e.lhs,
            Operand::Ref(r("staged", "never_technically_recovered_share", None))
        );

        let e = ok("all-at-once.availability.p5 >= 95%");
        assert_eq!(
            e.lhs,
            Operand::Ref(r("all-at-once", "availability", Some(Stat::P5)))
        );
        for stat in ["min", "p1", "p5", "p10"] {
            let e = ok(&format!("staged.availability.{stat} > 0.5"));
            assert_eq!(
                e.lhs,
                Operand::Ref(r("staged", "availability", Stat::from_name(stat)))
            );
        }
    }

    #[test]
    fn operators_and_whitespace() {
        for (s, op) in [
            ("<", Op::Lt),
            ("<=", Op::Le),
            (">", Op::Gt),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
        ] {
            assert_eq!(ok(&format!("staged.lost_work.max{s}3")).op, op);
            assert_eq!(ok(&format!("  staged.lost_work.max \t{s}  3  ")).op, op);
        }
        let e = ok("ci ( staged.technical_mttr_s.mean ) > 1");
        assert!(matches!(e.lhs, Operand::Ci(_)));
        assert_eq!(e.text, "ci ( staged.technical_mttr_s.mean ) > 1");
    }

    #[test]
    fn units() {
        let num = |s: &str| match ok(&format!("staged.overload_s.p50 < {s}")).rhs {
            Operand::Number(n) => n,
            other => panic!("{other:?}"),
        };
        assert_eq!(num("90m"), 5400.0);
        assert_eq!(num("99.5%"), 0.995);
        assert_eq!(num("1h30m"), 5400.0);
        assert_eq!(num("250ms"), 0.25);
        assert_eq!(num("2d"), 172800.0);
        assert_eq!(num("45s"), 45.0);
        assert_eq!(num("1.5h"), 5400.0);
        assert_eq!(num("-3"), -3.0);
        assert_eq!(num(".5"), 0.5);
        assert_eq!(num("1e3"), 1000.0);
        assert_eq!(num("1d2h3m4s5ms"), 86400.0 + 7200.0 + 180.0 + 4.0 + 0.005);
    }

    #[test]
    fn number_on_left_and_ci_on_right_parse() {
        let e = ok("2h > staged.technical_mttr_s.p95");
        assert_eq!(e.lhs, Operand::Number(7200.0));
        let e = ok("all-at-once.lost_work.mean > ci(staged.lost_work.mean)");
        assert!(matches!(e.rhs, Operand::Ci(_)));
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        for text in [
            "staged.operational_mttr_s.p95 < 90m",
            "  all-at-once.availability.mean>=99.5%",
            "ci( staged.technical_mttr_s.mean )<2h",
            "staged.never_technically_recovered_share <= 0.01",
            "staged.availability.min >= 0.5",
            "staged.cascade_count.mean != all-at-once.cascade_count.ci95_high",
            "1h30m >= canary_2.restoration_gap_s.ci95_low",
        ] {
            let e = ok(text);
            let canon = e.to_string();
            let again = ok(&canon);
            assert_eq!((&again.lhs, again.op, &again.rhs), (&e.lhs, e.op, &e.rhs));
            assert_eq!(again.to_string(), canon);
        }
        assert_eq!(
            ok("ci( staged.technical_mttr_s.mean )<2h").to_string(),
            "ci(staged.technical_mttr_s.mean) < 7200"
        );
        assert_eq!(
            ok("staged.never_operationally_restored_share<=1%").to_string(),
            "staged.never_operationally_restored_share <= 0.01"
        );
    }

    // ---- parsing: errors and their positions ----------------------------

    #[test]
    fn unknown_plan_did_you_mean() {
        let t = "stagd.operational_mttr_s.p95 < 90m";
        let e = errs(t);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].offset, 0);
        assert!(e[0].message.contains("unknown plan `stagd`"));
        assert_eq!(e[0].hint.as_deref(), Some("did you mean `staged`?"));

        let t = "staged.lost_work.mean < all-at-onse.lost_work.mean";
        let e = errs(t);
        assert_eq!(e[0].offset, at(t, "all-at-onse"));
        assert_eq!(e[0].hint.as_deref(), Some("did you mean `all-at-once`?"));

        let e = errs("zzzzzz.lost_work.mean < 1");
        assert_eq!(
            e[0].hint.as_deref(),
            Some("known plans: `staged`, `all-at-once`, `canary_2`")
        );
    }

    #[test]
    fn unknown_metric() {
        let t = "staged.operational_mttr.p95 < 90m";
        let e = errs(t);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].offset, 7);
        assert!(e[0].message.contains("unknown metric `operational_mttr`"));
        assert_eq!(
            e[0].hint.as_deref(),
            Some("did you mean `operational_mttr_s`?")
        );

        let e = errs("staged.bananas.p95 < 1");
        assert!(e[0].hint.as_deref().unwrap().starts_with("known metrics: "));
        assert!(
            e[0].hint
                .as_deref()
                .unwrap()
                .contains("never_operationally_restored_share")
        );

        let e = errs("staged.never_operationaly_restored_share <= 1%");
        assert_eq!(
            e[0].hint.as_deref(),
            Some("did you mean `never_operationally_restored_share`?")
        );
    }

    #[test]
    fn the_ambiguous_never_restored_share_is_refused_with_both_successors() {
        for t in [
            "staged.never_restored_share <= 1%",
            "staged.never_restored_share.mean <= 1%",
            "1% > staged.never_restored_share",
        ] {
            let e = errs(t);
            assert_eq!(e.len(), 1, "{t}: {e:?}");
            assert_eq!(e[0].offset, at(t, "never_restored_share"));
            assert!(e[0].message.contains("split in two"), "{}", e[0].message);
            let hint = e[0].hint.as_deref().unwrap();
            assert!(
                hint.contains("`never_technically_recovered_share`")
                    && hint.contains("`never_operationally_restored_share`"),
                "{hint}"
            );
        }
    }

    #[test]
    fn unknown_and_missing_stat() {
        let t = "staged.operational_mttr_s.p959 < 90m";
        let e = errs(t);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].offset, at(t, "p959"));
        assert!(e[0].message.contains("unknown statistic `p959`"));
        assert_eq!(e[0].hint.as_deref(), Some("did you mean `p95`?"));

        let t = "staged.operational_mttr_s < 90m";
        let e = errs(t);
        assert_eq!(e[0].offset, at(t, "operational"));
        assert_eq!(e[0].hint.as_deref(), Some("add a statistic, e.g. `.p95`"));

        let t = "staged.never_technically_recovered_share.mean < 1%";
        let e = errs(t);
        assert_eq!(e[0].offset, at(t, "mean"));
        assert!(e[0].message.contains("takes no statistic"));
    }

    #[test]
    fn missing_operator() {
        let t = "staged.operational_mttr_s.p95 90m";
        let e = errs(t);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].offset, at(t, "90m"));
        assert!(e[0].message.contains("comparison operator"));

        let t = "staged.operational_mttr_s.p95";
        let e = errs(t);
        assert_eq!(e[0].offset, t.chars().count());
        assert!(e[0].message.contains("missing comparison operator"));

        let t = "staged.operational_mttr_s.p95 = 90m";
        let e = errs(t);
        assert_eq!(e[0].offset, at(t, "="));
        assert_eq!(
            e[0].hint.as_deref(),
            Some("use `==` to compare for equality")
        );
    }

    #[test]
    fn trailing_garbage() {
        let t = "staged.operational_mttr_s.p95 < 90m oops";
        let e = errs(t);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].offset, at(t, "oops"));
        assert!(e[0].message.contains("trailing"));

        let t = "staged.operational_mttr_s.p95 < 90 m";
        let e = errs(t);
        assert_eq!(e[0].offset, at(t, " m") + 1);
        assert!(e[0].hint.as_deref().unwrap().contains("unit"));

        let t = "staged.lost_work.mean < 3)";
        assert_eq!(errs(t)[0].offset, at(t, ")"));
    }

    #[test]
    fn bad_unit() {
        let t = "staged.operational_mttr_s.p95 < 90x";
        let e = errs(t);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].offset, at(t, "x"));
        assert!(e[0].message.contains("unknown unit `x`"));

        let t = "staged.operational_mttr_s.p95 < 1h30";
        let e = errs(t);
        assert_eq!(e[0].offset, at(t, "30"));
        assert!(e[0].message.contains("missing unit"));

        let t = "staged.lost_work.mean < 1e999";
        assert!(errs(t)[0].message.contains("out of range"));
    }

    #[test]
    fn ci_on_non_mean() {
        let t = "ci(staged.technical_mttr_s.p95) < 2h";
        let e = errs(t);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].offset, at(t, "p95"));
        assert_eq!(e[0].message, "ci() applies to a mean");

        let t = "ci(staged.technical_mttr_s) < 2h";
        let e = errs(t);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].message, "ci() applies to a mean");
        assert_eq!(e[0].offset, at(t, "technical"));

        let t = "ci(staged.never_operationally_restored_share) < 1%";
        assert_eq!(errs(t)[0].message, "ci() applies to a mean");

        let t = "ci(3) < 2h";
        assert_eq!(errs(t)[0].offset, 3);

        let t = "ci(staged.lost_work.mean < 2";
        assert!(errs(t)[0].message.contains("`)`"));
    }

    #[test]
    fn paired_ci_shape_is_checked() {
        let t = "ci(staged.lost_work.mean) < all-at-once.lost_work.p95";
        let e = errs(t);
        assert_eq!(e[0].offset, at(t, "p95"));
        let t = "ci(staged.lost_work.mean) < all-at-once.stale_reads.mean";
        assert_eq!(errs(t)[0].offset, at(t, "stale_reads"));
        let t = "ci(staged.lost_work.mean) < staged.lost_work.mean";
        assert!(errs(t)[0].message.contains("itself"));
    }

    #[test]
    fn two_numbers_measure_nothing() {
        let e = errs("1 < 2");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].offset, 0);
        assert!(e[0].message.contains("nothing measured"));
        assert!(!errs("  90m>=1h").is_empty());
    }

    #[test]
    fn reports_several_errors_in_order() {
        let t = "stagd.lost_wrk.p95 < all-at-once.lost_work.p955";
        let e = errs(t);
        let offsets: Vec<usize> = e.iter().map(|e| e.offset).collect();
        assert_eq!(offsets, vec![0, at(t, "lost_wrk"), at(t, "p955")]);
    }

    #[test]
    fn misc_shape_errors() {
        assert_eq!(errs("")[0].message, "empty expectation");
        assert_eq!(errs("   ")[0].offset, 0);
        let t = "staged < 1";
        assert_eq!(errs(t)[0].offset, 6);
        let t = "staged..p95 < 1";
        assert_eq!(errs(t)[0].offset, 7);
        let t = "staged.lost_work.p95.x < 1";
        assert_eq!(errs(t)[0].offset, at(t, ".x"));
        let t = "staged.lost_work.p95 <";
        assert_eq!(errs(t)[0].offset, t.chars().count());
        // Char (not byte) offsets.
        let t = "é staged.lost_work.p95 < 1";
        assert_eq!(errs(t)[0].offset, 0);
        let t = "staged.lost_work.p95 < 1 ü";
        assert_eq!(errs(t)[0].offset, 25);
    }

    #[test]
    fn plan_names_with_digits() {
        let plans = ["2-phase"];
        let e = parse("2-phase.lost_work.mean < 3", &plans, DEFAULT_METRICS).unwrap();
        assert_eq!(
            e.lhs,
            Operand::Ref(r("2-phase", "lost_work", Some(Stat::Mean)))
        );
    }

    #[test]
    fn error_rendering() {
        let t = "staged.operational_mttr_s.p95 < 90x";
        let e = &errs(t)[0];
        let s = e.render(t);
        assert!(s.contains("unknown unit"));
        assert!(s.contains(&format!("\n  {}^", " ".repeat(34))));
        assert!(e.to_string().starts_with("at char 34: "));
    }

    // ---- evaluation -------------------------------------------------------

    #[derive(Default)]
    struct Fake {
        stats: BTreeMap<String, Value>,
        paired: BTreeMap<(String, String), (f64, f64, f64)>,
    }

    impl Fake {
        fn with(mut self, key: &str, v: f64) -> Self {
            self.stats.insert(key.into(), Value::exact(v));
            self
        }
        fn with_lower(mut self, key: &str, v: f64) -> Self {
            let bound = Bound::Lower;
            self.stats.insert(key.into(), Value { value: v, bound });
            self
        }
        fn with_paired(mut self, a: &str, b: &str, v: (f64, f64, f64)) -> Self {
            self.paired.insert((a.into(), b.into()), v);
            self
        }
    }

    impl Measurements for Fake {
        fn stat(&self, r: &Ref) -> Option<Value> {
            self.stats.get(&r.to_string()).copied()
        }
        fn paired(&self, a: &Ref, b: &Ref) -> Option<(f64, f64, f64)> {
            self.paired.get(&(a.to_string(), b.to_string())).copied()
        }
    }

    fn eval(text: &str, m: &Fake) -> Outcome {
        evaluate(&ok(text), m).unwrap()
    }

    #[test]
    fn each_operator() {
        let m = Fake::default().with("staged.lost_work.mean", 5.0);
        let cases = [
            ("<", 6.0, true, 1.0),
            ("<", 5.0, false, 0.0),
            ("<=", 5.0, true, 0.0),
            ("<=", 4.0, false, -1.0),
            (">", 4.0, true, 1.0),
            (">", 5.0, false, 0.0),
            (">=", 5.0, true, 0.0),
            (">=", 6.0, false, -1.0),
            ("==", 5.0, true, 0.0),
            ("==", 6.0, false, -1.0),
            ("!=", 6.0, true, 1.0),
            ("!=", 5.0, false, 0.0),
        ];
        for (op, t, passed, margin) in cases {
            let o = eval(&format!("staged.lost_work.mean {op} {t}"), &m);
            assert_eq!(o.passed, passed, "{op} {t}");
            assert_eq!(o.margin, margin, "{op} {t}");
            assert_eq!((o.measured, o.threshold), (5.0, t));
        }
    }

    #[test]
    fn units_in_evaluation() {
        let m = Fake::default()
            .with("staged.operational_mttr_s.p95", 5399.0)
            .with("all-at-once.availability.mean", 0.995);
        let o = eval("staged.operational_mttr_s.p95 < 90m", &m);
        assert!(o.passed);
        assert_eq!(o.threshold, 5400.0);
        assert_eq!(o.margin, 1.0);
        let o = eval("all-at-once.availability.mean >= 99.5%", &m);
        assert!(o.passed);
        assert_eq!(o.threshold, 0.995);
        assert!(eval("all-at-once.availability.mean == 99.5%", &m).passed);
        assert!(!eval("all-at-once.availability.mean > 99.5%", &m).passed);
    }

    #[test]
    fn number_on_left_is_flipped() {
        let m = Fake::default().with("staged.technical_mttr_s.p95", 3600.0);
        let o = eval("2h > staged.technical_mttr_s.p95", &m);
        assert_eq!(
            (o.measured, o.threshold, o.margin),
            (3600.0, 7200.0, 3600.0)
        );
        assert!(o.passed);
        assert!(!eval("30m >= staged.technical_mttr_s.p95", &m).passed);
    }

    #[test]
    fn ref_vs_ref_and_plan_shares() {
        let m = Fake::default()
            .with("staged.cascade_count.mean", 1.0)
            .with("all-at-once.cascade_count.mean", 4.0)
            .with("staged.never_operationally_restored_share", 0.02);
        let o = eval(
            "staged.cascade_count.mean < all-at-once.cascade_count.mean",
            &m,
        );
        assert!(o.passed);
        assert_eq!(o.margin, 3.0);
        let o = eval("staged.never_operationally_restored_share <= 0.01", &m);
        assert!(!o.passed);
        assert!((o.margin + 0.01).abs() < 1e-12);
    }

    #[test]
    fn ci_against_number() {
        // Mean 100, CI [70, 130].
        let m = Fake::default()
            .with("staged.technical_mttr_s.mean", 100.0)
            .with("staged.technical_mttr_s.ci95_low", 70.0)
            .with("staged.technical_mttr_s.ci95_high", 130.0);
        // The mean passes but the CI does not.
        assert!(eval("staged.technical_mttr_s.mean < 120", &m).passed);
        let o = eval("ci(staged.technical_mttr_s.mean) < 120", &m);
        assert!(!o.passed);
        assert_eq!((o.measured, o.threshold, o.margin), (130.0, 120.0, -10.0));
        // Whole interval below.
        let o = eval("ci(staged.technical_mttr_s.mean) <= 130", &m);
        assert!(o.passed);
        assert_eq!(o.margin, 0.0);
        // Lower bound for > / >=.
        assert!(eval("staged.technical_mttr_s.mean > 80", &m).passed);
        let o = eval("ci(staged.technical_mttr_s.mean) > 80", &m);
        assert!(!o.passed);
        assert_eq!(o.measured, 70.0);
        assert!(eval("ci(staged.technical_mttr_s.mean) >= 70", &m).passed);
        // Mean for == / !=.
        assert!(eval("ci(staged.technical_mttr_s.mean) == 100", &m).passed);
        assert!(eval("ci(staged.technical_mttr_s.mean) != 130", &m).passed);
        // Flipped: `120 > ci(x)` is `ci(x) < 120`.
        let o = eval("120 > ci(staged.technical_mttr_s.mean)", &m);
        assert!(!o.passed);
        assert_eq!(o.measured, 130.0);
        assert!(eval("2h > ci(staged.technical_mttr_s.mean)", &m).passed);
    }

    #[test]
    fn ci_paired() {
        let a = "staged.lost_work.mean";
        let b = "all-at-once.lost_work.mean";
        // staged is clearly better: diff CI entirely below 0.
        let m = Fake::default()
            .with(a, 2.0)
            .with(b, 5.0)
            .with_paired(a, b, (-3.0, -4.0, -2.0))
            .with_paired(b, a, (3.0, 2.0, 4.0));
        let o = eval(&format!("ci({a}) < {b}"), &m);
        assert!(o.passed);
        assert_eq!((o.measured, o.threshold, o.margin), (2.0, 5.0, 2.0));
        assert!(eval(&format!("ci({a}) <= {b}"), &m).passed);
        let o = eval(&format!("ci({a}) > {b}"), &m);
        assert!(!o.passed);
        assert_eq!(o.margin, -4.0);
        assert!(!eval(&format!("ci({a}) >= {b}"), &m).passed);
        assert!(eval(&format!("ci({a}) != {b}"), &m).passed);
        assert!(!eval(&format!("ci({a}) == {b}"), &m).passed);
        // Ref on the left, ci on the right: `b > ci(a)` is `ci(a) < b`.
        let o = eval(&format!("{b} > ci({a})"), &m);
        assert!(o.passed);
        assert_eq!((o.measured, o.threshold), (2.0, 5.0));
        // ci on both sides.
        assert!(eval(&format!("ci({b}) > ci({a})"), &m).passed);

        // Means differ but the paired interval straddles 0: fails.
        let m = Fake::default()
            .with(a, 2.0)
            .with(b, 5.0)
            .with_paired(a, b, (-3.0, -7.0, 1.0));
        assert!(eval(&format!("{a} < {b}"), &m).passed);
        let o = eval(&format!("ci({a}) < {b}"), &m);
        assert!(!o.passed);
        assert_eq!(o.margin, -1.0);
    }

    #[test]
    fn nan_never_passes() {
        let nan = f64::NAN;
        let m = Fake::default()
            .with("staged.lost_work.mean", nan)
            .with("staged.lost_work.ci95_low", nan)
            .with("staged.lost_work.ci95_high", nan)
            .with("all-at-once.lost_work.mean", 1.0)
            .with_paired(
                "staged.lost_work.mean",
                "all-at-once.lost_work.mean",
                (nan, nan, nan),
            );
        for op in ["<", "<=", ">", ">=", "==", "!="] {
            for text in [
                format!("staged.lost_work.mean {op} 1"),
                format!("1 {op} staged.lost_work.mean"),
                format!("all-at-once.lost_work.mean {op} staged.lost_work.mean"),
                format!("ci(staged.lost_work.mean) {op} 1"),
                format!("ci(staged.lost_work.mean) {op} all-at-once.lost_work.mean"),
            ] {
                assert!(!eval(&text, &m).passed, "{text}");
            }
        }
    }

    #[test]
    fn a_censored_value_decides_only_what_its_bound_decides() {
        let h = 3600.0;
        let op = "staged.operational_mttr_s.p95";
        let m = Fake::default().with_lower(op, 8.0 * h);
        let check = |text: &str, decided: bool, passed: bool| {
            let o = eval(text, &m);
            assert_eq!((o.decided, o.passed), (decided, passed), "{text}: {o:?}");
            assert_eq!(o.measured_bound, Bound::Lower, "{text}");
            assert_eq!(o.threshold_bound, Bound::Exact, "{text}");
            o
        };
        // The true value is at least 8h: below 2h is impossible, above 1h is certain.
        let o = check(&format!("{op} < 2h"), true, false);
        assert_eq!(o.margin, -6.0 * h);
        check(&format!("{op} > 1h"), true, true);
        check(&format!("{op} >= 8h"), true, true);
        check(&format!("{op} != 1h"), true, true);
        check(&format!("{op} == 1h"), true, false);
        // The bound does not decide: not a pass, whatever the margin says.
        let o = check(&format!("{op} < 10h"), false, false);
        assert_eq!(o.margin, 2.0 * h);
        check(&format!("{op} <= 8h"), false, false);
        check(&format!("{op} > 9h"), false, false);
        check(&format!("{op} == 8h"), false, false);
        check(&format!("{op} != 8h"), false, false);
        // Flipped: `10h > x` is `x < 10h`.
        check(&format!("10h > {op}"), false, false);
        check(&format!("1h < {op}"), true, true);
    }

    #[test]
    fn censored_refs_on_both_sides_and_in_intervals() {
        let h = 3600.0;
        let (a, b) = (
            "staged.operational_mttr_s.mean",
            "all-at-once.operational_mttr_s.mean",
        );
        // a is a lower bound, b exact.
        let m = Fake::default()
            .with_lower(a, 8.0 * h)
            .with(b, 9.0 * h)
            .with_lower("staged.operational_mttr_s.ci95_high", 8.5 * h)
            .with_lower("staged.operational_mttr_s.ci95_low", 7.5 * h)
            .with_paired(a, b, (-h, -1.5 * h, -0.5 * h))
            .with_paired(b, a, (h, 0.5 * h, 1.5 * h));
        let o = eval(&format!("{a} < {b}"), &m);
        assert!(!o.decided && !o.passed, "{o:?}");
        let o = eval(&format!("{b} > {a}"), &m);
        assert!(!o.decided && !o.passed, "{o:?}");
        assert_eq!(o.threshold_bound, Bound::Lower);
        assert!(eval(&format!("{a} > 1h"), &m).passed);
        // An exact value below a lower bound is below the true value too.
        let o = eval(&format!("7h < {a}"), &m);
        assert!(o.decided && o.passed, "{o:?}");
        // ci(a) < 9h: its upper end 8.5h is a lower bound, so it cannot pass.
        let o = eval(&format!("ci({a}) < 9h"), &m);
        assert!(!o.decided && !o.passed && o.measured == 8.5 * h, "{o:?}");
        assert!(eval(&format!("ci({a}) > 7h"), &m).passed);
        // Paired: a - b is a lower bound; `<` needs its upper end, which it cannot bound.
        let o = eval(&format!("ci({a}) < {b}"), &m);
        assert!(!o.decided && !o.passed, "{o:?}");
        // b - a is an upper bound: its interval above 0 is not certain, below would be.
        let o = eval(&format!("ci({b}) > {a}"), &m);
        assert!(!o.decided && !o.passed, "{o:?}");
        // Both sides censored: nothing can be decided.
        let m = Fake::default()
            .with_lower(a, 8.0 * h)
            .with_lower(b, 20.0 * h);
        assert!(!eval(&format!("{a} < {b}"), &m).decided);
        assert!(!eval(&format!("{b} > {a}"), &m).decided);
    }

    #[test]
    fn bounds_of_differences() {
        use Bound::*;
        assert_eq!(Exact.minus(Exact), Exact);
        assert_eq!(Lower.minus(Exact), Lower);
        assert_eq!(Exact.minus(Lower), Upper);
        assert_eq!(Lower.minus(Upper), Lower);
        assert_eq!(Lower.minus(Lower), Unknown);
        assert_eq!(Unknown.minus(Exact), Unknown);
        let v = |value, bound| Value { value, bound };
        // Exact values decide as plain comparisons do.
        assert_eq!(
            decide(Op::Lt, v(1.0, Exact), v(2.0, Exact), 0.0),
            Some(true)
        );
        assert_eq!(
            decide(Op::Lt, v(2.0, Exact), v(2.0, Exact), 0.0),
            Some(false)
        );
        assert_eq!(
            decide(Op::Eq, v(2.0, Exact), v(2.0, Exact), 0.0),
            Some(true)
        );
        // An upper bound below the threshold decides `<`.
        assert_eq!(
            decide(Op::Lt, v(1.0, Upper), v(2.0, Exact), 0.0),
            Some(true)
        );
        assert_eq!(
            decide(Op::Gt, v(1.0, Upper), v(2.0, Exact), 0.0),
            Some(false)
        );
        assert_eq!(decide(Op::Ne, v(1.0, Unknown), v(2.0, Exact), 0.0), None);
    }

    #[test]
    fn missing_values_and_hand_built_errors() {
        let m = Fake::default();
        assert!(evaluate(&ok("staged.lost_work.mean < 1"), &m).is_err());
        assert!(evaluate(&ok("ci(staged.lost_work.mean) < 1"), &m).is_err());
        let bad = Expectation {
            text: String::new(),
            lhs: Operand::Number(1.0),
            op: Op::Lt,
            rhs: Operand::Number(2.0),
        };
        assert!(evaluate(&bad, &m).unwrap_err().contains("measures nothing"));
        let bad = Expectation {
            text: String::new(),
            lhs: Operand::Ci(r("staged", "lost_work", Some(Stat::P95))),
            op: Op::Lt,
            rhs: Operand::Number(2.0),
        };
        assert!(evaluate(&bad, &m).unwrap_err().contains("mean"));
    }

    #[test]
    fn edit_distance_works() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("stagd", "staged"), 1);
    }

    // ---- property tests ----------------------------------------------------

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // A fixed seed: the same cases in every run (set `PROPTEST_RNG_SEED` to explore).
            #![proptest_config(ProptestConfig {
                rng_seed: if std::env::var("PROPTEST_RNG_SEED").is_ok() {
                    ProptestConfig::default().rng_seed
                } else {
                    proptest::test_runner::RngSeed::Fixed(0x5eed_2026)
                },
                ..ProptestConfig::with_cases(2000)
            })]

            #[test]
            fn parse_never_panics(s in any::<String>()) {
                let _ = parse(&s, PLANS, DEFAULT_METRICS);
            }

            #[test]
            fn parse_never_panics_on_language_like_text(
                s in "[a-z_.()<>=! %0-9hmsd-]{0,40}"
            ) {
                if let Err(errs) = parse(&s, PLANS, DEFAULT_METRICS) {
                    prop_assert!(!errs.is_empty());
                    for e in errs {
                        prop_assert!(e.offset <= s.chars().count());
                        let _ = e.render(&s);
                    }
                }
            }

            #[test]
            fn canonical_text_round_trips(
                plan in prop::sample::select(PLANS),
                metric in prop::sample::select(DEFAULT_METRICS),
                stat in prop::sample::select(&Stat::ALL[..]),
                op in prop::sample::select(&["<", "<=", ">", ">=", "==", "!="][..]),
                n in -1e12f64..1e12,
            ) {
                let text = format!("{plan}.{metric}.{stat} {op} {n}");
                let e = parse(&text, PLANS, DEFAULT_METRICS).unwrap();
                let again = parse(&e.to_string(), PLANS, DEFAULT_METRICS).unwrap();
                prop_assert_eq!(&again.lhs, &e.lhs);
                prop_assert_eq!(again.op, e.op);
                prop_assert_eq!(&again.rhs, &e.rhs);
            }
        }
    }
}
