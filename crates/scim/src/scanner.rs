//! A cursor over the input text that the grammar in `parser` moves forward byte by byte.

/// The characters treated as whitespace between tokens. Clients are sloppy (double spaces, tabs,
/// a pasted newline), so any run of these is accepted wherever whitespace may appear.
pub(crate) fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

/// Characters that may appear in an attribute name after its first letter (RFC 7643 `nameChar`).
pub(crate) fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

/// The longest piece of input quoted back in an error message; longer pieces are cut short so a
/// megabyte of garbage does not produce a megabyte of error text.
const MAX_QUOTED_CHARS: usize = 24;

/// A position in the input. All positions are byte offsets and always sit on a UTF-8 character
/// boundary, because the scanner only ever steps over whole characters or ASCII bytes.
#[derive(Debug, Clone)]
pub(crate) struct Scanner<'input> {
    input: &'input str,
    position: usize,
}

impl<'input> Scanner<'input> {
    pub(crate) fn new(input: &'input str) -> Self {
        Self { input, position: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.position
    }

    /// Moves back to a position saved earlier, used when a look-ahead did not match.
    pub(crate) fn rewind_to(&mut self, position: usize) {
        self.position = position;
    }

    pub(crate) fn at_end(&self) -> bool {
        self.position >= self.input.len()
    }

    /// The input not yet consumed.
    pub(crate) fn rest(&self) -> &'input str {
        self.input.get(self.position..).unwrap_or("")
    }

    /// The input between two positions, or "" if they are not valid boundaries.
    pub(crate) fn slice(&self, start: usize, end: usize) -> &'input str {
        self.input.get(start..end).unwrap_or("")
    }

    pub(crate) fn peek_byte(&self) -> Option<u8> {
        self.input.as_bytes().get(self.position).copied()
    }

    pub(crate) fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Steps over one ASCII byte the caller has just peeked.
    pub(crate) fn advance_ascii(&mut self) {
        self.position += 1;
    }

    /// Steps over one character, however many bytes it takes.
    pub(crate) fn advance_char(&mut self, character: char) {
        self.position += character.len_utf8();
    }

    /// Steps over `byte_count` bytes the caller has already checked end on a character boundary.
    pub(crate) fn advance_bytes(&mut self, byte_count: usize) {
        self.position += byte_count;
    }

    /// Skips any run of whitespace and reports how many bytes were skipped.
    pub(crate) fn skip_whitespace(&mut self) -> usize {
        let start = self.position;
        while self.peek_byte().is_some_and(is_whitespace) {
            self.position += 1;
        }
        self.position - start
    }

    /// Consumes the bytes for which `accept` holds and returns them.
    pub(crate) fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> &'input str {
        let start = self.position;
        while self.peek_byte().is_some_and(&accept) {
            self.position += 1;
        }
        self.slice(start, self.position)
    }

    /// Consumes `keyword` (ASCII, any case) if it comes next and is not merely the start of a
    /// longer name: "and" matches in "and (" but not in "android".
    pub(crate) fn eat_keyword(&mut self, keyword: &str) -> bool {
        let rest = self.rest().as_bytes();
        let Some(candidate) = rest.get(..keyword.len()) else {
            return false;
        };
        if !candidate.eq_ignore_ascii_case(keyword.as_bytes()) {
            return false;
        }
        if rest.get(keyword.len()).copied().is_some_and(is_name_byte) {
            return false;
        }
        self.position += keyword.len();
        true
    }

    /// Describes what sits at the cursor for an error message: `'xyz'` for a word, `')'` for a
    /// single punctuation mark, or `end of input`.
    pub(crate) fn describe_next(&self) -> String {
        describe_text_at(self.rest())
    }
}

/// Describes the token at the start of `text` as [`Scanner::describe_next`] does.
pub(crate) fn describe_text_at(text: &str) -> String {
    let Some(first) = text.chars().next() else {
        return "end of input".to_owned();
    };
    if first.is_whitespace() {
        return "whitespace".to_owned();
    }
    if matches!(first, '(' | ')' | '[' | ']' | '"' | '\'' | '.') {
        return format!("'{first}'");
    }
    let word_end = text
        .find(|character: char| {
            character.is_ascii_whitespace() || matches!(character, '(' | ')' | '[' | ']')
        })
        .unwrap_or(text.len());
    quote_for_message(text.get(..word_end).unwrap_or(text))
}

/// Wraps `text` in single quotes for an error message, cutting it short if it is long.
pub(crate) fn quote_for_message(text: &str) -> String {
    let mut characters = text.chars();
    let shortened: String = characters.by_ref().take(MAX_QUOTED_CHARS).collect();
    if characters.next().is_some() {
        format!("'{shortened}...'")
    } else {
        format!("'{shortened}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_in_any_case_but_not_as_the_start_of_a_longer_name() {
        let mut scanner = Scanner::new("AnD (");
        assert!(scanner.eat_keyword("and"));
        assert_eq!(scanner.position(), 3);

        let mut scanner = Scanner::new("android");
        assert!(!scanner.eat_keyword("and"));
        assert_eq!(scanner.position(), 0);

        let mut scanner = Scanner::new("an");
        assert!(!scanner.eat_keyword("and"));
    }

    #[test]
    fn whitespace_runs_of_spaces_tabs_and_newlines_are_skipped_together() {
        let mut scanner = Scanner::new(" \t \r\n x");
        assert_eq!(scanner.skip_whitespace(), 6);
        assert_eq!(scanner.peek_byte(), Some(b'x'));
    }

    #[test]
    fn long_words_are_shortened_when_quoted_in_messages() {
        let long_word = "x".repeat(100);
        let described = describe_text_at(&long_word);
        assert_eq!(described, format!("'{}...'", "x".repeat(MAX_QUOTED_CHARS)));
        assert_eq!(describe_text_at(""), "end of input");
        assert_eq!(describe_text_at(") and"), "')'");
        assert_eq!(describe_text_at("xyz)"), "'xyz'");
        assert_eq!(describe_text_at(" xyz"), "whitespace");
    }
}
