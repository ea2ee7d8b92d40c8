//! The schema migrations: numbered, forward-only, one list per backend, each migration applied
//! once.
//! Every table carries `account_id` so that several accounts share one database without a
//! migration when they arrive.

/// The version a schema has once every migration of `list` is applied.
pub fn latest(list: &[(i64, &str)]) -> i64 {
    list.iter().map(|(version, _)| *version).max().unwrap_or(0)
}

/// `(version, statements)`, in order. Never edit a released migration; add a new one.
pub const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE principals (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('User', 'Group', 'ServicePrincipal')),
    user_name_lower TEXT,
    display_name TEXT,
    display_name_lower TEXT,
    external_id TEXT,
    application_id_lower TEXT,
    active INTEGER,
    system INTEGER NOT NULL DEFAULT 0,
    attributes TEXT NOT NULL,
    password_hash TEXT,
    created INTEGER NOT NULL,
    last_modified INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX principals_unique_user_name
    ON principals (account_id, user_name_lower) WHERE kind = 'User';
CREATE UNIQUE INDEX principals_unique_group_name
    ON principals (account_id, display_name_lower) WHERE kind = 'Group';
CREATE UNIQUE INDEX principals_unique_application_id
    ON principals (account_id, application_id_lower) WHERE kind = 'ServicePrincipal';
CREATE INDEX principals_by_display_name ON principals (account_id, kind, display_name_lower);
CREATE INDEX principals_by_external_id ON principals (account_id, kind, external_id);
CREATE INDEX principals_by_created ON principals (account_id, kind, created, id);
CREATE INDEX principals_by_last_modified ON principals (account_id, kind, last_modified);
CREATE TABLE principal_emails (
    account_id TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    value_lower TEXT NOT NULL,
    type TEXT,
    is_primary INTEGER NOT NULL,
    PRIMARY KEY (account_id, principal_id, position),
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
CREATE INDEX principal_emails_by_value ON principal_emails (account_id, value_lower);
CREATE TABLE memberships (
    account_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    member_kind TEXT NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (account_id, group_id, member_id),
    FOREIGN KEY (account_id, group_id) REFERENCES principals (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, member_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
CREATE INDEX memberships_by_member ON memberships (account_id, member_id);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    principal_id TEXT NOT NULL,
    secret_digest TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    comment TEXT,
    created INTEGER NOT NULL,
    expires INTEGER,
    revoked INTEGER,
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
"#,
    ),
    (
        2,
        r#"
-- Covering: the walk up nested groups reads (member_id -> group_id) from the index alone.
DROP INDEX memberships_by_member;
CREATE INDEX memberships_by_member ON memberships (account_id, member_id, group_id);
"#,
    ),
    (
        3,
        r#"
-- Unity Catalog securables. full_name is canonical (lower case); tables and views share a
-- namespace, which the access engine enforces before anything is written.
CREATE TABLE securables (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    securable_type TEXT NOT NULL,
    full_name TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    comment TEXT,
    created INTEGER NOT NULL,
    PRIMARY KEY (account_id, securable_type, full_name)
);
CREATE TABLE grants (
    account_id TEXT NOT NULL,
    securable_type TEXT NOT NULL,
    full_name TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    privilege TEXT NOT NULL,
    PRIMARY KEY (account_id, securable_type, full_name, principal_id, privilege),
    FOREIGN KEY (account_id, securable_type, full_name)
        REFERENCES securables (account_id, securable_type, full_name) ON DELETE CASCADE,
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
CREATE INDEX grants_by_principal ON grants (account_id, principal_id);
-- Workspace objects exist here only as far as permissions need them: a type, an id, and the
-- directory they sit in.
CREATE TABLE workspace_objects (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    directory_id TEXT,
    PRIMARY KEY (account_id, object_type, object_id)
);
CREATE TABLE object_acl (
    account_id TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    level TEXT NOT NULL,
    PRIMARY KEY (account_id, object_type, object_id, principal_id),
    FOREIGN KEY (account_id, object_type, object_id)
        REFERENCES workspace_objects (account_id, object_type, object_id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
CREATE INDEX object_acl_by_principal ON object_acl (account_id, principal_id);
-- The access log: every change that can alter an access answer, in commit order, written in
-- the same transaction as the change. seq is the rowid, one more than the largest: never
-- reused as long as pruning never deletes the newest entry (nodes and clients hold on to
-- sequence numbers). No AUTOINCREMENT, which would cost every commit one more page write.
CREATE TABLE access_log (
    seq INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    event TEXT NOT NULL
);
"#,
    ),
    (
        4,
        r#"
-- Memberships and email rows as clustered tables (WITHOUT ROWID): the primary key is the table,
-- so adding a row writes two B-trees instead of three (the rowid table and the key's index
-- were separate). Both are narrow rows looked up by their key, what WITHOUT ROWID is for.
CREATE TABLE principal_emails_clustered (
    account_id TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    value_lower TEXT NOT NULL,
    type TEXT,
    is_primary INTEGER NOT NULL,
    PRIMARY KEY (account_id, principal_id, position),
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
INSERT INTO principal_emails_clustered
    SELECT account_id, principal_id, position, value_lower, type, is_primary FROM principal_emails;
DROP TABLE principal_emails;
ALTER TABLE principal_emails_clustered RENAME TO principal_emails;
CREATE INDEX principal_emails_by_value ON principal_emails (account_id, value_lower);
CREATE TABLE memberships_clustered (
    account_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    member_kind TEXT NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (account_id, group_id, member_id),
    FOREIGN KEY (account_id, group_id) REFERENCES principals (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, member_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
) WITHOUT ROWID;
INSERT INTO memberships_clustered
    SELECT account_id, group_id, member_id, member_kind, created FROM memberships;
DROP TABLE memberships;
ALTER TABLE memberships_clustered RENAME TO memberships;
-- Covering: the walk up nested groups reads (member_id -> group_id) from the index alone.
CREATE INDEX memberships_by_member ON memberships (account_id, member_id, group_id);
"#,
    ),
    (
        5,
        r#"
-- The Workspace API's tree: an object made through it has a path, unique in its account, and
-- a notebook its language. Objects known only from their ACLs (jobs, clusters) have neither.
ALTER TABLE workspace_objects ADD COLUMN path TEXT;
ALTER TABLE workspace_objects ADD COLUMN language TEXT;
CREATE UNIQUE INDEX workspace_objects_by_path ON workspace_objects (account_id, path)
    WHERE path IS NOT NULL;
-- Listing a directory: its children with a path, in path order.
CREATE INDEX workspace_objects_by_directory ON workspace_objects (account_id, directory_id, path)
    WHERE path IS NOT NULL;
"#,
    ),
    (
        6,
        r#"
-- The indexes PostgreSQL has had from its start (the conformance suite now compares the two
-- schemas): deleting a principal deletes its tokens, which without tokens_by_principal is a
-- scan of every token; dropping a catalog or schema deletes every securable named below it,
-- a range on securables_by_name; an account's workspaces are listed in creation order.
CREATE INDEX tokens_by_principal ON tokens (account_id, principal_id);
CREATE INDEX securables_by_name ON securables (account_id, full_name);
CREATE INDEX workspaces_by_account ON workspaces (account_id, created, id);
"#,
    ),
    (
        7,
        r#"
-- Accounts and workspaces (issue #14). A workspace may be reached as a host by its deployment
-- name; principals reach a workspace only by assignment, directly or through a group.
ALTER TABLE workspaces ADD COLUMN deployment_name TEXT;
CREATE UNIQUE INDEX workspaces_unique_deployment_name ON workspaces (deployment_name)
    WHERE deployment_name IS NOT NULL;
CREATE TABLE workspace_assignments (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    principal_id TEXT NOT NULL,
    permission TEXT NOT NULL CHECK (permission IN ('USER', 'ADMIN')),
    PRIMARY KEY (account_id, workspace_id, principal_id)
);
CREATE INDEX workspace_assignments_by_principal
    ON workspace_assignments (account_id, principal_id);
-- Before this, every principal of an account was in its one workspace: keep it so, each
-- assigned directly, the members of 'admins' as ADMIN.
INSERT INTO workspace_assignments (account_id, workspace_id, principal_id, permission)
SELECT p.account_id, w.id, p.id,
       CASE WHEN EXISTS (
           SELECT 1 FROM memberships m JOIN principals g
             ON g.account_id = m.account_id AND g.id = m.group_id
          WHERE m.account_id = p.account_id AND m.member_id = p.id
            AND g.kind = 'Group' AND g.system = TRUE AND g.display_name_lower = 'admins'
       ) THEN 'ADMIN' ELSE 'USER' END
  FROM principals p JOIN workspaces w ON w.account_id = p.account_id
 WHERE p.system = FALSE;
"#,
    ),
    (
        8,
        r#"
-- The built-in `users` group carries workspace-access and databricks-sql-access, as in
-- Databricks (new accounts get them when made). An existing `users` group gets them only if
-- it carries no entitlements and was never written since it was made (version 1): before
-- this, a `users` group with entitlements, or without them after an admin's write, was an
-- admin's choice, which stands. The engine learns it from an access-log entry like any
-- write's, so running nodes and change tokens follow; the entry is written first, while the
-- condition still holds. (Self-contained: it may be renumbered.)
INSERT INTO access_log (account_id, event)
SELECT account_id,
       '{"event":"principal_saved","id":' || json_quote(id) || ',"kind":"Group","name":'
       || json_quote(display_name)
       || ',"active":true,"entitlements":["workspace-access","databricks-sql-access"]}'
FROM principals
WHERE kind = 'Group' AND system = 1 AND display_name_lower = 'users' AND version = 1
  AND json_type(attributes, '$.entitlements') IS NULL
ORDER BY account_id;
UPDATE principals
SET attributes = json_set(attributes, '$.entitlements',
        json('[{"value":"workspace-access"},{"value":"databricks-sql-access"}]')),
    version = version + 1,
    last_modified = MAX(last_modified, CAST(strftime('%s', 'now') AS INTEGER) * 1000000)
WHERE kind = 'Group' AND system = 1 AND display_name_lower = 'users' AND version = 1
  AND json_type(attributes, '$.entitlements') IS NULL;
"#,
    ),
    (
        9,
        r#"
-- Account access-control rule sets (the Databricks account API's rule sets): who holds which
-- role on the account, a group or a service principal. A resource names its principal by id
-- (`groups/{id}`, `servicePrincipals/{id}`, or `account`), and its rule set goes with it when
-- it is deleted; version is the etag's number. (Self-contained: it may be renumbered.)
CREATE TABLE rule_sets (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    resource TEXT NOT NULL,
    target_id TEXT,
    version INTEGER NOT NULL,
    PRIMARY KEY (account_id, resource),
    FOREIGN KEY (account_id, target_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
CREATE INDEX rule_sets_by_target ON rule_sets (account_id, target_id);
CREATE TABLE rule_set_grants (
    account_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    role TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    PRIMARY KEY (account_id, resource, role, principal_id),
    FOREIGN KEY (account_id, resource) REFERENCES rule_sets (account_id, resource) ON DELETE CASCADE,
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
CREATE INDEX rule_set_grants_by_principal ON rule_set_grants (account_id, principal_id);
"#,
    ),
    (
        10,
        r#"
-- Catalog workspace bindings (issue #14): a catalog is OPEN to every workspace of its account
-- or ISOLATED, usable only from the workspaces bound to it, each read-write or read-only.
ALTER TABLE securables ADD COLUMN isolation_mode TEXT NOT NULL DEFAULT 'OPEN'
    CHECK (isolation_mode IN ('OPEN', 'ISOLATED'));
CREATE TABLE catalog_workspace_bindings (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    catalog_name TEXT NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    binding_type TEXT NOT NULL
        CHECK (binding_type IN ('BINDING_TYPE_READ_WRITE', 'BINDING_TYPE_READ_ONLY')),
    PRIMARY KEY (account_id, catalog_name, workspace_id)
);
-- Deleting a workspace deletes its bindings.
CREATE INDEX catalog_workspace_bindings_by_workspace
    ON catalog_workspace_bindings (account_id, workspace_id);
"#,
    ),
    (
        11,
        r#"
-- Workspace objects belong to one workspace (issue #14): each workspace has its own tree, and
-- a path is unique within its workspace, not its account. Object ids stay unique per account
-- (the access engine keys objects by them), so the primary key is unchanged. Nullable only
-- because SQLite cannot add a NOT NULL column without a default; every write names it.
ALTER TABLE workspace_objects ADD COLUMN workspace_id TEXT REFERENCES workspaces(id);
-- Before this each account had one workspace, which holds its objects. A database that made
-- more workspaces meanwhile had one shared tree; it goes to the oldest workspace.
UPDATE workspace_objects SET workspace_id = (
    SELECT w.id FROM workspaces w WHERE w.account_id = workspace_objects.account_id
     ORDER BY w.created, w.id LIMIT 1);
DROP INDEX workspace_objects_by_path;
DROP INDEX workspace_objects_by_directory;
CREATE UNIQUE INDEX workspace_objects_by_path
    ON workspace_objects (account_id, workspace_id, path) WHERE path IS NOT NULL;
CREATE INDEX workspace_objects_by_directory
    ON workspace_objects (account_id, workspace_id, directory_id, path) WHERE path IS NOT NULL;
-- Deleting a workspace deletes its objects, with or without a path.
CREATE INDEX workspace_objects_by_workspace ON workspace_objects (workspace_id);
"#,
    ),
    (
        12,
        r#"
-- Entitlements are per workspace (issue #14), as in Databricks: what a principal is assigned
-- itself in one workspace, as the JSON array its SCIM documents show there. A row exists only
-- for a principal assigned some there; it goes with its principal and with its workspace.
CREATE TABLE workspace_entitlements (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    principal_id TEXT NOT NULL,
    entitlements TEXT NOT NULL,
    PRIMARY KEY (account_id, workspace_id, principal_id),
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
-- Deleting a principal deletes its rows in every workspace.
CREATE INDEX workspace_entitlements_by_principal
    ON workspace_entitlements (account_id, principal_id);
-- Before this, a principal's entitlements were a field of its document, held in every
-- workspace of its account: each workspace keeps them, so nothing anyone held is lost. The
-- documents keep the field as it was; it is no longer read (a principal's next write drops it).
INSERT INTO workspace_entitlements (account_id, workspace_id, principal_id, entitlements)
SELECT p.account_id, w.id, p.id, json_extract(p.attributes, '$.entitlements')
  FROM principals p JOIN workspaces w ON w.account_id = p.account_id
 WHERE json_type(p.attributes, '$.entitlements') = 'array'
   AND json_array_length(p.attributes, '$.entitlements') > 0;
"#,
    ),
    (
        14,
        r#"
-- Personal access tokens and their management (issue #15). A token made through a
-- workspace's token API is valid in that workspace alone (NULL: an account-level token, the
-- CLI's and the bootstrap admin's, valid wherever its principal is); created_by is who made it
-- when not its principal (an on-behalf-of token, the CLI's operator); last_used is written by
-- each node at most once a minute per token, never per request. workspace_settings holds the
-- workspace-conf API's values, as the strings Databricks answers with. (Self-contained: it
-- may be renumbered; 12 and 13 are kept for parallel branches.)
ALTER TABLE tokens ADD COLUMN workspace_id TEXT;
ALTER TABLE tokens ADD COLUMN created_by TEXT;
ALTER TABLE tokens ADD COLUMN last_used INTEGER;
-- A workspace's tokens, by owner: the token API's list and the token management API's.
CREATE INDEX tokens_by_workspace ON tokens (account_id, workspace_id, principal_id);
CREATE TABLE workspace_settings (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (account_id, workspace_id, name)
);
"#,
    ),
    (
        15,
        r#"
-- Each workspace has its own objects of the types whose ids clients choose (jobs, clusters,
-- warehouses, ..., and the one tokens object), as in Databricks: their ids are kept under
-- their workspace, '{workspace}/{id}' (scimitar-access, object_id_in), so that the same id in
-- two workspaces names two objects. Tree objects (directories, notebooks, files) keep their
-- ids, drawn unique in the account. Until now such an object belonged to the workspace whose
-- write registered it: it moves under that workspace, with its ACL. Client ids never hold a
-- '/', so an id with one is already in the new form. (Self-contained: it may be renumbered.)
INSERT INTO workspace_objects
    (account_id, object_type, object_id, directory_id, path, language, workspace_id)
SELECT account_id, object_type, workspace_id || '/' || object_id, directory_id, path, language,
       workspace_id
  FROM workspace_objects
 WHERE object_type NOT IN ('directories', 'notebooks', 'files')
   AND workspace_id IS NOT NULL AND instr(object_id, '/') = 0;
UPDATE object_acl SET object_id = (
    SELECT o.workspace_id FROM workspace_objects o
     WHERE o.account_id = object_acl.account_id AND o.object_type = object_acl.object_type
       AND o.object_id = object_acl.object_id) || '/' || object_id
 WHERE object_type NOT IN ('directories', 'notebooks', 'files') AND instr(object_id, '/') = 0
   AND EXISTS (
    SELECT 1 FROM workspace_objects o
     WHERE o.account_id = object_acl.account_id AND o.object_type = object_acl.object_type
       AND o.object_id = object_acl.object_id AND o.workspace_id IS NOT NULL);
DELETE FROM workspace_objects
 WHERE object_type NOT IN ('directories', 'notebooks', 'files')
   AND workspace_id IS NOT NULL AND instr(object_id, '/') = 0;
"#,
    ),
    (
        16,
        r#"
-- OAuth for service principals (issue #15). oauth_secrets are a service principal's client
-- secrets, stored as SHA-256 digests only; scopes is a JSON array capping what tokens minted
-- from the secret may do (empty: unrestricted). oauth_signing_keys hold the Ed25519 keys that
-- sign access tokens: the private key (its 32-byte seed, hex) is stored because every node
-- must sign and verify with the same keys; it is the server's key, not a user's secret, and is
-- never logged or shown. A key signs until signs_until and is deleted after
-- remove_after, once every token it signed has expired. (Self-contained: it may be
-- renumbered; 15 is kept for a parallel branch.)
CREATE TABLE oauth_secrets (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    id TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    secret_digest TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
CREATE INDEX oauth_secrets_by_principal ON oauth_secrets (account_id, principal_id);
CREATE TABLE oauth_signing_keys (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    kid TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created INTEGER NOT NULL,
    signs_until INTEGER NOT NULL,
    remove_after INTEGER NOT NULL,
    PRIMARY KEY (account_id, kid)
);
"#,
    ),
    (
        17,
        r#"
-- The tamper-evident audit trail (issue #16). Each account's events are numbered from 1 in
-- commit order (seq); `event` is the exact JSON text that was hashed as the Merkle leaf, and
-- `leaf` its hash (hex), from which proofs are computed. `audit_heads` holds each account's
-- tree size, frontier (subtree roots, hex, largest first) and root, written in the same
-- transaction as the event, so a new root costs O(log n). `audit_signing_key` holds the one
-- Ed25519 seed the deployment signs checkpoints with, made at first use. No foreign keys: the
-- trail outlives what it describes. (Self-contained: it may be renumbered; 15 and 16 are kept
-- for parallel branches.)
CREATE TABLE audit_events (
    account_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_time INTEGER,
    action_name TEXT NOT NULL,
    event TEXT NOT NULL,
    leaf TEXT NOT NULL,
    PRIMARY KEY (account_id, seq)
);
CREATE TABLE audit_heads (
    account_id TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    frontier TEXT NOT NULL,
    root TEXT NOT NULL
);
CREATE TABLE audit_signing_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seed TEXT NOT NULL,
    created INTEGER NOT NULL
);
"#,
    ),
    (
        18,
        r#"
-- Workload identity federation (issue #15). federation_policies hold the account's policies
-- (principal_id NULL, owner '') and its service principals' (principal_id and owner the
-- principal's id): which external OIDC issuer's JWTs, for which audiences and subject, may be
-- exchanged for an access token (RFC 8693). audiences is a JSON array; jwks_json, when set, is
-- the issuer's key set given inline. policy_id is unique per owner; uid is the policy's own
-- id, which access tokens exchanged through it name. federation_replays remember each
-- exchanged JWT (its jti, or a digest of the whole JWT when it has none) until it expires, so
-- that no node exchanges one twice. (Self-contained: it may be renumbered.)
CREATE TABLE federation_policies (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    uid TEXT NOT NULL,
    owner TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    principal_id TEXT,
    description TEXT,
    issuer TEXT NOT NULL,
    audiences TEXT NOT NULL,
    subject TEXT,
    subject_claim TEXT,
    jwks_json TEXT,
    jwks_uri TEXT,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (account_id, uid),
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX federation_policies_by_owner ON federation_policies (account_id, owner, policy_id);
CREATE TABLE federation_replays (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    issuer TEXT NOT NULL,
    token_id TEXT NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (account_id, issuer, token_id)
);
CREATE INDEX federation_replays_by_expiry ON federation_replays (account_id, expires);
"#,
    ),
    (
        19,
        r#"
-- Audit alerts (issue #16): rules, each account's evaluation cursor and lease, and the
-- outbox of firings with their delivery state. An outbox row is unique per rule and
-- triggering event, which deduplicates firings. `secret` is the webhook's HMAC key, kept as
-- given because the server signs with it. Window rules re-read recent events by time.
-- (Self-contained: 18 is kept for a parallel branch.)
CREATE TABLE alert_rules (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    secret TEXT NOT NULL,
    after_seq INTEGER NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX alert_rules_unique_name ON alert_rules (account_id, name);
CREATE TABLE alert_cursors (
    account_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER
);
CREATE TABLE alert_outbox (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    url TEXT NOT NULL,
    format TEXT NOT NULL,
    secret TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt INTEGER NOT NULL,
    delivered INTEGER,
    last_error TEXT,
    created INTEGER NOT NULL,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, rule_id, event_seq)
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt) WHERE delivered IS NULL;
CREATE INDEX alert_audit_events_by_time ON audit_events (account_id, event_time);
"#,
    ),
    (
        20,
        r#"
-- Audit retention (issue #16): where a pruned trail's kept events start. `size` events were
-- pruned; `frontier` (subtree roots, hex, largest first) and `root` are their tree's, so the
-- events kept still verify against the tree they extend. `pruned_before` is the horizon of the
-- last prune (microseconds).
CREATE TABLE audit_pruned (
    account_id TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    frontier TEXT NOT NULL,
    root TEXT NOT NULL,
    pruned_before INTEGER NOT NULL
);
"#,
    ),
    (
        21,
        r#"
-- `scimitar sync` jobs' state (issue #17), keyed by the job's name: deployment bookkeeping,
-- not a tenant's data (a job may move identities between services none of whose accounts
-- live here). `sync_mappings` is each managed object's source id -> target id with its
-- ownership (`created` or `adopted`) and when it was deprovisioned; `sync_jobs` the source
-- watermark; `sync_runs` the run history, numbered per job. (Self-contained: numbers 18 to 20
-- are kept for parallel branches.)
CREATE TABLE sync_jobs (
    job TEXT PRIMARY KEY,
    watermark TEXT
);
CREATE TABLE sync_mappings (
    job TEXT NOT NULL,
    kind TEXT NOT NULL,
    source_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    ownership TEXT NOT NULL,
    deprovisioned_at INTEGER,
    PRIMARY KEY (job, kind, source_id)
);
CREATE TABLE sync_runs (
    job TEXT NOT NULL,
    seq INTEGER NOT NULL,
    started INTEGER NOT NULL,
    ended INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    report TEXT NOT NULL,
    PRIMARY KEY (job, seq)
);
"#,
    ),
    (
        22,
        r#"
-- `scimitar sync watch` (issue #17): a lease on the job, so that two processes watching one
-- job never run it at once. Whoever's conditional update matched holds it until `lease_until`
-- (microseconds); another takes over once it has passed.
ALTER TABLE sync_jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE sync_jobs ADD COLUMN lease_until INTEGER;
"#,
    ),
    (
        26,
        r#"
-- The audit head is no longer moved on by every event (issue #16, speed): an append only counts
-- (`size`), and the frontier and root stored are those of the first `folded_size` events,
-- brought up to date every 1,024 events and before a prune; a reader folds the leaves after
-- them. The event's leaf is computed by the database (`scimitar_audit_leaf`, a function the
-- store registers on each connection) from the text it assembles around the position it takes.
ALTER TABLE audit_heads ADD COLUMN folded_size INTEGER NOT NULL DEFAULT 0;
UPDATE audit_heads SET folded_size = size;
"#,
    ),
    (
        27,
        r#"
-- Each sync job's state names the account it answers to (issue #17: its status served per
-- tenant, `GET /api/2.0/sync/jobs`), and keeps the quarantine its last run left it in, which
-- only the engine can judge (the thresholds are in the job's configuration). A job sets its
-- account on each run (its `account`, else the database's only one); rows made before take
-- the database's only account, if it has exactly one.
ALTER TABLE sync_jobs ADD COLUMN account_id TEXT;
ALTER TABLE sync_jobs ADD COLUMN quarantine_failures INTEGER;
ALTER TABLE sync_jobs ADD COLUMN quarantine_next_run INTEGER;
-- What the source wanted of each managed object at the run that last brought it in line (a
-- digest the engine makes): how drift in the target is told from the source's changes.
ALTER TABLE sync_mappings ADD COLUMN digest TEXT;
UPDATE sync_jobs SET account_id = (SELECT id FROM accounts)
WHERE (SELECT COUNT(*) FROM accounts) = 1;
CREATE INDEX sync_jobs_by_account ON sync_jobs (account_id, job);
-- A job's name may no longer hold `/` (it separates a target's name in a state key). Jobs
-- named by flags were `FROM -> TO` with both URLs as typed; they are now named with each `/`
-- written `%2F` and each `%` as `%25`, and the state they kept moves with them.
UPDATE sync_jobs SET job = replace(replace(job, '%', '%25'), '/', '%2F')
WHERE job LIKE '%://% -> %://%';
UPDATE sync_mappings SET job = replace(replace(job, '%', '%25'), '/', '%2F')
WHERE job LIKE '%://% -> %://%';
UPDATE sync_runs SET job = replace(replace(job, '%', '%25'), '/', '%2F')
WHERE job LIKE '%://% -> %://%';
"#,
    ),
];

/// The PostgreSQL schema, numbered on its own: PostgreSQL starts from the shape SQLite reached
/// through its migrations, so its history is shorter. The two schemas hold the same data the
/// same way (timestamps as integer microseconds, attributes as JSON text) so that both backends
/// answer identically; the differences are PostgreSQL's own types where they change nothing
/// visible (`BOOLEAN` for flags) and `COLLATE "C"` on every compared or sorted text column, so
/// that comparisons, ranges and orderings are by code point as in SQLite, whatever the
/// database's locale.
pub const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE accounts (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE TABLE workspaces (
    id TEXT COLLATE "C" PRIMARY KEY,
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX workspaces_by_account ON workspaces (account_id, created, id);
CREATE TABLE principals (
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
    id TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL CHECK (kind IN ('User', 'Group', 'ServicePrincipal')),
    user_name_lower TEXT COLLATE "C",
    display_name TEXT COLLATE "C",
    display_name_lower TEXT COLLATE "C",
    external_id TEXT COLLATE "C",
    application_id_lower TEXT COLLATE "C",
    active BOOLEAN,
    system BOOLEAN NOT NULL DEFAULT FALSE,
    attributes TEXT NOT NULL,
    password_hash TEXT,
    created BIGINT NOT NULL,
    last_modified BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX principals_unique_user_name
    ON principals (account_id, user_name_lower) WHERE kind = 'User';
CREATE UNIQUE INDEX principals_unique_group_name
    ON principals (account_id, display_name_lower) WHERE kind = 'Group';
CREATE UNIQUE INDEX principals_unique_application_id
    ON principals (account_id, application_id_lower) WHERE kind = 'ServicePrincipal';
CREATE INDEX principals_by_display_name ON principals (account_id, kind, display_name_lower);
CREATE INDEX principals_by_external_id ON principals (account_id, kind, external_id);
CREATE INDEX principals_by_created ON principals (account_id, kind, created, id);
CREATE INDEX principals_by_last_modified ON principals (account_id, kind, last_modified);
CREATE TABLE principal_emails (
    account_id TEXT COLLATE "C" NOT NULL,
    principal_id TEXT COLLATE "C" NOT NULL,
    position BIGINT NOT NULL,
    value_lower TEXT COLLATE "C" NOT NULL,
    type TEXT COLLATE "C",
    is_primary BOOLEAN NOT NULL,
    PRIMARY KEY (account_id, principal_id, position),
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
CREATE INDEX principal_emails_by_value ON principal_emails (account_id, value_lower);
CREATE TABLE memberships (
    account_id TEXT COLLATE "C" NOT NULL,
    group_id TEXT COLLATE "C" NOT NULL,
    member_id TEXT COLLATE "C" NOT NULL,
    member_kind TEXT COLLATE "C" NOT NULL,
    created BIGINT NOT NULL,
    PRIMARY KEY (account_id, group_id, member_id),
    FOREIGN KEY (account_id, group_id) REFERENCES principals (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, member_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
-- Covering: the walk up nested groups reads (member_id -> group_id) from the index alone.
CREATE INDEX memberships_by_member ON memberships (account_id, member_id, group_id);
CREATE TABLE tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
    principal_id TEXT COLLATE "C" NOT NULL,
    secret_digest TEXT COLLATE "C" NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    comment TEXT,
    created BIGINT NOT NULL,
    expires BIGINT,
    revoked BIGINT,
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
-- Deleting a principal deletes its tokens; without this index that is a scan of every token.
CREATE INDEX tokens_by_principal ON tokens (account_id, principal_id);
"#,
    ),
    (
        2,
        r#"
-- Governance state, as in SQLite's migration 3.
CREATE TABLE securables (
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
    securable_type TEXT COLLATE "C" NOT NULL,
    full_name TEXT COLLATE "C" NOT NULL,
    owner_id TEXT COLLATE "C" NOT NULL,
    comment TEXT,
    created BIGINT NOT NULL,
    PRIMARY KEY (account_id, securable_type, full_name)
);
-- Dropping a catalog or schema deletes every securable named below it, of any type.
CREATE INDEX securables_by_name ON securables (account_id, full_name);
CREATE TABLE grants (
    account_id TEXT COLLATE "C" NOT NULL,
    securable_type TEXT COLLATE "C" NOT NULL,
    full_name TEXT COLLATE "C" NOT NULL,
    principal_id TEXT COLLATE "C" NOT NULL,
    privilege TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (account_id, securable_type, full_name, principal_id, privilege),
    FOREIGN KEY (account_id, securable_type, full_name)
        REFERENCES securables (account_id, securable_type, full_name) ON DELETE CASCADE,
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
CREATE INDEX grants_by_principal ON grants (account_id, principal_id);
CREATE TABLE workspace_objects (
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
    object_type TEXT COLLATE "C" NOT NULL,
    object_id TEXT COLLATE "C" NOT NULL,
    directory_id TEXT COLLATE "C",
    PRIMARY KEY (account_id, object_type, object_id)
);
CREATE TABLE object_acl (
    account_id TEXT COLLATE "C" NOT NULL,
    object_type TEXT COLLATE "C" NOT NULL,
    object_id TEXT COLLATE "C" NOT NULL,
    principal_id TEXT COLLATE "C" NOT NULL,
    level TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (account_id, object_type, object_id, principal_id),
    FOREIGN KEY (account_id, object_type, object_id)
        REFERENCES workspace_objects (account_id, object_type, object_id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
CREATE INDEX object_acl_by_principal ON object_acl (account_id, principal_id);
-- The access log. Sequence numbers must follow commit order, which a sequence alone does not
-- give under concurrent transactions: the backend takes them under an advisory lock held to
-- commit (see postgres.rs). An identity never reuses a number.
CREATE TABLE access_log (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id TEXT COLLATE "C" NOT NULL,
    event TEXT NOT NULL
);
"#,
    ),
    (
        3,
        r#"
-- The Workspace API's tree, as in SQLite's migration 5.
ALTER TABLE workspace_objects ADD COLUMN path TEXT COLLATE "C";
ALTER TABLE workspace_objects ADD COLUMN language TEXT;
CREATE UNIQUE INDEX workspace_objects_by_path ON workspace_objects (account_id, path)
    WHERE path IS NOT NULL;
CREATE INDEX workspace_objects_by_directory ON workspace_objects (account_id, directory_id, path)
    WHERE path IS NOT NULL;
"#,
    ),
    (
        4,
        r#"
-- Accounts and workspaces (issue #14); see SQLite's migration 7.
ALTER TABLE workspaces ADD COLUMN deployment_name TEXT COLLATE "C";
CREATE UNIQUE INDEX workspaces_unique_deployment_name ON workspaces (deployment_name)
    WHERE deployment_name IS NOT NULL;
CREATE TABLE workspace_assignments (
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
    workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id),
    principal_id TEXT COLLATE "C" NOT NULL,
    permission TEXT COLLATE "C" NOT NULL CHECK (permission IN ('USER', 'ADMIN')),
    PRIMARY KEY (account_id, workspace_id, principal_id)
);
CREATE INDEX workspace_assignments_by_principal
    ON workspace_assignments (account_id, principal_id);
INSERT INTO workspace_assignments (account_id, workspace_id, principal_id, permission)
SELECT p.account_id, w.id, p.id,
       CASE WHEN EXISTS (
           SELECT 1 FROM memberships m JOIN principals g
             ON g.account_id = m.account_id AND g.id = m.group_id
          WHERE m.account_id = p.account_id AND m.member_id = p.id
            AND g.kind = 'Group' AND g.system = TRUE AND g.display_name_lower = 'admins'
       ) THEN 'ADMIN' ELSE 'USER' END
  FROM principals p JOIN workspaces w ON w.account_id = p.account_id
 WHERE p.system = FALSE;
"#,
    ),
    (
        5,
        r#"
-- The built-in `users` group's default entitlements, as in SQLite's migration 8. The
-- access-log entry is numbered under the log's advisory lock, as every writer's is, so that
-- sequence numbers follow commit order. The attributes are rewritten as text, not through
-- jsonb, which would reorder their keys: the stored text is what a GET renders.
SELECT pg_advisory_xact_lock(8314605255747659553);
INSERT INTO access_log (account_id, event)
SELECT account_id,
       '{"event":"principal_saved","id":' || to_json(id)::text || ',"kind":"Group","name":'
       || to_json(display_name)::text
       || ',"active":true,"entitlements":["workspace-access","databricks-sql-access"]}'
FROM principals
WHERE kind = 'Group' AND system = TRUE AND display_name_lower = 'users' AND version = 1
  AND NOT (attributes::jsonb ? 'entitlements') AND attributes LIKE '{"%}'
ORDER BY account_id;
UPDATE principals
SET attributes = left(attributes, -1)
        || ',"entitlements":[{"value":"workspace-access"},{"value":"databricks-sql-access"}]}',
    version = version + 1,
    last_modified = GREATEST(last_modified, CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) * 1000000)
WHERE kind = 'Group' AND system = TRUE AND display_name_lower = 'users' AND version = 1
  AND NOT (attributes::jsonb ? 'entitlements') AND attributes LIKE '{"%}';
"#,
    ),
    (
        6,
        r#"
-- Account access-control rule sets, as in SQLite's migration 9.
CREATE TABLE rule_sets (
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
    resource TEXT COLLATE "C" NOT NULL,
    target_id TEXT COLLATE "C",
    version BIGINT NOT NULL,
    PRIMARY KEY (account_id, resource),
    FOREIGN KEY (account_id, target_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
CREATE INDEX rule_sets_by_target ON rule_sets (account_id, target_id);
CREATE TABLE rule_set_grants (
    account_id TEXT COLLATE "C" NOT NULL,
    resource TEXT COLLATE "C" NOT NULL,
    role TEXT COLLATE "C" NOT NULL,
    principal_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (account_id, resource, role, principal_id),
    FOREIGN KEY (account_id, resource) REFERENCES rule_sets (account_id, resource) ON DELETE CASCADE,
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
CREATE INDEX rule_set_grants_by_principal ON rule_set_grants (account_id, principal_id);
"#,
    ),
    (
        7,
        r#"
-- Catalog workspace bindings (issue #14), as in SQLite's migration 10.
ALTER TABLE securables ADD COLUMN isolation_mode TEXT COLLATE "C" NOT NULL DEFAULT 'OPEN'
    CHECK (isolation_mode IN ('OPEN', 'ISOLATED'));
CREATE TABLE catalog_workspace_bindings (
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
    catalog_name TEXT COLLATE "C" NOT NULL,
    workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id),
    binding_type TEXT COLLATE "C" NOT NULL
        CHECK (binding_type IN ('BINDING_TYPE_READ_WRITE', 'BINDING_TYPE_READ_ONLY')),
    PRIMARY KEY (account_id, catalog_name, workspace_id)
);
CREATE INDEX catalog_workspace_bindings_by_workspace
    ON catalog_workspace_bindings (account_id, workspace_id);
"#,
    ),
    (
        8,
        r#"
-- Workspace objects belong to one workspace (issue #14); see SQLite's migration 11.
ALTER TABLE workspace_objects ADD COLUMN workspace_id TEXT COLLATE "C" REFERENCES workspaces(id);
UPDATE workspace_objects SET workspace_id = (
    SELECT w.id FROM workspaces w WHERE w.account_id = workspace_objects.account_id
     ORDER BY w.created, w.id LIMIT 1);
DROP INDEX workspace_objects_by_path;
DROP INDEX workspace_objects_by_directory;
CREATE UNIQUE INDEX workspace_objects_by_path
    ON workspace_objects (account_id, workspace_id, path) WHERE path IS NOT NULL;
CREATE INDEX workspace_objects_by_directory
    ON workspace_objects (account_id, workspace_id, directory_id, path) WHERE path IS NOT NULL;
CREATE INDEX workspace_objects_by_workspace ON workspace_objects (workspace_id);
"#,
    ),
    (
        9,
        r#"
-- Entitlements per workspace (issue #14), as in SQLite's migration 12. The array is copied as
-- jsonb prints it (spaces after separators): rows are read as JSON, never compared as text
-- with a document.
CREATE TABLE workspace_entitlements (
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
    workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces(id),
    principal_id TEXT COLLATE "C" NOT NULL,
    entitlements TEXT NOT NULL,
    PRIMARY KEY (account_id, workspace_id, principal_id),
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
CREATE INDEX workspace_entitlements_by_principal
    ON workspace_entitlements (account_id, principal_id);
INSERT INTO workspace_entitlements (account_id, workspace_id, principal_id, entitlements)
SELECT p.account_id, w.id, p.id, (p.attributes::jsonb -> 'entitlements')::text
  FROM principals p JOIN workspaces w ON w.account_id = p.account_id
 WHERE CASE WHEN jsonb_typeof(p.attributes::jsonb -> 'entitlements') = 'array'
            THEN jsonb_array_length(p.attributes::jsonb -> 'entitlements') > 0
            ELSE FALSE END;
"#,
    ),
    (
        11,
        r#"
-- Personal access tokens and their management (issue #15); see SQLite's migration 14.
ALTER TABLE tokens ADD COLUMN workspace_id TEXT COLLATE "C";
ALTER TABLE tokens ADD COLUMN created_by TEXT COLLATE "C";
ALTER TABLE tokens ADD COLUMN last_used BIGINT;
CREATE INDEX tokens_by_workspace ON tokens (account_id, workspace_id, principal_id);
CREATE TABLE workspace_settings (
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
    workspace_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (account_id, workspace_id, name)
);
"#,
    ),
    (
        12,
        r#"
-- Objects whose ids clients choose are kept under their workspace; see SQLite's migration 15.
INSERT INTO workspace_objects
    (account_id, object_type, object_id, directory_id, path, language, workspace_id)
SELECT account_id, object_type, workspace_id || '/' || object_id, directory_id, path, language,
       workspace_id
  FROM workspace_objects
 WHERE object_type NOT IN ('directories', 'notebooks', 'files')
   AND workspace_id IS NOT NULL AND strpos(object_id, '/') = 0;
UPDATE object_acl a SET object_id = o.workspace_id || '/' || a.object_id
  FROM workspace_objects o
 WHERE o.account_id = a.account_id AND o.object_type = a.object_type
   AND o.object_id = a.object_id AND o.workspace_id IS NOT NULL
   AND a.object_type NOT IN ('directories', 'notebooks', 'files')
   AND strpos(a.object_id, '/') = 0;
DELETE FROM workspace_objects
 WHERE object_type NOT IN ('directories', 'notebooks', 'files')
   AND workspace_id IS NOT NULL AND strpos(object_id, '/') = 0;
"#,
    ),
    (
        13,
        r#"
-- OAuth for service principals (issue #15); see SQLite's migration 16.
CREATE TABLE oauth_secrets (
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
    id TEXT COLLATE "C" NOT NULL,
    principal_id TEXT COLLATE "C" NOT NULL,
    secret_digest TEXT COLLATE "C" NOT NULL,
    scopes TEXT NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
CREATE INDEX oauth_secrets_by_principal ON oauth_secrets (account_id, principal_id);
CREATE TABLE oauth_signing_keys (
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
    kid TEXT COLLATE "C" NOT NULL,
    private_key TEXT NOT NULL,
    created BIGINT NOT NULL,
    signs_until BIGINT NOT NULL,
    remove_after BIGINT NOT NULL,
    PRIMARY KEY (account_id, kid)
);
"#,
    ),
    (
        14,
        r#"
-- The tamper-evident audit trail (issue #16); see SQLite's migration 17.
CREATE TABLE audit_events (
    account_id TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    event_time BIGINT,
    action_name TEXT COLLATE "C" NOT NULL,
    event TEXT NOT NULL,
    leaf TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (account_id, seq)
);
CREATE TABLE audit_heads (
    account_id TEXT COLLATE "C" PRIMARY KEY,
    size BIGINT NOT NULL,
    frontier TEXT NOT NULL,
    root TEXT COLLATE "C" NOT NULL
);
CREATE TABLE audit_signing_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seed TEXT NOT NULL,
    created BIGINT NOT NULL
);
"#,
    ),
    (
        15,
        r#"
-- Workload identity federation (issue #15); see SQLite's migration 18.
CREATE TABLE federation_policies (
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
    uid TEXT COLLATE "C" NOT NULL,
    owner TEXT COLLATE "C" NOT NULL,
    policy_id TEXT COLLATE "C" NOT NULL,
    principal_id TEXT COLLATE "C",
    description TEXT,
    issuer TEXT COLLATE "C" NOT NULL,
    audiences TEXT NOT NULL,
    subject TEXT,
    subject_claim TEXT,
    jwks_json TEXT,
    jwks_uri TEXT,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    PRIMARY KEY (account_id, uid),
    FOREIGN KEY (account_id, principal_id) REFERENCES principals (account_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX federation_policies_by_owner ON federation_policies (account_id, owner, policy_id);
CREATE TABLE federation_replays (
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
    issuer TEXT COLLATE "C" NOT NULL,
    token_id TEXT COLLATE "C" NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (account_id, issuer, token_id)
);
CREATE INDEX federation_replays_by_expiry ON federation_replays (account_id, expires);
"#,
    ),
    (
        16,
        r#"
-- Audit alerts (issue #16); see SQLite's migration 19. (15 is kept for a parallel branch.)
CREATE TABLE alert_rules (
    account_id TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    definition TEXT NOT NULL,
    secret TEXT NOT NULL,
    after_seq BIGINT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX alert_rules_unique_name ON alert_rules (account_id, name);
CREATE TABLE alert_cursors (
    account_id TEXT COLLATE "C" PRIMARY KEY,
    position BIGINT NOT NULL,
    lease_owner TEXT COLLATE "C",
    lease_until BIGINT
);
CREATE TABLE alert_outbox (
    account_id TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    rule_id TEXT COLLATE "C" NOT NULL,
    event_seq BIGINT NOT NULL,
    url TEXT NOT NULL,
    format TEXT COLLATE "C" NOT NULL,
    secret TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt BIGINT NOT NULL,
    delivered BIGINT,
    last_error TEXT,
    created BIGINT NOT NULL,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, rule_id, event_seq)
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt) WHERE delivered IS NULL;
CREATE INDEX alert_audit_events_by_time ON audit_events (account_id, event_time);
"#,
    ),
    (
        17,
        r#"
-- Audit retention (issue #16); see SQLite's migration 20.
CREATE TABLE audit_pruned (
    account_id TEXT COLLATE "C" PRIMARY KEY,
    size BIGINT NOT NULL,
    frontier TEXT NOT NULL,
    root TEXT COLLATE "C" NOT NULL,
    pruned_before BIGINT NOT NULL
);
"#,
    ),
    (
        18,
        r#"
-- `scimitar sync` jobs' state (issue #17); see SQLite's migration 21.
CREATE TABLE sync_jobs (
    job TEXT COLLATE "C" PRIMARY KEY,
    watermark TEXT COLLATE "C"
);
CREATE TABLE sync_mappings (
    job TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    source_id TEXT COLLATE "C" NOT NULL,
    target_id TEXT COLLATE "C" NOT NULL,
    ownership TEXT COLLATE "C" NOT NULL,
    deprovisioned_at BIGINT,
    PRIMARY KEY (job, kind, source_id)
);
CREATE TABLE sync_runs (
    job TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    started BIGINT NOT NULL,
    ended BIGINT NOT NULL,
    outcome TEXT COLLATE "C" NOT NULL,
    report TEXT NOT NULL,
    PRIMARY KEY (job, seq)
);
"#,
    ),
    (
        19,
        r#"
-- `scimitar sync watch`'s lease on a job (issue #17); see SQLite's migration 22.
ALTER TABLE sync_jobs ADD COLUMN lease_owner TEXT COLLATE "C";
ALTER TABLE sync_jobs ADD COLUMN lease_until BIGINT;
"#,
    ),
    (
        23,
        r#"
-- The audit head folded lazily, and the leaf computed by the database; see SQLite's migration
-- 26. The leaf is RFC 9162's: SHA-256 of a zero byte and the event's UTF-8 text, in hex.
ALTER TABLE audit_heads ADD COLUMN folded_size BIGINT NOT NULL DEFAULT 0;
UPDATE audit_heads SET folded_size = size;
CREATE OR REPLACE FUNCTION scimitar_audit_leaf(event TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT encode(sha256('\x00'::bytea || convert_to(event, 'UTF8')), 'hex') $$;
"#,
    ),
    (
        24,
        r#"
-- Each sync job's account and last quarantine, each mapping's digest, and jobs named by flags
-- renamed without `/`; see SQLite's migration 27.
ALTER TABLE sync_jobs ADD COLUMN account_id TEXT COLLATE "C";
ALTER TABLE sync_jobs ADD COLUMN quarantine_failures BIGINT;
ALTER TABLE sync_jobs ADD COLUMN quarantine_next_run BIGINT;
ALTER TABLE sync_mappings ADD COLUMN digest TEXT;
UPDATE sync_jobs SET account_id = (SELECT id FROM accounts)
WHERE (SELECT COUNT(*) FROM accounts) = 1;
CREATE INDEX sync_jobs_by_account ON sync_jobs (account_id, job);
UPDATE sync_jobs SET job = replace(replace(job, '%', '%25'), '/', '%2F')
WHERE job LIKE '%://% -> %://%';
UPDATE sync_mappings SET job = replace(replace(job, '%', '%25'), '/', '%2F')
WHERE job LIKE '%://% -> %://%';
UPDATE sync_runs SET job = replace(replace(job, '%', '%25'), '/', '%2F')
WHERE job LIKE '%://% -> %://%';
"#,
    ),
    (
        25,
        r#"
-- The audit leaf's function inlined into the event's insert (issue #16, speed). Declared
-- IMMUTABLE around `convert_to`, which is STABLE, it was never inlined: PostgreSQL parsed and
-- planned its body again on every insert, inside the section the account's head row keeps
-- serial. STABLE is what the body is (the hash is the same), so the planner now writes the
-- expression into the insert's own plan.
CREATE OR REPLACE FUNCTION scimitar_audit_leaf(event TEXT) RETURNS TEXT
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    AS $$ SELECT encode(sha256('\x00'::bytea || convert_to(event, 'UTF8')), 'hex') $$;
"#,
    ),
];
