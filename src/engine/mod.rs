//! The discrete-event kernel: integer time, a `(time, seq)`-ordered queue, and the step loop.
//!
//! The kernel knows nothing about services, traffic or failures. A model implements
//! [`Process`]: it is told to integrate its continuous state over every interval between two
//! events ([`Process::advance`]), and then to handle the event ([`Process::handle`]), which may
//! schedule more events. The flow-level model in [`crate::flow`] is one such process; a
//! request-level model can be another, sharing scenarios, plans and metrics.
//!
//! Invariants: events are handled in non-decreasing time order; [`Process::advance`] is called
//! with contiguous, non-overlapping intervals covering `[0, horizon]` exactly once; nothing after
//! the horizon is handled.

pub mod queue;
pub mod time;

pub use queue::EventQueue;
pub use time::{SimDuration, SimTime};

/// A model driven by the kernel.
pub trait Process {
    /// The events this model schedules.
    type Event: Copy;

    /// Integrates the model's continuous state (flows, backlogs, accumulated metrics) over
    /// `[from, to)`, during which nothing changes but time.
    fn advance(&mut self, from: SimTime, to: SimTime);

    /// Handles one event at `now`; may push further events.
    fn handle(&mut self, now: SimTime, event: Self::Event, queue: &mut EventQueue<Self::Event>);
}

/// Runs `process` until the queue is empty or the next event lies beyond `horizon`, then
/// integrates up to the horizon. Events exactly at the horizon are handled. Returns the number
/// of events handled.
pub fn run<P: Process>(process: &mut P, queue: &mut EventQueue<P::Event>, horizon: SimTime) -> u64 {
    match run_bounded(process, queue, horizon, u64::MAX) {
        Ok(n) => n,
        Err((n, _)) => n,
    }
}

/// Like [`run`], but stops after `max_events` events: `Err((handled, time reached))`. A model
/// bug that schedules events ever closer together then ends in an error, not a hang.
pub fn run_bounded<P: Process>(
    process: &mut P,
    queue: &mut EventQueue<P::Event>,
    horizon: SimTime,
    max_events: u64,
) -> Result<u64, (u64, SimTime)> {
    let mut now = SimTime::ZERO;
    let mut handled = 0u64;
    while let Some(t) = queue.peek_time() {
        if t > horizon {
            break;
        }
        if handled >= max_events {
            return Err((handled, now));
        }
        let Some((t, event)) = queue.pop() else { break };
        if t > now {
            process.advance(now, t);
            now = t;
        }
        process.handle(now, event, queue);
        handled += 1;
    }
    if horizon > now {
        process.advance(now, horizon);
    }
    Ok(handled)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A counter that integrates a rate and doubles it at each event.
    struct Doubling {
        rate: f64,
        total: f64,
        intervals: Vec<(u64, u64)>,
    }

    impl Process for Doubling {
        type Event = ();
        fn advance(&mut self, from: SimTime, to: SimTime) {
            self.total += self.rate * to.since(from).as_secs_f64();
            self.intervals.push((from.0, to.0));
        }
        fn handle(&mut self, now: SimTime, _: (), q: &mut EventQueue<()>) {
            self.rate *= 2.0;
            if now.0 < 3 * time::NANOS_PER_SEC {
                q.push(now.plus(SimDuration::from_secs(1)), ());
            }
        }
    }

    /// A process that reschedules itself 1 ns later forever (a Zeno bug).
    struct Zeno;
    impl Process for Zeno {
        type Event = ();
        fn advance(&mut self, _: SimTime, _: SimTime) {}
        fn handle(&mut self, now: SimTime, _: (), q: &mut EventQueue<()>) {
            q.push(SimTime(now.0 + 1), ());
        }
    }

    #[test]
    fn a_runaway_process_is_stopped_at_its_budget() {
        let mut q = EventQueue::new();
        q.push(SimTime::ZERO, ());
        let out = run_bounded(&mut Zeno, &mut q, SimTime(u64::MAX / 2), 1000);
        assert_eq!(out, Err((1000, SimTime(999))));
    }

    #[test]
    fn intervals_tile_the_horizon_and_integrate_exactly() {
        let mut p = Doubling {
            rate: 1.0,
            total: 0.0,
            intervals: vec![],
        };
        let mut q = EventQueue::new();
        q.push(SimTime(time::NANOS_PER_SEC), ());
        let handled = run(&mut p, &mut q, SimTime(10 * time::NANOS_PER_SEC));
        assert_eq!(handled, 3);
        // rate 1 for 1 s, 2 for 1 s, 4 for 1 s, then 8 for 7 s.
        assert_eq!(p.total, 1.0 + 2.0 + 4.0 + 56.0);
        let mut t = 0;
        for (a, b) in &p.intervals {
            assert_eq!(*a, t);
            t = *b;
        }
        assert_eq!(t, 10 * time::NANOS_PER_SEC);
    }
}
