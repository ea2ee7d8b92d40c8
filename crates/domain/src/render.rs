//! Turning a stored principal into its SCIM wire document.

use crate::ids::PrincipalId;
use crate::resource::Principal;
use crate::schema::{PrincipalKind, ResourceTypeDef};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

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

/// A principal's SCIM wire document, serialized straight from the stored principal: a GET
/// writes its bytes without copying the attributes into a new `Value` tree first. `members`
/// and `groups` are rendered only when given, so callers that project them away never load
/// them. A member's `display` is rendered only when its [`MemberRef`] carries one: callers
/// fill it only when the client asked for it.
///
/// [`render`] is this document as a `Map`, for callers that still edit it (projections,
/// filters); both come from the one [`Serialize`] impl below, so they cannot disagree.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    pub principal: &'a Principal,
    /// The mount point's absolute URL, e.g. `http://127.0.0.1:8080/scim/v2`.
    pub base_url: &'a str,
    pub members: Option<&'a [MemberRef]>,
    pub groups: Option<&'a [GroupRef]>,
}

/// Names the document itself writes; a stored attribute never carries them (see
/// [`Principal::attributes`]), and skipping them keeps the document free of duplicate keys
/// even if one did.
fn written_by_document(key: &str) -> bool {
    matches!(key, "schemas" | "id" | "meta" | "members" | "groups")
}

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let principal = self.principal;
        let resource_type: &ResourceTypeDef = principal.kind.resource_type();
        let mut document = serializer.serialize_map(None)?;
        document.serialize_entry("schemas", &Schemas(principal, resource_type))?;
        document.serialize_entry("id", principal.id.as_str())?;
        for (key, value) in &principal.attributes {
            if !written_by_document(key) {
                document.serialize_entry(key, value)?;
            }
        }
        if let Some(members) = self.members {
            let entries = members.iter().map(|member| Reference {
                value: member.id.as_str(),
                display: member.display.as_deref(),
                kind: member.kind.as_str(),
                location: Location(self.base_url, member.kind, &member.id),
            });
            document.serialize_entry("members", &Entries(entries))?;
        }
        if let Some(groups) = self.groups {
            let entries = groups.iter().map(|group| Reference {
                value: group.id.as_str(),
                display: group.display.as_deref(),
                kind: if group.direct { "direct" } else { "indirect" },
                location: Location(self.base_url, PrincipalKind::Group, &group.id),
            });
            document.serialize_entry("groups", &Entries(entries))?;
        }
        document.serialize_entry(
            "meta",
            &Meta {
                resource_type: resource_type.name,
                created: principal.created.to_rfc3339(),
                last_modified: principal.last_modified.to_rfc3339(),
                location: Location(self.base_url, principal.kind, &principal.id),
                version: principal.etag(),
            },
        )?;
        document.end()
    }
}

/// The core schema, then each extension the principal has attributes under.
struct Schemas<'a>(&'a Principal, &'a ResourceTypeDef);

impl Serialize for Schemas<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Schemas(principal, resource_type) = *self;
        let mut schemas = serializer.serialize_seq(None)?;
        schemas.serialize_element(resource_type.schema.id)?;
        for (extension, _) in resource_type.extensions {
            if principal.attributes.contains_key(extension.id) {
                schemas.serialize_element(extension.id)?;
            }
        }
        schemas.end()
    }
}

/// A resource's absolute URL, written without building the string first.
struct Location<'a>(&'a str, PrincipalKind, &'a PrincipalId);

impl Serialize for Location<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Location(base_url, kind, id) = *self;
        serializer.collect_str(&format_args!(
            "{base_url}{}/{id}",
            kind.resource_type().endpoint
        ))
    }
}

/// A `members` or `groups` entry.
struct Reference<'a> {
    value: &'a str,
    display: Option<&'a str>,
    kind: &'a str,
    location: Location<'a>,
}

impl Serialize for Reference<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entry = serializer.serialize_map(None)?;
        entry.serialize_entry("value", self.value)?;
        if let Some(display) = self.display {
            entry.serialize_entry("display", display)?;
        }
        entry.serialize_entry("type", self.kind)?;
        entry.serialize_entry("$ref", &self.location)?;
        entry.end()
    }
}

/// A JSON array of the iterator's items (cloned, since serializing takes `&self`).
struct Entries<I>(I);

impl<I: Iterator + Clone> Serialize for Entries<I>
where
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.clone())
    }
}

struct Meta<'a> {
    resource_type: &'a str,
    created: String,
    last_modified: String,
    location: Location<'a>,
    version: String,
}

impl Serialize for Meta<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut meta = serializer.serialize_map(Some(5))?;
        meta.serialize_entry("resourceType", self.resource_type)?;
        meta.serialize_entry("created", &self.created)?;
        meta.serialize_entry("lastModified", &self.last_modified)?;
        meta.serialize_entry("location", &self.location)?;
        meta.serialize_entry("version", &self.version)?;
        meta.end()
    }
}

impl Document<'_> {
    /// The document as a `Map`, for callers that edit it before sending it.
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // The impl above always writes a map of strings and JSON values, which
            // `to_value` cannot refuse.
            _ => Map::new(),
        }
    }
}

/// Renders a principal as a `Map`: [`Document::to_map`].
pub fn render(
    principal: &Principal,
    base_url: &str,
    members: Option<&[MemberRef]>,
    groups: Option<&[GroupRef]>,
) -> Map<String, Value> {
    Document {
        principal,
        base_url,
        members,
        groups,
    }
    .to_map()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::clock::Timestamp;
    use crate::schema::ENTERPRISE_USER_SCHEMA;
    use serde_json::json;

    fn principal(kind: PrincipalKind, attributes: Value) -> Principal {
        Principal {
            id: PrincipalId::new("p-1"),
            kind,
            attributes: attributes.as_object().unwrap().clone(),
            password_hash: None,
            system: false,
            created: Timestamp::from_micros(1_700_000_000_123_000),
            last_modified: Timestamp::from_micros(1_700_000_001_000_000),
            version: 3,
        }
    }

    #[test]
    fn a_user_document_has_schemas_id_attributes_groups_then_meta() {
        let user = principal(
            PrincipalKind::User,
            json!({
                "userName": "ada@example.com",
                "name": {"givenName": "Ada \"the first\""},
                ENTERPRISE_USER_SCHEMA: {"department": "R&D"},
            }),
        );
        let groups = [
            GroupRef {
                id: PrincipalId::new("g-1"),
                display: Some("Analysts".into()),
                direct: true,
            },
            GroupRef {
                id: PrincipalId::new("g-2"),
                display: None,
                direct: false,
            },
        ];
        let document = Document {
            principal: &user,
            base_url: "http://h/scim/v2",
            members: None,
            groups: Some(&groups),
        };
        let expected = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER_SCHEMA],
            "id": "p-1",
            "userName": "ada@example.com",
            "name": {"givenName": "Ada \"the first\""},
            ENTERPRISE_USER_SCHEMA: {"department": "R&D"},
            "groups": [
                {"value": "g-1", "display": "Analysts", "type": "direct", "$ref": "http://h/scim/v2/Groups/g-1"},
                {"value": "g-2", "type": "indirect", "$ref": "http://h/scim/v2/Groups/g-2"},
            ],
            "meta": {
                "resourceType": "User",
                "created": "2023-11-14T22:13:20.123Z",
                "lastModified": "2023-11-14T22:13:21.000Z",
                "location": "http://h/scim/v2/Users/p-1",
                "version": "W/\"3\"",
            },
        });
        // Written straight to bytes and built as a map, the document is the same, key order
        // included.
        let written = serde_json::to_string(&document).unwrap();
        assert_eq!(written, serde_json::to_string(&expected).unwrap());
        assert_eq!(Value::Object(document.to_map()), expected);
    }

    #[test]
    fn a_group_document_lists_members_and_skips_names_the_document_writes() {
        // Stored attributes never carry these names; if one did, the document's own value
        // wins and no key appears twice.
        let group = principal(
            PrincipalKind::Group,
            json!({"displayName": "Analysts", "id": "forged", "meta": {}, "schemas": []}),
        );
        let members = [MemberRef {
            id: PrincipalId::new("u-1"),
            kind: PrincipalKind::User,
            display: Some("Ada".into()),
        }];
        let document = Document {
            principal: &group,
            base_url: "http://h/scim/v2",
            members: Some(&members),
            groups: None,
        };
        let written = serde_json::to_string(&document).unwrap();
        assert_eq!(written.matches("\"id\"").count(), 1, "{written}");
        let parsed: Value = serde_json::from_str(&written).unwrap();
        assert_eq!(parsed["id"], "p-1");
        assert_eq!(
            parsed["members"],
            json!([{"value": "u-1", "display": "Ada", "type": "User", "$ref": "http://h/scim/v2/Users/u-1"}])
        );
        assert_eq!(parsed["meta"]["resourceType"], "Group");
        assert_eq!(written, serde_json::to_string(&document.to_map()).unwrap());
    }
}
