//! Finishing a list in memory: for filters or sort keys that storage cannot express in SQL, the
//! backend hands over the candidate rows and this module filters, sorts and pages them with the
//! domain's reference semantics.

use crate::Page;
use scimitar_domain::paths::{AttributeHome, ResolvedAttr};
use scimitar_domain::query::{ListQuery, SortOrder};
use scimitar_domain::render::{render, GroupRef, MemberRef};
use scimitar_domain::resource::fold_case;
use scimitar_domain::{Principal, PrincipalId, Timestamp};
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::HashMap;

/// Filters, sorts and pages `candidates`. `members` and `groups` hold what the filter or sort
/// key needs of them (empty maps when it needs neither).
pub fn finish(
    candidates: Vec<Principal>,
    query: &ListQuery,
    members: &HashMap<PrincipalId, Vec<MemberRef>>,
    groups: &HashMap<PrincipalId, Vec<GroupRef>>,
) -> Page {
    let mut matched: Vec<(Principal, Map<String, Value>)> = candidates
        .into_iter()
        .map(|principal| {
            let document = render(
                &principal,
                "",
                members.get(&principal.id).map(Vec::as_slice),
                groups.get(&principal.id).map(Vec::as_slice),
            );
            (principal, document)
        })
        .filter(|(_, document)| {
            query
                .filter
                .as_ref()
                .is_none_or(|filter| filter.matches(document))
        })
        .collect();
    match &query.sort_by {
        Some(attribute) => matched.sort_by(|(left_p, left), (right_p, right)| {
            compare_sort_keys(
                sort_key(left, attribute),
                sort_key(right, attribute),
                query.sort_order,
            )
            .then_with(|| default_order(left_p, right_p))
        }),
        None => matched.sort_by(|(left, _), (right, _)| default_order(left, right)),
    }
    let total_results = matched.len() as u64;
    let principals = matched
        .into_iter()
        .skip(usize::try_from(query.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(query.count).unwrap_or(usize::MAX))
        .map(|(principal, _)| principal)
        .collect();
    Page {
        total_results,
        principals,
    }
}

/// The order of a list with no `sortBy`: oldest first, then by id. SQL backends use the same.
pub fn default_order(left: &Principal, right: &Principal) -> Ordering {
    left.created
        .cmp(&right.created)
        .then_with(|| left.id.cmp(&right.id))
}

#[derive(Debug, PartialEq, PartialOrd)]
enum SortKey {
    Number(f64),
    Time(Timestamp),
    Text(String),
}

/// The value a resource sorts by: for a multi-valued attribute, its primary value, else its first.
fn sort_key(document: &Map<String, Value>, attribute: &ResolvedAttr) -> Option<SortKey> {
    let container = match attribute.home {
        AttributeHome::Extension(urn) => document.get(urn)?.as_object()?,
        _ => document,
    };
    let mut value = container.get(attribute.attribute.name)?;
    if let Value::Array(items) = value {
        value = items
            .iter()
            .find(|item| item.get("primary") == Some(&Value::Bool(true)))
            .or_else(|| items.first())?;
    }
    let leaf = match attribute.sub_attribute {
        Some(sub) => value.get(sub.name)?,
        None if attribute.attribute.is_complex() => value.get("value")?,
        None => value,
    };
    let definition = attribute.leaf();
    match leaf {
        Value::Number(number) => number.as_f64().map(SortKey::Number),
        Value::Bool(flag) => Some(SortKey::Number(f64::from(u8::from(*flag)))),
        Value::String(text) => {
            if definition.kind == scimitar_domain::schema::AttributeType::DateTime {
                if let Some(moment) = Timestamp::parse_rfc3339(text) {
                    return Some(SortKey::Time(moment));
                }
            }
            Some(SortKey::Text(if definition.case_exact {
                text.clone()
            } else {
                fold_case(text)
            }))
        }
        _ => None,
    }
}

/// Missing values sort last, whatever the direction asked.
fn compare_sort_keys(left: Option<SortKey>, right: Option<SortKey>, order: SortOrder) -> Ordering {
    match (left, right) {
        (Some(left), Some(right)) => {
            let ordering = left.partial_cmp(&right).unwrap_or(Ordering::Equal);
            match order {
                SortOrder::Ascending => ordering,
                SortOrder::Descending => ordering.reverse(),
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}
