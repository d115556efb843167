//! `report.json`: the machine-readable report (names are a contract, see MODEL.md).
//!
//! Each metric's summary is `{mean, min, p1, p5, p10, p50, p90, p95, p99, max, ci95_low,
//! ci95_high, ci_method}`; a metric that censoring can affect (`technical_mttr_s`,
//! `operational_mttr_s`, `restoration_gap_s`) always adds `censored_share` and `lower_bounds`
//! (the names of the statistics that are lower bounds, in that order; `[]` when none), the
//! others never do. Rankings say whether each mean is a lower bound; expectations which of
//! their sides are (`lower_bounds`: `measured`, `threshold`) and whether the bounds decided
//! them.
//!
//! `engine` names the engine that ran the trials (`flow` or `requests`). A metric that engine
//! does not model is listed in the top-level `not_modelled` and appears in every plan's
//! `metrics` as `{"not_modelled": true}`, with no statistics: never a number.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::{Report, SCHEMA_VERSION};
use crate::metrics::Metric;
use crate::stats::{Stat, Summary};

#[derive(Serialize)]
struct JsonReport<'a> {
    schema_version: u32,
    tool_version: &'static str,
    scenario: JsonScenario<'a>,
    engine: &'static str,
    not_modelled: Vec<&'static str>,
    seed: u64,
    trials: u64,
    plans: Vec<JsonPlan<'a>>,
    comparisons: Vec<JsonComparison<'a>>,
    rankings: Vec<JsonRanking<'a>>,
    expectations: Vec<JsonExpectation<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    series: &'a [super::series::PlanSeries],
    distributions: &'a [super::series::Distribution],
}

#[derive(Serialize)]
struct JsonScenario<'a> {
    name: &'a str,
    content_hash: &'a str,
}

#[derive(Serialize)]
struct JsonPlan<'a> {
    name: &'a str,
    baseline: bool,
    never_technically_recovered_share: f64,
    never_operationally_restored_share: f64,
    metrics: Metrics<'a>,
}

/// Metrics as a JSON object in report order: the reported ones with their statistics, then
/// the ones the engine does not model, marked so.
struct Metrics<'a>(&'a [(Metric, Summary)], &'a [Metric]);

impl Serialize for Metrics<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len() + self.1.len()))?;
        for (m, summary) in self.0 {
            map.serialize_entry(m.key(), &JsonSummary(summary))?;
        }
        for m in self.1 {
            map.serialize_entry(m.key(), &NotModelled { not_modelled: true })?;
        }
        map.end()
    }
}

/// A metric the run's engine does not model.
#[derive(Serialize)]
struct NotModelled {
    not_modelled: bool,
}

/// One metric's statistics (see the module documentation for the shape).
struct JsonSummary<'a>(&'a Summary);

impl Serialize for JsonSummary<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut map = s.serialize_map(None)?;
        for stat in Stat::ALL {
            map.serialize_entry(stat.name(), &x.get(stat))?;
        }
        map.serialize_entry("ci_method", x.ci_method.name())?;
        if let Some(c) = x.censoring {
            map.serialize_entry("censored_share", &c.share)?;
            let names: Vec<&str> = c.lower_bounds.iter().map(Stat::name).collect();
            map.serialize_entry("lower_bounds", &names)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct JsonComparison<'a> {
    baseline: &'a str,
    plan: &'a str,
    metric: &'static str,
    mean_diff: f64,
    ci95_low: f64,
    ci95_high: f64,
    plan_wins_share: f64,
}

#[derive(Serialize)]
struct JsonRanking<'a> {
    metric: &'static str,
    order: Vec<JsonRanked<'a>>,
}

#[derive(Serialize)]
struct JsonRanked<'a> {
    plan: &'a str,
    mean: f64,
    mean_lower_bound: bool,
    indistinguishable_from_previous: bool,
}

#[derive(Serialize)]
struct JsonExpectation<'a> {
    expr: &'a str,
    measured: f64,
    threshold: f64,
    margin: f64,
    passed: bool,
    decided: bool,
    lower_bounds: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    censoring: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// Which sides of an expectation are lower bounds: `measured`, `threshold`.
pub fn expectation_lower_bounds(measured: bool, threshold: bool) -> Vec<&'static str> {
    [(measured, "measured"), (threshold, "threshold")]
        .into_iter()
        .filter(|(b, _)| *b)
        .map(|(_, name)| name)
        .collect()
}

/// Renders the report as pretty JSON with a trailing newline.
pub fn render(r: &Report) -> String {
    let not_modelled = r.not_modelled();
    let doc = JsonReport {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION"),
        scenario: JsonScenario {
            name: &r.scenario,
            content_hash: &r.content_hash,
        },
        engine: r.engine.name(),
        not_modelled: not_modelled.iter().map(|m| m.key()).collect(),
        seed: r.seed,
        trials: r.trials,
        plans: r
            .plans
            .iter()
            .map(|p| JsonPlan {
                name: &p.name,
                baseline: p.baseline,
                never_technically_recovered_share: p.never_technically_recovered_share,
                never_operationally_restored_share: p.never_operationally_restored_share,
                metrics: Metrics(&p.metrics, &not_modelled),
            })
            .collect(),
        comparisons: r
            .comparisons
            .iter()
            .map(|c| JsonComparison {
                baseline: &c.baseline,
                plan: &c.plan,
                metric: c.metric.key(),
                mean_diff: c.paired.mean_diff,
                ci95_low: c.paired.ci95_low,
                ci95_high: c.paired.ci95_high,
                plan_wins_share: c.paired.plan_wins_share,
            })
            .collect(),
        rankings: r
            .rankings
            .iter()
            .map(|k| JsonRanking {
                metric: k.metric.key(),
                order: k
                    .order
                    .iter()
                    .map(|x| JsonRanked {
                        plan: &x.plan,
                        mean: x.mean,
                        mean_lower_bound: x.mean_lower_bound,
                        indistinguishable_from_previous: x.tied_with_previous,
                    })
                    .collect(),
            })
            .collect(),
        expectations: r
            .expectations
            .iter()
            .map(|e| JsonExpectation {
                expr: &e.expr,
                measured: e.measured,
                threshold: e.threshold,
                margin: e.margin,
                passed: e.passed,
                decided: e.decided,
                lower_bounds: expectation_lower_bounds(
                    e.measured_lower_bound,
                    e.threshold_lower_bound,
                ),
                censoring: e.censoring.as_deref(),
                error: e.error.as_deref(),
            })
            .collect(),
        series: &r.series,
        distributions: &r.distributions,
    };
    let mut s =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
