//! Principals (users, groups, service principals) and the parsing of client documents into
//! their canonical, validated form.
//!
//! A stored principal keeps its attributes as a canonical document: attribute names as the
//! schema spells them, values coerced to their declared types, read-only attributes removed,
//! extension attributes nested under their URN. Group membership is not part of the document:
//! it lives in its own relation so that changing one member never rewrites the member list.

use crate::clock::Timestamp;
use crate::error::{ScimError, ScimResult};
use crate::ids::PrincipalId;
use crate::names;
use crate::schema::{
    AttributeDef, AttributeType, Mutability, PrincipalKind, ResourceTypeDef, COMMON_ATTRIBUTES,
    MAX_RESOURCE_BYTES,
};
use serde_json::{Map, Value};

/// A principal as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub id: PrincipalId,
    pub kind: PrincipalKind,
    /// The canonical document, without `id`, `meta`, `schemas`, `members`, `groups` or `password`.
    pub attributes: Map<String, Value>,
    /// A PHC-format password hash, when a password was ever set.
    pub password_hash: Option<String>,
    /// True for the built-in `admins` and `users` groups, which cannot be deleted or renamed.
    pub system: bool,
    pub created: Timestamp,
    pub last_modified: Timestamp,
    /// Increases by one on every change; rendered as the weak ETag `W/"<version>"`.
    pub version: u64,
}

impl Principal {
    pub fn etag(&self) -> String {
        etag_for(self.version)
    }

    pub fn string_attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(Value::as_str)
    }

    /// Whether the principal may act. Groups are always active.
    pub fn is_active(&self) -> bool {
        self.attributes
            .get("active")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }

    /// The name shown for this principal as a member or in a `groups` entry.
    pub fn display_name(&self) -> Option<&str> {
        self.string_attribute("displayName")
            .or_else(|| self.string_attribute("userName"))
            .or_else(|| self.string_attribute("applicationId"))
    }

    /// The values storage indexes, derived from the document so they can never disagree with it.
    pub fn index_keys(&self) -> IndexKeys {
        let emails = self
            .attributes
            .get("emails")
            .and_then(Value::as_array)
            .map(|emails| {
                emails
                    .iter()
                    .filter_map(|email| {
                        let value = email.get("value")?.as_str()?.to_string();
                        Some(EmailKey {
                            value,
                            kind: email
                                .get("type")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                            primary: email
                                .get("primary")
                                .and_then(Value::as_bool)
                                .unwrap_or(false),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        IndexKeys {
            user_name: self.string_attribute("userName").map(str::to_string),
            display_name: self.string_attribute("displayName").map(str::to_string),
            external_id: self.string_attribute("externalId").map(str::to_string),
            application_id: self.string_attribute("applicationId").map(str::to_string),
            active: match self.kind {
                PrincipalKind::Group => None,
                _ => Some(self.is_active()),
            },
            emails,
        }
    }
}

pub fn etag_for(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// Parses an `If-Match`/`If-None-Match` entity tag (weak or strong) into a version.
pub fn parse_etag(tag: &str) -> Option<u64> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.trim_matches('"').parse().ok()
}

/// The indexed columns of a principal. Text comparisons that ignore case use the lower-cased
/// copies storage derives from these.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexKeys {
    pub user_name: Option<String>,
    pub display_name: Option<String>,
    pub external_id: Option<String>,
    pub application_id: Option<String>,
    pub active: Option<bool>,
    pub emails: Vec<EmailKey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailKey {
    pub value: String,
    pub kind: Option<String>,
    pub primary: bool,
}

/// A member named in a write: its id and, when the client said, its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub id: PrincipalId,
    pub kind_hint: Option<PrincipalKind>,
}

/// A client document, validated and split into what is stored where.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedResource {
    pub attributes: Map<String, Value>,
    /// A cleartext password to hash; never stored as given.
    pub password: Option<String>,
    /// For groups: the member list, when the document carried `members`.
    pub members: Option<Vec<MemberValue>>,
}

/// Lower-cases the way every case-insensitive comparison in Scimitar does.
pub fn fold_case(text: &str) -> String {
    text.to_lowercase()
}

/// Parses a full resource document (POST or PUT body) for `resource_type`.
///
/// Unknown attributes and unknown extension URNs are ignored, as identity providers send
/// attributes a server may not support (RFC 7644 section 3.3 lets the server ignore them).
/// Read-only attributes (`id`, `meta`, `groups`, ...) are ignored too, so that Okta's GET-then-PUT
/// round trip works. Nulls and empty arrays mean "unassigned".
pub fn parse_resource(
    resource_type: &'static ResourceTypeDef,
    body: &Value,
) -> ScimResult<ParsedResource> {
    let object = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the request body must be a JSON object"))?;
    check_schemas(object)?;
    let mut attributes = Map::new();
    let mut password = None;
    let mut members = None;
    for (key, value) in object {
        if let Some(extension) = resource_type.extension(key) {
            if value.is_null() {
                continue;
            }
            let inner = value.as_object().ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "'{key}' must be an object of extension attributes"
                ))
            })?;
            let canonical = canonical_object(extension.attributes, inner, extension.id)?;
            if !canonical.is_empty() {
                attributes.insert(extension.id.to_string(), Value::Object(canonical));
            }
            continue;
        }
        let definition = resource_type
            .schema
            .attribute(key)
            .or_else(|| common_writable(key));
        let Some(definition) = definition else {
            continue;
        };
        if definition.name == "members" && resource_type.kind == PrincipalKind::Group {
            members = Some(parse_members(value)?);
            continue;
        }
        if definition.mutability == Mutability::ReadOnly {
            continue;
        }
        let Some(canonical) = canonical_value(definition, value, definition.name)? else {
            continue;
        };
        if definition.name == "password" {
            password = canonical.as_str().map(str::to_string);
            continue;
        }
        attributes.insert(definition.name.to_string(), canonical);
    }
    finish_document(resource_type, &mut attributes)?;
    check_limits(resource_type, &attributes)?;
    Ok(ParsedResource {
        attributes,
        password,
        members,
    })
}

/// Refuses a `schemas` that is not an array of URN strings. Its absence is tolerated (identity
/// providers omit it), but a string or number where RFC 7643 section 3 has an array is a
/// client mistake, not something to ignore.
pub fn check_schemas(object: &Map<String, Value>) -> ScimResult<()> {
    let schemas = object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("schemas"))
        .map(|(_, value)| value);
    match schemas {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err(ScimError::invalid_value(
            "'schemas' must be an array of schema URNs (strings)",
        )),
    }
}

/// The last step of every write's document, after a POST or PUT body is parsed or a PATCH is
/// applied: names are put in NFC and checked ([`names`]), then the required attributes.
pub fn finish_document(
    resource_type: &'static ResourceTypeDef,
    attributes: &mut Map<String, Value>,
) -> ScimResult<()> {
    for name in names::naming_attributes(resource_type.kind) {
        if let Some(Value::String(text)) = attributes.get_mut(*name) {
            names::check_name(name, text)?;
            if let std::borrow::Cow::Owned(normal) = names::normalise(text) {
                *text = normal;
            }
        }
    }
    check_required(resource_type, attributes)
}

/// Checks a resource's canonical attributes against the limits of [`crate::schema`]: the
/// length of every text value, the number of values of each multi-valued attribute, and the
/// size of the whole. Called on every document a write would store (a POST or PUT body, the
/// result of a PATCH), so nothing over a limit is stored; the error names the attribute.
pub fn check_limits(
    resource_type: &'static ResourceTypeDef,
    attributes: &Map<String, Value>,
) -> ScimResult<()> {
    check_changed_limits(resource_type, &Map::new(), attributes)
}

/// [`check_limits`] for a document that replaces `before` (a PATCH's result): only the
/// attributes that differ from `before` are checked, and the size only when it grew, so a
/// resource stored before the limits existed can still be patched in its other attributes.
pub fn check_changed_limits(
    resource_type: &'static ResourceTypeDef,
    before: &Map<String, Value>,
    attributes: &Map<String, Value>,
) -> ScimResult<()> {
    for (key, value) in attributes {
        if before.get(key) == Some(value) {
            continue;
        }
        if let Some(extension) = resource_type.extension(key) {
            if let Value::Object(inner) = value {
                let earlier = before.get(key).and_then(Value::as_object);
                for (name, inner_value) in inner {
                    if earlier.and_then(|earlier| earlier.get(name)) == Some(inner_value) {
                        continue;
                    }
                    let single = Map::from_iter([(name.clone(), inner_value.clone())]);
                    check_object_limits(extension.attributes, &single, key)?;
                }
            }
            continue;
        }
        let definition = resource_type
            .schema
            .attribute(key)
            .or_else(|| common_writable(key));
        if let Some(definition) = definition {
            check_value_limits(definition, value, definition.name)?;
        }
    }
    let size_of = |document: &Map<String, Value>| {
        serde_json::to_string(document)
            .map(|text| text.len())
            .unwrap_or(usize::MAX)
    };
    let size = size_of(attributes);
    if size > MAX_RESOURCE_BYTES && (before.is_empty() || size > size_of(before)) {
        return Err(ScimError::invalid_value(format!(
            "the {} is {size} bytes of attributes; a resource may hold at most \
             {MAX_RESOURCE_BYTES}",
            resource_type.name
        )));
    }
    Ok(())
}

fn check_object_limits(
    definitions: &'static [AttributeDef],
    object: &Map<String, Value>,
    context: &str,
) -> ScimResult<()> {
    for (key, value) in object {
        if let Some(definition) = definitions.iter().find(|definition| definition.name == key) {
            check_value_limits(definition, value, &format!("{context}.{}", definition.name))?;
        }
    }
    Ok(())
}

fn check_value_limits(
    definition: &'static AttributeDef,
    value: &Value,
    name: &str,
) -> ScimResult<()> {
    match value {
        Value::Array(items) => {
            check_value_count(definition, value, name)?;
            for item in items {
                check_value_limits(definition, item, name)?;
            }
        }
        Value::Object(object) => check_object_limits(definition.sub_attributes, object, name)?,
        Value::String(text) => {
            if let Some(limit) = definition.max_characters() {
                // Counting stops one past the limit, so a huge value costs no more to refuse.
                if text.chars().take(limit + 1).count() > limit {
                    return Err(ScimError::invalid_value(format!(
                        "'{name}' is longer than {limit} characters"
                    )));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Refuses more values than a multi-valued attribute may hold, before they are canonicalised
/// one by one (which compares each with those before it).
pub fn check_value_count(definition: &AttributeDef, value: &Value, name: &str) -> ScimResult<()> {
    if let (Value::Array(items), Some(limit)) = (value, definition.max_values()) {
        if items.len() > limit {
            return Err(ScimError::invalid_value(format!(
                "'{name}' has {} values; it may hold at most {limit}",
                items.len()
            )));
        }
    }
    Ok(())
}

/// `externalId` is the one common attribute a client writes.
fn common_writable(key: &str) -> Option<&'static AttributeDef> {
    COMMON_ATTRIBUTES.iter().find(|attribute| {
        attribute.name.eq_ignore_ascii_case(key) && attribute.name == "externalId"
    })
}

/// Checks that the attributes a resource type requires are present.
pub fn check_required(
    resource_type: &'static ResourceTypeDef,
    attributes: &Map<String, Value>,
) -> ScimResult<()> {
    for definition in resource_type.schema.attributes {
        if definition.required && !attributes.contains_key(definition.name) {
            return Err(ScimError::invalid_value(format!(
                "'{}' is required for a {}",
                definition.name, resource_type.name
            )));
        }
    }
    Ok(())
}

/// Reads a `members` value: an array of `{"value": id, "type"?, "$ref"?}` (or one such object).
pub fn parse_members(value: &Value) -> ScimResult<Vec<MemberValue>> {
    let items: Vec<&Value> = match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![value],
        _ => {
            return Err(ScimError::invalid_value(
                "'members' must be an array of objects with a 'value'",
            ))
        }
    };
    let mut members = Vec::with_capacity(items.len());
    for item in items {
        let object = item.as_object().ok_or_else(|| {
            ScimError::invalid_value("each member must be an object with a 'value'")
        })?;
        let id = object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case("value"))
            .and_then(|(_, value)| match value {
                Value::String(text) => Some(text.trim().to_string()),
                Value::Number(number) => Some(number.to_string()),
                _ => None,
            })
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                ScimError::invalid_value("each member needs a non-empty 'value' (the member's id)")
            })?;
        let kind_hint = object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case("type"))
            .and_then(|(_, value)| value.as_str())
            .and_then(PrincipalKind::parse)
            .or_else(|| {
                object
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(kind_from_reference)
            });
        members.push(MemberValue {
            id: PrincipalId::new(id),
            kind_hint,
        });
    }
    Ok(members)
}

fn kind_from_reference(reference: &str) -> Option<PrincipalKind> {
    let mut segments = reference.rsplit('/');
    segments.next()?;
    segments.next().and_then(PrincipalKind::from_endpoint)
}

/// Canonicalises an object of attributes defined by `definitions`.
pub fn canonical_object(
    definitions: &'static [AttributeDef],
    object: &Map<String, Value>,
    context: &str,
) -> ScimResult<Map<String, Value>> {
    let mut canonical = Map::new();
    for (key, value) in object {
        let Some(definition) = definitions
            .iter()
            .find(|definition| definition.name.eq_ignore_ascii_case(key))
        else {
            continue;
        };
        if definition.mutability == Mutability::ReadOnly {
            continue;
        }
        let name = format!("{context}.{}", definition.name);
        if let Some(value) = canonical_value(definition, value, &name)? {
            canonical.insert(definition.name.to_string(), value);
        }
    }
    Ok(canonical)
}

/// Coerces one attribute value to its declared type. Returns `None` for "unassigned" (null, an
/// empty array, an empty complex value).
pub fn canonical_value(
    definition: &'static AttributeDef,
    value: &Value,
    name: &str,
) -> ScimResult<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    check_value_count(definition, value, name)?;
    if definition.multi_valued {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        let mut canonical_items = Vec::with_capacity(items.len());
        for item in items {
            if let Some(item) = canonical_single(definition, item, name)? {
                if !canonical_items.contains(&item) {
                    canonical_items.push(item);
                }
            }
        }
        return Ok(if canonical_items.is_empty() {
            None
        } else {
            Some(Value::Array(canonical_items))
        });
    }
    // Entra wraps single-valued complex attributes (`manager`) and booleans in a one-element
    // array; a string in an array (`userName: ["a"]`) is a client's mistake.
    if let Value::Array(items) = value {
        let unwraps = matches!(
            definition.kind,
            AttributeType::Complex | AttributeType::Boolean
        );
        return match items.as_slice() {
            [] => Ok(None),
            [only] if unwraps => canonical_single(definition, only, name),
            [_] => Err(ScimError::invalid_value(format!(
                "'{name}' is single-valued: a {} was expected, not an array",
                definition.kind.as_str()
            ))),
            _ => Err(ScimError::invalid_value(format!(
                "'{name}' is single-valued but an array of {} values was given",
                items.len()
            ))),
        };
    }
    canonical_single(definition, value, name)
}

/// Coerces one value (one element of a multi-valued attribute, or a single-valued attribute).
pub fn canonical_single(
    definition: &'static AttributeDef,
    value: &Value,
    name: &str,
) -> ScimResult<Option<Value>> {
    let wrong_type = || {
        ScimError::invalid_value(format!(
            "'{name}' must be a {}{}",
            definition.kind.as_str(),
            if definition.multi_valued {
                " (or an array of them)"
            } else {
                ""
            }
        ))
    };
    Ok(Some(match definition.kind {
        AttributeType::Complex => {
            let wrapped;
            let object = match value {
                Value::Object(object) => object,
                // An empty string clears a complex value: Microsoft's validator removes a
                // manager by replacing it with "".
                Value::String(text) if text.is_empty() => return Ok(None),
                // A bare value stands for `{"value": ...}`: Entra sends `manager` as a plain id.
                Value::String(_)
                    if !definition.multi_valued && definition.sub_attribute("value").is_some() =>
                {
                    wrapped = Map::from_iter([("value".to_string(), value.clone())]);
                    &wrapped
                }
                _ => return Err(wrong_type()),
            };
            let canonical = canonical_object(definition.sub_attributes, object, name)?;
            if canonical.is_empty() {
                return Ok(None);
            }
            Value::Object(canonical)
        }
        // A number is refused rather than turned into text: `userName: 123` is a client's
        // mistake, and storing "123" would hide it.
        AttributeType::String | AttributeType::Reference | AttributeType::Binary => match value {
            Value::String(text) => {
                names::check_text(name, text)?;
                Value::String(text.clone())
            }
            _ => return Err(wrong_type()),
        },
        AttributeType::Boolean => Value::Bool(coerce_bool(value).ok_or_else(wrong_type)?),
        AttributeType::Integer => match value {
            Value::Number(number) if number.is_i64() || number.is_u64() => value.clone(),
            Value::String(text) => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| wrong_type())?,
            _ => return Err(wrong_type()),
        },
        AttributeType::Decimal => match value {
            Value::Number(_) => value.clone(),
            Value::String(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(wrong_type)?,
            _ => return Err(wrong_type()),
        },
        AttributeType::DateTime => {
            let text = value.as_str().ok_or_else(wrong_type)?;
            let moment = Timestamp::parse_rfc3339(text).ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "'{name}' must be an RFC 3339 date-time, got '{text}'"
                ))
            })?;
            Value::String(moment.to_rfc3339())
        }
    }))
}

/// Booleans as identity providers send them: `true`, `"True"`, `"false"`, or a one-element
/// array of `{"value": "False"}` (seen from Entra).
pub fn coerce_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        Value::Array(items) if items.len() == 1 => items.first().and_then(coerce_bool),
        Value::Object(object) => object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case("value"))
            .and_then(|(_, inner)| coerce_bool(inner)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::schema::{ENTERPRISE_USER_SCHEMA, GROUP_RESOURCE, USER_RESOURCE};
    use serde_json::json;

    #[test]
    fn attribute_names_are_matched_case_insensitively_and_stored_canonically() {
        let parsed = parse_resource(
            &USER_RESOURCE,
            &json!({"USERNAME": "bjensen", "Name": {"GivenName": "Barbara"}, "ACTIVE": "True"}),
        )
        .unwrap();
        assert_eq!(
            Value::Object(parsed.attributes),
            json!({"userName": "bjensen", "name": {"givenName": "Barbara"}, "active": true})
        );
    }

    #[test]
    fn read_only_and_unknown_attributes_are_ignored() {
        let parsed = parse_resource(
            &USER_RESOURCE,
            &json!({"userName": "a", "id": "x", "meta": {"resourceType": "User"}, "groups": [], "shoeSize": 44}),
        )
        .unwrap();
        assert_eq!(Value::Object(parsed.attributes), json!({"userName": "a"}));
    }

    #[test]
    fn a_missing_user_name_is_an_invalid_value() {
        let error = parse_resource(&USER_RESOURCE, &json!({"displayName": "x"})).unwrap_err();
        assert_eq!(error.code(), "invalidValue");
    }

    #[test]
    fn passwords_are_split_out_of_the_document() {
        let parsed = parse_resource(
            &USER_RESOURCE,
            &json!({"userName": "a", "password": "s3cret"}),
        )
        .unwrap();
        assert_eq!(parsed.password.as_deref(), Some("s3cret"));
        assert!(!parsed.attributes.contains_key("password"));
    }

    #[test]
    fn extension_attributes_nest_under_their_urn_and_manager_arrays_unwrap() {
        let parsed = parse_resource(
            &USER_RESOURCE,
            &json!({
                "userName": "a",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {
                    "employeeNumber": "42",
                    "manager": [{"value": "26118915-6090-4610-87e4-49d8ca9f808d"}]
                }
            }),
        )
        .unwrap();
        assert_eq!(
            parsed.attributes[ENTERPRISE_USER_SCHEMA],
            json!({"employeeNumber": "42", "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}})
        );
    }

    #[test]
    fn nulls_mean_unassigned_as_entra_sends_them() {
        let parsed = parse_resource(
            &USER_RESOURCE,
            &json!({"userName": "a", "addresses": null, "title": null, "emails": []}),
        )
        .unwrap();
        assert_eq!(Value::Object(parsed.attributes), json!({"userName": "a"}));
    }

    #[test]
    fn a_bare_manager_id_stands_for_its_value_and_an_empty_string_clears_it() {
        let parsed = parse_resource(
            &USER_RESOURCE,
            &json!({"userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": "42"}}),
        )
        .unwrap();
        assert_eq!(
            parsed.attributes[ENTERPRISE_USER_SCHEMA],
            json!({"manager": {"value": "42"}})
        );
        let cleared =
            parse_resource(&USER_RESOURCE, &json!({"userName": "a", "name": ""})).unwrap();
        assert!(!cleared.attributes.contains_key("name"));
    }

    #[test]
    fn a_wrongly_typed_value_is_an_invalid_value() {
        let error = parse_resource(&USER_RESOURCE, &json!({"userName": "a", "active": "maybe"}))
            .unwrap_err();
        assert_eq!(error.code(), "invalidValue");
        let error = parse_resource(&USER_RESOURCE, &json!({"userName": {"x": 1}})).unwrap_err();
        assert_eq!(error.code(), "invalidValue");
    }

    #[test]
    fn group_members_are_parsed_with_their_type_from_type_or_ref() {
        let parsed = parse_resource(
            &GROUP_RESOURCE,
            &json!({"displayName": "g", "members": [
                {"value": "1", "type": "User"},
                {"value": "2", "$ref": "https://x/scim/v2/Groups/2"},
                {"value": "3"}
            ]}),
        )
        .unwrap();
        let members = parsed.members.unwrap();
        assert_eq!(members[0].kind_hint, Some(PrincipalKind::User));
        assert_eq!(members[1].kind_hint, Some(PrincipalKind::Group));
        assert_eq!(members[2].kind_hint, None);
    }

    #[test]
    fn entra_style_booleans_are_accepted() {
        for (input, expected) in [
            (json!("False"), false),
            (json!("true"), true),
            (json!([{"value": "False"}]), false),
        ] {
            assert_eq!(coerce_bool(&input), Some(expected));
        }
    }

    #[test]
    fn etags_parse_weak_and_strong() {
        assert_eq!(parse_etag("W/\"7\""), Some(7));
        assert_eq!(parse_etag("\"7\""), Some(7));
        assert_eq!(parse_etag("*"), None);
    }
}
