//! Valid filters: the RFC 7644 examples, every operator, precedence, grouping and value paths.

use scimitar_scim::{CompValue, CompareOp, Filter};

use crate::{assert_round_trips, compare, number, parse, present, qualified, simple, sub, text};

const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

#[test]
fn rfc_example_user_name_eq_bjensen_parses() {
    assert_eq!(
        parse(r#"userName eq "bjensen""#),
        compare(simple("userName"), CompareOp::Eq, text("bjensen"))
    );
}

#[test]
fn rfc_example_family_name_with_an_apostrophe_parses() {
    assert_eq!(
        parse(r#"name.familyName co "O'Malley""#),
        compare(sub("name", "familyName"), CompareOp::Co, text("O'Malley"))
    );
}

#[test]
fn rfc_example_starts_with_parses() {
    assert_eq!(
        parse(r#"userName sw "J""#),
        compare(simple("userName"), CompareOp::Sw, text("J"))
    );
}

#[test]
fn rfc_example_fully_qualified_user_name_keeps_the_urn_apart() {
    assert_eq!(
        parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#),
        compare(
            qualified(CORE_USER, "userName", None),
            CompareOp::Sw,
            text("J")
        )
    );
}

#[test]
fn rfc_example_title_present_parses() {
    assert_eq!(parse("title pr"), present(simple("title")));
}

#[test]
fn rfc_example_last_modified_greater_than_a_date_string_parses() {
    assert_eq!(
        parse(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#),
        compare(
            sub("meta", "lastModified"),
            CompareOp::Gt,
            text("2011-05-13T04:42:34Z")
        )
    );
}

#[test]
fn rfc_example_present_and_comparison_parses() {
    assert_eq!(
        parse(r#"title pr and userType eq "Employee""#),
        Filter::and(
            present(simple("title")),
            compare(simple("userType"), CompareOp::Eq, text("Employee"))
        )
    );
}

#[test]
fn rfc_example_present_or_comparison_parses() {
    assert_eq!(
        parse(r#"title pr or userType eq "Intern""#),
        Filter::or(
            present(simple("title")),
            compare(simple("userType"), CompareOp::Eq, text("Intern"))
        )
    );
}

#[test]
fn rfc_example_schemas_eq_a_urn_value_keeps_the_urn_as_a_string() {
    assert_eq!(
        parse(r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#),
        compare(simple("schemas"), CompareOp::Eq, text(ENTERPRISE_USER))
    );
}

#[test]
fn rfc_example_grouped_or_under_and_parses() {
    assert_eq!(
        parse(
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#
        ),
        Filter::and(
            compare(simple("userType"), CompareOp::Eq, text("Employee")),
            Filter::or(
                compare(simple("emails"), CompareOp::Co, text("example.com")),
                compare(sub("emails", "value"), CompareOp::Co, text("example.org"))
            )
        )
    );
}

#[test]
fn rfc_example_not_of_a_group_parses() {
    assert_eq!(
        parse(
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#
        ),
        Filter::and(
            compare(simple("userType"), CompareOp::Ne, text("Employee")),
            Filter::negate(Filter::or(
                compare(simple("emails"), CompareOp::Co, text("example.com")),
                compare(sub("emails", "value"), CompareOp::Co, text("example.org"))
            ))
        )
    );
}

#[test]
fn rfc_example_parenthesised_single_comparison_parses() {
    assert_eq!(
        parse(r#"userType eq "Employee" and (emails.type eq "work")"#),
        Filter::and(
            compare(simple("userType"), CompareOp::Eq, text("Employee")),
            compare(sub("emails", "type"), CompareOp::Eq, text("work"))
        )
    );
}

#[test]
fn rfc_example_value_path_after_and_parses() {
    assert_eq!(
        parse(r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#),
        Filter::and(
            compare(simple("userType"), CompareOp::Eq, text("Employee")),
            Filter::ValuePath(
                simple("emails"),
                Box::new(Filter::and(
                    compare(simple("type"), CompareOp::Eq, text("work")),
                    compare(simple("value"), CompareOp::Co, text("@example.com"))
                ))
            )
        )
    );
}

#[test]
fn rfc_example_two_value_paths_joined_by_or_parse() {
    assert_eq!(
        parse(
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#
        ),
        Filter::or(
            Filter::ValuePath(
                simple("emails"),
                Box::new(Filter::and(
                    compare(simple("type"), CompareOp::Eq, text("work")),
                    compare(simple("value"), CompareOp::Co, text("@example.com"))
                ))
            ),
            Filter::ValuePath(
                simple("ims"),
                Box::new(Filter::and(
                    compare(simple("type"), CompareOp::Eq, text("xmpp")),
                    compare(simple("value"), CompareOp::Co, text("@foo.com"))
                ))
            )
        )
    );
}

#[test]
fn every_rfc_example_round_trips_through_its_canonical_text() {
    let examples = [
        r#"userName eq "bjensen""#,
        r#"name.familyName co "O'Malley""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        "title pr",
        r#"title pr and userType eq "Employee""#,
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
    ];
    for example in examples {
        assert_round_trips(&parse(example));
    }
}

#[test]
fn every_comparison_operator_parses_in_lower_and_upper_case() {
    for operator in CompareOp::ALL {
        for spelling in [
            operator.as_str().to_owned(),
            operator.as_str().to_ascii_uppercase(),
        ] {
            assert_eq!(
                parse(&format!("age {spelling} 42")),
                compare(simple("age"), operator, number(42)),
                "operator spelled {spelling}"
            );
        }
    }
}

#[test]
fn present_is_recognised_in_any_case() {
    assert_eq!(parse("title PR"), present(simple("title")));
    assert_eq!(parse("title Pr"), present(simple("title")));
}

#[test]
fn logical_keywords_are_recognised_in_any_case() {
    assert_eq!(
        parse("a pr AND b pr Or NOT (c pr)"),
        Filter::or(
            Filter::and(present(simple("a")), present(simple("b"))),
            Filter::negate(present(simple("c")))
        )
    );
}

#[test]
fn and_binds_tighter_than_or() {
    let expected_left = Filter::or(
        present(simple("a")),
        Filter::and(present(simple("b")), present(simple("c"))),
    );
    assert_eq!(parse("a pr or b pr and c pr"), expected_left);
    let expected_right = Filter::or(
        Filter::and(present(simple("a")), present(simple("b"))),
        present(simple("c")),
    );
    assert_eq!(parse("a pr and b pr or c pr"), expected_right);
}

#[test]
fn not_binds_tighter_than_and() {
    assert_eq!(
        parse("not (a pr) and b pr"),
        Filter::and(Filter::negate(present(simple("a"))), present(simple("b")))
    );
}

#[test]
fn and_and_or_chains_associate_to_the_left() {
    assert_eq!(
        parse("a pr and b pr and c pr"),
        Filter::and(
            Filter::and(present(simple("a")), present(simple("b"))),
            present(simple("c"))
        )
    );
    assert_eq!(
        parse("a pr or b pr or c pr"),
        Filter::or(
            Filter::or(present(simple("a")), present(simple("b"))),
            present(simple("c"))
        )
    );
}

#[test]
fn parentheses_override_precedence() {
    assert_eq!(
        parse("(a pr or b pr) and c pr"),
        Filter::and(
            Filter::or(present(simple("a")), present(simple("b"))),
            present(simple("c"))
        )
    );
    assert_eq!(
        parse("a pr and (b pr and c pr)"),
        Filter::and(
            present(simple("a")),
            Filter::and(present(simple("b")), present(simple("c")))
        )
    );
}

#[test]
fn redundant_parentheses_disappear_from_the_tree() {
    assert_eq!(parse("((((title pr))))"), present(simple("title")));
    assert_eq!(parse("( title pr )"), present(simple("title")));
}

#[test]
fn not_accepts_a_parenthesis_with_or_without_a_space() {
    let expected = Filter::negate(present(simple("title")));
    assert_eq!(parse("not (title pr)"), expected);
    assert_eq!(parse("not(title pr)"), expected);
    assert_eq!(parse("NOT   (title pr)"), expected);
}

#[test]
fn not_can_be_applied_twice() {
    assert_eq!(
        parse("not (not (title pr))"),
        Filter::negate(Filter::negate(present(simple("title"))))
    );
}

#[test]
fn attribute_names_starting_with_keywords_are_not_mistaken_for_keywords() {
    assert_eq!(
        parse("notes pr and order pr or android pr"),
        Filter::or(
            Filter::and(present(simple("notes")), present(simple("order"))),
            present(simple("android"))
        )
    );
}

#[test]
fn logical_keywords_may_touch_parentheses() {
    assert_eq!(
        parse("(a pr)and(b pr)or(c pr)"),
        Filter::or(
            Filter::and(present(simple("a")), present(simple("b"))),
            present(simple("c"))
        )
    );
}

#[test]
fn value_paths_accept_or_not_and_parentheses_inside() {
    assert_eq!(
        parse(r#"emails[not (type eq "work") and (primary eq true or value ew ".org")]"#),
        Filter::ValuePath(
            simple("emails"),
            Box::new(Filter::and(
                Filter::negate(compare(simple("type"), CompareOp::Eq, text("work"))),
                Filter::or(
                    compare(simple("primary"), CompareOp::Eq, CompValue::Bool(true)),
                    compare(simple("value"), CompareOp::Ew, text(".org"))
                )
            ))
        )
    );
}

#[test]
fn value_paths_may_sit_inside_not_and_parentheses() {
    assert_eq!(
        parse(r#"not (emails[type eq "work"]) and (members[value pr])"#),
        Filter::and(
            Filter::negate(Filter::ValuePath(
                simple("emails"),
                Box::new(compare(simple("type"), CompareOp::Eq, text("work")))
            )),
            Filter::ValuePath(simple("members"), Box::new(present(simple("value"))))
        )
    );
}

#[test]
fn a_value_path_may_follow_a_schema_urn() {
    assert_eq!(
        parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"]"#),
        Filter::ValuePath(
            qualified(CORE_USER, "emails", None),
            Box::new(compare(simple("type"), CompareOp::Eq, text("work")))
        )
    );
}

#[test]
fn extension_attributes_split_into_urn_and_name() {
    assert_eq!(
        parse(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#
        ),
        compare(
            qualified(ENTERPRISE_USER, "employeeNumber", None),
            CompareOp::Eq,
            text("701984")
        )
    );
    assert_eq!(
        parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr"),
        present(qualified(ENTERPRISE_USER, "manager", Some("value")))
    );
}

#[test]
fn json_literals_and_numbers_become_typed_values() {
    assert_eq!(
        parse("active eq true"),
        compare(simple("active"), CompareOp::Eq, CompValue::Bool(true))
    );
    assert_eq!(
        parse("active eq FALSE"),
        compare(simple("active"), CompareOp::Eq, CompValue::Bool(false))
    );
    assert_eq!(
        parse("nickName eq Null"),
        compare(simple("nickName"), CompareOp::Eq, CompValue::Null)
    );
    assert_eq!(
        parse("age ge -3"),
        compare(simple("age"), CompareOp::Ge, number(-3))
    );
    assert_eq!(
        parse("score lt 1.5e2"),
        compare(
            simple("score"),
            CompareOp::Lt,
            CompValue::Number(serde_json::Number::from_f64(150.0).unwrap())
        )
    );
}

#[test]
fn quoted_literals_stay_strings() {
    assert_eq!(
        parse(r#"title eq "true""#),
        compare(simple("title"), CompareOp::Eq, text("true"))
    );
    assert_eq!(
        parse(r#"employeeNumber eq "42""#),
        compare(simple("employeeNumber"), CompareOp::Eq, text("42"))
    );
}

#[test]
fn strings_decode_json_escapes_including_surrogate_pairs() {
    assert_eq!(
        parse(r#"displayName eq "Ol\u00e9 \ud83d\ude00 \"quoted\" back\\slash \/ \t""#),
        compare(
            simple("displayName"),
            CompareOp::Eq,
            text("Ol\u{e9} \u{1F600} \"quoted\" back\\slash / \t")
        )
    );
}

#[test]
fn strings_may_contain_brackets_parentheses_and_keywords() {
    assert_eq!(
        parse(r#"members[value eq "a] or (b"]"#),
        Filter::ValuePath(
            simple("members"),
            Box::new(compare(simple("value"), CompareOp::Eq, text("a] or (b")))
        )
    );
}

#[test]
fn ref_is_a_valid_attribute_name() {
    assert_eq!(
        parse(r#"members[$ref eq "https://example.com/Users/1"]"#),
        Filter::ValuePath(
            simple("members"),
            Box::new(compare(
                simple("$ref"),
                CompareOp::Eq,
                text("https://example.com/Users/1")
            ))
        )
    );
    assert_eq!(parse("members.$ref pr"), present(sub("members", "$ref")));
}

#[test]
fn attribute_name_case_is_preserved() {
    assert_eq!(
        parse("USERNAME eq 1"),
        compare(simple("USERNAME"), CompareOp::Eq, number(1))
    );
}

#[test]
fn canonical_text_uses_lower_case_keywords_single_spaces_and_double_quotes() {
    let filter = parse("  NOT(a   PR)\tAND  b EQ 'x'  OR c.d  Co  TRUE ");
    assert_eq!(
        filter.to_string(),
        r#"not (a pr) and b eq "x" or c.d co true"#
    );
}

#[test]
fn an_attribute_named_not_is_read_as_an_attribute_when_no_parenthesis_follows() {
    assert_eq!(parse("not pr"), present(simple("not")));
    assert_eq!(
        parse("not.x eq 1"),
        compare(sub("not", "x"), CompareOp::Eq, number(1))
    );
    assert_eq!(
        parse("a pr and not[b pr]"),
        Filter::and(
            present(simple("a")),
            Filter::ValuePath(simple("not"), Box::new(present(simple("b"))))
        )
    );
}
