//! Adaptive roles inside the flow solution: caches, queues, auth, databases, discovery.
//!
//! Each role adapts while something it relies on is unavailable and keeps *adaptive state*
//! (extended cache entries, queue backlog, outage-issued tokens, replication lag, a missing
//! registration); recovery turns that state into load or errors. This file holds how roles
//! shape the flows at one instant; their state evolves in [`super::dynamics`].

use super::FlowTrial;

/// A cache role's settings: (origin, keys, ttl s, hit ratio, max extension s).
pub(super) type CacheCfg = (usize, f64, f64, f64, f64);

/// Per-service role state. A service has at most one role of each kind.
#[derive(Debug, Clone, Default)]
pub(super) struct RoleState {
    /// Cache: the origin edge index.
    pub cache_edge: Option<usize>,
    /// Cache: since when the origin has been unavailable (simulated seconds).
    pub origin_down_since: Option<f64>,
    /// Cache: extended entries were evicted (cap reached) or the cache is cold after them.
    pub cache_cold_until: Option<f64>,
    /// Cache: entries extended during an origin outage and not invalidated yet (served
    /// stale).
    pub refresh_left: f64,
    /// Cache: entries invalidated per second, from `refresh_left` to `expired` (an
    /// invalidation window or a plan's pacing; 0 otherwise).
    pub refresh_rate: f64,
    /// Cache: extended entries that expired (together when the origin returned, or as they
    /// were invalidated): each read of one goes through the origin until it is refreshed
    /// (served stale if that read fails).
    pub expired: f64,
    /// Cache: share of the keys expired at the start of the current refresh step (the extra
    /// miss share the flows use during the step).
    pub refresh_share: f64,
    /// Cache: end of the current refresh step.
    pub refresh_step_at: Option<crate::engine::SimTime>,
    /// Cache: refresh steps taken since the entries expired together.
    pub refresh_k: u32,
    /// Queue: backlog of messages.
    pub queue_backlog: f64,
    /// Queue: current drain attempt rate (messages/s handed to consumers).
    pub queue_drain: f64,
    /// Queue: the backlog holds messages from an outage not yet reconciled.
    pub needs_reconcile: bool,
    /// Queue: messages of the outage backlog not yet replayed (FIFO: they drain first).
    pub outage_left: f64,
    /// Auth: degraded validation is on.
    pub degraded: bool,
    /// Auth: since when (simulated seconds) degraded validation has been on.
    pub degraded_since: f64,
    /// Auth: share of requests carrying rejected tokens, averaged over the current refresh
    /// step (what the flows use).
    pub outage_share: f64,
    /// Auth: share of clients holding outage-issued (or pre-rotation) tokens at the start of
    /// the current refresh step.
    pub token_share: f64,
    /// Auth: length of the current refresh step, seconds.
    pub step_len: f64,
    /// Auth: steps taken in the current refresh episode.
    pub step_k: u32,
    /// Auth: end of the current refresh step.
    pub step_at: Option<crate::engine::SimTime>,
    /// Auth: clients' token refresh rate (share per second).
    pub refresh_rate_auth: f64,
    /// Auth: restored keys do not match those tokens, so they are rejected.
    pub mismatch: bool,
    /// Auth: a key rotation is under way since then (simulated seconds): old and new keys
    /// both validate until it ends.
    pub rotation_since: Option<f64>,
    /// Auth: recoveries of the key provider seen so far (indexes the mismatch draws).
    pub key_recoveries: u64,
    /// Database: replication lag in seconds.
    pub lag: f64,
}

impl RoleState {
    /// Extra success factor of the service's requests from its roles: an auth service
    /// rejecting outage tokens its restored keys do not match.
    pub(super) fn ok_factor(&self) -> f64 {
        if self.mismatch && !self.degraded {
            1.0 - self.outage_share
        } else {
            1.0
        }
    }
}

impl FlowTrial<'_> {
    /// The cache role of service `s`, if any: (origin, keys, ttl s, hit ratio, max extension s).
    pub(super) fn cache_of(&self, s: usize) -> Option<CacheCfg> {
        self.cache_cfg[s]
    }

    /// Multipliers of the calls a caller makes on edge `e`, as (calls its requests' success
    /// depends on, calls made): a cache only calls its origin on misses, unless it is cold
    /// (every read misses); entries that expired together when the origin returned are read
    /// through the origin until refreshed, and served stale when that read fails (stale if
    /// error), so they add calls, not failures.
    pub(super) fn edge_call_factors(&self, e: usize) -> (f64, f64) {
        let d = &self.s.topology.deps[e];
        let r = &self.roles[d.from];
        if r.cache_edge != Some(e) {
            return (1.0, 1.0);
        }
        match self.cache_of(d.from) {
            Some((_, _, _, hit, _)) if r.cache_cold_until.is_none() => {
                let misses = 1.0 - hit;
                if r.refresh_share > 0.0 {
                    (misses, misses + hit * r.refresh_share)
                } else {
                    (misses, misses)
                }
            }
            _ => (1.0, 1.0),
        }
    }

    /// True when edge `e` is an auth service's call to its key provider and validation is
    /// degraded: the call is skipped and does not decide success.
    pub(super) fn auth_bypass(&self, e: usize) -> bool {
        let d = &self.s.topology.deps[e];
        self.roles[d.from].degraded && self.auth_edge[d.from] == Some(e)
    }

    /// Input of service `s` that does not come through a caller edge: its share of queue
    /// drains (as a consumer) and reads redirected to it (as the replica of a down primary).
    #[inline]
    pub(super) fn role_input_for(&mut self, s: usize) -> f64 {
        let mut x = 0.0;
        for k in 0..self.consumer_of[s].len() {
            let q = self.consumer_of[s][k];
            if let Some((consumers, max_rate, _)) = self.queue_cfg[q] {
                // Consumers drain at their max rate while there is a backlog, else keep up
                // with what arrives.
                let drain = if self.roles[q].queue_backlog > 1e-9 {
                    // A plan's traffic ramp lets the backlog back in gradually.
                    max_rate * self.ctl.ramp_f
                } else {
                    self.sf[q].served.min(max_rate)
                };
                self.roles[q].queue_drain = drain;
                x += drain / consumers.len().max(1) as f64;
            }
        }
        for k in 0..self.replica_for[s].len() {
            let d = self.replica_for[s][k];
            if self.db_replica[d].is_some() && self.sf[d].down_now {
                for &e in &self.s.topology.in_edges[d] {
                    x += self.edges[e].reads * self.ef[e].attempts;
                }
            }
        }
        x
    }

    /// Success probability of an attempt on edge `e` whose callee is a down primary: reads
    /// succeed through the replica, writes fail.
    pub(super) fn redirected_success(&self, e: usize) -> Option<f64> {
        replica_success(
            &self.db_replica,
            &self.sf,
            self.edges[e].to,
            self.edges[e].reads,
        )
    }
}

/// When `d` is a database primary that is down, the success probability of an attempt on it
/// from an edge whose calls are `reads` reads: reads succeed as its replica's requests do,
/// writes fail. `None` otherwise.
pub(super) fn replica_success(
    db_replica: &[Option<(usize, f64)>],
    sf: &[super::solve::SvcFlow],
    d: usize,
    reads: f64,
) -> Option<f64> {
    match db_replica[d] {
        Some((replica, _)) if sf[d].down_now => {
            Some(reads * sf[replica].share * sf[replica].ok_proc)
        }
        _ => None,
    }
}
