//! The reconciliation core, pure: from the source and target snapshots, the job's state, its
//! policy and the target's capabilities, compute the [`Plan`] of every change a run makes.
//! No I/O and no clock: `now` is an argument. See `docs/design/sync.md`.

use crate::config::{MatchKey, Policy};
use crate::model::{Capabilities, Identity, JobState, Kind, Snapshot};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Group names built in at Scimitar and at Databricks targets: `admins` makes its members
/// admins, `users` holds everyone. A source's groups of these names are synced only when the
/// policy names them in `groups`, so that a default scope never hands a target's admin group
/// (matched by name, and adopted) to whoever writes the source.
pub const BUILT_IN_GROUPS: [&str; 2] = ["admins", "users"];

/// One attribute that differs: the target's value now, and the one it will have.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeDiff {
    pub attribute: String,
    pub before: Value,
    pub after: Value,
}

/// A target object to create for a source object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Create {
    pub kind: Kind,
    pub source_id: String,
    pub label: String,
    pub attributes: BTreeMap<String, Value>,
    pub active: Option<bool>,
}

/// An unmanaged target object matched to a source object, which the job manages from now on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Adoption {
    pub kind: Kind,
    pub source_id: String,
    pub target_id: String,
    pub label: String,
    pub matched_by: MatchKey,
}

/// Attributes of a managed target object to change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Update {
    pub kind: Kind,
    pub source_id: String,
    pub target_id: String,
    pub label: String,
    pub diffs: Vec<AttributeDiff>,
}

/// A member as a plan names it: by target id when it exists there, else by the source id of
/// the object this run creates for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRef {
    pub kind: Kind,
    pub source_id: Option<String>,
    pub target_id: Option<String>,
    pub label: String,
}

/// Members to add to and remove from one target group.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipChange {
    pub group_source_id: String,
    /// `None` when this run creates the group.
    pub group_target_id: Option<String>,
    pub label: String,
    pub add: Vec<MemberRef>,
    pub remove: Vec<MemberRef>,
}

/// Why an object is deprovisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    /// The source marks it inactive (suspended).
    InactiveAtSource,
    /// The source no longer holds it, or it left the job's scope.
    GoneFromSource,
    /// Gone from the source for longer than the grace period.
    GracePeriodOver,
}

/// A managed object to deactivate (a user or service principal) or retire (a group: its
/// managed members go now, the group after the grace period), or to delete.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deprovision {
    pub kind: Kind,
    pub source_id: String,
    pub target_id: String,
    pub label: String,
    pub reason: Reason,
}

/// A source object that matched more than one unmanaged target object by the same key: it is
/// neither adopted nor created (either would be a guess, or a duplicate) until an operator
/// resolves it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ambiguity {
    pub kind: Kind,
    pub source_id: String,
    pub label: String,
    pub matched_by: MatchKey,
    pub candidates: Vec<String>,
}

/// Why the deletion guard stopped a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardStop {
    /// Deactivations and deletions the plan holds.
    pub deprovisions: usize,
    /// Objects the job managed before this run.
    pub managed: usize,
    pub max_percent: u32,
    pub max_count: usize,
}

impl std::fmt::Display for GuardStop {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "the plan deactivates or deletes {} of the {} objects this job manages, more than \
             {}% or {} (whichever is smaller): nothing was changed; check the source, then run \
             again with --allow-deletions",
            self.deprovisions, self.managed, self.max_percent, self.max_count
        )
    }
}

/// Every change a run makes, in the order it makes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub creates: Vec<Create>,
    pub adoptions: Vec<Adoption>,
    pub updates: Vec<Update>,
    pub memberships: Vec<MembershipChange>,
    pub deactivations: Vec<Deprovision>,
    pub deletions: Vec<Deprovision>,
    pub ambiguities: Vec<Ambiguity>,
    /// Managed objects gone from the target (deleted out of band): their mappings are dropped
    /// (and, when still in scope, they are created again).
    pub forgotten: Vec<(Kind, String)>,
    /// Managed objects back in scope after a deprovisioning: their grace period is cancelled.
    pub restored: Vec<(Kind, String)>,
    /// Set when the deletion guard stops the run: nothing is applied.
    pub guard: Option<GuardStop>,
    /// Managed objects changed in the target out of band, by attribute ([`crate::drift`]):
    /// their changes are in the lists above unless `policy.correct_drift` is off.
    pub drift: Vec<crate::drift::Drift>,
    /// What the source wants of each object planned, as [`crate::drift::digest`]s, remembered
    /// after the run to tell drift from the source's changes next time.
    #[serde(skip)]
    pub digests: BTreeMap<(Kind, String), String>,
}

impl Plan {
    /// Whether applying this plan writes anything to the target.
    pub fn writes_nothing(&self) -> bool {
        self.creates.is_empty()
            && self.updates.is_empty()
            && self.memberships.is_empty()
            && self.deactivations.is_empty()
            && self.deletions.is_empty()
    }

    /// Whether the state changes even though the target does not.
    pub fn changes_state(&self) -> bool {
        !self.adoptions.is_empty() || !self.forgotten.is_empty() || !self.restored.is_empty()
    }
}

/// Computes the plan. `now` is microseconds since the epoch, compared with the recorded
/// deprovisioning times for the grace period.
pub fn plan(
    source: &Snapshot,
    target: &Snapshot,
    state: &JobState,
    policy: &Policy,
    capabilities: &Capabilities,
    now: i64,
) -> Plan {
    Planner::new(source, target, state, policy, capabilities).run(now)
}

/// Computes the plan of a partial run, from what changed rather than from everything: an
/// incremental read of the source (the objects changed since the last run, and those they
/// name that the job has not mapped) and of the target (the objects mapped to those, as the
/// target holds them now). It differs from [`plan`] in what absence means, and only there:
///
/// - a managed object absent from the read is not gone, only unchanged: nothing is
///   deprovisioned, retired or forgotten for it (deletions and objects leaving scope are
///   found by the next full run);
/// - a group member absent from the read but mapped (and not deprovisioned) is the target
///   object it maps to, kept or added as any member;
/// - in scope are the named groups (or everything, as in a full run) and what the job
///   manages, with whatever they hold in the read;
/// - where groups are flattened, a group whose nested groups are not all in the read is left
///   as it is: its transitive members cannot be known, and a guess could remove some.
///
/// The caller's part: a mapped source object in the read has its target object in the target
/// read unless it is gone there (else it would be created again), and the ancestors of a
/// changed group, with what they hold, are in the read where groups are flattened.
pub fn plan_partial(
    source: &Snapshot,
    target: &Snapshot,
    state: &JobState,
    policy: &Policy,
    capabilities: &Capabilities,
    now: i64,
) -> Plan {
    let mut planner = Planner::new(source, target, state, policy, capabilities);
    planner.partial = true;
    planner.run(now)
}

/// The objects of a partial read that the source asks nothing new of: managed (mapped, not
/// deprovisioned), in scope, and with the digest the last complete run remembered for them
/// ([`crate::drift::digest`]: desired attributes, `active`, and a group's desired members).
///
/// A read that cannot tell an entry it already applied from one that changed again returns
/// them again: a directory's watermark of whole seconds re-reads its last second on every
/// poll, a SCIM source's `ge` watermark its last change, and where groups are flattened the
/// ancestors of a changed group come with it. Leaving these out of the target read and the
/// plan ([`plan_partial_settled`]) makes a re-read cost its digest, not a request to the
/// target. What a settled object leaves undone is what a partial run leaves to the full runs
/// anyway: drift made at the target since (the full run reads and corrects it).
pub fn settled(
    source: &Snapshot,
    state: &JobState,
    policy: &Policy,
    capabilities: &Capabilities,
) -> HashSet<(Kind, String)> {
    let empty = Snapshot::default();
    let mut planner = Planner::new(source, &empty, state, policy, capabilities);
    planner.partial = true;
    let scope = planner.scope();
    let in_scope: HashSet<(Kind, &str)> = scope.iter().copied().collect();
    scope
        .iter()
        .filter(|key| planner.mapping_in_scope(key.0, key.1).is_some())
        .filter(|key| {
            let remembered = state.digests.get(&(key.0, key.1.to_string()));
            remembered.is_some() && planner.digest_now(**key, &in_scope).as_ref() == remembered
        })
        .map(|(kind, id)| (*kind, id.to_string()))
        .collect()
}

/// [`plan_partial`], told which managed source objects are `gone` and which objects of the
/// read are [`settled`].
///
/// - Gone objects (the source listed what it still holds, and these are not among it:
///   deleted, or moved out of what the job reads) are deprovisioned (deactivated, retired,
///   deleted after the grace period) as a full run would, under the same deletion guard;
///   every other absent object is unchanged. The caller's part also covers them: their target
///   objects are in the target read.
/// - Settled objects are placed where their mappings say (as members of other groups, as any
///   managed object) and otherwise not planned, so their target objects need not be in the
///   target read.
#[allow(clippy::too_many_arguments)]
pub fn plan_partial_settled(
    source: &Snapshot,
    target: &Snapshot,
    state: &JobState,
    policy: &Policy,
    capabilities: &Capabilities,
    gone: &BTreeSet<(Kind, String)>,
    settled: &HashSet<(Kind, String)>,
    now: i64,
) -> Plan {
    let mut planner = Planner::new(source, target, state, policy, capabilities);
    planner.partial = true;
    planner.gone = gone.iter().map(|(kind, id)| (*kind, id.as_str())).collect();
    planner.settled = settled
        .iter()
        .map(|(kind, id)| (*kind, id.as_str()))
        .collect();
    planner.run(now)
}

/// A member a source group should have in the target.
enum Wanted<'a> {
    /// A source object in the read.
    Source(&'a Identity),
    /// A managed object the read does not hold (a partial run's): by its mapping.
    Mapped {
        kind: Kind,
        source_id: &'a str,
        target_id: &'a str,
    },
}

/// What brownfield matching found for one source object.
enum Match<'a> {
    /// One unmanaged target object, by this key.
    One(MatchKey, &'a Identity),
    /// Several (their ids), by this key: ambiguous.
    Many(MatchKey, Vec<String>),
}

struct Planner<'a> {
    source: BTreeMap<(Kind, &'a str), &'a Identity>,
    /// The same, hashed: looked up for every member of every group (a million at 100,000
    /// users), where the ordered map's string comparisons were most of a plan's time.
    source_by_id: HashMap<(Kind, &'a str), &'a Identity>,
    target: BTreeMap<(Kind, &'a str), &'a Identity>,
    state: &'a JobState,
    policy: &'a Policy,
    capabilities: &'a Capabilities,
    /// Target ids the job manages, with the source object each is managed for.
    managed_target: HashMap<&'a str, (Kind, &'a str)>,
    /// The unmanaged target objects by each brownfield key's attribute value (lowercased
    /// where the key ignores case), in target order: matching looks a value up instead of
    /// scanning the target for every source object, which at 100,000 of each would be
    /// quadratic.
    unmanaged_by_value: HashMap<(Kind, &'static str, String), Vec<&'a Identity>>,
    /// The snapshots hold what changed, not everything ([`plan_partial`]).
    partial: bool,
    /// In a partial run, the managed source objects known to be gone
    /// ([`plan_partial_settled`]).
    gone: std::collections::HashSet<(Kind, &'a str)>,
    /// In a partial run, the objects of the read the source asks nothing new of
    /// ([`settled`]): placed by their mappings, not planned.
    settled: HashSet<(Kind, &'a str)>,
}

impl<'a> Planner<'a> {
    fn new(
        source: &'a Snapshot,
        target: &'a Snapshot,
        state: &'a JobState,
        policy: &'a Policy,
        capabilities: &'a Capabilities,
    ) -> Planner<'a> {
        let managed_target = state
            .mappings
            .iter()
            .map(|((kind, source_id), mapping)| {
                (mapping.target_id.as_str(), (*kind, source_id.as_str()))
            })
            .collect::<HashMap<_, _>>();
        let target = target.by_key();
        let mut unmanaged_by_value: HashMap<(Kind, &'static str, String), Vec<&'a Identity>> =
            HashMap::new();
        for candidate in target.values() {
            if managed_target.contains_key(candidate.id.as_str()) {
                continue;
            }
            for key in &policy.match_order {
                if !key.applies_to(candidate.kind) {
                    continue;
                }
                let (attribute, ignore_case) = key.attribute();
                let Some(value) = candidate.text(attribute) else {
                    continue;
                };
                let value = if ignore_case {
                    value.to_lowercase()
                } else {
                    value.to_string()
                };
                let found = unmanaged_by_value
                    .entry((candidate.kind, attribute, value))
                    .or_default();
                // One entry per object, whichever keys share the attribute.
                if found.last().is_none_or(|last| last.id != candidate.id) {
                    found.push(candidate);
                }
            }
        }
        let source = source.by_key();
        Planner {
            source_by_id: source
                .iter()
                .map(|(key, identity)| (*key, *identity))
                .collect(),
            source,
            target,
            state,
            policy,
            capabilities,
            managed_target,
            unmanaged_by_value,
            partial: false,
            gone: Default::default(),
            settled: HashSet::new(),
        }
    }

    fn supported(&self, kind: Kind) -> bool {
        kind != Kind::ServicePrincipal || self.capabilities.service_principals
    }

    /// The source objects in scope: everything, or the configured groups, the groups nested
    /// under them and their transitive members; built-in groups ([`BUILT_IN_GROUPS`]) only
    /// when named.
    fn scope(&self) -> BTreeSet<(Kind, &'a str)> {
        let wanted: BTreeSet<String> = self
            .policy
            .groups
            .iter()
            .map(|name| name.to_lowercase())
            .collect();
        let built_in_unnamed = |key: &(Kind, &str)| {
            key.0 == Kind::Group
                && self
                    .source
                    .get(key)
                    .and_then(|group| group.text("displayName"))
                    .map(str::to_lowercase)
                    .is_some_and(|name| {
                        BUILT_IN_GROUPS.contains(&name.as_str()) && !wanted.contains(&name)
                    })
        };
        // Users and service principals the scope filter leaves out are out of scope, as
        // those outside the named groups are.
        let filtered_out = |key: &(Kind, &str)| {
            self.policy.filter.as_ref().is_some_and(|filter| {
                self.source
                    .get(key)
                    .is_some_and(|identity| !filter.admits(identity))
            })
        };
        let supported = |key: &(Kind, &str)| {
            self.supported(key.0) && !built_in_unnamed(key) && !filtered_out(key)
        };
        if self.policy.groups.is_empty() {
            return self.source.keys().copied().filter(supported).collect();
        }
        let mut in_scope = BTreeSet::new();
        let mut pending: Vec<(Kind, &str)> = self
            .source
            .values()
            .filter(|identity| identity.kind == Kind::Group)
            .filter(|group| {
                group
                    .text("displayName")
                    .is_some_and(|name| wanted.contains(&name.to_lowercase()))
            })
            .map(|group| (Kind::Group, group.id.as_str()))
            .collect();
        if self.partial {
            // What the job manages was in scope at the last run; the read cannot say otherwise.
            pending.extend(
                self.source
                    .keys()
                    .copied()
                    .filter(|key| self.mapping_in_scope(key.0, key.1).is_some()),
            );
        }
        while let Some(key) = pending.pop() {
            if !in_scope.insert(key) {
                continue;
            }
            if let Some(group) = self.source.get(&key).filter(|_| key.0 == Kind::Group) {
                for member in &group.members {
                    if let Some(found) = self.source_member(member) {
                        pending.push((found.kind, found.id.as_str()));
                    }
                }
            }
        }
        in_scope.into_iter().filter(supported).collect()
    }

    /// A source member by id, whatever its kind (SCIM member ids are unique in a service).
    fn source_member(&self, id: &str) -> Option<&'a Identity> {
        Kind::ALL
            .into_iter()
            .find_map(|kind| self.source_by_id.get(&(kind, id)).copied())
    }

    /// Whether a target object should be active: the source's flag, or what a mapping makes
    /// of it.
    fn desired_active(&self, source: &Identity) -> Option<bool> {
        self.policy.mappings.active(source)
    }

    /// The attributes a target object should have for a source object: the source's, with
    /// the job's attribute mappings applied.
    fn desired(&self, source: &Identity) -> BTreeMap<String, Value> {
        let mut desired = source.attributes.clone();
        self.policy.mappings.apply(source, &mut desired);
        // The source's own id is the external id when the source names none, so that a target
        // object can be traced back to where it came from.
        desired
            .entry("externalId".to_string())
            .or_insert_with(|| Value::String(source.id.clone()));
        desired.remove("entitlements");
        if source.kind == Kind::Group && self.capabilities.entitlements {
            let name = source
                .text("displayName")
                .unwrap_or_default()
                .to_lowercase();
            let mapped = self
                .policy
                .entitlements
                .iter()
                .find(|(group, _)| group.to_lowercase() == name);
            if let Some((_, entitlements)) = mapped {
                let sorted: BTreeSet<&String> = entitlements.iter().collect();
                desired.insert("entitlements".to_string(), serde_json::json!(sorted));
            }
        }
        desired
    }

    fn diffs(&self, source: &Identity, target: &Identity) -> Vec<AttributeDiff> {
        let mut diffs: Vec<AttributeDiff> = self
            .desired(source)
            .into_iter()
            .filter_map(|(attribute, after)| {
                let before = target
                    .attributes
                    .get(&attribute)
                    .cloned()
                    .unwrap_or(Value::Null);
                (before != after).then_some(AttributeDiff {
                    attribute,
                    before,
                    after,
                })
            })
            .collect();
        // Reactivation is an attribute change; deactivation is planned apart (it counts
        // toward the deletion guard).
        if self.desired_active(source) == Some(true) && target.active == Some(false) {
            diffs.push(AttributeDiff {
                attribute: "active".into(),
                before: Value::Bool(false),
                after: Value::Bool(true),
            });
        }
        diffs
    }

    /// The unmanaged target object a source object matches, by the first key in the
    /// configured order that finds any.
    fn find_match(&self, source: &Identity, taken: &BTreeSet<&str>) -> Option<Match<'a>> {
        let desired = self.desired(source);
        for key in &self.policy.match_order {
            if !key.applies_to(source.kind) {
                continue;
            }
            let (attribute, ignore_case) = key.attribute();
            let Some(wanted) = desired.get(attribute).and_then(Value::as_str) else {
                continue;
            };
            let wanted = if ignore_case {
                wanted.to_lowercase()
            } else {
                wanted.to_string()
            };
            let found: Vec<&Identity> = self
                .unmanaged_by_value
                .get(&(source.kind, attribute, wanted))
                .into_iter()
                .flatten()
                .copied()
                .filter(|candidate| !taken.contains(candidate.id.as_str()))
                .collect();
            match found.as_slice() {
                [] => continue,
                [one] => return Some(Match::One(*key, one)),
                many => {
                    return Some(Match::Many(
                        *key,
                        many.iter().map(|candidate| candidate.id.clone()).collect(),
                    ))
                }
            }
        }
        None
    }

    fn run(&self, now: i64) -> Plan {
        let mut plan = Plan::default();
        let scope = self.scope();
        // Source object -> the target id it has (or will have: `None` while created by this
        // run), for every source object that ends up managed.
        // Looked up once per member of every group (a million at 100,000 users): hashed.
        let mut placed: HashMap<(Kind, &str), Option<String>> = HashMap::new();
        let mut taken: BTreeSet<&str> = BTreeSet::new();

        for key in &scope {
            let source = self.source[key];
            let mapping = self.state.mappings.get(&(key.0, key.1.to_string()));
            if self.settled.contains(key) {
                if let Some(mapping) = mapping {
                    placed.insert(*key, Some(mapping.target_id.clone()));
                }
                continue;
            }
            if key.0 != Kind::Group {
                // A group's digest holds its members too: made with them, below.
                plan.digests
                    .insert((key.0, key.1.to_string()), self.attributes_digest(source));
            }
            let existing = mapping.and_then(|mapping| {
                self.target
                    .get(&(key.0, mapping.target_id.as_str()))
                    .copied()
            });
            let target = match (mapping, existing) {
                (Some(mapping), Some(target)) => {
                    if mapping.deprovisioned_at.is_some() {
                        plan.restored.push((key.0, key.1.to_string()));
                    }
                    target
                }
                (mapping, _) => {
                    if mapping.is_some() {
                        plan.forgotten.push((key.0, key.1.to_string()));
                    }
                    match self.find_match(source, &taken) {
                        Some(Match::One(matched_by, target)) => {
                            taken.insert(target.id.as_str());
                            plan.adoptions.push(Adoption {
                                kind: key.0,
                                source_id: key.1.to_string(),
                                target_id: target.id.clone(),
                                label: source.label(),
                                matched_by,
                            });
                            target
                        }
                        Some(Match::Many(matched_by, candidates)) => {
                            plan.ambiguities.push(Ambiguity {
                                kind: key.0,
                                source_id: key.1.to_string(),
                                label: source.label(),
                                matched_by,
                                candidates,
                            });
                            continue;
                        }
                        None => {
                            plan.creates.push(Create {
                                kind: key.0,
                                source_id: key.1.to_string(),
                                label: source.label(),
                                attributes: self.desired(source),
                                active: self.desired_active(source),
                            });
                            placed.insert(*key, None);
                            continue;
                        }
                    }
                }
            };
            placed.insert(*key, Some(target.id.clone()));
            let diffs = self.diffs(source, target);
            if !diffs.is_empty() {
                plan.updates.push(Update {
                    kind: key.0,
                    source_id: key.1.to_string(),
                    target_id: target.id.clone(),
                    label: source.label(),
                    diffs,
                });
            }
            if self.desired_active(source) == Some(false) && target.active == Some(true) {
                plan.deactivations.push(Deprovision {
                    kind: key.0,
                    source_id: key.1.to_string(),
                    target_id: target.id.clone(),
                    label: source.label(),
                    reason: Reason::InactiveAtSource,
                });
            }
        }

        // Managed objects the source no longer holds in scope.
        let mut retiring_groups: Vec<(&str, &Identity)> = Vec::new();
        for ((kind, source_id), mapping) in &self.state.mappings {
            // A partial read's absent objects are unchanged, unless the source said they
            // are gone.
            let gone = self.gone.contains(&(*kind, source_id.as_str()));
            if (self.partial && !gone) || scope.contains(&(*kind, source_id.as_str())) {
                continue;
            }
            let Some(target) = self.target.get(&(*kind, mapping.target_id.as_str())) else {
                plan.forgotten.push((*kind, source_id.clone()));
                continue;
            };
            let label = target.label();
            let item = |reason| Deprovision {
                kind: *kind,
                source_id: source_id.clone(),
                target_id: mapping.target_id.clone(),
                label: label.clone(),
                reason,
            };
            match mapping.deprovisioned_at {
                None => {
                    plan.deactivations.push(item(Reason::GoneFromSource));
                    if *kind == Kind::Group {
                        retiring_groups.push((source_id.as_str(), target));
                    }
                }
                Some(since) if now.saturating_sub(since) >= self.grace_micros() => {
                    plan.deletions.push(item(Reason::GracePeriodOver));
                }
                Some(_) => {}
            }
        }

        let in_scope: HashSet<(Kind, &str)> = scope.iter().copied().collect();
        self.plan_memberships(&scope, &in_scope, &placed, &mut plan);
        for (source_id, group) in retiring_groups {
            let remove: Vec<MemberRef> = group
                .members
                .iter()
                .filter_map(|member| self.managed_member_ref(member))
                .collect();
            if !remove.is_empty() {
                plan.memberships.push(MembershipChange {
                    group_source_id: source_id.to_string(),
                    group_target_id: Some(group.id.clone()),
                    label: group.label(),
                    add: Vec::new(),
                    remove,
                });
            }
        }

        crate::drift::separate(&mut plan, self.state, self.policy.correct_drift);
        let deprovisions = plan.deactivations.len() + plan.deletions.len();
        let managed = self.state.mappings.len();
        let over_share = deprovisions.saturating_mul(100)
            > (self.policy.max_deprovision_percent as usize).saturating_mul(managed);
        if deprovisions > 0
            && (over_share || deprovisions > self.policy.max_deprovision_count)
            && !self.policy.allow_deletions
        {
            plan.guard = Some(GuardStop {
                deprovisions,
                managed,
                max_percent: self.policy.max_deprovision_percent,
                max_count: self.policy.max_deprovision_count,
            });
        }
        sort(&mut plan);
        plan
    }

    /// What the source wants of a user or service principal, as remembered after a run.
    fn attributes_digest(&self, source: &Identity) -> String {
        crate::drift::digest(&self.desired(source), source.active, None)
    }

    /// What the source wants of a group, its desired members included.
    fn group_digest(&self, group: &Identity, wanted: &[Wanted<'a>]) -> String {
        let mut wanted_keys: Vec<(Kind, &str)> = wanted
            .iter()
            .map(|member| match member {
                Wanted::Source(member) => (member.kind, member.id.as_str()),
                Wanted::Mapped {
                    kind, source_id, ..
                } => (*kind, *source_id),
            })
            .collect();
        wanted_keys.sort_unstable();
        wanted_keys.dedup();
        crate::drift::digest(&self.desired(group), None, Some(&wanted_keys))
    }

    /// The digest a run would remember for this object now; `None` for a group whose
    /// members the read does not hold enough of to know.
    fn digest_now(
        &self,
        key: (Kind, &'a str),
        in_scope: &HashSet<(Kind, &'a str)>,
    ) -> Option<String> {
        let source = self.source[&key];
        if key.0 != Kind::Group {
            return Some(self.attributes_digest(source));
        }
        let wanted = self.desired_members(source, in_scope)?;
        Some(self.group_digest(source, &wanted))
    }

    fn grace_micros(&self) -> i64 {
        self.policy.delete_after_seconds.saturating_mul(1_000_000)
    }

    /// A target member the job manages, as a member reference; `None` for one it does not
    /// (which it never removes).
    fn managed_member_ref(&self, target_id: &str) -> Option<MemberRef> {
        let (kind, source_id) = self.managed_target.get(target_id)?;
        let label = self
            .target
            .get(&(*kind, target_id))
            .map(|identity| identity.label())
            .unwrap_or_else(|| target_id.to_string());
        Some(MemberRef {
            kind: *kind,
            source_id: Some(source_id.to_string()),
            target_id: Some(target_id.to_string()),
            label,
        })
    }

    /// A source id the job maps, not deprovisioned: its kind and target id.
    fn mapping_in_scope(&self, kind: Kind, source_id: &str) -> Option<&'a str> {
        self.state
            .mappings
            .get(&(kind, source_id.to_string()))
            .filter(|mapping| mapping.deprovisioned_at.is_none())
            .map(|mapping| mapping.target_id.as_str())
    }

    /// The members a source group should have in the target: its direct members in scope
    /// where the target nests groups, else every user and service principal under it. In a
    /// partial run, members absent from the read are taken from the mappings, and `None`
    /// says that the read does not hold enough to know (a nested group that was not read,
    /// where groups are flattened).
    fn desired_members(
        &self,
        group: &Identity,
        scope: &HashSet<(Kind, &str)>,
    ) -> Option<Vec<Wanted<'a>>> {
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        let mut pending: Vec<&str> = group.members.iter().map(String::as_str).collect();
        seen.insert(group.id.as_str());
        while let Some(id) = pending.pop() {
            let Some(member) = self.source_member(id) else {
                if !self.partial || !seen.insert(id) {
                    continue;
                }
                let mapped = Kind::ALL.into_iter().find_map(|kind| {
                    let ((_, source_id), mapping) =
                        self.state.mappings.get_key_value(&(kind, id.to_string()))?;
                    let mapped = mapping.deprovisioned_at.is_none();
                    mapped.then_some((kind, source_id.as_str(), mapping.target_id.as_str()))
                });
                match mapped {
                    // Its members are not in the read: the flattened set cannot be known.
                    Some((Kind::Group, _, _)) if !self.capabilities.nested_groups => return None,
                    Some((kind, source_id, target_id)) => found.push(Wanted::Mapped {
                        kind,
                        source_id,
                        target_id,
                    }),
                    // Never synced and not read: nothing to name it by.
                    None => {}
                }
                continue;
            };
            if !seen.insert(member.id.as_str()) {
                continue;
            }
            let in_scope = scope.contains(&(member.kind, member.id.as_str()));
            if member.kind == Kind::Group && !self.capabilities.nested_groups {
                // Flattened: what a nested group holds counts, the group itself does not.
                pending.extend(member.members.iter().map(String::as_str));
                continue;
            }
            if in_scope {
                found.push(Wanted::Source(member));
            }
        }
        Some(found)
    }

    fn plan_memberships(
        &self,
        scope: &BTreeSet<(Kind, &'a str)>,
        in_scope: &HashSet<(Kind, &'a str)>,
        placed: &HashMap<(Kind, &str), Option<String>>,
        plan: &mut Plan,
    ) {
        // Target objects adopted by this run are managed from now on.
        let mut managed: HashMap<&str, (Kind, &str)> = self.managed_target.clone();
        for adoption in &plan.adoptions {
            managed.insert(
                adoption.target_id.as_str(),
                (adoption.kind, adoption.source_id.as_str()),
            );
        }
        let mut changes = Vec::new();
        let mut digests = Vec::new();
        for key in scope
            .iter()
            .filter(|key| key.0 == Kind::Group && !self.settled.contains(*key))
        {
            let Some(group_target_id) = placed.get(key) else {
                continue; // ambiguous: neither created nor adopted
            };
            let group = self.source[key];
            let current: HashSet<&str> = group_target_id
                .as_deref()
                .and_then(|id| self.target.get(&(Kind::Group, id)))
                .map(|target| target.members.iter().map(String::as_str).collect())
                .unwrap_or_default();
            let Some(wanted) = self.desired_members(group, in_scope) else {
                continue; // a partial read too small to say: left for a full run
            };
            digests.push((
                (Kind::Group, key.1.to_string()),
                self.group_digest(group, &wanted),
            ));
            let mut wanted_target_ids = HashSet::new();
            let mut add = Vec::new();
            for member in wanted {
                let member = match member {
                    Wanted::Source(member) => member,
                    Wanted::Mapped {
                        kind,
                        source_id,
                        target_id,
                    } => {
                        if wanted_target_ids.insert(target_id) && !current.contains(target_id) {
                            add.push(MemberRef {
                                kind,
                                source_id: Some(source_id.to_string()),
                                target_id: Some(target_id.to_string()),
                                label: self
                                    .target
                                    .get(&(kind, target_id))
                                    .map(|identity| identity.label())
                                    .unwrap_or_else(|| target_id.to_string()),
                            });
                        }
                        continue;
                    }
                };
                let Some(member_target) = placed.get(&(member.kind, member.id.as_str())) else {
                    continue;
                };
                if let Some(id) = member_target {
                    wanted_target_ids.insert(id.as_str());
                    if current.contains(id.as_str()) {
                        continue;
                    }
                }
                add.push(MemberRef {
                    kind: member.kind,
                    source_id: Some(member.id.clone()),
                    target_id: member_target.clone(),
                    label: member.label(),
                });
            }
            let mut leaving: Vec<&str> = current
                .iter()
                .copied()
                .filter(|id| !wanted_target_ids.contains(id))
                .collect();
            leaving.sort_unstable();
            let remove: Vec<MemberRef> = leaving
                .into_iter()
                .filter_map(|id| {
                    let (kind, source_id) = managed.get(id)?;
                    let label = self
                        .target
                        .get(&(*kind, id))
                        .map(|identity| identity.label())
                        .unwrap_or_else(|| id.to_string());
                    Some(MemberRef {
                        kind: *kind,
                        source_id: Some(source_id.to_string()),
                        target_id: Some(id.to_string()),
                        label,
                    })
                })
                .collect();
            if !add.is_empty() || !remove.is_empty() {
                changes.push(MembershipChange {
                    group_source_id: key.1.to_string(),
                    group_target_id: group_target_id.clone(),
                    label: group.label(),
                    add,
                    remove,
                });
            }
        }
        plan.memberships.extend(changes);
        plan.digests.extend(digests);
    }
}

fn sort(plan: &mut Plan) {
    plan.creates
        .sort_by(|a, b| (a.kind, &a.label, &a.source_id).cmp(&(b.kind, &b.label, &b.source_id)));
    plan.adoptions
        .sort_by(|a, b| (a.kind, &a.label, &a.source_id).cmp(&(b.kind, &b.label, &b.source_id)));
    plan.updates
        .sort_by(|a, b| (a.kind, &a.label, &a.source_id).cmp(&(b.kind, &b.label, &b.source_id)));
    for list in [&mut plan.deactivations, &mut plan.deletions] {
        list.sort_by(|a, b| {
            (a.kind, &a.label, &a.source_id).cmp(&(b.kind, &b.label, &b.source_id))
        });
    }
    plan.memberships
        .sort_by(|a, b| (&a.label, &a.group_source_id).cmp(&(&b.label, &b.group_source_id)));
    for change in &mut plan.memberships {
        change.add.sort();
        change.remove.sort();
    }
    plan.forgotten.sort();
    plan.restored.sort();
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
