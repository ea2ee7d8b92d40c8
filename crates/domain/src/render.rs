//! Turning a stored principal into its SCIM wire document.

use crate::ids::PrincipalId;
use crate::resource::Principal;
use crate::schema::{PrincipalKind, ResourceTypeDef};
use serde_json::{json, Map, Value};

/// A direct member of a group, as storage reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub id: PrincipalId,
    pub kind: PrincipalKind,
    pub display: Option<String>,
}

/// A group a principal belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: PrincipalId,
    pub display: Option<String>,
    /// False when the membership is inherited through a nested group.
    pub direct: bool,
}

/// `base_url` is the mount point's absolute URL, e.g. `http://127.0.0.1:8080/scim/v2`.
pub fn location(base_url: &str, kind: PrincipalKind, id: &PrincipalId) -> String {
    format!("{base_url}{}/{id}", kind.resource_type().endpoint)
}

/// Renders a principal. `members` and `groups` are rendered only when given, so callers that
/// project them away never load them. A member's `display` is rendered only when its
/// [`MemberRef`] carries one: callers fill it only when the client asked for it.
pub fn render(
    principal: &Principal,
    base_url: &str,
    members: Option<&[MemberRef]>,
    groups: Option<&[GroupRef]>,
) -> Map<String, Value> {
    let resource_type: &ResourceTypeDef = principal.kind.resource_type();
    let mut schemas = vec![Value::String(resource_type.schema.id.to_string())];
    for (extension, _) in resource_type.extensions {
        if principal.attributes.contains_key(extension.id) {
            schemas.push(Value::String(extension.id.to_string()));
        }
    }
    let mut document = Map::new();
    document.insert("schemas".to_string(), Value::Array(schemas));
    document.insert("id".to_string(), Value::String(principal.id.to_string()));
    for (key, value) in &principal.attributes {
        document.insert(key.clone(), value.clone());
    }
    if let Some(members) = members {
        let rendered: Vec<Value> = members
            .iter()
            .map(|member| {
                let mut entry = Map::new();
                entry.insert("value".to_string(), json!(member.id.as_str()));
                if let Some(display) = &member.display {
                    entry.insert("display".to_string(), json!(display));
                }
                entry.insert("type".to_string(), json!(member.kind.as_str()));
                entry.insert(
                    "$ref".to_string(),
                    json!(location(base_url, member.kind, &member.id)),
                );
                Value::Object(entry)
            })
            .collect();
        document.insert("members".to_string(), Value::Array(rendered));
    }
    if let Some(groups) = groups {
        let rendered: Vec<Value> = groups
            .iter()
            .map(|group| {
                let mut entry = Map::new();
                entry.insert("value".to_string(), json!(group.id.as_str()));
                if let Some(display) = &group.display {
                    entry.insert("display".to_string(), json!(display));
                }
                entry.insert(
                    "type".to_string(),
                    json!(if group.direct { "direct" } else { "indirect" }),
                );
                entry.insert(
                    "$ref".to_string(),
                    json!(location(base_url, PrincipalKind::Group, &group.id)),
                );
                Value::Object(entry)
            })
            .collect();
        document.insert("groups".to_string(), Value::Array(rendered));
    }
    document.insert(
        "meta".to_string(),
        json!({
            "resourceType": resource_type.name,
            "created": principal.created.to_rfc3339(),
            "lastModified": principal.last_modified.to_rfc3339(),
            "location": location(base_url, principal.kind, &principal.id),
            "version": principal.etag(),
        }),
    );
    document
}
