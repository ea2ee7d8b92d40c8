//! Runs of principal slots, one run per slot, stored back to back in a few large buffers:
//! every group's closure, and every user's access set (both in `principals.rs`). One heap
//! allocation per run meant, at the full benchmark size, a pointer and then its target to
//! read per group of a user: two cache misses each, about a third of an `allows`. Here the
//! spans are one dense array and the runs sit in chunks of a mebibyte.
//!
//! A run that shrinks or keeps its length is rewritten in place; one that grows is appended
//! to the chunk being filled and its old entries become dead. Chunks, rather than one
//! buffer, because the engine changes under a lock every check waits on: one buffer of a
//! million users' access sets (hundreds of MB) had to be copied whole whenever it outgrew its
//! allocation or was compacted, which held every check for about a second. With chunks an
//! append never moves what is already stored, and a chunk whose dead entries reach half of
//! it is emptied by moving its live runs (at most half a chunk) to the chunk being filled,
//! so no change copies more than half a mebibyte, and the chunks never hold much more than
//! twice what is live.

/// Entries in a chunk: 1 MiB of `u32`. Small enough that emptying one is well under a
/// millisecond, large enough that chunks stay few and runs rarely straddle a chunk's end.
const CHUNK_ENTRIES: usize = 1 << 18;

/// Where one slot's run sits. 16 bytes, as the single buffer's `(start, len, stamp)` was.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    chunk: u32,
    offset: u32,
    len: u32,
    /// What the owner of the arena says the run was computed at (see
    /// [`ClosureArena::get_stamped`]).
    stamp: u32,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        self.offset as usize..self.offset as usize + self.len as usize
    }
}

#[derive(Debug, Clone, Default)]
struct Chunk {
    /// Never grown past the capacity it was made with, so appending never moves a run.
    data: Vec<u32>,
    /// Entries of `data` that no span covers any more.
    dead: usize,
    /// The slots whose runs were appended here, to find the live ones when the chunk is
    /// emptied; a slot whose run has since moved away is passed over then.
    placed: Vec<u32>,
}

impl Chunk {
    fn with_capacity(entries: usize) -> Chunk {
        Chunk {
            data: Vec::with_capacity(entries),
            dead: 0,
            placed: Vec::new(),
        }
    }

    fn room(&self) -> usize {
        self.data.capacity() - self.data.len()
    }

    fn is_sparse(&self) -> bool {
        !self.data.is_empty() && self.dead * 2 >= self.data.len()
    }
}

/// A run per principal slot: a group's closure (empty for users, service principals, and
/// inactive or removed groups), or a user's or service principal's access set.
#[derive(Debug, Clone)]
pub(crate) struct ClosureArena {
    spans: Vec<Span>,
    chunks: Vec<Chunk>,
    /// The chunk runs are appended to, while it has room; a run longer than a chunk gets a
    /// chunk of its own and leaves this one as it is.
    filling: Option<u32>,
    /// Emptied chunks whose places in `chunks` are free to reuse.
    free: Vec<u32>,
    /// Chunks that stopped being filled and have not been looked at since: each is emptied
    /// if it is already sparse, as it may never see another change.
    retired: Vec<u32>,
    chunk_entries: usize,
}

impl Default for ClosureArena {
    fn default() -> Self {
        ClosureArena::with_chunk_entries(CHUNK_ENTRIES)
    }
}

impl ClosureArena {
    fn with_chunk_entries(chunk_entries: usize) -> ClosureArena {
        ClosureArena {
            spans: Vec::new(),
            chunks: Vec::new(),
            filling: None,
            free: Vec::new(),
            retired: Vec::new(),
            chunk_entries,
        }
    }

    /// The run of `slot`; empty for a slot never pushed.
    pub(crate) fn get(&self, slot: u32) -> &[u32] {
        self.get_stamped(slot).0
    }

    /// The run of `slot` and its stamp, read together (one cache line).
    pub(crate) fn get_stamped(&self, slot: u32) -> (&[u32], u32) {
        match self.spans.get(slot as usize) {
            Some(span) => (
                self.chunks
                    .get(span.chunk as usize)
                    .and_then(|chunk| chunk.data.get(span.range()))
                    .unwrap_or(&[]),
                span.stamp,
            ),
            None => (&[], 0),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Adds the run of the next slot.
    pub(crate) fn push(&mut self, run: &[u32]) {
        self.push_stamped(run, 0);
    }

    pub(crate) fn push_stamped(&mut self, run: &[u32], stamp: u32) {
        // A slot number is a `u32` by the engine's construction (it indexes principals).
        let slot = self.spans.len() as u32;
        let span = self.append(slot, run);
        self.spans.push(Span { stamp, ..span });
        self.settle();
    }

    /// Sets every stamp to `stamp`.
    pub(crate) fn restamp_all(&mut self, stamp: u32) {
        for span in &mut self.spans {
            span.stamp = stamp;
        }
    }

    /// Replaces the run of `slot` (an existing one).
    pub(crate) fn set(&mut self, slot: u32, run: &[u32]) {
        self.set_stamped(slot, run, 0);
    }

    /// Replaces the run of `slot` (an existing one) and its stamp.
    pub(crate) fn set_stamped(&mut self, slot: u32, run: &[u32], stamp: u32) {
        let Some(old) = self.spans.get(slot as usize).copied() else {
            return;
        };
        // An emptied run points nowhere: its old chunk may be emptied and reused later.
        if !run.is_empty() && run.len() <= old.len as usize {
            let chunk = &mut self.chunks[old.chunk as usize];
            let start = old.offset as usize;
            chunk.data[start..start + run.len()].copy_from_slice(run);
            chunk.dead += old.len as usize - run.len();
            self.spans[slot as usize] = Span {
                len: run.len() as u32,
                stamp,
                ..old
            };
        } else {
            if old.len > 0 {
                self.chunks[old.chunk as usize].dead += old.len as usize;
            }
            let span = self.append(slot, run);
            self.spans[slot as usize] = Span { stamp, ..span };
        }
        if old.len > 0 {
            self.empty_if_sparse(old.chunk);
        }
        self.settle();
    }

    /// Stores `run` for `slot` where there is room and says where; the caller records it.
    fn append(&mut self, slot: u32, run: &[u32]) -> Span {
        if run.is_empty() {
            return Span::default();
        }
        let with_room = self
            .filling
            .filter(|filling| self.chunks[*filling as usize].room() >= run.len());
        let chunk = match with_room {
            Some(filling) => filling,
            None if run.len() > self.chunk_entries => self.new_chunk(run.len()),
            None => {
                let chunk = self.new_chunk(self.chunk_entries);
                self.retired.extend(self.filling.replace(chunk));
                chunk
            }
        };
        let stored = &mut self.chunks[chunk as usize];
        let offset = stored.data.len() as u32;
        stored.data.extend_from_slice(run);
        stored.placed.push(slot);
        Span {
            chunk,
            offset,
            len: run.len() as u32,
            stamp: 0,
        }
    }

    fn new_chunk(&mut self, entries: usize) -> u32 {
        let chunk = Chunk::with_capacity(entries);
        match self.free.pop() {
            Some(index) => {
                self.chunks[index as usize] = chunk;
                index
            }
            None => {
                self.chunks.push(chunk);
                (self.chunks.len() - 1) as u32
            }
        }
    }

    /// Empties the chunk that stopped being filled, if it is already sparse, and whichever
    /// chunk that in turn retires.
    fn settle(&mut self) {
        while let Some(chunk) = self.retired.pop() {
            self.empty_if_sparse(chunk);
        }
    }

    /// Moves the live runs out of `chunk` and frees it, when at least half of it is dead and
    /// it is not the one being filled.
    fn empty_if_sparse(&mut self, chunk: u32) {
        let sparse = self
            .chunks
            .get(chunk as usize)
            .is_some_and(Chunk::is_sparse);
        if !sparse || self.filling == Some(chunk) {
            return;
        }
        let emptied = std::mem::take(&mut self.chunks[chunk as usize]);
        for slot in emptied.placed {
            let span = self.spans[slot as usize];
            // Passed over: runs that moved on (or became empty) since they were placed here,
            // and a slot placed here twice, once it has been moved.
            if span.chunk != chunk || span.len == 0 {
                continue;
            }
            let moved = self.append(slot, &emptied.data[span.range()]);
            self.spans[slot as usize] = Span {
                stamp: span.stamp,
                ..moved
            };
        }
        // Only now: reused while runs were moving out, it would pass for their old place.
        self.free.push(chunk);
    }

    /// Entries allocated in every chunk, live or dead.
    #[cfg(test)]
    fn stored(&self) -> usize {
        self.chunks.iter().map(|chunk| chunk.data.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacements_in_place_and_appended_read_back() {
        let mut arena = ClosureArena::default();
        let slots = 3_000u32;
        for slot in 0..slots {
            arena.push(&[slot]);
        }
        // Grow every run several times (appends), then shrink some (in place).
        for round in 1..6u32 {
            for slot in 0..slots {
                let run: Vec<u32> = (0..=round).map(|i| slot + i).collect();
                arena.set(slot, &run);
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
        assert_eq!(arena.get(slots + 10), &[] as &[u32]);
    }

    /// Random pushes and replacements, short and longer than a chunk, with tiny chunks so
    /// that chunks fill, retire, are emptied and reused thousands of times: every run and
    /// stamp reads back as a plain vector of runs says, and the chunks never hold more than
    /// twice what is live, plus the chunk being filled and the one it retired.
    #[test]
    fn runs_survive_chunks_being_emptied_and_space_stays_bounded() {
        let chunk_entries = 64;
        let mut arena = ClosureArena::with_chunk_entries(chunk_entries);
        let mut expected: Vec<(Vec<u32>, u32)> = Vec::new();
        let (mut live, mut peak_stored) = (0usize, 0usize);
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for step in 0..60_000u32 {
            let random = next();
            // Mostly short runs, a few longer than a chunk; some empty.
            let len = match random % 50 {
                0 => chunk_entries + (random >> 8) as usize % 100,
                1..=4 => 0,
                _ => (random >> 8) as usize % 24,
            };
            let run: Vec<u32> = (0..len as u32).map(|i| step ^ i).collect();
            live += run.len();
            if expected.len() < 500 || random % 10 == 0 {
                arena.push_stamped(&run, step);
                expected.push((run, step));
            } else {
                let slot = ((random >> 32) % expected.len() as u64) as u32;
                arena.set_stamped(slot, &run, step);
                live -= expected[slot as usize].0.len();
                expected[slot as usize] = (run, step);
            }
            // Every non-filling chunk is at most half dead, so what is stored stays within
            // twice what is live plus the chunk being filled; and emptied chunks are reused,
            // so there are about as many chunks as that takes (a chunk that retired is at
            // least `chunk_entries - 24` long, a run being shorter than 24 unless it has a
            // chunk of its own).
            let stored = arena.stored();
            assert!(
                stored <= 2 * live + chunk_entries,
                "{stored} entries stored for {live} live after step {step}"
            );
            assert!(
                arena.chunks.len() - arena.free.len() <= stored / (chunk_entries - 24) + 2,
                "{} chunks in use for {stored} entries after step {step}",
                arena.chunks.len() - arena.free.len()
            );
            peak_stored = peak_stored.max(stored);
            if step % 997 == 0 || step == 59_999 {
                for (slot, (run, stamp)) in expected.iter().enumerate() {
                    assert_eq!(
                        arena.get_stamped(slot as u32),
                        (run.as_slice(), *stamp),
                        "slot {slot} after step {step}"
                    );
                }
            }
        }
        assert!(
            arena.chunks.len() <= peak_stored / (chunk_entries - 24) + 2,
            "{} chunks made for at most {peak_stored} entries stored: emptied ones not reused",
            arena.chunks.len()
        );
    }

    /// Runs replaced while their chunk was still being filled leave it sparse with nobody
    /// left to touch it; it is emptied when it stops being filled.
    #[test]
    fn a_chunk_already_sparse_when_filling_stops_is_emptied_then() {
        let mut arena = ClosureArena::with_chunk_entries(64);
        for slot in 0..8u32 {
            arena.push(&[slot; 4]);
        }
        for slot in 0..8u32 {
            arena.set(slot, &[]);
        }
        assert_eq!(arena.stored(), 32, "the chunk being filled is kept");
        arena.push(&[9; 40]);
        assert_eq!(arena.stored(), 40);
        assert_eq!(arena.get(8), &[9; 40]);
    }

    /// A clone's buffers are exactly full; a change to it must still not copy what is
    /// stored (it did with one buffer: a second at a million users).
    #[test]
    fn a_change_to_a_clone_leaves_the_stored_chunks_in_place() {
        let mut arena = ClosureArena::with_chunk_entries(1_024);
        for slot in 0..10_000u32 {
            arena.push(&[slot, slot + 1, slot + 2]);
        }
        let mut clone = arena.clone();
        let before: Vec<*const u32> = clone.chunks.iter().map(|c| c.data.as_ptr()).collect();
        clone.set(5, &[1, 2, 3, 4, 5, 6]);
        let after: Vec<*const u32> = clone.chunks.iter().map(|c| c.data.as_ptr()).collect();
        assert_eq!(&after[..before.len()], before.as_slice());
        assert_eq!(clone.get(5), &[1, 2, 3, 4, 5, 6]);
        assert_eq!(arena.get(5), &[5, 6, 7]);
    }
}
