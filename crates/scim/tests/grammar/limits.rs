//! The protective limits: input size, nesting depth and comparison count, and that hostile input
//! hits them instead of overflowing the stack.

use scimitar_scim::limits::{MAX_COMPARISONS, MAX_INPUT_BYTES, MAX_NESTING_DEPTH};
use scimitar_scim::{parse_attr_path, parse_filter, parse_patch_path};

use crate::{assert_round_trips, parse, parse_error};

fn nested_in_parentheses(levels: usize, innermost: &str) -> String {
    format!("{}{innermost}{}", "(".repeat(levels), ")".repeat(levels))
}

#[test]
fn input_at_the_size_limit_is_accepted() {
    let prefix = "title eq \"";
    let padding = "x".repeat(MAX_INPUT_BYTES - prefix.len() - 1);
    let input = format!("{prefix}{padding}\"");
    assert_eq!(input.len(), MAX_INPUT_BYTES);
    parse(&input);
}

#[test]
fn input_over_the_size_limit_is_rejected_for_every_parser() {
    let input = format!("title eq \"{}\"", "x".repeat(MAX_INPUT_BYTES));
    let error = parse_error(&input);
    assert_eq!(error.position, MAX_INPUT_BYTES);
    assert!(
        error.message.contains("exceeds the limit of 65536 bytes"),
        "{}",
        error.message
    );

    let long_name = "a".repeat(MAX_INPUT_BYTES + 1);
    assert!(parse_attr_path(&long_name).is_err());
    assert!(parse_patch_path(&long_name).is_err());
}

#[test]
fn parentheses_nested_to_the_depth_limit_are_accepted() {
    parse(&nested_in_parentheses(MAX_NESTING_DEPTH, "title pr"));
}

#[test]
fn parentheses_nested_past_the_depth_limit_are_rejected_at_the_first_excess_parenthesis() {
    let error = parse_error(&nested_in_parentheses(MAX_NESTING_DEPTH + 1, "title pr"));
    assert_eq!(error.position, MAX_NESTING_DEPTH);
    assert!(
        error.message.starts_with("nesting too deep at position 64"),
        "{}",
        error.message
    );
}

#[test]
fn each_not_counts_as_a_level_of_nesting_as_well_as_its_parenthesis() {
    let levels_of_not = MAX_NESTING_DEPTH / 2;
    let within = format!(
        "{}title pr{}",
        "not (".repeat(levels_of_not),
        ")".repeat(levels_of_not)
    );
    parse(&within);
    let beyond = format!(
        "{}title pr{}",
        "not (".repeat(levels_of_not + 1),
        ")".repeat(levels_of_not + 1)
    );
    assert!(parse_error(&beyond).message.starts_with("nesting too deep"));
}

#[test]
fn a_value_path_counts_as_a_level_of_nesting() {
    parse(&nested_in_parentheses(
        MAX_NESTING_DEPTH - 1,
        "emails[type pr]",
    ));
    let error = parse_error(&nested_in_parentheses(MAX_NESTING_DEPTH, "emails[type pr]"));
    assert!(
        error.message.starts_with("nesting too deep"),
        "{}",
        error.message
    );
}

#[test]
fn a_wall_of_opening_parentheses_is_rejected_without_overflowing_the_stack() {
    let error = parse_error(&"(".repeat(MAX_INPUT_BYTES));
    assert_eq!(error.position, MAX_NESTING_DEPTH);
    let error = parse_error(&"not (".repeat(MAX_INPUT_BYTES / 5));
    assert!(error.message.starts_with("nesting too deep"));
    let error = parse_error(&"not(".repeat(MAX_INPUT_BYTES / 4));
    assert!(error.message.starts_with("nesting too deep"));
    let error = parse_patch_path(&format!("a[{}", "(".repeat(MAX_INPUT_BYTES - 2))).unwrap_err();
    assert!(error.message.starts_with("nesting too deep"));
}

#[test]
fn a_wall_of_brackets_is_rejected_as_nested_value_paths() {
    let error = parse_error(&"a[".repeat(MAX_INPUT_BYTES / 2));
    assert!(
        error.message.contains("value paths cannot be nested"),
        "{}",
        error.message
    );
}

#[test]
fn comparisons_up_to_the_limit_are_accepted_and_round_trip() {
    let input = vec!["title pr"; MAX_COMPARISONS].join(" or ");
    let filter = parse(&input);
    // A long left-leaning chain must print without parentheses, or its canonical text would
    // nest past the depth limit and fail to parse back.
    assert_round_trips(&filter);
    assert_eq!(filter.to_string(), input);
}

#[test]
fn comparisons_past_the_limit_are_rejected() {
    let input = vec!["title pr"; MAX_COMPARISONS + 1].join(" and ");
    let error = parse_error(&input);
    assert!(
        error.message.contains("a filter may contain at most 1000"),
        "{}",
        error.message
    );
    assert_eq!(error.position, input.rfind("title").unwrap_or(0));
}

#[test]
fn comparisons_inside_value_paths_count_toward_the_limit() {
    let inner = vec!["type pr"; MAX_COMPARISONS].join(" or ");
    assert!(parse_filter(&format!("emails[{inner}]")).is_ok());
    assert!(parse_filter(&format!("title pr and emails[{inner}]")).is_err());
    assert!(parse_patch_path(&format!("emails[{inner} or type pr]")).is_err());
}
