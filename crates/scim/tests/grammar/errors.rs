//! Malformed filters: each is rejected with a message naming what was expected and where.

use crate::parse_error;

/// Checks both the byte position and that the message contains `expected_text`.
fn assert_rejected(input: &str, expected_position: usize, expected_text: &str) {
    let error = parse_error(input);
    assert!(
        error.message.contains(expected_text),
        "message for {input:?} was {:?}, expected it to contain {expected_text:?}",
        error.message
    );
    assert_eq!(
        error.position, expected_position,
        "position for {input:?} (message {:?})",
        error.message
    );
    assert_eq!(error.to_string(), error.message);
}

#[test]
fn an_empty_filter_is_rejected() {
    assert_rejected("", 0, "empty filter at position 0");
    assert_rejected(" \t ", 3, "empty filter at position 3");
}

#[test]
fn a_missing_operator_names_the_attribute_and_the_operators() {
    assert_rejected(
        "userName bjensen",
        9,
        "expected a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after \
         'userName' at position 9, found 'bjensen'",
    );
    assert_rejected("userName", 8, "found end of input");
    assert_rejected("(title)", 6, "after 'title' at position 6, found ')'");
}

#[test]
fn an_unknown_operator_is_rejected() {
    assert_rejected(r#"userName equals "x""#, 9, "found 'equals'");
    assert_rejected("userName eq1", 9, "found 'eq1'");
}

#[test]
fn a_missing_value_names_the_operator() {
    assert_rejected(
        "(userName eq   ) or title pr",
        15,
        "unexpected ')' at position 15: expected a value after 'eq'",
    );
    assert_rejected(
        "userName eq",
        11,
        "unexpected end of input at position 11: expected a value after 'eq'",
    );
    assert_rejected(
        "emails[value co ]",
        16,
        "unexpected ']' at position 16: expected a value after 'co'",
    );
}

#[test]
fn an_unterminated_string_points_at_its_opening_quote() {
    assert_rejected(
        r#"displayName eq "abc"#,
        15,
        "unterminated string starting at position 15",
    );
    assert_rejected(
        "displayName eq 'abc",
        15,
        "unterminated string starting at position 15",
    );
}

#[test]
fn an_invalid_escape_points_at_the_backslash() {
    assert_rejected(
        r#"title eq "a\qb""#,
        11,
        "invalid escape '\\q' at position 11",
    );
    assert_rejected(
        r#"title eq "\u12G4""#,
        10,
        "expected four hexadecimal digits",
    );
    assert_rejected(r#"title eq "\udc00""#, 10, "surrogate");
}

#[test]
fn an_unclosed_parenthesis_points_at_the_opening_parenthesis() {
    assert_rejected(
        "(title pr and (userType pr)",
        0,
        "unbalanced parenthesis at position 0",
    );
}

#[test]
fn an_extra_closing_parenthesis_is_unbalanced() {
    assert_rejected(
        "title pr)",
        8,
        "unbalanced parenthesis at position 8: this ')' has no matching '('",
    );
}

#[test]
fn junk_inside_parentheses_names_what_could_close_them() {
    assert_rejected(
        "(title pr userType pr)",
        10,
        "expected 'and', 'or' or ')' at position 10, found 'userType'",
    );
}

#[test]
fn trailing_input_is_quoted_with_its_position() {
    assert_rejected(
        r#"userName eq "bjensen" xyz"#,
        22,
        "trailing input 'xyz' at position 22",
    );
}

#[test]
fn not_without_a_parenthesis_is_rejected() {
    assert_rejected(
        "not title pr",
        4,
        "expected '(' after 'not' at position 4, found 'title'",
    );
    assert_rejected("not", 3, "found end of input");
}

#[test]
fn a_dangling_logical_operator_is_rejected() {
    assert_rejected(
        "title pr and",
        12,
        "expected an attribute path, '(' or 'not' at position 12, found end of input",
    );
    assert_rejected("title pr or )", 12, "found ')'");
    assert_rejected("and title pr", 4, "after 'and' at position 4");
}

#[test]
fn empty_parentheses_are_rejected() {
    assert_rejected(
        "()",
        1,
        "expected an attribute path, '(' or 'not' at position 1",
    );
}

#[test]
fn nested_value_paths_are_rejected() {
    assert_rejected(
        r#"emails[type[value eq "x"] pr]"#,
        11,
        "value paths cannot be nested",
    );
}

#[test]
fn an_empty_or_unclosed_value_path_is_rejected() {
    assert_rejected("emails[]", 7, "empty value filter at position 7");
    assert_rejected("emails[ ", 6, "the '[' at position 6 is never closed");
    assert_rejected(r#"emails[type eq "work""#, 6, "is never closed");
    assert_rejected(
        r#"emails[type eq "work" value pr]"#,
        22,
        "expected 'and', 'or' or ']' at position 22, found 'value'",
    );
}

#[test]
fn a_sub_attribute_after_a_value_path_needs_a_name() {
    assert_rejected(
        r#"emails[type eq "work"]. eq "x""#,
        23,
        "expected a sub-attribute name",
    );
}

#[test]
fn a_value_filter_after_a_sub_attribute_is_rejected() {
    assert_rejected(
        r#"name.givenName[value eq "x"]"#,
        14,
        "must follow the multi-valued attribute itself",
    );
}

#[test]
fn paths_inside_a_value_filter_must_be_relative() {
    assert_rejected(
        r#"emails[type.value eq "x"]"#,
        7,
        "cannot have a sub-attribute",
    );
    assert_rejected(
        r#"emails[urn:ietf:params:scim:schemas:core:2.0:User:type eq "x"]"#,
        7,
        "cannot carry a schema URN",
    );
}

#[test]
fn invalid_attribute_names_are_rejected() {
    assert_rejected(
        "9lives pr",
        0,
        "invalid attribute name '9lives' at position 0",
    );
    assert_rejected(
        "name. pr",
        5,
        "expected a sub-attribute name after '.' at position 5",
    );
    assert_rejected("a.b.c pr", 3, "at most one sub-attribute");
    assert_rejected("foo:bar pr", 0, "'urn:'");
    assert_rejected(r#""userName" eq 1"#, 0, "found '\"'");
}

#[test]
fn a_number_too_large_for_a_float_is_rejected() {
    assert_rejected(
        "age gt 1e999",
        7,
        "number '1e999' at position 7 is too large",
    );
}

#[test]
fn positions_are_byte_offsets_even_after_multibyte_characters() {
    // "é" and "😀" take 2 and 4 bytes, so the junk starts at byte 27, not character 23.
    assert_rejected(
        "title eq \"é😀\" and x pr junk",
        27,
        "trailing input 'junk' at position 27",
    );
}
