//! The Merkle tree of RFC 9162 section 2.1 (the hashing of RFC 6962, Certificate
//! Transparency) over an append-only sequence of entries: its root, and the two proofs an
//! auditor checks offline. An inclusion proof shows that an entry is at a position of a tree
//! of a given size; a consistency proof shows that a tree of one size is a prefix of a larger
//! one, so that nothing before the older size was edited, removed, inserted or reordered.
//!
//! Leaves and interior nodes are hashed with different one-byte prefixes (0x00, 0x01), so no
//! leaf can be passed off as a node. Proof generation here works on the leaf hashes in memory
//! (linear in the tree's size); verification needs only the proof.

use sha2::{Digest, Sha256};

/// A SHA-256 hash: of a leaf, an interior node or a whole tree.
pub type Hash = [u8; 32];

/// The hash of an entry as a leaf: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry);
    hasher.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (for `n >= 2`): where RFC 9162 splits a tree.
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The root of the tree over `leaves` (leaf hashes, in order): `MTH(D[n])`.
pub fn root(leaves: &[Hash]) -> Hash {
    let mut tree = Frontier::default();
    for leaf in leaves {
        tree.push(*leaf);
    }
    tree.root()
}

/// A tree kept as its frontier: the roots of the perfect subtrees its size decomposes into,
/// largest (leftmost) first. Appending is O(log n) and needs no earlier leaf, so a writer can
/// carry the frontier from one entry to the next and know each new root at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `(root, height)` of each perfect subtree, heights strictly decreasing.
    subtrees: Vec<(Hash, u32)>,
}

impl Frontier {
    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut carry = (leaf, 0u32);
        while let Some(&(left, height)) = self.subtrees.last() {
            if height != carry.1 {
                break;
            }
            self.subtrees.pop();
            carry = (node_hash(&left, &carry.0), height + 1);
        }
        self.subtrees.push(carry);
        self.size += 1;
    }

    /// The roots of the perfect subtrees, largest first: with [`Frontier::size`], all a
    /// store needs to keep to carry the tree on from one append to the next.
    pub fn hashes(&self) -> Vec<Hash> {
        self.subtrees.iter().map(|(hash, _)| *hash).collect()
    }

    /// The frontier of a tree of `size` leaves from its subtree roots ([`Frontier::hashes`]).
    /// The heights are the set bits of `size`, so `None` when the count of hashes is not
    /// the count of those bits: a stored frontier that was cut or padded.
    pub fn from_hashes(size: u64, hashes: &[Hash]) -> Option<Frontier> {
        if hashes.len() != size.count_ones() as usize {
            return None;
        }
        let heights = (0..u64::BITS).rev().filter(|bit| size & (1 << bit) != 0);
        Some(Frontier {
            size,
            subtrees: hashes.iter().copied().zip(heights).collect(),
        })
    }

    /// The root of the tree so far: the subtrees folded right to left, which is exactly
    /// RFC 9162's split at the largest power of two below the size, applied recursively.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.subtrees.iter().rev();
        let Some(&(mut root, _)) = subtrees.next() else {
            return empty_root();
        };
        for (left, _) in subtrees {
            root = node_hash(left, &root);
        }
        root
    }
}

/// The inclusion proof of the leaf at `index` in the tree over `leaves` (RFC 9162 2.1.3.1,
/// `PATH`), from the leaf's sibling up; `None` when `index` is out of range.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    inclusion_proof_in(&AllLeaves(leaves), index)
}

/// The roots of ranges of a tree's leaves: all a proof needs. Either every leaf is at hand
/// ([`AllLeaves`]), or the first ones were pruned and only their frontier is kept
/// ([`PrunedLeaves`]), which still gives every range a proof about a kept leaf asks for.
trait RangeRoots {
    fn len(&self) -> usize;
    /// `MTH` of the leaves `start..end`, if it can be known.
    fn range_root(&self, start: usize, end: usize) -> Option<Hash>;
}

struct AllLeaves<'a>(&'a [Hash]);

impl RangeRoots for AllLeaves<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn range_root(&self, start: usize, end: usize) -> Option<Hash> {
        self.0.get(start..end).map(root)
    }
}

/// A tree whose first `base.size()` leaves were pruned (audit retention), known by their
/// frontier alone, followed by the leaves kept.
struct PrunedLeaves<'a> {
    base: &'a Frontier,
    kept: &'a [Hash],
}

impl PrunedLeaves<'_> {
    fn pruned(&self) -> usize {
        self.base.size as usize
    }

    /// The root of `start..end` when it is exactly a run of the base frontier's subtrees:
    /// their sizes strictly decrease, so folding them right to left is RFC 9162's `MTH`.
    fn base_run(&self, start: usize, end: usize) -> Option<Hash> {
        let mut offset = 0usize;
        let mut run: Vec<Hash> = Vec::new();
        for (hash, height) in &self.base.subtrees {
            let size = 1usize << height;
            if offset >= start && offset + size <= end {
                if run.is_empty() && offset != start {
                    return None;
                }
                run.push(*hash);
                if offset + size == end {
                    let mut hashes = run.iter().rev();
                    let mut root = *hashes.next()?;
                    for left in hashes {
                        root = node_hash(left, &root);
                    }
                    return Some(root);
                }
            }
            offset += size;
        }
        None
    }
}

impl RangeRoots for PrunedLeaves<'_> {
    fn len(&self) -> usize {
        self.pruned() + self.kept.len()
    }

    fn range_root(&self, start: usize, end: usize) -> Option<Hash> {
        let pruned = self.pruned();
        if start >= pruned {
            return self.kept.get(start - pruned..end - pruned).map(root);
        }
        if let Some(hash) = self.base_run(start, end) {
            return Some(hash);
        }
        if end - start < 2 {
            return None;
        }
        let k = split(end - start);
        Some(node_hash(
            &self.range_root(start, start + k)?,
            &self.range_root(start + k, end)?,
        ))
    }
}

fn inclusion_proof_in(leaves: &dyn RangeRoots, index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    path(leaves, 0, leaves.len(), index, &mut proof)?;
    Some(proof)
}

fn path(
    leaves: &dyn RangeRoots,
    start: usize,
    end: usize,
    index: usize,
    proof: &mut Vec<Hash>,
) -> Option<()> {
    if end - start <= 1 {
        return Some(());
    }
    let k = split(end - start);
    if index < start + k {
        path(leaves, start, start + k, index, proof)?;
        proof.push(leaves.range_root(start + k, end)?);
    } else {
        path(leaves, start + k, end, index, proof)?;
        proof.push(leaves.range_root(start, start + k)?);
    }
    Some(())
}

/// [`inclusion_proof`] in a tree whose first `base.size()` leaves were pruned and are known
/// only by their frontier `base`, followed by the `kept` leaves: the proof of the leaf at
/// `index` (counted from the tree's first leaf, so at least `base.size()`). `None` when the
/// index is out of range or is a pruned leaf.
pub fn inclusion_proof_after_prune(
    base: &Frontier,
    kept: &[Hash],
    index: usize,
) -> Option<Vec<Hash>> {
    if index < base.size as usize {
        return None;
    }
    inclusion_proof_in(&PrunedLeaves { base, kept }, index)
}

/// [`consistency_proof`] in a tree whose first `base.size()` leaves were pruned (see
/// [`inclusion_proof_after_prune`]), from a tree of `old_size` leaves, at least the pruned
/// ones. `None` when out of range or not computable from what was kept.
pub fn consistency_proof_after_prune(
    base: &Frontier,
    kept: &[Hash],
    old_size: usize,
) -> Option<Vec<Hash>> {
    if old_size < base.size as usize {
        return None;
    }
    consistency_proof_in(&PrunedLeaves { base, kept }, old_size)
}

/// The root of a tree whose first leaves were pruned to `base`, followed by `kept`.
pub fn root_after_prune(base: &Frontier, kept: &[Hash]) -> Hash {
    let mut tree = base.clone();
    for leaf in kept {
        tree.push(*leaf);
    }
    tree.root()
}

/// Whether `proof` shows that `leaf` is the leaf at `index` of a tree of `size` leaves whose
/// root is `root` (RFC 9162 2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut hash = *leaf;
    for sibling in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            hash = node_hash(sibling, &hash);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && hash == *root
}

/// The consistency proof between the tree of the first `old_size` of `leaves` and the tree
/// of all of them (RFC 9162 2.1.4.1, `PROOF`); empty when the sizes are equal or the old tree
/// is empty, `None` when `old_size` exceeds the leaves.
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Option<Vec<Hash>> {
    consistency_proof_in(&AllLeaves(leaves), old_size)
}

fn consistency_proof_in(leaves: &dyn RangeRoots, old_size: usize) -> Option<Vec<Hash>> {
    if old_size > leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    if old_size > 0 {
        subproof(leaves, 0, leaves.len(), old_size, true, &mut proof)?;
    }
    Some(proof)
}

fn subproof(
    leaves: &dyn RangeRoots,
    start: usize,
    end: usize,
    m: usize,
    whole: bool,
    proof: &mut Vec<Hash>,
) -> Option<()> {
    let n = end - start;
    if m == n {
        if !whole {
            proof.push(leaves.range_root(start, end)?);
        }
        return Some(());
    }
    let k = split(n);
    if m <= k {
        subproof(leaves, start, start + k, m, whole, proof)?;
        proof.push(leaves.range_root(start + k, end)?);
    } else {
        subproof(leaves, start + k, end, m - k, false, proof)?;
        proof.push(leaves.range_root(start, start + k)?);
    }
    Some(())
}

/// Whether `proof` shows that the tree of `old_size` leaves with root `old_root` is a prefix
/// of the tree of `new_size` leaves with root `new_root` (RFC 9162 2.1.4.2). The empty tree
/// is a prefix of every tree; a tree is consistent with itself only when the roots match.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty();
    }
    // When the old tree is a perfect subtree, its root is the proof's implicit first node.
    let mut nodes: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        nodes.push(old_root);
    }
    nodes.extend(proof);
    let Some((first, rest)) = nodes.split_first() else {
        return false;
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut old, mut new) = (**first, **first);
    for node in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            old = node_hash(node, &old);
            new = node_hash(node, &new);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            new = node_hash(&new, node);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && old == *old_root && new == *new_root
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect()
    }

    /// RFC 9162's recursive definition, written out as the RFC states it, to hold the
    /// frontier's folding against.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n);
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn hex(hash: &Hash) -> String {
        hash.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    #[test]
    fn proofs_after_a_prune_are_the_proofs_of_the_whole_tree() {
        for size in 0..40usize {
            let all = leaves(size);
            for pruned in 0..=size {
                let mut base = Frontier::default();
                for leaf in &all[..pruned] {
                    base.push(*leaf);
                }
                let kept = &all[pruned..];
                assert_eq!(root_after_prune(&base, kept), root(&all));
                for index in 0..size {
                    let after = inclusion_proof_after_prune(&base, kept, index);
                    if index < pruned {
                        assert_eq!(after, None);
                    } else {
                        assert_eq!(
                            after,
                            inclusion_proof(&all, index),
                            "{size} {pruned} {index}"
                        );
                    }
                }
                for old in pruned..=size {
                    assert_eq!(
                        consistency_proof_after_prune(&base, kept, old),
                        consistency_proof(&all, old),
                        "{size} {pruned} {old}"
                    );
                }
            }
        }
    }

    #[test]
    fn hashes_are_those_of_the_rfc() {
        // SHA-256 of the empty string, and of the single byte 0x00 (the empty leaf).
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(split(2), 1);
        assert_eq!(split(5), 4);
        assert_eq!(split(8), 4);
        assert_eq!(split(9), 8);
    }

    #[test]
    fn the_frontier_computes_the_recursive_root_at_every_size() {
        let all = leaves(130);
        let mut frontier = Frontier::default();
        assert_eq!(frontier.root(), empty_root());
        for n in 1..=all.len() {
            frontier.push(all[n - 1]);
            assert_eq!(frontier.size(), n as u64);
            assert_eq!(frontier.root(), reference_root(&all[..n]), "size {n}");
        }
    }

    #[test]
    fn every_inclusion_proof_verifies_and_no_other_claim_does() {
        for n in 1..=40 {
            let all = leaves(n);
            let tree_root = root(&all);
            for index in 0..n {
                let proof = inclusion_proof(&all, index).unwrap();
                let (i, size) = (index as u64, n as u64);
                assert!(verify_inclusion(&all[index], i, size, &proof, &tree_root));
                let other = leaf_hash(b"not in the tree");
                assert!(!verify_inclusion(&other, i, size, &proof, &tree_root));
                if n > 1 {
                    let moved = ((index + 1) % n) as u64;
                    assert!(!verify_inclusion(
                        &all[index],
                        moved,
                        size,
                        &proof,
                        &tree_root
                    ));
                }
                assert!(!verify_inclusion(
                    &all[index],
                    size,
                    size,
                    &proof,
                    &tree_root
                ));
            }
            assert!(inclusion_proof(&all, n).is_none());
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_an_edited_prefix_does_not() {
        for n in 1..=33 {
            let all = leaves(n);
            let new_root = root(&all);
            for m in 0..=n {
                let old_root = root(&all[..m]);
                let proof = consistency_proof(&all, m).unwrap();
                let (old, new) = (m as u64, n as u64);
                assert!(
                    verify_consistency(old, new, &old_root, &new_root, &proof),
                    "{m} of {n}"
                );
                if m > 0 && m < n {
                    // The same old size, but one of its entries edited: not a prefix.
                    let mut edited = all.clone();
                    edited[m - 1] = leaf_hash(b"edited");
                    let edited_root = root(&edited[..m]);
                    assert!(!verify_consistency(
                        old,
                        new,
                        &edited_root,
                        &new_root,
                        &proof
                    ));
                    // Truncation: the new tree is smaller than a checkpoint kept earlier.
                    assert!(!verify_consistency(new, old, &new_root, &old_root, &proof));
                }
            }
            assert!(consistency_proof(&all, n + 1).is_none());
        }
    }

    #[test]
    fn a_frontier_rebuilt_from_its_hashes_carries_on_as_the_original() {
        let leaves: Vec<Hash> = (0..40u32).map(|n| leaf_hash(&n.to_be_bytes())).collect();
        let mut kept = Frontier::default();
        for (count, leaf) in leaves.iter().enumerate() {
            let mut rebuilt = Frontier::from_hashes(kept.size(), &kept.hashes()).unwrap();
            assert_eq!(rebuilt, kept);
            rebuilt.push(*leaf);
            kept.push(*leaf);
            assert_eq!(rebuilt.root(), root(&leaves[..=count]));
        }
        // A size whose bits do not match the hashes is refused, not misread.
        assert!(Frontier::from_hashes(3, &kept.hashes()[..1]).is_none());
        assert!(Frontier::from_hashes(4, &[leaves[0], leaves[1]]).is_none());
    }

    proptest! {
        /// Any change to the sequence (an entry edited, removed, inserted or two swapped)
        /// changes the root, and the old root no longer verifies as a prefix of the new tree.
        #[test]
        fn any_change_to_the_sequence_is_detected(
            n in 2usize..60,
            at in 0usize..60,
            kind in 0u8..4,
        ) {
            let all = leaves(n);
            let at = at % n;
            let mut changed = all.clone();
            match kind {
                0 => changed[at] = leaf_hash(b"edited"),
                1 => { changed.remove(at); }
                2 => changed.insert(at, leaf_hash(b"inserted")),
                _ => changed.swap(at, (at + 1) % n),
            }
            prop_assert_ne!(root(&changed), root(&all));
            // An auditor who kept the root of the first `at + 1` entries checks the changed
            // tree against it: the change is caught whenever it touched that prefix.
            let kept = at + 1;
            let old_root = root(&all[..kept]);
            if kept <= changed.len() {
                let proof = consistency_proof(&changed, kept).unwrap();
                let extends = verify_consistency(
                    kept as u64,
                    changed.len() as u64,
                    &old_root,
                    &root(&changed),
                    &proof,
                );
                let prefix_intact = changed[..kept] == all[..kept];
                prop_assert_eq!(extends, prefix_intact);
            }
        }
    }
}
