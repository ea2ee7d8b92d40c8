//! Fuzz target for `parse_filter`: no input may panic it, and every filter it accepts must parse
//! back to the same tree from its canonical text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scimitar_scim::limits::MAX_INPUT_BYTES;
use scimitar_scim::parse_filter;

fuzz_target!(|data: &[u8]| {
    // Filters arrive as UTF-8 text (a decoded query string or JSON body), so only text is fed in.
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = parse_filter(input) else {
        return;
    };
    let rendered = filter.to_string();
    // Canonical text can outgrow the input (bare values gain quotes), and past the size limit
    // the parser rightly refuses it; that is not a round-trip failure.
    if rendered.len() > MAX_INPUT_BYTES {
        return;
    }
    assert_eq!(
        parse_filter(&rendered),
        Ok(filter),
        "canonical text {rendered:?} of input {input:?} did not parse back to the same filter"
    );
});
