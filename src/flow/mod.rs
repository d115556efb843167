//! The flow-level trial model: traffic as request rates on dependency edges, piecewise constant
//! between events, integrated exactly.
//!
//! Between two events nothing changes but time, so every accumulated quantity (offered and
//! successful user requests, per-service state durations) is `rate * elapsed`, exact to float
//! rounding, with no fixed tick. At every instant where something changed (a fault starts or
//! ends, a plan restores a component, traffic changes), the flow solution is recomputed once,
//! after all events of that instant, in two passes over [`crate::model::Topology::order`]:
//! load flows from callers to callees (a service accepts `min(offered, capacity)`, and only
//! accepted requests call further), success flows back from callees to callers (a request
//! succeeds when its service accepted it and every hard call succeeded).
//!
//! Invariants: identical inputs give identical floats (no reduction depends on anything but
//! topology order); the model draws randomness only from streams keyed by the trial, never by
//! the plan, except plan-specific draws on the plan's own stream.

pub mod trace;

use rand::RngExt;
use rand_distr::StandardNormal;

use crate::engine::{self, EventQueue, Process, SimTime};
use crate::fault::FaultWindow;
use crate::metrics::{Metric, TrialRow};
use crate::model::{DepKind, FailureKind, Plan, Scenario, Strategy};
use crate::rng::{ChaCha8Rng, Purpose, stream};
pub use trace::{TraceEvent, TraceRecord};

/// Rates below this are treated as zero when judging "degraded".
const EPS: f64 = 1e-9;

/// Probability that a request's calls on an edge all succeed, when each call succeeds with
/// probability `p` and a request makes `calls` calls on average: `floor(calls)` calls always,
/// plus one more for a `calls - floor(calls)` share of requests. So `calls: 0.05` means 5% of
/// requests depend on the callee, and `calls: 3.0` means every request needs three successes.
pub fn call_success(p: f64, calls: f64) -> f64 {
    let whole = calls.floor();
    let frac = calls - whole;
    p.powi(whole as i32) * (1.0 - frac * (1.0 - p))
}

/// Events of the flow model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    /// Fault window `i` starts.
    FaultStart(u32),
    /// Fault window `i` clears.
    FaultEnd(u32),
    /// Traffic entry `i` changes rate (hour boundary or noise redraw).
    Traffic(u32),
}

/// Health of a service in the current flow solution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Serving everything it is offered, all dependencies healthy.
    Up,
    /// Running but failing or shedding part of its requests, or a dependency is failing.
    Degraded,
    /// Down (crashed, or in a failed zone).
    Down,
}

impl Health {
    /// Name used in traces.
    pub fn name(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Degraded => "degraded",
            Health::Down => "down",
        }
    }
}

/// One trial of one plan.
struct FlowTrial<'a> {
    s: &'a Scenario,
    windows: &'a [FaultWindow],
    // Fault state.
    down: Vec<u32>,
    zone_down: Vec<Vec<u32>>,
    placement_factor: Vec<f64>,
    capacity_factor: Vec<f64>,
    partitioned: Vec<u32>,
    active_faults: u32,
    // Traffic state.
    entry_rate: Vec<f64>,
    noise_factor: Vec<f64>,
    noise_rng: Vec<ChaCha8Rng>,
    external: Vec<f64>,
    // Flow solution.
    dirty: bool,
    offered: Vec<f64>,
    accepted: Vec<f64>,
    ok: Vec<f64>,
    health: Vec<Health>,
    user_rate: f64,
    user_ok_rate: f64,
    // Accumulators.
    user_offered_total: f64,
    user_ok_total: f64,
    ever_bad: Vec<bool>,
    first_failure: Option<SimTime>,
    technical_recovery: Option<SimTime>,
    trace: Option<&'a mut Vec<TraceRecord>>,
}

/// Runs one trial of `plan` against the fault windows drawn for it, optionally recording the
/// event trace. Returns the trial's summary row.
pub fn run_trial(
    s: &Scenario,
    plan: &Plan,
    windows: &[FaultWindow],
    seed: u64,
    trial: u64,
    trace: Option<&mut Vec<TraceRecord>>,
) -> TrialRow {
    debug_assert!(matches!(plan.strategy, Strategy::AllAtOnce));
    let n = s.topology.services.len();
    let mut t = FlowTrial {
        s,
        windows,
        down: vec![0; n],
        zone_down: s
            .topology
            .services
            .iter()
            .map(|svc| vec![0; svc.zones.len()])
            .collect(),
        placement_factor: vec![1.0; n],
        capacity_factor: vec![1.0; n],
        partitioned: vec![0; s.topology.deps.len()],
        active_faults: 0,
        entry_rate: vec![0.0; s.traffic.len()],
        noise_factor: vec![1.0; s.traffic.len()],
        noise_rng: s
            .traffic
            .iter()
            .map(|tr| {
                stream(
                    seed,
                    trial,
                    Purpose::Traffic(&s.topology.services[tr.entry].name),
                )
            })
            .collect(),
        external: vec![0.0; n],
        dirty: true,
        offered: vec![0.0; n],
        accepted: vec![0.0; n],
        ok: vec![1.0; n],
        health: vec![Health::Up; n],
        user_rate: 0.0,
        user_ok_rate: 0.0,
        user_offered_total: 0.0,
        user_ok_total: 0.0,
        ever_bad: vec![false; n],
        first_failure: None,
        technical_recovery: None,
        trace,
    };
    t.record(
        SimTime::ZERO,
        TraceEvent::TrialStart {
            plan: plan.name.clone(),
            trial,
            seed,
        },
    );
    let mut q = EventQueue::with_capacity(2 * windows.len() + s.traffic.len() + 4);
    for i in 0..s.traffic.len() {
        q.push(SimTime::ZERO, Ev::Traffic(i as u32));
    }
    for (i, w) in windows.iter().enumerate() {
        q.push(w.start, Ev::FaultStart(i as u32));
        q.push(w.end, Ev::FaultEnd(i as u32));
    }
    engine::run(&mut t, &mut q, s.horizon);
    t.finish()
}

impl FlowTrial<'_> {
    fn record(&mut self, at: SimTime, event: TraceEvent) {
        if let Some(tr) = self.trace.as_deref_mut() {
            tr.push(TraceRecord {
                t_s: at.as_secs_f64(),
                event,
            });
        }
    }

    fn service_name(&self, id: usize) -> String {
        self.s.topology.services[id].name.clone()
    }

    /// Applies (`on`) or lifts the effect of fault window `w`.
    fn apply_fault(&mut self, w: usize, on: bool) {
        let f = &self.s.failures[self.windows[w].failure];
        let add = |c: &mut u32| {
            if on {
                *c += 1
            } else {
                *c = c.saturating_sub(1)
            }
        };
        match &f.kind {
            FailureKind::Crash(t) => add(&mut self.down[*t]),
            FailureKind::Zone {
                zone,
                placed,
                shared,
            } => {
                for &t in shared {
                    add(&mut self.down[t]);
                }
                for &t in placed {
                    let zones = &self.s.topology.services[t].zones;
                    if let Some(z) = zones.iter().position(|x| x == zone) {
                        add(&mut self.zone_down[t][z]);
                        let up = self.zone_down[t].iter().filter(|c| **c == 0).count();
                        self.placement_factor[t] = up as f64 / zones.len() as f64;
                    }
                }
            }
            // Capacity factors are recomputed from all active windows: see `recompute_partials`.
            FailureKind::Partial { .. } => {}
            FailureKind::Partition { from, to } => {
                if let Some(e) = self.s.topology.out_edges[*from]
                    .iter()
                    .copied()
                    .find(|&e| self.s.topology.deps[e].to == *to)
                {
                    add(&mut self.partitioned[e]);
                }
            }
            FailureKind::Latency { .. } | FailureKind::KeyRotation(_) => {}
        }
        add(&mut self.active_faults);
    }

    fn after_fault_change(&mut self, w: usize, now: SimTime) {
        if matches!(
            self.s.failures[self.windows[w].failure].kind,
            FailureKind::Partial { .. }
        ) {
            self.recompute_partials(now);
        }
        self.dirty = true;
    }

    /// Capacity factors from the currently active partial faults (product over overlaps).
    fn recompute_partials(&mut self, now: SimTime) {
        self.capacity_factor.iter_mut().for_each(|c| *c = 1.0);
        for w in self.windows {
            if w.start <= now
                && now < w.end
                && let FailureKind::Partial { target, capacity } = self.s.failures[w.failure].kind
            {
                self.capacity_factor[target] *= capacity;
            }
        }
    }

    fn affected(&self, w: usize) -> Vec<String> {
        match &self.s.failures[self.windows[w].failure].kind {
            FailureKind::Crash(t) | FailureKind::KeyRotation(t) => vec![self.service_name(*t)],
            FailureKind::Partial { target, .. } | FailureKind::Latency { target, .. } => {
                vec![self.service_name(*target)]
            }
            FailureKind::Zone { placed, shared, .. } => {
                let mut ids: Vec<usize> = placed.iter().chain(shared).copied().collect();
                ids.sort_unstable();
                ids.dedup();
                ids.into_iter().map(|t| self.service_name(t)).collect()
            }
            FailureKind::Partition { from, to } => {
                vec![self.service_name(*from), self.service_name(*to)]
            }
        }
    }

    fn update_traffic(&mut self, i: usize, now: SimTime, q: &mut EventQueue<Ev>) {
        let tr = &self.s.traffic[i];
        const HOUR: u64 = 3_600 * engine::time::NANOS_PER_SEC;
        if let Some(noise) = tr.noise
            && now.0 % noise.every.0 == 0
        {
            let sigma2 = (1.0 + noise.cv * noise.cv).ln();
            let z: f64 = self.noise_rng[i].sample(StandardNormal);
            self.noise_factor[i] = (sigma2.sqrt() * z - sigma2 / 2.0).exp();
        }
        let profile = if tr.hourly.is_empty() {
            1.0
        } else {
            let hour = (tr.start_hour as u64 + now.0 / HOUR) % 24;
            tr.hourly[hour as usize]
        };
        let rate = tr.rate * profile * self.noise_factor[i];
        if rate != self.entry_rate[i] {
            self.entry_rate[i] = rate;
            self.dirty = true;
            let entry = self.service_name(tr.entry);
            self.record(
                now,
                TraceEvent::TrafficChange {
                    entry,
                    rate_rps: rate,
                },
            );
        }
        let mut next = SimTime::NEVER;
        if !tr.hourly.is_empty() {
            next = next.min(SimTime((now.0 / HOUR + 1) * HOUR));
        }
        if let Some(noise) = tr.noise {
            next = next.min(SimTime((now.0 / noise.every.0 + 1) * noise.every.0));
        }
        if next < self.s.horizon {
            q.push(next, Ev::Traffic(i as u32));
        }
    }

    /// Down: crashed, or every zone it is placed in has failed.
    fn is_down(&self, s: usize) -> bool {
        self.down[s] > 0 || self.placement_factor[s] == 0.0
    }

    /// Recomputes the flow solution for the current state.
    fn solve(&mut self, now: SimTime) {
        let topo = &self.s.topology;
        self.external.iter_mut().for_each(|x| *x = 0.0);
        for (i, tr) in self.s.traffic.iter().enumerate() {
            self.external[tr.entry] += self.entry_rate[i];
        }
        // Load: callers before callees. Lagged edges read the previous solution.
        for &s in &topo.order {
            let mut offered = self.external[s];
            for &e in &topo.in_edges[s] {
                let d = &topo.deps[e];
                if self.partitioned[e] == 0 {
                    offered += self.accepted[d.from] * d.calls;
                }
            }
            let capacity = if self.is_down(s) {
                0.0
            } else {
                topo.services[s].capacity * self.capacity_factor[s] * self.placement_factor[s]
            };
            self.offered[s] = offered;
            self.accepted[s] = offered.min(capacity);
        }
        // Success: callees before callers.
        for &s in topo.order.iter().rev() {
            let down = self.is_down(s);
            let accept_ratio = if self.offered[s] > EPS {
                self.accepted[s] / self.offered[s]
            } else if down {
                0.0
            } else {
                1.0
            };
            let mut ok = accept_ratio;
            let mut dep_failing = false;
            for &e in &topo.out_edges[s] {
                let d = &topo.deps[e];
                let edge_ok = if self.partitioned[e] > 0 {
                    0.0
                } else {
                    self.ok[d.to]
                };
                if edge_ok < 1.0 - EPS {
                    dep_failing = true;
                }
                if d.kind == DepKind::Hard {
                    ok *= call_success(edge_ok, d.calls);
                }
            }
            self.ok[s] = ok;
            let health = if down {
                Health::Down
            } else if accept_ratio < 1.0 - EPS || dep_failing {
                Health::Degraded
            } else {
                Health::Up
            };
            if health != Health::Up {
                self.ever_bad[s] = true;
            }
            if health != self.health[s] {
                self.health[s] = health;
                if self.trace.is_some() {
                    let event = TraceEvent::ServiceState {
                        service: self.service_name(s),
                        state: health.name(),
                        offered_rps: self.offered[s],
                        accepted_rps: self.accepted[s],
                    };
                    self.record(now, event);
                }
            }
        }
        self.user_rate = 0.0;
        self.user_ok_rate = 0.0;
        for (i, tr) in self.s.traffic.iter().enumerate() {
            self.user_rate += self.entry_rate[i];
            self.user_ok_rate += self.entry_rate[i] * self.ok[tr.entry];
        }
        self.dirty = false;
    }

    fn finish(mut self) -> TrialRow {
        let horizon_s = self.s.horizon.as_secs_f64();
        let mut values = [0.0; 16];
        let mut never_restored = false;
        let technical = match (self.first_failure, self.technical_recovery) {
            (None, _) => 0.0,
            (Some(f), Some(r)) => r.since(f).as_secs_f64(),
            (Some(_), None) => {
                never_restored = true;
                horizon_s
            }
        };
        values[Metric::TechnicalMttr.index()] = technical;
        let availability = if self.user_offered_total > 0.0 {
            (self.user_ok_total / self.user_offered_total).clamp(0.0, 1.0)
        } else {
            1.0
        };
        values[Metric::Availability.index()] = availability;
        values[Metric::BlastRadiusRequests.index()] = 1.0 - availability;
        let n = self.ever_bad.len().max(1);
        values[Metric::BlastRadiusServices.index()] =
            self.ever_bad.iter().filter(|b| **b).count() as f64 / n as f64;
        let event = TraceEvent::TrialEnd {
            technical_mttr_s: technical,
            availability,
            never_restored,
        };
        self.record(self.s.horizon, event);
        TrialRow {
            values,
            never_restored,
        }
    }
}

impl Process for FlowTrial<'_> {
    type Event = Ev;

    fn advance(&mut self, from: SimTime, to: SimTime) {
        if self.dirty {
            self.solve(from);
        }
        let dt = to.since(from).as_secs_f64();
        self.user_offered_total += self.user_rate * dt;
        self.user_ok_total += self.user_ok_rate * dt;
    }

    fn handle(&mut self, now: SimTime, ev: Ev, q: &mut EventQueue<Ev>) {
        match ev {
            Ev::Traffic(i) => self.update_traffic(i as usize, now, q),
            Ev::FaultStart(w) => {
                let w = w as usize;
                self.first_failure.get_or_insert(now);
                self.apply_fault(w, true);
                self.after_fault_change(w, now);
                self.dirty = true;
                let event = TraceEvent::FaultStart {
                    failure: self.s.failures[self.windows[w].failure].name.clone(),
                    services: self.affected(w),
                    until_s: self.windows[w].end.as_secs_f64(),
                };
                self.record(now, event);
            }
            Ev::FaultEnd(w) => {
                // All-at-once: the component is restored the instant its fault clears.
                let w = w as usize;
                self.apply_fault(w, false);
                self.after_fault_change(w, now);
                self.dirty = true;
                let event = TraceEvent::Restored {
                    failure: self.s.failures[self.windows[w].failure].name.clone(),
                    services: self.affected(w),
                };
                self.record(now, event);
                if self.active_faults == 0 && self.technical_recovery.is_none() {
                    self.technical_recovery = Some(now);
                    let mttr_s = self
                        .first_failure
                        .map_or(0.0, |f| now.since(f).as_secs_f64());
                    self.record(now, TraceEvent::TechnicalRecovery { mttr_s });
                }
            }
        }
    }
}
