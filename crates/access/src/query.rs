//! Every question the engine answers: check, who, what, effective privileges, entitlements,
//! workspace object levels, and who may manage grants.
//!
//! All of them rest on two walks: a principal's groups upwards ([`Ancestry`]) and a set of
//! holders' members downwards (`reach`), and on one enumeration of the grants and ownerships
//! that could supply a privilege on a securable (`for_each_source`).

use std::ops::ControlFlow;

use scimitar_domain::{PrincipalId, PrincipalKind, WorkspaceId};

use crate::assignment::WorkspacePermission;
use crate::catalog::{GrantEntry, Grants};
use crate::entitlement::{Entitlement, EntitlementSet};
use crate::error::AccessError;
use crate::explain::{
    AclView, Decision, EffectivePrivilege, EntitlementAccess, GroupMembership, Holder, Missing,
    ObjectPermission, PrincipalView, Reason, Requirement, Source, Via,
};
use crate::model::AccessModel;
use crate::object::{ObjectType, PermissionLevel};
use crate::principals::{AccessSet, Ancestry, Holding, NONE};
use crate::privilege::{Privilege, PrivilegeSet};
use crate::securable::{SecurableType, SecurableView};

/// One grant or ownership that supplies a privilege on a securable, whoever holds it.
#[derive(Debug, Clone, Copy)]
struct Supply {
    /// The securable the grant or ownership is on: the target or a catalog or schema above.
    level: u32,
    holder: u32,
    /// The privilege as granted (`None` for ownership).
    granted: Option<Privilege>,
}

/// What a check needs: the privilege itself, then `USE_SCHEMA` and `USE_CATALOG` on the
/// securables above; at most three `(privilege, securable)` pairs, kept inline. Also what an
/// explanation finds missing, a subset of them.
#[derive(Debug, Clone, Copy)]
struct Requirements {
    needs: [(Privilege, u32); 3],
    count: usize,
}

impl Requirements {
    /// No requirement (the filler entries are never read).
    const NONE: Requirements = Requirements {
        needs: [(Privilege::Browse, NONE); 3],
        count: 0,
    };

    fn push(&mut self, privilege: Privilege, on: u32) {
        if let Some(need) = self.needs.get_mut(self.count) {
            *need = (privilege, on);
            self.count += 1;
        }
    }

    fn as_slice(&self) -> &[(Privilege, u32)] {
        &self.needs[..self.count]
    }
}

/// A securable's grant entries are probed once per principal of the ancestry, rather than
/// scanned, when they outnumber the ancestry by more than this factor (and are indexed): a
/// probe (a Bloom filter bit, then on a hit a map lookup) costs about as much as two scan
/// steps (a privilege test and a signature bit). Measured on the benchmark: 8 made `allows`
/// scan a schema's 150 entries where 50 probes were cheaper.
const PROBE_WHEN_GRANTS_PER_NODE: usize = 2;

/// A scanned grant list longer than this tests each grantee with
/// [`AccessSet::may_contain`] before looking it up; a short one (a table's few grants) is
/// cheaper to look up directly than to make the set's signature for.
const PREFILTER_GRANTS_FROM: usize = 16;

/// `who` filters its candidates by a `USE` requirement walking down from the holders unless
/// that would read more than this many member-list entries per candidate; then it tests each
/// candidate upwards instead (about this many reads each, in closures and a bitset).
const UPWARD_FILTER_FACTOR: usize = 16;

fn has_bit(bits: &[u64], slot: u32) -> bool {
    bits.get((slot / 64) as usize)
        .is_some_and(|word| word & (1u64 << (slot % 64)) != 0)
}

fn set_bit(bits: &mut [u64], slot: u32) {
    if let Some(word) = bits.get_mut((slot / 64) as usize) {
        *word |= 1u64 << (slot % 64);
    }
}

/// Which principals a walk down from some holders reaches, and from where, for `who`.
struct Reach {
    /// For each principal slot: the slot it was reached from, or `NONE`.
    predecessor: Vec<u32>,
    /// For each principal slot: the supply whose holder the walk started from.
    supply: Vec<u32>,
    reached: Vec<u32>,
}

/// The answer of [`AccessModel::holders`]: every user and service principal found, each
/// with the source it holds through and the membership chain to that source's holder, kept
/// as slots and one predecessor per principal until a caller reads them.
#[derive(Debug)]
pub struct Holders<'model> {
    model: &'model AccessModel,
    /// The principals found, in the order they were first known to the model.
    found: Vec<u32>,
    /// Per principal slot: the member of the walk it was reached from; a holder of a source
    /// points at itself, which ends a chain.
    predecessor: Vec<u32>,
    /// Per principal slot: the index in `sources` of the source its walk started from.
    source_of: Vec<u32>,
    sources: Vec<Source>,
}

impl<'model> Holders<'model> {
    pub fn len(&self) -> usize {
        self.found.len()
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Each principal found, in order, read in place.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = HolderView<'_>> + '_ {
        self.found.iter().map(move |slot| HolderView {
            holders: self,
            slot: *slot,
        })
    }

    /// Keeps only the principals `keep` accepts (those of one workspace's directory, say),
    /// in their order; their chains and sources are untouched.
    pub fn retain(&mut self, mut keep: impl FnMut(&PrincipalId) -> bool) {
        let principals = &self.model.principals;
        self.found.retain(|slot| keep(principals.view(*slot).id));
    }

    /// Every principal found as an owned [`Holder`] (what [`AccessModel::who`] returns).
    pub fn to_vec(&self) -> Vec<Holder> {
        self.iter().map(|holder| holder.to_holder()).collect()
    }
}

/// One principal of [`Holders`], borrowed: its names and chain are read when asked for.
#[derive(Debug, Clone, Copy)]
pub struct HolderView<'a> {
    holders: &'a Holders<'a>,
    slot: u32,
}

impl<'a> HolderView<'a> {
    /// The user or service principal that holds the access.
    pub fn principal(&self) -> PrincipalView<'a> {
        self.holders.model.principals.view(self.slot)
    }

    /// The grant, ownership, ACL entry or entitlement it holds the access through.
    pub fn source(&self) -> &'a Source {
        let holders = self.holders;
        let index = holders
            .source_of
            .get(self.slot as usize)
            .copied()
            .unwrap_or(NONE);
        // Every principal found was reached from a source, so the fallback is never used.
        holders
            .sources
            .get(index as usize)
            .unwrap_or(&Source::WorkspaceAdmin)
    }

    /// The membership chain from the principal (first) to the holder of the source (last),
    /// as [`Via::chain`] has it.
    pub fn chain(&self) -> impl Iterator<Item = PrincipalView<'a>> + 'a {
        let holders = self.holders;
        let mut next = Some(self.slot);
        std::iter::from_fn(move || {
            let at = next?;
            let before = holders.predecessor.get(at as usize).copied().unwrap_or(at);
            next = (before != at && before != NONE).then_some(before);
            Some(holders.model.principals.view(at))
        })
    }

    /// The same as an owned [`Holder`].
    pub fn to_holder(&self) -> Holder {
        Holder {
            principal: self.principal().to_ref(),
            via: Via {
                source: self.source().clone(),
                chain: self.chain().map(|principal| principal.to_ref()).collect(),
            },
        }
    }
}

/// The answer of [`AccessModel::explain`]: the same decision as [`AccessModel::check`], kept
/// as slots (the requirement, the grant or ownership, and the membership chain of each
/// reason) until a caller reads them, so that answering copies no names.
/// [`Explanation::to_decision`] makes the owned [`Decision`].
#[derive(Debug)]
pub struct Explanation<'model> {
    model: &'model AccessModel,
    subject: u32,
    /// False for a deactivated principal, which holds nothing: no reasons, nothing missing.
    active: bool,
    reasons: Vec<ExplainedReason>,
    /// Each requirement nothing meets: `(privilege, securable slot)`.
    missing: Requirements,
    /// The reasons' membership chains one after another, each principal first.
    chains: Vec<u32>,
}

/// One securable on the path an explanation's requirements walk: what they may take from
/// it, and who in the principal's set holds its ownership and its grant entries.
#[derive(Default)]
struct HeldLevel {
    slot: u32,
    wanted: PrivilegeSet,
    owner_position: Option<u32>,
    /// Where its held grant entries are in the explanation's one buffer of them.
    held: std::ops::Range<usize>,
}

/// Whether a securable of `kind` passes `privilege` to a question about it (`itself`) or
/// about something below it (only catalogs and schemas pass privileges down).
fn passes(kind: SecurableType, itself: bool, privilege: Privilege) -> bool {
    if itself {
        kind.applicable().contains(privilege)
    } else {
        kind.inheritable().contains(privilege)
    }
}

/// What a grant entry on a securable of `kind` must hold to supply `privilege`: the
/// privilege, or `ALL_PRIVILEGES` where that stands for it.
fn supplying(kind: SecurableType, privilege: Privilege) -> PrivilegeSet {
    if kind.all_privileges_expansion().contains(privilege) {
        PrivilegeSet::of(&[privilege, Privilege::AllPrivileges])
    } else {
        PrivilegeSet::of(&[privilege])
    }
}

/// How the entry supplies `privilege` on a securable of `kind`, as explanations name it: the
/// privilege itself, else `ALL_PRIVILEGES`, else not at all.
fn granted_as(grant: &GrantEntry, kind: SecurableType, privilege: Privilege) -> Option<Privilege> {
    if grant.privileges.contains(privilege) {
        Some(privilege)
    } else if !grant
        .privileges
        .intersection(supplying(kind, privilege))
        .is_empty()
    {
        Some(Privilege::AllPrivileges)
    } else {
        None
    }
}

/// The entries of `grants` that hold something of `wanted` and whose grantee is in `set`,
/// each as `(index in the list, the grantee's position in the set)`. A long indexed list is
/// probed once per member of the set, giving them in the set's order; a shorter one is
/// scanned, giving them in list order. `allows` stops at the first; an explanation takes
/// them all, in list order.
fn held_grants<'a>(
    set: &'a impl AccessSet,
    grants: &'a Grants,
    wanted: PrivilegeSet,
) -> impl Iterator<Item = (u32, u32)> + 'a {
    let supplies = move |grant: &GrantEntry| !grant.privileges.intersection(wanted).is_empty();
    let searched = !grants.union().intersection(wanted).is_empty();
    let probed = grants.is_indexed() && grants.len() > PROBE_WHEN_GRANTS_PER_NODE * set.len();
    let probes = (searched && probed).then(|| {
        set.nodes().filter_map(move |(node, position)| {
            let index = grants.position(node)?;
            grants
                .get(index)
                .is_some_and(supplies)
                .then_some((index as u32, position))
        })
    });
    let long = grants.len() > PREFILTER_GRANTS_FROM;
    let scan = (searched && !probed).then(|| {
        grants.iter().enumerate().filter_map(move |(index, grant)| {
            // Most entries of a long list neither supply the privilege nor are held by anyone
            // in the set: both cheap tests are made, then one branch, taken rarely and so
            // predicted well, rather than a branch on each.
            if !(supplies(grant) & (!long || set.may_contain(grant.grantee))) {
                return None;
            }
            Some((index as u32, set.position(grant.grantee)?))
        })
    });
    probes
        .into_iter()
        .flatten()
        .chain(scan.into_iter().flatten())
}

/// One way one requirement is met.
#[derive(Debug, Clone, Copy)]
struct ExplainedReason {
    needed: Privilege,
    on: u32,
    supply: Supply,
    /// The chain's range in [`Explanation::chains`].
    chain: (u32, u32),
}

impl<'model> Explanation<'model> {
    /// Whether every requirement is met (and the principal is active).
    pub fn allowed(&self) -> bool {
        self.active && self.missing.count == 0
    }

    /// False when the principal is deactivated, which is then the only thing missing.
    pub fn active(&self) -> bool {
        self.active
    }

    /// The principal asked about.
    pub fn principal(&self) -> PrincipalView<'model> {
        self.model.principals.view(self.subject)
    }

    /// Every way each requirement is met: the requirements in order (the privilege, then
    /// `USE_SCHEMA`, then `USE_CATALOG`), and for each the grants and ownerships as
    /// [`AccessModel::check`] lists them.
    pub fn reasons(&self) -> impl ExactSizeIterator<Item = ReasonView<'_>> + '_ {
        self.reasons.iter().map(move |reason| ReasonView {
            explanation: self,
            reason: *reason,
        })
    }

    /// Every requirement nothing meets (none for a deactivated principal).
    pub fn missing(&self) -> impl ExactSizeIterator<Item = RequirementView<'model>> + '_ {
        let model = self.model;
        self.missing
            .as_slice()
            .iter()
            .map(move |(privilege, on)| RequirementView {
                privilege: *privilege,
                securable: model.catalog.view(*on),
            })
    }

    /// The same answer as an owned [`Decision`] (what [`AccessModel::check`] returns).
    pub fn to_decision(&self) -> Decision {
        if !self.active {
            return self.model.inactive_decision(self.subject);
        }
        Decision {
            allowed: self.allowed(),
            reasons: self.reasons().map(|reason| reason.to_reason()).collect(),
            missing: self
                .missing()
                .map(|requirement| Missing::Privilege(requirement.to_requirement()))
                .collect(),
        }
    }
}

/// One privilege needed on one securable, borrowed: [`Requirement`] without the copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequirementView<'a> {
    pub privilege: Privilege,
    pub securable: SecurableView<'a>,
}

impl RequirementView<'_> {
    /// The same as an owned [`Requirement`].
    pub fn to_requirement(&self) -> Requirement {
        Requirement {
            privilege: self.privilege,
            securable: self.securable.to_ref(),
        }
    }
}

/// One reason of an [`Explanation`], read in place.
#[derive(Debug, Clone, Copy)]
pub struct ReasonView<'a> {
    explanation: &'a Explanation<'a>,
    reason: ExplainedReason,
}

impl<'a> ReasonView<'a> {
    /// The requirement this reason meets.
    pub fn requirement(&self) -> RequirementView<'a> {
        RequirementView {
            privilege: self.reason.needed,
            securable: self.explanation.model.catalog.view(self.reason.on),
        }
    }

    /// The privilege as it was granted (possibly `ALL_PRIVILEGES`), or `None` when the
    /// reason is ownership.
    pub fn granted(&self) -> Option<Privilege> {
        self.reason.supply.granted
    }

    /// The securable the grant or ownership is on: the one asked about, or a catalog or
    /// schema above it.
    pub fn on(&self) -> SecurableView<'a> {
        self.explanation
            .model
            .catalog
            .view(self.reason.supply.level)
    }

    /// The membership chain from the principal (first) to the grantee or owner (last).
    pub fn chain(&self) -> impl ExactSizeIterator<Item = PrincipalView<'a>> + 'a {
        let explanation = self.explanation;
        let (start, end) = self.reason.chain;
        explanation
            .chains
            .get(start as usize..end as usize)
            .unwrap_or_default()
            .iter()
            .map(move |slot| explanation.model.principals.view(*slot))
    }

    /// The same as an owned [`Reason`].
    pub fn to_reason(&self) -> Reason {
        Reason {
            requirement: self.requirement().to_requirement(),
            via: Via {
                source: self.explanation.model.supply_source(self.reason.supply),
                chain: self.chain().map(|link| link.to_ref()).collect(),
            },
        }
    }
}

impl AccessModel {
    // ----- Unity Catalog checks --------------------------------------------------------------

    /// Whether the principal can exercise `privilege` on the securable, and why: every grant
    /// or ownership meeting each requirement, with the membership chain to it, or on a deny
    /// every requirement that is missing. Reading a table needs `USE_CATALOG` and
    /// `USE_SCHEMA` on its parents as well as `SELECT`; so does every privilege below a
    /// catalog except `BROWSE`.
    pub fn check(
        &self,
        principal: &PrincipalId,
        privilege: Privilege,
        securable_type: SecurableType,
        full_name: &str,
    ) -> Result<Decision, AccessError> {
        Ok(self
            .explain(principal, privilege, securable_type, full_name)?
            .to_decision())
    }

    /// [`AccessModel::check`]'s answer kept compact, for callers that render it (the check
    /// API answers tens of thousands of times a second). A user's or service principal's
    /// fresh access set finds the grants and ownerships (as in [`AccessModel::allows`]) and
    /// holds each group's chain; otherwise, for a group or while the set is stale, the
    /// principal's groups are walked breadth-first, which gives the same chains.
    pub fn explain(
        &self,
        principal: &PrincipalId,
        privilege: Privilege,
        securable_type: SecurableType,
        full_name: &str,
    ) -> Result<Explanation<'_>, AccessError> {
        let subject = self.principals.slot(principal)?;
        let target = self.target(privilege, securable_type, full_name)?;
        let mut explanation = Explanation {
            model: self,
            subject,
            active: self.principals.can_hold_access(subject),
            reasons: Vec::new(),
            missing: Requirements::NONE,
            chains: Vec::new(),
        };
        if !explanation.active {
            return Ok(explanation);
        }
        // Room for the usual answer (a reason or two per requirement, chains of a few
        // groups) at once, rather than growing there by doubling.
        explanation.reasons.reserve(8);
        explanation.chains.reserve(32);
        let requirements = self.requirements(privilege, target);
        if let Some(set) = self.principals.fresh_access_set(subject) {
            self.explain_requirements(&set, requirements, &mut explanation, |position, out| {
                set.extend_chain(position, out)
            });
        } else {
            self.principals.with_ancestry(subject, |ancestry| {
                self.explain_requirements(
                    ancestry,
                    requirements,
                    &mut explanation,
                    |position, out| ancestry.extend_chain(position, out),
                )
            });
        }
        Ok(explanation)
    }

    /// Fills `explanation` with every supply of each requirement held in `set`, in
    /// [`AccessModel::for_each_source`]'s order, each chain written by `chain_to(position of
    /// the holder in set, chains)`; and with each requirement nothing supplies.
    ///
    /// The requirements walk up one path (the target, then the schema and catalog above it),
    /// so each securable on it is searched once for the entries held in `set`, whatever
    /// privileges the requirements passing through it ask there; a schema with 1,500 grant
    /// entries is probed once per group of the principal, not once for `SELECT` and again
    /// for `USE_SCHEMA`.
    fn explain_requirements(
        &self,
        set: &impl AccessSet,
        requirements: Requirements,
        explanation: &mut Explanation<'_>,
        chain_to: impl Fn(u32, &mut Vec<u32>),
    ) {
        let needs = requirements.as_slice();
        let Some((_, target)) = needs.first() else {
            return;
        };
        // Per level of the path (at most a table, its schema and its catalog): what some
        // requirement may take from it (with ALL_PRIVILEGES where that stands for it), then
        // what is held there. Kept on the stack: this runs for every check.
        let mut path: [HeldLevel; 3] = Default::default();
        let mut depth = 0;
        let mut next = Some(*target);
        while let (Some(slot), Some(level)) = (next, path.get_mut(depth)) {
            level.slot = slot;
            depth += 1;
            next = self.catalog.slot(slot).parent;
        }
        let levels = &mut path[..depth];
        for (needed, on) in needs {
            for level in levels.iter_mut().skip_while(|level| level.slot != *on) {
                let kind = self.catalog.slot(level.slot).kind;
                if passes(kind, level.slot == *on, *needed) {
                    level.wanted = level.wanted.union(supplying(kind, *needed));
                }
            }
        }
        // Every level's held entries, `(index in the grant list, position in the set)`, in
        // list order per level: one buffer rather than one per level, as allocations were a
        // tenth of an explanation's time.
        let mut held: Vec<(u32, u32)> = Vec::with_capacity(16);
        for level in levels.iter_mut() {
            if level.wanted.is_empty() {
                continue;
            }
            let entry = self.catalog.slot(level.slot);
            level.owner_position = self.owner_position(set, entry.owner);
            let start = held.len();
            held.extend(held_grants(set, &entry.grants, level.wanted));
            held[start..].sort_unstable();
            level.held = start..held.len();
        }
        for (needed, on) in needs {
            let before = explanation.reasons.len();
            for level in levels.iter().skip_while(|level| level.slot != *on) {
                let entry = self.catalog.slot(level.slot);
                if !passes(entry.kind, level.slot == *on, *needed) {
                    continue;
                }
                let mut supply = |holder: u32, granted: Option<Privilege>, position: u32| {
                    let start = explanation.chains.len() as u32;
                    chain_to(position, &mut explanation.chains);
                    explanation.reasons.push(ExplainedReason {
                        needed: *needed,
                        on: *on,
                        supply: Supply {
                            level: level.slot,
                            holder,
                            granted,
                        },
                        chain: (start, explanation.chains.len() as u32),
                    });
                };
                if let Some(position) = level.owner_position {
                    supply(entry.owner, None, position);
                }
                for (index, position) in &held[level.held.clone()] {
                    let Some(grant) = entry.grants.get(*index as usize) else {
                        continue;
                    };
                    if let Some(granted) = granted_as(grant, entry.kind, *needed) {
                        supply(grant.grantee, Some(granted), *position);
                    }
                }
            }
            if explanation.reasons.len() == before {
                explanation.missing.push(*needed, *on);
            }
        }
    }

    /// The same answer as [`AccessModel::check`]`.allowed`, without building explanations:
    /// the hot path for request authorization.
    pub fn allows(
        &self,
        principal: &PrincipalId,
        privilege: Privilege,
        securable_type: SecurableType,
        full_name: &str,
    ) -> Result<bool, AccessError> {
        let subject = self.principals.slot(principal)?;
        let target = self.target(privilege, securable_type, full_name)?;
        if !self.principals.can_hold_access(subject) {
            return Ok(false);
        }
        if let Some(set) = self.principals.fresh_access_set(subject) {
            // The common case: one run read in place, tested by binary search.
            return Ok(self
                .requirements(privilege, target)
                .as_slice()
                .iter()
                .all(|(needed, on)| self.holds(&set, *needed, *on)));
        }
        Ok(self.principals.with_access_set(subject, |ancestry| {
            self.requirements(privilege, target)
                .as_slice()
                .iter()
                .all(|(needed, on)| self.holds(ancestry, *needed, *on))
        }))
    }

    /// Whether the principal may change grants and ownership on the securable: its owner,
    /// the owner of a catalog or schema above it, the metastore owner (metastore admin), or a
    /// holder of `MANAGE` on it (with the `USE` privileges that needs).
    pub fn can_manage(
        &self,
        principal: &PrincipalId,
        securable_type: SecurableType,
        full_name: &str,
    ) -> Result<Decision, AccessError> {
        let subject = self.principals.slot(principal)?;
        let target = self.catalog.find(securable_type, full_name)?;
        if !self.principals.can_hold_access(subject) {
            return Ok(self.inactive_decision(subject));
        }
        let ancestry = self.principals.ancestry(subject);
        let requirement = Requirement {
            privilege: Privilege::Manage,
            securable: self.catalog.reference(target),
        };
        let mut owned_levels: Vec<u32> =
            std::iter::successors(Some(target), |slot| self.catalog.slot(*slot).parent).collect();
        if let Some(metastore) = self.catalog.metastore {
            if !owned_levels.contains(&metastore) {
                owned_levels.push(metastore);
            }
        }
        let reasons: Vec<Reason> = owned_levels
            .into_iter()
            .filter_map(|level| {
                let owner = self.catalog.slot(level).owner;
                ancestry.position(owner).map(|position| Reason {
                    requirement: requirement.clone(),
                    via: Via {
                        source: Source::Ownership {
                            of: self.catalog.reference(level),
                        },
                        chain: self.principals.references(&ancestry.chain(position)),
                    },
                })
            })
            .collect();
        if !reasons.is_empty() {
            return Ok(Decision {
                allowed: true,
                reasons,
                missing: Vec::new(),
            });
        }
        if securable_type.applicable().contains(Privilege::Manage) {
            return self.check(principal, Privilege::Manage, securable_type, full_name);
        }
        Ok(Decision {
            allowed: false,
            reasons,
            missing: vec![Missing::Privilege(requirement)],
        })
    }

    /// Every active user and service principal that can exercise `privilege` on the
    /// securable (all requirements met), each with one way it holds the privilege itself.
    /// Groups are expanded through any depth of nesting; the result is in the order
    /// principals were first known to the model. [`AccessModel::holders`] gives the same
    /// answer without copying every name, for callers that only render it.
    pub fn who(
        &self,
        privilege: Privilege,
        securable_type: SecurableType,
        full_name: &str,
    ) -> Result<Vec<Holder>, AccessError> {
        Ok(self.holders(privilege, securable_type, full_name)?.to_vec())
    }

    /// [`AccessModel::who`], kept compact: the principals found and, per principal, the one
    /// it was reached from, borrowed from the model. Names and chains are read only when a
    /// caller walks [`Holders::iter`], so answering for 100,000 principals does not allocate
    /// a dozen strings for each.
    pub fn holders(
        &self,
        privilege: Privilege,
        securable_type: SecurableType,
        full_name: &str,
    ) -> Result<Holders<'_>, AccessError> {
        let target = self.target(privilege, securable_type, full_name)?;
        let requirements = self.requirements(privilege, target);
        let mut main_supplies = Vec::new();
        let _ = self.for_each_source(privilege, target, |supply| {
            main_supplies.push(supply);
            ControlFlow::<()>::Continue(())
        });
        let sources = main_supplies
            .iter()
            .map(|supply| self.supply_source(*supply))
            .collect();
        let main = self.reach(&main_supplies);
        // The USE requirements only filter the principals the main walk reached: a set of
        // who meets each is enough, one bit per principal.
        let mut found: Vec<u32> = main
            .reached
            .iter()
            .copied()
            .filter(|slot| self.principals.status(*slot).kind != PrincipalKind::Group)
            .collect();
        for (needed, on) in requirements.as_slice().iter().skip(1) {
            let mut holders = Vec::new();
            let _ = self.for_each_source(*needed, *on, |supply| {
                holders.push(supply.holder);
                ControlFlow::<()>::Continue(())
            });
            self.keep_those_reached(&holders, &mut found);
        }
        found.sort_unstable();
        Ok(Holders {
            model: self,
            found,
            predecessor: main.predecessor,
            source_of: main.supply,
            sources,
        })
    }

    /// Every privilege the principal holds on the securable, granted there or inherited from
    /// a catalog or schema above, through its own grants, its groups' or ownership, in the
    /// shape of Databricks' effective-permissions API. `ALL_PRIVILEGES` is shown expanded,
    /// each privilege it stands for as its own entry; the `USE` requirements of
    /// [`AccessModel::check`] are not applied here, as Databricks does not apply them either.
    pub fn effective_privileges(
        &self,
        principal: &PrincipalId,
        securable_type: SecurableType,
        full_name: &str,
    ) -> Result<Vec<EffectivePrivilege>, AccessError> {
        let subject = self.principals.slot(principal)?;
        let target = self.catalog.find(securable_type, full_name)?;
        if !self.principals.can_hold_access(subject) {
            return Ok(Vec::new());
        }
        let ancestry = self.principals.ancestry(subject);
        let mut effective = Vec::new();
        for privilege in self.catalog.slot(target).kind.applicable().iter() {
            let _ = self.for_each_source(privilege, target, |supply| {
                if let Some(position) = ancestry.position(supply.holder) {
                    effective.push(EffectivePrivilege {
                        privilege,
                        inherited_from: (supply.level != target)
                            .then(|| self.catalog.reference(supply.level)),
                        via: self.supply_via(supply, &ancestry, position),
                    });
                }
                ControlFlow::<()>::Continue(())
            });
        }
        Ok(effective)
    }

    /// The type of the securable that `securable_type` `full_name` names: the type itself,
    /// or a view's when a table address names a view
    /// ([`SecurableType::also_addresses`]). When nothing is found, the type asked for, so
    /// that "does not exist" names what the caller asked about.
    pub fn addressed_type(&self, securable_type: SecurableType, full_name: &str) -> SecurableType {
        self.catalog
            .addressed(securable_type, full_name)
            .unwrap_or(securable_type)
    }

    /// The securable's owner (possibly a removed principal, which holds nothing).
    pub fn owner(
        &self,
        securable_type: SecurableType,
        full_name: &str,
    ) -> Result<crate::PrincipalRef, AccessError> {
        let slot = self.catalog.find(securable_type, full_name)?;
        Ok(self.principals.reference(self.catalog.slot(slot).owner))
    }

    /// The grants made on the securable itself, per grantee (`SHOW GRANTS ON ...`, and
    /// `GET /unity-catalog/permissions`), in the order they were first made.
    pub fn grants_on(
        &self,
        securable_type: SecurableType,
        full_name: &str,
    ) -> Result<Vec<(crate::PrincipalRef, crate::PrivilegeSet)>, AccessError> {
        let slot = self.catalog.find(securable_type, full_name)?;
        Ok(self
            .catalog
            .slot(slot)
            .grants
            .iter()
            .map(|entry| (self.principals.reference(entry.grantee), entry.privileges))
            .collect())
    }

    // ----- principals, entitlements, workspace objects ---------------------------------------

    /// How many direct members the group has (0 for a user or service principal).
    pub fn direct_member_count(&self, group: &PrincipalId) -> Result<usize, AccessError> {
        let slot = self.principals.slot(group)?;
        Ok(self.principals.members(slot).len())
    }

    /// The groups the principal is in, direct and indirect (the SCIM `groups` attribute).
    /// Inactive groups are listed too: they are memberships, even if they pass no access.
    pub fn groups_of(&self, principal: &PrincipalId) -> Result<Vec<GroupMembership>, AccessError> {
        let subject = self.principals.slot(principal)?;
        let walk = self.principals.walk_up(subject, true);
        Ok(walk
            .nodes()
            .skip(1)
            .map(|(group, position)| GroupMembership {
                group: self.principals.reference(group),
                direct: walk.is_direct(position),
            })
            .collect())
    }

    /// Whether the principal exists and is active: whether a credential of its may be used.
    /// Unknown principals cannot act.
    pub fn can_act(&self, principal: &PrincipalId) -> bool {
        self.principals
            .slot(principal)
            .is_ok_and(|slot| self.principals.can_hold_access(slot))
    }

    /// The principal as explanations name it (id, kind, name), active or not.
    pub fn principal_ref(
        &self,
        principal: &PrincipalId,
    ) -> Result<crate::PrincipalRef, AccessError> {
        Ok(self.principals.reference(self.principals.slot(principal)?))
    }

    /// The `admins` group, if the account has one.
    pub fn admins_group(&self) -> Option<crate::PrincipalRef> {
        self.principals
            .admins()
            .map(|slot| self.principals.reference(slot))
    }

    /// Whether the principal is a workspace admin: an active member of `admins`.
    pub fn is_workspace_admin(&self, principal: &PrincipalId) -> Result<bool, AccessError> {
        let subject = self.principals.slot(principal)?;
        Ok(self.admin_position(subject).is_some())
    }

    /// The principal's entitlements in `workspace`: its own there and every group's it is in,
    /// transitively; all of them for account admins (members of `admins`) and for principals
    /// assigned `ADMIN` in the workspace. A principal the workspace does not reach (neither it
    /// nor a group it is in is assigned there) holds none there, whatever its groups carry:
    /// the built-in `users` group's entitlements are every workspace's, but only the
    /// workspace's own users may use them.
    pub fn effective_entitlements(
        &self,
        workspace: &WorkspaceId,
        principal: &PrincipalId,
    ) -> Result<EntitlementSet, AccessError> {
        let subject = self.principals.slot(principal)?;
        if !self.principals.can_hold_access(subject) {
            return Ok(EntitlementSet::EMPTY);
        }
        let ancestry = self.principals.ancestry(subject);
        if self.is_admin_in(&ancestry) {
            return Ok(EntitlementSet::all());
        }
        match self.permission_in_ancestry(workspace, &ancestry) {
            None => Ok(EntitlementSet::EMPTY),
            Some((WorkspacePermission::Admin, _)) => Ok(EntitlementSet::all()),
            Some((WorkspacePermission::User, _)) => Ok(ancestry
                .nodes()
                .fold(EntitlementSet::EMPTY, |set, (slot, _)| {
                    set.union(self.entitlements.of(workspace, slot))
                })),
        }
    }

    /// [`AccessModel::effective_entitlements`] with every way each entitlement is held.
    pub fn explain_entitlements(
        &self,
        workspace: &WorkspaceId,
        principal: &PrincipalId,
    ) -> Result<Vec<EntitlementAccess>, AccessError> {
        let subject = self.principals.slot(principal)?;
        if !self.principals.can_hold_access(subject) {
            return Ok(Vec::new());
        }
        let ancestry = self.principals.ancestry(subject);
        let permission = self.permission_in_ancestry(workspace, &ancestry);
        let mut admin: Vec<Via> = self.admin_via(&ancestry).into_iter().collect();
        if let Some((WorkspacePermission::Admin, position)) = permission {
            admin.push(Via {
                source: Source::WorkspaceAdmin,
                chain: self.principals.references(&ancestry.chain(position)),
            });
        }
        let reached = permission.is_some();
        Ok(Entitlement::ALL
            .into_iter()
            .filter_map(|entitlement| {
                let mut via: Vec<Via> = ancestry
                    .nodes()
                    .filter(|_| reached)
                    .filter(|(slot, _)| {
                        self.entitlements.of(workspace, *slot).contains(entitlement)
                    })
                    .map(|(_, position)| Via {
                        source: Source::Entitlement { entitlement },
                        chain: self.principals.references(&ancestry.chain(position)),
                    })
                    .collect();
                via.extend(admin.iter().cloned());
                (!via.is_empty()).then_some(EntitlementAccess { entitlement, via })
            })
            .collect())
    }

    /// The principal's level on a workspace object: the highest its own ACL entries, its
    /// groups' entries, and those inherited from directories above give; `CAN_MANAGE` at
    /// least for workspace admins. `None` if it has no level at all.
    pub fn object_permission(
        &self,
        principal: &PrincipalId,
        object_type: ObjectType,
        object_id: &str,
    ) -> Result<Option<ObjectPermission>, AccessError> {
        let subject = self.principals.slot(principal)?;
        if !self.principals.can_hold_access(subject) {
            return Ok(None);
        }
        let ancestry = self.principals.ancestry(subject);
        let mut via: Vec<(PermissionLevel, Via)> = Vec::new();
        if let Some(admin) = self.admin_via(&ancestry) {
            via.push((PermissionLevel::CanManage, admin));
        }
        let slot = self.objects.find(object_type, object_id);
        for at in slot.into_iter().flat_map(|slot| self.objects.lineage(slot)) {
            for (holder, level) in &self.objects.slot(at).acl {
                if let Some(position) = ancestry.position(*holder) {
                    via.push((
                        *level,
                        Via {
                            source: Source::ObjectAcl {
                                object: self.objects.reference(at),
                                level: *level,
                            },
                            chain: self.principals.references(&ancestry.chain(position)),
                        },
                    ));
                }
            }
        }
        via.sort_by_key(|(level, _)| std::cmp::Reverse(object_type.rank(*level)));
        Ok(via.first().map(|(level, _)| ObjectPermission {
            object: crate::ObjectRef {
                object_type,
                object_id: match slot {
                    Some(slot) => self.objects.slot(slot).id.clone(),
                    None => object_id.to_string(),
                },
            },
            level: *level,
            via: via.iter().map(|(_, via)| via.clone()).collect(),
        }))
    }

    /// An object's effective ACL: its own entries, then those inherited from each directory
    /// above, nearest first (`GET /permissions/...`). An unknown object has none.
    pub fn object_acl(&self, object_type: ObjectType, object_id: &str) -> Vec<AclView> {
        let Some(slot) = self.objects.find(object_type, object_id) else {
            return Vec::new();
        };
        self.objects
            .lineage(slot)
            .flat_map(|at| {
                self.objects
                    .slot(at)
                    .acl
                    .iter()
                    .map(move |(principal, level)| AclView {
                        principal: self.principals.reference(*principal),
                        level: *level,
                        inherited_from: (at != slot).then(|| self.objects.reference(at)),
                    })
            })
            .collect()
    }

    /// Everything the principal holds, and through which grant: its entitlements in
    /// `workspace` (those of a workspace that reaches it), workspace admin membership (of
    /// `admins`, or an `ADMIN` assignment in `workspace`), ownerships and grants of Unity Catalog securables (a catalog or
    /// schema grant also covers what is below it), and workspace ACL entries (a directory's
    /// also covers what is inside it). The principal's own holdings come first, then its
    /// groups', nearest first. Whether a Unity Catalog privilege is usable also depends on
    /// the `USE` privileges: ask [`AccessModel::check`].
    pub fn what(
        &self,
        workspace: &WorkspaceId,
        principal: &PrincipalId,
    ) -> Result<Vec<Via>, AccessError> {
        let subject = self.principals.slot(principal)?;
        if !self.principals.can_hold_access(subject) {
            return Ok(Vec::new());
        }
        let ancestry = self.principals.ancestry(subject);
        let reached = self.permission_in_ancestry(workspace, &ancestry).is_some();
        let mut found = Vec::new();
        for (holder, position) in ancestry.nodes() {
            let chain = || self.principals.references(&ancestry.chain(position));
            let workspace_admin =
                self.assigned_permission(workspace, holder) == Some(WorkspacePermission::Admin);
            if self.principals.admins() == Some(holder) || workspace_admin {
                found.push(Via {
                    source: Source::WorkspaceAdmin,
                    chain: chain(),
                });
            }
            let entitlements = if reached {
                self.entitlements.of(workspace, holder)
            } else {
                EntitlementSet::EMPTY
            };
            for entitlement in entitlements.iter() {
                found.push(Via {
                    source: Source::Entitlement { entitlement },
                    chain: chain(),
                });
            }
            for holding in self.principals.holdings(holder) {
                match *holding {
                    Holding::Owns(securable) if self.catalog.slot(securable).alive => {
                        found.push(Via {
                            source: Source::Ownership {
                                of: self.catalog.reference(securable),
                            },
                            chain: chain(),
                        });
                    }
                    Holding::Owns(_) => {}
                    Holding::Grant(securable) => {
                        let grants = &self.catalog.slot(securable).grants;
                        let granted = grants
                            .position(holder)
                            .and_then(|index| grants.get(index))
                            .into_iter()
                            .flat_map(|grant| grant.privileges.iter());
                        for privilege in granted {
                            found.push(Via {
                                source: Source::Grant {
                                    privilege,
                                    on: self.catalog.reference(securable),
                                },
                                chain: chain(),
                            });
                        }
                    }
                    Holding::Acl(object) => {
                        let entry = self.objects.slot(object);
                        for (_, level) in entry.acl.iter().filter(|(p, _)| *p == holder) {
                            found.push(Via {
                                source: Source::ObjectAcl {
                                    object: self.objects.reference(object),
                                    level: *level,
                                },
                                chain: chain(),
                            });
                        }
                    }
                }
            }
        }
        Ok(found)
    }

    /// Whether the principal may change the object's ACL: workspace admins may, and so may
    /// whoever holds `CAN_MANAGE` or `IS_OWNER` on it (directly, through groups, or from a
    /// directory above). The tokens object's `CAN_MANAGE` is reserved to admins, and an object
    /// no ACL has named yet is managed by admins only. Asked by the server before every
    /// `PUT`/`PATCH /permissions/...`, so the rule lives here and not in handlers.
    pub fn can_change_object_acl(
        &self,
        principal: &PrincipalId,
        object_type: ObjectType,
        object_id: &str,
    ) -> Result<bool, AccessError> {
        if self.is_workspace_admin(principal)? {
            return Ok(true);
        }
        Ok(self
            .object_permission(principal, object_type, object_id)?
            .is_some_and(|permission| {
                permission.level == PermissionLevel::IsOwner
                    || object_type.implies(permission.level, PermissionLevel::CanManage)
            }))
    }

    /// Every active user and service principal whose level on the object gives at least
    /// `level`, through the object's ACL, a directory above it, or `admins` (which holds
    /// `CAN_MANAGE` everywhere), expanded through nested groups, each with one way it does.
    pub fn who_has_object_level(
        &self,
        object_type: ObjectType,
        object_id: &str,
        level: PermissionLevel,
    ) -> Result<Vec<Holder>, AccessError> {
        if object_type.rank(level).is_none() {
            return Err(AccessError::LevelNotApplicable { level, object_type });
        }
        let mut holders = Vec::new();
        let mut sources = Vec::new();
        if let Some(admins) = self.principals.admins() {
            if object_type.implies(PermissionLevel::CanManage, level) {
                holders.push(admins);
                sources.push(Source::WorkspaceAdmin);
            }
        }
        let slot = self.objects.find(object_type, object_id);
        for at in slot.into_iter().flat_map(|slot| self.objects.lineage(slot)) {
            for (holder, held) in &self.objects.slot(at).acl {
                if object_type.implies(*held, level) {
                    holders.push(*holder);
                    sources.push(Source::ObjectAcl {
                        object: self.objects.reference(at),
                        level: *held,
                    });
                }
            }
        }
        Ok(self.holders_reached(&holders, &sources))
    }

    /// Every active user and service principal holding the entitlement in `workspace`:
    /// assigned to itself there, to a group it is in (transitively), or through `admins` or
    /// an `ADMIN` assignment in the workspace, which hold them all; among those the
    /// workspace does not reach, only account admins (as
    /// [`AccessModel::effective_entitlements`] says). Reads the workspace's assigned
    /// entitlements once, then walks down from their holders and from the workspace's
    /// assignments.
    pub fn who_has_entitlement(
        &self,
        workspace: &WorkspaceId,
        entitlement: Entitlement,
    ) -> Vec<Holder> {
        let mut holders = Vec::new();
        let mut sources = Vec::new();
        if let Some(admins) = self.principals.admins() {
            holders.push(admins);
            sources.push(Source::WorkspaceAdmin);
        }
        let assigned = self.assigned_slots(workspace);
        for (slot, permission) in &assigned {
            // An account admin assigned `ADMIN` too is explained through `admins`, as in
            // every other workspace.
            if *permission == WorkspacePermission::Admin && self.admin_position(*slot).is_none() {
                holders.push(*slot);
                sources.push(Source::WorkspaceAdmin);
            }
        }
        for (slot, set) in self.entitlements.assigned_in(workspace) {
            if set.contains(entitlement) {
                holders.push(slot);
                sources.push(Source::Entitlement { entitlement });
            }
        }
        let mut found = self.holders_reached(&holders, &sources);
        // The workspace's reach through active groups, as `workspace_permission` counts it.
        let assigned: Vec<u32> = assigned.into_iter().map(|(slot, _)| slot).collect();
        let reach = self.reach_from(&assigned);
        let mut in_workspace = vec![false; self.principals.len()];
        for slot in reach.reached {
            in_workspace[slot as usize] = true;
        }
        found.retain(|holder| {
            self.principals
                .slot(&holder.principal.id)
                .is_ok_and(|slot| {
                    in_workspace[slot as usize] || self.admin_position(slot).is_some()
                })
        });
        found
    }

    /// The users and service principals a walk down from `holders` reaches, each with the
    /// source of the holder it was first reached from and the chain to it.
    fn holders_reached(&self, holders: &[u32], sources: &[Source]) -> Vec<Holder> {
        let reach = self.reach_from(holders);
        let mut found: Vec<u32> = reach
            .reached
            .iter()
            .copied()
            .filter(|slot| self.principals.status(*slot).kind != PrincipalKind::Group)
            .collect();
        found.sort_unstable();
        Holders {
            model: self,
            found,
            predecessor: reach.predecessor,
            source_of: reach.supply,
            sources: sources.to_vec(),
        }
        .to_vec()
    }

    // ----- the walks -------------------------------------------------------------------------

    /// Finds the securable and refuses a privilege its type does not have.
    fn target(
        &self,
        privilege: Privilege,
        securable_type: SecurableType,
        full_name: &str,
    ) -> Result<u32, AccessError> {
        if !securable_type.applicable().contains(privilege) {
            return Err(AccessError::PrivilegeNotApplicable {
                privilege,
                securable_type,
            });
        }
        self.catalog.find(securable_type, full_name)
    }

    /// What exercising `privilege` on `target` needs: the privilege itself, then `USE_SCHEMA`
    /// on the enclosing schema and `USE_CATALOG` on the enclosing catalog (the target itself
    /// when it is one), except for `BROWSE`, which exists to see metadata without them.
    fn requirements(&self, privilege: Privilege, target: u32) -> Requirements {
        let mut needs = Requirements {
            needs: [(privilege, target); 3],
            count: 1,
        };
        if privilege == Privilege::Browse {
            return needs;
        }
        let (catalog, schema) = self.catalog.enclosing(target);
        if let Some(schema) = schema {
            if !(schema == target && privilege == Privilege::UseSchema) {
                needs.push(Privilege::UseSchema, schema);
            }
        }
        if let Some(catalog) = catalog {
            if !(catalog == target && privilege == Privilege::UseCatalog) {
                needs.push(Privilege::UseCatalog, catalog);
            }
        }
        needs
    }

    /// Calls `visit` with every ownership and grant that supplies `privilege` on `target`:
    /// on the target itself, anything applicable (`ALL_PRIVILEGES` standing for its
    /// expansion); on each catalog or schema above (at most two), only what that type passes
    /// down. Walks at most three securables and their few grant entries each.
    fn for_each_source<B>(
        &self,
        privilege: Privilege,
        target: u32,
        mut visit: impl FnMut(Supply) -> ControlFlow<B>,
    ) -> ControlFlow<B> {
        let mut level = Some(target);
        while let Some(at) = level {
            let entry = self.catalog.slot(at);
            if passes(entry.kind, at == target, privilege) {
                visit(Supply {
                    level: at,
                    holder: entry.owner,
                    granted: None,
                })?;
                for grant in entry.grants.iter() {
                    if let Some(granted) = granted_as(grant, entry.kind, privilege) {
                        visit(Supply {
                            level: at,
                            holder: grant.grantee,
                            granted: Some(granted),
                        })?;
                    }
                }
            }
            level = entry.parent;
        }
        ControlFlow::Continue(())
    }

    /// Whether anyone in `set` holds `privilege` on `target`: the owner or a grant entry of
    /// the target, or of a catalog or schema above it that passes the privilege down. Stops
    /// at the first. A small grant list is scanned, each grantee looked up in the set; a
    /// large indexed one (a catalog that thousands of groups may use) is probed once per
    /// member of the set instead.
    fn holds(&self, set: &impl AccessSet, privilege: Privilege, target: u32) -> bool {
        std::iter::successors(Some(target), |at| self.catalog.slot(*at).parent).any(|at| {
            let entry = self.catalog.slot(at);
            passes(entry.kind, at == target, privilege)
                && (self.owner_position(set, entry.owner).is_some()
                    || held_grants(set, &entry.grants, supplying(entry.kind, privilege))
                        .next()
                        .is_some())
        })
    }

    /// The owner's position in `set`. Only the principal itself or a group can be in it, so
    /// a user or service principal that owns the securable (the usual owner) is answered
    /// without searching the set.
    fn owner_position(&self, set: &impl AccessSet, owner: u32) -> Option<u32> {
        if owner == set.principal() {
            return Some(0);
        }
        if self.principals.status(owner).kind != PrincipalKind::Group {
            return None;
        }
        set.position(owner)
    }

    /// Walks down from the holders of `supplies` through group members, to every active
    /// principal they reach. Inactive groups pass nothing on, as in [`Ancestry`].
    fn reach(&self, supplies: &[Supply]) -> Reach {
        let holders: Vec<u32> = supplies.iter().map(|supply| supply.holder).collect();
        self.reach_from(&holders)
    }

    /// The active principals a walk down from `holders` reaches, as a bitset by slot: a
    /// filter needs no predecessors, and a bitset of a million principals (128 KiB) stays in
    /// cache while the walk reads member lists in order.
    /// Keeps the users and service principals of `candidates` that `holders` reach (the
    /// same test as [`AccessModel::reach_set`]), choosing the cheaper way. Downwards, the walk
    /// reads every member list below the holders: little when a few groups hold the
    /// privilege, ten million entries when every one of 100,000 groups holds `USE CATALOG`
    /// (0.1 s). Upwards, each candidate's direct groups are tested once each, through their
    /// closures, against the holders: proportional to the candidates, whatever holds it.
    fn keep_those_reached(&self, holders: &[u32], candidates: &mut Vec<u32>) {
        let walk_down_cost: usize = holders
            .iter()
            .map(|holder| self.principals.members(*holder).len())
            .sum();
        if walk_down_cost <= candidates.len() * UPWARD_FILTER_FACTOR {
            let meets = self.reach_set(holders.iter().copied());
            candidates.retain(|slot| has_bit(&meets, *slot));
        } else {
            self.keep_those_reached_upwards(holders, candidates);
        }
    }

    /// [`AccessModel::keep_those_reached`] tested from each candidate up: it is reached if it
    /// is an active holder itself, or if one of its direct groups' closures (which run
    /// through active groups only, and are empty for an inactive group) holds an active
    /// holder. Each group is tested once, then remembered.
    fn keep_those_reached_upwards(&self, holders: &[u32], candidates: &mut Vec<u32>) {
        let words = self.principals.len().div_ceil(64);
        let mut is_holder = vec![0u64; words];
        for holder in holders {
            if self.principals.can_hold_access(*holder) {
                set_bit(&mut is_holder, *holder);
            }
        }
        // Per group: known to reach (bit in `reaches`), known not to (bit in `misses`).
        let mut reaches = vec![0u64; words];
        let mut misses = vec![0u64; words];
        candidates.retain(|candidate| {
            if !self.principals.can_hold_access(*candidate) {
                return false;
            }
            if has_bit(&is_holder, *candidate) {
                return true;
            }
            self.principals.parents(*candidate).iter().any(|group| {
                if has_bit(&reaches, *group) {
                    return true;
                }
                if has_bit(&misses, *group) {
                    return false;
                }
                let reached = self
                    .principals
                    .closure(*group)
                    .iter()
                    .any(|above| has_bit(&is_holder, *above));
                set_bit(if reached { &mut reaches } else { &mut misses }, *group);
                reached
            })
        });
    }

    fn reach_set(&self, holders: impl IntoIterator<Item = u32>) -> Vec<u64> {
        let mut reached = vec![0u64; self.principals.len().div_ceil(64)];
        let mut groups = Vec::new();
        let mark = |slot: u32, reached: &mut Vec<u64>| -> bool {
            let (word, bit) = ((slot / 64) as usize, 1u64 << (slot % 64));
            match reached.get_mut(word) {
                Some(bits) if *bits & bit == 0 => {
                    *bits |= bit;
                    true
                }
                _ => false,
            }
        };
        for holder in holders {
            if self.principals.can_hold_access(holder)
                && mark(holder, &mut reached)
                && self.principals.status(holder).kind == PrincipalKind::Group
            {
                groups.push(holder);
            }
        }
        while let Some(node) = groups.pop() {
            for member in self.principals.members(node) {
                let member = *member;
                // Users are only marked; groups are walked on.
                if self.principals.can_hold_access(member)
                    && mark(member, &mut reached)
                    && self.principals.status(member).kind == PrincipalKind::Group
                {
                    groups.push(member);
                }
            }
        }
        reached
    }

    /// [`AccessModel::reach`] from plain holders: `Reach::supply` is an index into `holders`.
    fn reach_from(&self, holders: &[u32]) -> Reach {
        let count = self.principals.len();
        let mut predecessor = vec![NONE; count];
        let mut supply_of = vec![NONE; count];
        let mut reached = Vec::new();
        for (index, holder) in holders.iter().enumerate() {
            let holder = *holder;
            if self.principals.can_hold_access(holder) && predecessor[holder as usize] == NONE {
                // A root points at itself, which ends the chain walk in `who`.
                predecessor[holder as usize] = holder;
                supply_of[holder as usize] = index as u32;
                reached.push(holder);
            }
        }
        let mut next = 0;
        while let Some(node) = reached.get(next).copied() {
            next += 1;
            if self.principals.status(node).kind != PrincipalKind::Group {
                continue;
            }
            for member in self.principals.members(node) {
                let member = *member;
                if predecessor[member as usize] == NONE && self.principals.can_hold_access(member) {
                    predecessor[member as usize] = node;
                    supply_of[member as usize] = supply_of[node as usize];
                    reached.push(member);
                }
            }
        }
        Reach {
            predecessor,
            supply: supply_of,
            reached,
        }
    }

    fn supply_source(&self, supply: Supply) -> Source {
        let on = self.catalog.reference(supply.level);
        match supply.granted {
            Some(privilege) => Source::Grant { privilege, on },
            None => Source::Ownership { of: on },
        }
    }

    fn supply_via(&self, supply: Supply, ancestry: &Ancestry, position: u32) -> Via {
        Via {
            source: self.supply_source(supply),
            chain: self.principals.references(&ancestry.chain(position)),
        }
    }

    fn inactive_decision(&self, subject: u32) -> Decision {
        Decision {
            allowed: false,
            reasons: Vec::new(),
            missing: vec![Missing::ActivePrincipal(self.principals.reference(subject))],
        }
    }

    fn is_admin_in(&self, ancestry: &Ancestry) -> bool {
        self.principals
            .admins()
            .is_some_and(|admins| ancestry.contains(admins))
    }

    fn admin_position(&self, subject: u32) -> Option<u32> {
        if !self.principals.can_hold_access(subject) {
            return None;
        }
        let admins = self.principals.admins()?;
        self.principals
            .with_ancestry(subject, |ancestry| ancestry.position(admins))
    }

    fn admin_via(&self, ancestry: &Ancestry) -> Option<Via> {
        let admins = self.principals.admins()?;
        let position = ancestry.position(admins)?;
        Some(Via {
            source: Source::WorkspaceAdmin,
            chain: self.principals.references(&ancestry.chain(position)),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use scimitar_domain::PrincipalKind;

    /// The two ways `who` filters by a `USE` requirement keep the same principals, over
    /// random nestings with inactive groups and users, and random holders.
    #[test]
    fn filtering_upwards_keeps_what_walking_down_keeps() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut below = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        for round in 0..200 {
            let mut model = AccessModel::new();
            let user = |index: usize| PrincipalId::new(format!("u{index}"));
            let group = |index: usize| PrincipalId::new(format!("g{index}"));
            for index in 0..30 {
                let active = below(8) != 0;
                model
                    .upsert_principal(&user(index), PrincipalKind::User, "u", active)
                    .unwrap();
            }
            for index in 0..15 {
                let active = below(6) != 0;
                model
                    .upsert_principal(&group(index), PrincipalKind::Group, "g", active)
                    .unwrap();
            }
            for _ in 0..25 {
                // Cycles and over-deep chains are refused; fine.
                let _ = model.add_membership(&group(below(15)), &group(below(15)));
            }
            for _ in 0..60 {
                model
                    .add_membership(&group(below(15)), &user(below(30)))
                    .unwrap();
            }
            let slot = |id: &PrincipalId| model.principals.slot(id).unwrap();
            let holders: Vec<u32> = (0..below(6))
                .map(|_| {
                    if below(3) == 0 {
                        slot(&user(below(30)))
                    } else {
                        slot(&group(below(15)))
                    }
                })
                .collect();
            let everyone: Vec<u32> = (0..30).map(|index| slot(&user(index))).collect();
            let mut down = everyone.clone();
            let meets = model.reach_set(holders.iter().copied());
            down.retain(|candidate| has_bit(&meets, *candidate));
            let mut up = everyone;
            model.keep_those_reached_upwards(&holders, &mut up);
            assert_eq!(up, down, "round {round}, holders {holders:?}");
        }
    }
}
