//! Attribute mappings (`[policy.mappings.user]`, `.group`, `.service_principal`): what a
//! target attribute is made of, when it is not the source's attribute of the same name. Each
//! maps one target attribute from a source attribute or a constant, through a list of simple
//! transforms, with a default for when the source lacks the value:
//!
//! ```toml
//! [policy.mappings.user]
//! userName = { from = "email", transforms = [{ split = "@" }, "first", "lower"] }
//! displayName = { from = "displayName", transforms = ["trim"], default = "(no name)" }
//! externalId = { from = "id", transforms = [{ prefix = "hr-" }] }
//! [policy.mappings.group]
//! displayName = { from = "displayName", transforms = [{ replace = [" ", "-"] }, "lower"] }
//! ```
//!
//! The planner asks [`Mappings::desired`] for a source object's attributes, so the mapped
//! values are what it compares with the target, matches brownfield objects by, and writes: a
//! re-run with no change at the source writes nothing, and a changed mapping is an update of
//! every object it changes. Unknown attributes and transforms, and transform lists that cannot
//! yield one value, are refused when the job is loaded.

use crate::model::{Identity, Kind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// An attribute a mapping can write or read, by the name a configuration gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Attribute {
    UserName,
    DisplayName,
    GivenName,
    FamilyName,
    /// The primary email address.
    Email,
    ExternalId,
    Active,
    ApplicationId,
}

impl Attribute {
    const ALL: [Attribute; 8] = [
        Attribute::UserName,
        Attribute::DisplayName,
        Attribute::GivenName,
        Attribute::FamilyName,
        Attribute::Email,
        Attribute::ExternalId,
        Attribute::Active,
        Attribute::ApplicationId,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Attribute::UserName => "userName",
            Attribute::DisplayName => "displayName",
            Attribute::GivenName => "givenName",
            Attribute::FamilyName => "familyName",
            Attribute::Email => "email",
            Attribute::ExternalId => "externalId",
            Attribute::Active => "active",
            Attribute::ApplicationId => "applicationId",
        }
    }

    /// Where an [`Identity`] holds it (`active` is apart, in `Identity::active`).
    pub fn path(self) -> &'static str {
        match self {
            Attribute::GivenName => "name.givenName",
            Attribute::FamilyName => "name.familyName",
            Attribute::Email => "emails",
            other => other.as_str(),
        }
    }

    /// The attributes the engine compares and writes for objects of `kind`.
    pub fn of(kind: Kind) -> &'static [Attribute] {
        match kind {
            Kind::User => &[
                Attribute::UserName,
                Attribute::DisplayName,
                Attribute::GivenName,
                Attribute::FamilyName,
                Attribute::Email,
                Attribute::ExternalId,
                Attribute::Active,
            ],
            Kind::Group => &[Attribute::DisplayName, Attribute::ExternalId],
            Kind::ServicePrincipal => &[
                Attribute::ApplicationId,
                Attribute::DisplayName,
                Attribute::ExternalId,
                Attribute::Active,
            ],
        }
    }

    /// The attribute of `kind` named `name` (exactly as written: configuration keys are
    /// case-sensitive), or a refusal that lists the ones there are.
    fn parse(kind: Kind, name: &str, role: &str) -> Result<Attribute, String> {
        let allowed = Attribute::of(kind);
        Attribute::ALL
            .into_iter()
            .find(|attribute| attribute.as_str() == name && allowed.contains(attribute))
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
                format!(
                    "unknown {role} attribute {name:?} for a {}: one of {}",
                    kind.as_str(),
                    names.join(", ")
                )
            })
    }
}

/// Where a mapping's value comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Origin {
    /// A source attribute.
    Attribute(Attribute),
    /// The source object's own id.
    Id,
    /// The same value for every object.
    Constant(Value),
}

/// One step of a mapping. Text steps applied to the parts of a `split` apply to each part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Transform {
    Lower,
    Upper,
    /// Leading and trailing whitespace removed.
    Trim,
    /// `{ prefix = "dbx-" }`: text put before.
    Prefix(String),
    /// `{ suffix = "@corp" }`: text put after.
    Suffix(String),
    /// `{ replace = ["old", "new"] }`: every occurrence of a plain substring (no patterns).
    Replace(String, String),
    /// `{ split = "@" }`: the parts between separators, to be narrowed by `first` or `last`.
    Split(String),
    /// The first part of a `split`.
    First,
    /// The last part of a `split`.
    Last,
}

impl Transform {
    pub fn name(&self) -> &'static str {
        match self {
            Transform::Lower => "lower",
            Transform::Upper => "upper",
            Transform::Trim => "trim",
            Transform::Prefix(_) => "prefix",
            Transform::Suffix(_) => "suffix",
            Transform::Replace(..) => "replace",
            Transform::Split(_) => "split",
            Transform::First => "first",
            Transform::Last => "last",
        }
    }
}

/// A value between transforms: one text, or the parts of a split.
enum Piece {
    Text(String),
    Parts(Vec<String>),
}

/// Runs transforms over a text. [`check_transforms`] has made sure that the list ends on one
/// text and that `first` and `last` follow a `split`.
pub fn transform(text: String, transforms: &[Transform]) -> String {
    let mut piece = Piece::Text(text);
    for step in transforms {
        piece = match (piece, step) {
            (Piece::Text(text), Transform::Split(separator)) => {
                Piece::Parts(text.split(separator.as_str()).map(str::to_string).collect())
            }
            (Piece::Parts(parts), Transform::First) => {
                Piece::Text(parts.into_iter().next().unwrap_or_default())
            }
            (Piece::Parts(parts), Transform::Last) => {
                Piece::Text(parts.into_iter().next_back().unwrap_or_default())
            }
            (Piece::Text(text), step) => Piece::Text(apply_text(text, step)),
            (Piece::Parts(parts), step) => Piece::Parts(
                parts
                    .into_iter()
                    .map(|part| apply_text(part, step))
                    .collect(),
            ),
        };
    }
    match piece {
        Piece::Text(text) => text,
        // Not reached for a checked list; the parts joined back lose nothing.
        Piece::Parts(parts) => parts.concat(),
    }
}

fn apply_text(text: String, step: &Transform) -> String {
    match step {
        Transform::Lower => text.to_lowercase(),
        Transform::Upper => text.to_uppercase(),
        Transform::Trim => text.trim().to_string(),
        Transform::Prefix(prefix) => format!("{prefix}{text}"),
        Transform::Suffix(suffix) => format!("{text}{suffix}"),
        Transform::Replace(pattern, with) => text.replace(pattern.as_str(), with),
        // Handled by [`transform`]: a split of a part, or `first` of a text, is refused at load.
        Transform::Split(_) | Transform::First | Transform::Last => text,
    }
}

/// Refuses a list of transforms that would not yield one text: `first` or `last` without a
/// `split` before it, a second `split` before either, a list ending in parts, an empty
/// separator or pattern.
pub fn check_transforms(transforms: &[Transform]) -> Result<(), String> {
    let mut split = false;
    for step in transforms {
        match step {
            Transform::Split(separator) => {
                if separator.is_empty() {
                    return Err("split needs a separator that is not empty".into());
                }
                if split {
                    return Err("split twice: take first or last of the first split".into());
                }
                split = true;
            }
            Transform::First | Transform::Last => {
                if !split {
                    return Err(format!("{} needs a split before it", step.name()));
                }
                split = false;
            }
            Transform::Replace(pattern, _) if pattern.is_empty() => {
                return Err("replace needs a pattern that is not empty".into());
            }
            _ => {}
        }
    }
    if split {
        return Err("the transforms end with split: add first or last".into());
    }
    Ok(())
}

/// How one target attribute is made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeMapping {
    pub origin: Origin,
    pub transforms: Vec<Transform>,
    /// The value when the source lacks one (or the transforms leave an empty text); not
    /// transformed. Without it the attribute is not written, and the target keeps its own.
    pub default: Option<Value>,
}

/// A mapping as written: `from` or `value`, `transforms`, `default`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenMapping {
    from: Option<String>,
    value: Option<Value>,
    #[serde(default)]
    transforms: Vec<Transform>,
    default: Option<Value>,
}

impl AttributeMapping {
    /// A mapping of `target` (an attribute of `kind`) as written, checked.
    fn parse(kind: Kind, target: Attribute, written: WrittenMapping) -> Result<Self, String> {
        let constant = |value: Value, role: &str| -> Result<Value, String> {
            match (&value, target) {
                (Value::Bool(_), Attribute::Active) => Ok(value),
                (Value::String(_), attribute) if attribute != Attribute::Active => Ok(value),
                _ => Err(format!(
                    "the {role} of {} is {}, not {value}",
                    target.as_str(),
                    if target == Attribute::Active {
                        "true or false"
                    } else {
                        "a string"
                    }
                )),
            }
        };
        let origin = match (written.from, written.value) {
            (Some(from), None) if from == "id" => Origin::Id,
            (Some(from), None) => Origin::Attribute(Attribute::parse(kind, &from, "source")?),
            (None, Some(value)) => Origin::Constant(constant(value, "value")?),
            _ => {
                return Err(format!(
                    "{} needs either from (a source attribute) or value (a constant)",
                    target.as_str()
                ))
            }
        };
        check_transforms(&written.transforms)
            .map_err(|error| format!("{}: {error}", target.as_str()))?;
        let default = written
            .default
            .map(|value| constant(value, "default"))
            .transpose()?;
        Ok(AttributeMapping {
            origin,
            transforms: written.transforms,
            default,
        })
    }

    /// The mapped value for one source object: `None` when it lacks one and there is no
    /// default.
    pub fn value(&self, target: Attribute, source: &Identity) -> Option<Value> {
        let raw = match &self.origin {
            Origin::Attribute(Attribute::Active) => source.active.map(Value::Bool),
            Origin::Attribute(attribute) => source.attributes.get(attribute.path()).cloned(),
            Origin::Id => Some(Value::String(source.id.clone())),
            Origin::Constant(value) => Some(value.clone()),
        };
        let mapped = raw.and_then(|raw| {
            let text = match raw {
                Value::String(text) => text,
                Value::Bool(flag) => flag.to_string(),
                _ => return None,
            };
            let text = transform(text, &self.transforms);
            if target == Attribute::Active {
                match text.to_ascii_lowercase().as_str() {
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    _ => None,
                }
            } else {
                (!text.is_empty()).then_some(Value::String(text))
            }
        });
        mapped.or_else(|| self.default.clone())
    }
}

/// A job's attribute mappings, by kind and target attribute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WrittenMappings")]
pub struct Mappings {
    pub by_kind: BTreeMap<Kind, BTreeMap<Attribute, AttributeMapping>>,
}

/// `[policy.mappings]` as written: a table per kind, keyed by target attribute.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct WrittenMappings {
    user: BTreeMap<String, WrittenMapping>,
    group: BTreeMap<String, WrittenMapping>,
    service_principal: BTreeMap<String, WrittenMapping>,
}

impl TryFrom<WrittenMappings> for Mappings {
    type Error = String;

    fn try_from(written: WrittenMappings) -> Result<Mappings, String> {
        let mut by_kind = BTreeMap::new();
        for (kind, table, written) in [
            (Kind::User, "user", written.user),
            (Kind::Group, "group", written.group),
            (
                Kind::ServicePrincipal,
                "service_principal",
                written.service_principal,
            ),
        ] {
            let mut mappings = BTreeMap::new();
            for (name, mapping) in written {
                let parsed = Attribute::parse(kind, &name, "target")
                    .and_then(|target| {
                        AttributeMapping::parse(kind, target, mapping).map(|m| (target, m))
                    })
                    .map_err(|error| format!("policy.mappings.{table}.{name}: {error}"))?;
                mappings.insert(parsed.0, parsed.1);
            }
            if !mappings.is_empty() {
                by_kind.insert(kind, mappings);
            }
        }
        Ok(Mappings { by_kind })
    }
}

impl Mappings {
    pub fn is_empty(&self) -> bool {
        self.by_kind.is_empty()
    }

    /// Applies the mappings of the source object's kind to the attributes it would have
    /// unmapped: a mapped value replaces the attribute, a mapping without one removes it (it
    /// is not written). `active` is apart: see [`Mappings::active`].
    pub fn apply(&self, source: &Identity, attributes: &mut BTreeMap<String, Value>) {
        let Some(mappings) = self.by_kind.get(&source.kind) else {
            return;
        };
        for (target, mapping) in mappings {
            if *target == Attribute::Active {
                continue;
            }
            match mapping.value(*target, source) {
                Some(value) => attributes.insert(target.path().to_string(), value),
                None => attributes.remove(target.path()),
            };
        }
    }

    /// Whether the target object should be active: the mapped value, else the source's.
    pub fn active(&self, source: &Identity) -> Option<bool> {
        self.by_kind
            .get(&source.kind)
            .and_then(|mappings| mappings.get(&Attribute::Active))
            .and_then(|mapping| mapping.value(Attribute::Active, source))
            .and_then(|value| value.as_bool())
            .or(source.active)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn run(text: &str, steps: &[Transform]) -> String {
        check_transforms(steps).expect("a valid list");
        transform(text.to_string(), steps)
    }

    #[test]
    fn lower_upper_and_trim_change_case_and_whitespace() {
        assert_eq!(run("Ada Lovelace", &[Transform::Lower]), "ada lovelace");
        assert_eq!(run("Ada Lovelace", &[Transform::Upper]), "ADA LOVELACE");
        assert_eq!(run("  Ada \t", &[Transform::Trim]), "Ada");
        assert_eq!(run("Straße", &[Transform::Upper]), "STRASSE");
    }

    #[test]
    fn prefix_and_suffix_add_text_around() {
        assert_eq!(run("ada", &[Transform::Prefix("dbx-".into())]), "dbx-ada");
        assert_eq!(run("ada", &[Transform::Suffix("@corp".into())]), "ada@corp");
    }

    #[test]
    fn replace_is_a_plain_substring_replace_of_every_occurrence() {
        let steps = [Transform::Replace(".".into(), "_".into())];
        assert_eq!(run("a.b.c", &steps), "a_b_c");
        // A pattern's special characters are plain text.
        let steps = [Transform::Replace("a*".into(), "x".into())];
        assert_eq!(run("a*a*b", &steps), "xxb");
        assert_eq!(run("aab", &steps), "aab");
    }

    #[test]
    fn split_then_first_or_last_takes_one_part() {
        let local = [Transform::Split("@".into()), Transform::First];
        assert_eq!(run("ada@example.com", &local), "ada");
        let domain = [Transform::Split("@".into()), Transform::Last];
        assert_eq!(run("ada@example.com", &domain), "example.com");
        // Without the separator the whole text is the one part.
        assert_eq!(run("ada", &local), "ada");
        // Text steps between a split and its first apply to every part.
        let steps = [
            Transform::Split(".".into()),
            Transform::Upper,
            Transform::Last,
        ];
        assert_eq!(run("a.b", &steps), "B");
    }

    #[test]
    fn transform_lists_that_cannot_yield_one_text_are_refused() {
        for (steps, named) in [
            (vec![Transform::First], "first needs a split"),
            (vec![Transform::Split("@".into())], "end with split"),
            (
                vec![Transform::Split("@".into()), Transform::Split(".".into())],
                "split twice",
            ),
            (vec![Transform::Split(String::new())], "separator"),
            (
                vec![Transform::Replace(String::new(), "x".into())],
                "pattern",
            ),
        ] {
            let error = check_transforms(&steps).expect_err("refused");
            assert!(error.contains(named), "{steps:?}: {error}");
        }
    }

    fn mappings(toml_text: &str) -> Result<Mappings, String> {
        #[derive(Deserialize)]
        struct Holder {
            mappings: Mappings,
        }
        toml::from_str::<Holder>(toml_text)
            .map(|holder| holder.mappings)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn a_user_mapping_takes_the_part_of_the_email_before_the_at_and_defaults_when_absent() {
        let mappings = mappings(
            "[mappings.user]\n\
             userName = { from = \"email\", transforms = [{ split = \"@\" }, \"first\", \"lower\"] }\n\
             displayName = { from = \"familyName\", default = \"(none)\" }\n\
             externalId = { from = \"id\", transforms = [{ prefix = \"hr-\" }] }\n\
             givenName = { value = \"Staff\" }\n",
        )
        .expect("parses");
        let ada = Identity::new(Kind::User, "42")
            .with("userName", "ignored")
            .with("emails", "Ada.L@Example.com");
        let mut attributes = ada.attributes.clone();
        mappings.apply(&ada, &mut attributes);
        assert_eq!(attributes["userName"], json!("ada.l"));
        assert_eq!(attributes["displayName"], json!("(none)"));
        assert_eq!(attributes["externalId"], json!("hr-42"));
        assert_eq!(attributes["name.givenName"], json!("Staff"));
        // Unmapped attributes are the source's own.
        assert_eq!(attributes["emails"], json!("Ada.L@Example.com"));
    }

    #[test]
    fn a_mapping_without_a_value_or_default_is_not_written() {
        let mappings = mappings(
            "[mappings.user]\ndisplayName = { from = \"givenName\", transforms = [\"trim\"] }\n",
        )
        .expect("parses");
        let blank = Identity::new(Kind::User, "1")
            .with("displayName", "Old")
            .with("name.givenName", "   ");
        let mut attributes = blank.attributes.clone();
        mappings.apply(&blank, &mut attributes);
        assert!(!attributes.contains_key("displayName"), "{attributes:?}");
    }

    #[test]
    fn active_maps_from_a_boolean_or_the_text_true_or_false() {
        let mappings = mappings(
            "[mappings.user]\nactive = { from = \"displayName\", transforms = [\"trim\"], default = false }\n\
             [mappings.service_principal]\nactive = { value = false }\n",
        )
        .expect("parses");
        let user = |name: &str| Identity::new(Kind::User, "1").with("displayName", name);
        assert_eq!(mappings.active(&user(" TRUE ")), Some(true));
        assert_eq!(mappings.active(&user("false")), Some(false));
        assert_eq!(mappings.active(&user("maybe")), Some(false), "the default");
        let robot = Identity::new(Kind::ServicePrincipal, "s");
        assert_eq!(mappings.active(&robot), Some(false));
        // Groups have no active flag and no mapping of it.
        assert_eq!(mappings.active(&Identity::new(Kind::Group, "g")), None);
    }

    #[test]
    fn group_and_service_principal_mappings_apply_to_their_kind_only() {
        let mappings = mappings(
            "[mappings.group]\ndisplayName = { from = \"displayName\", transforms = [{ replace = [\" \", \"-\"] }, \"lower\"] }\n\
             [mappings.service_principal]\ndisplayName = { from = \"applicationId\", transforms = [{ suffix = \" (app)\" }] }\n",
        )
        .expect("parses");
        let group = Identity::new(Kind::Group, "g").with("displayName", "Data Eng");
        let mut attributes = group.attributes.clone();
        mappings.apply(&group, &mut attributes);
        assert_eq!(attributes["displayName"], json!("data-eng"));
        let robot = Identity::new(Kind::ServicePrincipal, "s").with("applicationId", "A-1");
        let mut attributes = robot.attributes.clone();
        mappings.apply(&robot, &mut attributes);
        assert_eq!(attributes["displayName"], json!("A-1 (app)"));
        let user = Identity::new(Kind::User, "u").with("displayName", "Data Eng");
        let mut attributes = user.attributes.clone();
        mappings.apply(&user, &mut attributes);
        assert_eq!(attributes["displayName"], json!("Data Eng"));
    }

    /// The planner's side: mapped values are what it compares, matches and creates with, and
    /// the scope filter's outcasts are deprovisioned like any object out of scope.
    mod planned {
        use super::*;
        use crate::config::Policy;
        use crate::model::{Capabilities, JobState, Mapping, Ownership, Snapshot};
        use crate::plan::{plan, Reason};

        fn policy(text: &str) -> Policy {
            toml::from_str(text).expect("a valid policy")
        }

        fn managed(pairs: &[(&str, &str)]) -> JobState {
            let mut state = JobState::default();
            for (source_id, target_id) in pairs {
                state.mappings.insert(
                    (Kind::User, source_id.to_string()),
                    Mapping {
                        target_id: target_id.to_string(),
                        ownership: Ownership::Created,
                        deprovisioned_at: None,
                    },
                );
            }
            state
        }

        #[test]
        fn mapped_values_are_created_compared_and_matched() {
            let lower = policy(
                "[mappings.user]\nuserName = { from = \"email\", transforms = [{ split = \"@\" }, \"first\", \"lower\"] }\n",
            );
            let source = Snapshot::of(vec![Identity::new(Kind::User, "s1")
                .with("userName", "ignored")
                .with("emails", "Ada@example.com")]);
            let created = plan(
                &source,
                &Snapshot::default(),
                &JobState::default(),
                &lower,
                &Capabilities::default(),
                0,
            );
            assert_eq!(created.creates[0].attributes["userName"], json!("ada"));
            // An unmanaged target user of the mapped name is adopted, not duplicated.
            let existing = Snapshot::of(vec![Identity::new(Kind::User, "t9")
                .with("userName", "ADA")
                .with("emails", "Ada@example.com")
                .with("externalId", "s1")]);
            let adopted = plan(
                &source,
                &existing,
                &JobState::default(),
                &lower,
                &Capabilities::default(),
                0,
            );
            assert_eq!(adopted.adoptions.len(), 1, "{adopted:#?}");
            assert!(adopted.creates.is_empty());
            // Managed, with the mapped value already there: nothing to write.
            let target = Snapshot::of(vec![Identity::new(Kind::User, "t1")
                .with("userName", "ada")
                .with("emails", "Ada@example.com")
                .with("externalId", "s1")]);
            let state = managed(&[("s1", "t1")]);
            let same = plan(
                &source,
                &target,
                &state,
                &lower,
                &Capabilities::default(),
                0,
            );
            assert!(same.writes_nothing(), "{same:#?}");
            // Another mapping is an update of that attribute alone.
            let upper = policy(
                "[mappings.user]\nuserName = { from = \"email\", transforms = [{ split = \"@\" }, \"first\", \"upper\"] }\n",
            );
            let changed = plan(
                &source,
                &target,
                &state,
                &upper,
                &Capabilities::default(),
                0,
            );
            assert_eq!(changed.updates.len(), 1);
            assert_eq!(changed.updates[0].diffs.len(), 1, "{changed:#?}");
            assert_eq!(changed.updates[0].diffs[0].after, json!("ADA"));
        }

        #[test]
        fn a_mapped_false_active_deactivates_and_the_filters_outcasts_are_deprovisioned() {
            let source = Snapshot::of(vec![
                Identity::new(Kind::User, "s1")
                    .with("userName", "ada")
                    .with("emails", "ada@example.com"),
                Identity::new(Kind::User, "s2")
                    .with("userName", "bob")
                    .with("emails", "bob@elsewhere.org"),
            ]);
            let target = Snapshot::of(vec![
                Identity::new(Kind::User, "t1")
                    .with("userName", "ada")
                    .with("emails", "ada@example.com")
                    .with("externalId", "s1"),
                Identity::new(Kind::User, "t2")
                    .with("userName", "bob")
                    .with("emails", "bob@elsewhere.org")
                    .with("externalId", "s2"),
            ]);
            let state = managed(&[("s1", "t1"), ("s2", "t2")]);
            let filtered = Policy {
                allow_deletions: true,
                ..policy("filter = 'emails ew \"@example.com\"'\n")
            };
            let planned = plan(
                &source,
                &target,
                &state,
                &filtered,
                &Capabilities::default(),
                0,
            );
            let gone: Vec<(&str, Reason)> = planned
                .deactivations
                .iter()
                .map(|item| (item.source_id.as_str(), item.reason))
                .collect();
            assert_eq!(gone, [("s2", Reason::GoneFromSource)]);
            // The guard counts them: one of two managed objects is more than 20 %.
            let guarded = plan(
                &source,
                &target,
                &state,
                &policy("filter = 'emails ew \"@example.com\"'\n"),
                &Capabilities::default(),
                0,
            );
            assert!(guarded.guard.is_some());
            let inactive = Policy {
                allow_deletions: true,
                ..policy("[mappings.user]\nactive = { value = false }\n")
            };
            let planned = plan(
                &source,
                &target,
                &state,
                &inactive,
                &Capabilities::default(),
                0,
            );
            let reasons: Vec<Reason> = planned.deactivations.iter().map(|d| d.reason).collect();
            assert_eq!(
                reasons,
                [Reason::InactiveAtSource, Reason::InactiveAtSource]
            );
        }
    }

    #[test]
    fn unknown_attributes_transforms_and_bad_constants_are_refused_naming_them() {
        for (text, named) in [
            ("[mappings.user]\nnickName = { value = \"x\" }\n", "nickName"),
            ("[mappings.group]\nuserName = { from = \"displayName\" }\n", "userName"),
            ("[mappings.user]\nuserName = { from = \"title\" }\n", "title"),
            (
                "[mappings.user]\nuserName = { from = \"email\", transforms = [\"capitalise\"] }\n",
                "capitalise",
            ),
            (
                "[mappings.user]\nuserName = { from = \"email\", transforms = [{ regex = \"x\" }] }\n",
                "regex",
            ),
            ("[mappings.user]\nuserName = { from = \"email\", value = \"x\" }\n", "either"),
            ("[mappings.user]\nuserName = { }\n", "either"),
            ("[mappings.user]\nactive = { value = \"yes\" }\n", "true or false"),
            ("[mappings.user]\nuserName = { value = 3 }\n", "a string"),
            ("[mappings.user]\nuserName = { from = \"email\", transforms = [\"first\"] }\n", "first"),
            ("[mappings.user]\nuserName = { from = \"email\", colour = 1 }\n", "colour"),
            ("[mappings.robots]\n", "robots"),
        ] {
            let error = mappings(text).expect_err(text);
            assert!(error.contains(named), "{text}: {error}");
        }
    }
}
