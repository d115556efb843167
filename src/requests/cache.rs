//! A cache role in the request engine: which reads go to the origin, per request.
//!
//! The state is the flow engine's ([`crate::flow`]'s role state, the same quantities with the
//! same rules), kept per cache service and moved lazily to the instant of each read:
//!
//! - While the origin is unavailable (down, held by the plan, or cut off by a partition:
//!   [`Cache::origin`] is told at every fault and plan event) the cache serves what it holds,
//!   extending the entries' TTLs (`origin_down_since`). Once the outage lasts `max_extension`,
//!   the extended entries are evicted and the cache is cold: every read misses, until a TTL
//!   after the origin returns (`cache_cold_until`).
//! - When the origin returns, the entries extended during the outage (`keys x min(1, outage /
//!   ttl)`) are let go: all expired at once (`expired`), or invalidated at an even rate over
//!   the cache's `invalidation_window` or the plan's `InvalidateCaches` window, the longer
//!   (`refresh_left`, `refresh_rate`), or held by the plan (served stale) until it releases
//!   them or paces them along its traffic ramp.
//! - **Per read** (a request at the cache service, before its call to the origin): a cold
//!   cache misses; otherwise the read hits with probability `hit_ratio`, and a hit is an
//!   expired extended entry with probability `expired / keys`. A miss calls the origin as any
//!   dependency; a hit on a live entry makes no call; a hit on an expired entry calls the
//!   origin, and a failed call is served stale (the request succeeds) while a successful one
//!   refreshes the entry (`expired` falls by one). All `calls` calls of the request on the
//!   origin edge follow the read's draw. As in the flow engine, once fewer than a thousandth of
//!   the keys are expired and none is left to invalidate, the rest is refreshed unnoticed.
//! - Stale reads are counted as the flow engine counts them: a hit during the outage is stale
//!   with the share of entries past their TTL (`min(1, outage / ttl)`), a hit after it with the
//!   share of extended entries not yet invalidated, and every expired read served stale.

use rand::RngExt;

use crate::model::Role;
use crate::rng::ChaCha8Rng;

/// Below this share of the keys expired (and none left to invalidate), the rest is refreshed
/// unnoticed (the flow engine's end of a decay).
const DECAY_END: f64 = 1e-3;
/// Quantities below this are nothing (the flow engine's tolerance).
const EPS: f64 = 1e-9;

/// What one read does with the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    /// A live entry: no call to the origin.
    Hit,
    /// A miss (or a cold cache): the origin is called, and its outcome decides.
    Miss,
    /// An expired extended entry: the origin is called; a failure is served stale.
    Expired,
}

/// One cache service's settings and state.
#[derive(Debug, Clone)]
pub(super) struct Cache {
    /// The edge to the origin.
    pub edge: usize,
    keys: f64,
    ttl: f64,
    hit: f64,
    max_ext: f64,
    /// The cache's own invalidation window, seconds (0: none).
    window: f64,
    /// Since when the origin has been unavailable (seconds).
    origin_down_since: Option<f64>,
    /// Cold (every read misses) until then; infinite while the origin is still down.
    cache_cold_until: Option<f64>,
    /// Extended entries not invalidated yet (served stale).
    refresh_left: f64,
    /// Extended entries invalidated per second, from `refresh_left` to `expired`.
    refresh_rate: f64,
    /// Extended entries that expired: read through the origin until refreshed.
    expired: f64,
    /// The time the state was moved to.
    at: f64,
    rng: ChaCha8Rng,
    /// Stale reads served (expected counts for the shares, see the module doc).
    pub stale_reads: f64,
}

impl Cache {
    /// The cache role of a service, if it has one with an edge to its origin.
    pub fn new(role: &Role, edge: Option<usize>, rng: ChaCha8Rng) -> Option<Cache> {
        let Role::Cache {
            keys,
            ttl,
            hit_ratio,
            max_extension,
            invalidation_window,
            ..
        } = *role
        else {
            return None;
        };
        Some(Cache {
            edge: edge?,
            keys,
            ttl: ttl.as_secs_f64(),
            hit: hit_ratio,
            max_ext: max_extension.as_secs_f64(),
            window: invalidation_window.map_or(0.0, |w| w.as_secs_f64()),
            origin_down_since: None,
            cache_cold_until: None,
            refresh_left: 0.0,
            refresh_rate: 0.0,
            expired: 0.0,
            at: 0.0,
            rng,
            stale_reads: 0.0,
        })
    }

    /// Moves the state to `t`: entries invalidated since, the extension cap, the end of a cold
    /// period.
    fn advance(&mut self, t: f64) {
        if self.refresh_rate > 0.0 && t > self.at {
            let moved = (self.refresh_rate * (t - self.at)).min(self.refresh_left);
            self.refresh_left -= moved;
            self.expired += moved;
            if self.refresh_left <= EPS * self.keys.max(1.0) {
                self.expired += self.refresh_left;
                self.refresh_left = 0.0;
                self.refresh_rate = 0.0;
            }
        }
        self.at = self.at.max(t);
        if let Some(since) = self.origin_down_since
            && t >= since + self.max_ext - 1e-9
            && self.cache_cold_until.is_none()
        {
            self.evict();
        }
        if let Some(cold) = self.cache_cold_until
            && cold <= t + 1e-9
        {
            self.cache_cold_until = None;
        }
        if self.refresh_rate <= 0.0 && self.expired > 0.0 && self.expired / self.keys < DECAY_END {
            self.expired = 0.0;
            self.refresh_left = 0.0;
        }
    }

    /// Extended entries reached the cap and are evicted: cold until a TTL after the origin
    /// returns.
    fn evict(&mut self) {
        self.cache_cold_until = Some(f64::INFINITY);
        self.refresh_left = 0.0;
        self.expired = 0.0;
        self.refresh_rate = 0.0;
    }

    /// One read at `t` (seconds): draws hit or miss, and whether a hit is an expired entry.
    pub fn read(&mut self, t: f64) -> Read {
        self.advance(t);
        if self.cache_cold_until.is_some() {
            return Read::Miss;
        }
        let u: f64 = self.rng.random();
        if u >= self.hit {
            return Read::Miss;
        }
        if let Some(since) = self.origin_down_since {
            // Served from the cache; stale for the share of entries past their TTL.
            self.stale_reads += ((t - since) / self.ttl).clamp(0.0, 1.0);
            return Read::Hit;
        }
        self.stale_reads += (self.refresh_left / self.keys).min(1.0);
        // `u / hit` is uniform on [0, 1) given a hit.
        if self.expired > 0.0 && u / self.hit < (self.expired / self.keys).min(1.0) {
            Read::Expired
        } else {
            Read::Hit
        }
    }

    /// Whether the cache has settled at `t`: its origin available, not cold, no extended entry
    /// left.
    pub fn settled(&mut self, t: f64) -> bool {
        self.advance(t);
        self.origin_down_since.is_none()
            && self.cache_cold_until.is_none()
            && self.refresh_rate <= 0.0
            && self.refresh_left <= EPS
            && self.expired <= EPS
    }

    /// Whether the cache adapts at `t`: its origin unavailable (serving stale), or cold.
    pub fn adapting(&mut self, t: f64) -> bool {
        self.advance(t);
        self.origin_down_since.is_some() || self.cache_cold_until.is_some()
    }

    /// The origin call of a read of an expired entry ended: refreshed, or served stale.
    pub fn expired_read_done(&mut self, ok: bool) {
        if ok {
            self.expired = (self.expired - 1.0).max(0.0);
        } else {
            self.stale_reads += 1.0;
        }
    }

    /// The origin's availability at `t`: when it goes, the cache starts extending TTLs (entries
    /// being refreshed are extended again); when it returns, the extended entries are let go
    /// (see [`Cache::start_refresh`]) unless the plan `hold`s them. `spread` is the plan's
    /// invalidation window, if any. Returns what changed, for the trace.
    pub fn origin(
        &mut self,
        t: f64,
        available: bool,
        hold: bool,
        spread: Option<f64>,
    ) -> Option<&'static str> {
        self.advance(t);
        match self.origin_down_since {
            None if !available => {
                self.origin_down_since = Some(t);
                self.refresh_left += self.expired;
                self.expired = 0.0;
                self.refresh_rate = 0.0;
                Some("serving_stale_extending_ttl")
            }
            Some(since) if available => {
                self.origin_down_since = None;
                if self.cache_cold_until == Some(f64::INFINITY) {
                    self.cache_cold_until = Some(t + self.ttl);
                } else {
                    let extended = self.keys * ((t - since) / self.ttl).min(1.0);
                    let before = self.refresh_left;
                    self.refresh_left = (before + extended)
                        .min(self.keys - self.expired)
                        .max(before);
                    if !hold {
                        self.start_refresh(spread);
                    }
                }
                Some("origin_back_extended_entries_expire")
            }
            _ => None,
        }
    }

    /// Lets the extended entries go: invalidated at an even rate over the cache's window or
    /// the plan's (`spread`), the longer, or else all expired now.
    fn start_refresh(&mut self, spread: Option<f64>) {
        if self.refresh_left <= EPS {
            return;
        }
        let spread = self.window.max(spread.unwrap_or(0.0));
        if spread > 0.0 {
            self.refresh_rate = self.refresh_left / spread;
        } else {
            self.expired += self.refresh_left;
            self.refresh_left = 0.0;
            self.refresh_rate = 0.0;
        }
    }

    /// The plan releases the entries it held (`InvalidateCaches`, or the end of its hold).
    pub fn release(&mut self, t: f64, spread: Option<f64>) {
        self.advance(t);
        if self.refresh_left > EPS && self.refresh_rate == 0.0 {
            self.start_refresh(spread);
        }
    }

    /// A step of the plan's traffic ramp: `share` of the entries still held is invalidated
    /// over the step's `len` seconds.
    pub fn ramp(&mut self, t: f64, share: f64, len: f64) {
        self.advance(t);
        if self.refresh_left > EPS && len > 0.0 {
            self.refresh_rate = self.refresh_left * share / len;
        }
    }

    /// A full restart loses the cache: cold for a TTL from `t`, extended entries forgotten.
    pub fn restart(&mut self, t: f64) {
        self.advance(t);
        self.evict();
        self.cache_cold_until = Some(t + self.ttl);
    }
}
