//! Semantic validation: raw scenario types -> model types, collecting every problem.
//!
//! Each check reports at the exact position of the offending value (looked up by its path in
//! the positioned tree) with a hint that says how to fix it. Validation goes on after a problem
//! so that one run of `aftershock validate` lists everything; a value that failed its check is
//! replaced by `None` and checks depending on it are skipped rather than reported twice.

use std::collections::{BTreeMap, BTreeSet};

use super::Problem;
use super::engines::{self, EngineChoice};
use super::raw::*;
use super::ron_tree::Pos;
use super::ron_tree::{self, Node, parse_path};
use super::suggest;
use crate::engine::time::parse_duration;
use crate::engine::{SimDuration, SimTime};
use crate::expect;
use crate::metrics::Metric;
use crate::model::topology::{Topology, hard_cycle};
use crate::model::*;

/// Largest trial count a scenario may ask for.
pub const MAX_TRIALS: u64 = 100_000_000;

/// Most repeats of one stage's verification.
pub const MAX_STAGE_REPEATS: u32 = 100;

/// Most probes a half-open breaker may let through.
const MAX_PROBES: u32 = 10_000;

/// Most "did you mean" searches one file gets: a file with many unknown names is told about its
/// first ones with a suggestion, and about the rest with a plain hint (all but the first
/// [`super::MAX_PROBLEMS`] are cut from the report anyway).
const MAX_SEARCHES: usize = 64;

struct Ctx {
    /// The problems found, located at the end: see [`Pending`]. At most
    /// [`super::de::MAX_KEPT`]; the others are counted in `omitted`.
    problems: Vec<Pending>,
    omitted: usize,
    /// "Did you mean" searches left.
    searches: usize,
}

/// A problem whose position is found once validation is over. The loader drops the positioned
/// tree once the raw types are read, and validation parses the text again only when it has
/// problems to locate, after the raw types and the partial model are dropped: a large file's
/// tree never stays in memory with them. Parsing is deterministic, so the positions are those
/// of the first parse.
struct Pending {
    /// Path of the value in the tree, e.g. `services[3].name`.
    path: String,
    /// Chars to add to the value's column (a position inside a string).
    col_offset: u32,
    message: String,
    hint: PendingHint,
}

enum PendingHint {
    /// The hint as it is.
    Text(String),
    /// "it is first defined at LINE:COL; ...", with the position of the value at this path.
    FirstDefinedAt(String),
}

impl Ctx {
    fn err(&mut self, path: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.push(Pending {
            path: path.to_string(),
            col_offset: 0,
            message: message.into(),
            hint: PendingHint::Text(hint.into()),
        });
    }

    /// Keeps a problem, or only counts it once [`super::de::MAX_KEPT`] are kept.
    fn push(&mut self, p: Pending) {
        if self.problems.len() < super::de::MAX_KEPT {
            self.problems.push(p);
        } else {
            self.omitted += 1;
        }
    }

    fn duration(&mut self, path: &str, text: &str) -> Option<SimDuration> {
        match parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(
                    path,
                    format!("cannot read the duration `{text}`: {}", e.0),
                    "write durations like \"90s\", \"45m\", \"2h\" or \"1h30m\"",
                );
                None
            }
        }
    }

    fn positive_duration(&mut self, path: &str, text: &str) -> Option<SimDuration> {
        let d = self.duration(path, text)?;
        if d == SimDuration::ZERO {
            self.err(
                path,
                "this duration must be longer than zero",
                "use e.g. \"1s\"",
            );
            return None;
        }
        Some(d)
    }

    fn positive(&mut self, path: &str, what: &str, v: f64) -> Option<f64> {
        if v.is_finite() && v > 0.0 {
            Some(v)
        } else {
            self.err(
                path,
                format!("{what} must be a positive, finite number (found {v})"),
                "use a value greater than zero, e.g. 100.0",
            );
            None
        }
    }

    fn non_negative(&mut self, path: &str, what: &str, v: f64) -> Option<f64> {
        if v.is_finite() && v >= 0.0 {
            Some(v)
        } else {
            self.err(
                path,
                format!("{what} must be zero or a positive, finite number (found {v})"),
                "use a value of 0 or more",
            );
            None
        }
    }

    fn probability(&mut self, path: &str, what: &str, v: f64) -> Option<f64> {
        if (0.0..=1.0).contains(&v) {
            Some(v)
        } else {
            self.err(
                path,
                format!("{what} must be a probability in [0, 1] (found {v})"),
                "write a share such as 0.25 for 25%",
            );
            None
        }
    }

    fn service(&mut self, path: &str, name: &str, names: &BTreeMap<&str, usize>) -> Option<usize> {
        match names.get(name) {
            Some(&i) => Some(i),
            None => {
                let hint = self.unknown_hint(name, names.keys().copied(), "service");
                self.err(path, format!("unknown service `{name}`"), hint);
                None
            }
        }
    }

    /// The hint for an unknown name: a suggestion while searches are left, else the rule.
    fn unknown_hint<'n, I>(&mut self, name: &str, candidates: I, what: &str) -> String
    where
        I: IntoIterator<Item = &'n str> + Clone,
    {
        if self.searches == 0 {
            return format!(
                "use the name of a {what} defined in this file (names are case-sensitive)"
            );
        }
        self.searches -= 1;
        suggest::hint(name, candidates, what)
    }

    fn dist(&mut self, path: &str, d: &RawDist) -> Option<Dist> {
        match d {
            RawDist::Fixed(s) => Some(Dist::Fixed(self.duration(&format!("{path}.0"), s)?)),
            RawDist::Uniform { min, max } => {
                let lo = self.duration(&format!("{path}.min"), min);
                let hi = self.duration(&format!("{path}.max"), max);
                let (lo, hi) = (lo?, hi?);
                if lo > hi {
                    self.err(
                        &format!("{path}.max"),
                        format!("`max` ({hi}) is below `min` ({lo})"),
                        "swap the bounds",
                    );
                    return None;
                }
                Some(Dist::Uniform { min: lo, max: hi })
            }
            RawDist::Exponential { mean } => Some(Dist::Exponential {
                mean: self.positive_duration(&format!("{path}.mean"), mean)?,
            }),
            RawDist::LogNormal { median, p95 } => {
                let m = self.positive_duration(&format!("{path}.median"), median);
                let p = self.positive_duration(&format!("{path}.p95"), p95);
                let (m, p) = (m?, p?);
                if p <= m {
                    self.err(
                        &format!("{path}.p95"),
                        format!("`p95` ({p}) must be above the median ({m})"),
                        "a log-normal's 95th percentile lies above its median; for a constant use Fixed(\"...\")",
                    );
                    return None;
                }
                Some(Dist::LogNormal { median: m, p95: p })
            }
        }
    }
}

/// Checks a name used as an identifier in reports, expectations and paths: letters, digits,
/// `-`, `_` and `.`, and not dots alone (`.` and `..` name directories that already exist: an
/// output directory named so would escape its root).
fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && !name.chars().all(|c| c == '.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A free-form name (failures, zones) that reaches terminals, reports and charts: no control
/// characters (escape sequences would act on the terminal that shows them).
fn has_control(name: &str) -> bool {
    name.chars().any(char::is_control)
}

/// Validates `raw` (read from `text`) into a [`Scenario`], or gives the problems found with the
/// number of further problems only counted (beyond [`super::de::MAX_KEPT`]).
pub fn validate(
    raw: RawScenario,
    text: &str,
    engine: Option<Engine>,
) -> Result<Scenario, (Vec<Problem>, usize)> {
    let mut cx = Ctx {
        problems: Vec::new(),
        omitted: 0,
        searches: MAX_SEARCHES,
    };
    let scenario = build(&mut cx, &raw, text, engine);
    if cx.problems.is_empty()
        && let Some(s) = scenario
    {
        return Ok(s);
    }
    drop(raw);
    let tree = match ron_tree::parse(text) {
        Ok(tree) => tree,
        // The text parsed once already; should it not, positions fall back to the start.
        Err(e) => Node {
            pos: e.pos,
            kind: ron_tree::NodeKind::Unit,
        },
    };
    let locate = |path: &str| tree.locate(&parse_path(path));
    let omitted = cx.omitted;
    let mut problems: Vec<Problem> = cx
        .problems
        .into_iter()
        .map(|p| {
            let at = locate(&p.path);
            Problem {
                pos: Pos {
                    line: at.line,
                    col: at.col + p.col_offset,
                },
                message: p.message,
                hint: match p.hint {
                    PendingHint::Text(hint) => hint,
                    PendingHint::FirstDefinedAt(path) => {
                        let first = locate(&path);
                        format!(
                            "it is first defined at {}:{}; rename one of them",
                            first.line, first.col
                        )
                    }
                },
            }
        })
        .collect();
    problems.sort_by_key(|p| p.pos);
    problems.dedup();
    if problems.is_empty() {
        problems.push(Problem {
            pos: tree.pos,
            message: "the scenario is invalid".into(),
            hint: "this is a bug in aftershock (a scenario refused without a reason): please report it with the file".into(),
        });
    }
    Err((problems, omitted))
}

fn build(cx: &mut Ctx, raw: &RawScenario, text: &str, engine: Option<Engine>) -> Option<Scenario> {
    // The engine (the command line's override, else the file's), and what it does not model.
    let choice = EngineChoice::resolve(engine, raw);
    for r in engines::refusals(raw, choice) {
        cx.err(&r.path, r.message, r.hint);
    }
    let engine = choice.engine;
    if !is_identifier(&raw.name) {
        cx.err(
            "name",
            format!(
                "the scenario name `{}` cannot be used as a directory name",
                raw.name
            ),
            "use letters, digits, `-`, `_` and `.` only, and not dots alone, e.g. \"db-cluster-outage\"",
        );
    }
    let horizon = cx.positive_duration("horizon", &raw.horizon);
    let resolution = match &raw.resolution {
        Some(r) => cx.positive_duration("resolution", r),
        None => Some(SimDuration::from_secs(10)),
    };
    let storm_window = match &raw.storm_window {
        Some(w) => cx.positive_duration("storm_window", w),
        None => Some(SimDuration::from_secs(1)),
    };
    let trials = raw.trials.unwrap_or(1000);
    if trials == 0 || trials > MAX_TRIALS {
        cx.err(
            "trials",
            format!("`trials` must be between 1 and {MAX_TRIALS} (found {trials})"),
            "use e.g. `trials: 1000`; override per run with --trials",
        );
    }
    let slo = slo(cx, raw.slo.as_ref());

    // Services.
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    if raw.services.is_empty() {
        cx.err(
            "services",
            "the scenario has no services",
            "add at least one `Service(name: ..., capacity: ...)`",
        );
    }
    for (i, s) in raw.services.iter().enumerate() {
        if !is_identifier(&s.name) {
            cx.err(
                &format!("services[{i}].name"),
                format!("the service name `{}` is not usable in reports", s.name),
                "use letters, digits, `-`, `_` and `.` only",
            );
        }
        if let Some(&first) = names.get(s.name.as_str()) {
            cx.push(Pending {
                path: format!("services[{i}].name"),
                col_offset: 0,
                message: format!("duplicate service name `{}`", s.name),
                hint: PendingHint::FirstDefinedAt(format!("services[{first}].name")),
            });
        } else {
            names.insert(&s.name, i);
        }
    }
    // Zone tag -> (services placed in it, services sharing it as infrastructure).
    let mut zones: Zones = BTreeMap::new();
    for (i, s) in raw.services.iter().enumerate() {
        for (field, list) in [("zones", &s.zones), ("shared", &s.shared)] {
            if let Some(z) = list.iter().find(|z| has_control(z)) {
                cx.err(
                    &format!("services[{i}].{field}"),
                    format!("the zone name {z:?} holds a control character"),
                    "use printable characters only: names reach terminals, reports and charts",
                );
            }
        }
        for z in &s.zones {
            zones.entry(z.as_str()).or_default().0.push(i);
        }
        for z in &s.shared {
            zones.entry(z.as_str()).or_default().1.push(i);
        }
    }
    let services: Vec<Option<Service>> = raw
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| service(cx, i, s, &names))
        .collect();

    // Dependencies.
    let mut seen_edges: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    let deps: Vec<Option<Dependency>> = raw
        .dependencies
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let dep = dependency(cx, i, d, &names)?;
            if let Some(first) = seen_edges.insert((dep.from, dep.to), i) {
                cx.err(
                    &format!("dependencies[{i}]"),
                    format!("duplicate dependency `{}` -> `{}`", d.from, d.to),
                    format!("merge it with dependencies[{first}] (use `calls` for several calls per request)"),
                );
                return None;
            }
            Some(dep)
        })
        .collect();
    // (Over the converted dependencies in place: a copy of them would be as large as the list.)
    if deps.iter().all(Option::is_some)
        && let Some(cycle) = hard_cycle(raw.services.len(), deps.iter().flatten())
    {
        let mut names_in_cycle: Vec<&str> = cycle
            .iter()
            .map(|&s| raw.services[s].name.as_str())
            .collect();
        names_in_cycle.push(names_in_cycle[0]);
        let first_edge = deps
            .iter()
            .flatten()
            .position(|d| {
                d.kind == DepKind::Hard && d.from == cycle[0] && d.to == cycle[(1) % cycle.len()]
            })
            .unwrap_or(0);
        cx.err(
            &format!("dependencies[{first_edge}]"),
            format!(
                "hard dependencies form a cycle: {}",
                names_in_cycle.join(" -> ")
            ),
            "a request cannot wait on itself: make one of these edges `kind: Soft`, or remove it",
        );
    }

    // Roles that act through an edge need that edge; a service has one role of each kind.
    // (Indexed only when some role needs an edge: a large file usually has none.)
    let needs_edges = raw.services.iter().any(|s| {
        s.roles
            .iter()
            .any(|r| matches!(r, RawRole::Cache { .. } | RawRole::Auth { .. }))
    });
    let edges_by_name: BTreeSet<(&str, &str)> = if needs_edges {
        raw.dependencies
            .iter()
            .map(|d| (d.from.as_str(), d.to.as_str()))
            .collect()
    } else {
        BTreeSet::new()
    };
    for (i, s) in raw.services.iter().enumerate() {
        let mut kinds: BTreeSet<&'static str> = BTreeSet::new();
        for (r, role) in s.roles.iter().enumerate() {
            let path = format!("services[{i}].roles[{r}]");
            let (kind, needs) = match role {
                RawRole::Cache { origin, .. } => ("Cache", Some(("origin", origin))),
                RawRole::Auth { key_provider, .. } => {
                    ("Auth", Some(("key_provider", key_provider)))
                }
                RawRole::Queue { .. } => ("Queue", None),
                RawRole::Database { .. } => ("Database", None),
                RawRole::Discovery { .. } => ("Discovery", None),
            };
            if !kinds.insert(kind) {
                cx.err(
                    &path,
                    format!("`{}` has two `{kind}` roles", s.name),
                    "a service has at most one role of each kind; split it into two services",
                );
            }
            if let Some((field, target)) = needs
                && let Some(&t) = names.get(target.as_str())
                && !edges_by_name.contains(&(s.name.as_str(), target.as_str()))
                && t != i
            {
                cx.err(
                    &format!("{path}.{field}"),
                    format!("`{}` has a `{kind}` role with {field} `{target}` but no dependency `{}` -> `{target}`", s.name, s.name),
                    format!("add `(from: \"{}\", to: \"{target}\")` to `dependencies`: the role's calls travel on it", s.name),
                );
            }
        }
    }

    // Traffic.
    if raw.traffic.is_empty() {
        cx.err(
            "traffic",
            "the scenario has no traffic, so there is nothing to measure",
            "add e.g. `traffic: [(entry: \"edge\", rate: 1000.0)]`",
        );
    }
    let traffic: Vec<Option<Traffic>> = raw
        .traffic
        .iter()
        .enumerate()
        .map(|(i, t)| traffic(cx, i, t, &names))
        .collect();

    // Failures.
    let mut failure_names: BTreeMap<String, usize> = BTreeMap::new();
    let failures: Vec<Option<Failure>> = raw
        .failures
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = f
                .name
                .clone()
                .unwrap_or_else(|| default_failure_name(&f.kind));
            if has_control(&name) {
                cx.err(
                    &format!("failures[{i}].name"),
                    format!("the failure name {name:?} holds a control character"),
                    "use printable characters only: names reach terminals, reports and charts",
                );
            }
            if let Some(first) = failure_names.insert(name.clone(), i) {
                cx.err(
                    &format!("failures[{i}]"),
                    format!("duplicate failure name `{name}` (also failures[{first}])"),
                    "give each failure a distinct `name`: each has its own random stream",
                );
            }
            failure(cx, i, f, name, &names, &zones, &raw.services, horizon)
        })
        .collect();

    // Plans.
    let plans = plans(cx, raw, &names, &failure_names);

    // Expectations, checked against the plan names and every metric key of the contract.
    let plan_names: Vec<&str> = if raw.plans.is_empty() {
        vec!["all-at-once"]
    } else {
        raw.plans.iter().map(|p| p.name.as_str()).collect()
    };
    let metric_keys: Vec<&str> = Metric::ALL.iter().map(|m| m.key()).collect();
    let mut expectations = Vec::new();
    for (i, text) in raw.expectations.iter().enumerate() {
        match expect::parse(text, &plan_names, &metric_keys) {
            Ok(e) => {
                not_modelled_in_expectation(cx, i, text, &e, choice);
                expectations.push(e);
            }
            Err(errors) => {
                for e in errors {
                    // The string starts with its opening quote; expectations are one line.
                    cx.push(Pending {
                        path: format!("expectations[{i}]"),
                        col_offset: 1 + e.offset as u32,
                        message: format!("in expectation `{text}`: {}", e.message),
                        hint: PendingHint::Text(e.hint.unwrap_or_else(|| {
                            "write e.g. \"all-at-once.availability.mean >= 99.5%\"".into()
                        })),
                    });
                }
            }
        }
    }

    if let (Some(h), Some(r)) = (horizon, resolution)
        && r > h
    {
        cx.err(
            "resolution",
            format!("the resolution ({r}) is longer than the horizon ({h})"),
            "use a resolution such as \"10s\"",
        );
    }

    if let (Some(h), Some(w)) = (horizon, storm_window)
        && w > h
    {
        cx.err(
            "storm_window",
            format!("the storm window ({w}) is longer than the horizon ({h})"),
            "use a window of a second or a few, e.g. \"1s\"",
        );
    }

    // Assemble only when everything converted.
    let services: Vec<Service> = services.into_iter().collect::<Option<_>>()?;
    let deps: Vec<Dependency> = deps.into_iter().collect::<Option<_>>()?;
    let traffic: Vec<Traffic> = traffic.into_iter().collect::<Option<_>>()?;
    let failures: Vec<Failure> = failures.into_iter().collect::<Option<_>>()?;
    for (i, d) in raw.dependencies.iter().enumerate() {
        if d.read_share.is_some()
            && let Some(&to) = names.get(d.to.as_str())
            && !services[to]
                .roles
                .iter()
                .any(|r| matches!(r, Role::Database { .. }))
        {
            cx.err(
                &format!("dependencies[{i}].read_share"),
                format!(
                    "`{}` is not a database primary: no replica serves the reads of this edge",
                    d.to
                ),
                "set `read_share` only on calls to a service with a `Database(replica: ...)` role",
            );
        }
    }
    let edges: BTreeSet<(usize, usize)> = deps.iter().map(|d| (d.from, d.to)).collect();
    for (i, f) in failures.iter().enumerate() {
        if let FailureKind::Partition { from, to } = f.kind
            && !edges.contains(&(from, to))
        {
            let (a, b) = (&raw.services[from].name, &raw.services[to].name);
            cx.err(
                &format!("failures[{i}].kind"),
                format!("`{a}` does not call `{b}`: a partition between them would cut nothing"),
                format!(
                    "partition an edge of `dependencies` (add `(from: \"{a}\", to: \"{b}\")`, or name another pair)"
                ),
            );
        }
    }
    let (plans, baseline) = plans?;
    let (horizon, resolution, storm_window, slo) = (horizon?, resolution?, storm_window?, slo?);
    if !cx.problems.is_empty() {
        return None;
    }
    let scenario = Scenario {
        name: raw.name.clone(),
        description: raw.description.to_string(),
        content_hash: format!("{:016x}", crate::rng::fnv1a(text.as_bytes())),
        horizon: SimTime(horizon.0),
        resolution,
        storm_window,
        seed: raw.seed.unwrap_or(1),
        trials,
        slo,
        topology: Topology::new(services, deps),
        traffic,
        failures,
        plans,
        baseline,
        expectations,
        engine,
    };
    if let Err(refusal) = crate::budget::check_file_budget(&scenario, scenario.trials) {
        let at = match refusal {
            crate::runner::BudgetRefusal::Buckets(_) if raw.resolution.is_some() => "resolution",
            crate::runner::BudgetRefusal::Buckets(_) => "horizon",
            crate::runner::BudgetRefusal::Events(_, ref at) => at.as_str(),
            _ if raw.trials.is_some() => "trials",
            _ => "horizon",
        };
        cx.err(at, refusal.to_string(), refusal.hint());
        return None;
    }
    Some(scenario)
}

/// Refuses the metrics of expectation `i` that the run's engine does not model (an expectation
/// on them could never be evaluated), at the metric's key, naming the engine that models it.
fn not_modelled_in_expectation(
    cx: &mut Ctx,
    i: usize,
    text: &str,
    e: &expect::Expectation,
    choice: EngineChoice,
) {
    let engine = choice.engine;
    for op in [&e.lhs, &e.rhs] {
        let (expect::Operand::Ref(r) | expect::Operand::Ci(r)) = op else {
            continue;
        };
        let Some(m) = Metric::from_key(&r.metric).filter(|&m| !engine.reports(m)) else {
            continue;
        };
        // The key's char offset in the text: after its plan and a dot.
        let offset = text
            .find(&format!("{}.{}", r.plan, r.metric))
            .map_or(0, |b| {
                text[..b].chars().count() + r.plan.chars().count() + 1
            });
        let name = if Metric::LATENCY.contains(&m) {
            "latency_*".to_string()
        } else {
            format!("`{}`", m.key())
        };
        let other = Engine::ALL
            .into_iter()
            .find(|o| o.reports(m))
            .unwrap_or(Engine::Requests);
        cx.push(Pending {
            path: format!("expectations[{i}]"),
            col_offset: 1 + offset as u32,
            message: format!(
                "in expectation `{text}`: `{}` is not modelled by the {engine} engine, which this run uses ({})",
                m.key(),
                choice.source()
            ),
            hint: PendingHint::Text(format!(
                "{name} is not modelled by the {engine} engine: use --engine {other}"
            )),
        });
    }
}

fn slo(cx: &mut Ctx, raw: Option<&RawSlo>) -> Option<Slo> {
    let success_rate = match raw.and_then(|s| s.success_rate) {
        Some(v) => cx.probability("slo.success_rate", "the SLO success rate", v),
        None => Some(0.99),
    };
    let window = match raw.and_then(|s| s.stability_window.as_deref()) {
        Some(w) => cx.positive_duration("slo.stability_window", w),
        None => Some(SimDuration::from_secs(300)),
    };
    Some(Slo {
        success_rate: success_rate?,
        stability_window: window?,
    })
}

fn service(
    cx: &mut Ctx,
    i: usize,
    s: &RawService,
    names: &BTreeMap<&str, usize>,
) -> Option<Service> {
    let p = format!("services[{i}]");
    let capacity = cx.positive(&format!("{p}.capacity"), "`capacity`", s.capacity);
    let base_latency = match &s.base_latency {
        Some(l) => cx.duration(&format!("{p}.base_latency"), l),
        None => Some(SimDuration::ZERO),
    };
    let max_wait = match &s.max_wait {
        Some(w) => cx.positive_duration(&format!("{p}.max_wait"), w),
        None => Some(SimDuration::from_secs(30)),
    };
    let instances = s.instances.unwrap_or(1);
    if instances == 0 {
        cx.err(
            &format!("{p}.instances"),
            "`instances` must be at least 1",
            "a service with no instance cannot serve; model an outage as a failure instead",
        );
    }
    let autoscale = match &s.autoscale {
        None => Some(None),
        Some(a) => {
            let ap = format!("{p}.autoscale");
            let mut ok = true;
            if a.min == 0 || a.min > a.max {
                cx.err(
                    &format!("{ap}.min"),
                    format!(
                        "autoscale bounds are inverted or empty (min {}, max {})",
                        a.min, a.max
                    ),
                    "use 1 <= min <= max",
                );
                ok = false;
            } else if instances < a.min || instances > a.max {
                cx.err(
                    &format!("{p}.instances"),
                    format!(
                        "`instances` ({instances}) lies outside the autoscale bounds [{}, {}]",
                        a.min, a.max
                    ),
                    "start the service within its bounds",
                );
                ok = false;
            }
            let t = cx.probability(
                &format!("{ap}.target_utilisation"),
                "`target_utilisation`",
                a.target_utilisation,
            );
            if t == Some(0.0) {
                cx.err(
                    &format!("{ap}.target_utilisation"),
                    "`target_utilisation` must be above zero",
                    "use e.g. 0.6",
                );
                ok = false;
            }
            let up = cx.duration(&format!("{ap}.scale_up_delay"), &a.scale_up_delay);
            let down = cx.duration(&format!("{ap}.scale_down_delay"), &a.scale_down_delay);
            match (ok, t, up, down) {
                (true, Some(t), Some(up), Some(down)) => Some(Some(Autoscale {
                    min: a.min,
                    max: a.max,
                    target_utilisation: t,
                    scale_up_delay: up,
                    scale_down_delay: down,
                })),
                _ => None,
            }
        }
    };
    let mut roles = Vec::new();
    let mut roles_ok = true;
    for (r, role) in s.roles.iter().enumerate() {
        match self::role(cx, &format!("{p}.roles[{r}]"), role, names, i) {
            Some(role) => roles.push(role),
            None => roles_ok = false,
        }
    }
    for (field, list) in [("zones", &s.zones), ("shared", &s.shared)] {
        let mut listed = BTreeSet::new();
        for (z, zone) in list.iter().enumerate() {
            let first = listed.insert(zone.as_str());
            if zone.trim().is_empty() {
                cx.err(
                    &format!("{p}.{field}[{z}]"),
                    "empty zone name",
                    "name it, e.g. \"eu-west-1a\"",
                );
            } else if !first {
                cx.err(
                    &format!("{p}.{field}[{z}]"),
                    format!("`{zone}` is listed twice"),
                    "list each zone once",
                );
            }
        }
    }
    let service_time = match s.service_time {
        None | Some(RawServiceTime::Exponential) => Some(ServiceTime::Exponential),
        Some(RawServiceTime::Fixed) => Some(ServiceTime::Fixed),
        Some(RawServiceTime::LogNormal { cv }) => cx
            .positive(&format!("{p}.service_time.cv"), "`cv`", cv)
            .map(|cv| ServiceTime::LogNormal { cv }),
    };
    if !roles_ok || instances == 0 {
        return None;
    }
    Some(Service {
        name: s.name.clone(),
        service_time: service_time?,
        drop_expired: s.drop_expired.unwrap_or(false),
        capacity: capacity?,
        base_latency: base_latency?,
        instances,
        autoscale: autoscale?,
        max_wait: max_wait?,
        zones: s.zones.clone(),
        shared: s.shared.clone(),
        roles,
    })
}

fn role(
    cx: &mut Ctx,
    p: &str,
    role: &RawRole,
    names: &BTreeMap<&str, usize>,
    me: usize,
) -> Option<Role> {
    let not_self = |cx: &mut Ctx, path: &str, id: Option<usize>| -> Option<usize> {
        let id = id?;
        if id == me {
            cx.err(
                path,
                "a role cannot refer to its own service",
                "name another service",
            );
            return None;
        }
        Some(id)
    };
    match role {
        RawRole::Cache {
            origin,
            keys,
            ttl,
            hit_ratio,
            max_extension,
            invalidation_window,
        } => {
            let w = match invalidation_window {
                Some(w) => cx
                    .positive_duration(&format!("{p}.invalidation_window"), w)
                    .map(Some),
                None => Some(None),
            };
            let o = cx.service(&format!("{p}.origin"), origin, names);
            let o = not_self(cx, &format!("{p}.origin"), o);
            let k = cx.positive(&format!("{p}.keys"), "`keys`", *keys);
            let t = cx.positive_duration(&format!("{p}.ttl"), ttl);
            let h = cx.probability(&format!("{p}.hit_ratio"), "`hit_ratio`", *hit_ratio);
            let m = cx.positive_duration(&format!("{p}.max_extension"), max_extension);
            if let (Some(t), Some(m)) = (t, m)
                && m < t
            {
                cx.err(&format!("{p}.max_extension"), format!("`max_extension` ({m}) is shorter than the TTL ({t}), so no entry is ever extended"), "set it to at least the TTL, e.g. several hours");
                return None;
            }
            Some(Role::Cache {
                origin: o?,
                keys: k?,
                ttl: t?,
                hit_ratio: h?,
                max_extension: m?,
                invalidation_window: w?,
            })
        }
        RawRole::Queue {
            consumers,
            consumer_max_rate,
            max_backlog,
        } => {
            if consumers.is_empty() {
                cx.err(
                    &format!("{p}.consumers"),
                    "a queue needs at least one consumer",
                    "list the consuming services",
                );
            }
            let ids: Vec<Option<usize>> = consumers
                .iter()
                .enumerate()
                .map(|(c, n)| {
                    let path = format!("{p}.consumers[{c}]");
                    let id = cx.service(&path, n, names);
                    not_self(cx, &path, id)
                })
                .collect();
            let r = cx.positive(
                &format!("{p}.consumer_max_rate"),
                "`consumer_max_rate`",
                *consumer_max_rate,
            );
            let b = cx.positive(&format!("{p}.max_backlog"), "`max_backlog`", *max_backlog);
            if consumers.is_empty() {
                return None;
            }
            Some(Role::Queue {
                consumers: ids.into_iter().collect::<Option<_>>()?,
                consumer_max_rate: r?,
                max_backlog: b?,
            })
        }
        RawRole::Auth {
            key_provider,
            degraded_validation,
            key_mismatch_probability,
            client_refresh_rate,
        } => {
            let k = cx.service(&format!("{p}.key_provider"), key_provider, names);
            let k = not_self(cx, &format!("{p}.key_provider"), k);
            let m = cx.probability(
                &format!("{p}.key_mismatch_probability"),
                "`key_mismatch_probability`",
                *key_mismatch_probability,
            );
            let r = cx.positive(
                &format!("{p}.client_refresh_rate"),
                "`client_refresh_rate`",
                *client_refresh_rate,
            );
            Some(Role::Auth {
                key_provider: k?,
                degraded_validation: degraded_validation.unwrap_or(true),
                key_mismatch_probability: m?,
                client_refresh_rate: r?,
            })
        }
        RawRole::Database {
            replica,
            read_share,
            lag_growth,
            lag_close_rate,
        } => {
            let r = cx.service(&format!("{p}.replica"), replica, names);
            let r = not_self(cx, &format!("{p}.replica"), r);
            let s = cx.probability(&format!("{p}.read_share"), "`read_share`", *read_share);
            let g = cx.non_negative(&format!("{p}.lag_growth"), "`lag_growth`", *lag_growth);
            let c = cx.positive(
                &format!("{p}.lag_close_rate"),
                "`lag_close_rate`",
                *lag_close_rate,
            );
            Some(Role::Database {
                replica: r?,
                read_share: s?,
                lag_growth: g?,
                lag_close_rate: c?,
            })
        }
        RawRole::Discovery {
            registry,
            register_time,
        } => {
            let reg = match registry {
                Some(r) => {
                    let path = format!("{p}.registry");
                    let id = cx.service(&path, r, names);
                    Some(not_self(cx, &path, id))
                }
                None => None,
            };
            let t = cx.dist(&format!("{p}.register_time"), register_time);
            let registry = match reg {
                Some(id) => Some(id?),
                None => None,
            };
            Some(Role::Discovery {
                registry,
                register_time: t?,
            })
        }
    }
}

fn dependency(
    cx: &mut Ctx,
    i: usize,
    d: &RawDependency,
    names: &BTreeMap<&str, usize>,
) -> Option<Dependency> {
    let p = format!("dependencies[{i}]");
    let from = cx.service(&format!("{p}.from"), &d.from, names);
    let to = cx.service(&format!("{p}.to"), &d.to, names);
    if from.is_some() && from == to {
        cx.err(
            &format!("{p}.to"),
            format!("`{}` depends on itself", d.from),
            "remove this dependency",
        );
    }
    let calls = cx.positive(&format!("{p}.calls"), "`calls`", d.calls.unwrap_or(1.0));
    let timeout = match &d.timeout {
        Some(t) => cx.positive_duration(&format!("{p}.timeout"), t).map(Some),
        None => Some(None),
    };
    let retry = match &d.retry {
        None => Some(None),
        Some(r) => {
            let rp = format!("{p}.retry");
            if r.max_attempts == 0 || r.max_attempts > 100 {
                cx.err(
                    &format!("{rp}.max_attempts"),
                    format!(
                        "`max_attempts` must be between 1 and 100 (found {})",
                        r.max_attempts
                    ),
                    "1 means no retry; 3 is common",
                );
            }
            let base = cx.duration(&format!("{rp}.backoff_base"), &r.backoff_base);
            let cap = cx.duration(&format!("{rp}.backoff_cap"), &r.backoff_cap);
            if let (Some(b), Some(c)) = (base, cap)
                && b > c
            {
                cx.err(
                    &format!("{rp}.backoff_cap"),
                    format!("`backoff_cap` ({c}) is below `backoff_base` ({b})"),
                    "the cap bounds the growing backoff; make it at least the base",
                );
            }
            let jitter = match r.jitter {
                RawJitter::None => Jitter::None,
                RawJitter::Full => Jitter::Full,
                RawJitter::Equal => Jitter::Equal,
                RawJitter::Decorrelated => Jitter::Decorrelated,
            };
            let probability = match r.probability {
                None => Some(1.0),
                Some(q) if q > 0.0 && q <= 1.0 => Some(q),
                Some(q) => {
                    cx.err(
                        &format!("{rp}.probability"),
                        format!(
                            "`probability` is the chance that a failed attempt is retried and must be in (0, 1] (found {q})"
                        ),
                        "e.g. 0.8 when a fifth of clients give up after a failure; for no retries use `max_attempts: 1`",
                    );
                    None
                }
            };
            match (base, cap, probability) {
                (Some(b), Some(c), Some(probability))
                    if b <= c && (1..=100).contains(&r.max_attempts) =>
                {
                    Some(Some(Retry {
                        max_attempts: r.max_attempts,
                        backoff_base: b,
                        backoff_cap: c,
                        jitter,
                        probability,
                    }))
                }
                _ => None,
            }
        }
    };
    let breaker = match &d.breaker {
        None => Some(None),
        Some(b) => {
            let bp = format!("{p}.breaker");
            let t = cx.probability(
                &format!("{bp}.failure_threshold"),
                "`failure_threshold`",
                b.failure_threshold,
            );
            let w = cx.positive_duration(&format!("{bp}.window"), &b.window);
            let o = cx.positive_duration(&format!("{bp}.open_for"), &b.open_for);
            if b.half_open_probes == 0 || b.half_open_probes > MAX_PROBES {
                cx.err(
                    &format!("{bp}.half_open_probes"),
                    format!(
                        "`half_open_probes` must be between 1 and {MAX_PROBES} (found {})",
                        b.half_open_probes
                    ),
                    "a half-open breaker lets a handful of calls through to learn whether the \
                     callee is back, e.g. `half_open_probes: 5`",
                );
            }
            let m = cx.non_negative(
                &format!("{bp}.max_deferred"),
                "`max_deferred`",
                b.max_deferred.unwrap_or(0.0),
            );
            let rate = match &b.release {
                None | Some(RawRelease::AllAtOnce) => Some(None),
                Some(RawRelease::Rate(r)) => cx
                    .positive(&format!("{bp}.release.0"), "the release rate", *r)
                    .map(Some),
            };
            match (t, w, o, m, rate) {
                (Some(t), Some(w), Some(o), Some(m), Some(rate))
                    if (1..=MAX_PROBES).contains(&b.half_open_probes) =>
                {
                    Some(Some(Breaker {
                        failure_threshold: t,
                        window: w,
                        open_for: o,
                        half_open_probes: b.half_open_probes,
                        max_deferred: m,
                        release_rate: rate,
                    }))
                }
                _ => None,
            }
        }
    };
    let bulkhead = match d.bulkhead {
        None => Some(None),
        Some(b) if b > 0.0 && b <= 1.0 => Some(Some(b)),
        Some(b) => {
            cx.err(
                &format!("{p}.bulkhead"),
                format!("`bulkhead` must be a share in (0, 1] (found {b})"),
                "e.g. 0.3 lets this caller use at most 30% of the callee's capacity",
            );
            None
        }
    };
    let read_share = match d.read_share {
        None => Some(None),
        Some(r) => cx
            .probability(&format!("{p}.read_share"), "`read_share`", r)
            .map(Some),
    };
    let kind = match d.kind.unwrap_or(RawDepKind::Hard) {
        RawDepKind::Hard => DepKind::Hard,
        RawDepKind::Soft => DepKind::Soft,
    };
    let (from, to) = (from?, to?);
    if from == to {
        return None;
    }
    Some(Dependency {
        from,
        to,
        kind,
        calls: calls?,
        timeout: timeout?,
        retry: retry?,
        breaker: breaker?,
        bulkhead: bulkhead?,
        read_share: read_share?,
    })
}

fn traffic(
    cx: &mut Ctx,
    i: usize,
    t: &RawTraffic,
    names: &BTreeMap<&str, usize>,
) -> Option<Traffic> {
    let p = format!("traffic[{i}]");
    let entry = cx.service(&format!("{p}.entry"), &t.entry, names);
    let rate = cx.positive(&format!("{p}.rate"), "`rate`", t.rate);
    let (hourly, start_hour) = match &t.profile {
        None | Some(RawProfile::Constant) => (Some(Vec::new()), Some(0)),
        Some(RawProfile::Daily { hourly, start_hour }) => {
            let hp = format!("{p}.profile.hourly");
            let mut ok = true;
            if hourly.len() != 24 {
                cx.err(
                    &hp,
                    format!(
                        "a daily profile needs 24 hourly multipliers (found {})",
                        hourly.len()
                    ),
                    "list one multiplier per hour, 00:00 to 23:00",
                );
                ok = false;
            }
            for (h, v) in hourly.iter().enumerate() {
                if cx
                    .non_negative(&format!("{hp}[{h}]"), "an hourly multiplier", *v)
                    .is_none()
                {
                    ok = false;
                }
            }
            let sh = start_hour.unwrap_or(0);
            if sh > 23 {
                cx.err(
                    &format!("{p}.profile.start_hour"),
                    format!("`start_hour` must be 0..=23 (found {sh})"),
                    "the hour of day at the start of the trial",
                );
                ok = false;
            }
            if ok {
                (Some(hourly.clone()), Some(sh))
            } else {
                (None, None)
            }
        }
    };
    let noise = match &t.noise {
        None => Some(None),
        Some(n) => {
            let cv = cx.non_negative(&format!("{p}.noise.cv"), "the noise `cv`", n.cv);
            let every = cx.positive_duration(&format!("{p}.noise.every"), &n.every);
            match (cv, every) {
                (Some(cv), Some(every)) => Some(Some(Noise { cv, every })),
                _ => None,
            }
        }
    };
    Some(Traffic {
        entry: entry?,
        rate: rate?,
        hourly: hourly?,
        start_hour: start_hour?,
        noise: noise?,
    })
}

fn default_failure_name(kind: &RawFailureKind) -> String {
    match kind {
        RawFailureKind::Crash { target } => format!("crash-{target}"),
        RawFailureKind::Partial { target, .. } => format!("partial-{target}"),
        RawFailureKind::Latency { target, .. } => format!("latency-{target}"),
        RawFailureKind::ErrorRate { target, .. } => format!("error-rate-{target}"),
        RawFailureKind::Partition { from, to } => format!("partition-{from}-{to}"),
        RawFailureKind::Zone { zone } => format!("zone-{zone}"),
        RawFailureKind::KeyRotation { target } => format!("key-rotation-{target}"),
    }
}

#[allow(clippy::too_many_arguments)]
fn failure(
    cx: &mut Ctx,
    i: usize,
    f: &RawFailure,
    name: String,
    names: &BTreeMap<&str, usize>,
    zones: &Zones<'_>,
    services: &[RawService],
    horizon: Option<SimDuration>,
) -> Option<Failure> {
    let p = format!("failures[{i}]");
    let kp = format!("{p}.kind");
    // Each part is checked in its own closure so that `?` ends only that part: a problem in
    // the kind must not hide problems in the schedule or the probability.
    let kind_of = |cx: &mut Ctx| -> Option<FailureKind> {
        match &f.kind {
            RawFailureKind::Crash { target } => cx
                .service(&format!("{kp}.target"), target, names)
                .map(FailureKind::Crash),
            RawFailureKind::Partial { target, capacity } => {
                let t = cx.service(&format!("{kp}.target"), target, names);
                let c = if (0.0..1.0).contains(capacity) {
                    Some(*capacity)
                } else {
                    cx.err(&format!("{kp}.capacity"), format!("`capacity` is the share of capacity left and must be in [0, 1) (found {capacity})"), "e.g. 0.3 keeps 30% of the capacity; use Crash for 0");
                    None
                };
                Some(FailureKind::Partial {
                    target: t?,
                    capacity: c?,
                })
            }
            RawFailureKind::Latency { target, added } => {
                let t = cx.service(&format!("{kp}.target"), target, names);
                let a = cx.positive_duration(&format!("{kp}.added"), added);
                Some(FailureKind::Latency {
                    target: t?,
                    added: a?,
                })
            }
            RawFailureKind::ErrorRate { target, share } => {
                let t = cx.service(&format!("{kp}.target"), target, names);
                let sh = if *share > 0.0 && *share <= 1.0 {
                    Some(*share)
                } else {
                    cx.err(
                        &format!("{kp}.share"),
                        format!("`share` is the share of requests that fail and must be in (0, 1] (found {share})"),
                        "e.g. 0.3 fails 30% of the requests; 1.0 fails them all",
                    );
                    None
                };
                Some(FailureKind::ErrorRate {
                    target: t?,
                    share: sh?,
                })
            }
            RawFailureKind::Partition { from, to } => {
                let a = cx.service(&format!("{kp}.from"), from, names);
                let b = cx.service(&format!("{kp}.to"), to, names);
                Some(FailureKind::Partition { from: a?, to: b? })
            }
            RawFailureKind::Zone { zone } => match zones.get(zone.as_str()) {
                Some((placed, shared)) => Some(FailureKind::Zone {
                    zone: zone.clone(),
                    placed: placed.clone(),
                    shared: shared.clone(),
                }),
                None => {
                    let hint = cx.unknown_hint(zone, zones.keys().copied(), "zone");
                    cx.err(
                        &format!("{kp}.zone"),
                        format!("no service lists `{zone}` in its `zones` or `shared`"),
                        hint,
                    );
                    None
                }
            },
            RawFailureKind::KeyRotation { target } => {
                let t = cx.service(&format!("{kp}.target"), target, names);
                if let Some(t) = t
                    && !services[t]
                        .roles
                        .iter()
                        .any(|r| matches!(r, RawRole::Auth { .. }))
                {
                    cx.err(
                        &format!("{kp}.target"),
                        format!("`{target}` has no `Auth` role, so it has no keys to rotate"),
                        "target the service that carries the `Auth(...)` role",
                    );
                    None
                } else {
                    t.map(FailureKind::KeyRotation)
                }
            }
        }
    };
    let kind = kind_of(cx);
    let sp = format!("{p}.schedule");
    let schedule_of = |cx: &mut Ctx| -> Option<Schedule> {
        match &f.schedule {
            RawSchedule::Once { at, duration } => {
                let a = cx.dist(&format!("{sp}.at"), at);
                let d = cx.dist(&format!("{sp}.duration"), duration);
                if let (Some(a), Some(h)) = (a, horizon) {
                    let earliest = match a {
                        Dist::Fixed(t) => Some(t),
                        Dist::Uniform { min, .. } => Some(min),
                        _ => None,
                    };
                    if let Some(t) = earliest
                        && t >= h
                    {
                        cx.err(&format!("{sp}.at"), format!("the failure starts at {t}, at or after the horizon ({h}), so it never happens"), "start it earlier or lengthen `horizon`");
                    }
                }
                Some(Schedule::Once {
                    at: a?,
                    duration: d?,
                })
            }
            RawSchedule::Process { mtbf, mttr } => {
                let u = cx.dist(&format!("{sp}.mtbf"), mtbf);
                let d = cx.dist(&format!("{sp}.mttr"), mttr);
                for (which, dist) in [("mtbf", u), ("mttr", d)] {
                    if let Some(Dist::Fixed(SimDuration::ZERO)) = dist {
                        cx.err(
                            &format!("{sp}.{which}"),
                            format!("`{which}` of a fail/repair process cannot be zero"),
                            "use a positive duration",
                        );
                    }
                }
                Some(Schedule::Process { mtbf: u?, mttr: d? })
            }
        }
    };
    let schedule = schedule_of(cx);
    let probability = cx.probability(
        &format!("{p}.probability"),
        "`probability`",
        f.probability.unwrap_or(1.0),
    );
    Some(Failure {
        name,
        kind: kind?,
        schedule: schedule?,
        probability: probability?,
    })
}

type Zones<'a> = BTreeMap<&'a str, (Vec<usize>, Vec<usize>)>;

type Plans = Option<(Vec<Plan>, usize)>;

fn plans(
    cx: &mut Ctx,
    raw: &RawScenario,
    names: &BTreeMap<&str, usize>,
    failures: &BTreeMap<String, usize>,
) -> Plans {
    if raw.plans.is_empty() {
        return Some((
            vec![Plan {
                name: "all-at-once".into(),
                strategy: Strategy::AllAtOnce,
                actions: vec![],
            }],
            0,
        ));
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out = Vec::new();
    let mut ok = true;
    let mut baselines = Vec::new();
    for (i, p) in raw.plans.iter().enumerate() {
        let pp = format!("plans[{i}]");
        if !is_identifier(&p.name) {
            cx.err(
                &format!("{pp}.name"),
                format!("the plan name `{}` cannot be used in expectations", p.name),
                "use letters, digits, `-`, `_` only, e.g. \"staged\"",
            );
            ok = false;
        }
        if p.name.contains('.') {
            cx.err(&format!("{pp}.name"), format!("the plan name `{}` contains `.`, which separates plan, metric and statistic in expectations", p.name), "use `-` or `_` instead");
            ok = false;
        }
        if let Some(first) = seen.insert(&p.name, i) {
            cx.err(
                &format!("{pp}.name"),
                format!("duplicate plan name `{}` (also plans[{first}])", p.name),
                "plans are compared by name; rename one",
            );
            ok = false;
        }
        if p.baseline == Some(true) {
            baselines.push(i);
        }
        match plan(cx, &pp, p, names, (failures, &raw.failures)) {
            Some(plan) => out.push(plan),
            None => ok = false,
        }
    }
    if baselines.len() > 1 {
        cx.err(
            &format!("plans[{}].baseline", baselines[1]),
            "more than one plan is marked `baseline: true`",
            "comparisons need exactly one baseline; keep one",
        );
        ok = false;
    }
    if !ok {
        return None;
    }
    Some((out, baselines.first().copied().unwrap_or(0)))
}

fn ramp(cx: &mut Ctx, path: &str, r: &RawRamp) -> Option<Ramp> {
    let d = cx.positive_duration(&format!("{path}.duration"), &r.duration)?;
    let shape = match r.shape.unwrap_or(RawRampShape::Linear) {
        RawRampShape::Linear => RampShape::Linear,
        RawRampShape::Exponential => RampShape::Exponential,
    };
    Some(Ramp { duration: d, shape })
}

fn raw_action_name(a: &RawActionKind) -> &'static str {
    match a {
        RawActionKind::Restart { .. } => "Restart",
        RawActionKind::Microreboot { .. } => "Microreboot",
        RawActionKind::Failover { .. } => "Failover",
        RawActionKind::Rollback { .. } => "Rollback",
        RawActionKind::CheckpointRestart { .. } => "CheckpointRestart",
    }
}

fn plan(
    cx: &mut Ctx,
    pp: &str,
    p: &RawPlan,
    names: &BTreeMap<&str, usize>,
    (failures, raw_failures): (&BTreeMap<String, usize>, &[RawFailure]),
) -> Option<Plan> {
    let strategy = match &p.strategy {
        RawStrategy::AllAtOnce => Some(Strategy::AllAtOnce),
        RawStrategy::Staged { stages } => {
            let sp = format!("{pp}.strategy.stages");
            if stages.is_empty() {
                cx.err(&sp, "a staged plan needs stages", "list IdentityPrewarm, StateReconciliation, DependencyConvergence, TrafficReentry");
            }
            let mut last: Option<RawStageKind> = None;
            let mut kinds_seen = BTreeSet::new();
            let out: Vec<Option<Stage>> = stages
                .iter()
                .enumerate()
                .map(|(s, st)| {
                    let path = format!("{sp}[{s}]");
                    if !kinds_seen.insert(st.stage as u8) {
                        cx.err(&format!("{path}.stage"), format!("stage `{:?}` appears twice", st.stage), "each of the four stages runs once; use `max_repeats` for retries");
                    }
                    if let Some(last) = last
                        && (last as u8) > (st.stage as u8)
                    {
                        cx.err(&format!("{path}.stage"), format!("stage `{:?}` comes after `{:?}`", st.stage, last), "keep the order: IdentityPrewarm, StateReconciliation, DependencyConvergence, TrafficReentry");
                    }
                    last = Some(st.stage);
                    let d = cx.dist(&format!("{path}.duration"), &st.duration);
                    let v = cx.probability(&format!("{path}.verify_probability"), "`verify_probability`", st.verify_probability);
                    let e = match &st.escalation_delay {
                        Some(e) => cx.dist(&format!("{path}.escalation_delay"), e).map(Some),
                        None => Some(None),
                    };
                    let r = match &st.ramp {
                        Some(r) => ramp(cx, &format!("{path}.ramp"), r).map(Some),
                        None => Some(None),
                    };
                    if st.ramp.is_some() && st.stage != RawStageKind::TrafficReentry {
                        cx.err(&format!("{path}.ramp"), "only the `TrafficReentry` stage ramps traffic", "move `ramp` to the TrafficReentry stage");
                    }
                    if st.max_repeats.is_some_and(|m| m > MAX_STAGE_REPEATS) {
                        cx.err(
                            &format!("{path}.max_repeats"),
                            format!("`max_repeats` is at most {MAX_STAGE_REPEATS}: a stage that fails its check that often does not work, and every repeat is work in every trial"),
                            "lower `max_repeats` (the default is 2); after the repeats the stage escalates",
                        );
                    }
                    let kind = match st.stage {
                        RawStageKind::IdentityPrewarm => StageKind::IdentityPrewarm,
                        RawStageKind::StateReconciliation => StageKind::StateReconciliation,
                        RawStageKind::DependencyConvergence => StageKind::DependencyConvergence,
                        RawStageKind::TrafficReentry => StageKind::TrafficReentry,
                    };
                    Some(Stage { kind, duration: d?, verify_probability: v?, max_repeats: st.max_repeats.unwrap_or(2), escalation_delay: e?, ramp: r? })
                })
                .collect();
            out.into_iter()
                .collect::<Option<Vec<_>>>()
                .filter(|v| !v.is_empty())
                .map(Strategy::Staged)
        }
        RawStrategy::Topological { gate, reverse } => cx
            .dist(&format!("{pp}.strategy.gate"), gate)
            .map(|gate| Strategy::Topological {
                gate,
                reverse: reverse.unwrap_or(false),
            }),
        RawStrategy::Custom { steps } => {
            let sp = format!("{pp}.strategy.steps");
            if steps.is_empty() {
                cx.err(&sp, "a custom plan needs steps", "list steps such as RestoreAll, PrewarmIdentity, Gate(Fixed(\"1m\")), RampTraffic(...)");
            }
            let out: Vec<Option<Step>> =
                steps
                    .iter()
                    .enumerate()
                    .map(|(s, st)| {
                        let path = format!("{sp}[{s}]");
                        Some(match st {
                            RawStep::RestoreAll => Step::RestoreAll,
                            RawStep::Restore(list) => {
                                if list.is_empty() {
                                    cx.err(
                                        &path,
                                        "`Restore` names no service",
                                        "list services, or use `RestoreAll`",
                                    );
                                    return None;
                                }
                                let ids: Vec<Option<usize>> = list
                                    .iter()
                                    .enumerate()
                                    .map(|(k, n)| cx.service(&format!("{path}.0[{k}]"), n, names))
                                    .collect();
                                Step::Restore(ids.into_iter().collect::<Option<_>>()?)
                            }
                            RawStep::PrewarmIdentity => Step::PrewarmIdentity,
                            RawStep::ReconcileState => Step::ReconcileState,
                            RawStep::InvalidateCaches(w) => {
                                Step::InvalidateCaches(cx.duration(&format!("{path}.0"), w)?)
                            }
                            RawStep::Reregister => Step::Reregister,
                            RawStep::RampTraffic(r) => {
                                Step::RampTraffic(ramp(cx, &format!("{path}.0"), r)?)
                            }
                            RawStep::ReleaseRetries => Step::ReleaseRetries(None),
                            RawStep::ReleaseRetriesAt(r) => Step::ReleaseRetries(Some(
                                cx.positive(&format!("{path}.0"), "the release rate", *r)?,
                            )),
                            RawStep::ScaleUp => Step::ScaleUp,
                            RawStep::Gate(d) => Step::Gate(cx.dist(&format!("{path}.0"), d)?),
                        })
                    })
                    .collect();
            out.into_iter()
                .collect::<Option<Vec<_>>>()
                .filter(|v| !v.is_empty())
                .map(Strategy::Custom)
        }
    };
    let mut actions = Vec::new();
    let mut actions_ok = true;
    let mut bound: BTreeMap<&str, usize> = BTreeMap::new();
    for (a, act) in p.actions.iter().enumerate() {
        let ap = format!("{pp}.actions[{a}]");
        let Some(&failure) = failures.get(&act.failure) else {
            let hint =
                cx.unknown_hint(&act.failure, failures.keys().map(String::as_str), "failure");
            cx.err(
                &format!("{ap}.failure"),
                format!("unknown failure `{}`", act.failure),
                hint,
            );
            actions_ok = false;
            continue;
        };
        let kp = format!("{ap}.action");
        if let Some(&first) = bound.get(act.failure.as_str()) {
            cx.err(
                &format!("{ap}.failure"),
                format!(
                    "failure `{}` already has an action in this plan (actions[{first}])",
                    act.failure
                ),
                "bind one recovery action per failure and plan",
            );
            actions_ok = false;
        } else {
            bound.insert(act.failure.as_str(), a);
        }
        let target = &raw_failures[failure].kind;
        let one_component = matches!(target, RawFailureKind::Crash { .. });
        let takes_down = one_component || matches!(target, RawFailureKind::Zone { .. });
        let needs_one = matches!(
            act.action,
            RawActionKind::Microreboot { .. }
                | RawActionKind::Failover { .. }
                | RawActionKind::CheckpointRestart { .. }
        );
        if (needs_one && !one_component) || !takes_down {
            cx.err(
                &format!("{ap}.failure"),
                format!(
                    "a recovery action `{}` cannot answer failure `{}`: {}",
                    raw_action_name(&act.action),
                    act.failure,
                    if needs_one {
                        "it acts on one component, and only a `Crash` failure takes down one"
                    } else {
                        "only `Crash` and `Zone` failures take components down"
                    }
                ),
                "bind the action to a Crash failure (or Zone, for Restart and Rollback)",
            );
            actions_ok = false;
        }
        let kind = match &act.action {
            RawActionKind::Restart { duration } => cx
                .dist(&format!("{kp}.duration"), duration)
                .map(ActionKind::Restart),
            RawActionKind::Microreboot { duration } => cx
                .dist(&format!("{kp}.duration"), duration)
                .map(ActionKind::Microreboot),
            RawActionKind::Failover {
                backup_capacity,
                switch_time,
            } => {
                let c = cx.positive(
                    &format!("{kp}.backup_capacity"),
                    "`backup_capacity`",
                    *backup_capacity,
                );
                let s = cx.dist(&format!("{kp}.switch_time"), switch_time);
                match (c, s) {
                    (Some(backup_capacity), Some(switch_time)) => Some(ActionKind::Failover {
                        backup_capacity,
                        switch_time,
                    }),
                    _ => None,
                }
            }
            RawActionKind::Rollback {
                duration,
                drift_probability,
            } => {
                let d = cx.dist(&format!("{kp}.duration"), duration);
                let pr = cx.probability(
                    &format!("{kp}.drift_probability"),
                    "`drift_probability`",
                    *drift_probability,
                );
                match (d, pr) {
                    (Some(duration), Some(drift_probability)) => Some(ActionKind::Rollback {
                        duration,
                        drift_probability,
                    }),
                    _ => None,
                }
            }
            RawActionKind::CheckpointRestart {
                duration,
                checkpoint_interval,
            } => {
                let d = cx.dist(&format!("{kp}.duration"), duration);
                let c =
                    cx.positive_duration(&format!("{kp}.checkpoint_interval"), checkpoint_interval);
                match (d, c) {
                    (Some(duration), Some(checkpoint_interval)) => {
                        Some(ActionKind::CheckpointRestart {
                            duration,
                            checkpoint_interval,
                        })
                    }
                    _ => None,
                }
            }
        };
        match kind {
            Some(kind) => actions.push(Action { failure, kind }),
            None => actions_ok = false,
        }
    }
    if !actions_ok {
        return None;
    }
    Some(Plan {
        name: p.name.clone(),
        strategy: strategy?,
        actions,
    })
}
