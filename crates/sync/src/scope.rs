//! The scope filter (`policy.filter`): which source users and service principals a job syncs,
//! written in the SCIM filter language (RFC 7644 section 3.4.2.2), parsed by `scimitar-scim`
//! and evaluated here against the source's [`Identity`].
//!
//! A job compares a few attributes only, and a source (SCIM, LDAP, a file) is reduced to those
//! when read, so a filter may name only them: `userName`, `displayName`, `name.givenName`,
//! `name.familyName`, `emails` (or `emails.value`, `emails[value ...]`: the primary address),
//! `externalId`, `applicationId`, `active` and `id` (the source's id). Any other name is
//! refused when the job is loaded, rather than matching nothing in silence. An attribute a kind
//! lacks (`emails` of a service principal) is absent, as in any SCIM filter: a comparison with
//! it is false, `ne` and `not (...)` true.

use crate::model::{Identity, Kind};
use scimitar_scim::{AttrPath, CompValue, CompareOp, Filter};
use serde::{Deserialize, Serialize};

/// The schema URNs a filter may qualify a name with (the kinds it applies to).
const CORE_SCHEMAS: [&str; 2] = [
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal",
];

/// An attribute a filter may name: where the identity holds it, and how it compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// A string attribute at this flat path; `true` when it compares case-sensitively
    /// (SCIM's `caseExact`).
    Text(&'static str, bool),
    /// The source object's own id (case-sensitive).
    Id,
    /// `active`.
    Active,
}

impl Field {
    /// The field an attribute path names, case-insensitively as SCIM names are.
    fn of(path: &AttrPath) -> Result<Field, String> {
        if let Some(urn) = &path.urn {
            if !CORE_SCHEMAS
                .iter()
                .any(|schema| schema.eq_ignore_ascii_case(urn))
            {
                return Err(format!(
                    "the scope filter names {path}: only the core User and ServicePrincipal \
                     schemas' attributes can be filtered on"
                ));
            }
        }
        let name = path.name.to_ascii_lowercase();
        let sub = path.sub_attr.as_deref().map(str::to_ascii_lowercase);
        let field = match (name.as_str(), sub.as_deref()) {
            ("username", None) => Field::Text("userName", false),
            ("displayname", None) => Field::Text("displayName", false),
            ("name", Some("givenname")) => Field::Text("name.givenName", false),
            ("name", Some("familyname")) => Field::Text("name.familyName", false),
            ("emails", None | Some("value")) => Field::Text("emails", false),
            ("externalid", None) => Field::Text("externalId", true),
            ("applicationid", None) => Field::Text("applicationId", true),
            ("active", None) => Field::Active,
            ("id", None) => Field::Id,
            _ => {
                return Err(format!(
                    "the scope filter names {path}, which a job does not read: it can use \
                     userName, displayName, name.givenName, name.familyName, emails, \
                     externalId, applicationId, active and id"
                ))
            }
        };
        Ok(field)
    }

    /// Checks that `operator value` can compare with this field, so that a filter that could
    /// never match as written is refused at load.
    fn check(self, path: &AttrPath, operator: CompareOp, value: &CompValue) -> Result<(), String> {
        match (self, value) {
            (_, CompValue::Null) if matches!(operator, CompareOp::Eq | CompareOp::Ne) => Ok(()),
            (Field::Active, CompValue::Bool(_))
                if matches!(operator, CompareOp::Eq | CompareOp::Ne) =>
            {
                Ok(())
            }
            (Field::Active, _) => Err(format!(
                "the scope filter compares {path} {operator} {value}: active compares with eq or \
                 ne and true or false"
            )),
            (Field::Text(..) | Field::Id, CompValue::String(_)) => Ok(()),
            (Field::Text(..) | Field::Id, _) => Err(format!(
                "the scope filter compares {path} {operator} {value}: {path} compares with a \
                 string"
            )),
        }
    }
}

/// A parsed scope filter: its text (what the configuration and the plan show) and its tree.
#[derive(Debug, Clone)]
pub struct ScopeFilter {
    text: String,
    filter: Filter,
}

impl PartialEq for ScopeFilter {
    fn eq(&self, other: &ScopeFilter) -> bool {
        self.text == other.text
    }
}

impl Serialize for ScopeFilter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ScopeFilter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ScopeFilter::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl ScopeFilter {
    /// Parses and checks a filter: the parser's message when it does not parse, else the
    /// first name or comparison a job cannot evaluate.
    pub fn parse(text: &str) -> Result<ScopeFilter, String> {
        let filter = scimitar_scim::parse_filter(text)
            .map_err(|error| format!("the scope filter {text:?} does not parse: {error}"))?;
        check(&filter)?;
        Ok(ScopeFilter {
            text: text.to_string(),
            filter,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether a source object is in the filter's scope. Groups are scoped by `policy.groups`
    /// only: the filter is for users and service principals, and a group always passes.
    pub fn admits(&self, identity: &Identity) -> bool {
        identity.kind == Kind::Group || evaluate(&self.filter, identity)
    }
}

/// Refuses what [`evaluate`] could not answer: unknown names, value filters on anything but
/// `emails`, comparisons of the wrong type.
fn check(filter: &Filter) -> Result<(), String> {
    match filter {
        Filter::Present(path) => Field::of(path).map(|_| ()),
        Filter::Compare(path, operator, value) => Field::of(path)?.check(path, *operator, value),
        Filter::ValuePath(path, inner) => {
            if Field::of(path)? != Field::Text("emails", false) || path.sub_attr.is_some() {
                return Err(format!(
                    "the scope filter has {path}[...]: only emails[...] can be filtered by value"
                ));
            }
            check_email_element(inner)
        }
        Filter::And(left, right) | Filter::Or(left, right) => {
            check(left)?;
            check(right)
        }
        Filter::Not(inner) => check(inner),
    }
}

/// The inside of `emails[...]`: only `value` (the address) is read.
fn check_email_element(filter: &Filter) -> Result<(), String> {
    match filter {
        Filter::Present(path) | Filter::Compare(path, _, _)
            if path.urn.is_some()
                || path.sub_attr.is_some()
                || !path.name.eq_ignore_ascii_case("value") =>
        {
            Err(format!(
                "the scope filter has emails[{path} ...]: only the address (value) is read"
            ))
        }
        Filter::Present(_) => Ok(()),
        Filter::Compare(path, operator, value) => {
            Field::Text("emails", false).check(path, *operator, value)
        }
        Filter::ValuePath(path, _) => Err(format!(
            "the scope filter nests {path}[...] inside emails[...]"
        )),
        Filter::And(left, right) | Filter::Or(left, right) => {
            check_email_element(left)?;
            check_email_element(right)
        }
        Filter::Not(inner) => check_email_element(inner),
    }
}

/// A checked filter on one identity. Names resolve as [`check`] allowed, so a path that does
/// not resolve here (it cannot happen) is treated as absent.
fn evaluate(filter: &Filter, identity: &Identity) -> bool {
    match filter {
        Filter::Present(path) => Field::of(path)
            .map(|field| present(field, identity))
            .unwrap_or(false),
        Filter::Compare(path, operator, value) => Field::of(path)
            .map(|field| compare(field, identity, *operator, value))
            .unwrap_or(false),
        // `emails[...]` of the one (primary) address a job reads: its inner paths are `value`.
        Filter::ValuePath(_, inner) => evaluate_email_element(inner, identity),
        Filter::And(left, right) => evaluate(left, identity) && evaluate(right, identity),
        Filter::Or(left, right) => evaluate(left, identity) || evaluate(right, identity),
        Filter::Not(inner) => !evaluate(inner, identity),
    }
}

fn evaluate_email_element(filter: &Filter, identity: &Identity) -> bool {
    let email = Field::Text("emails", false);
    match filter {
        Filter::Present(_) => present(email, identity),
        Filter::Compare(_, operator, value) => compare(email, identity, *operator, value),
        Filter::ValuePath(..) => false,
        Filter::And(left, right) => {
            evaluate_email_element(left, identity) && evaluate_email_element(right, identity)
        }
        Filter::Or(left, right) => {
            evaluate_email_element(left, identity) || evaluate_email_element(right, identity)
        }
        Filter::Not(inner) => !evaluate_email_element(inner, identity),
    }
}

/// The text a field holds, if any (not for `active`).
fn text_of(field: Field, identity: &Identity) -> Option<&str> {
    match field {
        Field::Text(path, _) => identity.text(path),
        Field::Id => Some(identity.id.as_str()),
        Field::Active => None,
    }
}

fn present(field: Field, identity: &Identity) -> bool {
    match field {
        Field::Active => identity.active.is_some(),
        _ => text_of(field, identity).is_some_and(|text| !text.is_empty()),
    }
}

/// One comparison, with the semantics Scimitar's own filters have: `ne` is `not eq`, `eq
/// null` asks for absence, and an absent attribute compares false.
fn compare(field: Field, identity: &Identity, operator: CompareOp, wanted: &CompValue) -> bool {
    if operator == CompareOp::Ne {
        return !compare(field, identity, CompareOp::Eq, wanted);
    }
    if matches!(wanted, CompValue::Null) {
        return operator == CompareOp::Eq && !present(field, identity);
    }
    match (field, wanted) {
        (Field::Active, CompValue::Bool(wanted)) => identity.active == Some(*wanted),
        (_, CompValue::String(wanted)) => {
            let Some(actual) = text_of(field, identity) else {
                return false;
            };
            let case_exact = matches!(field, Field::Text(_, true) | Field::Id);
            let (actual, wanted) = if case_exact {
                (actual.to_string(), wanted.clone())
            } else {
                (actual.to_lowercase(), wanted.to_lowercase())
            };
            match operator {
                CompareOp::Eq => actual == wanted,
                CompareOp::Ne => actual != wanted,
                CompareOp::Co => actual.contains(&wanted),
                CompareOp::Sw => actual.starts_with(&wanted),
                CompareOp::Ew => actual.ends_with(&wanted),
                CompareOp::Gt => actual > wanted,
                CompareOp::Ge => actual >= wanted,
                CompareOp::Lt => actual < wanted,
                CompareOp::Le => actual <= wanted,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn ada() -> Identity {
        Identity::new(Kind::User, "u1")
            .with("userName", "Ada")
            .with("emails", "ada@Example.com")
            .with("externalId", "E-1")
            .with("name.givenName", "Ada")
    }

    fn admits(filter: &str, identity: &Identity) -> bool {
        ScopeFilter::parse(filter).expect(filter).admits(identity)
    }

    #[test]
    fn the_issue_example_admits_active_users_of_one_domain() {
        let filter = "active eq true and emails.value ew \"@example.com\"";
        assert!(admits(filter, &ada()));
        assert!(!admits(filter, &ada().inactive()));
        assert!(!admits(filter, &ada().with("emails", "ada@elsewhere.org")));
        // No address at all: the comparison is false.
        let mut no_email = ada();
        no_email.attributes.remove("emails");
        assert!(!admits(filter, &no_email));
    }

    #[test]
    fn names_compare_without_case_and_ids_with_it() {
        assert!(admits("userName eq \"ADA\"", &ada()));
        assert!(admits("USERNAME sw \"a\"", &ada()));
        assert!(!admits("externalId eq \"e-1\"", &ada()));
        assert!(admits("externalId eq \"E-1\"", &ada()));
        assert!(admits("id eq \"u1\"", &ada()));
        assert!(admits("name.givenName co \"d\"", &ada()));
        assert!(admits(
            "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"ada\"",
            &ada()
        ));
    }

    #[test]
    fn absent_attributes_compare_false_and_ne_not_and_null_are_their_opposites() {
        assert!(!admits("displayName eq \"x\"", &ada()));
        assert!(admits("displayName ne \"x\"", &ada()));
        assert!(admits("displayName eq null", &ada()));
        assert!(!admits("displayName pr", &ada()));
        assert!(admits("userName pr", &ada()));
        assert!(admits(
            "not (emails co \"example\")",
            &ada().with("emails", "a@b")
        ));
        assert!(admits(
            "userName eq \"x\" or emails[value ew \"@example.com\"]",
            &ada()
        ));
        // A service principal has no emails: a filter on them leaves it out.
        let robot = Identity::new(Kind::ServicePrincipal, "s1").with("applicationId", "A-1");
        assert!(!admits("emails ew \"@example.com\"", &robot));
        assert!(admits("applicationId eq \"A-1\" or emails pr", &robot));
    }

    #[test]
    fn groups_are_never_filtered_out() {
        let group = Identity::new(Kind::Group, "g1").with("displayName", "eng");
        assert!(admits("userName eq \"nobody\"", &group));
    }

    #[test]
    fn a_filter_that_does_not_parse_is_refused_with_the_parsers_message() {
        let error = ScopeFilter::parse("userName eq").expect_err("refused");
        let parser = scimitar_scim::parse_filter("userName eq").expect_err("refused");
        assert!(error.contains(&parser.message), "{error}");
    }

    #[test]
    fn names_a_job_does_not_read_and_comparisons_of_the_wrong_type_are_refused() {
        for (filter, named) in [
            ("title eq \"boss\"", "title"),
            ("name.formatted pr", "name.formatted"),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"x\"",
                "department",
            ),
            ("addresses[value eq \"x\"]", "addresses"),
            ("emails[type eq \"work\"]", "type"),
            ("active eq \"yes\"", "active"),
            ("active gt true", "active"),
            ("userName eq 5", "userName"),
        ] {
            let error = ScopeFilter::parse(filter).expect_err(filter);
            assert!(error.contains(named), "{filter}: {error}");
        }
    }

    #[test]
    fn a_filter_reads_from_and_writes_to_its_text() {
        #[derive(Deserialize, Serialize)]
        struct Holder {
            filter: ScopeFilter,
        }
        let holder: Holder = toml::from_str("filter = 'active eq true'").expect("parses");
        assert_eq!(holder.filter.as_str(), "active eq true");
        assert!(toml::to_string(&holder)
            .expect("writes")
            .contains("active eq true"));
        let error = toml::from_str::<Holder>("filter = 'active eq'")
            .err()
            .expect("refused");
        assert!(error.to_string().contains("does not parse"), "{error}");
    }
}
