//! The workspace tree behind the Databricks Workspace API (`/api/2.0/workspace/...`):
//! directories, notebooks and files at absolute paths, so that objects can be put into
//! folders and inherit the folder's ACL, as `mkdirs` and `import` do in Databricks.
//!
//! Only the tree is kept, not content: an imported notebook or file is registered with its
//! path, type, language and id (as SQL `CREATE TABLE` registers a table without data), so
//! `export` is not offered. Every rule about who may do what is the access engine's, on the
//! directory ACLs it already holds: creating or deleting needs `CAN_MANAGE` on the directory
//! (or the object) concerned, reading any level on it, and only workspace admins write at
//! the root, except that everyone may make their own home folder, `/Users/{userName}`. The
//! creator of an object gets `CAN_MANAGE` on it, as in Databricks.
//!
//! Each workspace has its own tree: every path is looked up in the caller's workspace, so an
//! object of another workspace is not there, exactly as a missing one.

use crate::authority::{administers_objects, Actor};
use crate::service::Services;
use crate::workspace_permissions::{objects_change, objects_workspace};
use scimitar_access::{AccessModel, AclEntry, ObjectType, PermissionLevel};
use scimitar_domain::{AccountId, PrincipalId, ScimError, ScimResult, ScimType, WorkspaceId};
use scimitar_store::{GovernanceChange, WorkspaceEntry};
use serde_json::{json, Value};

/// The longest path accepted, in bytes.
const MAX_PATH_BYTES: usize = 4096;

/// How often a write is planned again after a concurrent one took a path it meant to use
/// (or, rarely, an id drawn by another node).
const WRITE_ATTEMPTS: usize = 4;

/// An absolute, normalized workspace path: `/`, or `/` followed by non-empty names separated
/// by single slashes (a trailing slash is dropped), without `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspacePath(String);

impl WorkspacePath {
    pub fn parse(text: &str) -> ScimResult<WorkspacePath> {
        let invalid = |why: &str| ScimError::invalid_value(format!("path '{text}': {why}"));
        if !text.starts_with('/') {
            return Err(invalid("must be absolute (start with /)"));
        }
        if text.len() > MAX_PATH_BYTES {
            return Err(invalid("is too long"));
        }
        let trimmed = text.strip_suffix('/').unwrap_or(text);
        if trimmed.is_empty() {
            return Ok(WorkspacePath("/".to_string()));
        }
        for name in trimmed[1..].split('/') {
            if name.is_empty() {
                return Err(invalid("has an empty name (two slashes in a row)"));
            }
            if name == "." || name == ".." {
                return Err(invalid("may not contain . or .."));
            }
            if name.chars().any(char::is_control) {
                return Err(invalid("may not contain control characters"));
            }
        }
        Ok(WorkspacePath(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The directory this path is in; `None` for the root.
    pub fn parent(&self) -> Option<WorkspacePath> {
        if self.is_root() {
            return None;
        }
        let cut = self.0.rfind('/').unwrap_or(0);
        Some(WorkspacePath(if cut == 0 {
            "/".to_string()
        } else {
            self.0[..cut].to_string()
        }))
    }

    /// Whether this path is `other` or below it.
    fn is_within(&self, other: &WorkspacePath) -> bool {
        other.is_root()
            || self.0 == other.0
            || self
                .0
                .strip_prefix(&other.0)
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// A principal's home folder, `/Users/{userName}` (a service principal's applicationId),
    /// if its name makes a single path segment.
    fn home_of(name: &str) -> Option<WorkspacePath> {
        let home = WorkspacePath::parse(&format!("/Users/{name}")).ok()?;
        (home.parent()?.as_str() == "/Users").then_some(home)
    }

    /// Every path from the first level below the root down to this one: `/a`, `/a/b`.
    fn lineage(&self) -> Vec<WorkspacePath> {
        let mut paths = Vec::new();
        let mut at = Some(self.clone());
        while let Some(path) = at.filter(|path| !path.is_root()) {
            at = path.parent();
            paths.push(path);
        }
        paths.reverse();
        paths
    }
}

/// What `import` makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    Notebook { language: Option<String> },
    File,
}

/// The languages a notebook may be in.
const LANGUAGES: [&str; 4] = ["PYTHON", "SQL", "SCALA", "R"];

impl Imported {
    /// What an `import` request with this `format` and `language` makes, as Databricks reads
    /// them: `SOURCE` (the default) is a notebook in the language given, which it needs;
    /// `JUPYTER` a Python notebook, `R_MARKDOWN` an R one, `HTML` and `DBC` notebooks; `RAW` a
    /// file; `AUTO` a notebook when a language is given, a file otherwise.
    pub fn from_request(format: Option<&str>, language: Option<&str>) -> ScimResult<Imported> {
        let language = match language {
            None => None,
            Some(language) => {
                let upper = language.to_ascii_uppercase();
                if !LANGUAGES.contains(&upper.as_str()) {
                    return Err(ScimError::invalid_value(format!(
                        "language '{language}' is not one of {}",
                        LANGUAGES.join(", ")
                    )));
                }
                Some(upper)
            }
        };
        let format = format.map(str::to_ascii_uppercase);
        Ok(match format.as_deref().unwrap_or("SOURCE") {
            "SOURCE" => match language {
                Some(language) => Imported::Notebook {
                    language: Some(language),
                },
                None => {
                    return Err(ScimError::invalid_value(
                        "language is required to import a notebook in SOURCE format",
                    ))
                }
            },
            "JUPYTER" => Imported::Notebook {
                language: Some("PYTHON".to_string()),
            },
            "R_MARKDOWN" => Imported::Notebook {
                language: Some("R".to_string()),
            },
            "HTML" | "DBC" => Imported::Notebook { language },
            "RAW" => Imported::File,
            "AUTO" if language.is_some() => Imported::Notebook { language },
            "AUTO" => Imported::File,
            other => {
                return Err(ScimError::invalid_value(format!(
                "format '{other}' is not one of SOURCE, HTML, JUPYTER, DBC, R_MARKDOWN, AUTO, RAW"
            )))
            }
        })
    }
}

/// The Workspace API's `ObjectInfo` for an entry.
fn object_info(entry: &WorkspaceEntry) -> Value {
    let mut info = json!({
        "object_type": api_type(entry.object_type),
        "path": entry.path,
        "object_id": numeric_id(&entry.object_id),
        "resource_id": entry.object_id,
    });
    if let Some(language) = &entry.language {
        info["language"] = json!(language);
    }
    info
}

/// The root, which is never stored: a directory every caller may list.
fn root_info() -> Value {
    json!({"object_type": "DIRECTORY", "path": "/", "object_id": 0, "resource_id": "0"})
}

fn api_type(object_type: ObjectType) -> &'static str {
    match object_type {
        ObjectType::Directories => "DIRECTORY",
        ObjectType::Notebooks => "NOTEBOOK",
        _ => "FILE",
    }
}

/// Ids are drawn as decimal digits; Databricks clients read `object_id` as an integer.
fn numeric_id(id: &str) -> Value {
    id.parse::<i64>()
        .map_or_else(|_| json!(id), |number| json!(number))
}

fn not_found(path: &WorkspacePath) -> ScimError {
    ScimError::NotFound(format!("Path ({}) doesn't exist.", path.as_str()))
}

/// `GET /workspace/get-status`: the object at `path`, for admins and anyone holding a level
/// on it.
pub async fn status(services: &Services, actor: &Actor, path: &WorkspacePath) -> ScimResult<Value> {
    let (account, caller) = (actor.account(), actor.principal());
    let workspace = objects_workspace(actor)?;
    if path.is_root() {
        return Ok(root_info());
    }
    let entry = entry_at(services, account, workspace, path)
        .await?
        .ok_or_else(|| not_found(path))?;
    ensure_may_read(services, account, workspace, caller, &entry).await?;
    Ok(object_info(&entry))
}

/// `GET /workspace/list`: what a directory holds, by path (or the object itself when `path`
/// is not a directory), for admins and anyone holding a level on it; the root for everyone.
pub async fn list(services: &Services, actor: &Actor, path: &WorkspacePath) -> ScimResult<Value> {
    let (account, caller) = (actor.account(), actor.principal());
    let workspace = objects_workspace(actor)?;
    let directory = if path.is_root() {
        None
    } else {
        let entry = entry_at(services, account, workspace, path)
            .await?
            .ok_or_else(|| not_found(path))?;
        ensure_may_read(services, account, workspace, caller, &entry).await?;
        if entry.object_type != ObjectType::Directories {
            return Ok(json!({"objects": [object_info(&entry)]}));
        }
        Some(entry.object_id)
    };
    let children = services
        .store
        .workspace_entries_in(account, workspace, directory.as_deref())
        .await?;
    Ok(json!({"objects": children.iter().map(object_info).collect::<Vec<_>>()}))
}

/// `POST /workspace/mkdirs`: the directory and any missing directories above it, in one
/// commit. Nothing to do when it exists; refused when something on the way is not a
/// directory.
pub async fn mkdirs(services: &Services, actor: &Actor, path: &WorkspacePath) -> ScimResult<()> {
    let (account, caller) = (actor.account(), actor.principal());
    let workspace = objects_workspace(actor)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut above: Option<WorkspaceEntry> = None;
        let mut missing = Vec::new();
        for at in path.lineage() {
            if !missing.is_empty() {
                missing.push(at);
                continue;
            }
            match entry_at(services, account, workspace, &at).await? {
                Some(entry) if entry.object_type == ObjectType::Directories => above = Some(entry),
                Some(_) => {
                    return Err(ScimError::uniqueness(format!(
                        "{} exists and is not a directory",
                        at.as_str()
                    )))
                }
                None => missing.push(at),
            }
        }
        let Some(first_missing) = missing.first() else {
            return Ok(());
        };
        // Everyone may make their own home folder (and `/Users` above it), as Databricks
        // gives each user one; it is theirs to manage, and `/Users` is nobody's, so that no
        // home inherits another's rights.
        let home = services
            .access
            .read(account, |model| model.principal_ref(caller).ok())?
            .and_then(|caller| WorkspacePath::home_of(&caller.name))
            .filter(|home| path.is_within(home) && home.is_within(first_missing));
        if home.is_none() {
            ensure_may_create_in(services, account, workspace, caller, above.as_ref()).await?;
        }
        let mut directory = above.map(|entry| entry.object_id);
        let mut changes = Vec::new();
        for at in missing {
            let id = new_object_id(services);
            let entry = WorkspaceEntry {
                object_type: ObjectType::Directories,
                object_id: id.clone(),
                path: at.as_str().to_string(),
                directory: directory.take(),
                language: None,
            };
            let above_home = home
                .as_ref()
                .is_some_and(|home| home.is_within(&at) && *home != at);
            if above_home {
                changes.push(GovernanceChange::CreateWorkspaceEntry { entry });
            } else {
                changes.extend(creation(caller, entry));
            }
            directory = Some(id);
        }
        match services
            .commit(account, objects_change(workspace, changes))
            .await
        {
            // Someone made one of these paths meanwhile: look again.
            Err(error) if is_taken(&error) && attempt < WRITE_ATTEMPTS => {}
            result => return result,
        }
    }
}

/// `POST /workspace/import`: a notebook or file at `path`, whose directory must exist. An
/// object already there is refused unless `overwrite`, which keeps it (with its id and ACL:
/// content is not stored) when the caller may edit it.
pub async fn import(
    services: &Services,
    actor: &Actor,
    path: &WorkspacePath,
    imported: Imported,
    overwrite: bool,
) -> ScimResult<()> {
    let (account, caller) = (actor.account(), actor.principal());
    let workspace = objects_workspace(actor)?;
    let parent = path.parent().ok_or_else(|| {
        ScimError::invalid_value("the workspace root is a directory; import needs a path below it")
    })?;
    let (object_type, language) = match imported {
        Imported::Notebook { language } => (ObjectType::Notebooks, language),
        Imported::File => (ObjectType::Files, None),
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        if let Some(existing) = entry_at(services, account, workspace, path).await? {
            if !overwrite || existing.object_type == ObjectType::Directories {
                return Err(ScimError::uniqueness(format!(
                    "Path ({}) already exists.",
                    path.as_str()
                )));
            }
            // Admins hold CAN_MANAGE everywhere, which the level includes.
            let may_edit = decide(services, account, |model| {
                holds_at_least(
                    model,
                    workspace,
                    caller,
                    &existing,
                    PermissionLevel::CanEdit,
                )
            })
            .await?;
            return if may_edit {
                Ok(())
            } else {
                Err(ScimError::Forbidden(format!(
                    "overwriting {} needs CAN_EDIT on it",
                    path.as_str()
                )))
            };
        }
        let directory = if parent.is_root() {
            None
        } else {
            match entry_at(services, account, workspace, &parent).await? {
                Some(entry) if entry.object_type == ObjectType::Directories => Some(entry),
                _ => {
                    return Err(ScimError::NotFound(format!(
                        "The parent folder ({}) does not exist.",
                        parent.as_str()
                    )))
                }
            }
        };
        ensure_may_create_in(services, account, workspace, caller, directory.as_ref()).await?;
        let changes = Vec::from(creation(
            caller,
            WorkspaceEntry {
                object_type,
                object_id: new_object_id(services),
                path: path.as_str().to_string(),
                directory: directory.map(|entry| entry.object_id),
                language: language.clone(),
            },
        ));
        match services
            .commit(account, objects_change(workspace, changes))
            .await
        {
            // Someone took the path (or the drawn id) meanwhile: look again.
            Err(error) if is_taken(&error) && attempt < WRITE_ATTEMPTS => {}
            result => return result,
        }
    }
}

/// `POST /workspace/delete`: the object at `path`, and with `recursive` everything below a
/// directory, in one commit. A directory that holds anything is refused without it.
pub async fn delete(
    services: &Services,
    actor: &Actor,
    path: &WorkspacePath,
    recursive: bool,
) -> ScimResult<()> {
    let (account, caller) = (actor.account(), actor.principal());
    let workspace = objects_workspace(actor)?;
    if path.is_root() {
        return Err(ScimError::invalid_value(
            "the workspace root cannot be deleted",
        ));
    }
    let entry = entry_at(services, account, workspace, path)
        .await?
        .ok_or_else(|| not_found(path))?;
    let may_delete = decide(services, account, |model| {
        Ok(administers_objects(model, caller, workspace)
            || model
                .can_change_object_acl(caller, entry.object_type, &entry.object_id)
                .map_err(ScimError::from)?)
    })
    .await?;
    if !may_delete {
        return Err(ScimError::Forbidden(format!(
            "deleting {} needs CAN_MANAGE on it",
            path.as_str()
        )));
    }
    // Everything below, breadth-first; removed together with the object.
    let mut removed = vec![entry];
    let mut next = 0;
    while let Some(at) = removed.get(next) {
        next += 1;
        if at.object_type != ObjectType::Directories {
            continue;
        }
        let children = services
            .store
            .workspace_entries_in(account, workspace, Some(&at.object_id))
            .await?;
        if !children.is_empty() && !recursive {
            return Err(ScimError::invalid_value(format!(
                "Folder ({}) is not empty; delete it with recursive set to true",
                path.as_str()
            )));
        }
        removed.extend(children);
    }
    let changes = removed
        .into_iter()
        .rev()
        .map(|entry| GovernanceChange::RemoveObject {
            object_type: entry.object_type,
            object_id: entry.object_id,
        })
        .collect();
    services
        .commit(account, objects_change(workspace, changes))
        .await
}

async fn entry_at(
    services: &Services,
    account: &AccountId,
    workspace: &WorkspaceId,
    path: &WorkspacePath,
) -> ScimResult<Option<WorkspaceEntry>> {
    services
        .store
        .workspace_entry(account, workspace, path.as_str())
        .await
}

/// A new object: its entry, and `CAN_MANAGE` for its creator.
fn creation(caller: &PrincipalId, entry: WorkspaceEntry) -> [GovernanceChange; 2] {
    let acl = GovernanceChange::SetObjectAcl {
        object_type: entry.object_type,
        object_id: entry.object_id.clone(),
        entries: vec![AclEntry::new(caller.clone(), PermissionLevel::CanManage)],
    };
    [GovernanceChange::CreateWorkspaceEntry { entry }, acl]
}

/// A new object id: sixteen decimal digits, as Databricks object ids are, from the generator
/// principal ids come from (unique within a process; a collision with another node's is
/// refused by storage and the write planned again).
fn new_object_id(services: &Services) -> String {
    services
        .ids
        .principal_id(services.clock.now())
        .as_str()
        .to_string()
}

fn is_taken(error: &ScimError) -> bool {
    matches!(
        error,
        ScimError::BadRequest {
            scim_type: ScimType::Uniqueness,
            ..
        }
    )
}

/// Asks the engine; a "no" is asked again once the engine has read the log, since the
/// directory or its ACL may have been written a moment ago through another node.
async fn decide(
    services: &Services,
    account: &AccountId,
    question: impl Fn(&AccessModel) -> ScimResult<bool>,
) -> ScimResult<bool> {
    if services.access.read(account, &question)?? {
        return Ok(true);
    }
    services.access.catch_up(services.store.as_ref()).await?;
    services.access.read(account, &question)?
}

fn holds_at_least(
    model: &AccessModel,
    workspace: &WorkspaceId,
    caller: &PrincipalId,
    entry: &WorkspaceEntry,
    wanted: PermissionLevel,
) -> ScimResult<bool> {
    if administers_objects(model, caller, workspace) {
        return Ok(true);
    }
    Ok(model
        .object_permission(caller, entry.object_type, &entry.object_id)
        .map_err(ScimError::from)?
        .is_some_and(|held| entry.object_type.implies(held.level, wanted)))
}

/// Creating in a directory needs `CAN_MANAGE` on it; at the root, workspace admin.
async fn ensure_may_create_in(
    services: &Services,
    account: &AccountId,
    workspace: &WorkspaceId,
    caller: &PrincipalId,
    directory: Option<&WorkspaceEntry>,
) -> ScimResult<()> {
    let allowed = decide(services, account, |model| {
        if administers_objects(model, caller, workspace) {
            return Ok(true);
        }
        match directory {
            Some(directory) => model
                .can_change_object_acl(caller, ObjectType::Directories, &directory.object_id)
                .map_err(ScimError::from),
            None => Ok(false),
        }
    })
    .await?;
    if allowed {
        return Ok(());
    }
    Err(ScimError::Forbidden(match directory {
        Some(directory) => format!("creating in {} needs CAN_MANAGE on it", directory.path),
        None => "only workspace admins may create objects at the workspace root".to_string(),
    }))
}

/// Reading an object or listing a directory needs some level on it (admins hold
/// `CAN_MANAGE` everywhere).
async fn ensure_may_read(
    services: &Services,
    account: &AccountId,
    workspace: &WorkspaceId,
    caller: &PrincipalId,
    entry: &WorkspaceEntry,
) -> ScimResult<()> {
    let allowed = decide(services, account, |model| {
        Ok(administers_objects(model, caller, workspace)
            || model
                .object_permission(caller, entry.object_type, &entry.object_id)
                .map_err(ScimError::from)?
                .is_some())
    })
    .await?;
    if allowed {
        return Ok(());
    }
    Err(ScimError::Forbidden(format!(
        "reading {} needs a permission on it",
        entry.path
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_are_absolute_and_normalized() {
        for (text, normalized) in [
            ("/", "/"),
            ("/a", "/a"),
            ("/a/", "/a"),
            (
                "/Users/ana@example.com/reports",
                "/Users/ana@example.com/reports",
            ),
        ] {
            assert_eq!(WorkspacePath::parse(text).unwrap().as_str(), normalized);
        }
        for bad in ["", "a/b", "/a//b", "/a/../b", "/./a", "/a\u{7}"] {
            assert!(WorkspacePath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_path_knows_its_directory_and_the_ones_above() {
        let path = WorkspacePath::parse("/a/b/c").unwrap();
        assert_eq!(path.parent().unwrap().as_str(), "/a/b");
        assert_eq!(
            WorkspacePath::parse("/a")
                .unwrap()
                .parent()
                .unwrap()
                .as_str(),
            "/"
        );
        assert_eq!(WorkspacePath::parse("/").unwrap().parent(), None);
        let lineage: Vec<String> = path
            .lineage()
            .iter()
            .map(|path| path.as_str().to_string())
            .collect();
        assert_eq!(lineage, ["/a", "/a/b", "/a/b/c"]);
    }

    #[test]
    fn homes_are_one_folder_below_users() {
        let home = WorkspacePath::home_of("ana@example.com").unwrap();
        assert_eq!(home.as_str(), "/Users/ana@example.com");
        assert!(WorkspacePath::home_of("a/b").is_none());
        assert!(WorkspacePath::home_of("..").is_none());
        let inside = WorkspacePath::parse("/Users/ana@example.com/x").unwrap();
        assert!(inside.is_within(&home));
        assert!(home.is_within(&home));
        assert!(home.is_within(&WorkspacePath::parse("/Users").unwrap()));
        assert!(!WorkspacePath::parse("/Users/ana@example.com2")
            .unwrap()
            .is_within(&home));
    }

    #[test]
    fn formats_and_languages_decide_what_an_import_makes() {
        let notebook = |language: &str| Imported::Notebook {
            language: Some(language.to_string()),
        };
        assert_eq!(
            Imported::from_request(None, Some("python")).unwrap(),
            notebook("PYTHON")
        );
        assert_eq!(
            Imported::from_request(Some("JUPYTER"), None).unwrap(),
            notebook("PYTHON")
        );
        assert_eq!(
            Imported::from_request(Some("AUTO"), None).unwrap(),
            Imported::File
        );
        assert_eq!(
            Imported::from_request(Some("RAW"), Some("SQL")).unwrap(),
            Imported::File
        );
        assert!(Imported::from_request(Some("SOURCE"), None).is_err());
        assert!(Imported::from_request(Some("PDF"), None).is_err());
        assert!(Imported::from_request(None, Some("COBOL")).is_err());
    }
}
