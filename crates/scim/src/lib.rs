//! The SCIM 2.0 query grammar: filters (RFC 7644 section 3.4.2.2), attribute paths and PATCH
//! paths (RFC 7644 section 3.5.2), parsed into typed trees and written back as canonical text.
//!
//! This crate does no I/O and knows nothing about schemas: it cannot tell whether `emails` is
//! multi-valued or whether `userName` exists. Deciding that is the caller's job, so the trees
//! keep attribute names exactly as they were written.
//!
//! # Layout
//!
//! - `filter` holds the filter tree ([`Filter`], [`CompareOp`], [`CompValue`]), its canonical
//!   text form, and [`parse_filter`].
//! - `path` holds [`AttrPath`] and [`PatchPath`], their text forms, [`parse_attr_path`] and
//!   [`parse_patch_path`].
//! - `parser` is the recursive-descent grammar that all three parse functions share.
//! - `literal` reads comparison values (quoted strings, numbers, bare words) and writes strings
//!   back as JSON.
//! - `scanner` is the byte cursor the grammar moves over the input.
//! - `error` defines [`ParseError`], the one error every parser returns.
//! - [`limits`] holds the input size, nesting depth and comparison count limits.
//!
//! # Round trips
//!
//! For every tree `t` a parser returns, `parse(&t.to_string()) == Ok(t)`, provided the text
//! still fits [`limits::MAX_INPUT_BYTES`] (writing can lengthen it, for example by quoting bare
//! values). The property tests and the fuzz targets in `fuzz/` check exactly this.

mod error;
mod filter;
pub mod limits;
mod literal;
mod parser;
mod path;
mod scanner;

pub use error::ParseError;
pub use filter::{parse_filter, CompValue, CompareOp, Filter};
pub use path::{parse_attr_path, parse_patch_path, AttrPath, PatchPath};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::path::Path;

    /// The house style asks every module to open with a `//!` line saying what it is for; this
    /// keeps new modules from forgetting.
    #[test]
    fn every_source_and_test_file_opens_with_a_module_doc_line() {
        let crate_root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut checked_files = 0;
        for folder in ["src", "tests/grammar"] {
            for entry in std::fs::read_dir(crate_root.join(folder)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|extension| extension == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert!(
                        text.starts_with("//!"),
                        "{} lacks a //! doc line",
                        path.display()
                    );
                    checked_files += 1;
                }
            }
        }
        assert!(checked_files > 10, "only {checked_files} files were found");
    }
}
