//! Queue roles in the request engine: messages, their backlog, the consumers' paced drain,
//! overflow (lost work) and the out-of-order replay of an outage backlog.
//!
//! Per message (the flow engine's meaning, [`crate::flow`]'s `roles` and `dynamics`):
//!
//! - **Enqueue**: every request at a service with a `Queue` role whose own work is done is one
//!   message (the flow engine's enqueue rate is the queue service's processed rate). A message
//!   that finds `max_backlog` messages waiting is lost (`lost_work`).
//! - **Drain**: each consumer takes messages, oldest first, at most one every
//!   `consumers / consumer_max_rate` seconds (the maximum rate split among the consumers), while
//!   it is up and messages wait. While a backlog is left after a hand-out, the plan's traffic
//!   ramp paces the drain (the interval is divided by the ramp's share); a queue that keeps up
//!   hands each message out as it comes, unpaced. A message taken is a request arriving at the
//!   consumer (an internal arrival: not a user request), served and calling like any other;
//!   when it fails (the consumer crashed, shed it, or a hard call failed) the message returns
//!   to the head of the backlog and is handed out again; when it succeeds it is consumed.
//! - **Progress**: a consumer's progress is the running share of its messages that succeed
//!   (an exponentially weighted mean over its last messages, [`PROGRESS_WEIGHT`]), 0 while it
//!   is down; the consumers cannot make progress once the mean over them is below one half
//!   (the flow engine's `consumer_progress` and its threshold), and can again once it is back
//!   at [`PROGRESS_AGAIN`] (a running mean is noisy: without the margin it would flap at the
//!   threshold, each flap counting replays the flow engine does not).
//! - **Outage backlog**: while the consumers cannot make progress and the plan has not
//!   reconciled state since the last fault started, the queue needs reconciliation and every
//!   message not yet consumed is outage backlog. Consumers that make progress again before a
//!   reconciliation replay it first: each outage message consumed counts in `out_of_order`.
//!   State reconciliation (a `StateReconciliation` stage, a `ReconcileState` step) aligns the
//!   offsets: nothing is replayed out of order after it; so does a backlog drained to empty.
//! - **Restoration** waits for the backlog: a window at whose end messages wait and in which
//!   the queue was never empty ends no stable run (the flow engine requires the backlog at 0).

use super::{Ev, MSG, RequestTrial};
use crate::engine::{EventQueue, SimDuration, SimTime};
use crate::model::{Role, Scenario};

/// Mean progress at which consumers that could not progress count as progressing again
/// (they stop below one half): a margin of two or three standard deviations of the running
/// means' noise, so that a mean hovering at one half does not flap.
pub const PROGRESS_AGAIN: f64 = 0.6;

/// Weight of the latest message in a consumer's running progress share (about the last 64
/// messages count).
pub const PROGRESS_WEIGHT: f64 = 1.0 / 64.0;

/// What a queue did over a trial (for tests and cross-checks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// The queue service.
    pub service: usize,
    /// Messages enqueued (lost ones included).
    pub enqueued: u64,
    /// Messages consumed (a consumer's request for it succeeded).
    pub consumed: u64,
    /// Messages lost to a full queue.
    pub lost: u64,
    /// Messages waiting at the end.
    pub backlog: u64,
    /// Messages handed out and not finished at the end.
    pub in_flight: u64,
    /// Hand-outs that failed (the message went back to the queue).
    pub redelivered: u64,
    /// Outage messages consumed before reconciliation (out of order).
    pub out_of_order: u64,
}

/// One consumer's hand-outs from one queue.
#[derive(Debug, Clone)]
struct Pacer {
    queue: usize,
    consumer: usize,
    /// The last hand-out.
    last: Option<u64>,
    /// A pull event is pending (with generation `gen`).
    armed: bool,
    generation: u32,
    /// Running share of this consumer's messages that succeed.
    progress: f64,
}

#[derive(Debug, Clone)]
struct QueueRt {
    counts: QueueCounts,
    pacers: std::ops::Range<usize>,
    max_rate: f64,
    max_backlog: f64,
    needs_reconcile: bool,
    outage_left: u64,
    /// The consumers cannot make progress.
    stalled: bool,
    /// The backlog was empty at some time in the current window.
    emptied: bool,
}

/// Every queue of a trial, and per service which queue it is.
#[derive(Debug, Clone, Default)]
pub struct Queues {
    /// Per service: its queue (index into `queues`), if it has a `Queue` role.
    of: Vec<Option<u32>>,
    /// Per service: the pacers of the queues it consumes.
    consumes: Vec<Vec<u32>>,
    queues: Vec<QueueRt>,
    pacers: Vec<Pacer>,
    /// Out-of-order replays over all queues.
    pub out_of_order: u64,
    /// Messages lost over all queues.
    pub lost: u64,
}

impl Queues {
    /// The queues of scenario `s`.
    pub fn new(s: &Scenario) -> Queues {
        let n = s.topology.services.len();
        let mut q = Queues {
            of: vec![None; n],
            consumes: vec![Vec::new(); n],
            ..Queues::default()
        };
        for (i, sv) in s.topology.services.iter().enumerate() {
            for r in &sv.roles {
                if let Role::Queue {
                    consumers,
                    consumer_max_rate,
                    max_backlog,
                } = r
                {
                    let qi = q.queues.len();
                    let first = q.pacers.len();
                    for &c in consumers {
                        q.consumes[c].push(q.pacers.len() as u32);
                        q.pacers.push(Pacer {
                            queue: qi,
                            consumer: c,
                            last: None,
                            armed: false,
                            generation: 0,
                            progress: 1.0,
                        });
                    }
                    q.of[i] = Some(qi as u32);
                    q.queues.push(QueueRt {
                        counts: QueueCounts {
                            service: i,
                            ..QueueCounts::default()
                        },
                        pacers: first..q.pacers.len(),
                        max_rate: *consumer_max_rate,
                        max_backlog: *max_backlog,
                        needs_reconcile: false,
                        outage_left: 0,
                        stalled: false,
                        emptied: true,
                    });
                }
            }
        }
        q
    }

    /// Whether the scenario has a queue.
    pub fn any(&self) -> bool {
        !self.queues.is_empty()
    }

    /// Whether service `s` is a queue.
    #[inline]
    pub fn is_queue(&self, s: usize) -> bool {
        self.of.get(s).is_some_and(|q| q.is_some())
    }

    /// What each queue did so far.
    pub fn counts(&self) -> Vec<QueueCounts> {
        self.queues.iter().map(|q| q.counts).collect()
    }

    /// Offsets aligned: no outage backlog is replayed out of order from now on.
    pub fn reconcile(&mut self) {
        for q in &mut self.queues {
            q.needs_reconcile = false;
            q.outage_left = 0;
        }
    }

    /// Whether some queue holds a backlog that was not empty at any time in the window
    /// ending now (restoration waits for it); starts the next window's record.
    pub fn backlog_held(&mut self) -> bool {
        let mut held = false;
        for q in &mut self.queues {
            let waiting = q.counts.backlog > 0;
            held |= waiting && !q.emptied;
            q.emptied = !waiting;
        }
        held
    }
}

impl RequestTrial<'_> {
    /// Whether the consumer of pacer `p` is up.
    fn consumer_up(&self, p: usize) -> bool {
        let sv = &self.svc[self.queues.pacers[p].consumer];
        !sv.down && sv.servers > 0
    }

    /// The mean progress of queue `qi`'s consumers (a down consumer makes none).
    fn consumer_progress(&self, qi: usize) -> f64 {
        let r = self.queues.queues[qi].pacers.clone();
        let n = r.len();
        if n == 0 {
            return 0.0;
        }
        let sum: f64 = r
            .map(|p| {
                if self.consumer_up(p) {
                    self.queues.pacers[p].progress
                } else {
                    0.0
                }
            })
            .sum();
        sum / n as f64
    }

    /// Whether queue `qi`'s consumers cannot make progress now (updated).
    fn stalled(&mut self, qi: usize) -> bool {
        let p = self.consumer_progress(qi);
        let q = &mut self.queues.queues[qi];
        q.stalled = if q.stalled {
            p < PROGRESS_AGAIN
        } else {
            p < 0.5
        };
        q.stalled
    }

    /// Queue `qi`'s reconciliation state after a change: consumers that cannot progress
    /// before a reconciliation make what is queued an outage backlog.
    fn queue_check(&mut self, qi: usize) {
        let stalled = self.stalled(qi);
        let reconciled = self.ctl.reconciled;
        let q = &mut self.queues.queues[qi];
        if stalled && !reconciled {
            q.needs_reconcile = true;
        }
        if stalled && q.needs_reconcile {
            q.outage_left = q.counts.backlog + q.counts.in_flight;
        }
    }

    /// Seconds between two hand-outs of one consumer of queue `qi` now (infinite when the
    /// ramp lets nothing through).
    fn pull_interval(&self, qi: usize, paced: bool) -> f64 {
        let q = &self.queues.queues[qi];
        let f = if paced { self.ctl.ramp_f } else { 1.0 };
        let rate = q.max_rate * f / q.pacers.len().max(1) as f64;
        if rate > 0.0 {
            1.0 / rate
        } else {
            f64::INFINITY
        }
    }

    /// Schedules pacer `p`'s next hand-out (unless one is pending and `again` is false).
    fn arm(&mut self, p: usize, again: bool, now: u64, q: &mut EventQueue<Ev>) {
        let pc = &self.queues.pacers[p];
        if pc.armed && !again {
            return;
        }
        let qi = pc.queue;
        let backlog = self.queues.queues[qi].counts.backlog;
        if backlog == 0 || !self.consumer_up(p) {
            self.queues.pacers[p].armed = false;
            return;
        }
        // Paced while a backlog is left behind the message to hand out.
        let gap = self.pull_interval(qi, backlog > 1);
        let at = match self.queues.pacers[p].last {
            _ if !gap.is_finite() => None,
            None => Some(now),
            Some(last) => Some(
                last.saturating_add(SimDuration::from_secs_f64(gap).0.max(1))
                    .max(now),
            ),
        };
        let pc = &mut self.queues.pacers[p];
        pc.generation = pc.generation.wrapping_add(1);
        pc.armed = at.is_some();
        if let Some(at) = at
            && at < self.s.horizon.0
        {
            q.push(SimTime(at), Ev::Pull(p as u32, pc.generation));
        }
    }

    /// Arms every idle pacer of queue `qi`.
    fn kick(&mut self, qi: usize, now: u64, q: &mut EventQueue<Ev>) {
        for p in self.queues.queues[qi].pacers.clone() {
            self.arm(p, false, now, q);
        }
    }

    /// A request at queue service `s` did its work: one message is enqueued (or lost).
    pub(super) fn enqueue(&mut self, s: usize, now: u64, q: &mut EventQueue<Ev>) {
        let Some(qi) = self.queues.of[s] else { return };
        let qi = qi as usize;
        let qr = &mut self.queues.queues[qi];
        qr.counts.enqueued += 1;
        if (qr.counts.backlog + 1) as f64 > qr.max_backlog {
            qr.counts.lost += 1;
            self.queues.lost += 1;
            return;
        }
        qr.counts.backlog += 1;
        self.queue_check(qi);
        self.kick(qi, now, q);
    }

    /// Pacer `p`'s hand-out is due: the consumer takes the oldest message.
    pub(super) fn pull(&mut self, p: usize, generation: u32, now: u64, q: &mut EventQueue<Ev>) {
        let pc = &mut self.queues.pacers[p];
        if pc.generation != generation || !pc.armed {
            return;
        }
        pc.armed = false;
        let (qi, consumer) = (pc.queue, pc.consumer);
        if self.queues.queues[qi].counts.backlog == 0 || !self.consumer_up(p) {
            return;
        }
        self.queues.pacers[p].last = Some(now);
        let qr = &mut self.queues.queues[qi];
        qr.counts.backlog -= 1;
        qr.counts.in_flight += 1;
        if qr.counts.backlog == 0 {
            qr.emptied = true;
        }
        let r = self.new_req(consumer, MSG, p as u32, now, u64::MAX);
        self.arrive(r, now, q);
        self.arm(p, false, now, q);
    }

    /// The request for a message of pacer `p` is over: consumed, or back to the queue.
    pub(super) fn message_done(&mut self, p: usize, ok: bool, now: u64, q: &mut EventQueue<Ev>) {
        let pc = &mut self.queues.pacers[p];
        let x = if ok { 1.0 } else { 0.0 };
        pc.progress += PROGRESS_WEIGHT * (x - pc.progress);
        let qi = pc.queue;
        let stalled = self.stalled(qi);
        let qr = &mut self.queues.queues[qi];
        qr.counts.in_flight -= 1;
        if ok {
            qr.counts.consumed += 1;
            if qr.needs_reconcile && qr.outage_left > 0 && !stalled {
                // Consumers re-attached before reconciliation: the outage backlog is replayed
                // first, out of order with what they expect.
                qr.outage_left -= 1;
                qr.counts.out_of_order += 1;
                self.queues.out_of_order += 1;
            }
            if qr.counts.backlog == 0 && qr.counts.in_flight == 0 && !stalled {
                // Drained: nothing of the outage is left to replay.
                qr.needs_reconcile = false;
                qr.outage_left = 0;
            }
        } else {
            qr.counts.redelivered += 1;
            if (qr.counts.backlog + 1) as f64 > qr.max_backlog {
                qr.counts.lost += 1;
                self.queues.lost += 1;
            } else {
                qr.counts.backlog += 1;
            }
        }
        self.queue_check(qi);
        self.kick(qi, now, q);
    }

    /// Service `s` changed state (a fault, the plan): the queues it consumes re-check their
    /// consumers, and hand out again if it is up.
    pub(super) fn consumer_changed(&mut self, s: usize, now: u64, q: &mut EventQueue<Ev>) {
        for k in 0..self.queues.consumes[s].len() {
            let p = self.queues.consumes[s][k] as usize;
            let qi = self.queues.pacers[p].queue;
            self.queue_check(qi);
            self.arm(p, false, now, q);
        }
    }

    /// The ramp's share changed: pending hand-outs are rescheduled at the new pace.
    pub(super) fn repace(&mut self, now: u64, q: &mut EventQueue<Ev>) {
        for p in 0..self.queues.pacers.len() {
            self.arm(p, true, now, q);
        }
    }
}
