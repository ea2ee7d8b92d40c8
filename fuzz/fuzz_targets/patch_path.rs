//! Fuzz target for `parse_patch_path` (and `parse_attr_path`, which shares its start): no input
//! may panic them, and every path they accept must parse back from its canonical text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scimitar_scim::limits::MAX_INPUT_BYTES;
use scimitar_scim::{parse_attr_path, parse_patch_path};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = parse_patch_path(input) {
        let rendered = path.to_string();
        // The value filter's canonical text can outgrow the input; past the size limit the
        // parser rightly refuses it.
        if rendered.len() <= MAX_INPUT_BYTES {
            assert_eq!(
                parse_patch_path(&rendered),
                Ok(path),
                "canonical text {rendered:?} of input {input:?} did not parse back to the same \
                 PATCH path"
            );
        }
    }
    if let Ok(path) = parse_attr_path(input) {
        let rendered = path.to_string();
        assert_eq!(
            parse_attr_path(&rendered),
            Ok(path),
            "canonical text {rendered:?} of input {input:?} did not parse back to the same \
             attribute path"
        );
    }
});
