//! Reading comparison values (quoted strings, numbers, `true`/`false`/`null`, bare words) and
//! writing them back as canonical JSON text.

use std::fmt;

use crate::error::ParseError;
use crate::filter::CompValue;
use crate::scanner::Scanner;

/// Reads a string literal that starts at the cursor with `quote` (`"` or `'`) and returns its
/// decoded contents, leaving the cursor after the closing quote.
///
/// Double-quoted strings are JSON strings. Single-quoted strings are a leniency for clients such
/// as Terraform that write `displayName eq 'admins'`; they accept the same escapes plus `\'`.
/// `\'` is accepted inside double quotes too, since rejecting it would help nobody.
pub(crate) fn read_quoted_string(
    scanner: &mut Scanner<'_>,
    quote: char,
) -> Result<String, ParseError> {
    let string_start = scanner.position();
    scanner.advance_char(quote);
    let mut decoded = String::new();
    loop {
        let Some(character) = scanner.peek_char() else {
            return Err(unterminated(string_start));
        };
        if character == quote {
            scanner.advance_char(character);
            return Ok(decoded);
        }
        if character != '\\' {
            decoded.push(character);
            scanner.advance_char(character);
            continue;
        }
        let escape_start = scanner.position();
        scanner.advance_ascii();
        let Some(escaped) = scanner.peek_char() else {
            return Err(unterminated(string_start));
        };
        scanner.advance_char(escaped);
        let decoded_character = match escaped {
            '"' => '"',
            '\'' => '\'',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => read_unicode_escape(scanner, escape_start, string_start)?,
            other => {
                return Err(ParseError::new(
                    escape_start,
                    format!(
                        "invalid escape '\\{other}' at position {escape_start} in a string \
                         (valid escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)"
                    ),
                ))
            }
        };
        decoded.push(decoded_character);
    }
}

fn unterminated(string_start: usize) -> ParseError {
    ParseError::new(
        string_start,
        format!("unterminated string starting at position {string_start}"),
    )
}

/// Decodes the `XXXX` of a `\uXXXX` escape (the cursor is just after the `u`), joining a UTF-16
/// surrogate pair written as two escapes into one character.
fn read_unicode_escape(
    scanner: &mut Scanner<'_>,
    escape_start: usize,
    string_start: usize,
) -> Result<char, ParseError> {
    let first_unit = read_four_hex_digits(scanner, escape_start, string_start)?;
    let code_point = match first_unit {
        0xD800..=0xDBFF => {
            let low_escape_start = scanner.position();
            if !scanner.rest().starts_with("\\u") {
                return Err(lone_surrogate(escape_start));
            }
            scanner.advance_bytes(2);
            let second_unit = read_four_hex_digits(scanner, low_escape_start, string_start)?;
            if !(0xDC00..=0xDFFF).contains(&second_unit) {
                return Err(lone_surrogate(escape_start));
            }
            0x10000 + ((first_unit - 0xD800) << 10) + (second_unit - 0xDC00)
        }
        0xDC00..=0xDFFF => return Err(lone_surrogate(escape_start)),
        other => other,
    };
    char::from_u32(code_point).ok_or_else(|| lone_surrogate(escape_start))
}

fn read_four_hex_digits(
    scanner: &mut Scanner<'_>,
    escape_start: usize,
    string_start: usize,
) -> Result<u32, ParseError> {
    let upcoming = scanner.rest().as_bytes();
    let mut value = 0_u32;
    for offset in 0..4 {
        let Some(&digit) = upcoming.get(offset) else {
            return Err(unterminated(string_start));
        };
        let Some(digit_value) = char::from(digit).to_digit(16) else {
            return Err(bad_unicode_escape(escape_start));
        };
        value = value * 16 + digit_value;
    }
    scanner.advance_bytes(4);
    Ok(value)
}

fn bad_unicode_escape(escape_start: usize) -> ParseError {
    ParseError::new(
        escape_start,
        format!("invalid \\u escape at position {escape_start}: expected four hexadecimal digits"),
    )
}

fn lone_surrogate(escape_start: usize) -> ParseError {
    ParseError::new(
        escape_start,
        format!(
            "invalid \\u escape at position {escape_start}: a UTF-16 surrogate must come as a \
             high-low pair"
        ),
    )
}

/// Turns an unquoted word into a value. `true`, `false` and `null` (any case) and JSON numbers
/// keep their JSON meaning; anything else is taken as a string, because identity providers send
/// filters such as `externalId eq jyoung` and `meta.created gt 2015-10-10T14:38:21.86-07:00`.
pub(crate) fn classify_bare_word(word: &str, word_start: usize) -> Result<CompValue, ParseError> {
    if word.eq_ignore_ascii_case("true") {
        return Ok(CompValue::Bool(true));
    }
    if word.eq_ignore_ascii_case("false") {
        return Ok(CompValue::Bool(false));
    }
    if word.eq_ignore_ascii_case("null") {
        return Ok(CompValue::Null);
    }
    match classify_json_number(word) {
        None => Ok(CompValue::String(word.to_owned())),
        Some(shape) => number_from_text(word, shape)
            .map(CompValue::Number)
            .ok_or_else(|| {
                ParseError::new(
                    word_start,
                    format!("number '{word}' at position {word_start} is too large to represent"),
                )
            }),
    }
}

/// Whether a piece of text that matches the JSON number grammar is an integer or needs a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumberShape {
    Integer,
    Fractional,
}

/// Checks `text` against the JSON number grammar
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, so that only real numbers become
/// numbers and words like `00123` or `1.` stay strings.
fn classify_json_number(text: &str) -> Option<NumberShape> {
    let bytes = text.as_bytes();
    let mut index = usize::from(bytes.first() == Some(&b'-'));
    let count_digits = |from: usize| {
        bytes
            .iter()
            .skip(from)
            .take_while(|b| b.is_ascii_digit())
            .count()
    };

    let integer_digits = count_digits(index);
    if integer_digits == 0 || (integer_digits > 1 && bytes.get(index) == Some(&b'0')) {
        return None;
    }
    index += integer_digits;
    let mut shape = NumberShape::Integer;

    if bytes.get(index) == Some(&b'.') {
        let fraction_digits = count_digits(index + 1);
        if fraction_digits == 0 {
            return None;
        }
        index += 1 + fraction_digits;
        shape = NumberShape::Fractional;
    }
    if matches!(bytes.get(index), Some(b'e' | b'E')) {
        index += 1;
        if matches!(bytes.get(index), Some(b'+' | b'-')) {
            index += 1;
        }
        let exponent_digits = count_digits(index);
        if exponent_digits == 0 {
            return None;
        }
        index += exponent_digits;
        shape = NumberShape::Fractional;
    }
    (index == bytes.len()).then_some(shape)
}

/// Builds the number. Rust's own parsers are used rather than `serde_json`'s because they round
/// correctly, which keeps `parse(display(filter)) == filter` exact for every float.
/// Returns None only for a value too large for an f64.
fn number_from_text(text: &str, shape: NumberShape) -> Option<serde_json::Number> {
    if shape == NumberShape::Integer {
        if let Ok(unsigned) = text.parse::<u64>() {
            return Some(serde_json::Number::from(unsigned));
        }
        if let Ok(signed) = text.parse::<i64>() {
            return Some(serde_json::Number::from(signed));
        }
    }
    // Integers beyond 64 bits fall through to here and become floats, as they do in serde_json.
    let float = text.parse::<f64>().ok()?;
    serde_json::Number::from_f64(float)
}

/// Writes `text` as a double-quoted JSON string, escaping what JSON requires.
pub(crate) fn write_json_string(formatter: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    formatter.write_str("\"")?;
    let mut unescaped_run_start = 0;
    for (index, character) in text.char_indices() {
        let escape: Option<&str> = match character {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            _ => None,
        };
        let needs_unicode_escape = escape.is_none() && u32::from(character) < 0x20;
        if escape.is_none() && !needs_unicode_escape {
            continue;
        }
        formatter.write_str(text.get(unescaped_run_start..index).unwrap_or(""))?;
        match escape {
            Some(escape) => formatter.write_str(escape)?,
            None => write!(formatter, "\\u{:04x}", u32::from(character))?,
        }
        unescaped_run_start = index + character.len_utf8();
    }
    formatter.write_str(text.get(unescaped_run_start..).unwrap_or(""))?;
    formatter.write_str("\"")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn read(text: &str) -> Result<String, ParseError> {
        let mut scanner = Scanner::new(text);
        let quote = scanner.peek_char().unwrap();
        read_quoted_string(&mut scanner, quote)
    }

    #[test]
    fn double_quoted_strings_decode_every_json_escape() {
        assert_eq!(
            read(r#""a\"b\\c\/d\be\ff\ng\rh\ti\u00e9""#).unwrap(),
            "a\"b\\c/d\u{8}e\u{c}f\ng\rh\ti\u{e9}"
        );
    }

    #[test]
    fn surrogate_pairs_join_into_one_character() {
        assert_eq!(read(r#""\ud83d\ude00""#).unwrap(), "\u{1F600}");
    }

    #[test]
    fn lone_surrogates_are_rejected() {
        assert!(read(r#""\ud83d""#)
            .unwrap_err()
            .message
            .contains("surrogate"));
        assert!(read(r#""\ude00""#)
            .unwrap_err()
            .message
            .contains("surrogate"));
        assert!(read(r#""\ud83d\u0041""#)
            .unwrap_err()
            .message
            .contains("surrogate"));
    }

    #[test]
    fn single_quoted_strings_allow_an_escaped_single_quote() {
        assert_eq!(read(r"'O\'Malley'").unwrap(), "O'Malley");
        assert_eq!(read(r#"'say "hi"'"#).unwrap(), "say \"hi\"");
    }

    #[test]
    fn unterminated_strings_report_where_they_started() {
        let error = read(r#""abc"#).unwrap_err();
        assert_eq!(error.position, 0);
        assert_eq!(error.message, "unterminated string starting at position 0");
        assert_eq!(read(r#""abc\"#).unwrap_err().position, 0);
        assert_eq!(read(r#""\u12"#).unwrap_err().position, 0);
    }

    #[test]
    fn bad_escapes_point_at_the_backslash() {
        let error = read(r#""ab\qc""#).unwrap_err();
        assert_eq!(error.position, 3);
        assert!(error
            .message
            .starts_with("invalid escape '\\q' at position 3"));
        assert_eq!(read(r#""\u12zz""#).unwrap_err().position, 1);
    }

    #[test]
    fn bare_words_become_literals_numbers_or_strings() {
        assert_eq!(
            classify_bare_word("TRUE", 0).unwrap(),
            CompValue::Bool(true)
        );
        assert_eq!(
            classify_bare_word("False", 0).unwrap(),
            CompValue::Bool(false)
        );
        assert_eq!(classify_bare_word("nULL", 0).unwrap(), CompValue::Null);
        assert_eq!(
            classify_bare_word("42", 0).unwrap(),
            CompValue::Number(42.into())
        );
        assert_eq!(
            classify_bare_word("-7", 0).unwrap(),
            CompValue::Number((-7).into())
        );
        assert_eq!(
            classify_bare_word("2.5e3", 0).unwrap(),
            CompValue::Number(serde_json::Number::from_f64(2500.0).unwrap())
        );
        for word in [
            "00123",
            "1.",
            ".5",
            "1e",
            "+1",
            "-",
            "1-2",
            "jyoung",
            "2015-10-10T14:38:21.86-07:00",
        ] {
            assert_eq!(
                classify_bare_word(word, 0).unwrap(),
                CompValue::String(word.to_owned()),
                "{word}"
            );
        }
    }

    #[test]
    fn numbers_too_large_for_a_float_are_an_error() {
        let error = classify_bare_word("1e400", 5).unwrap_err();
        assert_eq!(error.position, 5);
        assert!(error.message.contains("too large"));
    }

    #[test]
    fn integers_beyond_sixty_four_bits_become_floats() {
        let value = classify_bare_word("123456789012345678901234567890", 0).unwrap();
        assert!(matches!(value, CompValue::Number(number) if number.is_f64()));
    }
}
