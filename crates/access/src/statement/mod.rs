//! The governance statements of Databricks SQL (`CREATE`/`DROP` of Unity Catalog objects,
//! `ALTER ... OWNER TO`, `GRANT`, `REVOKE`, `SHOW GRANTS`) parsed from text into typed
//! [`Statement`]s. Pure: nothing here looks anything up; the executor resolves names and
//! principals against the [`AccessModel`](crate::AccessModel) and storage.
//!
//! ```
//! use scimitar_access::statement::{parse_statement, Statement};
//! use scimitar_access::{Privilege, SecurableType};
//!
//! let Ok(Statement::Grant(grant)) =
//!     parse_statement("GRANT SELECT, MODIFY ON TABLE main.sales.orders TO `Data Engineers`")
//! else {
//!     unreachable!()
//! };
//! assert!(grant.privileges.contains(Privilege::Modify));
//! assert_eq!(grant.securable.securable_type, SecurableType::Table);
//! assert_eq!(grant.securable.full_name(), "main.sales.orders");
//! assert_eq!(grant.principal.as_str(), "Data Engineers");
//! ```
//!
//! The text a [`Statement`] prints (`Display`) is canonical SQL with every name in
//! backticks; it parses back to the same value. It carries what the statement means to the
//! registry, not everything that was written: column lists, `USING`, `LOCATION`, `OPTIONS`
//! and `AS SELECT ...` bodies are read past and dropped, because no data is stored.

pub mod audit_query;
mod lexer;
mod parser;

use std::fmt;

use crate::error::AccessError;
use crate::privilege::PrivilegeSet;
use crate::securable::SecurableType;

/// The longest statement accepted, in bytes. Governance statements are a few hundred bytes;
/// the room above that is for `CREATE VIEW ... AS SELECT` and function bodies, which are
/// tokenized and skipped. The Statement Execution API itself allows far more, but nothing
/// Scimitar records needs it.
pub const MAX_STATEMENT_BYTES: usize = 256 * 1024;

/// The longest name part (catalog, schema or object name) Unity Catalog accepts, in
/// characters.
pub const MAX_NAME_PART_CHARS: usize = 255;

/// The longest principal name accepted, in bytes: userNames are e-mail addresses (at most
/// 254 bytes) and applicationIds are UUIDs; group display names get the rest of the room.
pub const MAX_PRINCIPAL_BYTES: usize = 1024;

/// Why `part` cannot be one part of a Unity Catalog name (empty, too long, or holding `.`, a
/// space, `/` or a control character), or `None` if it can. The REST APIs, which take names
/// outside SQL, check names with the same rule as the parser.
pub fn name_part_problem(part: &str) -> Option<&'static str> {
    parser::invalid_name_part(part)
}

/// Parses one statement. A single trailing `;` is allowed; a second statement is not.
pub fn parse_statement(text: &str) -> Result<Statement, StatementError> {
    parser::parse(text)
}

/// One parsed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// `CREATE [OR REPLACE] <type> [IF NOT EXISTS] <name> [COMMENT '...'] ...`
    Create(CreateObject),
    /// `DROP <type> [IF EXISTS] <name> [CASCADE | RESTRICT]`
    Drop(DropObject),
    /// `ALTER <type> <name> [SET] OWNER TO <principal>`
    SetOwner(SetOwner),
    /// `GRANT <privileges> ON <securable> TO <principal>`
    Grant(PrivilegeChange),
    /// `REVOKE <privileges> ON <securable> FROM <principal>`
    Revoke(PrivilegeChange),
    /// `SHOW GRANTS [<principal>] ON <securable>`
    ShowGrants(ShowGrants),
}

/// `CREATE`: register an object. Only what the registry keeps is recorded.
///
/// Types that can be created: `CATALOG`, `SCHEMA` (or `DATABASE`), `TABLE`, `VIEW`, `VOLUME`,
/// `FUNCTION`, `EXTERNAL LOCATION` and `CONNECTION`. Storage credentials and registered
/// models are not created with SQL in Databricks (the API and MLflow create them), so they
/// are refused here too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateObject {
    pub securable: SecurableName,
    /// `IF NOT EXISTS`: an existing object is not an error (and is left as it is).
    pub if_not_exists: bool,
    /// `OR REPLACE` (tables, views and functions only): an existing object is replaced. For
    /// the registry that means keeping the object and taking the new comment; Databricks
    /// keeps the grants and owner of a replaced table too.
    pub or_replace: bool,
    /// The `COMMENT '...'` clause of the object itself (column comments are dropped).
    pub comment: Option<String>,
}

/// `DROP`: remove an object and, for catalogs and schemas, what is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropObject {
    pub securable: SecurableName,
    /// `IF EXISTS`: a missing object is not an error.
    pub if_exists: bool,
    /// `CASCADE` (catalogs and schemas only): drop a non-empty container with its contents.
    /// Without it (or with `RESTRICT`) Databricks refuses to drop a container that is not
    /// empty, and so should the executor.
    pub cascade: bool,
}

/// `ALTER <type> <name> [SET] OWNER TO <principal>`: transfer ownership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOwner {
    pub securable: SecurableName,
    pub owner: PrincipalName,
}

/// The body of `GRANT` and `REVOKE`.
///
/// Every privilege applies to the securable's type ([`SecurableType::applicable`]); the
/// parser refuses the statement otherwise. `ALL PRIVILEGES` is never listed with others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeChange {
    pub privileges: PrivilegeSet,
    pub securable: SecurableName,
    pub principal: PrincipalName,
}

/// `SHOW GRANTS [<principal>] ON <securable>` (`SHOW GRANT` is the same statement).
///
/// Databricks answers with one row per (principal, privilege) and these columns, in this
/// order, which the executor should produce with the same names:
///
/// | column | type | what |
/// |---|---|---|
/// | `principal` | `STRING NOT NULL` | the grantee as SQL writes it: userName, group displayName or applicationId |
/// | `actionType` | `STRING NOT NULL` | the privilege in SQL spelling ([`Privilege::as_sql`](crate::Privilege::as_sql): `SELECT`, `USE CATALOG`, `ALL PRIVILEGES`) |
/// | `objectType` | `STRING` | the securable type the grant is attached to (`CATALOG`, `SCHEMA`, `TABLE`, ...); it is the parent's type for a privilege inherited from a catalog or schema |
/// | `objectKey` | `STRING` | the full name of that object (`main.sales`); empty for the metastore |
///
/// Databricks lists inherited grants as well ("all privileges that affect the securable"),
/// with the ancestor as `objectType`/`objectKey`. Its documentation example shows
/// `objectType` as `DATABASE` for a schema, a legacy spelling; current workspaces print
/// `SCHEMA`.
///
/// Who may run it: a workspace admin, the object's owner, a holder of `MANAGE` on it (with
/// the `USE` privileges on its parents), or the principal named in the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowGrants {
    /// Only this principal's grants; all principals' when absent.
    pub principal: Option<PrincipalName>,
    pub securable: SecurableName,
}

/// The names of the result columns of `SHOW GRANTS`, in order; see [`ShowGrants`].
pub const SHOW_GRANTS_COLUMNS: [&str; 4] = ["principal", "actionType", "objectType", "objectKey"];

/// A securable as a statement names it: a type and the name parts as written.
///
/// `parts` is empty for `METASTORE` (the account's one metastore) and otherwise has from one
/// to [`SecurableType::name_parts`] parts. Fewer parts than that mean "in the current
/// catalog / schema", which the executor supplies with [`SecurableName::qualified`]. Parts
/// keep the case they were written in; Unity Catalog folds names to lower case, and so does
/// the engine when it looks a name up. A part never contains `.`, a space, `/` or a control
/// character (Unity Catalog forbids them even in backticks), so [`SecurableName::full_name`]
/// is unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecurableName {
    pub securable_type: SecurableType,
    pub parts: Vec<String>,
}

impl SecurableName {
    pub fn new(securable_type: SecurableType, parts: Vec<String>) -> SecurableName {
        SecurableName {
            securable_type,
            parts,
        }
    }

    /// The parts joined with dots (`main.sales.orders`); empty for the metastore.
    pub fn full_name(&self) -> String {
        self.parts.join(".")
    }

    /// Whether the name has all its parts (`catalog.schema.table` for a table).
    pub fn is_fully_qualified(&self) -> bool {
        self.securable_type == SecurableType::Metastore
            || self.parts.len() == self.securable_type.name_parts()
    }

    /// The name with missing leading parts taken from the session's current catalog and
    /// schema (the Statement Execution API's `catalog` and `schema` fields, `USE CATALOG`).
    pub fn qualified(&self, current_catalog: &str, current_schema: &str) -> SecurableName {
        let wanted = if self.securable_type == SecurableType::Metastore {
            0
        } else {
            self.securable_type.name_parts()
        };
        // Only leading parts are ever missing, and they are filled from the top: `sales.orders`
        // under catalog `main` is `main.sales.orders`, and `orders` is
        // `<catalog>.<schema>.orders`.
        let missing = wanted.saturating_sub(self.parts.len());
        let mut parts: Vec<String> = [current_catalog, current_schema]
            .iter()
            .take(missing)
            .map(|part| part.to_string())
            .collect();
        parts.extend(self.parts.iter().cloned());
        SecurableName::new(self.securable_type, parts)
    }
}

impl fmt::Display for SecurableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(sql_keyword(self.securable_type))?;
        for (index, part) in self.parts.iter().enumerate() {
            f.write_str(if index == 0 { " " } else { "." })?;
            write_backticked(f, part)?;
        }
        Ok(())
    }
}

/// A principal as SQL writes it: a userName, a group displayName or a service principal's
/// applicationId. Kept as text; the executor resolves it (userName, then displayName, then
/// applicationId, as Databricks does) and reports an unknown one as "user not found".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrincipalName(String);

impl PrincipalName {
    pub fn new(name: impl Into<String>) -> PrincipalName {
        PrincipalName(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PrincipalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_backticked(f, &self.0)
    }
}

/// Why a statement could not be parsed.
///
/// The message is a complete sentence naming what was expected, the token found instead and
/// its byte offset, for example ``expected a privilege after GRANT, found 'TO' at offset 6``;
/// the fields carry the same facts for callers that point at the token themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementError {
    /// Byte offset into the statement text of the offending token.
    pub position: usize,
    /// The offending token as written and quoted (`'TO'`), or `end of input`.
    pub found: String,
    pub message: String,
}

impl fmt::Display for StatementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StatementError {}

impl From<StatementError> for AccessError {
    fn from(error: StatementError) -> AccessError {
        AccessError::InvalidStatement {
            position: error.position,
            message: error.message,
        }
    }
}

/// The SQL keyword(s) for a securable type, as the canonical text prints them.
pub fn sql_keyword(securable_type: SecurableType) -> &'static str {
    match securable_type {
        SecurableType::Metastore => "METASTORE",
        SecurableType::Catalog => "CATALOG",
        SecurableType::Schema => "SCHEMA",
        SecurableType::Table => "TABLE",
        SecurableType::View => "VIEW",
        SecurableType::Volume => "VOLUME",
        SecurableType::Function => "FUNCTION",
        SecurableType::RegisteredModel => "MODEL",
        SecurableType::ExternalLocation => "EXTERNAL LOCATION",
        SecurableType::StorageCredential => "STORAGE CREDENTIAL",
        SecurableType::Connection => "CONNECTION",
    }
}

fn write_backticked(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    write!(f, "`{}`", name.replace('`', "``"))
}

fn write_privileges(f: &mut fmt::Formatter<'_>, privileges: PrivilegeSet) -> fmt::Result {
    for (index, privilege) in privileges.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        f.write_str(&privilege.as_sql())?;
    }
    Ok(())
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Create(create) => {
                f.write_str("CREATE ")?;
                if create.or_replace {
                    f.write_str("OR REPLACE ")?;
                }
                f.write_str(sql_keyword(create.securable.securable_type))?;
                if create.if_not_exists {
                    f.write_str(" IF NOT EXISTS")?;
                }
                for (index, part) in create.securable.parts.iter().enumerate() {
                    f.write_str(if index == 0 { " " } else { "." })?;
                    write_backticked(f, part)?;
                }
                // Databricks requires a parameter list; the registry records none, so the
                // canonical text has an empty one.
                if create.securable.securable_type == SecurableType::Function {
                    f.write_str("()")?;
                }
                if let Some(comment) = &create.comment {
                    let escaped = comment.replace('\\', "\\\\").replace('\'', "\\'");
                    write!(f, " COMMENT '{escaped}'")?;
                }
                Ok(())
            }
            Statement::Drop(drop) => {
                f.write_str("DROP ")?;
                f.write_str(sql_keyword(drop.securable.securable_type))?;
                if drop.if_exists {
                    f.write_str(" IF EXISTS")?;
                }
                for (index, part) in drop.securable.parts.iter().enumerate() {
                    f.write_str(if index == 0 { " " } else { "." })?;
                    write_backticked(f, part)?;
                }
                if drop.cascade {
                    f.write_str(" CASCADE")?;
                }
                Ok(())
            }
            Statement::SetOwner(change) => {
                write!(f, "ALTER {} OWNER TO {}", change.securable, change.owner)
            }
            Statement::Grant(change) => {
                f.write_str("GRANT ")?;
                write_privileges(f, change.privileges)?;
                write!(f, " ON {} TO {}", change.securable, change.principal)
            }
            Statement::Revoke(change) => {
                f.write_str("REVOKE ")?;
                write_privileges(f, change.privileges)?;
                write!(f, " ON {} FROM {}", change.securable, change.principal)
            }
            Statement::ShowGrants(show) => {
                f.write_str("SHOW GRANTS")?;
                if let Some(principal) = &show.principal {
                    write!(f, " {principal}")?;
                }
                write!(f, " ON {}", show.securable)
            }
        }
    }
}

/// Quotes a piece of the source for an error message, cut short so that a huge token does
/// not make a huge message.
pub(crate) fn quote_source(text: &str) -> String {
    const LONGEST: usize = 40;
    match text.char_indices().nth(LONGEST) {
        Some((cut, _)) => format!("'{}...'", &text[..cut]),
        None => format!("'{text}'"),
    }
}
