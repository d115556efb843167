//! The request engine's side of recovery actions (failover backups, failback, the replay of
//! a checkpoint restart), of discovery registration and of autoscaling, with the meaning
//! they have in the flow engine ([`crate::flow`]'s `plan.rs`, `dynamics.rs`), per request.
//! The hooks in the event loop (`trial.rs`) are few: a service going down or coming up
//! ([`RequestTrial::on_down`], [`RequestTrial::on_up`]), three events (`Replay`, `Register`,
//! `Scale`), the end of a measuring window (completion marks, the autoscalers' reaction), and
//! the plan host's commands.
//!
//! - **Failover**: `switch_time` after the fault starts (timed by the controller), a backup
//!   of `backup_capacity` requests/s serves in place of the service: the service is up, with
//!   its configured number of servers each busy for a mean `instances / backup_capacity`
//!   seconds per request (so its capacity is the backup's), whatever its own faults. When the
//!   primary is restored (failback) the backup's queue is not handed over: the requests
//!   still queued at it fail (the flow engine counts them dropped); the requests in service
//!   finish.
//! - **Microreboot / Restart / Rollback**: the controller times them; the component is down
//!   while the action runs. A restart loses in-memory state (a cache would come back cold:
//!   [`RequestTrial::restart_effects`] is the hook, nothing to do while caches are refused).
//! - **Checkpoint restart**: the work done since the last checkpoint before the failure
//!   (`failure start mod checkpoint_interval` seconds of it) is done again when the service is
//!   restored, at the rate the service completed requests before the failure: an internal
//!   Poisson stream of requests at that rate arrives at the service for that many seconds.
//!   They are real requests (they queue, occupy servers and call the service's dependencies,
//!   as the flow engine's replay adds external load that flows on), but they are not user
//!   requests: their outcome is counted at the services they reach, never as user traffic.
//!   The rate before the failure is the service's completions over the trailing one to one
//!   and a half measuring windows (`storm_window`) before it went down.
//! - **Discovery**: a service with a `Discovery` role leaves discovery when it goes down; it
//!   registers `register_time` (drawn from its own stream) after it is restored, unless a
//!   microreboot kept its registration or a backup (registered under its name) served; a
//!   registration due while its registry is down completes the moment the registry is up.
//!   While a service is up but not registered, its in-edges are cut: an attempt fails at once
//!   (as on a partition) and counts as a routing failure (`routing_failures`); the service is
//!   degraded. `Reregister` starts the held services' registrations; the `Registrations`
//!   process is complete when every discovery service is registered.
//! - **Autoscaling**: see [`Pools`]; `ScaleUp` re-targets pools to their configured size and
//!   the `Pools` process is complete when every pool is at least that size.

use rand_distr::{Distribution, Exp1};

use super::trial::{Ev, INTERNAL, RequestTrial};
use crate::engine::{EventQueue, SimDuration, SimTime};
use crate::fault;
use crate::model::{ActionKind, Dist, Role, Scenario};
use crate::rng::{ChaCha8Rng, Purpose, stream};
use crate::sim::trace::TraceEvent;

/// Per service, the state recovery actions give it.
pub(super) struct Recovery {
    /// A failover backup serving in place of the service: its capacity (requests/s).
    pub(super) backup: Vec<Option<f64>>,
    /// A checkpoint replay: its rate (requests/s) and end (ns).
    pub(super) replay: Vec<Option<(f64, u64)>>,
    replay_gen: Vec<u32>,
    rng_replay: Vec<Option<ChaCha8Rng>>,
    /// When the service last went down and the rate it completed requests then.
    fail_start: Vec<(u64, f64)>,
    /// Requests whose own work completed, in all (counted only with a checkpoint action).
    pub(super) completed: Vec<u64>,
    /// Completions at the start of the previous and the current window: (time, count).
    mark_prev: Vec<(u64, u64)>,
    mark_cur: Vec<(u64, u64)>,
    /// Whether a plan action needs completion rates (a checkpoint restart).
    pub(super) counting: bool,
    /// Services with a `Discovery` role (the only ones that can be unregistered).
    pub(super) discovery_list: Vec<usize>,
    /// Per service: its registry (if modelled) and time to register (discovery services).
    discovery: Vec<Option<(Option<usize>, Dist)>>,
    /// Per service: registered with discovery (routable).
    pub(super) registered: Vec<bool>,
    /// Per service: when its registration in progress completes (ns), and its generation.
    register_at: Vec<Option<u64>>,
    register_gen: Vec<u32>,
    /// Registration is due but the registry is down: it completes when the registry is back.
    register_waiting: Vec<bool>,
    register_rng: Vec<Option<ChaCha8Rng>>,
    /// Attempts routed to a service that was up but not registered.
    pub(super) routing_failures: u64,
}

impl Recovery {
    pub(super) fn new(s: &Scenario, counting: bool, seed: u64, trial: u64) -> Self {
        let n = s.topology.services.len();
        let discovery: Vec<Option<(Option<usize>, Dist)>> = s
            .topology
            .services
            .iter()
            .map(|sv| {
                sv.roles.iter().find_map(|r| match r {
                    Role::Discovery {
                        registry,
                        register_time,
                    } => Some((*registry, *register_time)),
                    _ => None,
                })
            })
            .collect();
        Recovery {
            discovery_list: (0..n).filter(|&i| discovery[i].is_some()).collect(),
            register_rng: (0..n)
                .map(|i| {
                    discovery[i].as_ref().map(|_| {
                        let label = format!("register/{}", s.topology.services[i].name);
                        stream(seed, trial, Purpose::Requests(&label))
                    })
                })
                .collect(),
            discovery,
            registered: vec![true; n],
            register_at: vec![None; n],
            register_gen: vec![0; n],
            register_waiting: vec![false; n],
            routing_failures: 0,
            backup: vec![None; n],
            replay: vec![None; n],
            replay_gen: vec![0; n],
            rng_replay: (0..n).map(|_| None).collect(),
            fail_start: vec![(0, 0.0); n],
            completed: vec![0; n],
            mark_prev: vec![(0, 0); n],
            mark_cur: vec![(0, 0); n],
            counting,
        }
    }

    /// A measuring window starts at `at`: its completion marks move on.
    pub(super) fn window_started(&mut self, at: u64) {
        if !self.counting {
            return;
        }
        for s in 0..self.completed.len() {
            self.mark_prev[s] = self.mark_cur[s];
            self.mark_cur[s] = (at, self.completed[s]);
        }
    }

    /// The rate service `s` completed requests at, just before `now`: over the current
    /// window if it is at least half a window long, else from the previous window's start.
    fn completion_rate(&self, s: usize, now: u64, win_len: u64) -> f64 {
        let (t, c) = if now.saturating_sub(self.mark_cur[s].0) >= win_len / 2 {
            self.mark_cur[s]
        } else {
            self.mark_prev[s]
        };
        let dt = now.saturating_sub(t) as f64 * 1e-9;
        if dt <= 0.0 {
            0.0
        } else {
            self.completed[s].saturating_sub(c) as f64 / dt
        }
    }
}

impl RequestTrial<'_> {
    /// Service `s` went down (by a fault, while not already down): when, and the rate it
    /// completed requests at (a checkpoint restart replays that).
    pub(super) fn on_down(&mut self, s: usize, now: u64) {
        if self.recov.counting {
            let rate = self.recov.completion_rate(s, now, self.win_len);
            self.recov.fail_start[s] = (now, rate);
        }
        // It leaves service discovery.
        if self.recov.discovery[s].is_some() {
            self.set_registered(s, false);
        }
    }

    /// Service `s` (a registry, perhaps) is up again: registrations waiting for it complete.
    pub(super) fn on_up(&mut self, s: usize, now: u64) {
        for k in 0..self.recov.discovery_list.len() {
            let d = self.recov.discovery_list[k];
            if self.recov.register_waiting[d]
                && self.recov.discovery[d].as_ref().and_then(|x| x.0) == Some(s)
                && !self.registry_down(d)
                && !self.is_down(d)
            {
                self.registered_now(d, now);
            }
        }
    }

    /// Down to requests: by a fault, held or repairing by the plan (unless a backup serves).
    fn is_down(&self, s: usize) -> bool {
        self.svc[s].down || self.svc[s].servers == 0
    }

    /// Whether the registry of discovery service `s` is modelled and down.
    fn registry_down(&self, s: usize) -> bool {
        self.recov.discovery[s]
            .as_ref()
            .and_then(|x| x.0)
            .is_some_and(|r| self.is_down(r))
    }

    /// Sets whether `s` is registered (clearing a registration in progress): attempts to an
    /// unregistered service fail at once, as on a partitioned edge (its in-edges are cut).
    fn set_registered(&mut self, s: usize, on: bool) {
        let r = &mut self.recov;
        r.register_at[s] = None;
        r.register_gen[s] = r.register_gen[s].wrapping_add(1);
        r.register_waiting[s] = false;
        if r.registered[s] != on {
            r.registered[s] = on;
            for &e in &self.s.topology.in_edges[s] {
                if on {
                    self.cut[e] -= 1;
                } else {
                    self.cut[e] += 1;
                }
            }
        }
    }

    fn registered_now(&mut self, s: usize, now: u64) {
        self.set_registered(s, true);
        if self.trace_on() {
            let service = self.s.topology.services[s].name.clone();
            self.record_event(
                now,
                TraceEvent::AdaptiveState {
                    service,
                    state: "registered",
                },
            );
        }
    }

    /// Service `s` (running again) starts registering with discovery, unless it is
    /// registered or registering already: it is routable `register_time` later.
    pub(super) fn start_registration(&mut self, s: usize, now: u64, q: &mut EventQueue<Ev>) {
        let r = &mut self.recov;
        if r.registered[s] || r.register_at[s].is_some() || r.register_waiting[s] {
            return;
        }
        let (Some((_, d)), Some(rng)) = (r.discovery[s].as_ref(), r.register_rng[s].as_mut())
        else {
            return;
        };
        let at = now.saturating_add(fault::sample(d, rng).0);
        r.register_at[s] = Some(at);
        if at < self.s.horizon.0 {
            q.push(SimTime(at), Ev::Register(s as u32, r.register_gen[s]));
        }
    }

    /// A registration's time has come (stale unless the generation matches): registered,
    /// or waiting for its registry. Returns whether it changed anything.
    pub(super) fn registration_due(&mut self, s: usize, generation: u32, now: u64) -> bool {
        if generation != self.recov.register_gen[s] || self.recov.register_at[s].is_none() {
            return false;
        }
        self.recov.register_at[s] = None;
        if self.registry_down(s) {
            self.recov.register_waiting[s] = true;
        } else {
            self.registered_now(s, now);
        }
        true
    }

    /// Held services start registering now (they run, out of traffic), so that they are
    /// routable the moment they are released; registrations in progress go on.
    pub(super) fn reregister(&mut self, now: u64, q: &mut EventQueue<Ev>) {
        for k in 0..self.recov.discovery_list.len() {
            let s = self.recov.discovery_list[k];
            if self.ctl.held[s] {
                self.start_registration(s, now, q);
            }
        }
    }

    /// Every discovery service registered.
    pub(super) fn registrations_done(&self) -> bool {
        self.recov
            .discovery_list
            .iter()
            .all(|&s| self.recov.registered[s])
    }

    /// When every discovery service will be registered, as far as known at `now`.
    pub(super) fn registrations_done_at(&self, now: u64) -> Option<u64> {
        let mut at = now;
        for &s in &self.recov.discovery_list {
            if !self.recov.registered[s] {
                at = at.max(self.recov.register_at[s]?);
            }
        }
        Some(at)
    }

    /// An attempt to `to` failed on a cut edge: a routing failure if `to` is up but not
    /// registered.
    #[inline]
    pub(super) fn note_cut_attempt(&mut self, to: usize) {
        if !self.recov.registered[to] && !self.is_down(to) {
            self.recov.routing_failures += 1;
        }
    }

    /// A failover backup of `capacity` requests/s serves in place of `s` from now,
    /// registered under its name.
    pub(super) fn switch_to_backup(&mut self, s: usize, capacity: f64, q: &mut EventQueue<Ev>) {
        let now = self.last_t;
        self.recov.backup[s] = Some(capacity);
        self.set_registered(s, true);
        self.refresh_service(s, now, q);
    }

    /// Service `s` is restored with the action that completed on it: failback from a
    /// backup (its queue is lost), a restart's lost state, a checkpoint restart's replay.
    pub(super) fn restore_effects(
        &mut self,
        s: usize,
        action: Option<&ActionKind>,
        now: u64,
        q: &mut EventQueue<Ev>,
    ) {
        if self.recov.backup[s].take().is_some() {
            // Failback: the primary takes over, already registered under the backup's name;
            // what the backup still held in its queue is not handed over.
            while let Some(r) = self.svc[s].queue.pop_front() {
                self.finish(r, false, now, q);
            }
            return;
        }
        if matches!(action, Some(ActionKind::Microreboot(_))) {
            // Rebooted inside its registration.
            self.set_registered(s, true);
        } else {
            // Unless it registered while held (dependency convergence), it registers now.
            self.start_registration(s, now, q);
        }
        match action {
            Some(ActionKind::Restart(_)) => self.restart_effects(s, now),
            Some(ActionKind::CheckpointRestart {
                checkpoint_interval,
                ..
            }) => {
                let (at, rate) = self.recov.fail_start[s];
                let since = at % checkpoint_interval.0.max(1);
                if rate > 1e-9 && since > 0 {
                    let until = now.saturating_add(since);
                    self.recov.replay[s] = Some((rate, until));
                    self.recov.replay_gen[s] = self.recov.replay_gen[s].wrapping_add(1);
                    self.next_replay(s, now, q);
                }
            }
            _ => {}
        }
    }

    /// A full restart loses in-memory state. The hook for a cache coming back cold (the
    /// request engine models no caches yet: nothing to lose).
    pub(super) fn restart_effects(&mut self, _s: usize, _now: u64) {}

    /// Checkpoint replays that have ended by `now` are over.
    pub(super) fn replays_due(&mut self, now: u64) {
        for x in &mut self.recov.replay {
            if x.is_some_and(|(_, until)| until <= now) {
                *x = None;
            }
        }
    }

    /// Schedules the next replayed request at `s` (none past the replay's end).
    fn next_replay(&mut self, s: usize, now: u64, q: &mut EventQueue<Ev>) {
        let Some((rate, until)) = self.recov.replay[s] else {
            return;
        };
        let seed = self.seed;
        let trial = self.trial;
        let name = &self.s.topology.services[s].name;
        let rng = self.recov.rng_replay[s].get_or_insert_with(|| {
            stream(seed, trial, Purpose::Requests(&format!("replay/{name}")))
        });
        let e: f64 = Exp1.sample(rng);
        let at = now.saturating_add(SimDuration::from_secs_f64(e / rate).0.max(1));
        if at < until && at < self.s.horizon.0 {
            q.push(SimTime(at), Ev::Replay(s as u32, self.recov.replay_gen[s]));
        } else if at >= until {
            self.recov.replay[s] = None;
        }
    }

    /// A replayed request arrives at `s` (stale unless the generation matches).
    pub(super) fn replay_arrival(
        &mut self,
        s: usize,
        generation: u32,
        now: u64,
        q: &mut EventQueue<Ev>,
    ) {
        if generation != self.recov.replay_gen[s] || self.recov.replay[s].is_none() {
            return;
        }
        let r = self.new_req(s, INTERNAL, 0, now, u64::MAX);
        self.arrive(r, now, q);
        self.next_replay(s, now, q);
    }
}

/// Autoscaled pools: the instance count of each service, and a pending change.
///
/// At the end of every measuring window at least half a window long, an autoscaled service's
/// pool wants `ceil(arrivals / (per-instance capacity x target utilisation))` instances,
/// bounded by `min` and `max` (and, while the plan pins pools, not below the configured
/// size), where `arrivals` is the rate of requests that reached it in that window: the flow
/// engine's rule on the observed offered load. A change waits `scale_up_delay` (or
/// `scale_down_delay`); a pending change in the same direction keeps its time.
pub(super) struct Pools {
    /// Per service: instances now.
    pub(super) instances: Vec<u32>,
    /// Per service: a pending change (when, ns; to how many) and its generation.
    scale_at: Vec<Option<(u64, u32)>>,
    scale_gen: Vec<u32>,
    /// Autoscaled services.
    list: Vec<usize>,
}

impl Pools {
    pub(super) fn new(s: &Scenario) -> Self {
        let n = s.topology.services.len();
        Pools {
            instances: s.topology.services.iter().map(|x| x.instances).collect(),
            scale_at: vec![None; n],
            scale_gen: vec![0; n],
            list: (0..n)
                .filter(|&i| s.topology.services[i].autoscale.is_some())
                .collect(),
        }
    }

    pub(super) fn any(&self) -> bool {
        !self.list.is_empty()
    }
}

impl RequestTrial<'_> {
    /// Sets `s`'s pending change to `target` at `at` (none when `None`).
    fn set_scale(&mut self, s: usize, to: Option<(u64, u32)>, q: &mut EventQueue<Ev>) {
        let p = &mut self.pools;
        if p.scale_at[s] == to {
            return;
        }
        p.scale_at[s] = to;
        p.scale_gen[s] = p.scale_gen[s].wrapping_add(1);
        if let Some((at, _)) = to
            && at < self.s.horizon.0
        {
            q.push(SimTime(at), Ev::Scale(s as u32, p.scale_gen[s]));
        }
    }

    /// A measuring window `[from, end)` closed: autoscalers react to its arrivals
    /// (`arrived[s]`, requests).
    pub(super) fn autoscale(
        &mut self,
        arrived: &[u64],
        secs: f64,
        end: u64,
        q: &mut EventQueue<Ev>,
    ) {
        if secs * 2e9 < self.win_len as f64 {
            return;
        }
        for k in 0..self.pools.list.len() {
            let a = self.pools.list[k];
            let svc = &self.s.topology.services[a];
            let Some(auto) = &svc.autoscale else { continue };
            let per_instance = svc.capacity / f64::from(svc.instances);
            let rate = arrived[a] as f64 / secs;
            let want = (rate / (per_instance * auto.target_utilisation) - 1e-9).ceil();
            let mut want = want.max(f64::from(auto.min)).min(f64::from(auto.max)) as u32;
            if self.ctl.scale_pinned {
                // Re-targeted by the plan: no shrinking below the pre-outage pool.
                want = want.max(svc.instances);
            }
            let cur = self.pools.instances[a];
            let next = match self.pools.scale_at[a] {
                _ if want == cur => None,
                Some((at, target)) if (target > cur) == (want > cur) => Some((at, want)),
                _ => {
                    let delay = if want > cur {
                        auto.scale_up_delay
                    } else {
                        auto.scale_down_delay
                    };
                    Some((end.saturating_add(delay.0), want))
                }
            };
            self.set_scale(a, next, q);
        }
    }

    /// A pending pool change is due (stale unless the generation matches).
    pub(super) fn scale_due(
        &mut self,
        s: usize,
        generation: u32,
        now: u64,
        q: &mut EventQueue<Ev>,
    ) -> bool {
        if generation != self.pools.scale_gen[s] {
            return false;
        }
        let Some((_, target)) = self.pools.scale_at[s].take() else {
            return false;
        };
        self.pools.instances[s] = target;
        self.refresh_service(s, now, q);
        if self.trace_on() {
            let service = self.s.topology.services[s].name.clone();
            self.record_event(
                now,
                TraceEvent::Scaled {
                    service,
                    instances: target,
                },
            );
        }
        true
    }

    /// Autoscalers are re-targeted to the pre-outage pool (the missing instances come up
    /// after the scale-up delay).
    pub(super) fn scale_up(&mut self, now: u64, q: &mut EventQueue<Ev>) {
        for k in 0..self.pools.list.len() {
            let s = self.pools.list[k];
            let svc = &self.s.topology.services[s];
            let Some(auto) = &svc.autoscale else { continue };
            let cur = self.pools.instances[s];
            if cur < svc.instances {
                let at = match self.pools.scale_at[s] {
                    // A scale-up already under way keeps its time.
                    Some((at, target)) if target > cur => at,
                    _ => now.saturating_add(auto.scale_up_delay.0),
                };
                self.set_scale(s, Some((at, svc.instances)), q);
            } else {
                self.set_scale(s, None, q);
            }
        }
    }

    /// Every autoscaled pool at its configured size.
    pub(super) fn pools_at_size(&self) -> bool {
        self.pools
            .list
            .iter()
            .all(|&s| self.pools.instances[s] >= self.s.topology.services[s].instances)
    }

    /// When the pending scale-ups complete, as far as known at `now`.
    pub(super) fn pools_done_at(&self, now: u64) -> u64 {
        let mut at = now;
        for &s in &self.pools.list {
            if let Some((t, target)) = self.pools.scale_at[s]
                && target > self.pools.instances[s]
            {
                at = at.max(t);
            }
        }
        at
    }
}
