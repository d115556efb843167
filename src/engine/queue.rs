//! The event queue: a min-heap ordered by `(time, sequence)`.
//!
//! Invariant: the order is total and independent of the payload. Two events scheduled for the
//! same [`SimTime`] come out in the order they were pushed (FIFO), because every push takes the
//! next value of a per-queue sequence counter. Nothing else (no hash, no address, no thread) can
//! influence the order, which is what makes a trial replayable.
//!
//! A simulation mostly pops an event and then schedules the next one. So a pop leaves the
//! earliest entry in place, marked taken, and the next push overwrites it and sifts it down
//! once, where a plain heap would sift twice (down for the pop, up for the push); any other
//! operation removes the taken entry first. Events are `Copy` (they are small tags).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::time::SimTime;

/// A heap entry: `key = time << 64 | seq`, so one integer comparison orders by time, then by
/// insertion sequence.
struct Entry<E> {
    key: u128,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    /// Reversed so that `BinaryHeap` (a max-heap) pops the smallest key first.
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

/// A priority queue of events keyed by `(time, insertion sequence)`.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    next_seq: u64,
    /// The top entry was returned by `pop` and is no longer pending.
    taken: bool,
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Copy> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            next_seq: 0,
            taken: false,
        }
    }

    /// An empty queue with room for `n` events.
    pub fn with_capacity(n: usize) -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(n),
            next_seq: 0,
            taken: false,
        }
    }

    /// Removes the entry `pop` returned, if it is still in the heap.
    #[inline]
    fn drop_taken(&mut self) {
        if self.taken {
            self.heap.pop();
            self.taken = false;
        }
    }

    /// Schedules `event` at `time`. Events at equal times pop in push order.
    #[inline]
    pub fn push(&mut self, time: SimTime, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            key: (u128::from(time.0) << 64) | u128::from(seq),
            event,
        };
        if self.taken {
            self.taken = false;
            if let Some(mut top) = self.heap.peek_mut() {
                // Overwrites the taken entry; the heap sifts it down when `top` drops.
                *top = entry;
                return;
            }
        }
        self.heap.push(entry);
    }

    /// Removes and returns the earliest event.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        self.drop_taken();
        let top = self.heap.peek()?;
        let out = (SimTime((top.key >> 64) as u64), top.event);
        self.taken = true;
        Some(out)
    }

    /// The time of the earliest event, if any.
    #[inline]
    pub fn peek_time(&mut self) -> Option<SimTime> {
        self.drop_taken();
        self.heap.peek().map(|e| SimTime((e.key >> 64) as u64))
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len() - usize::from(self.taken)
    }

    /// True when no event is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every pending event and restarts the sequence (reuse between trials).
    pub fn clear(&mut self) {
        self.heap.clear();
        self.next_seq = 0;
        self.taken = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn equal_times_pop_fifo() {
        let mut q = EventQueue::new();
        q.push(SimTime(5), 'a');
        q.push(SimTime(1), 'b');
        q.push(SimTime(5), 'c');
        q.push(SimTime(1), 'd');
        let order: Vec<char> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, vec!['b', 'd', 'a', 'c']);
    }

    proptest! {
        /// The engine's pattern: every push at or after the time just popped, times spread
        /// over the whole `u64` range, equal times frequent.
        #[test]
        fn monotone_pushes_match_btreemap_shadow(
            ops in proptest::collection::vec((0u8..3, any::<u64>(), 0u32..4), 0..3000)
        ) {
            let mut q = EventQueue::new();
            let mut shadow = BTreeMap::new();
            let (mut seq, mut now) = (0u64, 0u64);
            for (op, x, shift) in ops {
                if op < 2 {
                    // Same instant, a few ns, up to a millisecond, or anywhere ahead.
                    let dt = match shift { 0 => 0, 1 => x % 4, 2 => x % 1_000_000, _ => x };
                    let t = now.saturating_add(dt);
                    q.push(SimTime(t), seq);
                    shadow.insert((t, seq), seq);
                    seq += 1;
                } else {
                    let want = shadow.pop_first().map(|((t, _), v)| (SimTime(t), v));
                    prop_assert_eq!(q.peek_time(), want.map(|w| w.0));
                    let got = q.pop();
                    prop_assert_eq!(got, want);
                    if let Some((t, _)) = got {
                        now = t.0;
                    }
                }
                prop_assert_eq!(q.len(), shadow.len());
            }
        }

        /// The queue behaves exactly like a BTreeMap keyed by (time, seq) under random operations.
        #[test]
        fn matches_btreemap_shadow(ops in proptest::collection::vec((any::<bool>(), 0u64..50), 0..2000)) {
            let mut q = EventQueue::new();
            let mut shadow = BTreeMap::new();
            let mut seq = 0u64;
            for (is_push, t) in ops {
                if is_push {
                    q.push(SimTime(t), seq);
                    shadow.insert((t, seq), seq);
                    seq += 1;
                } else {
                    let want = shadow.pop_first().map(|((t, _), v)| (SimTime(t), v));
                    prop_assert_eq!(q.pop(), want);
                }
                prop_assert_eq!(q.len(), shadow.len());
            }
        }
    }
}
