//! Incremental runs from an LDAP directory: read only the entries changed since the job's
//! watermark (OpenLDAP's `modifyTimestamp`, Active Directory's `uSNChanged` against the
//! rootDSE's `highestCommittedUSN`), resolve their member DNs with the entry index the job
//! keeps between runs ([`DirectoryMemory`]), and plan a partial run from them
//! ([`crate::plan::plan_partial_settled`]).
//!
//! Every `deletion_check_seconds` (and whenever the index cannot resolve a changed group's
//! members) a read also lists every entry's id in scope, a pass that asks for nothing else:
//! that is what lets a directory say what it deleted. A managed object whose id is no longer
//! among them was deleted, or moved out of the bases and filters the job reads, and is
//! deprovisioned as a full run would (under the same deletion guard); the listing also
//! refreshes the index. A changed entry is read whole; an unchanged one costs nothing between
//! listings, its id and stamp at one.
//!
//! Where a target flattens groups, a changed group changes what every group above it holds:
//! those groups, and everything nested under them, are read whole too, from a read of every
//! group made only for such a run ([`crate::ldap_ancestors`]), and flattened again.
//!
//! What is left to the full read at `interval_seconds`: a group read whole naming a member the
//! job has not mapped and that did not change (one a named group's scope now reaches: the run
//! is full at once instead), and attribute changes a directory makes without moving the
//! entry's stamp.

use crate::incremental::{in_job_order, ready_targets, run_target};
use crate::ldap::snapshot_of;
use crate::model::{JobState, Kind};
use crate::run::{FanOut, FanOutReport, Mode, TargetOutcome};
use crate::{SyncError, SyncResult};
use futures_util::future::join_all;
use scimitar_domain::{Clock, Timestamp};
use scimitar_ldap::{compare_marks, read_changes, Directory, DirectoryConfig, EntryIndex};
use scimitar_store::Store;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// What an incremental read took from the directory, counted: the tests show by these counts
/// (not by time) that only what changed was read whole, and the log carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangesRead {
    /// Users read whole: changed since the mark (or in the mark's own second).
    pub changed_users: usize,
    /// Groups read whole, with their members.
    pub changed_groups: usize,
    /// Users and groups in scope, read by id and stamp only (0 when this read did not list
    /// every entry: [`DirectoryMemory`]).
    pub present: usize,
    /// Managed objects no longer in scope, over the job's targets.
    pub gone: usize,
}

/// What a job's incremental reads keep of its directory between runs: the entry index
/// ([`EntryIndex`]: every entry's DN and id, which resolves a changed group's member DNs) and
/// when every entry was last listed. A read lists every entry (which is how it finds
/// deletions) when the last listing is `list_every` old or older, and otherwise only when the
/// index cannot resolve a changed group's members; so a `watch` polling every second pays for
/// a pass over 110,000 entries once in `list_every`, not on every poll. Clones share it: a
/// `watch` runs clones of its job.
#[derive(Debug, Clone, Default)]
pub struct DirectoryMemory(Arc<tokio::sync::Mutex<Remembered>>);

#[derive(Debug, Default)]
struct Remembered {
    index: EntryIndex,
    /// When a read last listed every entry (`None`: never).
    listed_at: Option<Timestamp>,
    /// How often to list every entry; zero: on every read.
    list_every: Duration,
}

impl DirectoryMemory {
    /// A memory that lists every entry at most `list_every` apart (and whenever it must).
    pub fn listing_every(list_every: Duration) -> DirectoryMemory {
        DirectoryMemory(Arc::new(tokio::sync::Mutex::new(Remembered {
            list_every,
            ..Remembered::default()
        })))
    }
}

/// An LDAP source as an incremental run reads it.
pub struct DirectorySource<'a> {
    pub directory: &'a DirectoryConfig,
    pub password: Option<&'a str>,
    pub memory: &'a DirectoryMemory,
}

/// Runs every target of `job` once from what changed in `directory` since the oldest of the
/// targets' watermarks, or returns `None` when the job must run in full: a target without a
/// watermark, or with one that is not this directory's mark, or a group read whole naming a
/// member the job has not mapped and did not read. Where a target flattens groups, the
/// changed groups' ancestors and what is nested under them are read whole too
/// ([`crate::ldap_ancestors`]).
pub async fn run(
    job: &FanOut,
    source: &DirectorySource<'_>,
    store: &dyn Store,
    clock: &dyn Clock,
    mode: Mode,
) -> SyncResult<Option<(FanOutReport, ChangesRead)>> {
    let DirectorySource {
        directory,
        password,
        memory,
    } = *source;
    let started = clock.now();
    let timer = std::time::Instant::now();
    let Some((ready, mut sections)) = ready_targets(job, store).await? else {
        return Ok(None);
    };
    let mut oldest: Option<&str> = None;
    for each in &ready {
        let mark = each.watermark.as_str();
        match compare_marks(directory, mark, oldest.unwrap_or(mark)) {
            // A watermark another kind of source left: only a full read can start over.
            None => return Ok(None),
            Some(Ordering::Less) => oldest = Some(mark),
            Some(_) => oldest = oldest.or(Some(mark)),
        }
    }
    let Some(oldest) = oldest.map(str::to_string) else {
        // No target could be reached: their failed sections are the report.
        return Ok(Some((
            in_job_order(job, mode, sections),
            ChangesRead::default(),
        )));
    };
    let states_loaded = timer.elapsed();
    let mut remembered = memory.0.lock().await;
    let list = remembered.listed_at.is_none_or(|listed_at| {
        let since = started.as_micros().saturating_sub(listed_at.as_micros());
        u128::try_from(since).unwrap_or_default() >= remembered.list_every.as_micros()
    });
    let mut changes = read_changes(directory, password, &oldest, &mut remembered.index, list)
        .await
        .map_err(|error| SyncError::Source(error.to_string()))?;
    if changes.present.is_some() {
        remembered.listed_at = Some(started);
    }
    // Targets that flatten groups (`crate::ldap_ancestors`): a changed group changes what
    // every group above it holds, so those groups and everything nested under them join the
    // groups read whole (and are checked below for members the job has not mapped).
    if ready.iter().any(|each| !each.capabilities.nested_groups) {
        let states: Vec<&JobState> = ready.iter().map(|each| &each.before).collect();
        crate::ldap_ancestors::add_ancestors_and_subtrees(
            directory,
            password,
            &mut changes,
            &states,
            &remembered.index,
        )
        .await?;
    }
    drop(remembered);
    let directory_read = timer.elapsed() - states_loaded;
    // Every entry in scope, when this read listed them: what is managed and not among them is
    // gone. A read that did not list finds nothing gone (the next listing will).
    let present: Option<HashSet<(Kind, &str)>> = changes.present.as_ref().map(|present| {
        present
            .users
            .iter()
            .map(|id| (Kind::User, id.as_str()))
            .chain(present.groups.iter().map(|id| (Kind::Group, id.as_str())))
            .collect()
    });
    let changed = snapshot_of(&Directory {
        users: changes.changed_users.clone(),
        groups: changes.changed_groups.clone(),
        ..Directory::default()
    });
    let states: Vec<&JobState> = ready.iter().map(|each| &each.before).collect();
    if let Some(member) = unread_new_member(&changed, &states) {
        tracing::info!(
            job = %job.name,
            member,
            "a changed group names a member the job has not mapped and did not read: \
             running in full"
        );
        return Ok(None);
    }
    let mut read = ChangesRead {
        changed_users: changes.changed_users.len(),
        changed_groups: changes.changed_groups.len(),
        present: present.as_ref().map_or(0, HashSet::len),
        gone: 0,
    };
    let runs = ready.into_iter().map(|each| {
        let gone = present
            .as_ref()
            .map(|present| gone_from(&each.before, present))
            .unwrap_or_default();
        read.gone += gone.len();
        // The watermark never goes back: a read with nothing newer keeps this target's.
        let watermark = match &changes.high_water {
            Some(high_water)
                if compare_marks(directory, high_water, &each.watermark)
                    == Some(Ordering::Greater) =>
            {
                high_water.clone()
            }
            _ => each.watermark.clone(),
        };
        let changed = &changed;
        async move {
            let name = each.target.name.clone();
            let outcome = run_target(
                job, each, changed, &gone, watermark, started, store, clock, mode,
            )
            .await;
            TargetOutcome::of(&job.name, name.as_deref(), outcome)
        }
    });
    let runs: Vec<_> = runs.collect();
    sections.extend(join_all(runs).await);
    tracing::info!(
        job = %job.name,
        changed_users = read.changed_users,
        changed_groups = read.changed_groups,
        present = read.present,
        gone = read.gone,
        states_ms = states_loaded.as_millis() as u64,
        directory_ms = directory_read.as_millis() as u64,
        total_ms = timer.elapsed().as_millis() as u64,
        "read what changed in the directory"
    );
    Ok(Some((in_job_order(job, mode, sections), read)))
}

/// The managed users and groups of `state` that the directory no longer lists (and that are
/// not already deprovisioned: their deletion after the grace period is the full run's).
fn gone_from(state: &JobState, present: &HashSet<(Kind, &str)>) -> BTreeSet<(Kind, String)> {
    state
        .mappings
        .iter()
        .filter(|((kind, _), mapping)| {
            matches!(kind, Kind::User | Kind::Group) && mapping.deprovisioned_at.is_none()
        })
        .filter(|((kind, id), _)| !present.contains(&(*kind, id.as_str())))
        .map(|(key, _)| key.clone())
        .collect()
}

/// A member of a changed group that is neither in the read nor mapped in every target's
/// state: the partial plan could not place it, and the directory read did not bring it.
fn unread_new_member<'s>(
    changed: &'s crate::model::Snapshot,
    states: &[&JobState],
) -> Option<&'s str> {
    let read: HashSet<&str> = changed
        .identities
        .iter()
        .map(|identity| identity.id.as_str())
        .collect();
    let mapped = |id: &str| {
        states.iter().all(|state| {
            [Kind::User, Kind::Group]
                .into_iter()
                .any(|kind| state.mappings.contains_key(&(kind, id.to_string())))
        })
    };
    changed
        .identities
        .iter()
        .filter(|identity| identity.kind == Kind::Group)
        .flat_map(|group| group.members.iter())
        .map(String::as_str)
        .find(|member| !read.contains(member) && !mapped(member))
}
