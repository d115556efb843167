//! Settings an engine does not model, refused at validation for a run with that engine.
//!
//! Both engines run the same scenario file, but not every setting is modelled by both: a
//! setting the run's engine would ignore is refused (never silently dropped), at its position,
//! with a help line naming the engine that models it. The list is data ([`UNMODELLED`]): one
//! entry per setting, with the engine that does not model it and a function finding where the
//! setting is used in a file. Adding a setting that only one engine models is one entry.
//!
//! The effective engine is the command line's `--engine`, else the file's `engine`, else
//! `Flow` ([`EngineChoice`]); it is known before validation, so a refusal is an ordinary
//! positioned problem (`FILE:LINE:COL`, exit 2).

use super::raw::{RawEngine, RawScenario, RawServiceTime};
use crate::model::Engine;

/// The engine a scenario runs with, and where that choice comes from (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineChoice {
    /// The effective engine.
    pub engine: Engine,
    /// Chosen by `--engine` on the command line (else by the file, or the default).
    pub from_command_line: bool,
    /// Chosen by the file's `engine` field.
    pub from_file: bool,
}

impl EngineChoice {
    /// The command line's override, else the file's field, else [`Engine::Flow`].
    pub fn resolve(cli: Option<Engine>, raw: &RawScenario) -> EngineChoice {
        let file = raw.engine.map(|e| match e {
            RawEngine::Flow => Engine::Flow,
            RawEngine::Requests => Engine::Requests,
        });
        EngineChoice {
            engine: cli.or(file).unwrap_or_default(),
            from_command_line: cli.is_some(),
            from_file: cli.is_none() && file.is_some(),
        }
    }

    /// Where the choice comes from, in words: "`--engine requests`", "`engine: Requests`".
    pub fn source(self) -> String {
        if self.from_command_line {
            format!("`--engine {}`", self.engine.name())
        } else if self.from_file {
            format!("`engine: {:?}` in the file", self.engine)
        } else {
            "the default".to_string()
        }
    }
}

/// A setting one engine does not model.
pub struct Unmodelled {
    /// The engine that does not model it.
    pub engine: Engine,
    /// The setting, in words: "service `roles`".
    pub what: &'static str,
    /// Where the setting is used in a file: paths such as `services[2].roles[0]` (empty when
    /// it is not used, or used with its default, which every engine models).
    pub find: fn(&RawScenario) -> Vec<String>,
}

/// Every setting that one engine does not model.
pub const UNMODELLED: &[Unmodelled] = &[
    // --- Not modelled by the flow engine: settings of the request engine alone. The flow
    // engine has no queueing below saturation, so neither a service-time distribution nor
    // dropping expired work can act in it.
    Unmodelled {
        engine: Engine::Flow,
        what: "a service-time distribution other than `Exponential` (`service_time`)",
        find: |r| {
            let used = r.services.iter().enumerate();
            used.filter(|(_, s)| {
                !matches!(s.service_time, None | Some(RawServiceTime::Exponential))
            })
            .map(|(i, _)| format!("services[{i}].service_time"))
            .collect()
        },
    },
    Unmodelled {
        engine: Engine::Flow,
        what: "dropping expired requests (`drop_expired: true`)",
        find: |r| {
            let used = r.services.iter().enumerate();
            used.filter(|(_, s)| s.drop_expired == Some(true))
                .map(|(i, _)| format!("services[{i}].drop_expired"))
                .collect()
        },
    },
];

/// A setting refused for the chosen engine: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Path of the setting in the file, e.g. `services[2].autoscale`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Every use of a setting the chosen engine does not model, in [`UNMODELLED`] order.
pub fn refusals(raw: &RawScenario, choice: EngineChoice) -> Vec<Refusal> {
    let engine = choice.engine;
    let mut out = Vec::new();
    for u in UNMODELLED.iter().filter(|u| u.engine == engine) {
        for path in (u.find)(raw) {
            out.push(Refusal {
                path,
                message: format!(
                    "{} is not modelled by the {engine} engine, which this run uses ({})",
                    u.what,
                    choice.source()
                ),
                hint: hint(u.what, engine),
            });
        }
    }
    out
}

/// The help line of a setting `what` that `engine` does not model: run it with the other one.
pub fn hint(what: &str, engine: Engine) -> String {
    match engine {
        Engine::Requests => format!(
            "{what} is not modelled by the requests engine yet: use the flow engine (`--engine flow`)"
        ),
        Engine::Flow => format!(
            "{what} is modelled only by the requests engine: add `engine: Requests` or pass `--engine requests`"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_names_a_setting_and_each_engine_refuses_some() {
        assert!(UNMODELLED.iter().all(|u| !u.what.is_empty()));
        // The request engine models every setting of the flow engine; the flow engine has
        // no queueing below saturation, so the request engine's queueing settings are its own.
        assert!(UNMODELLED.iter().all(|u| u.engine == Engine::Flow));
        assert!(!UNMODELLED.is_empty());
        assert!(hint("x", Engine::Flow).contains("`--engine requests`"));
        assert!(hint("x", Engine::Requests).contains("`--engine flow`"));
    }
}
