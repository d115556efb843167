//! Scenario files: RON text -> positioned tree -> raw serde types -> validated [`Scenario`].
//!
//! Invariants: loading never panics, whatever the bytes, and its work grows linearly with the
//! file; every problem found is reported (all unknown fields and all semantic problems, plus
//! the first syntax or shape error, after which nothing further can be trusted; beyond
//! [`MAX_PROBLEMS`] they are counted in one last line), each as `FILE:LINE:COL: message` with a
//! `help:` line saying how to fix it. A [`Scenario`] that loads is safe for the engine to run.

pub mod de;
pub mod engines;
pub mod fuzz;
pub mod raw;
pub mod ron_tree;
pub mod schema;
pub mod suggest;
pub mod validate;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

pub use ron_tree::Pos;

use crate::model::{Engine, Scenario};

/// The built-in default scenario (also `scenarios/db-cluster-outage.ron`).
pub const DEFAULT_SCENARIO: &str = include_str!("../../scenarios/db-cluster-outage.ron");
/// The file name the default scenario is reported under.
pub const DEFAULT_SCENARIO_PATH: &str = "scenarios/db-cluster-outage.ron";

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where (1-based line and column).
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
    /// How to fix it (every problem has one).
    pub hint: String,
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file, as the user named it.
    pub file: String,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: {}\n  help: {}",
                self.file, p.pos.line, p.pos.col, p.message, p.hint
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: cannot read the scenario file: {source}\n  help: {hint}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
        /// How to fix it.
        hint: String,
    },
    /// The file was read but is not a valid scenario.
    #[error("{0}")]
    Invalid(ScenarioError),
}

/// The largest scenario file read: 90 MiB (a chain of a million services takes 87 MB).
/// Loading takes up to about 19 bytes of memory per byte of text (measured on chains of 10 and
/// 87 MB, and 15 on a scenario written by `aftershock generate`, see BENCHMARKS.md), so the
/// largest file accepted stays within 1.8 GB; anything longer, such as `/dev/zero`, is refused
/// before it fills memory.
pub const MAX_SCENARIO_BYTES: u64 = 90 << 20;

/// Reads and validates a scenario file; `engine` (the command line's `--engine`) overrides the
/// file's `engine` field, before validation (settings the engine does not model are refused).
pub fn load_file(path: &Path, engine: Option<Engine>) -> Result<Scenario, LoadError> {
    let text = read_file(path)?;
    load_str(&text, &path.display().to_string(), engine).map_err(LoadError::Invalid)
}

/// Reads a scenario file's text (at most [`MAX_SCENARIO_BYTES`], UTF-8, without a byte-order
/// mark), for callers that keep the text that ran beside the scenario ([`load_str`] it).
pub fn read_file(path: &Path) -> Result<String, LoadError> {
    use std::io::Read;
    let name = path.display().to_string();
    let io = |source: std::io::Error| {
        let hint = if path.is_dir() {
            "give the path of a scenario file, not a directory (`aftershock validate scenarios/*.ron` checks several)"
        } else if source.kind() == std::io::ErrorKind::PermissionDenied {
            "make the file readable by this user, or copy it somewhere readable"
        } else {
            "check the path; `aftershock run` without a file runs the built-in default scenario"
        };
        LoadError::Io {
            path: name.clone(),
            source,
            hint: hint.to_string(),
        }
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SCENARIO_BYTES + 1).read_to_end(&mut bytes))
        .map_err(io)?;
    if bytes.len() as u64 > MAX_SCENARIO_BYTES {
        return Err(LoadError::Invalid(ScenarioError {
            file: name,
            problems: vec![Problem {
                pos: Pos { line: 1, col: 1 },
                message: format!(
                    "the file is longer than {} MiB, more than any scenario",
                    MAX_SCENARIO_BYTES >> 20
                ),
                hint: "give the path of a scenario file (`.ron` text)".into(),
            }],
        }));
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let valid = String::from_utf8_lossy(valid);
            let line = valid.matches('\n').count() as u32 + 1;
            let col = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
            return Err(LoadError::Invalid(ScenarioError {
                file: name,
                problems: vec![Problem {
                    pos: Pos { line, col },
                    message: "the file is not valid UTF-8".into(),
                    hint: "save the scenario as UTF-8 text".into(),
                }],
            }));
        }
    };
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// Validates scenario text; `file` names it in messages. A UTF-8 byte-order mark at the start
/// (as some editors save) is not part of the text. `engine` overrides the file's `engine` field
/// (see [`load_file`]).
pub fn load_str(text: &str, file: &str, engine: Option<Engine>) -> Result<Scenario, ScenarioError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let fail_counted = |(problems, omitted): (Vec<Problem>, usize)| ScenarioError {
        file: file.to_string(),
        problems: capped(problems, omitted),
    };
    let fail = |problems: Vec<Problem>| fail_counted((problems, 0));
    let tree = ron_tree::parse(text).map_err(|e| {
        fail(vec![Problem {
            pos: e.pos,
            message: e.message,
            hint: e.hint,
        }])
    })?;
    let raw: raw::RawScenario = de::from_node_counted(&tree).map_err(|(errs, omitted)| {
        // A misspelt field also makes the real one "missing": when an unknown field's hint
        // already names it, the second message is noise.
        let suggested: BTreeSet<&str> = errs
            .iter()
            .filter_map(|e| e.hint.strip_prefix("did you mean `")?.strip_suffix("`?"))
            .collect();
        let missing = |e: &de::DeError| {
            e.message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
                .is_some_and(|f| suggested.contains(f))
        };
        fail_counted((
            errs.iter()
                .filter(|e| !missing(e))
                .cloned()
                .map(|e| Problem {
                    pos: e.pos,
                    message: e.message,
                    hint: e.hint,
                })
                .collect(),
            omitted,
        ))
    })?;
    // The tree is large (several times the text): validation parses the text again only to
    // locate problems, once it has dropped the raw types.
    drop(tree);
    validate::validate(raw, text, engine).map_err(fail_counted)
}

/// Most problems reported for one file; the rest are counted in one last line.
pub const MAX_PROBLEMS: usize = 50;

/// The first [`MAX_PROBLEMS`] problems, and a line counting the others (`omitted`: found
/// beyond those kept in full, counted only).
fn capped(mut problems: Vec<Problem>, omitted: usize) -> Vec<Problem> {
    if problems.len() > MAX_PROBLEMS {
        let more = problems.len() - MAX_PROBLEMS + omitted;
        let pos = problems[MAX_PROBLEMS].pos;
        problems.truncate(MAX_PROBLEMS);
        problems.push(Problem {
            pos,
            message: format!(
                "and {more} more problem{} from here on, not shown",
                if more == 1 { "" } else { "s" }
            ),
            hint: "fix the problems above, then validate again to see the rest".into(),
        });
    }
    problems
}

/// The built-in default scenario.
pub fn default_scenario() -> Scenario {
    match load_str(DEFAULT_SCENARIO, DEFAULT_SCENARIO_PATH, None) {
        Ok(s) => s,
        // The default scenario is tested to load; this is an invariant, not user input.
        Err(e) => panic!("the built-in default scenario is invalid:\n{e}"),
    }
}
