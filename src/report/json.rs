//! `report.json`: the machine-readable report (names are a contract, see MODEL.md).

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::{Report, SCHEMA_VERSION};
use crate::stats::Summary;

#[derive(Serialize)]
struct JsonReport<'a> {
    schema_version: u32,
    tool_version: &'static str,
    scenario: JsonScenario<'a>,
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
    never_restored_share: f64,
    metrics: Metrics<'a>,
}

/// Metrics as a JSON object in report order.
struct Metrics<'a>(&'a [(crate::metrics::Metric, Summary)]);

impl Serialize for Metrics<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (m, summary) in self.0 {
            map.serialize_entry(m.key(), summary)?;
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
    indistinguishable_from_previous: bool,
}

#[derive(Serialize)]
struct JsonExpectation<'a> {
    expr: &'a str,
    measured: f64,
    threshold: f64,
    margin: f64,
    passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// Renders the report as pretty JSON with a trailing newline.
pub fn render(r: &Report) -> String {
    let doc = JsonReport {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION"),
        scenario: JsonScenario {
            name: &r.scenario,
            content_hash: &r.content_hash,
        },
        seed: r.seed,
        trials: r.trials,
        plans: r
            .plans
            .iter()
            .map(|p| JsonPlan {
                name: &p.name,
                baseline: p.baseline,
                never_restored_share: p.never_restored_share,
                metrics: Metrics(&p.metrics),
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
