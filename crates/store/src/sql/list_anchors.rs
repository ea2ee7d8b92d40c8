//! Where the pages of a large list begin, remembered so that reading a list page by page costs
//! each page the same.
//!
//! A page at `startIndex` k is `OFFSET k`: the database walks (and for a workspace, tests the
//! membership of) the k rows before it, and counts the whole list again for `totalResults`,
//! so reading 100,000 users in pages of 1,000 walks five million rows and counts ten million
//! (minutes, at both ends of a sync). A list in the default order (`created`, then `id`) is
//! a sequence fixed by the rows that are in it; what a read of it learns (the total, and the
//! key of the row at a position) stays true while those rows do not change. Every change to
//! principals, memberships and workspace assignments appends to the access log in its own
//! transaction, so "nothing changed" is exactly "the access log's position is where it was",
//! read in the same snapshot as the list. With the same position, a later page starts from
//! the nearest remembered key (`(created, id) > key`) and skips only the rows after it, and
//! the total is not counted again: the answer is the `OFFSET` one, row for row.
//!
//! Only unfiltered lists in the default order are remembered: they are what is read page
//! after page at scale (a sync's full reads, an IdP's import), where keys kept per filter text
//! would mostly never be used again. Memory is bounded: at most [`MAX_LISTS`] lists, each with at most
//! [`MAX_MARKS`] keys, one every [`STRIDE`] rows and one at each page's end.

use scimitar_domain::{AccountId, PrincipalKind, WorkspaceId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// One key kept every this many rows, so a page that begins anywhere (a client may end a
/// page early, as Scimitar's own group pages do at their member budget) skips fewer rows.
pub const STRIDE: u64 = 100;

/// Keys kept per list: enough for a million rows at [`STRIDE`].
pub const MAX_MARKS: usize = 10_000;

/// Lists remembered at once; past it, the one used longest ago is forgotten.
pub const MAX_LISTS: usize = 64;

/// Which list: an account's (or a workspace's) principals of one kind, unfiltered, in the
/// default order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListKey {
    pub account: AccountId,
    pub workspace: Option<WorkspaceId>,
    pub kind: PrincipalKind,
}

/// A row's place in the default order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowKey {
    pub created: i64,
    pub id: String,
}

/// Where to start a page: after `key`, skipping `skip` more rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub after: RowKey,
    pub skip: u64,
}

/// What is known of a list at one access-log position.
#[derive(Debug, Default)]
pub struct Known {
    pub total: Option<u64>,
    pub start: Option<Start>,
}

struct Remembered {
    position: u64,
    total: Option<u64>,
    /// The key of the row at each position that is a mark: `rows_before` is how many rows
    /// precede the row just after it, so a page at offset k starts after the mark k.
    marks: BTreeMap<u64, RowKey>,
    last_used: u64,
}

/// The remembered lists of one store (shared by its sessions and requests).
#[derive(Default)]
pub struct ListAnchors {
    lists: Mutex<Lists>,
}

#[derive(Default)]
struct Lists {
    by_key: HashMap<ListKey, Remembered>,
    clock: u64,
}

impl ListAnchors {
    /// What is known of `list` at `position` for a page at `offset`: the total, and the
    /// nearest mark at or before it. Nothing when the list was last seen at another position.
    pub fn known(&self, list: &ListKey, position: u64, offset: u64) -> Known {
        let mut lists = self
            .lists
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        lists.clock += 1;
        let now = lists.clock;
        let Some(remembered) = lists.by_key.get_mut(list) else {
            return Known::default();
        };
        if remembered.position != position {
            return Known::default();
        }
        remembered.last_used = now;
        let start = (offset > 0)
            .then(|| remembered.marks.range(..=offset).next_back())
            .flatten()
            .map(|(rows_before, key)| Start {
                after: key.clone(),
                skip: offset - rows_before,
            });
        Known {
            total: remembered.total,
            start,
        }
    }

    /// Remembers what a read of `list` at `position` saw: its `total`, and the keys of the
    /// rows it returned, the first of which is at `offset`.
    pub fn learn(&self, list: ListKey, position: u64, total: u64, offset: u64, rows: &[RowKey]) {
        let mut lists = self
            .lists
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        lists.clock += 1;
        let now = lists.clock;
        if !lists.by_key.contains_key(&list) && lists.by_key.len() >= MAX_LISTS {
            let oldest = lists
                .by_key
                .iter()
                .min_by_key(|(_, remembered)| remembered.last_used)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                lists.by_key.remove(&oldest);
            }
        }
        let remembered = lists.by_key.entry(list).or_insert_with(|| Remembered {
            position,
            total: None,
            marks: BTreeMap::new(),
            last_used: now,
        });
        // A newer position replaces what was known; an older one (a read that began before
        // the latest change) teaches nothing current.
        if position > remembered.position {
            *remembered = Remembered {
                position,
                total: None,
                marks: BTreeMap::new(),
                last_used: now,
            };
        }
        if position != remembered.position {
            return;
        }
        remembered.last_used = now;
        remembered.total = Some(total);
        let last = rows.len().saturating_sub(1);
        for (index, key) in rows.iter().enumerate() {
            let rows_before = offset + index as u64 + 1;
            if (!rows_before.is_multiple_of(STRIDE) && index != last)
                || remembered.marks.len() >= MAX_MARKS
            {
                continue;
            }
            remembered.marks.insert(rows_before, key.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn list() -> ListKey {
        ListKey {
            account: AccountId::new("a"),
            workspace: None,
            kind: PrincipalKind::User,
        }
    }

    fn rows(from: u64, count: u64) -> Vec<RowKey> {
        (from..from + count)
            .map(|n| RowKey {
                created: n as i64,
                id: format!("id-{n:06}"),
            })
            .collect()
    }

    #[test]
    fn a_page_starts_after_the_nearest_key_at_or_before_it_and_skips_the_rest() {
        let anchors = ListAnchors::default();
        anchors.learn(list(), 7, 5_000, 0, &rows(0, 1_000));
        let known = anchors.known(&list(), 7, 1_000);
        assert_eq!(known.total, Some(5_000));
        let start = known.start.unwrap();
        assert_eq!(start.after, rows(999, 1)[0]);
        assert_eq!(start.skip, 0);
        // A page ended early (at 250) is taken up from the stride's mark at 200.
        let start = anchors.known(&list(), 7, 250).start.unwrap();
        assert_eq!(start.after, rows(199, 1)[0]);
        assert_eq!(start.skip, 50);
        // Beyond what was read: from the last mark, skipping the rows between.
        let start = anchors.known(&list(), 7, 3_000).start.unwrap();
        assert_eq!((start.after, start.skip), (rows(999, 1)[0].clone(), 2_000));
        assert_eq!(anchors.known(&list(), 7, 0).start, None);
    }

    #[test]
    fn nothing_is_known_at_another_position_and_a_newer_one_forgets_the_old() {
        let anchors = ListAnchors::default();
        anchors.learn(list(), 7, 5_000, 0, &rows(0, 1_000));
        let moved = anchors.known(&list(), 8, 1_000);
        assert_eq!((moved.total, moved.start), (None, None));
        // A read that began before the change teaches nothing over what is newer.
        anchors.learn(list(), 8, 4_999, 0, &rows(0, 10));
        anchors.learn(list(), 7, 5_000, 1_000, &rows(1_000, 1_000));
        assert_eq!(anchors.known(&list(), 7, 1_000).total, None);
        let known = anchors.known(&list(), 8, 10);
        assert_eq!(known.total, Some(4_999));
        assert_eq!(known.start.unwrap().after, rows(9, 1)[0]);
        // Other lists are other keys.
        let other = ListKey {
            kind: PrincipalKind::Group,
            ..list()
        };
        assert_eq!(anchors.known(&other, 8, 10).total, None);
    }

    #[test]
    fn memory_stays_bounded_in_lists_and_in_keys() {
        let anchors = ListAnchors::default();
        for n in 0..(MAX_LISTS as u64 + 5) {
            let key = ListKey {
                account: AccountId::new(format!("account-{n}")),
                ..list()
            };
            anchors.learn(key, 1, 10, 0, &rows(0, 10));
        }
        let lists = anchors.lists.lock().unwrap();
        assert_eq!(lists.by_key.len(), MAX_LISTS);
        // The first ones learned, used longest ago, went.
        assert!(!lists.by_key.contains_key(&ListKey {
            account: AccountId::new("account-0"),
            ..list()
        }));
        drop(lists);
        let huge = ListAnchors::default();
        let many = STRIDE * (MAX_MARKS as u64 + 50);
        huge.learn(list(), 1, many, 0, &rows(0, many));
        assert_eq!(
            huge.lists.lock().unwrap().by_key[&list()].marks.len(),
            MAX_MARKS
        );
    }
}
