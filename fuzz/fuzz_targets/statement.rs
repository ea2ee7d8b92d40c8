//! Fuzz target for `parse_statement` (governance SQL): no input may panic it, and every
//! statement it accepts must parse back to the same value from its canonical text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scimitar_access::statement::{parse_statement, MAX_STATEMENT_BYTES};

fuzz_target!(|data: &[u8]| {
    // Statements arrive as UTF-8 text (a JSON body or a command-line argument).
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(statement) = parse_statement(input) else {
        return;
    };
    let rendered = statement.to_string();
    // Canonical text can outgrow the input (every name gains backticks), and past the size
    // limit the parser rightly refuses it; that is not a round-trip failure.
    if rendered.len() > MAX_STATEMENT_BYTES {
        return;
    }
    assert_eq!(
        parse_statement(&rendered),
        Ok(statement),
        "canonical text {rendered:?} of input {input:?} did not parse back to the same statement"
    );
});
