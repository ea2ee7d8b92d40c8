//! The schema migrations: numbered, forward-only, each applied once in its own transaction.
//! Every table carries `account_id` so that several accounts share one database without a
//! migration when they arrive.

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
];
