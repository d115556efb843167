//! An auth role in the request engine: degraded validation and rejected tokens, per request.
//!
//! The state is the flow engine's ([`crate::flow`]'s role state, the same quantities with the
//! same rules), per auth service:
//!
//! - While the key provider is unavailable (down, held by the plan, or cut off by a partition:
//!   [`Auth::provider`] is told at every fault and plan event), validation degrades if the
//!   role says so: the service skips its call to the provider and accepts tokens. Clients
//!   refreshing their tokens during the outage (at `client_refresh_rate` share per second) get
//!   outage-issued tokens: `token_share = 1 - (1 - share) e^(-rate outage)`.
//! - When the provider returns, the restored keys fail to match those tokens with probability
//!   `key_mismatch_probability`, one draw per return from the flow engine's stream for the
//!   service (so both engines draw the same in trial `i`), unless the plan pre-warmed identity.
//!   On a mismatch the outage tokens are rejected until clients refresh them: the share decays
//!   as `e^(-rate t)` (continuously here; the flow engine uses its mean over steps) until below
//!   a thousandth. Without a mismatch they are refreshed harmlessly.
//! - A `KeyRotation` failure starts a rotation; at its end the old keys are retired and the
//!   tokens not refreshed during it (`e^(-rate window)`) are rejected, decaying the same way.
//! - `IdentityPrewarm` (a stage or `PrewarmIdentity` step) fixes every mismatch.
//! - **Per request**: a request at the auth service is worked on, then rejected (it fails)
//!   with probability the share of rejected tokens now, when there is a mismatch and
//!   validation is not degraded; while degraded, it does not call the provider.

use rand::RngExt;

use crate::model::Role;
use crate::rng::ChaCha8Rng;

/// Below this share of rejected tokens the decay is over (the flow engine's end of a decay).
const DECAY_END: f64 = 1e-3;
/// Quantities below this are nothing (the flow engine's tolerance).
const EPS: f64 = 1e-9;

/// One auth service's settings and state.
#[derive(Debug, Clone)]
pub(super) struct Auth {
    /// The edge to the key provider.
    pub edge: usize,
    degrades: bool,
    mismatch_p: f64,
    rate: f64,
    /// Validation is degraded (the provider call is skipped).
    pub degraded: bool,
    degraded_since: f64,
    /// Share of clients holding outage-issued (or pre-rotation) tokens at `decay_from` (or now,
    /// when not decaying).
    token_share: f64,
    /// Since when the share decays as clients refresh (`None`: it holds still).
    decay_from: Option<f64>,
    /// Restored keys do not match those tokens: they are rejected.
    mismatch: bool,
    /// A key rotation is under way since then.
    rotation_since: Option<f64>,
    /// The mismatch draws (the flow engine's stream for this service).
    keys_rng: ChaCha8Rng,
    /// The rejection draws.
    rng: ChaCha8Rng,
    /// Requests accepted under degraded validation.
    pub degraded_accepts: f64,
    /// Requests rejected for their token.
    pub rejects: f64,
}

impl Auth {
    /// The auth role of a service, if it has one with an edge to its key provider.
    pub fn new(
        role: &Role,
        edge: Option<usize>,
        keys_rng: ChaCha8Rng,
        rng: ChaCha8Rng,
    ) -> Option<Auth> {
        let Role::Auth {
            degraded_validation,
            key_mismatch_probability,
            client_refresh_rate,
            ..
        } = *role
        else {
            return None;
        };
        Some(Auth {
            edge: edge?,
            degrades: degraded_validation,
            mismatch_p: key_mismatch_probability,
            rate: client_refresh_rate,
            degraded: false,
            degraded_since: 0.0,
            token_share: 0.0,
            decay_from: None,
            mismatch: false,
            rotation_since: None,
            keys_rng,
            rng,
            degraded_accepts: 0.0,
            rejects: 0.0,
        })
    }

    /// The share of clients holding outage (or pre-rotation) tokens at `t`; a decay below
    /// [`DECAY_END`] is over (the mismatch with it).
    pub fn share(&mut self, t: f64) -> f64 {
        let Some(t0) = self.decay_from else {
            return self.token_share;
        };
        let v = self.token_share * (-self.rate * (t - t0).max(0.0)).exp();
        if v < DECAY_END {
            self.token_share = 0.0;
            self.mismatch = false;
            self.decay_from = None;
            return 0.0;
        }
        v
    }

    /// Whether the service has settled at `t`: validation not degraded, tokens rejected on no
    /// more than `budget` of the requests.
    pub fn settled(&mut self, t: f64, budget: f64) -> bool {
        !self.adapting(t, budget)
    }

    /// Whether the service adapts at `t`: validation degraded, or tokens rejected on more than
    /// `budget` of the requests.
    pub fn adapting(&mut self, t: f64, budget: f64) -> bool {
        self.degraded || (self.mismatch && self.share(t) > budget)
    }

    /// A request at the service was worked on at `t`: whether its token is rejected.
    pub fn rejects_now(&mut self, t: f64) -> bool {
        if self.degraded {
            self.degraded_accepts += 1.0;
            return false;
        }
        if !self.mismatch {
            return false;
        }
        let p = self.share(t);
        if p > 0.0 && self.rng.random::<f64>() < p {
            self.rejects += 1.0;
            true
        } else {
            false
        }
    }

    /// The provider's availability at `t`. Returns what changed, for the trace.
    pub fn provider(&mut self, t: f64, available: bool, prewarmed: bool) -> Option<&'static str> {
        if self.degrades && !self.degraded && !available {
            self.degraded = true;
            self.degraded_since = t;
            return Some("degraded_validation_on");
        }
        if self.degraded && available {
            let tau = t - self.degraded_since;
            let before = self.share(t);
            self.degraded = false;
            self.token_share = 1.0 - (1.0 - before) * (-self.rate * tau).exp();
            let u: f64 = self.keys_rng.random();
            if self.token_share > EPS && u < self.mismatch_p && !prewarmed {
                self.mismatch = true;
            } else if !self.mismatch {
                self.token_share = 0.0;
            }
            if self.mismatch {
                // The rejected share decays from now.
                self.decay_from = Some(t);
                return Some("keys_mismatch_outage_tokens_rejected");
            }
            self.decay_from = None;
            return Some("degraded_validation_off");
        }
        None
    }

    /// A key rotation starts (`on`) or ends at `t`: at its end, tokens not refreshed during it
    /// are rejected until clients refresh them.
    pub fn rotation(&mut self, t: f64, on: bool) {
        if on {
            self.rotation_since = Some(t);
        } else if let Some(since) = self.rotation_since.take() {
            self.token_share = (-self.rate * (t - since)).exp();
            self.mismatch = true;
            // While validation is degraded the share holds still (it decays from the
            // provider's return).
            self.decay_from = (!self.degraded).then_some(t);
        }
    }

    /// Identity pre-warmed: restored keys match, mismatches are fixed.
    pub fn prewarm(&mut self) {
        self.mismatch = false;
        self.token_share = 0.0;
        self.decay_from = None;
    }
}
