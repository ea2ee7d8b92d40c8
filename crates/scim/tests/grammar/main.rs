//! The integration tests of the SCIM query grammar, run through the public API only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod errors;
mod filters;
mod lenient_forms;
mod limits;
mod paths;
mod properties;

use scimitar_scim::{parse_filter, AttrPath, CompValue, CompareOp, Filter, ParseError};

/// Parses a filter that the test expects to be valid, naming the input if it is not.
pub fn parse(input: &str) -> Filter {
    parse_filter(input).unwrap_or_else(|error| panic!("{input:?} should parse: {error}"))
}

/// Parses a filter that the test expects to be rejected.
pub fn parse_error(input: &str) -> ParseError {
    match parse_filter(input) {
        Ok(filter) => panic!("{input:?} should be rejected but parsed as {filter:?}"),
        Err(error) => error,
    }
}

pub fn present(path: AttrPath) -> Filter {
    Filter::Present(path)
}

pub fn compare(path: AttrPath, operator: CompareOp, value: CompValue) -> Filter {
    Filter::Compare(path, operator, value)
}

pub fn text(value: &str) -> CompValue {
    CompValue::String(value.to_owned())
}

pub fn number(value: i64) -> CompValue {
    CompValue::Number(value.into())
}

pub fn simple(name: &str) -> AttrPath {
    AttrPath::simple(name)
}

pub fn sub(name: &str, sub_attr: &str) -> AttrPath {
    AttrPath::with_sub(name, sub_attr)
}

pub fn qualified(urn: &str, name: &str, sub_attr: Option<&str>) -> AttrPath {
    AttrPath {
        urn: Some(urn.to_owned()),
        name: name.to_owned(),
        sub_attr: sub_attr.map(str::to_owned),
    }
}

/// Checks that the canonical text of `filter` parses back to the same tree.
pub fn assert_round_trips(filter: &Filter) {
    let rendered = filter.to_string();
    assert_eq!(
        parse_filter(&rendered).as_ref(),
        Ok(filter),
        "canonical text {rendered:?} did not parse back to the same tree"
    );
}
