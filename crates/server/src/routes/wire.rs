//! The request bodies of the Databricks REST APIs as they arrive (Unity Catalog, Permissions,
//! Workspace, Statement Execution), and their conversion into the validated values the
//! application layer accepts.
//!
//! Each body is a `Deserialize` type read by [`from_object`], which names the field of a value
//! with the wrong type by its path (`changes[0].add: invalid type: ...`), then a
//! `TryFrom<Body>` into domain values, whose errors name the field the same way. Fields the
//! server does not use are ignored, not refused: the Databricks SDKs send many (a statement's
//! `warehouse_id`, `wait_timeout` and `disposition`, a catalog's `properties` and
//! `storage_root`). A field that is `null` counts as absent, as the SDKs write unset fields
//! either way.

use scimitar_access::{PermissionLevel, Privilege, SecurableType};
use scimitar_app::governance::PrivilegeChanges;
use scimitar_app::workspace_permissions::RequestedEntry;
use scimitar_app::workspace_tree::{Imported, WorkspacePath};
use scimitar_domain::{PrincipalKind, ScimError, ScimResult};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// Reads a parsed request body into its wire type. The body must be a JSON object; a value
/// of the wrong type is refused with the path of its field.
pub fn from_object<T: DeserializeOwned>(body: Value) -> ScimResult<T> {
    // A derived struct would also accept an array, field by position, and then complain
    // about its length; every body here is an object, so say that instead. The body is valid
    // JSON (its text parsed), so this is a wrong value, not `MALFORMED_REQUEST`.
    if !body.is_object() {
        return Err(ScimError::invalid_value(
            "the request body must be a JSON object",
        ));
    }
    // Read from the parsed value rather than the text, so that messages carry the field's
    // path and not a line and column.
    serde_path_to_error::deserialize(body)
        .map_err(|error| ScimError::invalid_value(error.to_string()))
}

/// Puts the path of the field a client error is about in front of its message.
fn at(path: &str, error: ScimError) -> ScimError {
    match error {
        ScimError::BadRequest { scim_type, detail } => ScimError::BadRequest {
            scim_type,
            detail: format!("{path}: {detail}"),
        },
        other => other,
    }
}

/// A string that must be given and not blank, as it was given.
fn required(value: Option<String>, path: &str) -> ScimResult<String> {
    value
        .filter(|value| !value.trim().is_empty())
        .ok_or_else(|| ScimError::invalid_value(format!("`{path}` is required")))
}

// ----- Unity Catalog -----------------------------------------------------------------------

/// `POST /api/2.1/unity-catalog/catalogs`.
#[derive(Debug, Deserialize)]
pub struct CreateCatalogBody {
    name: Option<String>,
    comment: Option<String>,
}

/// `POST /api/2.1/unity-catalog/schemas`.
#[derive(Debug, Deserialize)]
pub struct CreateSchemaBody {
    name: Option<String>,
    catalog_name: Option<String>,
    comment: Option<String>,
}

/// A catalog or schema to create. Its name is checked and made canonical by the governance
/// service, which the SQL path shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSecurable {
    pub securable_type: SecurableType,
    pub full_name: String,
    pub comment: Option<String>,
}

impl TryFrom<CreateCatalogBody> for NewSecurable {
    type Error = ScimError;

    fn try_from(body: CreateCatalogBody) -> ScimResult<NewSecurable> {
        Ok(NewSecurable {
            securable_type: SecurableType::Catalog,
            full_name: required(body.name, "name")?,
            comment: body.comment,
        })
    }
}

impl TryFrom<CreateSchemaBody> for NewSecurable {
    type Error = ScimError;

    fn try_from(body: CreateSchemaBody) -> ScimResult<NewSecurable> {
        let name = required(body.name, "name")?;
        let catalog = required(body.catalog_name, "catalog_name")?;
        Ok(NewSecurable {
            securable_type: SecurableType::Schema,
            full_name: format!("{catalog}.{name}"),
            comment: body.comment,
        })
    }
}

/// `PATCH /api/2.1/unity-catalog/permissions/{type}/{name}`:
/// `{"changes": [{"principal": ..., "add": [...], "remove": [...]}]}`. No list is no change.
#[derive(Debug, Deserialize)]
pub struct UpdatePermissionsBody {
    changes: Option<Vec<PrivilegeChangeBody>>,
}

/// One principal's change. (`expecting` keeps the Rust type's name out of messages.)
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
pub struct PrivilegeChangeBody {
    principal: Option<String>,
    add: Option<Vec<String>>,
    remove: Option<Vec<String>>,
}

impl TryFrom<UpdatePermissionsBody> for Vec<PrivilegeChanges> {
    type Error = ScimError;

    fn try_from(body: UpdatePermissionsBody) -> ScimResult<Vec<PrivilegeChanges>> {
        let privileges = |names: Option<Vec<String>>, path: String| {
            names
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(index, name)| {
                    Privilege::parse(name)
                        .map_err(|error| at(&format!("{path}[{index}]"), error.into()))
                })
                .collect::<ScimResult<Vec<Privilege>>>()
        };
        body.changes
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(index, change)| {
                let path = format!("changes[{index}]");
                Ok(PrivilegeChanges {
                    principal: required(change.principal, &format!("{path}.principal"))?,
                    add: privileges(change.add, format!("{path}.add"))?,
                    remove: privileges(change.remove, format!("{path}.remove"))?,
                })
            })
            .collect()
    }
}

// ----- Permissions API ---------------------------------------------------------------------

/// `PUT` and `PATCH /api/2.0/permissions/{type}/{id}`. A missing list is an empty one: the
/// SDK sends `{}` when it is given none, and a PUT of nothing removes every direct entry.
#[derive(Debug, Deserialize)]
pub struct AccessControlListBody {
    access_control_list: Option<Vec<AccessControlEntryBody>>,
}

/// One entry: exactly one of the three names, and a level.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
pub struct AccessControlEntryBody {
    user_name: Option<String>,
    group_name: Option<String>,
    service_principal_name: Option<String>,
    permission_level: Option<String>,
}

impl TryFrom<AccessControlListBody> for Vec<RequestedEntry> {
    type Error = ScimError;

    fn try_from(body: AccessControlListBody) -> ScimResult<Vec<RequestedEntry>> {
        body.access_control_list
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(index, entry)| requested_entry(&format!("access_control_list[{index}]"), entry))
            .collect()
    }
}

/// The entry at `path` (`access_control_list[3]`).
fn requested_entry(path: &str, entry: AccessControlEntryBody) -> ScimResult<RequestedEntry> {
    let names: Vec<(PrincipalKind, String)> = [
        (PrincipalKind::User, entry.user_name),
        (PrincipalKind::Group, entry.group_name),
        (
            PrincipalKind::ServicePrincipal,
            entry.service_principal_name,
        ),
    ]
    .into_iter()
    .filter_map(|(kind, name)| name.map(|name| (kind, name)))
    .collect();
    let refused = |why: &str| ScimError::invalid_value(format!("{path}: {why}"));
    let (kind, name) = match <[_; 1]>::try_from(names) {
        Ok([(kind, name)]) if !name.trim().is_empty() => (kind, name.trim().to_string()),
        Ok(_) => return Err(refused("the principal's name is empty")),
        Err(_) => {
            return Err(refused(
                "give exactly one of user_name, group_name and service_principal_name",
            ))
        }
    };
    let level = entry
        .permission_level
        .ok_or_else(|| refused("permission_level is missing"))?;
    let level = PermissionLevel::parse(&level)
        .map_err(|error| at(&format!("{path}.permission_level"), error.into()))?;
    Ok(RequestedEntry { kind, name, level })
}

// ----- Workspace API -----------------------------------------------------------------------

/// The path every tree operation names; absent is refused, anything else is parsed (and its
/// errors quote it).
fn workspace_path(path: Option<String>) -> ScimResult<WorkspacePath> {
    match path {
        Some(path) => WorkspacePath::parse(&path),
        None => Err(ScimError::invalid_value("`path` is required")),
    }
}

/// `POST /api/2.0/workspace/mkdirs`.
#[derive(Debug, Deserialize)]
pub struct MkdirsBody {
    path: Option<String>,
}

impl TryFrom<MkdirsBody> for WorkspacePath {
    type Error = ScimError;

    fn try_from(body: MkdirsBody) -> ScimResult<WorkspacePath> {
        workspace_path(body.path)
    }
}

/// `POST /api/2.0/workspace/import`.
#[derive(Debug, Deserialize)]
pub struct ImportBody {
    path: Option<String>,
    format: Option<String>,
    language: Option<String>,
    /// Not kept (see `workspace_tree`), but it must still be text: a client that sends
    /// something else has a bug worth hearing about.
    #[serde(rename = "content")]
    _content: Option<String>,
    overwrite: Option<bool>,
}

impl ImportBody {
    /// The import a `multipart/form-data` body asks for (`w.workspace.upload` in the Python
    /// SDK), from its text fields. A form has only text, so `overwrite` is `"true"` or
    /// `"false"`; the content is not kept, as in the JSON form.
    pub fn from_form(
        path: Option<String>,
        format: Option<String>,
        language: Option<String>,
        overwrite: Option<&str>,
    ) -> ScimResult<ImportBody> {
        let overwrite = match overwrite.map(str::trim) {
            None => None,
            Some(text) if text.eq_ignore_ascii_case("true") => Some(true),
            Some(text) if text.eq_ignore_ascii_case("false") => Some(false),
            Some(other) => {
                return Err(ScimError::invalid_value(format!(
                    "`overwrite` must be true or false, not '{}'",
                    other.chars().take(64).collect::<String>()
                )))
            }
        };
        Ok(ImportBody {
            path,
            format,
            language,
            _content: None,
            overwrite,
        })
    }
}

/// What an import asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceImport {
    pub path: WorkspacePath,
    pub imported: Imported,
    pub overwrite: bool,
}

impl TryFrom<ImportBody> for WorkspaceImport {
    type Error = ScimError;

    fn try_from(body: ImportBody) -> ScimResult<WorkspaceImport> {
        Ok(WorkspaceImport {
            path: workspace_path(body.path)?,
            imported: Imported::from_request(body.format.as_deref(), body.language.as_deref())?,
            overwrite: body.overwrite.unwrap_or(false),
        })
    }
}

/// `POST /api/2.0/workspace/delete`.
#[derive(Debug, Deserialize)]
pub struct DeleteBody {
    path: Option<String>,
    recursive: Option<bool>,
}

/// What a delete asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceDelete {
    pub path: WorkspacePath,
    pub recursive: bool,
}

impl TryFrom<DeleteBody> for WorkspaceDelete {
    type Error = ScimError;

    fn try_from(body: DeleteBody) -> ScimResult<WorkspaceDelete> {
        Ok(WorkspaceDelete {
            path: workspace_path(body.path)?,
            recursive: body.recursive.unwrap_or(false),
        })
    }
}

// ----- Statement Execution API -------------------------------------------------------------

/// `POST /api/2.0/sql/statements`. The SDK's other fields (`warehouse_id`, `wait_timeout`,
/// `on_wait_timeout`, `disposition`, `format`, `row_limit`, `byte_limit`, `parameters`) are
/// accepted and ignored, whatever their type: there is no compute, and every answer is
/// complete and inline.
#[derive(Debug, Deserialize)]
pub struct ExecuteStatementBody {
    statement: Option<String>,
    catalog: Option<String>,
    schema: Option<String>,
}

/// A statement to run, in the session's catalog and schema if given. The SQL itself is
/// parsed by the governance service: a statement that does not parse is an answer with
/// `status.state` `FAILED`, not a refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRequest {
    pub statement: String,
    pub catalog: Option<String>,
    pub schema: Option<String>,
}

impl TryFrom<ExecuteStatementBody> for StatementRequest {
    type Error = ScimError;

    fn try_from(body: ExecuteStatementBody) -> ScimResult<StatementRequest> {
        // A blank catalog or schema is no session default, as the SDKs send "" for unset.
        let given = |value: Option<String>| value.filter(|value| !value.trim().is_empty());
        Ok(StatementRequest {
            statement: required(body.statement, "statement")?,
            catalog: given(body.catalog),
            schema: given(body.schema),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    /// The conversion of a body into a domain value, or its error's message.
    fn convert<W: DeserializeOwned, D: TryFrom<W, Error = ScimError>>(
        body: Value,
    ) -> Result<D, String> {
        from_object::<W>(body)
            .and_then(D::try_from)
            .map_err(|error| error.to_string())
    }

    fn acl(body: Value) -> Result<Vec<RequestedEntry>, String> {
        convert::<AccessControlListBody, _>(body)
    }

    #[test]
    fn access_control_entries_need_one_principal_and_a_level() {
        let parsed = acl(json!({"access_control_list": [
            {"user_name": " a@x ", "permission_level": "CAN_VIEW"},
            {"group_name": "g", "permission_level": "can_manage_run", "all_permissions": []},
        ]}))
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                RequestedEntry {
                    kind: PrincipalKind::User,
                    name: "a@x".to_string(),
                    level: PermissionLevel::CanView,
                },
                RequestedEntry {
                    kind: PrincipalKind::Group,
                    name: "g".to_string(),
                    level: PermissionLevel::CanManageRun,
                },
            ]
        );
        assert!(acl(json!({})).unwrap().is_empty());
        assert!(acl(json!({"access_control_list": null}))
            .unwrap()
            .is_empty());
        for (bad, message) in [
            (
                json!({"access_control_list": [{"permission_level": "CAN_VIEW"}]}),
                "access_control_list[0]: give exactly one of user_name, group_name and \
                 service_principal_name",
            ),
            (
                json!({"access_control_list": [
                    {"user_name": "a", "permission_level": "CAN_VIEW"},
                    {"user_name": "a", "group_name": "g", "permission_level": "CAN_VIEW"},
                ]}),
                "access_control_list[1]: give exactly one of user_name, group_name and \
                 service_principal_name",
            ),
            (
                json!({"access_control_list": [{"group_name": " ", "permission_level": "CAN_VIEW"}]}),
                "access_control_list[0]: the principal's name is empty",
            ),
            (
                json!({"access_control_list": [{"user_name": "a"}]}),
                "access_control_list[0]: permission_level is missing",
            ),
            (
                json!({"access_control_list": [{"user_name": "a", "permission_level": "CAN_FLY"}]}),
                "access_control_list[0].permission_level: `CAN_FLY` is not a permission level",
            ),
            (
                json!({"access_control_list": [{"user_name": 7, "permission_level": "CAN_VIEW"}]}),
                "access_control_list[0].user_name: invalid type: integer `7`, expected a string",
            ),
            (
                json!({"access_control_list": "x"}),
                "access_control_list: invalid type: string \"x\", expected a sequence",
            ),
            (
                json!({"access_control_list": ["x"]}),
                "access_control_list[0]: invalid type: string \"x\", expected an object",
            ),
            (json!([]), "the request body must be a JSON object"),
        ] {
            assert_eq!(acl(bad.clone()).unwrap_err(), message, "{bad}");
        }
    }

    #[test]
    fn privilege_changes_name_the_field_that_is_wrong() {
        let changes = |body| convert::<UpdatePermissionsBody, Vec<PrivilegeChanges>>(body);
        assert_eq!(
            changes(json!({"changes": [
                {"principal": "users", "add": ["select", "USE CATALOG"]},
                {"principal": "admins", "remove": ["MODIFY"], "add": null},
            ]}))
            .unwrap(),
            vec![
                PrivilegeChanges {
                    principal: "users".to_string(),
                    add: vec![Privilege::Select, Privilege::UseCatalog],
                    remove: vec![],
                },
                PrivilegeChanges {
                    principal: "admins".to_string(),
                    add: vec![],
                    remove: vec![Privilege::Modify],
                },
            ]
        );
        assert!(changes(json!({})).unwrap().is_empty());
        for (bad, message) in [
            (
                json!({"changes": [{"principal": "users", "add": "SELECT"}]}),
                "changes[0].add: invalid type: string \"SELECT\", expected a sequence",
            ),
            (
                json!({"changes": [{"principal": "users"}, {"principal": "u", "remove": ["SELECT", 3]}]}),
                "changes[1].remove[1]: invalid type: integer `3`, expected a string",
            ),
            (
                json!({"changes": [{"principal": "users", "add": ["SELECT", "SELEKT"]}]}),
                "changes[0].add[1]: `SELEKT` is not a Unity Catalog privilege",
            ),
            (
                json!({"changes": [{"add": ["SELECT"]}]}),
                "`changes[0].principal` is required",
            ),
            (
                json!({"changes": {"principal": "users"}}),
                "changes: invalid type: map, expected a sequence",
            ),
            (
                json!({"changes": ["users"]}),
                "changes[0]: invalid type: string \"users\", expected an object",
            ),
        ] {
            assert_eq!(changes(bad.clone()).unwrap_err(), message, "{bad}");
        }
    }

    #[test]
    fn creations_need_their_names_and_ignore_what_they_do_not_use() {
        let schema = convert::<CreateSchemaBody, NewSecurable>(json!({
            "name": "sales", "catalog_name": "main", "comment": "c",
            "properties": {"a": "b"}, "storage_root": "s3://x",
        }))
        .unwrap();
        assert_eq!(schema.full_name, "main.sales");
        assert_eq!(schema.securable_type, SecurableType::Schema);
        assert_eq!(schema.comment.as_deref(), Some("c"));
        let catalog = |body| convert::<CreateCatalogBody, NewSecurable>(body);
        assert_eq!(
            catalog(json!({"name": " "})).unwrap_err(),
            "`name` is required"
        );
        assert_eq!(
            catalog(json!({"name": "main", "comment": 5})).unwrap_err(),
            "comment: invalid type: integer `5`, expected a string"
        );
    }

    #[test]
    fn workspace_bodies_become_paths_and_flags() {
        let import = convert::<ImportBody, WorkspaceImport>(json!({
            "path": "/Shared/nb", "language": "python", "content": "cHJpbnQoMSk=",
            "overwrite": true,
        }))
        .unwrap();
        assert_eq!(import.path.as_str(), "/Shared/nb");
        assert!(import.overwrite);
        for (bad, message) in [
            (
                json!({"path": "/a", "language": "SQL", "overwrite": "yes"}),
                "overwrite: invalid type: string \"yes\", expected a boolean",
            ),
            (
                json!({"path": "/a", "language": "SQL", "content": ["x"]}),
                "content: invalid type: sequence, expected a string",
            ),
            (json!({"language": "SQL"}), "`path` is required"),
        ] {
            assert_eq!(
                convert::<ImportBody, WorkspaceImport>(bad.clone()).unwrap_err(),
                message,
                "{bad}"
            );
        }
        assert_eq!(
            convert::<DeleteBody, WorkspaceDelete>(json!({"path": "/a", "recursive": 1}))
                .unwrap_err(),
            "recursive: invalid type: integer `1`, expected a boolean"
        );
        assert_eq!(
            convert::<MkdirsBody, WorkspacePath>(json!({"path": 7})).unwrap_err(),
            "path: invalid type: integer `7`, expected a string"
        );
    }

    #[test]
    fn statements_tolerate_the_sdks_other_fields() {
        let request = convert::<ExecuteStatementBody, StatementRequest>(json!({
            "statement": "SHOW GRANTS ON CATALOG main", "catalog": "", "schema": "s",
            "warehouse_id": 7, "wait_timeout": "30s", "disposition": "INLINE",
            "format": "JSON_ARRAY", "parameters": [{"name": "x", "value": "1"}],
        }))
        .unwrap();
        assert_eq!(request.catalog, None);
        assert_eq!(request.schema.as_deref(), Some("s"));
        assert_eq!(
            convert::<ExecuteStatementBody, StatementRequest>(json!({"statement": "  "}))
                .unwrap_err(),
            "`statement` is required"
        );
        assert_eq!(
            convert::<ExecuteStatementBody, StatementRequest>(
                json!({"statement": "SELECT 1", "schema": {"name": "s"}})
            )
            .unwrap_err(),
            "schema: invalid type: map, expected a string"
        );
    }
}
