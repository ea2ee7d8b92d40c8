//! `attributes` and `excludedAttributes` (RFC 7644 section 3.9): which attributes a response
//! carries. Also tells handlers whether the costly `members` and `groups` need loading at all.

use crate::error::ScimResult;
use crate::paths::{parse_and_resolve, AttributeHome, ResolvedTarget};
use crate::schema::{ResourceTypeDef, Returned};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default)]
pub struct Projection {
    /// When set, only these (plus attributes returned always) are returned.
    only: Option<Vec<ResolvedTarget>>,
    excluded: Vec<ResolvedTarget>,
}

fn parse_list(resource_type: &'static ResourceTypeDef, text: Option<&str>) -> Vec<ResolvedTarget> {
    // Unknown names are skipped: a client asking for an attribute this server lacks simply does
    // not get it, which is what it would get from a resource that has no value for it.
    text.into_iter()
        .flat_map(|text| text.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .filter_map(|name| parse_and_resolve(resource_type, name).ok())
        .collect()
}

impl Projection {
    pub fn parse(
        resource_type: &'static ResourceTypeDef,
        attributes: Option<&str>,
        excluded_attributes: Option<&str>,
    ) -> ScimResult<Self> {
        let only = attributes
            .filter(|text| !text.trim().is_empty())
            .map(|text| parse_list(resource_type, Some(text)));
        Ok(Projection {
            only,
            excluded: parse_list(resource_type, excluded_attributes),
        })
    }

    /// A projection that keeps everything returned by default.
    pub fn everything() -> Self {
        Projection::default()
    }

    /// Whether this projection leaves every document as rendered (no `attributes`, no
    /// `excludedAttributes`): [`Projection::apply`] would change nothing.
    pub fn keeps_everything(&self) -> bool {
        self.only.is_none() && self.excluded.is_empty()
    }

    /// Whether the top-level core attribute `name` will appear in the response.
    pub fn includes(&self, name: &str) -> bool {
        let names = |target: &ResolvedTarget| match target {
            ResolvedTarget::Attribute(attribute) => {
                !matches!(attribute.home, AttributeHome::Extension(_))
                    && attribute.attribute.name == name
            }
            ResolvedTarget::Extension(_) => false,
        };
        if let Some(only) = &self.only {
            return only.iter().any(names);
        }
        !self.excluded.iter().any(|target| {
            names(target)
                && matches!(target, ResolvedTarget::Attribute(a) if a.sub_attribute.is_none())
        })
    }

    /// Whether `attributes` names the sub-attribute `name.sub` (or the whole `name`) explicitly,
    /// which is what makes a `returned: request` sub-attribute appear.
    pub fn requests(&self, name: &str, sub: &str) -> bool {
        self.only.as_ref().is_some_and(|only| {
            only.iter().any(|target| match target {
                ResolvedTarget::Attribute(attribute) => {
                    attribute.attribute.name == name
                        && attribute.sub_attribute.is_none_or(|s| s.name == sub)
                }
                ResolvedTarget::Extension(_) => false,
            })
        })
    }

    /// Applies the projection to a rendered document.
    pub fn apply(&self, document: &mut Map<String, Value>) {
        if let Some(only) = &self.only {
            let mut kept = Map::new();
            for (key, value) in document.iter() {
                if key == "schemas" || key == "id" {
                    kept.insert(key.clone(), value.clone());
                    continue;
                }
                if let Some(selected) = select(key, value, only) {
                    kept.insert(key.clone(), selected);
                }
            }
            *document = kept;
        }
        for target in &self.excluded {
            remove(document, target);
        }
    }
}

/// What of `document[key]` the requested targets keep, if anything.
fn select(key: &str, value: &Value, only: &[ResolvedTarget]) -> Option<Value> {
    let mut whole = false;
    let mut subs: Vec<&str> = Vec::new();
    let mut extension_attributes: Vec<(&str, Option<&str>)> = Vec::new();
    for target in only {
        match target {
            ResolvedTarget::Extension(schema) if schema.id == key => whole = true,
            ResolvedTarget::Extension(_) => {}
            ResolvedTarget::Attribute(attribute) => match attribute.home {
                AttributeHome::Extension(urn) if urn == key => extension_attributes.push((
                    attribute.attribute.name,
                    attribute.sub_attribute.map(|s| s.name),
                )),
                AttributeHome::Extension(_) => {}
                _ if attribute.attribute.name == key => match attribute.sub_attribute {
                    None => whole = true,
                    Some(sub) => subs.push(sub.name),
                },
                _ => {}
            },
        }
    }
    if whole {
        return Some(value.clone());
    }
    if !extension_attributes.is_empty() {
        let object = value.as_object()?;
        let mut kept = Map::new();
        for (name, sub) in extension_attributes {
            let Some(inner) = object.get(name) else {
                continue;
            };
            match sub {
                None => {
                    kept.insert(name.to_string(), inner.clone());
                }
                Some(sub) => {
                    if let Some(selected) = keep_subs(inner, &[sub]) {
                        kept.insert(name.to_string(), selected);
                    }
                }
            }
        }
        return (!kept.is_empty()).then_some(Value::Object(kept));
    }
    if !subs.is_empty() {
        return keep_subs(value, &subs);
    }
    None
}

fn keep_subs(value: &Value, subs: &[&str]) -> Option<Value> {
    let keep_object = |object: &Map<String, Value>| -> Map<String, Value> {
        object
            .iter()
            .filter(|(key, _)| subs.contains(&key.as_str()))
            .map(|(key, inner)| (key.clone(), inner.clone()))
            .collect()
    };
    match value {
        Value::Object(object) => {
            let kept = keep_object(object);
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .iter()
                .filter_map(Value::as_object)
                .map(keep_object)
                .filter(|object| !object.is_empty())
                .map(Value::Object)
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        _ => None,
    }
}

fn remove(document: &mut Map<String, Value>, target: &ResolvedTarget) {
    match target {
        ResolvedTarget::Extension(schema) => {
            document.remove(schema.id);
        }
        ResolvedTarget::Attribute(attribute) => {
            if attribute.leaf().returned == Returned::Always
                || attribute.attribute.returned == Returned::Always
            {
                return;
            }
            let container = match attribute.home {
                AttributeHome::Extension(urn) => match document.get_mut(urn) {
                    Some(Value::Object(object)) => object,
                    _ => return,
                },
                _ => document,
            };
            match attribute.sub_attribute {
                None => {
                    container.remove(attribute.attribute.name);
                }
                Some(sub) => match container.get_mut(attribute.attribute.name) {
                    Some(Value::Object(object)) => {
                        object.remove(sub.name);
                    }
                    Some(Value::Array(items)) => {
                        for item in items {
                            if let Value::Object(object) = item {
                                object.remove(sub.name);
                            }
                        }
                    }
                    _ => {}
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::schema::{GROUP_RESOURCE, USER_RESOURCE};
    use serde_json::json;

    fn document() -> Map<String, Value> {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "1",
            "userName": "a",
            "name": {"givenName": "A", "familyName": "B"},
            "emails": [{"value": "a@x", "type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D", "costCenter": "C"},
            "meta": {"resourceType": "User"}
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    #[test]
    fn attributes_keep_only_what_is_named_plus_id_and_schemas() {
        let projection = Projection::parse(
            &USER_RESOURCE,
            Some("userName,name.givenName,emails.value"),
            None,
        )
        .unwrap();
        let mut doc = document();
        projection.apply(&mut doc);
        assert_eq!(
            Value::Object(doc),
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": "1",
                "userName": "a",
                "name": {"givenName": "A"},
                "emails": [{"value": "a@x"}]
            })
        );
    }

    #[test]
    fn excluded_attributes_drop_what_is_named_but_never_id() {
        let projection = Projection::parse(
            &USER_RESOURCE,
            None,
            Some("name,id,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
        )
        .unwrap();
        let mut doc = document();
        projection.apply(&mut doc);
        assert!(doc.contains_key("id"));
        assert!(!doc.contains_key("name"));
        assert_eq!(
            doc["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            json!({"costCenter": "C"})
        );
    }

    #[test]
    fn excluding_members_tells_the_caller_not_to_load_them() {
        let projection = Projection::parse(&GROUP_RESOURCE, None, Some("members")).unwrap();
        assert!(!projection.includes("members"));
        assert!(Projection::everything().includes("members"));
        let only_name = Projection::parse(&GROUP_RESOURCE, Some("displayName"), None).unwrap();
        assert!(!only_name.includes("members"));
    }

    #[test]
    fn extension_attributes_can_be_selected_by_urn() {
        let projection = Projection::parse(
            &USER_RESOURCE,
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
            None,
        )
        .unwrap();
        let mut doc = document();
        projection.apply(&mut doc);
        assert_eq!(
            doc["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            json!({"department": "D"})
        );
    }
}
