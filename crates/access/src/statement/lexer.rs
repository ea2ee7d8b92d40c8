//! Splits statement text into tokens, each with the byte range it came from, so that every
//! parse error can quote the token it stopped at and say where it is.

use super::StatementError;

/// What a token is. Keywords are not told apart from identifiers here: SQL keywords are not
/// reserved in most positions, so the parser decides by position whether `table` is a keyword
/// or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A run of ASCII letters, digits and underscores, as written. Databricks requires
    /// backticks around anything else, including non-ASCII names.
    Word(String),
    /// A backticked identifier with its doubled backticks already undone.
    Quoted(String),
    /// A string literal (`'...'`, `"..."` or a `$$...$$` function body), unescaped.
    Text(String),
    /// Any other single character: punctuation, operators, and stray non-ASCII characters,
    /// which only matter inside clauses the parser skips.
    Symbol(char),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    /// Byte offset of the token's first character in the statement text.
    pub(crate) start: usize,
    /// Byte offset just past the token, so the error can quote the token as written.
    pub(crate) end: usize,
}

impl Token {
    pub(crate) fn is_keyword(&self, keyword: &str) -> bool {
        matches!(&self.kind, TokenKind::Word(word) if word.eq_ignore_ascii_case(keyword))
    }

    pub(crate) fn is_symbol(&self, symbol: char) -> bool {
        self.kind == TokenKind::Symbol(symbol)
    }
}

/// Tokenizes the whole text. Comments (`-- ...` to the end of the line and `/* ... */`) and
/// whitespace are dropped.
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, StatementError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, character)) = chars.next() {
        if character.is_whitespace() {
            continue;
        }
        let next = chars.peek().map(|(_, next)| *next);
        let kind = match character {
            '-' if next == Some('-') => {
                for (_, skipped) in chars.by_ref() {
                    if skipped == '\n' {
                        break;
                    }
                }
                continue;
            }
            '/' if next == Some('*') => {
                chars.next();
                let mut previous = ' ';
                let mut closed = false;
                for (_, skipped) in chars.by_ref() {
                    if previous == '*' && skipped == '/' {
                        closed = true;
                        break;
                    }
                    previous = skipped;
                }
                if !closed {
                    return Err(unterminated(text, start, "comment", "*/"));
                }
                continue;
            }
            '`' => {
                let mut name = String::new();
                let mut closed = false;
                while let Some((_, inner)) = chars.next() {
                    if inner == '`' {
                        // A doubled backtick stands for one backtick inside the name.
                        if chars.peek().map(|(_, after)| *after) == Some('`') {
                            chars.next();
                            name.push('`');
                        } else {
                            closed = true;
                            break;
                        }
                    } else {
                        name.push(inner);
                    }
                }
                if !closed {
                    return Err(unterminated(text, start, "backticked name", "`"));
                }
                TokenKind::Quoted(name)
            }
            '\'' | '"' => {
                let quote = character;
                let mut value = String::new();
                let mut closed = false;
                while let Some((_, inner)) = chars.next() {
                    if inner == '\\' {
                        // Databricks strings take backslash escapes; an unknown escape
                        // stands for the character itself, as in Spark.
                        let Some((_, escaped)) = chars.next() else {
                            break;
                        };
                        value.push(match escaped {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '0' => '\0',
                            other => other,
                        });
                    } else if inner == quote {
                        // A doubled quote also stands for one quote.
                        if chars.peek().map(|(_, after)| *after) == Some(quote) {
                            chars.next();
                            value.push(quote);
                        } else {
                            closed = true;
                            break;
                        }
                    } else {
                        value.push(inner);
                    }
                }
                if !closed {
                    return Err(unterminated(text, start, "string", &quote.to_string()));
                }
                TokenKind::Text(value)
            }
            '$' if next == Some('$') => {
                // A `$$ ... $$` function body: Python or SQL text that may hold quotes and
                // backticks of its own, so it is taken whole.
                chars.next();
                let body_start = start + 2;
                let Some(length) = text[body_start..].find("$$") else {
                    return Err(unterminated(text, start, "$$ body", "$$"));
                };
                let body_end = body_start + length;
                while chars
                    .peek()
                    .is_some_and(|(offset, _)| *offset < body_end + 2)
                {
                    chars.next();
                }
                TokenKind::Text(text[body_start..body_end].to_string())
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let mut word = String::from(c);
                while let Some((_, inner)) = chars.peek() {
                    if inner.is_ascii_alphanumeric() || *inner == '_' {
                        word.push(*inner);
                        chars.next();
                    } else {
                        break;
                    }
                }
                TokenKind::Word(word)
            }
            other => TokenKind::Symbol(other),
        };
        let end = chars.peek().map_or(text.len(), |(offset, _)| *offset);
        tokens.push(Token { kind, start, end });
    }
    Ok(tokens)
}

fn unterminated(text: &str, start: usize, what: &str, closer: &str) -> StatementError {
    let found = super::quote_source(&text[start..]);
    StatementError {
        position: start,
        found: found.clone(),
        message: format!(
            "unterminated {what}: expected a closing {closer} for {found} at offset {start}"
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|token| token.kind)
            .collect()
    }

    #[test]
    fn backticks_keep_spaces_dots_and_at_signs_and_undouble_backticks() {
        assert_eq!(
            kinds("`alice@example.com` `Data Engineers` `a``b`"),
            vec![
                TokenKind::Quoted("alice@example.com".into()),
                TokenKind::Quoted("Data Engineers".into()),
                TokenKind::Quoted("a`b".into()),
            ]
        );
    }

    #[test]
    fn strings_take_backslash_and_doubled_quote_escapes() {
        assert_eq!(
            kinds(r"'it\'s' 'it''s' 'a\\b\n'"),
            vec![
                TokenKind::Text("it's".into()),
                TokenKind::Text("it's".into()),
                TokenKind::Text("a\\b\n".into()),
            ]
        );
    }

    #[test]
    fn comments_are_dropped_and_offsets_are_bytes() {
        let tokens = tokenize("-- note\nGRANT /* x */ é").unwrap();
        assert_eq!(tokens[0].kind, TokenKind::Word("GRANT".into()));
        assert_eq!((tokens[0].start, tokens[0].end), (8, 13));
        assert_eq!(tokens[1].kind, TokenKind::Symbol('é'));
        assert_eq!((tokens[1].start, tokens[1].end), (22, 24));
    }

    #[test]
    fn dollar_bodies_are_taken_whole() {
        assert_eq!(
            kinds("AS $$ return 'x`' $$;"),
            vec![
                TokenKind::Word("AS".into()),
                TokenKind::Text(" return 'x`' ".into()),
                TokenKind::Symbol(';'),
            ]
        );
    }

    #[test]
    fn unterminated_literals_point_at_their_start() {
        for (text, position) in [("GRANT `abc", 6), ("x 'abc", 2), ("/* x", 0), ("$$ x", 0)] {
            let error = tokenize(text).unwrap_err();
            assert_eq!(error.position, position, "{text}");
            assert!(error.message.contains("unterminated"), "{}", error.message);
        }
    }
}
