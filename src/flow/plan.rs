//! Recovery plans inside a trial: when failed components come back, and what is done first.
//!
//! `AllAtOnce` restores a component the instant its fault clears and releases every adaptive
//! behaviour with it. A `Custom` plan holds cleared components down until its program says
//! otherwise: the program starts when no fault is active any more, runs its steps in order
//! (a `Gate` waits a drawn duration, on the plan's own random stream), and restores whatever is
//! still held when it ends. Steps the engine does not run yet are refused before a run starts
//! ([`crate::runner::unsupported`]).

use super::{FlowTrial, TraceEvent};
use crate::engine::SimTime;
use crate::fault;
use crate::model::{FailureKind, Step, Strategy};

/// Where a plan's program is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Program {
    /// Index of the next step.
    pub next: usize,
    /// A gate holds the program until then.
    pub until: Option<SimTime>,
}

impl FlowTrial<'_> {
    fn is_key_rotation(&self, w: usize) -> bool {
        matches!(
            self.s.failures[self.windows[w].failure].kind,
            FailureKind::KeyRotation(_)
        )
    }

    /// A fault window starts: a running program is abandoned (the incident is not over).
    pub(super) fn plan_fault_started(&mut self, w: usize) {
        if !self.is_key_rotation(w) {
            self.faulting += 1;
            self.program = None;
        }
    }

    /// A fault window clears: restore now (all-at-once) or hold it for the program.
    pub(super) fn plan_fault_cleared(&mut self, w: usize, now: SimTime) {
        if self.is_key_rotation(w) {
            return;
        }
        self.faulting = self.faulting.saturating_sub(1);
        match self.plan.strategy {
            Strategy::AllAtOnce => self.restore_window(w, now),
            _ => {
                self.held.push(w);
                if self.faulting == 0 {
                    self.prewarmed = false;
                    self.program = Some(Program {
                        next: 0,
                        until: None,
                    });
                    self.run_program(now);
                }
            }
        }
    }

    /// Restores the component(s) of window `w`.
    pub(super) fn restore_window(&mut self, w: usize, now: SimTime) {
        self.apply_fault(w, false, now);
        if self.trace.is_some() {
            let event = TraceEvent::Restored {
                failure: self.s.failures[self.windows[w].failure].name.clone(),
                services: self.affected(w),
            };
            self.record(now, event);
        }
        if self.active_faults == 0 && self.technical_recovery.is_none() {
            self.technical_recovery = Some(now);
            let mttr_s = self
                .first_failure
                .map_or(0.0, |f| now.since(f).as_secs_f64());
            self.record(now, TraceEvent::TechnicalRecovery { mttr_s });
        }
    }

    fn restore_held(&mut self, now: SimTime) {
        let held = std::mem::take(&mut self.held);
        for w in held {
            self.restore_window(w, now);
        }
    }

    /// Runs the program from its current step until a gate or the end.
    pub(super) fn run_program(&mut self, now: SimTime) {
        let Strategy::Custom(steps) = &self.plan.strategy else {
            self.restore_held(now);
            self.program = None;
            return;
        };
        while let Some(p) = self.program {
            if let Some(until) = p.until {
                if until > now {
                    return;
                }
                self.program = Some(Program {
                    next: p.next,
                    until: None,
                });
                continue;
            }
            let Some(step) = steps.get(p.next) else {
                // The end: whatever is still held comes back now.
                self.restore_held(now);
                self.program = None;
                return;
            };
            let mut until = None;
            let name = match step {
                Step::Gate(d) => {
                    until = Some(now.plus(fault::sample(d, &mut self.plan_rng)));
                    "gate"
                }
                Step::PrewarmIdentity => {
                    // Keys and tokens are validated before traffic returns: restored keys will
                    // match, and mismatches already seen are fixed.
                    self.prewarmed = true;
                    for r in &mut self.roles {
                        r.mismatch = false;
                        r.token_share = 0.0;
                        r.outage_share = 0.0;
                        r.step_at = None;
                    }
                    "prewarm_identity"
                }
                Step::RestoreAll => {
                    self.restore_held(now);
                    "restore_all"
                }
                // Refused before the run by `runner::unsupported`.
                _ => "unsupported",
            };
            self.dirty = true;
            if self.trace.is_some() {
                let plan = self.plan.name.clone();
                self.record(
                    now,
                    TraceEvent::PlanStep {
                        plan,
                        step: name,
                        index: p.next,
                    },
                );
            }
            self.program = Some(Program {
                next: p.next + 1,
                until,
            });
        }
    }
}
