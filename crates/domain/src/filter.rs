//! Filters resolved against a resource type, and their evaluation on a rendered resource.
//!
//! Storage translates the parts of a [`ResolvedFilter`] it indexes into its own query language;
//! [`ResolvedFilter::matches`] is the reference semantics every backend must agree with (and the
//! fallback for attributes storage does not index).

use crate::clock::Timestamp;
use crate::error::{ScimError, ScimResult};
use crate::paths::{resolve_target, AttributeHome, ResolvedAttr, ResolvedTarget};
use crate::resource::fold_case;
use crate::schema::{AttributeType, ResourceTypeDef};
use scimitar_scim::{AttrPath, CompValue, CompareOp, Filter};
use serde_json::{Map, Value};
use std::cmp::Ordering;

#[derive(Debug, Clone)]
pub enum ResolvedFilter {
    Present(ResolvedAttr),
    Compare(ResolvedAttr, CompareOp, CompValue),
    /// A filter on the elements of a multi-valued complex attribute. The inner filter's
    /// attributes are sub-attributes of the outer one (`sub_attribute` is always set).
    ValuePath(ResolvedAttr, Box<ResolvedFilter>),
    And(Box<ResolvedFilter>, Box<ResolvedFilter>),
    Or(Box<ResolvedFilter>, Box<ResolvedFilter>),
    Not(Box<ResolvedFilter>),
}

/// Parses and resolves a filter, reporting every client mistake as `invalidFilter`.
pub fn parse_filter(
    resource_type: &'static ResourceTypeDef,
    text: &str,
) -> ScimResult<ResolvedFilter> {
    let filter = scimitar_scim::parse_filter(text)
        .map_err(|error| ScimError::invalid_filter(format!("invalid filter: {error}")))?;
    resolve_filter(resource_type, &filter)
}

pub fn resolve_filter(
    resource_type: &'static ResourceTypeDef,
    filter: &Filter,
) -> ScimResult<ResolvedFilter> {
    Ok(match filter {
        Filter::Present(path) => ResolvedFilter::Present(resolve_path(resource_type, path)?),
        Filter::Compare(path, op, value) => {
            let attribute = resolve_path(resource_type, path)?;
            check_operator(&attribute, *op)?;
            let value = typed_value(Some(resource_type), &attribute, *op, value)?;
            ResolvedFilter::Compare(attribute, *op, value)
        }
        Filter::ValuePath(path, inner) => {
            let outer = resolve_path(resource_type, path)?;
            if !outer.attribute.is_complex() || outer.sub_attribute.is_some() {
                return Err(ScimError::invalid_filter(format!(
                    "'{path}[...]': a value filter needs a complex attribute"
                )));
            }
            ResolvedFilter::ValuePath(outer, Box::new(resolve_relative(&outer, inner)?))
        }
        Filter::And(left, right) => ResolvedFilter::And(
            Box::new(resolve_filter(resource_type, left)?),
            Box::new(resolve_filter(resource_type, right)?),
        ),
        Filter::Or(left, right) => ResolvedFilter::Or(
            Box::new(resolve_filter(resource_type, left)?),
            Box::new(resolve_filter(resource_type, right)?),
        ),
        Filter::Not(inner) => ResolvedFilter::Not(Box::new(resolve_filter(resource_type, inner)?)),
    })
}

fn resolve_path(
    resource_type: &'static ResourceTypeDef,
    path: &AttrPath,
) -> ScimResult<ResolvedAttr> {
    match resolve_target(resource_type, path) {
        Ok(ResolvedTarget::Attribute(attribute)) => Ok(attribute),
        Ok(ResolvedTarget::Extension(_)) => Err(ScimError::invalid_filter(format!(
            "'{path}' names a schema, not an attribute"
        ))),
        Err(error) => Err(ScimError::invalid_filter(error.to_string())),
    }
}

/// Resolves the inside of `outer[...]`, whose names are sub-attributes of `outer`.
pub fn resolve_relative(outer: &ResolvedAttr, filter: &Filter) -> ScimResult<ResolvedFilter> {
    let sub = |path: &AttrPath| -> ScimResult<ResolvedAttr> {
        let sub_attribute = outer.attribute.sub_attribute(&path.name).ok_or_else(|| {
            ScimError::invalid_filter(format!(
                "'{}' has no sub-attribute '{}'",
                outer.attribute.name, path.name
            ))
        })?;
        Ok(ResolvedAttr {
            home: outer.home,
            attribute: outer.attribute,
            sub_attribute: Some(sub_attribute),
        })
    };
    Ok(match filter {
        Filter::Present(path) => ResolvedFilter::Present(sub(path)?),
        Filter::Compare(path, op, value) => {
            let attribute = sub(path)?;
            check_operator(&attribute, *op)?;
            let value = typed_value(None, &attribute, *op, value)?;
            ResolvedFilter::Compare(attribute, *op, value)
        }
        Filter::ValuePath(path, _) => {
            return Err(ScimError::invalid_filter(format!(
                "value filters cannot nest ('{path}[...]' inside '{}[...]')",
                outer.attribute.name
            )))
        }
        Filter::And(left, right) => ResolvedFilter::And(
            Box::new(resolve_relative(outer, left)?),
            Box::new(resolve_relative(outer, right)?),
        ),
        Filter::Or(left, right) => ResolvedFilter::Or(
            Box::new(resolve_relative(outer, left)?),
            Box::new(resolve_relative(outer, right)?),
        ),
        Filter::Not(inner) => ResolvedFilter::Not(Box::new(resolve_relative(outer, inner)?)),
    })
}

/// The value a comparison is made with, checked against the attribute's type before any
/// storage sees it: a dateTime compared by equality or order needs an RFC 3339 dateTime (or
/// `null` for `eq`/`ne`), no string may hold U+0000, and a value compared with a principal's
/// name is put in NFC as names are stored ([`crate::names`]).
fn typed_value(
    resource_type: Option<&'static ResourceTypeDef>,
    attribute: &ResolvedAttr,
    op: CompareOp,
    value: &CompValue,
) -> ScimResult<CompValue> {
    let kind = compared_kind(attribute);
    if kind == AttributeType::DateTime {
        let is_order_or_equality = matches!(
            op,
            CompareOp::Eq
                | CompareOp::Ne
                | CompareOp::Gt
                | CompareOp::Ge
                | CompareOp::Lt
                | CompareOp::Le
        );
        let is_date = match value {
            CompValue::String(text) => Timestamp::parse_rfc3339(text).is_some(),
            CompValue::Null => matches!(op, CompareOp::Eq | CompareOp::Ne),
            CompValue::Bool(_) | CompValue::Number(_) => false,
        };
        if is_order_or_equality && !is_date {
            return Err(ScimError::invalid_filter(format!(
                "'{}' is a dateTime and can only be compared with an RFC 3339 dateTime such as \
                 \"2024-01-31T12:00:00Z\", not {value}",
                attribute.display()
            )));
        }
    }
    let CompValue::String(text) = value else {
        return Ok(value.clone());
    };
    if text.contains('\0') {
        return Err(ScimError::invalid_filter(format!(
            "the value compared with '{}' contains U+0000, which no value may hold",
            attribute.display()
        )));
    }
    let names_a_principal = attribute.sub_attribute.is_none()
        && matches!(attribute.home, AttributeHome::Core)
        && resource_type.is_some_and(|resource_type| {
            crate::names::is_naming_attribute(resource_type.kind, attribute.attribute.name)
        });
    Ok(match crate::names::normalise(text) {
        std::borrow::Cow::Owned(normal) if names_a_principal => CompValue::String(normal),
        _ => value.clone(),
    })
}

/// RFC 7644 section 3.4.2.2: ordering and substring operators on booleans and binaries fail.
fn check_operator(attribute: &ResolvedAttr, op: CompareOp) -> ScimResult<()> {
    let kind = compared_kind(attribute);
    let ordering_or_substring = !matches!(op, CompareOp::Eq | CompareOp::Ne);
    let refused = match kind {
        AttributeType::Boolean | AttributeType::Binary => ordering_or_substring,
        AttributeType::Complex => true,
        _ => false,
    };
    if refused {
        return Err(ScimError::invalid_filter(format!(
            "operator '{}' cannot be applied to '{}', a {} attribute",
            operator_name(op),
            attribute.display(),
            kind.as_str()
        )));
    }
    Ok(())
}

/// The type a comparison acts on: `emails eq x` compares `emails.value`.
fn compared_kind(attribute: &ResolvedAttr) -> AttributeType {
    match attribute.sub_attribute {
        Some(sub) => sub.kind,
        None if attribute.attribute.is_complex() => attribute
            .attribute
            .sub_attribute("value")
            .map(|value| value.kind)
            .unwrap_or(AttributeType::Complex),
        None => attribute.attribute.kind,
    }
}

fn case_exact(attribute: &ResolvedAttr) -> bool {
    match attribute.sub_attribute {
        Some(sub) => sub.case_exact,
        None if attribute.attribute.is_complex() => attribute
            .attribute
            .sub_attribute("value")
            .is_some_and(|value| value.case_exact),
        None => attribute.attribute.case_exact,
    }
}

pub fn operator_name(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "eq",
        CompareOp::Ne => "ne",
        CompareOp::Co => "co",
        CompareOp::Sw => "sw",
        CompareOp::Ew => "ew",
        CompareOp::Gt => "gt",
        CompareOp::Ge => "ge",
        CompareOp::Lt => "lt",
        CompareOp::Le => "le",
    }
}

impl ResolvedFilter {
    /// Evaluates the filter on a rendered resource (the wire document, with `id` and `meta`).
    pub fn matches(&self, resource: &Map<String, Value>) -> bool {
        match self {
            ResolvedFilter::Present(attribute) => values_at(resource, attribute, false)
                .iter()
                .any(|value| is_present(value)),
            ResolvedFilter::Compare(attribute, op, expected) => {
                let values = values_at(resource, attribute, true);
                compare_any(attribute, &values, *op, expected)
            }
            ResolvedFilter::ValuePath(attribute, inner) => container(resource, attribute)
                .and_then(|container| container.get(attribute.attribute.name))
                .map(|value| match value {
                    Value::Array(elements) => elements
                        .iter()
                        .any(|element| inner.matches_element(element)),
                    element => inner.matches_element(element),
                })
                .unwrap_or(false),
            ResolvedFilter::And(left, right) => left.matches(resource) && right.matches(resource),
            ResolvedFilter::Or(left, right) => left.matches(resource) || right.matches(resource),
            ResolvedFilter::Not(inner) => !inner.matches(resource),
        }
    }

    /// Evaluates a relative filter (the inside of `attr[...]`) on one element.
    pub fn matches_element(&self, element: &Value) -> bool {
        let sub_values = |attribute: &ResolvedAttr| -> Vec<&Value> {
            attribute
                .sub_attribute
                .and_then(|sub| element.get(sub.name))
                .into_iter()
                .collect()
        };
        match self {
            ResolvedFilter::Present(attribute) => {
                sub_values(attribute).iter().any(|v| is_present(v))
            }
            ResolvedFilter::Compare(attribute, op, expected) => {
                compare_any(attribute, &sub_values(attribute), *op, expected)
            }
            ResolvedFilter::ValuePath(..) => false,
            ResolvedFilter::And(left, right) => {
                left.matches_element(element) && right.matches_element(element)
            }
            ResolvedFilter::Or(left, right) => {
                left.matches_element(element) || right.matches_element(element)
            }
            ResolvedFilter::Not(inner) => !inner.matches_element(element),
        }
    }

    /// Whether any part of the filter looks at this top-level attribute (e.g. `members`), so the
    /// caller knows what must be loaded before evaluating it.
    pub fn mentions(&self, name: &str) -> bool {
        match self {
            ResolvedFilter::Present(attribute)
            | ResolvedFilter::Compare(attribute, _, _)
            | ResolvedFilter::ValuePath(attribute, _) => attribute.attribute.name == name,
            ResolvedFilter::And(left, right) | ResolvedFilter::Or(left, right) => {
                left.mentions(name) || right.mentions(name)
            }
            ResolvedFilter::Not(inner) => inner.mentions(name),
        }
    }
}

fn container<'a>(
    resource: &'a Map<String, Value>,
    attribute: &ResolvedAttr,
) -> Option<&'a Map<String, Value>> {
    match attribute.home {
        AttributeHome::Extension(urn) => resource.get(urn).and_then(Value::as_object),
        _ => Some(resource),
    }
}

/// The values a path reaches: every element of a multi-valued attribute, and for a complex
/// multi-valued attribute without a sub-attribute, each element's `value` when `use_value` is set.
fn values_at<'a>(
    resource: &'a Map<String, Value>,
    attribute: &ResolvedAttr,
    use_value: bool,
) -> Vec<&'a Value> {
    let Some(top) = container(resource, attribute).and_then(|c| c.get(attribute.attribute.name))
    else {
        return Vec::new();
    };
    let elements: Vec<&Value> = match top {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    match attribute.sub_attribute {
        Some(sub) => elements
            .into_iter()
            .filter_map(|element| element.get(sub.name))
            .collect(),
        None if use_value && attribute.attribute.is_complex() => elements
            .into_iter()
            .filter_map(|element| element.get("value"))
            .collect(),
        None => elements,
    }
}

fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(object) => !object.is_empty(),
        _ => true,
    }
}

fn compare_any(
    attribute: &ResolvedAttr,
    values: &[&Value],
    op: CompareOp,
    expected: &CompValue,
) -> bool {
    if op == CompareOp::Ne {
        return !compare_any(attribute, values, CompareOp::Eq, expected);
    }
    if matches!(expected, CompValue::Null) {
        // `attr eq null` asks for absence; nothing else about null is meaningful.
        return op == CompareOp::Eq && !values.iter().any(|value| is_present(value));
    }
    values
        .iter()
        .any(|value| compare_one(attribute, value, op, expected))
}

fn expected_text(expected: &CompValue) -> String {
    match expected {
        CompValue::String(text) => text.clone(),
        CompValue::Number(number) => number.to_string(),
        CompValue::Bool(flag) => flag.to_string(),
        CompValue::Null => String::new(),
    }
}

fn compare_one(
    attribute: &ResolvedAttr,
    actual: &Value,
    op: CompareOp,
    expected: &CompValue,
) -> bool {
    match compared_kind(attribute) {
        AttributeType::Boolean => {
            let actual = crate::resource::coerce_bool(actual);
            let expected = match expected {
                CompValue::Bool(flag) => Some(*flag),
                CompValue::String(text) => {
                    crate::resource::coerce_bool(&Value::String(text.clone()))
                }
                _ => None,
            };
            op == CompareOp::Eq && actual.is_some() && actual == expected
        }
        AttributeType::DateTime => {
            let (Some(actual), Some(expected)) = (
                actual.as_str().and_then(Timestamp::parse_rfc3339),
                Timestamp::parse_rfc3339(&expected_text(expected)),
            ) else {
                return false;
            };
            ordered(op, actual.cmp(&expected))
        }
        AttributeType::Integer | AttributeType::Decimal => {
            let (Some(actual), Ok(expected)) =
                (actual.as_f64(), expected_text(expected).parse::<f64>())
            else {
                return false;
            };
            actual
                .partial_cmp(&expected)
                .is_some_and(|ordering| ordered(op, ordering))
        }
        _ => {
            let actual = match actual {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                _ => return false,
            };
            let expected = expected_text(expected);
            let (actual, expected) = if case_exact(attribute) {
                (actual, expected)
            } else {
                (fold_case(&actual), fold_case(&expected))
            };
            match op {
                CompareOp::Co => actual.contains(&expected),
                CompareOp::Sw => actual.starts_with(&expected),
                CompareOp::Ew => actual.ends_with(&expected),
                _ => ordered(op, actual.cmp(&expected)),
            }
        }
    }
}

fn ordered(op: CompareOp, ordering: Ordering) -> bool {
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::schema::{GROUP_RESOURCE, USER_RESOURCE};
    use serde_json::json;

    fn user() -> Map<String, Value> {
        json!({
            "id": "1001",
            "userName": "BJensen@Example.com",
            "externalId": "Ext-1",
            "active": true,
            "name": {"givenName": "Barbara", "familyName": "O'Malley"},
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984"},
            "meta": {"created": "2026-01-01T00:00:00.000Z", "lastModified": "2026-02-01T00:00:00.000Z"}
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn check(filter: &str) -> bool {
        parse_filter(&USER_RESOURCE, filter)
            .unwrap()
            .matches(&user())
    }

    #[test]
    fn case_insensitive_attributes_compare_ignoring_case() {
        assert!(check(r#"userName eq "bjensen@example.com""#));
        assert!(check(r#"USERNAME sw "bjen""#));
    }

    #[test]
    fn case_exact_attributes_compare_exactly() {
        assert!(check(r#"externalId eq "Ext-1""#));
        assert!(!check(r#"externalId eq "ext-1""#));
    }

    #[test]
    fn value_paths_require_one_element_to_match_every_condition() {
        assert!(check(
            r#"emails[type eq "work" and value co "example.com"]"#
        ));
        assert!(!check(
            r#"emails[type eq "home" and value co "example.com"]"#
        ));
    }

    #[test]
    fn a_complex_multi_valued_attribute_compares_its_value() {
        assert!(check(r#"emails co "jensen.org""#));
        assert!(check(r#"emails.type eq "home""#));
    }

    #[test]
    fn logical_operators_and_not_combine() {
        assert!(check(r#"userName sw "x" or name.familyName co "o'mal""#));
        assert!(check(r#"not (userName eq "x") and active eq true"#));
        assert!(!check(r#"not (active eq true)"#));
    }

    #[test]
    fn ne_matches_resources_without_the_attribute() {
        assert!(check(r#"title ne "boss""#));
        assert!(check(r#"title eq null"#));
        assert!(!check(r#"title pr"#));
        assert!(check(r#"name.givenName pr"#));
    }

    #[test]
    fn date_times_compare_chronologically_across_offsets() {
        assert!(!check(r#"meta.created gt "2025-12-31T23:00:00-02:00""#));
        assert!(check(r#"meta.lastModified ge "2026-02-01T00:00:00Z""#));
        assert!(check("meta.created lt 2026-01-02T00:00:00Z"));
    }

    #[test]
    fn extension_attributes_are_reached_by_urn_or_bare_name() {
        assert!(check(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#
        ));
        assert!(check(r#"employeeNumber eq "701984""#));
    }

    #[test]
    fn string_booleans_from_entra_compare_as_booleans() {
        assert!(check(r#"active eq "True""#));
    }

    #[test]
    fn ordering_a_boolean_is_an_invalid_filter() {
        let error = parse_filter(&USER_RESOURCE, "active gt true").unwrap_err();
        assert_eq!(error.code(), "invalidFilter");
    }

    #[test]
    fn unknown_attributes_are_invalid_filters() {
        let error = parse_filter(&USER_RESOURCE, r#"shoeSize eq "44""#).unwrap_err();
        assert_eq!(error.code(), "invalidFilter");
        let error = parse_filter(&GROUP_RESOURCE, r#"members[shoe eq "1"]"#).unwrap_err();
        assert_eq!(error.code(), "invalidFilter");
    }

    #[test]
    fn malformed_filters_are_invalid_filters() {
        let error = parse_filter(&USER_RESOURCE, r#"userName eq"#).unwrap_err();
        assert_eq!(error.code(), "invalidFilter");
    }
}
