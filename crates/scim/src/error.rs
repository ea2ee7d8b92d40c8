//! The one error type every parser in this crate returns, carrying where the input went wrong.

use std::fmt;

/// Why a filter, attribute path or PATCH path could not be parsed, and where.
///
/// The server turns this into a SCIM `invalidFilter` or `invalidPath` error body, so the message
/// is written for the person who typed the filter: it names what was expected and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset into the input where the problem was found, so a caller can point at it
    /// (for example by underlining the input in a CLI) without parsing the message.
    pub position: usize,
    /// A complete sentence for people. It already names the position, because the natural place
    /// for the position differs between messages ("unterminated string starting at position 12"
    /// reads better than a position tacked onto the end).
    pub message: String,
}

impl ParseError {
    /// Builds an error at `position` whose message is `message`; the message must already
    /// mention the position, which every constructor in this crate does.
    pub(crate) fn new(position: usize, message: String) -> Self {
        Self { position, message }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}
