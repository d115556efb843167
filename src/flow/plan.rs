//! The flow engine's side of recovery plans: what the plan controller's commands do to flows
//! and adaptive state, and the answers to its queries. The controller itself (programs,
//! stages, steps, layers, ramps, actions) is [`crate::sim::plan`]; [`FlowTrial`] owns its
//! [`Controller`] state and implements [`PlanHost`] here.
//!
//! Effects kept here, behind the trait: restoring a service (failback from a backup and the
//! loss of its queue, registration unless a microreboot kept it, a restart's cold cache, a
//! checkpoint restart's replay of lost work), a failover's backup capacity, a ramp step's
//! release of deferred demand (never past 70% of the callee's capacity, [`crate::sim::release::HEADROOM`]) and of
//! extended cache entries, the release of held retries and caches, identity pre-warming,
//! state reconciliation, registrations of held services, autoscaler re-targeting, and the
//! processes the controller waits for (replication lag, registrations, pools).

use super::{BreakerState, EPS, FlowTrial, TraceEvent};
use crate::engine::{SimDuration, SimTime};
use crate::model::{ActionKind, Role};
use crate::sim::plan::{self, Controller, PlanHost, Process};

impl<'a> PlanHost<'a> for FlowTrial<'a> {
    fn ctl(&self) -> &Controller<'a> {
        &self.ctl
    }

    fn ctl_mut(&mut self) -> &mut Controller<'a> {
        &mut self.ctl
    }

    fn active_faults(&self) -> u32 {
        self.active_faults
    }

    fn fault_down(&self, s: usize) -> bool {
        FlowTrial::fault_down(self, s)
    }

    fn has_backup(&self, s: usize) -> bool {
        self.backup[s].is_some()
    }

    fn done(&self, p: Process) -> bool {
        match p {
            Process::Lag => self.lag_closed(),
            Process::Registrations => self.registrations_done(),
            Process::Pools => self.pools_at_size(),
        }
    }

    fn done_at(&self, p: Process, now: SimTime) -> Option<SimTime> {
        let mut at = now;
        let mut known = true;
        let mut by = |t: Option<SimTime>| match t {
            Some(t) => at = at.max(t),
            None => known = false,
        };
        match p {
            Process::Lag => {
                for &s in &self.role_list {
                    if let Some(Role::Database { lag_close_rate, .. }) = self.s.topology.services[s]
                        .roles
                        .iter()
                        .find(|r| matches!(r, Role::Database { .. }))
                        && self.roles[s].lag > EPS
                    {
                        by((!self.lag_grows(s)).then(|| {
                            now.plus(SimDuration::from_secs_f64(
                                self.roles[s].lag / lag_close_rate,
                            ))
                        }));
                    }
                }
            }
            Process::Registrations => {
                for &s in &self.discovery_list {
                    if !self.registered[s] {
                        by(self.register_at[s]);
                    }
                }
            }
            Process::Pools => {
                for &s in &self.react_list {
                    if let Some((t, target)) = self.scale_at[s]
                        && target > self.instances[s]
                    {
                        by(Some(t));
                    }
                }
            }
        }
        known.then_some(at)
    }

    fn ramp_steps(&self) -> u32 {
        super::ramp_steps()
    }

    fn restore(&mut self, s: usize, action: Option<&'a ActionKind>, now: SimTime) {
        if self.backup[s].take().is_some() {
            self.refresh_capacity(s);
            // Failback: the primary takes over, already registered under the backup's name;
            // the backup's queue of requests is not handed over: what it still held is lost
            // (counted as dropped).
            self.acc.dropped[s] += self.backlog[s];
            self.backlog[s] = 0.0;
        } else {
            let kind = action;
            if matches!(kind, Some(ActionKind::Microreboot(_))) {
                // Rebooted inside its registration.
                self.registered[s] = true;
                self.register_at[s] = None;
                self.register_waiting[s] = false;
            } else {
                // Unless it registered while held (dependency convergence), it registers now.
                self.start_registration(s, now);
            }
            match kind {
                Some(ActionKind::Restart(_)) => {
                    // A full restart loses in-memory state: a cache comes back cold.
                    if let Some((_, _, ttl, _, _)) = self.cache_of(s) {
                        let r = &mut self.roles[s];
                        r.cache_cold_until = Some(now.as_secs_f64() + ttl);
                        self.acc.ledger_refresh_forgotten += r.refresh_left + r.expired;
                        r.refresh_left = 0.0;
                        r.expired = 0.0;
                        r.refresh_rate = 0.0;
                        r.refresh_share = 0.0;
                        r.refresh_step_at = None;
                    }
                }
                Some(ActionKind::CheckpointRestart {
                    checkpoint_interval,
                    ..
                }) => {
                    // Work since the last checkpoint before the failure is done again, at the
                    // rate it was done then.
                    let (at, rate) = self.fail_start[s];
                    let since = SimDuration(at.0 % checkpoint_interval.0.max(1));
                    if rate > EPS && since.0 > 0 {
                        self.acc.ledger_replay_planned += rate * since.as_secs_f64();
                        self.replay[s] = Some((rate, now.plus(since)));
                    }
                }
                _ => {}
            }
        }
        self.dirty = true;
        if self.trace.is_some() {
            let services = vec![self.service_name(s)];
            self.record(now, TraceEvent::Restored { services });
        }
    }

    fn switch_to_backup(&mut self, s: usize, capacity: f64) {
        self.backup[s] = Some(capacity);
        self.refresh_capacity(s);
        // The backup is registered under the service's name.
        self.registered[s] = true;
        self.register_at[s] = None;
        self.register_waiting[s] = false;
        self.dirty = true;
    }

    /// Checkpoint replays ending.
    fn action_effects_due(&mut self, now: SimTime) {
        for s in 0..self.replay.len() {
            if let Some((_, until)) = self.replay[s]
                && until <= now
            {
                self.replay[s] = None;
                self.dirty = true;
            }
        }
    }

    fn ramp_release(&mut self, share: f64, len: f64, caches: bool) {
        for k in 0..self.breaker_edges.len() {
            let e = self.breaker_edges[k];
            if self.breaker[e] == BreakerState::Closed && self.deferred[e] > EPS {
                self.release_rate[e] = self.within_headroom(e, self.deferred[e] * share / len);
            }
        }
        if caches {
            for s in 0..self.roles.len() {
                let x = &mut self.roles[s];
                if x.refresh_left > EPS {
                    // Paced by the ramp: this step's share of the extended entries is
                    // invalidated over the step.
                    x.refresh_rate = x.refresh_left * share / len;
                    x.refresh_step_at = None;
                }
            }
        }
    }

    fn release_retries(&mut self, now: SimTime) {
        for k in 0..self.breaker_edges.len() {
            let e = self.breaker_edges[k];
            if self.breaker[e] == BreakerState::Closed
                && let Some(b) = self.s.topology.deps[e].breaker.clone()
            {
                self.start_release(e, &b, now);
            }
        }
    }

    fn release_caches(&mut self, now: SimTime) {
        for s in 0..self.roles.len() {
            let x = &self.roles[s];
            if x.refresh_left > EPS && x.refresh_rate == 0.0 {
                self.start_refresh(s, now);
            }
        }
    }

    /// Keys and tokens are validated before traffic returns, so restored keys will match and
    /// mismatches already seen are fixed.
    fn prewarm(&mut self) {
        for r in &mut self.roles {
            r.mismatch = false;
            r.token_share = 0.0;
            r.outage_share = 0.0;
            r.step_at = None;
        }
    }

    /// Queue offsets aligned: the outage backlog is no longer replayed out of order.
    fn reconcile(&mut self) {
        for r in &mut self.roles {
            r.needs_reconcile = false;
            r.outage_left = 0.0;
        }
    }

    /// Held services start registering now (they run, out of traffic), so that they are
    /// routable the moment they are released; registrations in progress go on.
    fn reregister(&mut self, now: SimTime) {
        for k in 0..self.discovery_list.len() {
            let s = self.discovery_list[k];
            if self.ctl.held[s] {
                self.start_registration(s, now);
            }
        }
    }

    /// Autoscalers are re-targeted to the pre-outage pool (the missing instances come up
    /// after the scale-up delay).
    fn scale_up(&mut self, now: SimTime) {
        for s in 0..self.instances.len() {
            let svc = &self.s.topology.services[s];
            let Some(auto) = &svc.autoscale else {
                continue;
            };
            if self.instances[s] < svc.instances {
                let at = match self.scale_at[s] {
                    // A scale-up already under way keeps its time.
                    Some((at, target)) if target > self.instances[s] => at,
                    _ => now.plus(auto.scale_up_delay),
                };
                self.scale_at[s] = Some((at, svc.instances));
            } else {
                self.scale_at[s] = None;
            }
        }
    }

    fn technically_recovered(&mut self, now: SimTime) {
        if self.technical_recovery.is_none()
            && let Some(f) = self.first_failure
        {
            self.technical_recovery = Some(now);
            let mttr_s = now.since(f).as_secs_f64();
            self.record(now, TraceEvent::TechnicalRecovery { mttr_s });
        }
    }

    fn changed(&mut self) {
        self.dirty = true;
    }

    fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    fn record(&mut self, now: SimTime, event: TraceEvent) {
        FlowTrial::record(self, now, event);
    }
}

impl FlowTrial<'_> {
    /// Timers of the plan due at `now` (the controller's, and checkpoint replays ending with
    /// its actions' timers).
    pub(super) fn plan_timers(&mut self, now: SimTime) {
        plan::timers(self, now);
    }

    /// The earliest plan timer after `now`: the controller's, and checkpoint replays ending.
    pub(super) fn next_plan_timer(&self) -> Option<SimTime> {
        let mut next = self.ctl.next_timer();
        if self.plan.actions.is_empty() {
            // Without actions there are no replays to wait for.
            return next;
        }
        for x in &self.replay {
            if let Some((_, t)) = *x {
                next = Some(next.map_or(t, |n: SimTime| n.min(t)));
            }
        }
        next
    }

    /// A controlled release never pushes the callee of edge `e` past 70% of its capacity
    /// (but always makes progress: at least 5% of that capacity).
    pub(super) fn within_headroom(&self, e: usize, want: f64) -> f64 {
        let to = self.s.topology.deps[e].to;
        let other = (self.sf[to].arrivals - self.release_rate[e]).max(0.0);
        crate::sim::release::within_headroom(want, self.capacity(to), other)
    }

    /// Seconds over which cache `s` refreshes extended entries itself, at an even rate, when
    /// its origin returns: its invalidation window or the plan's, the longer; 0 when neither
    /// is set (the entries then expire together).
    pub(super) fn cache_spread_secs(&self, s: usize) -> f64 {
        self.cache_window[s].max(self.ctl.cache_spread.unwrap_or(0.0))
    }

    /// Service `s` (running again) starts registering with discovery, unless it is
    /// registered or registering already.
    pub(super) fn start_registration(&mut self, s: usize, now: SimTime) {
        if !self.registered[s] && self.register_at[s].is_none() && !self.register_waiting[s] {
            self.on_up(s, now);
        }
    }

    fn lag_closed(&self) -> bool {
        self.role_list
            .iter()
            .all(|&s| self.db_replica[s].is_none() || self.roles[s].lag <= EPS)
    }

    fn registrations_done(&self) -> bool {
        self.discovery_list.iter().all(|&s| self.registered[s])
    }

    /// Every autoscaled pool at its configured size.
    fn pools_at_size(&self) -> bool {
        self.react_list.iter().all(|&s| {
            let svc = &self.s.topology.services[s];
            svc.autoscale.is_none() || self.instances[s] >= svc.instances
        })
    }
}
