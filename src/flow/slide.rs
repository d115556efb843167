//! A backlog held at a client timeout: the sliding mode of the flow model.
//!
//! A caller's attempt succeeds when the callee's queueing delay (`backlog / capacity`) keeps
//! it within the caller's timeout, so the flows switch when a backlog crosses the level
//! `capacity * (timeout - latency)`. Usually the backlog passes through. But when failing
//! those callers *lowers* the load on the callee (a caller whose hard call fails stops before
//! its next calls, a degraded auth stops calling its provider, ...), the backlog grows below
//! the level and shrinks above it: it is held there, and a share `θ` of those callers'
//! attempts time out, the share at which the callee is offered exactly its capacity (the
//! Filippov solution of the switched system; the physical picture is requests near the head
//! of the queue making it in time and those just behind not). No step of the model decides
//! when the mode is entered or left: it is entered at the exact crossing and left at the event
//! after which no share in (0, 1) balances the load, and `θ` is found by bisection to a
//! relative 1e-10 of the capacity.

use super::{EPS, FlowTrial};

/// A service held at a timeout level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Slide {
    /// The level (requests of backlog).
    pub level: f64,
    /// Share of the attempts of the callers with that timeout that time out.
    pub theta: f64,
}

impl FlowTrial<'_> {
    /// The backlog at which attempts on edge `e` start to exceed their timeout (infinite
    /// without a timeout; its callee's capacity now).
    pub(super) fn timeout_level(&self, e: usize) -> f64 {
        let s = self.edges[e].to;
        let t = self.edges[e].timeout;
        if !t.is_finite() {
            return f64::INFINITY;
        }
        self.sf[s].cap * (t - self.base_latency_s[s] - self.latency_added[s])
    }

    /// Settles the services whose backlog reached a timeout level at this instant (from the
    /// wake-up) and those held at one: held (with their share) when the load balances within
    /// (0, 1), else released in the direction the flows take them. Returns whether the flows
    /// were solved again.
    pub(super) fn settle_slides(&mut self) -> bool {
        if self.slide_candidates.is_empty() && !self.any_slide {
            return false;
        }
        let mut todo: Vec<(usize, f64, f64)> = std::mem::take(&mut self.slide_candidates);
        for s in 0..self.slide.len() {
            if let Some(sl) = self.slide[s]
                && !todo.iter().any(|c| c.0 == s)
            {
                todo.push((s, sl.level, 0.0));
            }
        }
        todo.sort_by_key(|c| c.0);
        for (s, level, dir) in todo {
            self.settle_one(s, level, dir);
        }
        self.any_slide = self.slide.iter().any(Option::is_some);
        true
    }

    /// The edges into `s` whose timeout level is `level`.
    fn edges_at(&self, s: usize, level: f64) -> Vec<usize> {
        let tol = 1e-9 * level.abs().max(1.0);
        self.s.topology.in_edges[s]
            .iter()
            .copied()
            .filter(|&e| (self.timeout_level(e) - level).abs() <= tol)
            .collect()
    }

    /// The backlog's rate of change at `s` with a share `theta` of the attempts on `edges`
    /// timing out (the flows are solved for it).
    fn rate_with(&mut self, s: usize, edges: &[usize], theta: f64) -> f64 {
        for &e in edges {
            self.ef[e].in_share = 1.0 - theta;
        }
        self.solve_flows(false);
        self.sf[s].arrivals - self.sf[s].served
    }

    fn settle_one(&mut self, s: usize, level: f64, dir: f64) {
        let cap = self.sf[s].cap;
        let edges = if cap > 0.0 && level.is_finite() && self.backlog[s] > EPS {
            self.edges_at(s, level)
        } else {
            Vec::new()
        };
        let held = (self.backlog[s] - level).abs() <= 1e-9 * level.max(1.0);
        if edges.is_empty() || !held || super::full(self.backlog[s], self.max_backlog(s)) {
            // The level moved (capacity or latency changed) or the service went down: the
            // backlog moves freely again.
            if self.slide[s].is_some() {
                self.release_slide(s);
                self.solve_flows(false);
            }
            return;
        }
        self.backlog[s] = level;
        // (While it is settled, the service is not held: it serves its capacity.)
        self.slide[s] = None;
        let below = self.rate_with(s, &edges, 0.0);
        let above = self.rate_with(s, &edges, 1.0);
        if below > 0.0 && above < 0.0 {
            // Held: the share that balances the load.
            let (mut lo, mut hi) = (0.0f64, 1.0f64);
            let tol = 1e-10 * cap.max(1.0);
            let mut theta = 0.5;
            for _ in 0..60 {
                theta = 0.5 * (lo + hi);
                let r = self.rate_with(s, &edges, theta);
                if r.abs() <= tol {
                    break;
                }
                if r > 0.0 {
                    lo = theta;
                } else {
                    hi = theta;
                }
            }
            self.slide[s] = Some(super::slide::Slide { level, theta });
            self.any_slide = true;
            self.rate_with(s, &edges, theta);
        } else {
            // Not held: it passes the level, the way the flows (or, when they balance both
            // ways, its motion) take it.
            let up = if below > 0.0 {
                true
            } else if above < 0.0 {
                false
            } else {
                dir >= 0.0
            };
            self.slide[s] = None;
            for &e in &edges {
                self.ef[e].in_share = 1.0;
            }
            let step = 2e-9 * level.abs().max(1.0);
            self.backlog[s] = if up { level + step } else { level - step };
            self.solve_flows(false);
        }
    }

    /// Service `s` is no longer held at a level.
    pub(super) fn release_slide(&mut self, s: usize) {
        if self.slide[s].take().is_some() {
            for k in 0..self.s.topology.in_edges[s].len() {
                let e = self.s.topology.in_edges[s][k];
                self.ef[e].in_share = 1.0;
            }
        }
    }
}
