//! Incremental runs: read only what changed at a SCIM source since the job's watermark, the
//! target objects mapped to it, and plan a partial run ([`crate::plan::plan_partial`]), so that
//! one change at a source of 100,000 users costs a few requests, not a read of both sides.
//!
//! What an incremental read cannot see is left to the full runs between them: deletions at the
//! source (a filtered read does not return what is gone), objects that left the scope, and
//! changes committed with a time before the watermark (another node's, late). So a job runs
//! incrementally only on a change the source signalled, and in full at its interval.

use crate::model::{Identity, Kind, Snapshot};
use crate::plan::plan_partial;
use crate::run::{finish, Job, Mode, Report, Source};
use crate::scim::{HttpFailure, ScimEndpoint};
use crate::{state, SyncError, SyncResult};
use scimitar_domain::Clock;
use scimitar_store::Store;
use std::collections::BTreeSet;

/// How many rounds of fetching named-but-unread members a read makes: each round reaches one
/// level deeper into groups new to the job; what lies deeper is left to the next full run.
const MEMBER_ROUNDS: usize = 4;

/// Runs `job` once, incrementally, when it can: a SCIM source, a watermark from an earlier
/// run, and a target that nests groups (flattening needs the ancestors of a changed group,
/// which this read does not gather yet). `None` when it cannot: the caller runs in full.
pub async fn run_incremental(
    job: &Job,
    store: &dyn Store,
    clock: &dyn Clock,
    mode: Mode,
) -> SyncResult<Option<Report>> {
    let Source::Scim(source) = &job.source else {
        return Ok(None);
    };
    let started = clock.now();
    let before = state::load(store, &job.name).await?;
    let Some(watermark) = before.watermark.clone() else {
        return Ok(None);
    };
    let capabilities = job
        .target
        .capabilities(job.nested_groups)
        .await
        .map_err(|failure| {
            SyncError::Target(format!("reading /ServiceProviderConfig: {failure}"))
        })?;
    if !capabilities.nested_groups {
        return Ok(None);
    }
    let mut kinds = vec![Kind::User, Kind::Group];
    if capabilities.service_principals {
        kinds.push(Kind::ServicePrincipal);
    }
    let (changed, latest) = read_changed(source, &kinds, &watermark, &before)
        .await
        .map_err(|failure| SyncError::Source(failure.to_string()))?;
    let mapped: Vec<(Kind, String)> = changed
        .iter()
        .filter_map(|identity| {
            before
                .mappings
                .get(&(identity.kind, identity.id.clone()))
                .map(|mapping| (identity.kind, mapping.target_id.clone()))
        })
        .collect();
    let target = read_by_kind(&job.target, &mapped)
        .await
        .map_err(|failure| SyncError::Target(failure.to_string()))?;
    let planned = plan_partial(
        &Snapshot::of(changed),
        &Snapshot::of(target),
        &before,
        &job.policy,
        &capabilities,
        started.as_micros(),
    );
    // The watermark never goes back: an empty read keeps it.
    let watermark = latest
        .filter(|latest| *latest > watermark)
        .or(Some(watermark));
    let report = finish(
        job,
        mode,
        capabilities,
        &before,
        planned,
        watermark,
        started,
        store,
        clock,
    )
    .await?;
    Ok(Some(report))
}

/// What changed at the source since `watermark`, and the members it names that are neither
/// in the read nor mapped (new to the job), fetched by id; and the latest `meta.lastModified`.
async fn read_changed(
    source: &ScimEndpoint,
    kinds: &[Kind],
    watermark: &str,
    state: &crate::model::JobState,
) -> Result<(Vec<Identity>, Option<String>), HttpFailure> {
    let reads = futures_util::future::join_all(
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
                !Kind::ALL
                    .into_iter()
                    .any(|kind| state.mappings.contains_key(&(kind, id.to_string())))
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
async fn read_by_kind(
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
