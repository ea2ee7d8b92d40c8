//! Incremental runs: read only what changed at a SCIM source since the job's watermark, the
//! target objects mapped to it, and plan a partial run ([`crate::plan::plan_partial`]), so that
//! one change at a source of 100,000 users costs a few requests, not a read of both sides.
//!
//! What an incremental read cannot see is left to the full runs between them: deletions at the
//! source (a filtered read does not return what is gone), objects that left the scope, and
//! changes committed with a time before the watermark (another node's, late). So a job runs
//! incrementally only on a change the source signalled, and in full at its interval.

use crate::config::state_key;
use crate::model::{Capabilities, Identity, JobState, Kind, Snapshot};
use crate::plan::{plan_partial_settled, settled};
use crate::run::{
    capabilities_of, finish, for_target, kinds_for, FanOut, FanOutReport, Mode, Report, Source,
    Target, TargetOutcome,
};
use crate::scim::{HttpFailure, ScimEndpoint};
use crate::{state, SyncError, SyncResult};
use futures_util::future::join_all;
use scimitar_domain::{Clock, Timestamp};
use scimitar_store::Store;
use std::collections::BTreeSet;

/// How many rounds of fetching named-but-unread members a read makes: each round reaches one
/// level deeper into groups new to the job; what lies deeper is left to the next full run.
const MEMBER_ROUNDS: usize = 4;

/// Runs every target of `job` once, incrementally, when it can: a SCIM source, and every
/// target that can be reached with a watermark from an earlier run. Where a target flattens
/// groups, the changed groups' ancestors and everything nested under them are read too
/// (`crate::ancestors`). `None` when it cannot: the caller runs in full.
///
/// The source is read once for all targets, from the oldest of their watermarks: a target
/// whose watermark is newer is planned from a few objects it already has, which its partial
/// plan finds nothing to do for, while the target behind misses nothing. Each target then
/// keeps its own watermark, moved on only by its own run. A target that cannot be reached is
/// a failed section, as in a full run, and does not hold the others back.
pub async fn run_incremental(
    job: &FanOut,
    store: &dyn Store,
    clock: &dyn Clock,
    mode: Mode,
) -> SyncResult<Option<FanOutReport>> {
    let source = match &job.source {
        Source::Scim(source) => source,
        // A directory says what changed in its own way (a time or a sequence number, and
        // what it still holds).
        Source::Ldap {
            directory,
            password,
            memory,
        } => {
            let password = password.as_ref().map(crate::scim::Secret::expose);
            let source = crate::ldap_incremental::DirectorySource {
                directory,
                password,
                memory,
            };
            return Ok(
                crate::ldap_incremental::run(job, &source, store, clock, mode)
                    .await?
                    .map(|(report, _)| report),
            );
        }
        Source::File(_) => return Ok(None),
    };
    let started = clock.now();
    let Some((ready, mut sections)) = ready_targets(job, store).await? else {
        return Ok(None);
    };
    // Watermarks are RFC 3339 times of one source, compared as its text (as when they are set).
    if let Some(oldest) = ready.iter().map(|each| each.watermark.clone()).min() {
        let service_principals = ready
            .iter()
            .any(|each| each.capabilities.service_principals);
        let states: Vec<&JobState> = ready.iter().map(|each| &each.before).collect();
        let kinds = kinds_for(service_principals);
        let (mut changed, latest) = read_changed(source, &kinds, &oldest, &states)
            .await
            .map_err(|failure| SyncError::Source(failure.to_string()))?;
        // Where a target flattens, a changed group changes what every group above it holds.
        let flattening = ready.iter().any(|each| !each.capabilities.nested_groups);
        if flattening
            && !crate::ancestors::add_ancestors_and_subtrees(source, &kinds, &mut changed, &states)
                .await
                .map_err(|failure| SyncError::Source(failure.to_string()))?
        {
            return Ok(None);
        }
        let changed = Snapshot::of(changed);
        let nothing_gone = BTreeSet::new();
        let runs = ready.into_iter().map(|each| {
            let (changed, nothing_gone) = (&changed, &nothing_gone);
            // The watermark never goes back: a read with nothing newer keeps this target's.
            let watermark = latest
                .clone()
                .filter(|latest| *latest > each.watermark)
                .unwrap_or_else(|| each.watermark.clone());
            async move {
                let name = each.target.name.clone();
                let outcome = run_target(
                    job,
                    each,
                    changed,
                    nothing_gone,
                    watermark,
                    started,
                    store,
                    clock,
                    mode,
                )
                .await;
                TargetOutcome::of(&job.name, name.as_deref(), outcome)
            }
        });
        sections.extend(join_all(runs).await);
    }
    Ok(Some(in_job_order(job, mode, sections)))
}

/// The targets of `job` that can run incrementally, and a failed section for each that cannot
/// be reached; `None` when the job must run in full: a target without a watermark (none of its
/// runs has applied every item yet).
pub(crate) async fn ready_targets<'a>(
    job: &'a FanOut,
    store: &dyn Store,
) -> SyncResult<Option<(Vec<Ready<'a>>, Vec<TargetOutcome>)>> {
    let mut ready = Vec::new();
    let mut sections = Vec::new();
    let capabilities = join_all(
        job.targets
            .iter()
            .map(|target| capabilities_of(&target.endpoint, target.nested_groups)),
    )
    .await;
    for (target, found) in job.targets.iter().zip(capabilities) {
        let capabilities = match found {
            Ok(capabilities) => capabilities,
            Err(error) => {
                sections.push(TargetOutcome::of(
                    &job.name,
                    target.name.as_deref(),
                    Err(error),
                ));
                continue;
            }
        };
        let before = state::load(store, &state_key(&job.name, target.name.as_deref())).await?;
        let Some(watermark) = before.watermark.clone() else {
            return Ok(None);
        };
        ready.push(Ready {
            target,
            capabilities,
            before,
            watermark,
        });
    }
    Ok(Some((ready, sections)))
}

/// The run's report, its sections in the job's order of targets, as a full run gives them.
pub(crate) fn in_job_order(
    job: &FanOut,
    mode: Mode,
    mut sections: Vec<TargetOutcome>,
) -> FanOutReport {
    sections.sort_by_key(|section| {
        job.targets
            .iter()
            .position(|target| target.name.as_deref() == section_target(section))
    });
    FanOutReport {
        job: job.name.clone(),
        mode,
        targets: sections,
    }
}

/// A target that can run incrementally, with what its run starts from.
pub(crate) struct Ready<'a> {
    pub(crate) target: &'a Target,
    pub(crate) capabilities: Capabilities,
    pub(crate) before: JobState,
    pub(crate) watermark: String,
}

fn section_target(section: &TargetOutcome) -> Option<&str> {
    match section {
        TargetOutcome::Ran(report) => report.target.as_deref(),
        TargetOutcome::Failed { target, .. } => target.as_deref(),
    }
}

/// One target's part of an incremental run: the target objects mapped to what changed (and to
/// what is `gone`), read by id, a partial plan, and the rest as in a full run ([`finish`]),
/// recording `watermark` when every item applied.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_target(
    job: &FanOut,
    ready: Ready<'_>,
    changed: &Snapshot,
    gone: &BTreeSet<(Kind, String)>,
    watermark: String,
    started: Timestamp,
    store: &dyn Store,
    clock: &dyn Clock,
    mode: Mode,
) -> SyncResult<Report> {
    let Ready {
        target,
        capabilities,
        before,
        ..
    } = ready;
    let changed = for_target(changed, &capabilities);
    // What was read again though the source asks nothing new of it is not read at the target.
    let settled = settled(&changed, &before, &job.policy, &capabilities);
    let mapped: Vec<(Kind, String)> = changed
        .identities
        .iter()
        .map(|identity| (identity.kind, identity.id.clone()))
        .filter(|key| !settled.contains(key))
        .chain(gone.iter().cloned())
        .filter_map(|key| {
            before
                .mappings
                .get(&key)
                .map(|mapping| (key.0, mapping.target_id.clone()))
        })
        .collect();
    let timer = std::time::Instant::now();
    let target_read = read_by_kind(&target.endpoint, &mapped)
        .await
        .map_err(|failure| SyncError::Target(failure.to_string()))?;
    let target_read_at = timer.elapsed();
    let planned = plan_partial_settled(
        &changed,
        &Snapshot::of(target_read),
        &before,
        &job.policy,
        &capabilities,
        gone,
        &settled,
        started.as_micros(),
    );
    let planned_at = timer.elapsed();
    let finished = finish(
        &job.job_for(target),
        target.name.as_deref(),
        mode,
        capabilities,
        &before,
        planned,
        Some(watermark),
        started,
        store,
        clock,
    )
    .await;
    tracing::debug!(
        changed = changed.identities.len(),
        settled = settled.len(),
        target_read_ms = target_read_at.as_millis() as u64,
        plan_ms = (planned_at - target_read_at).as_millis() as u64,
        finish_ms = (timer.elapsed() - planned_at).as_millis() as u64,
        "an incremental run of one target"
    );
    finished
}

/// What changed at the source since `watermark`, and the members it names that are neither
/// in the read nor mapped in every target's state (new to the job, or to one of its targets),
/// fetched by id; and the latest `meta.lastModified`.
async fn read_changed(
    source: &ScimEndpoint,
    kinds: &[Kind],
    watermark: &str,
    states: &[&JobState],
) -> Result<(Vec<Identity>, Option<String>), HttpFailure> {
    let reads = join_all(
        kinds
            .iter()
            .map(|kind| source.read_modified_since(*kind, watermark)),
    )
    .await;
    let mut changed = Vec::new();
    let mut latest: Option<String> = None;
    for (kind, read) in kinds.iter().zip(reads) {
        match read {
            Ok((mut found, modified)) => {
                changed.append(&mut found);
                latest = latest.max(modified);
            }
            // A service without `/ServicePrincipals` has none to give.
            Err(failure) if *kind == Kind::ServicePrincipal && failure.status == Some(404) => {}
            Err(failure) => return Err(failure),
        }
    }
    for _ in 0..MEMBER_ROUNDS {
        let known: BTreeSet<&str> = changed.iter().map(|found| found.id.as_str()).collect();
        let unknown: Vec<String> = changed
            .iter()
            .flat_map(|found| found.members.iter())
            .filter(|id| !known.contains(id.as_str()))
            .filter(|id| {
                !states.iter().all(|state| {
                    Kind::ALL
                        .into_iter()
                        .any(|kind| state.mappings.contains_key(&(kind, id.to_string())))
                })
            })
            .cloned()
            .collect::<BTreeSet<String>>()
            .into_iter()
            .collect();
        if unknown.is_empty() {
            break;
        }
        // A member's kind is not in its id: try each kind in turn for what is still unfound.
        let mut left = unknown;
        for kind in kinds {
            if left.is_empty() {
                break;
            }
            let found = match source.read_ids(*kind, &left).await {
                Ok(found) => found,
                Err(failure) if *kind == Kind::ServicePrincipal && failure.status == Some(404) => {
                    Vec::new()
                }
                Err(failure) => return Err(failure),
            };
            let found_ids: BTreeSet<String> = found.iter().map(|f| f.id.clone()).collect();
            left.retain(|id| !found_ids.contains(id));
            changed.extend(found);
        }
    }
    Ok((changed, latest))
}

/// The target objects with these ids, by kind; the ones the target no longer has are left
/// out (the planner then forgets them and creates them again).
pub(crate) async fn read_by_kind(
    target: &ScimEndpoint,
    ids: &[(Kind, String)],
) -> Result<Vec<Identity>, HttpFailure> {
    let mut found = Vec::new();
    for kind in Kind::ALL {
        let of_kind: Vec<String> = ids
            .iter()
            .filter(|(each, _)| *each == kind)
            .map(|(_, id)| id.clone())
            .collect();
        if !of_kind.is_empty() {
            found.extend(target.read_ids(kind, &of_kind).await?);
        }
    }
    Ok(found)
}
