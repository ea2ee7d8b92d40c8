//! Attribute paths (`attributes=`, `sortBy`) and PATCH paths (RFC 7644 section 3.5.2).

use scimitar_scim::{parse_attr_path, parse_patch_path, AttrPath, CompareOp, Filter, PatchPath};

use crate::{compare, qualified, simple, sub, text};

const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn patch_path(input: &str) -> PatchPath {
    parse_patch_path(input).unwrap_or_else(|error| panic!("{input:?} should parse: {error}"))
}

#[test]
fn simple_and_sub_attribute_paths_parse() {
    assert_eq!(parse_attr_path("userName"), Ok(simple("userName")));
    assert_eq!(
        parse_attr_path("name.givenName"),
        Ok(sub("name", "givenName"))
    );
    assert_eq!(parse_attr_path("members.$ref"), Ok(sub("members", "$ref")));
}

#[test]
fn qualified_attribute_paths_split_at_the_last_colon() {
    assert_eq!(
        parse_attr_path(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"
        ),
        Ok(qualified(ENTERPRISE_USER, "employeeNumber", None))
    );
    assert_eq!(
        parse_attr_path("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName"),
        Ok(qualified(
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "name",
            Some("givenName")
        ))
    );
    assert_eq!(
        parse_attr_path("URN:ietf:params:scim:schemas:core:2.0:User:userName").map(|path| path.urn),
        Ok(Some(
            "URN:ietf:params:scim:schemas:core:2.0:User".to_owned()
        ))
    );
}

#[test]
fn attribute_paths_display_as_they_were_written() {
    for written in [
        "userName",
        "name.givenName",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    ] {
        assert_eq!(
            parse_attr_path(written).map(|path| path.to_string()),
            Ok(written.to_owned())
        );
    }
}

#[test]
fn malformed_attribute_paths_are_rejected() {
    for input in [
        "",
        " userName",
        "userName ",
        "user name",
        "a.b.c",
        "a[",
        "1abc",
        "urn:x:",
        "name.",
    ] {
        assert!(
            parse_attr_path(input).is_err(),
            "{input:?} should be rejected"
        );
    }
    let error = parse_attr_path("userName,title").unwrap_err();
    assert_eq!(error.position, 8);
    assert!(
        error
            .message
            .starts_with("trailing input ',title' at position 8"),
        "{}",
        error.message
    );
}

#[test]
fn a_plain_patch_path_has_no_filter() {
    assert_eq!(
        patch_path("members"),
        PatchPath {
            attr: simple("members"),
            value_filter: None,
            sub_attr: None
        }
    );
    assert_eq!(
        patch_path("name.givenName"),
        PatchPath {
            attr: sub("name", "givenName"),
            value_filter: None,
            sub_attr: None
        }
    );
}

#[test]
fn a_patch_path_with_a_value_filter_keeps_the_filter_relative() {
    assert_eq!(
        patch_path(r#"members[value eq "2819c223"]"#),
        PatchPath {
            attr: simple("members"),
            value_filter: Some(compare(simple("value"), CompareOp::Eq, text("2819c223"))),
            sub_attr: None,
        }
    );
}

#[test]
fn a_patch_path_may_name_a_sub_attribute_after_the_filter() {
    assert_eq!(
        patch_path(r#"emails[type eq "work"].value"#),
        PatchPath {
            attr: simple("emails"),
            value_filter: Some(compare(simple("type"), CompareOp::Eq, text("work"))),
            sub_attr: Some("value".to_owned()),
        }
    );
    assert_eq!(
        patch_path(r#"addresses[type eq "work"].streetAddress"#)
            .sub_attr
            .as_deref(),
        Some("streetAddress")
    );
}

#[test]
fn extension_patch_paths_split_into_urn_and_name() {
    assert_eq!(
        patch_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager").attr,
        qualified(ENTERPRISE_USER, "manager", None)
    );
    assert_eq!(
        patch_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value").attr,
        qualified(ENTERPRISE_USER, "manager", Some("value"))
    );
}

#[test]
fn patch_value_filters_use_the_full_filter_grammar() {
    assert_eq!(
        patch_path("emails[type eq 'work' and not (primary eq true)]").value_filter,
        Some(Filter::and(
            compare(simple("type"), CompareOp::Eq, text("work")),
            Filter::negate(compare(
                simple("primary"),
                CompareOp::Eq,
                scimitar_scim::CompValue::Bool(true)
            ))
        ))
    );
    assert_eq!(
        patch_path("members[value eq 2819c223]").value_filter,
        Some(compare(simple("value"), CompareOp::Eq, text("2819c223")))
    );
}

#[test]
fn patch_paths_display_canonically_and_round_trip() {
    for written in [
        "members",
        r#"members[value eq "2819c223"]"#,
        r#"emails[type eq "work"].value"#,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    ] {
        let parsed = patch_path(written);
        assert_eq!(parsed.to_string(), written);
        assert_eq!(parse_patch_path(&parsed.to_string()), Ok(parsed));
    }
    assert_eq!(
        patch_path("emails[ type EQ 'work' ].value").to_string(),
        r#"emails[type eq "work"].value"#
    );
}

#[test]
fn malformed_patch_paths_are_rejected_with_positions() {
    let cases: [(&str, usize, &str); 11] = [
        ("", 0, "empty PATCH path at position 0"),
        ("a[", 1, "the '[' at position 1 is never closed"),
        ("a[]", 2, "empty value filter at position 2"),
        ("a[b eq 1]junk", 9, "trailing input 'junk' at position 9"),
        ("members ", 7, "unexpected whitespace at position 7"),
        (
            " members",
            0,
            "expected an attribute name at position 0, found whitespace",
        ),
        (
            "name. givenName",
            5,
            "expected a sub-attribute name after '.' at position 5",
        ),
        (
            "emails[type eq \"work\"]. value",
            23,
            "expected a sub-attribute name",
        ),
        (
            "emails[type eq \"work\"].value.x",
            28,
            "trailing input '.' at position 28",
        ),
        (
            "name.givenName[value pr]",
            14,
            "must follow the multi-valued attribute itself",
        ),
        (
            "emails[type[value pr] pr]",
            11,
            "value paths cannot be nested",
        ),
    ];
    for (input, expected_position, expected_text) in cases {
        let error = parse_patch_path(input).expect_err(input);
        assert!(
            error.message.contains(expected_text),
            "message for {input:?} was {:?}",
            error.message
        );
        assert_eq!(error.position, expected_position, "position for {input:?}");
    }
}

#[test]
fn attr_path_helpers_build_unqualified_paths() {
    assert_eq!(
        AttrPath::with_sub("name", "givenName"),
        AttrPath {
            urn: None,
            name: "name".to_owned(),
            sub_attr: Some("givenName".to_owned())
        }
    );
    assert_eq!(AttrPath::simple("title").to_string(), "title");
}
