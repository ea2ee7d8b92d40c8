//! Property tests: canonical text round-trips for generated trees, and no input of any shape
//! makes a parser panic. The fuzz targets in `fuzz/` check the same properties with libFuzzer;
//! these run them on stable Rust in every test run.

use proptest::prelude::*;
use scimitar_scim::limits::MAX_INPUT_BYTES;
use scimitar_scim::{
    parse_attr_path, parse_filter, parse_patch_path, AttrPath, CompValue, CompareOp, Filter,
    PatchPath,
};

fn attribute_name() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => "[a-zA-Z][a-zA-Z0-9_-]{0,10}",
        // Keywords are legal attribute names and must survive being printed next to keywords.
        2 => prop::sample::select(vec!["not", "and", "or", "pr", "eq", "NOT", "true", "null"])
            .prop_map(str::to_owned),
        1 => prop::sample::select(vec!["$ref", "$Ref"]).prop_map(str::to_owned),
    ]
}

fn schema_urn() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["urn", "URN", "Urn"]),
        prop::collection::vec("[a-zA-Z0-9._-]{1,8}", 1..6),
    )
        .prop_map(|(prefix, segments)| format!("{prefix}:{}", segments.join(":")))
}

fn attr_path() -> impl Strategy<Value = AttrPath> {
    (
        prop::option::weighted(0.3, schema_urn()),
        attribute_name(),
        prop::option::of(attribute_name()),
    )
        .prop_map(|(urn, name, sub_attr)| AttrPath {
            urn,
            name,
            sub_attr,
        })
}

/// A path that a value filter may follow: anything without a sub-attribute.
fn multi_valued_attr_path() -> impl Strategy<Value = AttrPath> {
    (prop::option::weighted(0.3, schema_urn()), attribute_name()).prop_map(|(urn, name)| AttrPath {
        urn,
        name,
        sub_attr: None,
    })
}

fn compare_op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(CompareOp::ALL.to_vec())
}

fn comp_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        Just(CompValue::Null),
        any::<bool>().prop_map(CompValue::Bool),
        any::<i64>().prop_map(|integer| CompValue::Number(integer.into())),
        any::<u64>().prop_map(|integer| CompValue::Number(integer.into())),
        any::<f64>()
            .prop_filter_map("finite floats only", serde_json::Number::from_f64)
            .prop_map(CompValue::Number),
        any::<String>().prop_map(CompValue::String),
        "[a-z\"'\\\\\\]\\[() ]{0,12}".prop_map(CompValue::String),
    ]
}

/// Joins generated operands with and/or/not, up to a bounded depth.
fn combine(leaf: BoxedStrategy<Filter>, depth: u32) -> BoxedStrategy<Filter> {
    leaf.prop_recursive(depth, 24, 2, |operand| {
        prop_oneof![
            (operand.clone(), operand.clone()).prop_map(|(left, right)| Filter::and(left, right)),
            (operand.clone(), operand.clone()).prop_map(|(left, right)| Filter::or(left, right)),
            operand.prop_map(Filter::negate),
        ]
    })
    .boxed()
}

/// A filter as it may appear inside brackets: paths are bare sub-attribute names.
fn value_filter() -> BoxedStrategy<Filter> {
    let leaf = prop_oneof![
        attribute_name().prop_map(|name| Filter::Present(AttrPath::simple(&name))),
        (attribute_name(), compare_op(), comp_value()).prop_map(|(name, operator, value)| {
            Filter::Compare(AttrPath::simple(&name), operator, value)
        }),
    ]
    .boxed();
    combine(leaf, 3)
}

fn filter() -> BoxedStrategy<Filter> {
    let leaf = prop_oneof![
        3 => attr_path().prop_map(Filter::Present),
        6 => (attr_path(), compare_op(), comp_value())
            .prop_map(|(path, operator, value)| Filter::Compare(path, operator, value)),
        2 => (multi_valued_attr_path(), value_filter())
            .prop_map(|(path, inner)| Filter::ValuePath(path, Box::new(inner))),
    ]
    .boxed();
    combine(leaf, 4)
}

fn patch_path() -> impl Strategy<Value = PatchPath> {
    prop_oneof![
        attr_path().prop_map(|attr| PatchPath {
            attr,
            value_filter: None,
            sub_attr: None,
        }),
        (
            multi_valued_attr_path(),
            value_filter(),
            prop::option::of(attribute_name())
        )
            .prop_map(|(attr, inner, sub_attr)| PatchPath {
                attr,
                value_filter: Some(inner),
                sub_attr,
            }),
    ]
}

/// Input built from the grammar's own pieces in random order, which reaches far deeper into
/// the parser than uniformly random text does.
fn token_soup() -> impl Strategy<Value = String> {
    let pieces = vec![
        "(", ")", "[", "]", " ", "  ", "\t", "not", "NOT ", "and", " or ", "pr", " eq ", "co", "a",
        "b.c", "emails", "$ref", "urn:x:y:", "urn:", ":", ".", "\"", "'", "\\", "\\u", "d83d",
        "\\ude00", "1", "-", "0", "e5", "1.5", "true", "null", "é", "😀", ",", "\u{0}",
    ];
    prop::collection::vec(prop::sample::select(pieces), 0..48).prop_map(|pieces| pieces.concat())
}

/// Parses `input` as a filter and, when that succeeds, checks the canonical text parses back to
/// the same tree. Never panics on its own account: only a failed property does.
fn check_filter_input(input: &str) -> Result<(), TestCaseError> {
    if let Ok(filter) = parse_filter(input) {
        let rendered = filter.to_string();
        // Canonical text can be longer than the input (bare values gain quotes, escapes grow),
        // and then the length limit rightly refuses it.
        if rendered.len() <= MAX_INPUT_BYTES {
            prop_assert_eq!(
                parse_filter(&rendered),
                Ok(filter),
                "rendered as {:?}",
                rendered
            );
        }
    }
    Ok(())
}

fn check_path_inputs(input: &str) -> Result<(), TestCaseError> {
    if let Ok(path) = parse_patch_path(input) {
        let rendered = path.to_string();
        if rendered.len() <= MAX_INPUT_BYTES {
            prop_assert_eq!(
                parse_patch_path(&rendered),
                Ok(path),
                "rendered as {:?}",
                rendered
            );
        }
    }
    if let Ok(path) = parse_attr_path(input) {
        prop_assert_eq!(parse_attr_path(&path.to_string()), Ok(path));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_filters_round_trip_through_their_canonical_text(filter in filter()) {
        let rendered = filter.to_string();
        prop_assert_eq!(parse_filter(&rendered), Ok(filter), "rendered as {:?}", rendered);
    }

    #[test]
    fn generated_patch_paths_round_trip_through_their_canonical_text(path in patch_path()) {
        let rendered = path.to_string();
        prop_assert_eq!(parse_patch_path(&rendered), Ok(path), "rendered as {:?}", rendered);
    }

    #[test]
    fn generated_attribute_paths_round_trip_through_their_canonical_text(path in attr_path()) {
        prop_assert_eq!(parse_attr_path(&path.to_string()), Ok(path));
    }

    #[test]
    fn arbitrary_text_never_panics_the_parsers(input in any::<String>()) {
        check_filter_input(&input)?;
        check_path_inputs(&input)?;
    }

    #[test]
    fn token_soup_never_panics_the_parsers(input in token_soup()) {
        check_filter_input(&input)?;
        check_path_inputs(&input)?;
    }

    #[test]
    fn mutated_canonical_text_never_panics_the_parsers(
        filter in filter(),
        cut in any::<prop::sample::Index>(),
        insertion in prop::sample::select(vec!["(", ")", "[", "]", "\"", "'", "\\", " ", "not ", "."]),
    ) {
        let rendered = filter.to_string();
        let mut cut_at = cut.index(rendered.len() + 1);
        while !rendered.is_char_boundary(cut_at) {
            cut_at -= 1;
        }
        let (before, after) = rendered.split_at(cut_at);
        check_filter_input(&format!("{before}{insertion}{after}"))?;
        check_filter_input(before)?;
        check_path_inputs(&format!("emails[{before}{insertion}{after}]"))?;
    }
}
