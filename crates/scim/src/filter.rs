//! The filter syntax tree of RFC 7644 section 3.4.2.2, its canonical text form, and
//! `parse_filter`.

use std::fmt;

use crate::error::ParseError;
use crate::literal::write_json_string;
use crate::parser::Parser;
use crate::path::AttrPath;

/// A comparison operator of `attr op value`. Presence (`pr`) has no value and is therefore a
/// separate [`Filter::Present`] node rather than an operator here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `eq`: equal.
    Eq,
    /// `ne`: not equal.
    Ne,
    /// `co`: contains (strings).
    Co,
    /// `sw`: starts with (strings).
    Sw,
    /// `ew`: ends with (strings).
    Ew,
    /// `gt`: greater than.
    Gt,
    /// `ge`: greater than or equal.
    Ge,
    /// `lt`: less than.
    Lt,
    /// `le`: less than or equal.
    Le,
}

impl CompareOp {
    /// Every operator, in the order the RFC lists them.
    pub const ALL: [CompareOp; 9] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];

    /// The operator's keyword in canonical (lower) case.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
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

    /// Recognises an operator keyword in any case ("EQ", "Eq", "eq").
    #[must_use]
    pub fn from_keyword(keyword: &str) -> Option<CompareOp> {
        CompareOp::ALL
            .into_iter()
            .find(|operator| operator.as_str().eq_ignore_ascii_case(keyword))
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The right-hand side of a comparison: a JSON scalar.
///
/// A value written without quotes (`externalId eq jyoung`) is a `String` unless it is exactly
/// `true`, `false` or `null` (any case) or a JSON number.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A JSON number. Integers that fit 64 bits stay integers; others are floats.
    Number(serde_json::Number),
    /// A string, whether it was double-quoted, single-quoted or bare.
    String(String),
}

impl fmt::Display for CompValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => formatter.write_str("null"),
            CompValue::Bool(true) => formatter.write_str("true"),
            CompValue::Bool(false) => formatter.write_str("false"),
            CompValue::Number(number) => write!(formatter, "{number}"),
            CompValue::String(text) => write_json_string(formatter, text),
        }
    }
}

/// A parsed SCIM filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attr pr`: the attribute has a non-empty value.
    Present(AttrPath),
    /// `attr op value`.
    Compare(AttrPath, CompareOp, CompValue),
    /// `emails[type eq "work" and value co "@x.com"]`: the inner filter's paths are relative to
    /// the multi-valued attribute (their `AttrPath.name` is the sub-attribute name, `urn` None).
    /// The outer `AttrPath` has `sub_attr` None.
    ValuePath(AttrPath, Box<Filter>),
    /// `left and right`.
    And(Box<Filter>, Box<Filter>),
    /// `left or right`.
    Or(Box<Filter>, Box<Filter>),
    /// `not (inner)`.
    Not(Box<Filter>),
}

impl Filter {
    /// `left and right`, without spelling out the boxes.
    #[must_use]
    pub fn and(left: Filter, right: Filter) -> Filter {
        Filter::And(Box::new(left), Box::new(right))
    }

    /// `left or right`, without spelling out the boxes.
    #[must_use]
    pub fn or(left: Filter, right: Filter) -> Filter {
        Filter::Or(Box::new(left), Box::new(right))
    }

    /// `not (inner)`, without spelling out the box.
    #[must_use]
    pub fn negate(inner: Filter) -> Filter {
        Filter::Not(Box::new(inner))
    }
}

/// Parses a SCIM filter such as `userName eq "bjensen" and not (emails co "example.org")`.
///
/// Keywords are case-insensitive; `not` binds tightest, then `and`, then `or`, and both binary
/// operators are left-associative. Besides the RFC grammar, the forms real identity providers
/// send are accepted: single-quoted strings and unquoted values.
///
/// # Errors
///
/// Returns a [`ParseError`] naming what was expected and the byte position when the input is not
/// a filter, or when it exceeds one of the [`limits`](crate::limits).
pub fn parse_filter(input: &str) -> Result<Filter, ParseError> {
    Parser::new(input)?.parse_complete_filter()
}

/// The canonical text: keywords in lower case, one space between tokens, strings double-quoted
/// with JSON escaping, and parentheses only where the tree differs from what precedence and
/// left-associativity give. Parenthesising every binary node would be simpler, but a long
/// `or` chain would then nest deeper than the parser's depth limit and no longer round-trip.
impl fmt::Display for Filter {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Present(path) => write!(formatter, "{path} pr"),
            Filter::Compare(path, operator, value) => {
                write!(formatter, "{path} {operator} {value}")
            }
            Filter::ValuePath(path, inner) => write!(formatter, "{path}[{inner}]"),
            Filter::And(left, right) => {
                // An `or` under an `and` must be grouped on either side; an `and` on the right
                // must be grouped because `a and b and c` means `(a and b) and c`.
                write_operand(formatter, left, matches!(**left, Filter::Or(..)))?;
                formatter.write_str(" and ")?;
                write_operand(
                    formatter,
                    right,
                    matches!(**right, Filter::Or(..) | Filter::And(..)),
                )
            }
            Filter::Or(left, right) => {
                write_operand(formatter, left, false)?;
                formatter.write_str(" or ")?;
                write_operand(formatter, right, matches!(**right, Filter::Or(..)))
            }
            Filter::Not(inner) => write!(formatter, "not ({inner})"),
        }
    }
}

fn write_operand(
    formatter: &mut fmt::Formatter<'_>,
    operand: &Filter,
    needs_parentheses: bool,
) -> fmt::Result {
    if needs_parentheses {
        write!(formatter, "({operand})")
    } else {
        write!(formatter, "{operand}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_keywords_are_recognised_in_any_case() {
        for operator in CompareOp::ALL {
            assert_eq!(CompareOp::from_keyword(operator.as_str()), Some(operator));
            let upper = operator.as_str().to_ascii_uppercase();
            assert_eq!(CompareOp::from_keyword(&upper), Some(operator));
        }
        assert_eq!(CompareOp::from_keyword("pr"), None);
        assert_eq!(CompareOp::from_keyword("equals"), None);
    }

    #[test]
    fn display_groups_only_where_precedence_would_change_the_tree() {
        let a = || Filter::Present(AttrPath::simple("a"));
        let b = || Filter::Present(AttrPath::simple("b"));
        let c = || Filter::Present(AttrPath::simple("c"));
        assert_eq!(
            Filter::or(Filter::or(a(), b()), c()).to_string(),
            "a pr or b pr or c pr"
        );
        assert_eq!(
            Filter::or(a(), Filter::or(b(), c())).to_string(),
            "a pr or (b pr or c pr)"
        );
        assert_eq!(
            Filter::and(Filter::or(a(), b()), c()).to_string(),
            "(a pr or b pr) and c pr"
        );
        assert_eq!(
            Filter::or(a(), Filter::and(b(), c())).to_string(),
            "a pr or b pr and c pr"
        );
        assert_eq!(
            Filter::and(a(), Filter::and(b(), c())).to_string(),
            "a pr and (b pr and c pr)"
        );
        assert_eq!(
            Filter::negate(Filter::and(a(), b())).to_string(),
            "not (a pr and b pr)"
        );
    }

    #[test]
    fn string_values_are_always_written_double_quoted_and_escaped() {
        let filter = Filter::Compare(
            AttrPath::simple("title"),
            CompareOp::Eq,
            CompValue::String("say \"hi\"\\\n\u{1}".to_owned()),
        );
        assert_eq!(filter.to_string(), r#"title eq "say \"hi\"\\\n\u0001""#);
    }
}
