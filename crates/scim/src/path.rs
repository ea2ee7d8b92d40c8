//! Attribute paths (`name.givenName`, `urn:...:User:employeeNumber`) as used by `attributes=`,
//! `sortBy` and filters, and PATCH paths (`emails[type eq "work"].value`, RFC 7644 section 3.5.2).

use std::fmt;

use crate::error::ParseError;
use crate::filter::Filter;
use crate::parser::Parser;
use crate::scanner::{is_name_byte, quote_for_message};

/// A reference to an attribute, optionally qualified by its schema URN, optionally narrowed to
/// one sub-attribute of a complex attribute.
///
/// The grammar is RFC 7644's `attrPath = [URI ":"] ATTRNAME *1subAttr`. Names keep the case they
/// were written in: SCIM attribute names are case-insensitive, but only the schema-aware caller
/// knows the canonical spelling, so matching is left to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// Schema URN prefix when the path was written fully qualified, without the trailing colon,
    /// e.g. "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User". None when unqualified.
    pub urn: Option<String>,
    /// The attribute name exactly as written (case preserved; matching is the caller's job).
    pub name: String,
    /// Sub-attribute, e.g. "givenName" in "name.givenName".
    pub sub_attr: Option<String>,
}

impl AttrPath {
    /// An unqualified path to a top-level attribute, such as `userName`.
    #[must_use]
    pub fn simple(name: &str) -> Self {
        Self {
            urn: None,
            name: name.to_owned(),
            sub_attr: None,
        }
    }

    /// An unqualified path to a sub-attribute, such as `name.givenName`.
    #[must_use]
    pub fn with_sub(name: &str, sub: &str) -> Self {
        Self {
            urn: None,
            name: name.to_owned(),
            sub_attr: Some(sub.to_owned()),
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(formatter, "{urn}:")?;
        }
        formatter.write_str(&self.name)?;
        if let Some(sub_attr) = &self.sub_attr {
            write!(formatter, ".{sub_attr}")?;
        }
        Ok(())
    }
}

/// The target of a PATCH operation (RFC 7644 section 3.5.2, `PATH = attrPath / valuePath
/// [subAttr]`): an attribute, or the values of a multi-valued attribute selected by a filter,
/// optionally narrowed to one sub-attribute of those values.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute the operation targets. When `value_filter` is Some, `attr.sub_attr` is None,
    /// because a value filter can only follow the multi-valued attribute itself.
    pub attr: AttrPath,
    /// Selects which values of a multi-valued attribute are targeted: `members[value eq "x"]`
    /// gives a filter whose paths are relative to `members` (here just `value`).
    pub value_filter: Option<Filter>,
    /// The sub-attribute of the selected values, `value` in `emails[type eq "work"].value`.
    /// Only ever Some together with `value_filter`.
    pub sub_attr: Option<String>,
}

impl fmt::Display for PatchPath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.attr)?;
        if let Some(value_filter) = &self.value_filter {
            write!(formatter, "[{value_filter}]")?;
        }
        if let Some(sub_attr) = &self.sub_attr {
            write!(formatter, ".{sub_attr}")?;
        }
        Ok(())
    }
}

/// Parses a lone attribute path, as found in `attributes=`, `excludedAttributes=` (after the
/// caller splits on commas) and `sortBy`. No whitespace is allowed anywhere.
///
/// # Errors
///
/// Returns a [`ParseError`] with the byte position of the first character that does not fit.
pub fn parse_attr_path(input: &str) -> Result<AttrPath, ParseError> {
    Parser::new(input)?.parse_complete_attr_path()
}

/// Parses the `path` of a PATCH operation. Whitespace is allowed only inside the brackets of a
/// value filter, where the full filter grammar applies.
///
/// # Errors
///
/// Returns a [`ParseError`] with the byte position of the first character that does not fit,
/// or when the value filter exceeds one of the [`limits`](crate::limits).
pub fn parse_patch_path(input: &str) -> Result<PatchPath, ParseError> {
    Parser::new(input)?.parse_complete_patch_path()
}

/// Bytes that can occur anywhere in the written form of an attribute path: name characters,
/// the URN separator `:`, the sub-attribute separator `.`, and the `$` of `$ref`.
pub(crate) fn is_attr_path_byte(byte: u8) -> bool {
    is_name_byte(byte) || matches!(byte, b':' | b'.' | b'$')
}

/// Splits the written form of an attribute path (already cut out of the input, starting at byte
/// `text_start`) into URN, name and sub-attribute, checking each piece.
///
/// The URN is everything before the last ':'. The split must happen on the colon first, because
/// URNs contain dots of their own ("...:core:2.0:User:name.givenName").
pub(crate) fn split_attr_path_text(text: &str, text_start: usize) -> Result<AttrPath, ParseError> {
    let (urn, local_part, local_start) = match text.rfind(':') {
        Some(colon) => {
            let urn = text.get(..colon).unwrap_or("");
            check_schema_urn(urn, text, text_start)?;
            let local_part = text.get(colon + 1..).unwrap_or("");
            (Some(urn.to_owned()), local_part, text_start + colon + 1)
        }
        None => (None, text, text_start),
    };
    if local_part.is_empty() {
        return Err(ParseError::new(
            local_start,
            format!(
                "expected an attribute name after the schema URN at position {local_start}, \
                 as in urn:ietf:params:scim:schemas:core:2.0:User:userName"
            ),
        ));
    }
    let (name, sub_attr) = match local_part.split_once('.') {
        Some((name, sub_attr)) => (name, Some(sub_attr)),
        None => (local_part, None),
    };
    check_attr_name(name, local_start, NameRole::Attribute)?;
    if let Some(sub_attr) = sub_attr {
        let sub_start = local_start + name.len() + 1;
        if let Some(extra_dot) = sub_attr.find('.') {
            let extra_dot_position = sub_start + extra_dot;
            return Err(ParseError::new(
                extra_dot_position,
                format!(
                    "unexpected '.' at position {extra_dot_position}: an attribute path has at \
                     most one sub-attribute, as in name.givenName"
                ),
            ));
        }
        check_attr_name(sub_attr, sub_start, NameRole::SubAttribute)?;
    }
    Ok(AttrPath {
        urn,
        name: name.to_owned(),
        sub_attr: sub_attr.map(str::to_owned),
    })
}

/// Checks a schema URN prefix: it must start with `urn:` (any case) and consist of non-empty
/// colon-separated segments of letters, digits, '.', '-' and '_'.
fn check_schema_urn(urn: &str, whole_path: &str, path_start: usize) -> Result<(), ParseError> {
    let starts_with_urn = urn
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("urn:"));
    if !starts_with_urn {
        return Err(ParseError::new(
            path_start,
            format!(
                "invalid attribute path {} at position {path_start}: only a schema URN \
                 (starting with 'urn:') may precede the attribute name with a ':'",
                quote_for_message(whole_path)
            ),
        ));
    }
    let segments_are_valid = urn.split(':').all(|segment| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|byte| is_name_byte(byte) || byte == b'.')
    });
    if !segments_are_valid {
        return Err(ParseError::new(
            path_start,
            format!(
                "invalid schema URN {} at position {path_start}: expected colon-separated \
                 segments of letters, digits, '.', '-' and '_'",
                quote_for_message(urn)
            ),
        ));
    }
    Ok(())
}

/// Whether a name being checked is an attribute or a sub-attribute; only the error wording
/// differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameRole {
    Attribute,
    SubAttribute,
}

/// Checks RFC 7643's `ATTRNAME = ALPHA *(nameChar)`, plus the name `$ref` which SCIM itself
/// uses for references (`members.$ref`) although it breaks that rule.
pub(crate) fn check_attr_name(
    name: &str,
    name_start: usize,
    role: NameRole,
) -> Result<(), ParseError> {
    let (expected_text, noun) = match role {
        NameRole::Attribute => ("an attribute name", "attribute name"),
        NameRole::SubAttribute => ("a sub-attribute name after '.'", "sub-attribute name"),
    };
    if name.is_empty() {
        return Err(ParseError::new(
            name_start,
            format!("expected {expected_text} at position {name_start}"),
        ));
    }
    if name.eq_ignore_ascii_case("$ref") {
        return Ok(());
    }
    let mut bytes = name.bytes();
    let starts_with_letter = bytes.next().is_some_and(|byte| byte.is_ascii_alphabetic());
    if starts_with_letter && bytes.all(is_name_byte) {
        return Ok(());
    }
    Err(ParseError::new(
        name_start,
        format!(
            "invalid {noun} {} at position {name_start}: names start with a letter and \
             continue with letters, digits, '-' or '_'",
            quote_for_message(name)
        ),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn the_urn_is_split_off_at_the_last_colon_before_the_dot_is_considered() {
        let path = split_attr_path_text(
            "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName",
            0,
        )
        .unwrap();
        assert_eq!(
            path.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:core:2.0:User")
        );
        assert_eq!(path.name, "name");
        assert_eq!(path.sub_attr.as_deref(), Some("givenName"));
    }

    #[test]
    fn ref_is_accepted_as_a_name_and_a_sub_attribute() {
        assert_eq!(
            split_attr_path_text("members.$ref", 0).unwrap(),
            AttrPath::with_sub("members", "$ref")
        );
        assert_eq!(
            split_attr_path_text("$ref", 0).unwrap(),
            AttrPath::simple("$ref")
        );
        assert!(split_attr_path_text("$other", 0).is_err());
    }

    #[test]
    fn names_must_start_with_a_letter() {
        let error = split_attr_path_text("9lives", 4).unwrap_err();
        assert_eq!(error.position, 4);
        assert!(
            error
                .message
                .starts_with("invalid attribute name '9lives' at position 4"),
            "{}",
            error.message
        );
        let error = split_attr_path_text("name.-x", 0).unwrap_err();
        assert_eq!(error.position, 5);
        assert!(error.message.starts_with("invalid sub-attribute name"));
    }

    #[test]
    fn a_colon_without_a_urn_prefix_is_rejected() {
        let error = split_attr_path_text("foo:bar", 0).unwrap_err();
        assert!(error.message.contains("'urn:'"), "{}", error.message);
        assert!(split_attr_path_text("urn::x:name", 0).is_err());
        assert!(split_attr_path_text("urn:x:", 0).is_err());
    }
}
