//! PATCH (RFC 7644 section 3.5.2): parsing a PatchOp request and applying it to a principal's
//! document, all operations or none.
//!
//! Group membership is not applied here: operations on `members` become [`MembershipStep`]s that
//! storage applies to the membership relation directly, so adding one member to a group of a
//! million never reads or rewrites the others.

use crate::error::{ScimError, ScimResult};
use crate::filter::{resolve_relative, ResolvedFilter};
use crate::ids::PrincipalId;
use crate::paths::{resolve_target, AttributeHome, ResolvedAttr, ResolvedTarget};
use crate::resource::{
    canonical_object, canonical_single, canonical_value, check_changed_limits, check_schemas,
    finish_document, parse_members, MemberValue,
};
use crate::schema::{Mutability, PrincipalKind, ResourceTypeDef};
use scimitar_scim::{parse_attr_path, parse_patch_path, CompValue, CompareOp, Filter, PatchPath};
use serde_json::{Map, Value};

/// The most operations one PATCH request may carry.
pub const MAX_PATCH_OPERATIONS: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOpKind {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone)]
pub struct PatchOperation {
    pub op: PatchOpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// One change to a group's membership, applied in order with the rest of the PATCH.
#[derive(Debug, Clone)]
pub enum MembershipStep {
    Add(Vec<MemberValue>),
    Remove(Vec<PrincipalId>),
    RemoveAll,
    ReplaceAll(Vec<MemberValue>),
    /// Remove the members a value filter selects, for filters other than `value eq "..."`.
    RemoveMatching(ResolvedFilter),
}

/// The result of applying a PATCH: the new document and what else must change with it.
#[derive(Debug, Clone)]
pub struct PatchPlan {
    pub attributes: Map<String, Value>,
    pub password: Option<String>,
    pub membership: Vec<MembershipStep>,
}

fn get_case_insensitive<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(key))
        .map(|(_, value)| value)
}

/// Parses a PatchOp body. Accepts what identity providers send: `op` in any case, `Operations`
/// in any case, and a missing `schemas`.
pub fn parse_patch_request(body: &Value) -> ScimResult<Vec<PatchOperation>> {
    let object = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a PATCH body must be a JSON object"))?;
    check_schemas(object)?;
    let operations = get_case_insensitive(object, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("a PATCH body needs an 'Operations' array"))?;
    if operations.is_empty() {
        return Err(ScimError::invalid_syntax("'Operations' must not be empty"));
    }
    if operations.len() > MAX_PATCH_OPERATIONS {
        return Err(ScimError::invalid_syntax(format!(
            "a PATCH may carry at most {MAX_PATCH_OPERATIONS} operations"
        )));
    }
    operations
        .iter()
        .enumerate()
        .map(|(index, operation)| parse_operation(index, operation))
        .collect()
}

fn parse_operation(index: usize, operation: &Value) -> ScimResult<PatchOperation> {
    let object = operation.as_object().ok_or_else(|| {
        ScimError::invalid_syntax(format!("operation {index} must be a JSON object"))
    })?;
    let op_text = get_case_insensitive(object, "op")
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::invalid_syntax(format!("operation {index} has no 'op'")))?;
    let op = match op_text.to_ascii_lowercase().as_str() {
        "add" => PatchOpKind::Add,
        "remove" => PatchOpKind::Remove,
        "replace" => PatchOpKind::Replace,
        _ => {
            return Err(ScimError::invalid_syntax(format!(
                "operation {index}: '{op_text}' is not one of add, remove, replace"
            )))
        }
    };
    let path = match get_case_insensitive(object, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.trim().is_empty() => None,
        Some(Value::String(text)) => Some(parse_patch_path(text.trim()).map_err(|error| {
            ScimError::invalid_path(format!("operation {index}: invalid path '{text}': {error}"))
        })?),
        Some(_) => {
            return Err(ScimError::invalid_path(format!(
                "operation {index}: 'path' must be a string"
            )))
        }
    };
    let value = get_case_insensitive(object, "value").cloned();
    match op {
        PatchOpKind::Remove if path.is_none() => Err(ScimError::no_target(format!(
            "operation {index}: 'remove' needs a 'path'"
        ))),
        // An add or replace without a value is what the Databricks SDK sends for a falsy value
        // (it drops `False`, `0` and `""` from the body): see `apply_plain`.
        PatchOpKind::Add | PatchOpKind::Replace if value.is_none() && path.is_none() => {
            Err(ScimError::invalid_syntax(format!(
                "operation {index}: '{op_text}' without a path needs a 'value'"
            )))
        }
        _ => Ok(PatchOperation { op, path, value }),
    }
}

/// Applies every operation to a copy of `attributes`; on any error nothing is applied.
pub fn apply_patch(
    resource_type: &'static ResourceTypeDef,
    attributes: &Map<String, Value>,
    operations: &[PatchOperation],
) -> ScimResult<PatchPlan> {
    let mut patcher = Patcher {
        resource_type,
        document: attributes.clone(),
        password: None,
        membership: Vec::new(),
    };
    for operation in operations {
        patcher.apply(operation)?;
    }
    finish_document(resource_type, &mut patcher.document)?;
    check_changed_limits(resource_type, attributes, &patcher.document)?;
    Ok(PatchPlan {
        attributes: patcher.document,
        password: patcher.password,
        membership: patcher.membership,
    })
}

struct Patcher {
    resource_type: &'static ResourceTypeDef,
    document: Map<String, Value>,
    password: Option<String>,
    membership: Vec<MembershipStep>,
}

/// Whether a path came from the operation itself or from a key of a pathless operation's value.
/// Pathless values are what Okta and Entra send whole resources through, `id` and all, so
/// read-only and unknown keys there are skipped rather than refused.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PathOrigin {
    Explicit,
    PathlessKey,
}

impl Patcher {
    fn apply(&mut self, operation: &PatchOperation) -> ScimResult<()> {
        match &operation.path {
            Some(path) => self.apply_at(
                operation.op,
                path,
                operation.value.as_ref(),
                PathOrigin::Explicit,
            ),
            None => {
                let value = operation.value.as_ref().unwrap_or(&Value::Null);
                let object = value.as_object().ok_or_else(|| {
                    ScimError::invalid_value(
                        "an 'add' or 'replace' without 'path' needs an object 'value'",
                    )
                })?;
                for (key, inner) in object {
                    if let Some(extension) = self.resource_type.extension(key) {
                        self.apply_extension(
                            operation.op,
                            extension.id,
                            extension.attributes,
                            Some(inner),
                        )?;
                        continue;
                    }
                    let Ok(attr_path) = parse_attr_path(key) else {
                        continue;
                    };
                    let path = PatchPath {
                        attr: attr_path,
                        value_filter: None,
                        sub_attr: None,
                    };
                    self.apply_at(operation.op, &path, Some(inner), PathOrigin::PathlessKey)?;
                }
                Ok(())
            }
        }
    }

    fn apply_at(
        &mut self,
        op: PatchOpKind,
        path: &PatchPath,
        value: Option<&Value>,
        origin: PathOrigin,
    ) -> ScimResult<()> {
        let target = match resolve_target(self.resource_type, &path.attr) {
            Ok(target) => target,
            Err(_) if origin == PathOrigin::PathlessKey => return Ok(()),
            Err(error) => return Err(error),
        };
        let attribute = match target {
            ResolvedTarget::Extension(extension) => {
                if path.value_filter.is_some() || path.sub_attr.is_some() {
                    return Err(ScimError::invalid_path(format!(
                        "'{path}' is not a valid path"
                    )));
                }
                return self.apply_extension(op, extension.id, extension.attributes, value);
            }
            ResolvedTarget::Attribute(attribute) => attribute,
        };
        if attribute.is("members") && self.resource_type.kind == PrincipalKind::Group {
            return self.apply_members(op, path, attribute, value);
        }
        if attribute.is("password") {
            if op == PatchOpKind::Remove {
                return Err(ScimError::mutability(
                    "the password cannot be removed, only replaced",
                ));
            }
            let text = value
                .and_then(Value::as_str)
                .ok_or_else(|| ScimError::invalid_value("'password' must be a string"))?;
            self.password = Some(text.to_string());
            return Ok(());
        }
        let leaf_mutability = path
            .sub_attr
            .as_deref()
            .and_then(|sub| attribute.attribute.sub_attribute(sub))
            .map(|sub| sub.mutability)
            .unwrap_or(attribute.leaf().mutability);
        if attribute.attribute.mutability == Mutability::ReadOnly
            || leaf_mutability == Mutability::ReadOnly
        {
            if origin == PathOrigin::PathlessKey {
                return Ok(());
            }
            return Err(ScimError::mutability(format!(
                "'{}' is read-only",
                attribute.display()
            )));
        }
        let before = self.document.clone();
        match &path.value_filter {
            Some(filter) => self.apply_filtered(op, path, attribute, filter, value)?,
            None => self.apply_plain(op, attribute, path.sub_attr.as_deref(), value)?,
        }
        self.check_immutable(&before, attribute)
    }

    /// Immutable attributes may be set once and then only to the same value.
    fn check_immutable(
        &self,
        before: &Map<String, Value>,
        attribute: ResolvedAttr,
    ) -> ScimResult<()> {
        if attribute.attribute.mutability != Mutability::Immutable {
            return Ok(());
        }
        let old =
            container_ref(before, attribute.home).and_then(|c| c.get(attribute.attribute.name));
        let new = container_ref(&self.document, attribute.home)
            .and_then(|c| c.get(attribute.attribute.name));
        match old {
            Some(old) if Some(old) != new => Err(ScimError::mutability(format!(
                "'{}' is immutable",
                attribute.attribute.name
            ))),
            _ => Ok(()),
        }
    }

    fn apply_extension(
        &mut self,
        op: PatchOpKind,
        urn: &'static str,
        definitions: &'static [crate::schema::AttributeDef],
        value: Option<&Value>,
    ) -> ScimResult<()> {
        if op == PatchOpKind::Remove {
            self.document.remove(urn);
            return Ok(());
        }
        let Some(value) = value.filter(|value| !value.is_null()) else {
            self.document.remove(urn);
            return Ok(());
        };
        let object = value.as_object().ok_or_else(|| {
            ScimError::invalid_value(format!("'{urn}' must be an object of extension attributes"))
        })?;
        // Keys may themselves be paths ("manager.value"), so apply each through the same route.
        for (key, inner) in object {
            let Ok(mut attr_path) = parse_attr_path(key) else {
                continue;
            };
            attr_path.urn = Some(urn.to_string());
            if definitions
                .iter()
                .all(|d| !d.name.eq_ignore_ascii_case(&attr_path.name))
            {
                continue;
            }
            let path = PatchPath {
                attr: attr_path,
                value_filter: None,
                sub_attr: None,
            };
            self.apply_at(op, &path, Some(inner), PathOrigin::PathlessKey)?;
        }
        Ok(())
    }

    fn container(&mut self, home: AttributeHome) -> ScimResult<&mut Map<String, Value>> {
        match home {
            AttributeHome::Extension(urn) => {
                let entry = self
                    .document
                    .entry(urn.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                match entry {
                    Value::Object(object) => Ok(object),
                    _ => Err(ScimError::internal("an extension slot is not an object")),
                }
            }
            _ => Ok(&mut self.document),
        }
    }

    /// Drops empty complex values and empty extensions, which mean "unassigned".
    fn tidy(&mut self, attribute: ResolvedAttr) -> ScimResult<()> {
        let name = attribute.attribute.name;
        let container = self.container(attribute.home)?;
        let empty = match container.get(name) {
            Some(Value::Object(object)) => object.is_empty(),
            Some(Value::Array(items)) => items.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            container.remove(name);
        }
        if let AttributeHome::Extension(urn) = attribute.home {
            if self
                .document
                .get(urn)
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
            {
                self.document.remove(urn);
            }
        }
        Ok(())
    }

    fn apply_plain(
        &mut self,
        op: PatchOpKind,
        attribute: ResolvedAttr,
        sub_text: Option<&str>,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        let definition = attribute.attribute;
        let name = definition.name;
        // `name.givenName` arrives as attr.sub_attr from the parser; normalise to one form.
        let sub = match (attribute.sub_attribute, sub_text) {
            (Some(sub), _) => Some(sub),
            (None, Some(text)) => Some(definition.sub_attribute(text).ok_or_else(|| {
                ScimError::invalid_path(format!("'{name}' has no sub-attribute '{text}'"))
            })?),
            (None, None) => None,
        };
        let display = attribute.display();
        match (op, sub) {
            (PatchOpKind::Remove, None) => {
                let container = self.container(attribute.home)?;
                match (value, definition.multi_valued) {
                    // Entra removes members and other multi-valued entries by listing them.
                    (Some(listed), true) if !listed.is_null() => {
                        if let Some(Value::Array(items)) = container.get_mut(name) {
                            let listed: Vec<Value> = match listed {
                                Value::Array(values) => values.clone(),
                                single => vec![single.clone()],
                            };
                            items
                                .retain(|item| !listed.iter().any(|gone| same_element(item, gone)));
                        }
                    }
                    _ => {
                        container.remove(name);
                    }
                }
            }
            (PatchOpKind::Remove, Some(sub)) => {
                let container = self.container(attribute.home)?;
                match container.get_mut(name) {
                    Some(Value::Array(items)) => {
                        for item in items.iter_mut() {
                            if let Value::Object(object) = item {
                                object.remove(sub.name);
                            }
                        }
                        items.retain(|item| item.as_object().is_some_and(|o| !o.is_empty()));
                    }
                    Some(Value::Object(object)) => {
                        object.remove(sub.name);
                    }
                    _ => {}
                }
            }
            (op, None) => {
                let falsy_boolean = Value::Bool(false);
                let value = match value {
                    Some(value) => value,
                    None if definition.kind == crate::schema::AttributeType::Boolean => {
                        &falsy_boolean
                    }
                    None => &Value::Null,
                };
                let canonical = canonical_value(definition, value, &display)?;
                let container = self.container(attribute.home)?;
                match canonical {
                    None => {
                        if op == PatchOpKind::Replace || !definition.multi_valued {
                            container.remove(name);
                        }
                    }
                    Some(Value::Array(new_items)) if op == PatchOpKind::Add => {
                        let existing = container
                            .entry(name.to_string())
                            .or_insert_with(|| Value::Array(Vec::new()));
                        if let Value::Array(items) = existing {
                            add_items(items, new_items);
                        }
                    }
                    Some(Value::Array(new_items)) => {
                        let mut items = Vec::new();
                        add_items(&mut items, new_items);
                        container.insert(name.to_string(), Value::Array(items));
                    }
                    Some(Value::Object(new_object)) => {
                        // RFC 7644 3.5.2.1/3.5.2.3: sub-attributes not given are left unchanged.
                        match container.get_mut(name) {
                            Some(Value::Object(existing)) => {
                                for (key, inner) in new_object {
                                    existing.insert(key, inner);
                                }
                            }
                            _ => {
                                container.insert(name.to_string(), Value::Object(new_object));
                            }
                        }
                    }
                    Some(simple) => {
                        container.insert(name.to_string(), simple);
                    }
                }
            }
            (_, Some(sub)) => {
                let value = value.unwrap_or(&Value::Null);
                let canonical = canonical_value(sub, value, &display)?;
                let container = self.container(attribute.home)?;
                if definition.multi_valued {
                    if let Some(Value::Array(items)) = container.get_mut(name) {
                        for item in items.iter_mut() {
                            if let Value::Object(object) = item {
                                set_or_remove(object, sub.name, canonical.clone());
                            }
                        }
                    } else if let Some(canonical) = canonical {
                        let mut element = Map::new();
                        element.insert(sub.name.to_string(), canonical);
                        container
                            .insert(name.to_string(), Value::Array(vec![Value::Object(element)]));
                    }
                } else {
                    let entry = container
                        .entry(name.to_string())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if !entry.is_object() {
                        *entry = Value::Object(Map::new());
                    }
                    if let Value::Object(object) = entry {
                        set_or_remove(object, sub.name, canonical);
                    }
                }
            }
        }
        self.tidy(attribute)
    }

    fn apply_filtered(
        &mut self,
        op: PatchOpKind,
        path: &PatchPath,
        attribute: ResolvedAttr,
        filter: &Filter,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        let definition = attribute.attribute;
        if !definition.multi_valued || !definition.is_complex() {
            return Err(ScimError::invalid_path(format!(
                "'{path}': a value filter needs a multi-valued complex attribute"
            )));
        }
        let resolved = resolve_relative(&attribute, filter)
            .map_err(|error| ScimError::invalid_path(format!("'{path}': {error}")))?;
        let sub = match &path.sub_attr {
            None => None,
            Some(text) => Some(definition.sub_attribute(text).ok_or_else(|| {
                ScimError::invalid_path(format!(
                    "'{}' has no sub-attribute '{text}'",
                    definition.name
                ))
            })?),
        };
        let display = attribute.display();
        let name = definition.name;
        let new_element = match (op, sub) {
            (PatchOpKind::Remove, _) => None,
            (_, Some(sub)) => Some(canonical_value(
                sub,
                value.unwrap_or(&Value::Null),
                &display,
            )?),
            (_, None) => Some(canonical_single(
                definition,
                value.unwrap_or(&Value::Null),
                &display,
            )?),
        };
        let container = self.container(attribute.home)?;
        let mut items = match container.remove(name) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let matched: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, item)| resolved.matches_element(item))
            .map(|(index, _)| index)
            .collect();
        match (op, sub, new_element) {
            (PatchOpKind::Remove, None, _) => {
                let mut index = 0;
                items.retain(|_| {
                    let keep = !matched.contains(&index);
                    index += 1;
                    keep
                });
            }
            (PatchOpKind::Remove, Some(sub), _) => {
                for index in &matched {
                    if let Some(Value::Object(object)) = items.get_mut(*index) {
                        object.remove(sub.name);
                    }
                }
                items.retain(|item| item.as_object().is_some_and(|o| !o.is_empty()));
            }
            (op, sub, Some(new_value)) => {
                if matched.is_empty() {
                    // Entra adds and replaces `emails[type eq "work"].value` on users who have no
                    // work email yet; create the element the filter describes when it can.
                    let Some(mut element) = element_from_equalities(filter) else {
                        container_put(self.container(attribute.home)?, name, items);
                        return Err(ScimError::no_target(format!("'{path}' matches no value")));
                    };
                    match (sub, new_value) {
                        (Some(sub), Some(new_value)) => {
                            element.insert(sub.name.to_string(), new_value);
                        }
                        (None, Some(Value::Object(object))) => element.extend(object),
                        _ => {}
                    }
                    let canonical =
                        canonical_single(definition, &Value::Object(element), &display)?;
                    if let Some(canonical) = canonical {
                        add_items(&mut items, vec![canonical]);
                    }
                } else {
                    for index in &matched {
                        let Some(Value::Object(object)) = items.get_mut(*index) else {
                            continue;
                        };
                        match (sub, &new_value) {
                            (Some(sub), new_value) => {
                                set_or_remove(object, sub.name, new_value.clone())
                            }
                            (None, Some(Value::Object(new_object))) => {
                                if op == PatchOpKind::Replace {
                                    object.clear();
                                }
                                for (key, inner) in new_object {
                                    object.insert(key.clone(), inner.clone());
                                }
                            }
                            (None, _) => object.clear(),
                        }
                    }
                    items.retain(|item| item.as_object().is_some_and(|o| !o.is_empty()));
                    normalise_primary(&mut items, &matched);
                }
            }
            (_, _, None) => {}
        }
        container_put(self.container(attribute.home)?, name, items);
        self.tidy(attribute)
    }

    fn apply_members(
        &mut self,
        op: PatchOpKind,
        path: &PatchPath,
        attribute: ResolvedAttr,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        if attribute.sub_attribute.is_some() || path.sub_attr.is_some() {
            return Err(ScimError::invalid_path(format!(
                "'{path}': members are added, removed or replaced whole, not by sub-attribute"
            )));
        }
        let step = match (op, &path.value_filter) {
            (PatchOpKind::Remove, Some(filter)) => match ids_from_value_equalities(filter) {
                Some(ids) => MembershipStep::Remove(ids),
                None => MembershipStep::RemoveMatching(
                    resolve_relative(&attribute, filter)
                        .map_err(|error| ScimError::invalid_path(format!("'{path}': {error}")))?,
                ),
            },
            (_, Some(_)) => {
                return Err(ScimError::invalid_path(format!(
                    "'{path}': a member filter is only allowed with 'remove'"
                )))
            }
            (PatchOpKind::Add, None) => {
                MembershipStep::Add(parse_members(value.unwrap_or(&Value::Null))?)
            }
            (PatchOpKind::Replace, None) => {
                MembershipStep::ReplaceAll(parse_members(value.unwrap_or(&Value::Null))?)
            }
            (PatchOpKind::Remove, None) => match value {
                Some(listed) if !listed.is_null() => MembershipStep::Remove(
                    parse_members(listed)?
                        .into_iter()
                        .map(|member| member.id)
                        .collect(),
                ),
                _ => MembershipStep::RemoveAll,
            },
        };
        self.membership.push(step);
        Ok(())
    }
}

fn container_ref(
    document: &Map<String, Value>,
    home: AttributeHome,
) -> Option<&Map<String, Value>> {
    match home {
        AttributeHome::Extension(urn) => document.get(urn).and_then(Value::as_object),
        _ => Some(document),
    }
}

fn container_put(container: &mut Map<String, Value>, name: &str, items: Vec<Value>) {
    if !items.is_empty() {
        container.insert(name.to_string(), Value::Array(items));
    }
}

fn set_or_remove(object: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(value) => {
            object.insert(key.to_string(), value);
        }
        None => {
            object.remove(key);
        }
    }
}

/// Appends values not already present; a new `primary: true` value takes primacy from the rest.
fn add_items(items: &mut Vec<Value>, new_items: Vec<Value>) {
    let mut added = Vec::new();
    for item in new_items {
        if let Some(position) = items
            .iter()
            .position(|existing| same_element(existing, &item))
        {
            if let (Some(Value::Object(existing)), Value::Object(new_object)) =
                (items.get_mut(position), item)
            {
                existing.extend(new_object);
            }
            added.push(position);
        } else {
            items.push(item);
            added.push(items.len() - 1);
        }
    }
    normalise_primary(items, &added);
}

/// RFC 7643 section 2.4: at most one value may be primary; the most recently written one wins.
fn normalise_primary(items: &mut [Value], written: &[usize]) {
    let winner = written
        .iter()
        .rev()
        .find(|index| {
            items.get(**index).and_then(|item| item.get("primary")) == Some(&Value::Bool(true))
        })
        .copied();
    if let Some(winner) = winner {
        for (index, item) in items.iter_mut().enumerate() {
            if index != winner {
                if let Value::Object(object) = item {
                    if object.get("primary") == Some(&Value::Bool(true)) {
                        object.insert("primary".to_string(), Value::Bool(false));
                    }
                }
            }
        }
    }
}

/// Two values of a multi-valued attribute are the same when their `value`s are (ignoring case
/// for the comparison), or when they are equal as a whole.
fn same_element(left: &Value, right: &Value) -> bool {
    match (left.get("value"), right.get("value")) {
        (Some(Value::String(a)), Some(Value::String(b))) => a.eq_ignore_ascii_case(b),
        (Some(a), Some(b)) => a == b,
        _ => left == right,
    }
}

/// For `type eq "work"` (or `type eq "work" and primary eq true`): the element it describes.
fn element_from_equalities(filter: &Filter) -> Option<Map<String, Value>> {
    let mut element = Map::new();
    collect_equalities(filter, &mut element)?;
    Some(element)
}

fn collect_equalities(filter: &Filter, element: &mut Map<String, Value>) -> Option<()> {
    match filter {
        Filter::Compare(path, CompareOp::Eq, value) if path.sub_attr.is_none() => {
            let json = match value {
                CompValue::String(text) => Value::String(text.clone()),
                CompValue::Bool(flag) => Value::Bool(*flag),
                CompValue::Number(number) => Value::Number(number.clone()),
                CompValue::Null => return None,
            };
            element.insert(path.name.clone(), json);
            Some(())
        }
        Filter::And(left, right) => {
            collect_equalities(left, element)?;
            collect_equalities(right, element)
        }
        _ => None,
    }
}

/// `value eq "a"` or `value eq "a" or value eq "b"`: the ids named, for a direct removal.
fn ids_from_value_equalities(filter: &Filter) -> Option<Vec<PrincipalId>> {
    match filter {
        Filter::Compare(path, CompareOp::Eq, CompValue::String(id))
            if path.name.eq_ignore_ascii_case("value") && path.sub_attr.is_none() =>
        {
            Some(vec![PrincipalId::new(id.clone())])
        }
        Filter::Compare(path, CompareOp::Eq, CompValue::Number(number))
            if path.name.eq_ignore_ascii_case("value") && path.sub_attr.is_none() =>
        {
            Some(vec![PrincipalId::new(number.to_string())])
        }
        Filter::Or(left, right) => {
            let mut ids = ids_from_value_equalities(left)?;
            ids.extend(ids_from_value_equalities(right)?);
            Some(ids)
        }
        _ => None,
    }
}

/// Parses a canonical `object` of core attributes, for callers that build documents directly.
pub fn canonical_core(
    resource_type: &'static ResourceTypeDef,
    object: &Map<String, Value>,
) -> ScimResult<Map<String, Value>> {
    canonical_object(resource_type.schema.attributes, object, resource_type.name)
}

/// The password a PATCH sets, if any, found without applying it, so that the (deliberately
/// slow) hash is computed once however often the write is retried.
pub fn password_in(operations: &[PatchOperation]) -> Option<String> {
    operations.iter().rev().find_map(|operation| {
        if operation.op == PatchOpKind::Remove {
            return None;
        }
        let value = operation.value.as_ref()?;
        match &operation.path {
            Some(path)
                if path.attr.name.eq_ignore_ascii_case("password")
                    && path.value_filter.is_none() =>
            {
                value.as_str().map(str::to_string)
            }
            Some(_) => None,
            None => get_case_insensitive(value.as_object()?, "password")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::schema::{GROUP_RESOURCE, USER_RESOURCE};
    use serde_json::json;

    fn user() -> Map<String, Value> {
        json!({
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "b@work.com", "type": "work", "primary": true}],
            "active": true
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn patch(document: &Map<String, Value>, body: Value) -> ScimResult<PatchPlan> {
        apply_patch(&USER_RESOURCE, document, &parse_patch_request(&body)?)
    }

    fn ops(operations: Value) -> Value {
        json!({"schemas": [PATCH_OP_SCHEMA_FOR_TESTS], "Operations": operations})
    }

    const PATCH_OP_SCHEMA_FOR_TESTS: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

    #[test]
    fn a_patch_is_held_to_the_limits_only_in_what_it_changes() {
        // Stored before the limits existed: a display name past them, and many emails.
        let mut legacy = user();
        legacy.insert("displayName".into(), json!("d".repeat(300)));
        let emails: Vec<Value> = (0..150)
            .map(|n| json!({"value": format!("{n}@example.com")}))
            .collect();
        legacy.insert("emails".into(), Value::Array(emails));
        let other = patch(
            &legacy,
            ops(json!([{"op": "replace", "path": "title", "value": "Chief"}])),
        )
        .unwrap();
        assert_eq!(other.attributes["title"], json!("Chief"));
        let longer = patch(
            &legacy,
            ops(json!([{"op": "replace", "path": "displayName", "value": "e".repeat(300)}])),
        )
        .unwrap_err();
        assert!(longer.to_string().contains("'displayName'"), "{longer}");
        let another = patch(
            &legacy,
            ops(json!([{"op": "add", "path": "emails", "value": [{"value": "x@example.com"}]}])),
        )
        .unwrap_err();
        assert!(another.to_string().contains("'emails'"), "{another}");
        let fixed = patch(
            &legacy,
            ops(json!([{"op": "replace", "path": "displayName", "value": "Barbara"}])),
        )
        .unwrap();
        assert_eq!(fixed.attributes["displayName"], json!("Barbara"));
    }

    #[test]
    fn entra_capitalised_replace_with_a_string_boolean_deactivates() {
        let plan = patch(
            &user(),
            ops(json!([{"op": "Replace", "path": "active", "value": "False"}])),
        )
        .unwrap();
        assert_eq!(plan.attributes["active"], json!(false));
    }

    #[test]
    fn pathless_replace_with_dotted_and_urn_keys_sets_each_attribute() {
        let plan = patch(
            &user(),
            ops(json!([{"op": "replace", "value": {
                "displayName": "Bjfe",
                "name.givenName": "Kkom",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"
            }}])),
        )
        .unwrap();
        assert_eq!(plan.attributes["displayName"], json!("Bjfe"));
        assert_eq!(
            plan.attributes["name"],
            json!({"givenName": "Kkom", "familyName": "Jensen"})
        );
        assert_eq!(
            plan.attributes["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            json!({"employeeNumber": "Aklq"})
        );
        assert!(!plan.attributes.contains_key("name.givenName"));
    }

    #[test]
    fn a_value_path_replace_on_a_missing_element_creates_it_as_entra_expects() {
        let mut document = user();
        document.remove("emails");
        let plan = patch(
            &document,
            ops(json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@work.com"}])),
        )
        .unwrap();
        assert_eq!(
            plan.attributes["emails"],
            json!([{"type": "work", "value": "new@work.com"}])
        );
    }

    #[test]
    fn a_value_path_replace_changes_only_matching_elements() {
        let mut document = user();
        document.insert(
            "emails".into(),
            json!([{"value": "b@work.com", "type": "work"}, {"value": "b@home.com", "type": "home"}]),
        );
        let plan = patch(
            &document,
            ops(json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "x@home.com"}])),
        )
        .unwrap();
        assert_eq!(
            plan.attributes["emails"],
            json!([{"value": "b@work.com", "type": "work"}, {"value": "x@home.com", "type": "home"}])
        );
    }

    #[test]
    fn operations_apply_all_or_nothing() {
        let result = patch(
            &user(),
            ops(json!([
                {"op": "replace", "path": "displayName", "value": "ok"},
                {"op": "replace", "path": "groups", "value": []}
            ])),
        );
        assert_eq!(result.unwrap_err().code(), "mutability");
    }

    #[test]
    fn a_missing_value_on_a_boolean_means_false_as_the_databricks_sdk_sends_it() {
        let plan = patch(&user(), ops(json!([{"op": "replace", "path": "active"}]))).unwrap();
        assert_eq!(plan.attributes["active"], json!(false));
        let plan = patch(
            &user(),
            ops(json!([{"op": "replace", "path": "displayName"}])),
        )
        .unwrap();
        assert!(!plan.attributes.contains_key("displayName"));
    }

    #[test]
    fn remove_needs_a_path_and_an_unknown_op_is_invalid_syntax() {
        let error = parse_patch_request(&ops(json!([{"op": "remove"}]))).unwrap_err();
        assert_eq!(error.code(), "noTarget");
        let error = parse_patch_request(&ops(json!([{"op": "merge", "path": "x", "value": 1}])))
            .unwrap_err();
        assert_eq!(error.code(), "invalidSyntax");
        let error = parse_patch_request(&json!({"schemas": []})).unwrap_err();
        assert_eq!(error.code(), "invalidSyntax");
    }

    #[test]
    fn removing_a_required_attribute_is_refused() {
        let error = patch(&user(), ops(json!([{"op": "remove", "path": "userName"}]))).unwrap_err();
        assert_eq!(error.code(), "invalidValue");
    }

    #[test]
    fn okta_pathless_replace_ignores_the_read_only_id() {
        let plan = patch(
            &user(),
            ops(json!([{"op": "replace", "value": {"id": "x", "active": false}}])),
        )
        .unwrap();
        assert_eq!(plan.attributes["active"], json!(false));
        assert!(!plan.attributes.contains_key("id"));
    }

    #[test]
    fn adding_a_primary_email_demotes_the_previous_primary() {
        let plan = patch(
            &user(),
            ops(json!([{"op": "add", "path": "emails", "value": [{"value": "n@x.com", "type": "home", "primary": true}]}])),
        )
        .unwrap();
        let emails = plan.attributes["emails"].as_array().unwrap();
        assert_eq!(emails[0]["primary"], json!(false));
        assert_eq!(emails[1]["primary"], json!(true));
    }

    #[test]
    fn passwords_leave_the_document_and_are_found_before_applying() {
        let body = ops(json!([{"op": "replace", "path": "password", "value": "s3cret"}]));
        let operations = parse_patch_request(&body).unwrap();
        assert_eq!(password_in(&operations).as_deref(), Some("s3cret"));
        let plan = apply_patch(&USER_RESOURCE, &user(), &operations).unwrap();
        assert_eq!(plan.password.as_deref(), Some("s3cret"));
        assert!(!plan.attributes.contains_key("password"));
    }

    fn group_plan(body: Value) -> PatchPlan {
        let group = json!({"displayName": "g"}).as_object().cloned().unwrap();
        apply_patch(
            &GROUP_RESOURCE,
            &group,
            &parse_patch_request(&body).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn member_operations_become_membership_steps_without_touching_the_document() {
        let plan = group_plan(ops(json!([
            {"op": "remove", "path": "members[value eq \"89bb\"]"},
            {"op": "add", "path": "members", "value": [{"value": "23a3", "display": "x"}]},
            {"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "u1091"}]},
            {"op": "replace", "path": "members", "value": [{"value": "a"}, {"value": "b"}]},
            {"op": "remove", "path": "members"}
        ])));
        assert_eq!(
            plan.attributes,
            json!({"displayName": "g"}).as_object().cloned().unwrap()
        );
        assert!(
            matches!(&plan.membership[0], MembershipStep::Remove(ids) if ids[0].as_str() == "89bb")
        );
        assert!(
            matches!(&plan.membership[1], MembershipStep::Add(members) if members[0].id.as_str() == "23a3")
        );
        assert!(
            matches!(&plan.membership[2], MembershipStep::Remove(ids) if ids[0].as_str() == "u1091")
        );
        assert!(
            matches!(&plan.membership[3], MembershipStep::ReplaceAll(members) if members.len() == 2)
        );
        assert!(matches!(&plan.membership[4], MembershipStep::RemoveAll));
    }

    #[test]
    fn okta_group_rename_with_id_is_a_plain_rename() {
        let plan = group_plan(ops(
            json!([{"op": "replace", "value": {"id": "abf4", "displayName": "Test SCIMv2"}}]),
        ));
        assert_eq!(plan.attributes["displayName"], json!("Test SCIMv2"));
        assert!(plan.membership.is_empty());
    }
}
