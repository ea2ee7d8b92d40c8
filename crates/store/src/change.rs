//! [`Change`]: every write Scimitar makes, as a value. One place where every mutation passes.

use crate::audit::AuditKeySeed;
use crate::federation::{ExchangedToken, FederationPolicy};
use crate::governance::GovernanceChange;
use crate::oauth::{OAuthSecret, SigningKey};
use crate::transfer::ImportRecord;
use crate::{Account, Workspace};
use scimitar_access::WorkspacePermission;
use scimitar_domain::credentials::Token;
use scimitar_domain::patch::MembershipStep;
use scimitar_domain::resource::MemberValue;
use scimitar_domain::{
    Principal, PrincipalId, PrincipalKind, ScimError, ScimResult, Timestamp, WorkspaceId,
};

/// Why a `CreateAccount` with `only_if_first` is refused, in both backends.
pub(crate) const FIRST_ACCOUNT_EXISTS: &str = "the database already holds an account";

#[derive(Debug, Clone)]
pub enum Change {
    /// A new account with its first workspace and its system groups (`admins`, `users`); the
    /// groups' `entitlements` are what they hold in that workspace.
    /// With `only_if_first`, refused with a uniqueness error when the database already holds
    /// an account, decided inside the write (on PostgreSQL under an advisory lock), so that
    /// nodes starting together on an empty database make one account between them, not one
    /// each.
    CreateAccount {
        account: Account,
        workspace: Workspace,
        system_groups: Vec<Principal>,
        only_if_first: bool,
        /// The account's first admin, created in the same transaction so that an account
        /// never exists without it (a bootstrap cut off half-way would leave one).
        first_admin: Option<Box<FirstAdmin>>,
    },
    /// A new principal. Users and service principals also join the account's `users` group.
    /// `members` (groups only) must name existing principals and must not make a cycle.
    CreatePrincipal {
        principal: Principal,
        members: Vec<MemberValue>,
        /// The workspace it is made through, if any: it is assigned there as `USER` in the
        /// same transaction (a user added through a workspace's API belongs to it), and the
        /// document's `entitlements` are what it holds there (see [`Change::UpdatePrincipal`]).
        assign_to: Option<WorkspaceId>,
    },
    /// A new state of an existing principal, written only if its version is still
    /// `expected_version`, together with membership changes (groups only), in order.
    UpdatePrincipal {
        principal: Principal,
        expected_version: u64,
        membership: Vec<MembershipStep>,
        /// The workspace the write is made through. Entitlements are per workspace: the
        /// document's `entitlements` are what the principal holds there, written to that
        /// workspace alone in the same transaction (absent: none). `None` (the account API)
        /// writes no entitlements. Documents are stored without `entitlements` either way.
        workspace: Option<WorkspaceId>,
    },
    /// Deletes a principal, its memberships on both sides, its entitlements in every
    /// workspace, and its tokens.
    DeletePrincipal {
        id: PrincipalId,
        expected_version: Option<u64>,
    },
    /// A new token; only the digest of its secret is stored.
    CreateToken { token: Token, digest: String },
    /// Deletes a token (the token API's delete, an admin's revocation); refused as missing
    /// when the account has no live token with this id. Logged, so that every node drops the
    /// token from its cache before its next request.
    DeleteToken { id: String },
    /// Rotation: stores `replacement` (a new secret for the same principal) and makes the
    /// token `id` expire at `expires` at the latest, the overlap during which both work.
    /// Logged like a deletion, for the shortened expiry.
    RotateToken {
        id: String,
        expires: Timestamp,
        replacement: Box<NewToken>,
    },
    /// When tokens were last used, as one node gathered them: `(token id, when)`, each
    /// written only forward. Bookkeeping, not an access fact: not logged.
    TokensUsed(Vec<(String, Timestamp)>),
    /// Sets (`Some`) or clears (`None`) settings of a workspace (the workspace-conf API).
    SetWorkspaceSettings {
        workspace: WorkspaceId,
        values: Vec<(String, Option<String>)>,
    },
    /// A Unity Catalog or workspace-object change, validated by the access engine first.
    Governance(GovernanceChange),
    /// Several governance changes that must commit together or not at all (a permissions
    /// PATCH naming several principals), applied in order, with one access-log entry each.
    GovernanceBatch(Vec<GovernanceChange>),
    /// Workspace object changes (the workspace tree, object ACLs), applied in order like a
    /// batch: the objects they register belong to `workspace`, and one of another workspace
    /// is refused as missing.
    WorkspaceObjects {
        workspace: WorkspaceId,
        changes: Vec<GovernanceChange>,
    },
    /// A new workspace of the account, where the account's `users` system group holds
    /// `users_entitlements` (an `entitlements` array: the defaults every workspace starts
    /// with; empty: none).
    CreateWorkspace {
        workspace: Workspace,
        users_entitlements: Vec<serde_json::Value>,
    },
    /// A workspace's new name and deployment name.
    UpdateWorkspace(Workspace),
    /// Deletes a workspace, its assignments and entitlements, and its objects with their
    /// ACLs.
    DeleteWorkspace { id: WorkspaceId },
    /// Sets what `principal` is directly assigned in `workspace`; `None` removes it.
    AssignToWorkspace {
        workspace: WorkspaceId,
        principal: PrincipalId,
        permission: Option<WorkspacePermission>,
    },
    /// Records of an export, written as they are (ids, versions and timestamps kept) in one
    /// transaction, with the access-log entries that the state they make implies: principals
    /// saved, members added, securables created, grants, object parents and whole ACLs. No
    /// automatic `users` membership and no per-member checks: the records come from a store
    /// that kept those rules, and its memberships (the `users` ones included) are among them.
    /// See [`crate::transfer`].
    Import(Vec<ImportRecord>),
    /// Stores the deployment's checkpoint signing key (an Ed25519 seed) unless one is stored:
    /// the first one made stays. Deployment bookkeeping, not a tenant's state: it writes no
    /// audit event (the key is published, and every checkpoint names it).
    EnsureAuditKey {
        seed: AuditKeySeed,
        created: Timestamp,
    },
    /// Records refused requests (401, 403 and client mistakes) in the account's trail, one
    /// event each, in one transaction: written by the application's background batch writer,
    /// never on a refusal's own path (`docs/design/audit.md`). Changes nothing else.
    RecordRefusals(Vec<crate::audit::Refusal>),
    /// Prunes the account's audit events older than `before` (retention), keeping the Merkle
    /// frontier at the last pruned position so the events kept still verify against it.
    /// Writes its own event (`pruneAuditEvents`), so the trail says it was pruned.
    PruneAuditTrail { before: Timestamp },
    /// A new OAuth secret of a service principal (only its digest is stored), refused as a
    /// conflict when the principal already has `limit`, and as missing when it is no service
    /// principal.
    CreateOAuthSecret {
        secret: OAuthSecret,
        digest: String,
        limit: usize,
    },
    /// Deletes a secret of a service principal; logged, so that every node stops the tokens
    /// minted from it before its next request.
    DeleteOAuthSecret { principal: PrincipalId, id: String },
    /// A new access-token signing key of the account; keys whose tokens have all expired by
    /// its creation are deleted with it.
    AddSigningKey(SigningKey),
    /// A new federation policy; a taken `policy_id` among its owner's is a uniqueness
    /// conflict, and a `service_principal` that is none is not found.
    CreateFederationPolicy(FederationPolicy),
    /// Replaces a federation policy's description and OIDC settings, found by its uid; missing
    /// when it is not there.
    UpdateFederationPolicy(FederationPolicy),
    /// Deletes a federation policy by its uid; logged (as a changed credential, under the uid),
    /// so that every node stops the access tokens exchanged through it before its next request.
    DeleteFederationPolicy { uid: String },
    /// Records an exchanged JWT, refused as a conflict when it was exchanged before (a replay);
    /// records expired by `now` are deleted with it.
    RecordExchangedToken(ExchangedToken),
    /// Replaces an account access-control rule set whole, only if it is still at
    /// `expected_version` (0: never written), and numbers it `expected_version + 1`; a rule set
    /// written in between is a conflict (409) that writes nothing. The principal the set is
    /// about, and every principal it names, must exist.
    ReplaceRuleSet {
        rule_set: RuleSetRows,
        expected_version: u64,
    },
    /// A `scimitar sync` run's record and what it changes in its job's state (mappings,
    /// watermark), in one transaction. Deployment bookkeeping keyed by the job's name, not a
    /// tenant's state (the account it is applied under is not read): no event of its own, no
    /// log; the run's actions are appended, in the same transaction, to the trail of the
    /// account the job is attributed to ([`crate::SyncAudit`]).
    RecordSyncRun(Box<crate::SyncStateChange>),
    /// `scimitar sync watch`'s lease on a job, taken, renewed or given up (bookkeeping keyed by
    /// the job like [`Change::RecordSyncRun`]: no audit event, no log).
    SyncLease(crate::SyncLease),
    /// Alerting's writes: rules (audited), and the evaluator's and delivery worker's
    /// bookkeeping (cursor, lease, outbox; not audited). See [`crate::alerts`].
    Alerts(crate::alerts::AlertChange),
}

/// An account access-control rule set as stored: who holds which role on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSetRows {
    /// The resource, by principal id rather than by name, so that renames leave it alone:
    /// `account`, `groups/{principal id}` or `servicePrincipals/{principal id}`.
    pub resource: String,
    /// The group or service principal the resource is, deleted with it; `None` for the
    /// account.
    pub target: Option<PrincipalId>,
    /// Each role with a principal holding it, each pair once.
    pub grants: Vec<(String, PrincipalId)>,
}

/// The first admin of a new account: a user, the system group it joins (one of the account's
/// `system_groups`), and its first token, if one is to be made with it.
#[derive(Debug, Clone)]
pub struct FirstAdmin {
    pub user: Principal,
    pub group: PrincipalId,
    pub token: Option<NewToken>,
}

/// A token to store, with the digest of its secret (the secret itself is never stored).
#[derive(Debug, Clone)]
pub struct NewToken {
    pub token: Token,
    pub digest: String,
}

impl FirstAdmin {
    /// The system group the admin joins, found among the account's `system_groups`.
    pub(crate) fn group_in<'a>(&self, system_groups: &'a [Principal]) -> ScimResult<&'a Principal> {
        system_groups
            .iter()
            .find(|group| group.id == self.group)
            .ok_or_else(|| ScimError::internal("the first admin's group is not a system group"))
    }

    /// The admin as a member to add to that group.
    pub(crate) fn as_member(&self) -> MemberValue {
        MemberValue {
            id: self.user.id.clone(),
            kind_hint: Some(PrincipalKind::User),
        }
    }
}
