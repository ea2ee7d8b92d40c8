//! Forms outside the RFC grammar that real identity providers and tools send and that the
//! parser therefore accepts: single quotes, unquoted values, sloppy whitespace.

use scimitar_scim::{CompValue, CompareOp, Filter};

use crate::{assert_round_trips, compare, number, parse, simple, sub, text};

#[test]
fn terraform_single_quoted_strings_are_strings() {
    assert_eq!(
        parse("displayName eq 'admins'"),
        compare(simple("displayName"), CompareOp::Eq, text("admins"))
    );
}

#[test]
fn single_quoted_strings_allow_escaped_single_quotes_and_raw_double_quotes() {
    assert_eq!(
        parse(r#"name.familyName eq 'O\'Malley "the elder"'"#),
        compare(
            sub("name", "familyName"),
            CompareOp::Eq,
            text("O'Malley \"the elder\"")
        )
    );
}

#[test]
fn entra_user_names_with_underscores_and_dashes_parse() {
    assert_eq!(
        parse(r#"userName eq "Test_User_00aa00aa-bb11""#),
        compare(
            simple("userName"),
            CompareOp::Eq,
            text("Test_User_00aa00aa-bb11")
        )
    );
}

#[test]
fn okta_unquoted_external_id_is_a_string() {
    assert_eq!(
        parse("externalId eq jyoung"),
        compare(simple("externalId"), CompareOp::Eq, text("jyoung"))
    );
}

#[test]
fn unquoted_single_letter_prefix_is_a_string() {
    assert_eq!(
        parse("userName sw O"),
        compare(simple("userName"), CompareOp::Sw, text("O"))
    );
}

#[test]
fn unquoted_timestamps_with_offsets_are_strings() {
    assert_eq!(
        parse("meta.created gt 2015-10-10T14:38:21.86-07:00"),
        compare(
            sub("meta", "created"),
            CompareOp::Gt,
            text("2015-10-10T14:38:21.86-07:00")
        )
    );
}

#[test]
fn unquoted_domains_are_strings() {
    assert_eq!(
        parse("emails.value co example.com"),
        compare(sub("emails", "value"), CompareOp::Co, text("example.com"))
    );
}

#[test]
fn unquoted_values_end_at_a_closing_parenthesis() {
    assert_eq!(
        parse("(externalId eq jyoung)"),
        compare(simple("externalId"), CompareOp::Eq, text("jyoung"))
    );
}

#[test]
fn unquoted_values_end_at_a_closing_bracket_only_inside_a_value_path() {
    assert_eq!(
        parse("emails[type eq work]"),
        Filter::ValuePath(
            simple("emails"),
            Box::new(compare(simple("type"), CompareOp::Eq, text("work")))
        )
    );
    assert_eq!(
        parse("title eq a]b"),
        compare(simple("title"), CompareOp::Eq, text("a]b"))
    );
}

#[test]
fn unquoted_words_that_are_not_json_numbers_stay_strings() {
    for word in ["00123", "1.", "+5", "0x1F", "1e", "12-34"] {
        assert_eq!(
            parse(&format!("employeeNumber eq {word}")),
            compare(simple("employeeNumber"), CompareOp::Eq, text(word)),
            "{word}"
        );
    }
}

#[test]
fn unquoted_literals_are_case_insensitive_and_typed() {
    assert_eq!(
        parse("active eq True"),
        compare(simple("active"), CompareOp::Eq, CompValue::Bool(true))
    );
    assert_eq!(
        parse("employeeNumber eq 701984"),
        compare(simple("employeeNumber"), CompareOp::Eq, number(701_984))
    );
}

#[test]
fn runs_of_spaces_and_tabs_are_accepted_around_every_token() {
    assert_eq!(
        parse("  userName   eq\t\t\"bjensen\"   and  ( title  pr )  "),
        Filter::and(
            compare(simple("userName"), CompareOp::Eq, text("bjensen")),
            Filter::Present(simple("title"))
        )
    );
    assert_eq!(
        parse(r#"emails[  type eq "work"  ]"#),
        Filter::ValuePath(
            simple("emails"),
            Box::new(compare(simple("type"), CompareOp::Eq, text("work")))
        )
    );
}

#[test]
fn a_quoted_value_may_touch_its_operator() {
    assert_eq!(
        parse(r#"userName eq"bjensen""#),
        compare(simple("userName"), CompareOp::Eq, text("bjensen"))
    );
}

#[test]
fn lenient_forms_round_trip_to_their_strict_canonical_text() {
    let filter = parse("displayName eq 'admins' and externalId eq jyoung");
    assert_eq!(
        filter.to_string(),
        r#"displayName eq "admins" and externalId eq "jyoung""#
    );
    assert_round_trips(&filter);
}

#[test]
fn entra_work_email_matching_filter_folds_the_sub_attribute_into_the_value_filter() {
    use scimitar_scim::{parse_filter, AttrPath, CompValue, CompareOp, Filter};
    let parsed = parse_filter(r#"emails[type eq "work"].value eq "x@y.com""#).expect("parses");
    let expected = Filter::ValuePath(
        AttrPath::simple("emails"),
        Box::new(Filter::And(
            Box::new(Filter::Compare(
                AttrPath::simple("type"),
                CompareOp::Eq,
                CompValue::String("work".into()),
            )),
            Box::new(Filter::Compare(
                AttrPath::simple("value"),
                CompareOp::Eq,
                CompValue::String("x@y.com".into()),
            )),
        )),
    );
    assert_eq!(parsed, expected);
}
