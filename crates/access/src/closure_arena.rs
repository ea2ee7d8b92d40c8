//! Runs of principal slots, one run per slot, back to back in one buffer: every group's
//! closure, and every user's access set (both in `principals.rs`). One heap allocation per
//! run meant, at the full benchmark size, a pointer and then its target to read per group
//! of a user: two cache misses each, about a third of an `allows`. Here the spans and the
//! runs are two dense arrays.
//!
//! A run that shrinks or keeps its length is rewritten in place; one that grows is
//! appended and its old entries become dead. When the dead entries outnumber the live ones
//! the buffer is compacted, so it never holds more than about twice what is live, and the
//! amortised cost of a replacement stays proportional to the closure's length.

/// Where one slot's closure sits in [`ClosureArena::data`].
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: usize,
    len: u32,
    /// What the owner of the arena says the run was computed at (see
    /// [`ClosureArena::get_stamped`]); in the padding the span has anyway.
    stamp: u32,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        self.start..self.start + self.len as usize
    }
}

/// A closure per principal slot (empty for users, service principals, and inactive or
/// removed groups), stored back to back.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClosureArena {
    spans: Vec<Span>,
    data: Vec<u32>,
    /// Entries of `data` that no span covers any more.
    dead: usize,
}

/// Below this many dead entries the buffer is never compacted: copying a small buffer often
/// would cost more than the space.
const COMPACT_AFTER_DEAD: usize = 4096;

impl ClosureArena {
    /// The closure of `slot`; empty for a slot never pushed.
    pub(crate) fn get(&self, slot: u32) -> &[u32] {
        match self.spans.get(slot as usize) {
            Some(span) => self.data.get(span.range()).unwrap_or(&[]),
            None => &[],
        }
    }

    /// The run of `slot` and its stamp, read together (one cache line).
    pub(crate) fn get_stamped(&self, slot: u32) -> (&[u32], u32) {
        match self.spans.get(slot as usize) {
            Some(span) => (self.data.get(span.range()).unwrap_or(&[]), span.stamp),
            None => (&[], 0),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Adds the closure of the next slot.
    pub(crate) fn push(&mut self, closure: &[u32]) {
        self.push_stamped(closure, 0);
    }

    pub(crate) fn push_stamped(&mut self, closure: &[u32], stamp: u32) {
        let mut span = self.append(closure);
        span.stamp = stamp;
        self.spans.push(span);
    }

    /// Sets every stamp to `stamp`.
    pub(crate) fn restamp_all(&mut self, stamp: u32) {
        for span in &mut self.spans {
            span.stamp = stamp;
        }
    }

    /// Replaces the closure of `slot` (an existing one).
    pub(crate) fn set(&mut self, slot: u32, closure: &[u32]) {
        self.set_stamped(slot, closure, 0);
    }

    /// Replaces the run of `slot` (an existing one) and its stamp.
    pub(crate) fn set_stamped(&mut self, slot: u32, closure: &[u32], stamp: u32) {
        let Some(old) = self.spans.get(slot as usize).copied() else {
            return;
        };
        let span = if closure.len() <= old.len as usize {
            let start = old.start;
            self.data[start..start + closure.len()].copy_from_slice(closure);
            self.dead += old.len as usize - closure.len();
            Span {
                start,
                len: closure.len() as u32,
                stamp,
            }
        } else {
            self.dead += old.len as usize;
            Span {
                stamp,
                ..self.append(closure)
            }
        };
        self.spans[slot as usize] = span;
        if self.dead > COMPACT_AFTER_DEAD && self.dead > self.data.len() - self.dead {
            self.compact();
        }
    }

    fn append(&mut self, closure: &[u32]) -> Span {
        let start = self.data.len();
        self.data.extend_from_slice(closure);
        Span {
            start,
            // A closure lists distinct principal slots, which are `u32`s, so its length fits.
            len: closure.len() as u32,
            stamp: 0,
        }
    }

    /// Rewrites the buffer with only the live closures, in slot order.
    fn compact(&mut self) {
        let mut data = Vec::with_capacity(self.data.len() - self.dead);
        for span in &mut self.spans {
            let start = data.len();
            data.extend_from_slice(&self.data[span.range()]);
            span.start = start;
        }
        self.data = data;
        self.dead = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacements_in_place_and_appended_read_back_and_compaction_keeps_every_closure() {
        let mut arena = ClosureArena::default();
        let slots = 3_000u32;
        for slot in 0..slots {
            arena.push(&[slot]);
        }
        // Grow every closure several times (appends, then compactions), then shrink some.
        for round in 1..6u32 {
            for slot in 0..slots {
                let closure: Vec<u32> = (0..=round).map(|i| slot + i).collect();
                arena.set(slot, &closure);
            }
        }
        for slot in (0..slots).step_by(2) {
            arena.set(slot, &[slot, 7]);
        }
        for slot in 0..slots {
            let expected: Vec<u32> = if slot % 2 == 0 {
                vec![slot, 7]
            } else {
                (0..=5).map(|i| slot + i).collect()
            };
            assert_eq!(arena.get(slot), expected.as_slice(), "slot {slot}");
        }
        assert!(
            arena.data.len() <= 2 * (arena.data.len() - arena.dead) + COMPACT_AFTER_DEAD,
            "dead entries are reclaimed"
        );
        assert_eq!(arena.get(slots + 10), &[] as &[u32]);
    }
}
