//! The re-entry storm peak: the highest offered load / capacity of any service over a window
//! of `storm_window` simulated seconds, during the recovery phases of a trial.
//!
//! Offered load counts every attempt that reaches a service that is up (retries, released
//! deferred calls and impulses included; attempts refused because the service is down are not
//! load on it); capacity is integrated over the same window. Between events the rates are
//! constant, so the cumulative offered load `A(t)` and capacity `C(t)` are piecewise linear
//! (with jumps at impulses), and the ratio `(A(u + W) - A(u)) / (C(u + W) - C(u))` of a window
//! `[u, u + W]` is a linear-fractional, hence monotone, function of `u` between breakpoints:
//! its maximum is reached where the window starts or ends at a breakpoint. Those windows are
//! evaluated exactly, lazily (a window is evaluated once its end is known), and the peak is
//! independent of any numerical step. Windows lie inside one recovery phase; a phase shorter
//! than the window is measured as a whole.

use std::collections::VecDeque;

use crate::engine::SimTime;

/// A stretch of constant rates of one service, from `start`.
#[derive(Debug, Clone, Copy)]
struct Piece {
    /// Start, simulated seconds.
    start: f64,
    /// Offered load and capacity before `start` since the phase began (impulse at `start`
    /// excluded).
    a0: f64,
    c0: f64,
    /// Calls landing as an impulse at `start`.
    jump: f64,
    /// Offered load and capacity rates from `start`.
    a: f64,
    c: f64,
    /// The window starting here was evaluated.
    done: bool,
    /// Its ratio exceeded the peak when it began, or calls landed at its start: windows
    /// over it may raise the peak. Windows over pieces that are none of this cannot (the
    /// ratio of sums is at most the largest ratio), and are not evaluated.
    hot: bool,
}

impl Piece {
    /// Cumulative offered load at `t` within this piece, with the impulse at `start` counted
    /// when `t > start` or `with_jump`.
    fn a_at(&self, t: f64, with_jump: bool) -> f64 {
        let jump = if t > self.start || with_jump {
            self.jump
        } else {
            0.0
        };
        self.a0 + jump + self.a * (t - self.start)
    }

    fn c_at(&self, t: f64) -> f64 {
        self.c0 + self.c * (t - self.start)
    }
}

/// The storm meter of one trial.
#[derive(Debug, Clone)]
pub(super) struct StormMeter {
    /// Window length, seconds.
    window: f64,
    /// The peak so far.
    pub peak: f64,
    /// Start of the current recovery phase (None: not in one).
    phase: Option<f64>,
    /// Per service: its pieces since the window before the latest breakpoint.
    pieces: Vec<VecDeque<Piece>>,
    /// Per service: the rates of its latest piece (while a phase is measured, when every
    /// service has one), kept apart for the comparison every solution makes.
    rates: Vec<(f64, f64)>,
}

impl StormMeter {
    /// A meter for `n` services with a window of `window_s` seconds.
    pub fn new(n: usize, window_s: f64) -> Self {
        StormMeter {
            window: window_s,
            peak: 0.0,
            phase: None,
            // (Room for the few pieces a cold service keeps, so they rarely grow.)
            pieces: (0..n).map(|_| VecDeque::with_capacity(4)).collect(),
            rates: vec![(0.0, 0.0); n],
        }
    }

    /// Whether a recovery phase is being measured.
    pub fn active(&self) -> bool {
        self.phase.is_some()
    }

    /// A recovery phase starts at `now` with the given (offered, capacity) rates per service.
    pub fn begin(&mut self, now: SimTime, rates: impl Iterator<Item = (f64, f64)>) {
        let t = now.as_secs_f64();
        self.phase = Some(t);
        for ((q, last), (a, c)) in self.pieces.iter_mut().zip(&mut self.rates).zip(rates) {
            *last = (a, c);
            q.clear();
            q.push_back(Piece {
                start: t,
                a0: 0.0,
                c0: 0.0,
                jump: 0.0,
                a,
                c,
                done: false,
                hot: true,
            });
        }
    }

    /// Service `s` has rates (`a`, `c`) from `now` on (call only when they changed).
    #[cfg(test)]
    pub fn set(&mut self, s: usize, now: SimTime, a: f64, c: f64) {
        self.rates[s] = (a, c);
        self.breakpoint(s, now.as_secs_f64(), 0.0, Some((a, c)));
    }

    /// The rates of every service from `now` on: a breakpoint for each whose rates changed.
    pub fn observe(&mut self, now: SimTime, rates: impl Iterator<Item = (f64, f64)>) {
        if self.phase.is_none() {
            return;
        }
        let t = now.as_secs_f64();
        for (s, (a, c)) in rates.enumerate() {
            let last = &mut self.rates[s];
            if last.0.to_bits() == a.to_bits() && last.1.to_bits() == c.to_bits() {
                continue;
            }
            *last = (a, c);
            if !cold_step(&mut self.pieces[s], t, self.window, self.peak, a, c) {
                self.breakpoint(s, t, 0.0, Some((a, c)));
            }
        }
    }

    /// `amount` calls land on service `s` at once, at `now`.
    pub fn impulse(&mut self, s: usize, now: SimTime, amount: f64) {
        if self.phase.is_none() {
            return;
        }
        self.breakpoint(s, now.as_secs_f64(), amount, None);
    }

    /// The recovery phase ends at `now` (a fault starts, or the trial ends): every window
    /// inside it is evaluated.
    pub fn end(&mut self, now: SimTime) {
        let Some(p0) = self.phase else { return };
        let t = now.as_secs_f64();
        for s in 0..self.pieces.len() {
            if self.pieces[s].is_empty() {
                continue;
            }
            self.breakpoint(s, t, 0.0, None);
            if t - p0 < self.window {
                // A phase shorter than the window: measured as a whole.
                let q = &self.pieces[s];
                if let (Some(first), Some(last)) = (q.front(), q.back()) {
                    let a = last.a_at(t, true) - first.a0;
                    let c = last.c_at(t) - first.c0;
                    self.peak = ratio_max(self.peak, a, c);
                }
            }
            self.pieces[s].clear();
        }
        self.phase = None;
    }

    /// Adds a breakpoint at `t` to service `s` (with `jump` calls landing then, and new rates
    /// when given), evaluates the windows whose end is now known, and drops pieces no window
    /// needs any more.
    fn breakpoint(&mut self, s: usize, t: f64, jump: f64, rates: Option<(f64, f64)>) {
        let Some(p0) = self.phase else { return };
        let w = self.window;
        let peak = self.peak;
        let q = &mut self.pieces[s];
        let Some(&last) = q.back() else { return };
        let (a, c) = rates.unwrap_or((last.a, last.c));
        if jump == 0.0 && cold_step(q, t, w, peak, a, c) {
            return;
        }
        let hot = jump > 0.0 || c > 0.0 && a > peak * c;
        if t > last.start {
            q.push_back(Piece {
                start: t,
                a0: last.a_at(t, false),
                c0: last.c_at(t),
                jump,
                a,
                c,
                done: false,
                hot,
            });
        } else if let Some(l) = q.back_mut() {
            // Same instant: one more impulse, or the rates from now on.
            l.jump += jump;
            l.a = a;
            l.c = c;
            l.hot |= hot;
        }
        if !q.iter().any(|p| p.hot) {
            // No window over these pieces can raise the peak: those that ended are done, and
            // only what later windows may reach back to is kept.
            for p in q.iter_mut() {
                p.done |= p.start + w <= t;
            }
            while q.len() > 1 && q[1].start <= t - w {
                q.pop_front();
            }
            return;
        }
        let mut peak = self.peak;
        // Windows ending now, `[t - w, t]`.
        let u = t - w;
        if u >= p0 {
            if let Some(first) = piece_at(q, u) {
                let end = q.back().map_or(0.0, |l| l.a_at(t, true));
                let a = end - first.a_at(u, false);
                let c = q.back().map_or(0.0, |l| l.c_at(t)) - first.c_at(u);
                peak = ratio_max(peak, a, c);
            }
        }
        // Windows starting at earlier breakpoints whose end has passed, `[start, start + w]`.
        let n = q.len();
        for k in 0..n {
            let start = q[k].start;
            if start + w > t {
                // (Sorted by start: no later window has ended either.)
                break;
            }
            if q[k].done {
                continue;
            }
            let v = start + w;
            if let Some(endp) = piece_at(q, v) {
                let a = endp.a_at(v, true) - q[k].a0;
                let c = endp.c_at(v) - q[k].c0;
                peak = ratio_max(peak, a, c);
            }
            q[k].done = true;
        }
        self.peak = peak;
        // Pieces that end before `t - w` and whose windows were evaluated are not needed.
        while q.len() > 1 && q[1].start <= t - w && q[0].done {
            q.pop_front();
        }
    }
}

/// The common case of a breakpoint without an impulse, done here when it applies (returns
/// whether it did): cold before and after, with few pieces kept. What later windows may reach
/// back to is kept (windows over cold pieces cannot raise the peak and are never evaluated).
/// ([`StormMeter::observe`] calls it first: most breakpoints need no more.)
#[inline(always)]
fn cold_step(q: &mut VecDeque<Piece>, t: f64, w: f64, peak: f64, a: f64, c: f64) -> bool {
    if c > 0.0 && a > peak * c || q.len() > 2 || q.front().is_none_or(|p| p.hot) {
        return false;
    }
    let Some(last) = q.back_mut() else {
        return false;
    };
    if last.hot {
        return false;
    }
    if t > last.start {
        let (a0, c0) = (last.a_at(t, false), last.c_at(t));
        if q.len() == 2 && q[1].start <= t - w {
            q.pop_front();
        }
        q.push_back(Piece {
            start: t,
            a0,
            c0,
            jump: 0.0,
            a,
            c,
            done: false,
            hot: false,
        });
    } else {
        last.a = a;
        last.c = c;
    }
    true
}

/// The piece containing time `t` (the last one starting at or before it).
#[inline]
fn piece_at(q: &VecDeque<Piece>, t: f64) -> Option<Piece> {
    let k = q.partition_point(|p| p.start <= t);
    if k == 0 { None } else { Some(q[k - 1]) }
}

/// The larger of `peak` and `a / c` (windows with no capacity are skipped).
fn ratio_max(peak: f64, a: f64, c: f64) -> f64 {
    if c > 0.0 { peak.max(a / c) } else { peak }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SimDuration;

    fn at(s: f64) -> SimTime {
        SimTime(SimDuration::from_secs_f64(s).0)
    }

    #[test]
    fn a_steady_overload_is_its_ratio() {
        let mut m = StormMeter::new(1, 1.0);
        m.begin(at(0.0), [(150.0, 100.0)].into_iter());
        m.end(at(100.0));
        assert!((m.peak - 1.5).abs() < 1e-12);
    }

    #[test]
    fn a_short_spike_is_averaged_over_the_window() {
        // 0.1 s at 10x, the rest at 1x: the best 1 s window holds the spike and 0.9 s of 1x.
        let mut m = StormMeter::new(1, 1.0);
        m.begin(at(0.0), [(100.0, 100.0)].into_iter());
        m.set(0, at(10.0), 1000.0, 100.0);
        m.set(0, at(10.1), 100.0, 100.0);
        m.end(at(100.0));
        assert!((m.peak - 1.9).abs() < 1e-9, "{}", m.peak);
        // With a 0.1 s window the spike itself is the peak.
        let mut m = StormMeter::new(1, 0.1);
        m.begin(at(0.0), [(100.0, 100.0)].into_iter());
        m.set(0, at(10.0), 1000.0, 100.0);
        m.set(0, at(10.1), 100.0, 100.0);
        m.end(at(100.0));
        assert!((m.peak - 10.0).abs() < 1e-9, "{}", m.peak);
    }

    #[test]
    fn an_impulse_lands_in_one_window() {
        let mut m = StormMeter::new(1, 1.0);
        m.begin(at(0.0), [(100.0, 100.0)].into_iter());
        m.impulse(0, at(50.0), 5000.0);
        m.end(at(100.0));
        assert!((m.peak - 51.0).abs() < 1e-9, "{}", m.peak);
        // Two impulses 0.5 s apart share a window.
        let mut m = StormMeter::new(1, 1.0);
        m.begin(at(0.0), [(100.0, 100.0)].into_iter());
        m.impulse(0, at(50.0), 5000.0);
        m.impulse(0, at(50.5), 5000.0);
        m.end(at(100.0));
        assert!((m.peak - 101.0).abs() < 1e-9, "{}", m.peak);
    }

    #[test]
    fn nothing_outside_a_phase_counts() {
        let mut m = StormMeter::new(1, 1.0);
        m.impulse(0, at(5.0), 1e9);
        m.begin(at(10.0), [(50.0, 100.0)].into_iter());
        m.end(at(20.0));
        m.impulse(0, at(25.0), 1e9);
        assert!((m.peak - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_phase_shorter_than_the_window_is_measured_whole() {
        let mut m = StormMeter::new(1, 10.0);
        m.begin(at(0.0), [(300.0, 100.0)].into_iter());
        m.end(at(2.0));
        assert!((m.peak - 3.0).abs() < 1e-12);
    }
}
