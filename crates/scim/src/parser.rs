//! The recursive-descent grammar shared by filters, attribute paths and PATCH paths, with the
//! limits that keep hostile input from exhausting the server.
//!
//! The grammar, loosely in the RFC's ABNF with the lenient extensions this crate accepts:
//!
//! ```text
//! filter      = and-expr *( "or" and-expr )
//! and-expr    = unary *( "and" unary )
//! unary       = "not" "(" filter ")" / "(" filter ")" / attr-expr
//! attr-expr   = attrPath "pr" / attrPath compareOp value / attrPath "[" filter "]"
//! value       = double-quoted JSON string / single-quoted string / bare word
//! patch-path  = attrPath [ "[" filter "]" [ "." subAttr ] ]
//! ```
//!
//! Recursion happens only at `(`, `not` and `[`, and each of those counts against
//! [`MAX_NESTING_DEPTH`] before recursing, so the stack depth is bounded whatever the input.
//! `and` and `or` chains are built in loops, never by recursion.

use crate::error::ParseError;
use crate::filter::{CompValue, CompareOp, Filter};
use crate::limits::{MAX_COMPARISONS, MAX_INPUT_BYTES, MAX_NESTING_DEPTH};
use crate::literal::{classify_bare_word, read_quoted_string};
use crate::path::{
    check_attr_name, is_attr_path_byte, split_attr_path_text, AttrPath, NameRole, PatchPath,
};
use crate::scanner::{is_name_byte, is_whitespace, quote_for_message, Scanner};

/// The operator list quoted in error messages, so people see every option in one place.
const OPERATOR_LIST: &str = "eq, ne, co, sw, ew, gt, ge, lt, le, pr";

/// What a filter operand may start with, for error messages.
const EXPECTED_FILTER_OPERAND: &str = "an attribute path, '(' or 'not'";

/// What an attribute path or PATCH path must start with, for error messages.
const EXPECTED_NAME: &str = "an attribute name";

/// Where in the input the parser is, which changes what some characters mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// Outside any brackets: paths are absolute and `]` is an ordinary character of a bare value.
    TopLevel,
    /// Between the brackets of `attr[...]`: paths are relative to `attr`, `]` ends a bare value,
    /// and another `[` is an error because value paths do not nest.
    InsideValueFilter,
}

/// What follows an attribute path in a comparison: `pr`, or an operator that takes a value.
enum ParsedOperator {
    Present,
    Compare(CompareOp),
}

/// One parse of one input. It is consumed by the `parse_complete_*` method that drives it.
pub(crate) struct Parser<'input> {
    scanner: Scanner<'input>,
    /// How many `(`, `not` and `[` enclose the cursor right now.
    nesting_depth: usize,
    /// How many `pr` and comparison nodes have been built so far.
    comparison_count: usize,
}

impl<'input> Parser<'input> {
    /// Starts a parse, refusing input over [`MAX_INPUT_BYTES`] before looking at any of it.
    pub(crate) fn new(input: &'input str) -> Result<Self, ParseError> {
        if input.len() > MAX_INPUT_BYTES {
            return Err(ParseError::new(
                MAX_INPUT_BYTES,
                format!(
                    "input exceeds the limit of {MAX_INPUT_BYTES} bytes at position \
                     {MAX_INPUT_BYTES} (it is {} bytes long)",
                    input.len()
                ),
            ));
        }
        Ok(Self {
            scanner: Scanner::new(input),
            nesting_depth: 0,
            comparison_count: 0,
        })
    }

    /// Parses the whole input as a filter.
    pub(crate) fn parse_complete_filter(mut self) -> Result<Filter, ParseError> {
        self.scanner.skip_whitespace();
        if self.scanner.at_end() {
            let position = self.scanner.position();
            return Err(ParseError::new(
                position,
                format!(
                    "empty filter at position {position}: expected an attribute path, '(' or \
                     'not'"
                ),
            ));
        }
        let filter = self.parse_or_chain(Context::TopLevel)?;
        self.scanner.skip_whitespace();
        if self.scanner.at_end() {
            return Ok(filter);
        }
        let position = self.scanner.position();
        if self.scanner.peek_byte() == Some(b')') {
            return Err(ParseError::new(
                position,
                format!(
                    "unbalanced parenthesis at position {position}: this ')' has no matching '('"
                ),
            ));
        }
        Err(self.trailing_input_error("expected 'and', 'or' or the end of the filter"))
    }

    /// Parses the whole input as an attribute path with nothing around it.
    pub(crate) fn parse_complete_attr_path(mut self) -> Result<AttrPath, ParseError> {
        if self.scanner.at_end() {
            return Err(ParseError::new(
                0,
                "empty attribute path at position 0: expected an attribute name".to_owned(),
            ));
        }
        let path = self.read_attr_path(EXPECTED_NAME)?;
        if !self.scanner.at_end() {
            return Err(self.trailing_input_error("expected the end of the attribute path"));
        }
        Ok(path)
    }

    /// Parses the whole input as a PATCH path.
    pub(crate) fn parse_complete_patch_path(mut self) -> Result<PatchPath, ParseError> {
        if self.scanner.at_end() {
            return Err(ParseError::new(
                0,
                "empty PATCH path at position 0: expected an attribute name".to_owned(),
            ));
        }
        let attr = self.read_attr_path(EXPECTED_NAME)?;
        let mut value_filter = None;
        let mut sub_attr = None;
        if self.scanner.peek_byte() == Some(b'[') {
            self.refuse_filter_after_sub_attribute(&attr)?;
            value_filter = Some(self.parse_bracketed_value_filter()?);
            if self.scanner.peek_byte() == Some(b'.') {
                self.scanner.advance_ascii();
                let sub_start = self.scanner.position();
                let name = self
                    .scanner
                    .take_while(|byte| is_name_byte(byte) || byte == b'$');
                check_attr_name(name, sub_start, NameRole::SubAttribute)?;
                sub_attr = Some(name.to_owned());
            }
        }
        if self.scanner.at_end() {
            return Ok(PatchPath {
                attr,
                value_filter,
                sub_attr,
            });
        }
        let position = self.scanner.position();
        if self.scanner.peek_byte().is_some_and(is_whitespace) {
            return Err(ParseError::new(
                position,
                format!(
                    "unexpected whitespace at position {position}: a PATCH path cannot contain \
                     spaces outside the brackets of a value filter"
                ),
            ));
        }
        Err(self.trailing_input_error("expected the end of the PATCH path"))
    }

    fn trailing_input_error(&self, expectation: &str) -> ParseError {
        let position = self.scanner.position();
        ParseError::new(
            position,
            format!(
                "trailing input {} at position {position}: {expectation}",
                self.scanner.describe_next()
            ),
        )
    }

    /// `and-expr *( "or" and-expr )`, folded to the left.
    fn parse_or_chain(&mut self, context: Context) -> Result<Filter, ParseError> {
        let mut combined = self.parse_and_chain(context)?;
        loop {
            let before_keyword = self.scanner.position();
            self.scanner.skip_whitespace();
            if !self.scanner.eat_keyword("or") {
                self.scanner.rewind_to(before_keyword);
                return Ok(combined);
            }
            let right = self.parse_and_chain(context)?;
            combined = Filter::or(combined, right);
        }
    }

    /// `unary *( "and" unary )`, folded to the left.
    fn parse_and_chain(&mut self, context: Context) -> Result<Filter, ParseError> {
        let mut combined = self.parse_unary(context)?;
        loop {
            let before_keyword = self.scanner.position();
            self.scanner.skip_whitespace();
            if !self.scanner.eat_keyword("and") {
                self.scanner.rewind_to(before_keyword);
                return Ok(combined);
            }
            let right = self.parse_unary(context)?;
            combined = Filter::and(combined, right);
        }
    }

    /// `"not" "(" filter ")" / "(" filter ")" / attr-expr`.
    ///
    /// `not` is only the operator when a `(` follows it; otherwise the word is read as an
    /// attribute path, so that attributes named `not` (or `not.x`) stay expressible. The error
    /// for `not title pr` still says that a `(` was expected (see `operator_missing_error`).
    fn parse_unary(&mut self, context: Context) -> Result<Filter, ParseError> {
        self.scanner.skip_whitespace();
        let not_start = self.scanner.position();
        if self.scanner.eat_keyword("not") {
            self.scanner.skip_whitespace();
            if self.scanner.peek_byte() == Some(b'(') {
                self.enter_nesting(not_start)?;
                let inner = self.parse_parenthesised(context)?;
                self.leave_nesting();
                return Ok(Filter::negate(inner));
            }
            self.scanner.rewind_to(not_start);
        }
        if self.scanner.peek_byte() == Some(b'(') {
            return self.parse_parenthesised(context);
        }
        self.parse_attribute_expression(context)
    }

    /// `"(" filter ")"`, with the cursor on the `(`.
    fn parse_parenthesised(&mut self, context: Context) -> Result<Filter, ParseError> {
        let open_position = self.scanner.position();
        self.enter_nesting(open_position)?;
        self.scanner.advance_ascii();
        let inner = self.parse_or_chain(context)?;
        self.scanner.skip_whitespace();
        match self.scanner.peek_byte() {
            Some(b')') => self.scanner.advance_ascii(),
            None => {
                return Err(ParseError::new(
                    open_position,
                    format!(
                        "unbalanced parenthesis at position {open_position}: this '(' is never \
                         closed"
                    ),
                ))
            }
            Some(_) => {
                let position = self.scanner.position();
                return Err(ParseError::new(
                    position,
                    format!(
                        "expected 'and', 'or' or ')' at position {position}, found {} (closing \
                         the '(' at position {open_position})",
                        self.scanner.describe_next()
                    ),
                ));
            }
        }
        self.leave_nesting();
        Ok(inner)
    }

    /// `attrPath "pr" / attrPath compareOp value / attrPath "[" filter "]"`.
    fn parse_attribute_expression(&mut self, context: Context) -> Result<Filter, ParseError> {
        let path_start = self.scanner.position();
        let path = self.read_attr_path(EXPECTED_FILTER_OPERAND)?;

        if self.scanner.peek_byte() == Some(b'[') {
            return self.parse_value_path(path, context);
        }
        if context == Context::InsideValueFilter {
            refuse_absolute_path_inside_value_filter(&path, path_start)?;
        }

        self.parse_operator_and_value(path, path_start, context)
    }

    /// The operator and value after an attribute path: `pr`, or a comparison operator and its
    /// value.
    fn parse_operator_and_value(
        &mut self,
        path: AttrPath,
        path_start: usize,
        context: Context,
    ) -> Result<Filter, ParseError> {
        let whitespace_length = self.scanner.skip_whitespace();
        let operator_start = self.scanner.position();
        let operator_word = self.scanner.take_while(is_name_byte);
        let operator = if whitespace_length == 0 {
            // Without whitespace the operator would have been read as part of the name, so
            // whatever follows the path here is not an operator.
            None
        } else if operator_word.eq_ignore_ascii_case("pr") {
            Some(ParsedOperator::Present)
        } else {
            CompareOp::from_keyword(operator_word).map(ParsedOperator::Compare)
        };
        let Some(operator) = operator else {
            self.scanner.rewind_to(operator_start);
            return Err(self.operator_missing_error(&path));
        };

        let filter = match operator {
            ParsedOperator::Present => Filter::Present(path),
            ParsedOperator::Compare(compare_operator) => {
                let value = self.parse_comparison_value(context, compare_operator)?;
                Filter::Compare(path, compare_operator, value)
            }
        };
        self.count_comparison(path_start)?;
        Ok(filter)
    }

    /// The error for an attribute path not followed by an operator, with the cursor where the
    /// operator should be. A bare `not` here almost certainly meant the logical operator.
    fn operator_missing_error(&self, path: &AttrPath) -> ParseError {
        let position = self.scanner.position();
        let found = self.scanner.describe_next();
        let looks_like_logical_not =
            path.urn.is_none() && path.sub_attr.is_none() && path.name.eq_ignore_ascii_case("not");
        let message = if looks_like_logical_not {
            format!("expected '(' after 'not' at position {position}, found {found}: write not (filter)")
        } else {
            format!(
                "expected a comparison operator ({OPERATOR_LIST}) after {} at position \
                 {position}, found {found}",
                quote_for_message(&path.to_string())
            )
        };
        ParseError::new(position, message)
    }

    /// `attr[filter]` inside a filter, with the cursor on the `[`.
    fn parse_value_path(&mut self, path: AttrPath, context: Context) -> Result<Filter, ParseError> {
        let open_position = self.scanner.position();
        if context == Context::InsideValueFilter {
            return Err(ParseError::new(
                open_position,
                format!(
                    "unexpected '[' at position {open_position}: value paths cannot be nested \
                     inside another value filter"
                ),
            ));
        }
        self.refuse_filter_after_sub_attribute(&path)?;
        let inner = self.parse_bracketed_value_filter()?;
        if self.scanner.peek_byte() == Some(b'.') {
            // `emails[type eq "work"].value eq "x"` is not RFC 7644 filter syntax, but it is how
            // Entra ID queries a work email used as matching attribute. It means the same as
            // `emails[type eq "work" and value eq "x"]`, which is what it becomes.
            let dot_position = self.scanner.position();
            self.scanner.advance_ascii();
            let sub_start = self.scanner.position();
            let sub_name = self.scanner.take_while(is_name_byte).to_string();
            if sub_name.is_empty() {
                return Err(ParseError::new(
                    sub_start,
                    format!("expected a sub-attribute name after '.' at position {dot_position}"),
                ));
            }
            let condition = self.parse_operator_and_value(
                AttrPath::simple(&sub_name),
                sub_start,
                Context::InsideValueFilter,
            )?;
            return Ok(Filter::ValuePath(
                path,
                Box::new(Filter::and(inner, condition)),
            ));
        }
        Ok(Filter::ValuePath(path, Box::new(inner)))
    }

    fn refuse_filter_after_sub_attribute(&self, path: &AttrPath) -> Result<(), ParseError> {
        if path.sub_attr.is_none() {
            return Ok(());
        }
        let position = self.scanner.position();
        Err(ParseError::new(
            position,
            format!(
                "unexpected '[' at position {position}: a value filter must follow the \
                 multi-valued attribute itself, not the sub-attribute {}",
                quote_for_message(&path.to_string())
            ),
        ))
    }

    /// `"[" filter "]"`, with the cursor on the `[`; leaves the cursor after the `]`.
    fn parse_bracketed_value_filter(&mut self) -> Result<Filter, ParseError> {
        let open_position = self.scanner.position();
        self.enter_nesting(open_position)?;
        self.scanner.advance_ascii();
        self.scanner.skip_whitespace();
        match self.scanner.peek_byte() {
            None => return Err(unclosed_bracket(open_position)),
            Some(b']') => {
                let position = self.scanner.position();
                return Err(ParseError::new(
                    position,
                    format!(
                        "empty value filter at position {position}: expected a filter between \
                         '[' and ']'"
                    ),
                ));
            }
            Some(_) => {}
        }
        let inner = self.parse_or_chain(Context::InsideValueFilter)?;
        self.scanner.skip_whitespace();
        match self.scanner.peek_byte() {
            Some(b']') => self.scanner.advance_ascii(),
            None => return Err(unclosed_bracket(open_position)),
            Some(_) => {
                let position = self.scanner.position();
                return Err(ParseError::new(
                    position,
                    format!(
                        "expected 'and', 'or' or ']' at position {position}, found {} (closing \
                         the '[' at position {open_position})",
                        self.scanner.describe_next()
                    ),
                ));
            }
        }
        self.leave_nesting();
        Ok(inner)
    }

    /// The value after a comparison operator.
    fn parse_comparison_value(
        &mut self,
        context: Context,
        operator: CompareOp,
    ) -> Result<CompValue, ParseError> {
        self.scanner.skip_whitespace();
        let value_start = self.scanner.position();
        let ends_bare_value = |byte: u8| {
            is_whitespace(byte)
                || byte == b')'
                || (byte == b']' && context == Context::InsideValueFilter)
        };
        match self.scanner.peek_byte() {
            Some(quote @ (b'"' | b'\'')) => {
                read_quoted_string(&mut self.scanner, char::from(quote)).map(CompValue::String)
            }
            None => Err(self.missing_value_error(operator)),
            Some(byte) if ends_bare_value(byte) => Err(self.missing_value_error(operator)),
            Some(_) => {
                let word = self.scanner.take_while(|byte| !ends_bare_value(byte));
                classify_bare_word(word, value_start)
            }
        }
    }

    fn missing_value_error(&self, operator: CompareOp) -> ParseError {
        let position = self.scanner.position();
        let found = self.scanner.describe_next();
        ParseError::new(
            position,
            format!(
                "unexpected {found} at position {position}: expected a value after '{operator}'"
            ),
        )
    }

    /// Reads an attribute path at the cursor, such as `name.givenName` or
    /// `urn:ietf:params:scim:schemas:core:2.0:User:userName`.
    /// `expectation` says what the caller would also have accepted here, for the error message.
    fn read_attr_path(&mut self, expectation: &str) -> Result<AttrPath, ParseError> {
        let path_start = self.scanner.position();
        let text = self.scanner.take_while(is_attr_path_byte);
        if text.is_empty() {
            return Err(ParseError::new(
                path_start,
                format!(
                    "expected {expectation} at position {path_start}, found {}",
                    self.scanner.describe_next()
                ),
            ));
        }
        split_attr_path_text(text, path_start)
    }

    fn enter_nesting(&mut self, position: usize) -> Result<(), ParseError> {
        self.nesting_depth += 1;
        if self.nesting_depth > MAX_NESTING_DEPTH {
            return Err(ParseError::new(
                position,
                format!(
                    "nesting too deep at position {position}: parentheses, 'not' and value \
                     filters may nest at most {MAX_NESTING_DEPTH} levels"
                ),
            ));
        }
        Ok(())
    }

    fn leave_nesting(&mut self) {
        self.nesting_depth = self.nesting_depth.saturating_sub(1);
    }

    fn count_comparison(&mut self, position: usize) -> Result<(), ParseError> {
        self.comparison_count += 1;
        if self.comparison_count > MAX_COMPARISONS {
            return Err(ParseError::new(
                position,
                format!(
                    "too many comparisons at position {position}: a filter may contain at most \
                     {MAX_COMPARISONS}"
                ),
            ));
        }
        Ok(())
    }
}

fn unclosed_bracket(open_position: usize) -> ParseError {
    ParseError::new(
        open_position,
        format!("unterminated value filter: the '[' at position {open_position} is never closed"),
    )
}

/// Inside `attr[...]` paths name sub-attributes of `attr`, so a schema URN or a further
/// sub-attribute cannot be meant and would leave the caller guessing.
fn refuse_absolute_path_inside_value_filter(
    path: &AttrPath,
    path_start: usize,
) -> Result<(), ParseError> {
    let problem = if path.urn.is_some() {
        "cannot carry a schema URN"
    } else if path.sub_attr.is_some() {
        "cannot have a sub-attribute"
    } else {
        return Ok(());
    };
    Err(ParseError::new(
        path_start,
        format!(
            "invalid path {} at position {path_start}: inside a value filter, paths name \
             sub-attributes of the multi-valued attribute and {problem}",
            quote_for_message(&path.to_string())
        ),
    ))
}
