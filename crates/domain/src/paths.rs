//! Resolution of attribute paths (as the client wrote them) to the schema attributes they name.
//!
//! Attribute names are case-insensitive (RFC 7643 section 2.1); after resolution every layer
//! works with the canonical names from [`crate::schema`].

use crate::error::{ScimError, ScimResult};
use crate::schema::{
    AttributeDef, ResourceTypeDef, SchemaDef, COMMON_ATTRIBUTES, SCHEMAS_ATTRIBUTE,
};
use scimitar_scim::AttrPath;

/// Where an attribute lives in a resource document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeHome {
    /// `id`, `externalId`, `meta`, `schemas`: top level, defined by RFC 7643 section 3.1.
    Common,
    /// The resource type's core schema: top level.
    Core,
    /// An extension schema: nested under the extension's URN.
    Extension(&'static str),
}

/// An attribute path resolved against a resource type.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedAttr {
    pub home: AttributeHome,
    pub attribute: &'static AttributeDef,
    pub sub_attribute: Option<&'static AttributeDef>,
}

impl ResolvedAttr {
    /// The definition of the innermost attribute named (the sub-attribute when there is one).
    pub fn leaf(&self) -> &'static AttributeDef {
        self.sub_attribute.unwrap_or(self.attribute)
    }

    pub fn is(&self, name: &str) -> bool {
        self.attribute.name == name && self.sub_attribute.is_none()
    }

    pub fn is_sub(&self, name: &str, sub: &str) -> bool {
        self.attribute.name == name && self.sub_attribute.is_some_and(|s| s.name == sub)
    }

    /// Canonical dotted text, e.g. `name.givenName` or
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
    pub fn display(&self) -> String {
        let mut text = match self.home {
            AttributeHome::Extension(urn) => format!("{urn}:{}", self.attribute.name),
            _ => self.attribute.name.to_string(),
        };
        if let Some(sub) = self.sub_attribute {
            text.push('.');
            text.push_str(sub.name);
        }
        text
    }
}

/// What a path names: an attribute, or a whole extension object (a bare extension URN).
#[derive(Debug, Clone, Copy)]
pub enum ResolvedTarget {
    Attribute(ResolvedAttr),
    Extension(&'static SchemaDef),
}

fn find(attributes: &'static [AttributeDef], name: &str) -> Option<&'static AttributeDef> {
    attributes
        .iter()
        .find(|attribute| attribute.name.eq_ignore_ascii_case(name))
}

fn with_sub(
    home: AttributeHome,
    attribute: &'static AttributeDef,
    sub: Option<&str>,
    original: &AttrPath,
) -> ScimResult<ResolvedAttr> {
    let sub_attribute = match sub {
        None => None,
        Some(sub_name) => Some(attribute.sub_attribute(sub_name).ok_or_else(|| {
            ScimError::invalid_path(format!(
                "'{original}': attribute '{}' has no sub-attribute '{sub_name}'",
                attribute.name
            ))
        })?),
    };
    Ok(ResolvedAttr {
        home,
        attribute,
        sub_attribute,
    })
}

/// Resolves a path to an attribute or an extension, or says why it names nothing.
pub fn resolve_target(
    resource_type: &'static ResourceTypeDef,
    path: &AttrPath,
) -> ScimResult<ResolvedTarget> {
    if let Some(urn) = &path.urn {
        // A bare extension URN parses as urn "...:2.0" + name "User"; join them back to check.
        if path.sub_attr.is_none() {
            let joined = format!("{urn}:{}", path.name);
            if let Some(extension) = resource_type.extension(&joined) {
                return Ok(ResolvedTarget::Extension(extension));
            }
        }
        let schema = resource_type.schema_by_urn(urn).ok_or_else(|| {
            ScimError::invalid_path(format!(
                "'{path}': schema '{urn}' is not a schema of {}",
                resource_type.name
            ))
        })?;
        let home = if std::ptr::eq(schema, resource_type.schema) {
            AttributeHome::Core
        } else {
            AttributeHome::Extension(schema.id)
        };
        let attribute = find(schema.attributes, &path.name)
            .or_else(|| match home {
                AttributeHome::Core => find(COMMON_ATTRIBUTES, &path.name),
                _ => None,
            })
            .ok_or_else(|| {
                ScimError::invalid_path(format!(
                    "'{path}': schema '{urn}' has no attribute '{}'",
                    path.name
                ))
            })?;
        let home = if find(COMMON_ATTRIBUTES, attribute.name)
            .is_some_and(|c| std::ptr::eq(c, attribute))
        {
            AttributeHome::Common
        } else {
            home
        };
        return with_sub(home, attribute, path.sub_attr.as_deref(), path)
            .map(ResolvedTarget::Attribute);
    }
    if path.name.eq_ignore_ascii_case("schemas") && path.sub_attr.is_none() {
        return Ok(ResolvedTarget::Attribute(ResolvedAttr {
            home: AttributeHome::Common,
            attribute: &SCHEMAS_ATTRIBUTE,
            sub_attribute: None,
        }));
    }
    if let Some(attribute) = find(COMMON_ATTRIBUTES, &path.name) {
        return with_sub(
            AttributeHome::Common,
            attribute,
            path.sub_attr.as_deref(),
            path,
        )
        .map(ResolvedTarget::Attribute);
    }
    if let Some(attribute) = find(resource_type.schema.attributes, &path.name) {
        return with_sub(
            AttributeHome::Core,
            attribute,
            path.sub_attr.as_deref(),
            path,
        )
        .map(ResolvedTarget::Attribute);
    }
    // Clients often leave extension attributes unqualified; accept that when it is unambiguous.
    for (extension, _) in resource_type.extensions {
        if let Some(attribute) = find(extension.attributes, &path.name) {
            return with_sub(
                AttributeHome::Extension(extension.id),
                attribute,
                path.sub_attr.as_deref(),
                path,
            )
            .map(ResolvedTarget::Attribute);
        }
    }
    Err(ScimError::invalid_path(format!(
        "'{path}' is not an attribute of {}",
        resource_type.name
    )))
}

/// Resolves a path that must name an attribute (not a whole extension).
pub fn resolve_attr(
    resource_type: &'static ResourceTypeDef,
    path: &AttrPath,
) -> ScimResult<ResolvedAttr> {
    match resolve_target(resource_type, path)? {
        ResolvedTarget::Attribute(attribute) => Ok(attribute),
        ResolvedTarget::Extension(extension) => Err(ScimError::invalid_path(format!(
            "'{}' names a whole schema, not an attribute",
            extension.id
        ))),
    }
}

/// Parses and resolves the text of an attribute path, as in `sortBy` or `attributes`.
pub fn parse_and_resolve(
    resource_type: &'static ResourceTypeDef,
    text: &str,
) -> ScimResult<ResolvedTarget> {
    let path = scimitar_scim::parse_attr_path(text)
        .map_err(|error| ScimError::invalid_path(format!("'{text}': {error}")))?;
    resolve_target(resource_type, &path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::schema::{ENTERPRISE_USER_SCHEMA, USER_RESOURCE};

    fn resolve(text: &str) -> ResolvedTarget {
        parse_and_resolve(&USER_RESOURCE, text).unwrap()
    }

    #[test]
    fn names_resolve_case_insensitively_to_canonical_names() {
        let ResolvedTarget::Attribute(attr) = resolve("NAME.GIVENNAME") else {
            panic!("expected an attribute")
        };
        assert_eq!(attr.display(), "name.givenName");
        assert_eq!(attr.home, AttributeHome::Core);
    }

    #[test]
    fn urn_qualified_extension_attributes_resolve_to_the_extension() {
        let ResolvedTarget::Attribute(attr) =
            resolve("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value")
        else {
            panic!("expected an attribute")
        };
        assert_eq!(attr.home, AttributeHome::Extension(ENTERPRISE_USER_SCHEMA));
        assert!(attr.is_sub("manager", "value"));
    }

    #[test]
    fn a_bare_extension_urn_names_the_whole_extension() {
        assert!(matches!(
            resolve("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
            ResolvedTarget::Extension(_)
        ));
    }

    #[test]
    fn core_urn_qualified_common_attributes_resolve() {
        let ResolvedTarget::Attribute(attr) =
            resolve("urn:ietf:params:scim:schemas:core:2.0:User:userName")
        else {
            panic!("expected an attribute")
        };
        assert!(attr.is("userName"));
        let ResolvedTarget::Attribute(meta) = resolve("meta.lastModified") else {
            panic!("expected an attribute")
        };
        assert_eq!(meta.home, AttributeHome::Common);
    }

    #[test]
    fn unknown_attributes_are_invalid_paths() {
        let error = parse_and_resolve(&USER_RESOURCE, "shoeSize").unwrap_err();
        assert_eq!(error.code(), "invalidPath");
    }
}
