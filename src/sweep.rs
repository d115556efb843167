//! `aftershock sweep`: one scenario run over a grid of parameter values.
//!
//! Role: a `--set PATH=V1,V2,...` names a value written in the scenario file and the values to
//! try in its place. Every point of the grid (the cartesian product of all `--set` lists, the
//! first parameter varying slowest) is the scenario *text* with those values spliced in, loaded
//! with [`crate::scenario::load_str`] like any file (so an edited scenario that is invalid is
//! reported as usual), then run with the same seed and trial count as every other point.
//!
//! Paths: `field`, `.field`, `[index]` and `[name]` steps, e.g.
//! `failures[db-cluster-down].schedule.duration`, `services[db-cluster].capacity`,
//! `traffic[0].rate`, `dependencies[2].retry.max_attempts`. `[name]` picks the list element whose
//! `name` field is `name` (quote it, `["a.b"]`, if it contains `]`); `.0` is the value of a
//! variant written with one (`dependencies[2].breaker.release.0` in `release: Rate(500.0)`). Only
//! values written in the file can be swept (a field left at its default must be written first).
//!
//! Values are RON as written in the scenario file (`5000.0`, `"30m"`, `Fixed("10m")`, `Linear`),
//! with two conveniences: where the file holds a string, an unquoted value is quoted (`30m`
//! becomes `"30m"`); where it holds a duration distribution (`Fixed`, `Uniform`, `Exponential`,
//! `LogNormal`), a duration, quoted or not, becomes `Fixed("...")`. A list of values is split
//! at commas outside quotes and brackets, so `Uniform(min: "1m", max: "5m")` is one value.
//!
//! Expectations written in the scenario are not evaluated by a sweep (use `check` per file).
//!
//! What is reported per point and plan ([`Measure`], `--metric`): a metric, or one of the two
//! plan-level censoring shares. `sweep.csv` has, per metric, its mean and 95% interval, its bad
//! tail (p95, p99 and max where lower is better; p5, p1 and min where higher is better, as for
//! availability) and, for a metric that censoring can affect, the censored share and the
//! statistics that are lower bounds; per share, the share and its Wilson 95% interval.
//!
//! Invariants: a point's results equal, bit for bit, a `run` of the scenario file edited to that
//! point's values (same seed, same trials); points run one after another, each with the
//! deterministic runner, so `sweep.csv` is identical for any `--threads`.

use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::charts;
use crate::engine::time::parse_duration;
use crate::metrics::{Censor, Metric};
use crate::model::Scenario;
use crate::report::{self, Report};
use crate::runner::{self, RunConfig};
use crate::scenario::ron_tree::{self, Node, NodeKind, Seg};
use crate::scenario::{self, suggest};
use crate::stats::Stat;

/// The metrics of a sweep when none is chosen.
pub const DEFAULT_METRICS: [Metric; 5] = [
    Metric::OperationalMttr,
    Metric::RestorationGap,
    Metric::Availability,
    Metric::StormPeakRatio,
    Metric::CascadeCount,
];

/// What a sweep reports per point and plan: a metric's statistics or a censoring share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// A metric: its mean, interval, bad tail and censoring.
    Metric(Metric),
    /// A plan-level share of censored trials, with its Wilson interval.
    Share(Censor),
}

impl Measure {
    /// The key, as given to `--metric` and used in CSV columns and chart names.
    pub fn key(self) -> &'static str {
        match self {
            Measure::Metric(m) => m.key(),
            Measure::Share(c) => c.share_key(),
        }
    }

    /// The measure with this key: a metric or a share.
    pub fn from_key(key: &str) -> Option<Measure> {
        Metric::from_key(key)
            .map(Measure::Metric)
            .or_else(|| Censor::from_share_key(key).map(Measure::Share))
    }
}

impl From<Metric> for Measure {
    fn from(m: Metric) -> Measure {
        Measure::Metric(m)
    }
}

impl From<Censor> for Measure {
    fn from(c: Censor) -> Measure {
        Measure::Share(c)
    }
}

/// Parameters a chart can show (a line chart for one, a heatmap for two).
pub const MAX_CHARTED_PARAMS: usize = 2;

/// Largest scenario text a sweep takes: it holds the text as chars, the base scenario and the
/// tree while it loads each edited point (about 52 bytes of memory per byte of text measured on
/// a 10 MB chain), so a third of the loader's limit keeps it within 2 GB.
pub const MAX_SWEPT_BYTES: u64 = crate::scenario::MAX_SCENARIO_BYTES / 3;

/// Most points a sweep's grid may have (each is a whole run, all kept for the table).
pub const MAX_POINTS: usize = 10_000;

/// The variant names of a duration distribution (`RawDist`).
const DISTRIBUTIONS: [&str; 4] = ["Fixed", "Uniform", "Exponential", "LogNormal"];

/// A problem with a sweep's arguments or one of its points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl SweepError {
    fn new(message: impl Into<String>, hint: Option<String>) -> SweepError {
        SweepError {
            message: message.into(),
            hint,
        }
    }
}

impl fmt::Display for SweepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  help: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SweepError {}

/// One step of a parameter path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A struct field: `.capacity`.
    Field(String),
    /// A list element by position: `[0]`.
    Index(usize),
    /// A list element by its `name` field: `[db-cluster]`.
    Name(String),
}

/// Formats steps back into a path: `failures[db-cluster-down].schedule`.
pub fn fmt_path(steps: &[Step]) -> String {
    let mut out = String::new();
    for s in steps {
        match s {
            Step::Field(f) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(f);
            }
            Step::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
            Step::Name(n) if n.contains(']') || n.trim() != n || n.parse::<usize>().is_ok() => {
                let _ = write!(out, "[\"{n}\"]");
            }
            Step::Name(n) => {
                let _ = write!(out, "[{n}]");
            }
        }
    }
    out
}

/// Parses a parameter path such as `failures[db-cluster-down].schedule.duration`.
pub fn parse_path(path: &str) -> Result<Vec<Step>, SweepError> {
    let bad = |why: &str| {
        SweepError::new(
            format!("malformed path `{path}`: {why}"),
            Some(
                "write fields separated by `.` and list elements as `[index]` or `[name]`, e.g. `failures[db-cluster-down].schedule.duration`"
                    .into(),
            ),
        )
    };
    let chars: Vec<char> = path.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '[' => {
                i += 1;
                let inner: String;
                if chars.get(i) == Some(&'"') {
                    let close = chars[i + 1..]
                        .iter()
                        .position(|&c| c == '"')
                        .ok_or_else(|| bad("a quoted name is never closed"))?;
                    inner = chars[i + 1..i + 1 + close].iter().collect();
                    i += close + 2;
                    if chars.get(i) != Some(&']') {
                        return Err(bad("expected `]` after a quoted name"));
                    }
                    steps.push(Step::Name(inner));
                } else {
                    let close = chars[i..]
                        .iter()
                        .position(|&c| c == ']')
                        .ok_or_else(|| bad("`[` is never closed"))?;
                    inner = chars[i..i + close].iter().collect();
                    i += close;
                    let inner = inner.trim();
                    if inner.is_empty() {
                        return Err(bad("`[]` names no element"));
                    }
                    match inner.parse::<usize>() {
                        Ok(n) if inner.chars().all(|c| c.is_ascii_digit()) => {
                            steps.push(Step::Index(n));
                        }
                        _ => steps.push(Step::Name(inner.to_string())),
                    }
                }
                i += 1;
            }
            '.' if !steps.is_empty() => {
                i += 1;
                if chars.get(i).is_none_or(|c| !is_field_char(*c)) {
                    return Err(bad("expected a field name after `.`"));
                }
            }
            c if is_field_char(c) => {
                let start = i;
                while i < chars.len() && is_field_char(chars[i]) {
                    i += 1;
                }
                steps.push(Step::Field(chars[start..i].iter().collect()));
                if i < chars.len() && !matches!(chars[i], '.' | '[') {
                    return Err(bad(&format!("unexpected `{}`", chars[i])));
                }
            }
            c => return Err(bad(&format!("unexpected `{c}`"))),
        }
    }
    if steps.is_empty() {
        return Err(bad("the path is empty"));
    }
    Ok(steps)
}

fn is_field_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Splits a value list at the commas outside quotes and brackets, trimming each value.
pub fn split_values(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    for c in list.chars() {
        if in_str {
            cur.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur.trim().to_string());
    out
}

/// One swept parameter: its path and the values to try, as written on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The path as written.
    pub path: String,
    /// The parsed path.
    pub steps: Vec<Step>,
    /// The values, as written (before the conveniences of the module docs).
    pub values: Vec<String>,
}

/// Parses one `--set PATH=V1,V2,...` argument.
pub fn parse_set(arg: &str) -> Result<Param, SweepError> {
    // The first `=` outside a `[...]` step (a quoted name may hold one).
    let mut depth = 0usize;
    let eq = arg.char_indices().find_map(|(i, c)| {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '=' if depth == 0 => return Some(i),
            _ => {}
        }
        None
    });
    let Some((path, list)) = eq.map(|i| (&arg[..i], &arg[i + 1..])) else {
        return Err(SweepError::new(
            format!("--set `{arg}` has no `=`"),
            Some("write `--set PATH=V1,V2,...`, e.g. `--set 'failures[0].schedule.duration=10m,30m,1h'`".into()),
        ));
    };
    let path = path.trim();
    let steps = parse_path(path)?;
    let values = split_values(list);
    if values.iter().any(String::is_empty) {
        return Err(SweepError::new(
            format!("--set `{arg}`: an empty value"),
            Some("separate values with single commas, e.g. `10m,30m,1h`".into()),
        ));
    }
    Ok(Param {
        path: path.to_string(),
        steps,
        values,
    })
}

/// Follows `steps` from `root` to the node they address, or says which step does not exist
/// and what exists there.
pub fn resolve<'a>(root: &'a Node, steps: &[Step]) -> Result<&'a Node, SweepError> {
    let mut cur = root;
    for (k, step) in steps.iter().enumerate() {
        let here = if k == 0 {
            "the scenario".to_string()
        } else {
            format!("`{}`", fmt_path(&steps[..k]))
        };
        let next = match step {
            // `.0` is a tuple variant's value: `release: Rate(500.0)`.
            Step::Field(f) if f.bytes().all(|b| b.is_ascii_digit()) => f
                .parse::<usize>()
                .ok()
                .and_then(|i| tuple_items(cur)?.get(i)),
            Step::Field(f) => cur.get(std::slice::from_ref(&Seg::Field(f.clone()))),
            Step::Index(i) => list_items(cur)
                .and_then(|items| items.get(*i))
                .or_else(|| cur.get(std::slice::from_ref(&Seg::Index(*i)))),
            Step::Name(n) => list_items(cur).and_then(|items| {
                items
                    .iter()
                    .find(|it| element_name(it).is_some_and(|name| name == n))
            }),
        };
        let Some(next) = next else {
            return Err(missing(cur, step, &here));
        };
        cur = next;
    }
    Ok(cur)
}

/// The items of a list node (looking through `Some(...)`).
fn list_items(n: &Node) -> Option<&[Node]> {
    match &n.kind {
        NodeKind::List(items) => Some(items),
        NodeKind::Option(Some(inner)) => list_items(inner),
        _ => None,
    }
}

/// The items of a variant written with values, `Rate(500.0)` (looking through `Some(...)`).
fn tuple_items(n: &Node) -> Option<&[Node]> {
    match &n.kind {
        NodeKind::Tuple {
            name: Some(_),
            items,
        } => Some(items),
        NodeKind::Option(Some(inner)) => tuple_items(inner),
        _ => None,
    }
}

/// The `name` field of a list element, if it is a string.
fn element_name(n: &Node) -> Option<&str> {
    match &n.get(&[Seg::Field("name".into())])?.kind {
        NodeKind::Str(s) => Some(s),
        _ => None,
    }
}

/// The field names written in a struct node (looking through `Some(...)` and variant wrappers).
fn field_names(n: &Node) -> Option<Vec<&str>> {
    match &n.kind {
        NodeKind::Struct { fields, .. } => Some(fields.iter().map(|f| f.name.as_str()).collect()),
        NodeKind::Option(Some(inner)) => field_names(inner),
        NodeKind::Tuple { items, .. } if items.len() == 1 => items.first().and_then(field_names),
        _ => None,
    }
}

/// A short description of a node, for "it has no fields" messages.
fn describe(n: &Node) -> String {
    match &n.kind {
        NodeKind::Unit => "`()`".into(),
        NodeKind::Bool(b) => format!("the value `{b}`"),
        NodeKind::Int(i) => format!("the number `{i}`"),
        NodeKind::Float(f) => format!("the number `{f:?}`"),
        NodeKind::Str(s) => format!("the string `{s:?}`"),
        NodeKind::Char(c) => format!("the character `{c:?}`"),
        NodeKind::Ident(i) => format!("`{i}`"),
        NodeKind::Option(None) => "`None`".into(),
        NodeKind::Option(Some(_)) => "`Some(...)`".into(),
        NodeKind::List(items) => format!("a list of {} element(s)", items.len()),
        NodeKind::Map(_) => "a map".into(),
        NodeKind::Tuple { name, .. } | NodeKind::Struct { name, .. } => match name {
            Some(n) => format!("`{n}(...)`"),
            None => "`(...)`".into(),
        },
    }
}

fn quote_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The error for a step that does not exist at `cur`.
fn missing(cur: &Node, step: &Step, here: &str) -> SweepError {
    if let Some(items) = list_items(cur) {
        let names: Vec<&str> = items.iter().filter_map(element_name).collect();
        let elements = if items.is_empty() {
            "it is empty".to_string()
        } else if names.len() == items.len() {
            let listed: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(i, n)| format!("[{i}] `{n}`"))
                .collect();
            format!(
                "its elements are {}",
                listed.into_iter().take(40).collect::<Vec<_>>().join(", ")
            )
        } else {
            format!("its elements are [0] to [{}]", items.len() - 1)
        };
        return match step {
            Step::Index(i) => SweepError::new(
                format!(
                    "no element [{i}] in {here}: it has {} element(s)",
                    items.len()
                ),
                Some(elements),
            ),
            Step::Name(n) => {
                let hint = if names.is_empty() {
                    format!("its elements have no `name`; address one by index: {elements}")
                } else {
                    match suggest::closest(n, names.iter().copied()) {
                        Some(c) => format!("did you mean `{c}`? {elements}"),
                        None => elements,
                    }
                };
                SweepError::new(format!("no element named `{n}` in {here}"), Some(hint))
            }
            Step::Field(f) => SweepError::new(
                format!("{here} is a list: it has no field `{f}`"),
                Some(format!(
                    "address an element as `[index]` or `[name]`; {elements}"
                )),
            ),
        };
    }
    if let Some(fields) = field_names(cur) {
        let listed = format!("fields written there: {}", quote_list(&fields));
        return match step {
            Step::Field(f) => {
                let mut hint = match suggest::closest(f, fields.iter().copied()) {
                    Some(c) => format!("did you mean `{c}`? {listed}"),
                    None => listed,
                };
                hint.push_str(
                    "; only values written in the scenario file can be swept (write the field in the file first)",
                );
                SweepError::new(format!("no field `{f}` in {here}"), Some(hint))
            }
            Step::Index(_) | Step::Name(_) => SweepError::new(
                format!(
                    "{here} is not a list: it has no element {}",
                    fmt_path(std::slice::from_ref(step))
                ),
                Some(format!("address a field with `.name`; {listed}")),
            ),
        };
    }
    let what = match step {
        Step::Field(f) => format!("no field `{f}`"),
        Step::Index(i) => format!("no element [{i}]"),
        Step::Name(n) => format!("no element named `{n}`"),
    };
    SweepError::new(
        format!("{what} in {here}: it is {}", describe(cur)),
        Some(format!(
            "sweep {here} itself, or a path that exists in the file"
        )),
    )
}

/// The char index of a position in `text`.
fn char_index(line_starts: &[usize], pos: ron_tree::Pos) -> usize {
    let line = (pos.line as usize).saturating_sub(1);
    line_starts.get(line).copied().unwrap_or(0) + (pos.col as usize).saturating_sub(1)
}

/// The char index just after the value that starts at `start` in valid RON `chars`: the value
/// ends before the first `,`, `)`, `]` or `}` outside brackets, strings and comments, with the
/// whitespace and comments before it left out.
fn value_end(chars: &[char], start: usize) -> usize {
    let mut i = start;
    let mut depth = 0usize;
    let mut end = start;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '/' if next == Some('*') => {
                let mut nest = 0usize;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        nest += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        nest -= 1;
                        i += 2;
                        if nest == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '"' => i = skip_quoted(chars, i, '"'),
            '\'' => i = skip_quoted(chars, i, '\''),
            'r' if (i == 0 || !is_field_char(chars[i - 1]))
                && raw_string_hashes(chars, i).is_some() =>
            {
                let hashes = raw_string_hashes(chars, i).unwrap_or(0);
                i += 2 + hashes;
                while i < chars.len() {
                    if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
                        i += 1 + hashes;
                        break;
                    }
                    i += 1;
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                i += 1;
            }
            ')' | ']' | '}' | ',' if depth == 0 => return end,
            ')' | ']' | '}' => {
                depth -= 1;
                i += 1;
            }
            _ => i += 1,
        }
        end = i;
    }
    end
}

/// For `r"` or `r#..#"` at `i`: the number of `#`.
fn raw_string_hashes(chars: &[char], i: usize) -> Option<usize> {
    let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
    (chars.get(i + 1 + hashes) == Some(&'"')).then_some(hashes)
}

/// The index after the closing `quote` of the literal opened at `i`.
fn skip_quoted(chars: &[char], i: usize, quote: char) -> usize {
    let mut j = i + 1;
    while j < chars.len() {
        match chars[j] {
            '\\' => j += 2,
            c if c == quote => return j + 1,
            _ => j += 1,
        }
    }
    j
}

/// Whether a node is a duration distribution such as `Fixed("10m")`.
fn is_distribution(n: &Node) -> bool {
    match &n.kind {
        NodeKind::Tuple { name: Some(v), .. } | NodeKind::Struct { name: Some(v), .. } => {
            DISTRIBUTIONS.contains(&v.as_str())
        }
        _ => false,
    }
}

fn is_quoted(v: &str) -> bool {
    v.starts_with('"') || v.starts_with("r\"") || v.starts_with("r#")
}

fn quote(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The RON text that replaces `target` for a value written as `written` (the conveniences of
/// the module docs), checked to be one RON value.
pub fn value_text(target: &Node, written: &str, path: &str) -> Result<String, SweepError> {
    let unquoted = match ron_tree::parse(written) {
        Ok(Node {
            kind: NodeKind::Str(s),
            ..
        }) if is_quoted(written) => s,
        _ => written.to_string(),
    };
    let text = if is_distribution(target) && parse_duration(&unquoted).is_ok() {
        format!("Fixed({})", quote(&unquoted))
    } else if matches!(target.kind, NodeKind::Str(_)) && !is_quoted(written) {
        quote(written)
    } else {
        written.to_string()
    };
    match ron_tree::parse(&text) {
        Ok(_) => Ok(text),
        Err(e) => Err(SweepError::new(
            format!(
                "--set {path}: the value `{written}` is not a RON value: {}",
                e.message
            ),
            Some(format!(
                "write it as in the scenario file (there: {}), e.g. `5000.0`, `\"30m\"`, `Fixed(\"10m\")`; a bare duration such as `30m` is quoted where the file has a string and becomes `Fixed(\"30m\")` where it has a distribution",
                describe(target)
            )),
        )),
    }
}

/// The value of a RON snippet on a numeric axis: numbers as they are, durations (`"10m"`,
/// `Fixed("10m")`) in minutes. `None` for anything else.
pub fn axis_value(text: &str) -> Option<f64> {
    fn of(n: &Node) -> Option<f64> {
        match &n.kind {
            NodeKind::Int(i) => Some(i.get() as f64),
            NodeKind::Float(f) if f.is_finite() => Some(*f),
            NodeKind::Str(s) => parse_duration(s).ok().map(|d| d.as_secs_f64() / 60.0),
            NodeKind::Option(Some(inner)) => of(inner),
            NodeKind::Tuple {
                name: Some(v),
                items,
            } if v == "Fixed" && items.len() == 1 => items.first().and_then(of),
            _ => None,
        }
    }
    of(&ron_tree::parse(text).ok()?)
}

/// The start of every line of `chars`, as char indices.
fn line_starts(chars: &[char]) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        chars
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == '\n')
            .map(|(i, _)| i + 1),
    );
    starts
}

/// The scenario text with the value at `path` replaced by `value`, exactly as one point of
/// `aftershock sweep --set PATH=VALUE` edits it (the same paths and value conveniences), for
/// any path, `seed` and `trials` included. The result is not loaded: an edit that makes the
/// scenario invalid is for the caller to find with [`crate::scenario::load_str`].
pub fn splice(text: &str, path: &str, value: &str) -> Result<String, SweepError> {
    let root = ron_tree::parse(text).map_err(|e| SweepError::new(e.to_string(), None))?;
    let steps = parse_path(path)?;
    let node = resolve(&root, &steps).map_err(|e| SweepError {
        message: format!("--set {path}: {}", e.message),
        hint: e.hint,
    })?;
    let written = value_text(node, value, path)?;
    let chars: Vec<char> = text.chars().collect();
    let start = char_index(&line_starts(&chars), node.pos);
    let end = value_end(&chars, start);
    let mut out: String = chars[..start].iter().collect();
    out.push_str(&written);
    out.extend(&chars[end..]);
    Ok(out)
}

/// A parsed sweep: the base scenario text and, per parameter, where its value sits and the RON
/// text of each of its values.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The scenario file, as named in messages.
    pub file: String,
    /// The base scenario (unedited).
    pub base: Scenario,
    /// The parameters, in command-line order.
    pub params: Vec<Param>,
    /// Per parameter, the RON text of each value.
    pub texts: Vec<Vec<String>>,
    chars: Vec<char>,
    /// Per parameter, the char range of its value in the base text.
    ranges: Vec<(usize, usize)>,
    /// The command line's `--engine`, overriding the file's at every point.
    engine: Option<crate::model::Engine>,
}

impl Sweep {
    /// Parses the `--set` arguments against the scenario text: every path must exist in the file
    /// and every value must be RON. The base scenario must be valid.
    /// `engine` (the command line's `--engine`) overrides the file's `engine` at every point.
    pub fn new(
        text: &str,
        file: &str,
        sets: &[String],
        engine: Option<crate::model::Engine>,
    ) -> Result<Sweep, SweepError> {
        if text.len() as u64 > MAX_SWEPT_BYTES {
            return Err(SweepError::new(
                format!(
                    "{file}: {} MiB is more than a sweep takes ({} MiB): it holds the scenario several times over while it edits and loads each point",
                    text.len() >> 20,
                    MAX_SWEPT_BYTES >> 20
                ),
                Some("sweep a smaller scenario (a sweep's points run one after another anyway), or run the edited files one by one".into()),
            ));
        }
        let base = scenario::load_str(text, file, engine)
            .map_err(|e| SweepError::new(e.to_string(), None))?;
        let root = ron_tree::parse(text).map_err(|e| SweepError::new(e.to_string(), None))?;
        if sets.is_empty() {
            return Err(SweepError::new(
                "nothing to sweep",
                Some("add `--set PATH=V1,V2,...`, e.g. `--set 'failures[0].schedule.duration=10m,30m,1h'`".into()),
            ));
        }
        let chars: Vec<char> = text.chars().collect();
        let line_starts = line_starts(&chars);
        let mut params: Vec<Param> = Vec::new();
        let mut texts = Vec::new();
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for set in sets {
            let p = parse_set(set)?;
            if let [Step::Field(f)] = p.steps.as_slice() {
                if f == "seed" || f == "trials" {
                    return Err(SweepError::new(
                        format!(
                            "--set {}: every point of a sweep runs with the same seed and trials",
                            p.path
                        ),
                        Some(format!("use --{f} to choose the {f} of the whole sweep")),
                    ));
                }
            }
            let node = resolve(&root, &p.steps).map_err(|e| SweepError {
                message: format!("{file}: --set {}: {}", p.path, e.message),
                hint: e.hint,
            })?;
            let start = char_index(&line_starts, node.pos);
            let end = value_end(&chars, start);
            for (q, &(s, e)) in params.iter().zip(&ranges) {
                if start < e && s < end {
                    return Err(SweepError::new(
                        format!(
                            "--set {} and --set {} address the same value (or one contains the other)",
                            q.path, p.path
                        ),
                        Some("sweep each value once, with one --set".into()),
                    ));
                }
            }
            let t = p
                .values
                .iter()
                .map(|v| value_text(node, v, &p.path))
                .collect::<Result<Vec<_>, _>>()?;
            texts.push(t);
            ranges.push((start, end));
            params.push(p);
        }
        let points = params
            .iter()
            .try_fold(1usize, |n, p| n.checked_mul(p.values.len()))
            .filter(|n| *n <= MAX_POINTS);
        if points.is_none() {
            let counts: Vec<String> = params.iter().map(|p| p.values.len().to_string()).collect();
            return Err(SweepError::new(
                format!(
                    "the grid has {} points, more than {MAX_POINTS}",
                    counts.join(" x ")
                ),
                Some(
                    "sweep fewer values per parameter (or fewer parameters); a sweep runs every point"
                        .into(),
                ),
            ));
        }
        Ok(Sweep {
            file: file.to_string(),
            base,
            params,
            texts,
            chars,
            ranges,
            engine,
        })
    }

    /// Every grid point as one value index per parameter, the first parameter varying slowest.
    pub fn points(&self) -> Vec<Vec<usize>> {
        let mut points = vec![Vec::new()];
        for p in &self.params {
            points = points
                .into_iter()
                .flat_map(|prefix| {
                    (0..p.values.len()).map(move |v| {
                        let mut next = prefix.clone();
                        next.push(v);
                        next
                    })
                })
                .collect();
        }
        points
    }

    /// The point's values as written: `path=value, path=value`.
    pub fn label(&self, point: &[usize]) -> String {
        self.params
            .iter()
            .zip(point)
            .map(|(p, &v)| format!("{}={}", p.path, p.values[v]))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The scenario text with the point's values spliced in.
    pub fn text_at(&self, point: &[usize]) -> String {
        let mut edits: Vec<(usize, usize, &str)> = self
            .ranges
            .iter()
            .zip(point)
            .enumerate()
            .map(|(k, (&(s, e), &v))| (s, e, self.texts[k][v].as_str()))
            .collect();
        edits.sort_by_key(|&(s, _, _)| s);
        let mut out = String::with_capacity(self.chars.len() + 64);
        let mut at = 0;
        for (s, e, t) in edits {
            out.extend(&self.chars[at..s]);
            out.push_str(t);
            at = e;
        }
        out.extend(&self.chars[at..]);
        out
    }

    /// Loads the scenario of one point; an invalid result names the point.
    pub fn load_at(&self, point: &[usize]) -> Result<Scenario, SweepError> {
        scenario::load_str(&self.text_at(point), &self.file, self.engine).map_err(|e| {
            SweepError::new(
                format!(
                    "with {} the scenario is invalid (positions in the edited text):\n{e}",
                    self.label(point)
                ),
                None,
            )
        })
    }
}

/// The results of one grid point.
#[derive(Debug, Clone)]
pub struct PointResult {
    /// One value index per parameter.
    pub point: Vec<usize>,
    /// The report of the point's run.
    pub report: Report,
}

/// The results of a whole sweep.
#[derive(Debug, Clone)]
pub struct SweepResult {
    /// The base scenario's name.
    pub scenario: String,
    /// Seed of every point.
    pub seed: u64,
    /// Trials per plan at every point.
    pub trials: u64,
    /// The parameters: path and values as written.
    pub params: Vec<(String, Vec<String>)>,
    /// Per parameter, the RON text of each value (after the conveniences).
    pub texts: Vec<Vec<String>>,
    /// Plan names, in file order (the same at every point).
    pub plans: Vec<String>,
    /// The points, in grid order.
    pub points: Vec<PointResult>,
}

impl SweepResult {
    /// The parameter values of point `p`, in parameter order (as given on the command line).
    pub fn point_values<'r>(&'r self, p: &'r PointResult) -> impl Iterator<Item = &'r str> {
        self.params
            .iter()
            .zip(&p.point)
            .map(|((_, values), &v)| values[v].as_str())
    }

    /// The summary of `metric` of plan `plan` at point `k`.
    pub fn summary(&self, k: usize, plan: usize, metric: Metric) -> Option<&crate::stats::Summary> {
        self.points[k]
            .report
            .plans
            .get(plan)?
            .metrics
            .iter()
            .find(|(m, _)| *m == metric)
            .map(|(_, s)| s)
    }

    /// The mean of a metric, or the share, of plan `plan` at point `k`.
    pub fn value(&self, k: usize, plan: usize, measure: impl Into<Measure>) -> f64 {
        match measure.into() {
            Measure::Metric(m) => self.summary(k, plan, m).map_or(f64::NAN, |s| s.mean),
            Measure::Share(c) => self.points[k]
                .report
                .plans
                .get(plan)
                .map_or(f64::NAN, |p| p.share(c)),
        }
    }

    /// The 95% interval of `measure` of plan `plan` at point `k`: the metric's interval of the
    /// mean, or the Wilson score interval of the share over the point's trials.
    pub fn interval(&self, k: usize, plan: usize, measure: impl Into<Measure>) -> (f64, f64) {
        match measure.into() {
            Measure::Metric(m) => self
                .summary(k, plan, m)
                .map_or((f64::NAN, f64::NAN), |s| (s.ci95_low, s.ci95_high)),
            Measure::Share(c) => {
                let share = self.value(k, plan, c);
                let n = self.points[k].report.trials;
                if share.is_nan() {
                    return (f64::NAN, f64::NAN);
                }
                // The share is count / n, so the count is recovered exactly.
                crate::stats::wilson((share * n as f64).round() as u64, n)
            }
        }
    }
}

/// Parses `--metric` keys (default [`DEFAULT_METRICS`]): reported metrics and the two
/// censoring shares, with a did-you-mean hint; the former `never_restored_share` is refused
/// with a hint naming its two successors.
/// A metric `engine` does not model is refused (its sweep would be a column of "not
/// modelled").
pub fn parse_metrics(
    keys: &[String],
    engine: crate::model::Engine,
) -> Result<Vec<Measure>, SweepError> {
    if keys.is_empty() {
        return Ok(DEFAULT_METRICS
            .iter()
            .map(|&m| Measure::Metric(m))
            .collect());
    }
    let mut out: Vec<Measure> = Vec::new();
    for k in keys {
        match Measure::from_key(k) {
            Some(Measure::Metric(m)) if !engine.reports(m) => {
                let other = if engine == crate::model::Engine::Flow {
                    "requests"
                } else {
                    "flow"
                };
                return Err(SweepError::new(
                    format!("--metric {k}: `{k}` is not modelled by the {engine} engine"),
                    Some(format!(
                        "{} is not modelled by the {engine} engine: use --engine {other}",
                        if Metric::LATENCY.contains(&m) {
                            "latency_*"
                        } else {
                            k.as_str()
                        }
                    )),
                ));
            }
            Some(m) if !out.contains(&m) => out.push(m),
            Some(_) => {}
            None if k == crate::expect::RETIRED_NEVER_RESTORED_SHARE => {
                return Err(SweepError::new(
                    format!("--metric {k}: `{k}` was ambiguous and has been split in two"),
                    Some(format!(
                        "use `{}` (a failed component was still down at the horizon) or `{}` (not operationally restored within the horizon)",
                        Censor::Technical.share_key(),
                        Censor::Operational.share_key()
                    )),
                ));
            }
            None => {
                let keys = engine
                    .reported()
                    .iter()
                    .map(|m| m.key())
                    .chain(Censor::ALL.iter().map(|c| c.share_key()));
                return Err(SweepError::new(
                    format!("--metric {k}: unknown metric"),
                    Some(suggest::hint(k, keys, "metric")),
                ));
            }
        }
    }
    Ok(out)
}

/// Loads every point (so a bad value is reported before anything runs), then runs them one
/// after another. `progress` receives the trials finished so far, over the whole sweep.
pub fn run(
    sweep: &Sweep,
    cfg: &RunConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<SweepResult, SweepError> {
    let points = sweep.points();
    let plans: Vec<String> = sweep.base.plans.iter().map(|p| p.name.clone()).collect();
    // Every point is loaded and checked before the first runs, then dropped (a grid of large
    // scenarios is never in memory at once), and loaded again when it runs.
    let mut cpu = 0.0;
    for point in &points {
        let s = sweep.load_at(point)?;
        let names: Vec<String> = s.plans.iter().map(|p| p.name.clone()).collect();
        if names != plans {
            return Err(SweepError::new(
                format!(
                    "with {} the plans are {} instead of {}",
                    sweep.label(point),
                    names.join(", "),
                    plans.join(", ")
                ),
                Some(
                    "a sweep compares the same plans at every point; do not sweep plan names"
                        .into(),
                ),
            ));
        }
        crate::budget::check_budget(&s, cfg.trials).map_err(|r| {
            SweepError::new(
                format!("{}: with {}: {r}", sweep.file, sweep.label(point)),
                Some(r.hint()),
            )
        })?;
        // The points run one after another: their CPU adds up (each from its own pilot).
        cpu += runner::with_threads(cfg.threads, || {
            runner::pilot_cpu_seconds(&s, cfg.seed, 0, cfg.trials)
        });
    }
    if cpu > crate::budget::MAX_CPU_SECONDS {
        return Err(SweepError::new(
            format!(
                "{}: the sweep's {} points would need about {:.0} CPU-hours together (limit {:.0})",
                sweep.file,
                points.len(),
                cpu / 3600.0,
                crate::budget::MAX_CPU_SECONDS / 3600.0
            ),
            Some("sweep fewer values, or lower --trials".into()),
        ));
    }
    let mut results = Vec::with_capacity(points.len());
    for (k, point) in points.into_iter().enumerate() {
        let s = &sweep.load_at(&point)?;
        let before = k as u64 * cfg.trials;
        let rows = runner::run(s, cfg, 0, &|done| progress(before + done));
        if let Some((trial, plan)) = rows.first_aborted() {
            let label = format!("{} (with {})", sweep.file, sweep.label(&point));
            return Err(SweepError::new(
                runner::aborted_message(s, &label, cfg.seed, trial, plan),
                None,
            ));
        }
        let report = Report::build(s, cfg.seed, &rows);
        results.push(PointResult { point, report });
    }
    Ok(SweepResult {
        scenario: sweep.base.name.clone(),
        seed: cfg.seed,
        trials: cfg.trials,
        params: sweep
            .params
            .iter()
            .map(|p| (p.path.clone(), p.values.clone()))
            .collect(),
        texts: sweep.texts.clone(),
        plans,
        points: results,
    })
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The CSV columns of one measure, after its key and `_`: see [`write_csv`].
pub fn csv_columns(measure: Measure) -> Vec<String> {
    let mut cols: Vec<String> = ["mean", "ci95_low", "ci95_high"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Measure::Metric(m) = measure {
        cols.extend(
            report::table::tail_stats(m)
                .iter()
                .map(|s| s.name().to_string()),
        );
        if m.censored_by().is_some() {
            cols.push("censored_share".into());
            cols.push("lower_bounds".into());
        }
    }
    cols
}

/// Writes `sweep.csv`: a header, then one row per (grid point, plan) with the parameter values
/// as written and, per measure (shortest round-trip floats):
///
/// * a metric: `KEY_mean`, `KEY_ci95_low`, `KEY_ci95_high`, then its bad tail (`KEY_p95`,
///   `KEY_p99`, `KEY_max` where lower is better, `KEY_p5`, `KEY_p1`, `KEY_min` where higher is
///   better); a metric that censoring can affect adds `KEY_censored_share` and
///   `KEY_lower_bounds`, the names of the statistics among those columns that are lower bounds
///   of their true value, joined by `|` (empty when none);
/// * a share: `KEY_mean` (the share), `KEY_ci95_low`, `KEY_ci95_high` (Wilson score interval).
pub fn write_csv(w: &mut dyn Write, r: &SweepResult, measures: &[Measure]) -> io::Result<()> {
    let mut header: Vec<String> = r.params.iter().map(|(p, _)| csv_field(p)).collect();
    header.push("plan".into());
    for &m in measures {
        for col in csv_columns(m) {
            header.push(format!("{}_{col}", m.key()));
        }
    }
    writeln!(w, "{}", header.join(","))?;
    for (k, p) in r.points.iter().enumerate() {
        for (i, plan) in r.plans.iter().enumerate() {
            let mut row: Vec<String> = r.point_values(p).map(csv_field).collect();
            row.push(csv_field(plan));
            for &measure in measures {
                match measure {
                    Measure::Metric(m) => {
                        let Some(s) = r.summary(k, i, m) else {
                            let n = csv_columns(measure).len();
                            row.extend(std::iter::repeat_n("NaN".to_string(), n));
                            continue;
                        };
                        let mut stats = vec![Stat::Mean, Stat::Ci95Low, Stat::Ci95High];
                        stats.extend(report::table::tail_stats(m));
                        row.extend(stats.iter().map(|&st| s.get(st).to_string()));
                        if let Some(c) = s.censoring {
                            row.push(c.share.to_string());
                            let bounds: Vec<&str> = stats
                                .iter()
                                .filter(|&&st| c.lower_bounds.contains(st))
                                .map(|st| st.name())
                                .collect();
                            row.push(bounds.join("|"));
                        }
                    }
                    Measure::Share(_) => {
                        let (lo, hi) = r.interval(k, i, measure);
                        row.push(r.value(k, i, measure).to_string());
                        row.push(lo.to_string());
                        row.push(hi.to_string());
                    }
                }
            }
            writeln!(w, "{}", row.join(","))?;
        }
    }
    Ok(())
}

/// One measure's mean (or share) as the terminal table shows it.
fn table_cell(r: &SweepResult, k: usize, plan: usize, measure: Measure) -> String {
    match measure {
        Measure::Metric(m) => match r.summary(k, plan, m) {
            Some(s) => report::table::fmt_stat(m, s, Stat::Mean),
            None => "-".into(),
        },
        Measure::Share(_) => {
            let v = r.value(k, plan, measure);
            if v.is_nan() {
                "-".into()
            } else {
                format!("{:.1}%", v * 100.0)
            }
        }
    }
}

/// The terminal table: one line per (grid point, plan) with each metric's mean (`>=` when it
/// is a lower bound) or share.
pub fn render_table(r: &SweepResult, measures: &[Measure]) -> String {
    let mut header: Vec<String> = r.params.iter().map(|(p, _)| p.clone()).collect();
    header.push("plan".into());
    header.extend(measures.iter().map(|m| match m {
        Measure::Metric(_) => format!("{} (mean)", m.key()),
        Measure::Share(_) => m.key().to_string(),
    }));
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (k, p) in r.points.iter().enumerate() {
        for (i, plan) in r.plans.iter().enumerate() {
            let mut row: Vec<String> = r.point_values(p).map(str::to_string).collect();
            row.push(plan.clone());
            row.extend(measures.iter().map(|&m| table_cell(r, k, i, m)));
            rows.push(row);
        }
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|row| row[c].chars().count())
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let labels = r.params.len() + 1;
    let line = |cells: &[String]| -> String {
        let mut s = String::new();
        for (c, cell) in cells.iter().enumerate() {
            if c > 0 {
                s.push_str("  ");
            }
            let pad = widths[c].saturating_sub(cell.chars().count());
            if c < labels {
                s.push_str(cell);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            }
        }
        s.trim_end().to_string()
    };
    let mut out = format!(
        "sweep of {}  seed {}  trials {}  ({} points x {} plans)\n",
        r.scenario,
        r.seed,
        r.trials,
        r.points.len(),
        r.plans.len()
    );
    out.push_str(&line(&header));
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

/// The x positions of one parameter's values on a line chart: the numbers themselves
/// (durations in minutes) when every value is one, else the values' positions `0, 1, 2, ...`
/// (the chart labels each position with the value as written).
pub fn axis(r: &SweepResult, param: usize) -> Vec<f64> {
    let parsed: Option<Vec<f64>> = r.texts[param].iter().map(|t| axis_value(t)).collect();
    parsed.unwrap_or_else(|| (0..r.texts[param].len()).map(|i| i as f64).collect())
}

/// The data of a line chart (one parameter): per plan, the metric's mean (or the share) at
/// each value.
pub fn line_series(r: &SweepResult, measure: impl Into<Measure>) -> Vec<(String, Vec<f64>)> {
    let measure = measure.into();
    r.plans
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            let means = (0..r.points.len())
                .map(|k| r.value(k, i, measure))
                .collect();
            (plan.clone(), means)
        })
        .collect()
}

/// The cells of a heatmap (two parameters) for one plan: `cells[y][x]`, x the first parameter's
/// value and y the second's.
pub fn heatmap_cells(r: &SweepResult, measure: impl Into<Measure>, plan: usize) -> Vec<Vec<f64>> {
    let measure = measure.into();
    let nx = r.params.first().map_or(0, |(_, v)| v.len());
    let ny = r.params.get(1).map_or(0, |(_, v)| v.len());
    let mut cells = vec![vec![f64::NAN; nx]; ny];
    for (k, p) in r.points.iter().enumerate() {
        if let [x, y] = p.point[..] {
            cells[y][x] = r.value(k, plan, measure);
        }
    }
    cells
}

/// The file stem of a chart: `sweep-<metric>` or `sweep-<metric>-<plan>`, reduced to
/// characters safe in file names.
fn chart_name(measure: Measure, plan: Option<&str>) -> String {
    let mut name = format!("sweep-{}", measure.key());
    if let Some(p) = plan {
        name.push('-');
        name.extend(p.chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        }));
    }
    name
}

/// Draws and writes the charts into `dir`: for one parameter a line chart per metric (a line
/// per plan), for two a heatmap per metric and plan, for more none. Returns the chart names.
pub fn write_charts(
    dir: &Path,
    r: &SweepResult,
    metrics: &[Measure],
) -> Result<Vec<String>, String> {
    let meta = charts::Meta {
        scenario: r.scenario.clone(),
        seed: r.seed,
        trials: r.trials,
    };
    let mut specs: Vec<(String, charts::Chart)> = Vec::new();
    match r.params.as_slice() {
        [(param, labels)] => {
            let values = axis(r, 0);
            for &m in metrics {
                let per_plan = line_series(r, m);
                let spec =
                    charts::sweep_line_spec(&meta, param, labels, &values, m.key(), &per_plan);
                specs.push((chart_name(m, None), charts::Chart::Line(spec)));
            }
        }
        [(px, x_labels), (py, y_labels)] => {
            for &m in metrics {
                for (i, plan) in r.plans.iter().enumerate() {
                    let cells = heatmap_cells(r, m, i);
                    let spec = charts::sweep_heatmap_spec(
                        &meta,
                        (px, py),
                        x_labels,
                        y_labels,
                        m.key(),
                        plan,
                        &cells,
                    );
                    specs.push((chart_name(m, Some(plan)), charts::Chart::Heatmap(spec)));
                }
            }
        }
        _ => {}
    }
    let mut names = Vec::with_capacity(specs.len());
    for r in charts::render_all(&specs)? {
        charts::write(dir, &r).map_err(|e| format!("cannot write chart {}: {e}", r.name))?;
        names.push(r.name);
    }
    Ok(names)
}

/// The default output directory: `output/<scenario name>-sweep/`.
pub fn default_out(s: &Scenario) -> PathBuf {
    PathBuf::from("output").join(format!("{}-sweep", s.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"// a comment
Scenario(
    name: "t", horizon: "3h", seed: 5, trials: 10,
    services: [(name: "api", capacity: 1000.0), (name: "db", capacity: 1000.0 /* c, ) */)],
    dependencies: [(from: "api", to: "db", timeout: "1s")],
    traffic: [(entry: "api", rate: 100.0)],
    failures: [(name: "db-down", kind: Crash(target: "db"),
                schedule: Once(at: Fixed("30m"), duration: Uniform(min: "5m", max: "15m")  // (
                ))],
    plans: [(name: "all-at-once", strategy: AllAtOnce)],
)"#;

    fn sweep(sets: &[&str]) -> Result<Sweep, SweepError> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Sweep::new(TEXT, "t.ron", &sets, None)
    }

    #[test]
    fn paths_parse_and_format() {
        let p = parse_path("failures[db-down].schedule.duration").unwrap();
        assert_eq!(
            p,
            vec![
                Step::Field("failures".into()),
                Step::Name("db-down".into()),
                Step::Field("schedule".into()),
                Step::Field("duration".into()),
            ]
        );
        assert_eq!(fmt_path(&p), "failures[db-down].schedule.duration");
        assert_eq!(
            parse_path("traffic[0].rate").unwrap(),
            vec![
                Step::Field("traffic".into()),
                Step::Index(0),
                Step::Field("rate".into())
            ]
        );
        assert_eq!(
            parse_path("services[\"a]b\"].capacity").unwrap()[1],
            Step::Name("a]b".into())
        );
        let p = parse_set("services[\"x=y\"].capacity=1.0,2.0").unwrap();
        assert_eq!(p.steps[1], Step::Name("x=y".into()));
        assert_eq!(p.values, vec!["1.0", "2.0"]);
        for bad in ["", "a..b", "a[0", "a[]", "a b", ".a", "a.", "a[\"x]"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_split_outside_brackets_and_quotes() {
        assert_eq!(
            split_values(r#"10m, Uniform(min: "1m", max: "5m"),"a,b""#),
            vec!["10m", r#"Uniform(min: "1m", max: "5m")"#, r#""a,b""#]
        );
    }

    #[test]
    fn splices_values_and_keeps_the_rest() {
        let s = sweep(&[
            "failures[db-down].schedule.duration=10m,Uniform(min: \"1m\", max: \"2m\")",
            "services[db].capacity=500.0",
            "horizon=4h",
        ])
        .unwrap();
        assert_eq!(s.points().len(), 2);
        let t = s.text_at(&[0, 0, 0]);
        assert!(t.contains(r#"duration: Fixed("10m")  // ("#), "{t}");
        assert!(t.contains(r#"capacity: 500.0 /* c, ) */)"#), "{t}");
        assert!(t.contains(r#"horizon: "4h","#), "{t}");
        assert!(t.contains("// a comment"), "{t}");
        let t = s.text_at(&[1, 0, 0]);
        assert!(
            t.contains(r#"duration: Uniform(min: "1m", max: "2m")  // ("#),
            "{t}"
        );
        assert_eq!(
            s.load_at(&[1, 0, 0]).unwrap().horizon.as_secs_f64(),
            14400.0
        );
    }

    #[test]
    fn bad_paths_name_the_missing_segment_and_what_exists() {
        let e = sweep(&["failures[db-dwn].schedule.duration=10m"]).unwrap_err();
        assert!(e.message.contains("no element named `db-dwn`"), "{e}");
        assert!(e.to_string().contains("did you mean `db-down`?"), "{e}");
        let e = sweep(&["failures[0].schedule.durration=10m"]).unwrap_err();
        assert!(e.message.contains("no field `durration`"), "{e}");
        assert!(e.to_string().contains("`at`, `duration`"), "{e}");
        let e = sweep(&["traffic[3].rate=1.0"]).unwrap_err();
        assert!(e.message.contains("no element [3]"), "{e}");
        let e = sweep(&["services[0].capacity.x=1.0"]).unwrap_err();
        assert!(e.message.contains("no field `x`"), "{e}");
        let e = sweep(&["seed=1,2"]).unwrap_err();
        assert!(e.to_string().contains("--seed"), "{e}");
        let e = sweep(&["services[db]=1", "services[db].capacity=2.0"]).unwrap_err();
        assert!(e.message.contains("same value"), "{e}");
    }

    #[test]
    fn conveniences_and_bad_values() {
        let s = sweep(&["failures[0].schedule.at=\"20m\",Exponential(mean: \"9m\")"]).unwrap();
        assert_eq!(
            s.texts[0],
            vec![r#"Fixed("20m")"#, r#"Exponential(mean: "9m")"#]
        );
        let s = sweep(&["traffic[0].entry=db"]).unwrap();
        assert_eq!(s.texts[0], vec![r#""db""#]);
        let e = sweep(&["services[0].capacity=12abc"]).unwrap_err();
        assert!(e.message.contains("not a RON value"), "{e}");
        let s = sweep(&["services[0].capacity=-5.0"]).unwrap();
        let e = s.load_at(&[0]).unwrap_err();
        assert!(e.message.contains("services[0].capacity=-5.0"), "{e}");
    }

    #[test]
    fn splice_is_one_point_of_a_sweep() {
        for (path, value) in [
            ("failures[db-down].schedule.duration", "10m"),
            ("services[db].capacity", "500.0"),
            ("dependencies[0].timeout", "2s"),
        ] {
            let s = sweep(&[&format!("{path}={value}")]).unwrap();
            assert_eq!(
                splice(TEXT, path, value).unwrap(),
                s.text_at(&[0]),
                "{path}"
            );
        }
        // Unlike a sweep, any value can be edited, and the result is not loaded.
        let t = splice(TEXT, "seed", "6").unwrap();
        assert!(t.contains("seed: 6, trials: 10"), "{t}");
        let t = splice(TEXT, "services[0].capacity", "-1.0").unwrap();
        assert!(crate::scenario::load_str(&t, "t.ron", None).is_err());
        let e = splice(TEXT, "services[0].capacty", "1.0").unwrap_err();
        assert!(e.message.contains("no field `capacty`"), "{e}");
    }

    #[test]
    fn a_variant_value_is_addressed_by_position() {
        let text = TEXT.replace(
            "timeout: \"1s\")",
            "timeout: \"1s\", breaker: (failure_threshold: 0.5, window: \"10s\", open_for: \"30s\", half_open_probes: 1, release: Rate(50.0)))",
        );
        assert!(crate::scenario::load_str(&text, "t.ron", None).is_ok());
        let t = splice(&text, "dependencies[0].breaker.release.0", "70.0").unwrap();
        assert!(t.contains("release: Rate(70.0)"), "{t}");
        let e = splice(&text, "dependencies[0].breaker.release.1", "70.0").unwrap_err();
        assert!(e.message.contains("no field `1`"), "{e}");
    }

    #[test]
    fn axis_values() {
        assert_eq!(axis_value(r#"Fixed("1h30m")"#), Some(90.0));
        assert_eq!(axis_value(r#""30s""#), Some(0.5));
        assert_eq!(axis_value("5000.0"), Some(5000.0));
        assert_eq!(axis_value("3"), Some(3.0));
        assert_eq!(axis_value(r#"Uniform(min: "1m", max: "2m")"#), None);
    }
}
