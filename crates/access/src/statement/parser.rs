//! A recursive-descent parser over the token list. It never recurses on input: clauses that are
//! read past (column lists, options, query bodies) are skipped with a counter of open
//! parentheses, so no input can exhaust the stack.

use super::lexer::{tokenize, Token, TokenKind};
use super::{
    quote_source, sql_keyword, CreateObject, DropObject, PrincipalName, PrivilegeChange,
    SecurableName, SetOwner, ShowGrants, Statement, StatementError, MAX_NAME_PART_CHARS,
    MAX_PRINCIPAL_BYTES, MAX_STATEMENT_BYTES,
};
use crate::error::AccessError;
use crate::privilege::{Privilege, PrivilegeSet};
use crate::securable::SecurableType;

/// How a securable type is written after `ON`, `DROP`, `ALTER` and `CREATE`. Two-word
/// spellings come first so that the longest one wins. `None` marks Databricks securables
/// the engine does not model; naming them gets a clear refusal rather than "expected a name".
const TYPE_KEYWORDS: &[(&[&str], Option<SecurableType>)] = &[
    (
        &["REGISTERED", "MODEL"],
        Some(SecurableType::RegisteredModel),
    ),
    (
        &["EXTERNAL", "LOCATION"],
        Some(SecurableType::ExternalLocation),
    ),
    (
        &["STORAGE", "CREDENTIAL"],
        Some(SecurableType::StorageCredential),
    ),
    (&["MATERIALIZED", "VIEW"], None),
    (&["STREAMING", "TABLE"], None),
    (&["SERVICE", "CREDENTIAL"], None),
    (&["CLEAN", "ROOM"], None),
    (&["EXTERNAL", "METADATA"], None),
    (&["METASTORE"], Some(SecurableType::Metastore)),
    (&["CATALOG"], Some(SecurableType::Catalog)),
    (&["SCHEMA"], Some(SecurableType::Schema)),
    (&["DATABASE"], Some(SecurableType::Schema)),
    (&["TABLE"], Some(SecurableType::Table)),
    (&["VIEW"], Some(SecurableType::View)),
    (&["VOLUME"], Some(SecurableType::Volume)),
    (&["FUNCTION"], Some(SecurableType::Function)),
    (&["MODEL"], Some(SecurableType::RegisteredModel)),
    (&["CONNECTION"], Some(SecurableType::Connection)),
    (&["SERVER"], Some(SecurableType::Connection)),
    (&["CREDENTIAL"], None),
    (&["SHARE"], None),
    (&["RECIPIENT"], None),
    (&["PROVIDER"], None),
];

/// The longest privilege is four words (`EXECUTE CLEAN ROOM TASK`); looking one further is
/// enough to see that a run of words is not a privilege.
const LONGEST_PRIVILEGE_WORDS: usize = 5;

const TYPE_LIST: &str =
    "CATALOG, SCHEMA, TABLE, VIEW, VOLUME, FUNCTION, MODEL, EXTERNAL LOCATION, STORAGE CREDENTIAL, CONNECTION";

pub(crate) fn parse(text: &str) -> Result<Statement, StatementError> {
    if text.len() > MAX_STATEMENT_BYTES {
        return Err(StatementError {
            position: 0,
            found: quote_source(text),
            message: format!(
                "the statement is {} bytes long; at most {MAX_STATEMENT_BYTES} are accepted",
                text.len()
            ),
        });
    }
    let mut tokens = tokenize(text)?;
    if tokens.last().is_some_and(|token| token.is_symbol(';')) {
        tokens.pop();
    }
    let mut parser = Parser {
        text,
        tokens,
        next: 0,
    };
    let statement = parser.statement()?;
    if parser.peek().is_some() {
        return Err(parser.expected("the end of the statement"));
    }
    Ok(statement)
}

/// A securable type keyword found at the cursor, and how many words it took.
enum TypeKeyword {
    Supported(SecurableType, usize),
    Unsupported(usize),
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    next: usize,
}

impl Parser<'_> {
    // ----- cursor ----------------------------------------------------------------------------

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        self.peek().is_some_and(|token| token.is_keyword(keyword))
    }

    fn at_symbol(&self, symbol: char) -> bool {
        self.peek().is_some_and(|token| token.is_symbol(symbol))
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.at_keyword(keyword);
        if found {
            self.next += 1;
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str, expected: &str) -> Result<(), StatementError> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(self.expected(expected))
        }
    }

    // ----- errors ----------------------------------------------------------------------------

    /// The token at `index` as written, quoted, or `end of input`, and where it is.
    fn describe(&self, index: usize) -> (String, usize) {
        match self.tokens.get(index) {
            Some(token) => (
                quote_source(&self.text[token.start..token.end]),
                token.start,
            ),
            None => ("end of input".to_string(), self.text.len()),
        }
    }

    /// "expected X, found 'Y' at offset N", about the token at the cursor.
    fn expected(&self, what: &str) -> StatementError {
        let (found, position) = self.describe(self.next);
        StatementError {
            message: format!("expected {what}, found {found} at offset {position}"),
            position,
            found,
        }
    }

    /// "REASON: 'Y' at offset N", about the tokens from `first` to `last`.
    fn refuse(&self, first: usize, last: usize, reason: &str) -> StatementError {
        let (found, position) = match (self.tokens.get(first), self.tokens.get(last)) {
            (Some(start), Some(end)) if start.start <= end.end => {
                (quote_source(&self.text[start.start..end.end]), start.start)
            }
            _ => self.describe(first),
        };
        StatementError {
            message: format!("{reason}: {found} at offset {position}"),
            position,
            found,
        }
    }

    // ----- statements ------------------------------------------------------------------------

    fn statement(&mut self) -> Result<Statement, StatementError> {
        if self.eat_keyword("CREATE") {
            self.create().map(Statement::Create)
        } else if self.eat_keyword("DROP") {
            self.drop().map(Statement::Drop)
        } else if self.eat_keyword("ALTER") {
            self.alter().map(Statement::SetOwner)
        } else if self.eat_keyword("GRANT") {
            self.privilege_change("GRANT", "TO").map(Statement::Grant)
        } else if self.eat_keyword("REVOKE") {
            self.privilege_change("REVOKE", "FROM")
                .map(Statement::Revoke)
        } else if self.eat_keyword("SHOW") {
            self.show_grants().map(Statement::ShowGrants)
        } else {
            Err(self.expected("a statement (CREATE, DROP, ALTER, GRANT, REVOKE or SHOW GRANTS)"))
        }
    }

    fn create(&mut self) -> Result<CreateObject, StatementError> {
        let or_token = self.next;
        let or_replace = self.eat_keyword("OR");
        if or_replace {
            self.expect_keyword("REPLACE", "REPLACE after CREATE OR")?;
        }
        if self.at_keyword("TEMPORARY") || self.at_keyword("TEMP") {
            return Err(self.refuse(
                self.next,
                self.next,
                "temporary objects live in a session, not in Unity Catalog, so they cannot be registered",
            ));
        }
        // `CREATE EXTERNAL TABLE` (Hive syntax) and `CREATE EXTERNAL VOLUME` register the same
        // kinds of object as their managed forms; only the data's location differs.
        let securable_type = if self.at_keyword("EXTERNAL")
            && self
                .tokens
                .get(self.next + 1)
                .is_some_and(|token| token.is_keyword("TABLE") || token.is_keyword("VOLUME"))
        {
            self.next += 1;
            if self.eat_keyword("TABLE") {
                SecurableType::Table
            } else {
                self.next += 1;
                SecurableType::Volume
            }
        } else {
            let start = self.next;
            match self.type_keyword() {
                Some(TypeKeyword::Supported(kind, words)) => {
                    if matches!(
                        kind,
                        SecurableType::Metastore
                            | SecurableType::StorageCredential
                            | SecurableType::RegisteredModel
                    ) {
                        return Err(self.refuse(
                            start,
                            start + words - 1,
                            "this object is not created with SQL in Databricks (the account \
                             console, the API or MLflow creates it)",
                        ));
                    }
                    self.next += words;
                    kind
                }
                Some(TypeKeyword::Unsupported(words)) => {
                    return Err(self.refuse(
                        start,
                        start + words - 1,
                        "Scimitar does not model this kind of securable",
                    ));
                }
                None => {
                    return Err(self.expected(
                        "an object type after CREATE (CATALOG, SCHEMA, TABLE, VIEW, VOLUME, \
                         FUNCTION, EXTERNAL LOCATION or CONNECTION)",
                    ));
                }
            }
        };
        if or_replace
            && !matches!(
                securable_type,
                SecurableType::Table | SecurableType::View | SecurableType::Function
            )
        {
            return Err(self.refuse(
                or_token,
                or_token + 1,
                "OR REPLACE applies only to tables, views and functions",
            ));
        }
        let if_token = self.next;
        let if_not_exists = self.eat_keyword("IF");
        if if_not_exists {
            self.expect_keyword("NOT", "NOT after IF")?;
            self.expect_keyword("EXISTS", "EXISTS after IF NOT")?;
            if or_replace {
                return Err(self.refuse(
                    if_token,
                    if_token + 2,
                    "OR REPLACE and IF NOT EXISTS cannot be used together",
                ));
            }
        }
        let name = self.name(securable_type)?;
        let comment = self.create_clauses(securable_type)?;
        Ok(CreateObject {
            securable: name,
            if_not_exists,
            or_replace,
            comment,
        })
    }

    /// Reads past what follows the name of a created object and returns its `COMMENT`.
    ///
    /// Each clause must start with a keyword that can start a clause of that statement, so a
    /// typo is still an error; the clause's own content is skipped, parentheses balanced,
    /// up to the next such keyword. A query or function body (`AS ...`, `RETURN ...`) runs to
    /// the end of the statement.
    fn create_clauses(
        &mut self,
        securable_type: SecurableType,
    ) -> Result<Option<String>, StatementError> {
        let (clauses, bodies): (&[&str], &[&str]) = match securable_type {
            SecurableType::Catalog => (&["COMMENT", "MANAGED", "USING", "DEFAULT", "OPTIONS"], &[]),
            SecurableType::Schema => (&["COMMENT", "MANAGED", "LOCATION", "WITH", "DEFAULT"], &[]),
            SecurableType::Table => (
                &[
                    "COMMENT",
                    "USING",
                    "PARTITIONED",
                    "CLUSTER",
                    "LOCATION",
                    "TBLPROPERTIES",
                    "OPTIONS",
                    "WITH",
                    "DEFAULT",
                    "ROW",
                    "STORED",
                ],
                &["AS"],
            ),
            SecurableType::View => (&["COMMENT", "TBLPROPERTIES", "WITH", "DEFAULT"], &["AS"]),
            SecurableType::Volume => (&["COMMENT", "LOCATION"], &[]),
            SecurableType::Function => (
                &[
                    "RETURNS",
                    "LANGUAGE",
                    "DETERMINISTIC",
                    "NOT",
                    "COMMENT",
                    "CONTAINS",
                    "READS",
                    "MODIFIES",
                    "SQL",
                    "DEFAULT",
                    "ENVIRONMENT",
                    "HANDLER",
                ],
                &["RETURN", "AS"],
            ),
            SecurableType::ExternalLocation => (&["URL", "WITH", "COMMENT"], &[]),
            SecurableType::Connection => (&["TYPE", "OPTIONS", "COMMENT"], &[]),
            _ => (&["COMMENT"], &[]),
        };
        let what = format!("CREATE {}", sql_keyword(securable_type));
        match securable_type {
            SecurableType::Function => {
                if !self.at_symbol('(') {
                    return Err(self.expected("'(' and the parameter list after the function name"));
                }
                self.skip_group()?;
            }
            // A column list, read past: the registry keeps no columns.
            SecurableType::Table | SecurableType::View if self.at_symbol('(') => {
                self.skip_group()?;
            }
            _ => {}
        }
        let mut comment = None;
        while self.peek().is_some() {
            let clause = self.next;
            if bodies.iter().any(|keyword| self.at_keyword(keyword)) {
                self.next = self.tokens.len();
                break;
            }
            if !clauses.iter().any(|keyword| self.at_keyword(keyword)) {
                let mut expected = format!("a {what} clause (");
                expected.push_str(&clauses.join(", "));
                for body in bodies {
                    expected.push_str(", ");
                    expected.push_str(body);
                }
                expected.push_str(") or the end of the statement");
                return Err(self.expected(&expected));
            }
            self.next += 1;
            if self
                .tokens
                .get(clause)
                .is_some_and(|token| token.is_keyword("COMMENT"))
            {
                let Some(TokenKind::Text(text)) = self.peek().map(|token| token.kind.clone())
                else {
                    return Err(self.expected("a quoted string after COMMENT"));
                };
                if comment.is_some() {
                    return Err(self.refuse(clause, clause, "COMMENT is given twice"));
                }
                comment = Some(text);
                self.next += 1;
                continue;
            }
            // Skip the clause's content up to the next clause keyword outside parentheses.
            while let Some(token) = self.peek() {
                if token.is_symbol('(') {
                    self.skip_group()?;
                    continue;
                }
                if token.is_symbol(')') {
                    return Err(self.refuse(self.next, self.next, "this ')' closes nothing"));
                }
                if clauses
                    .iter()
                    .chain(bodies.iter())
                    .any(|keyword| token.is_keyword(keyword))
                {
                    break;
                }
                self.next += 1;
            }
        }
        Ok(comment)
    }

    fn drop(&mut self) -> Result<DropObject, StatementError> {
        if self.at_keyword("TEMPORARY") || self.at_keyword("TEMP") {
            return Err(self.refuse(
                self.next,
                self.next,
                "temporary objects live in a session, not in Unity Catalog",
            ));
        }
        let securable_type = self.named_type("DROP")?;
        let if_exists = self.eat_keyword("IF");
        if if_exists {
            self.expect_keyword("EXISTS", "EXISTS after IF")?;
        }
        let name = self.name(securable_type)?;
        let option = self.next;
        let cascade = self.eat_keyword("CASCADE");
        let restrict = !cascade && self.eat_keyword("RESTRICT");
        if (cascade || restrict)
            && !matches!(
                securable_type,
                SecurableType::Catalog | SecurableType::Schema
            )
        {
            return Err(self.refuse(
                option,
                option,
                "CASCADE and RESTRICT apply only to catalogs and schemas",
            ));
        }
        Ok(DropObject {
            securable: name,
            if_exists,
            cascade,
        })
    }

    fn alter(&mut self) -> Result<SetOwner, StatementError> {
        let securable_type = self.named_type("ALTER")?;
        let name = self.name(securable_type)?;
        self.eat_keyword("SET");
        self.expect_keyword(
            "OWNER",
            &format!(
                "OWNER TO after the {} name (Scimitar runs only ALTER ... OWNER TO)",
                sql_keyword(securable_type)
            ),
        )?;
        self.expect_keyword("TO", "TO after OWNER")?;
        let owner = self.principal("a principal after OWNER TO")?;
        Ok(SetOwner {
            securable: name,
            owner,
        })
    }

    fn privilege_change(
        &mut self,
        verb: &str,
        preposition: &str,
    ) -> Result<PrivilegeChange, StatementError> {
        // Each privilege with the indices of its first and last token, to point at it if it
        // turns out not to apply to the securable named after ON.
        let mut listed: Vec<(Privilege, usize, usize)> = Vec::new();
        loop {
            let first = self.next;
            let mut words = Vec::new();
            while let Some(TokenKind::Word(word)) = self
                .tokens
                .get(first + words.len())
                .map(|token| &token.kind)
            {
                if word.eq_ignore_ascii_case("ON") || words.len() == LONGEST_PRIVILEGE_WORDS {
                    break;
                }
                words.push(word.to_ascii_uppercase());
            }
            // The longest run of words that names a privilege wins, so `CREATE TABLE` is one
            // privilege and never `CREATE` followed by junk. Privilege names never contain ON,
            // so the run cannot swallow the keyword that ends the list.
            let found = (1..=words.len()).rev().find_map(|count| {
                let joined = words[..count].join("_");
                Privilege::ALL
                    .iter()
                    .find(|privilege| privilege.as_str() == joined)
                    .map(|privilege| (*privilege, count))
            });
            let Some((privilege, count)) = found else {
                let after = if listed.is_empty() {
                    verb.to_string()
                } else {
                    "','".to_string()
                };
                return Err(self.expected(&format!("a privilege after {after}")));
            };
            self.next = first + count;
            listed.push((privilege, first, first + count - 1));
            if self.at_symbol(',') {
                self.next += 1;
                continue;
            }
            self.expect_keyword("ON", &format!("',' or ON after {}", privilege.as_sql()))?;
            break;
        }
        if listed.len() > 1 {
            if let Some((_, first, last)) = listed
                .iter()
                .find(|(privilege, _, _)| *privilege == Privilege::AllPrivileges)
            {
                return Err(self.refuse(
                    *first,
                    *last,
                    "ALL PRIVILEGES cannot be listed with other privileges",
                ));
            }
        }
        let securable = self.securable()?;
        let applicable = securable.securable_type.applicable();
        for (privilege, first, last) in &listed {
            if !applicable.contains(*privilege) {
                let reason = AccessError::PrivilegeNotApplicable {
                    privilege: *privilege,
                    securable_type: securable.securable_type,
                };
                return Err(self.refuse(*first, *last, &reason.to_string()));
            }
        }
        self.expect_keyword(preposition, &format!("{preposition} after the securable"))?;
        let principal = self.principal(&format!("a principal after {preposition}"))?;
        Ok(PrivilegeChange {
            privileges: listed
                .iter()
                .map(|(privilege, _, _)| *privilege)
                .collect::<PrivilegeSet>(),
            securable,
            principal,
        })
    }

    fn show_grants(&mut self) -> Result<ShowGrants, StatementError> {
        if !self.eat_keyword("GRANTS") && !self.eat_keyword("GRANT") {
            return Err(self.expected("GRANTS after SHOW (Scimitar runs only SHOW GRANTS)"));
        }
        if self.at_keyword("TO") {
            return Err(self.refuse(
                self.next,
                self.next,
                "SHOW GRANTS TO RECIPIENT lists Delta Sharing shares, which Scimitar does not model",
            ));
        }
        let principal = if self.at_keyword("ON") {
            None
        } else {
            Some(self.principal("a principal or ON after SHOW GRANTS")?)
        };
        self.expect_keyword("ON", "ON after the principal")?;
        let securable = self.securable()?;
        Ok(ShowGrants {
            principal,
            securable,
        })
    }

    // ----- pieces ----------------------------------------------------------------------------

    fn type_keyword(&self) -> Option<TypeKeyword> {
        TYPE_KEYWORDS.iter().find_map(|(words, kind)| {
            let matches = words.iter().enumerate().all(|(offset, word)| {
                self.tokens
                    .get(self.next + offset)
                    .is_some_and(|token| token.is_keyword(word))
            });
            matches.then_some(match kind {
                Some(kind) => TypeKeyword::Supported(*kind, words.len()),
                None => TypeKeyword::Unsupported(words.len()),
            })
        })
    }

    /// The type after `DROP` or `ALTER`: any type with a name.
    fn named_type(&mut self, verb: &str) -> Result<SecurableType, StatementError> {
        let start = self.next;
        match self.type_keyword() {
            Some(TypeKeyword::Supported(SecurableType::Metastore, _)) => Err(self.refuse(
                start,
                start,
                &format!("the metastore cannot be changed with {verb}"),
            )),
            Some(TypeKeyword::Supported(kind, words)) => {
                self.next += words;
                Ok(kind)
            }
            Some(TypeKeyword::Unsupported(words)) => Err(self.refuse(
                start,
                start + words - 1,
                "Scimitar does not model this kind of securable",
            )),
            None => Err(self.expected(&format!("an object type after {verb} ({TYPE_LIST})"))),
        }
    }

    /// The securable after `ON`: `METASTORE`, a type and a name, or a bare name, which
    /// Databricks reads as a table (`[TABLE] name` in its grammar).
    fn securable(&mut self) -> Result<SecurableName, StatementError> {
        let start = self.next;
        match self.type_keyword() {
            Some(TypeKeyword::Supported(SecurableType::Metastore, words)) => {
                self.next += words;
                Ok(SecurableName::new(SecurableType::Metastore, Vec::new()))
            }
            Some(TypeKeyword::Supported(kind, words)) => {
                self.next += words;
                self.name(kind)
            }
            Some(TypeKeyword::Unsupported(words)) => Err(self.refuse(
                start,
                start + words - 1,
                "Scimitar does not model this kind of securable",
            )),
            None => {
                let is_name = self.peek().is_some_and(|token| match &token.kind {
                    TokenKind::Quoted(_) => true,
                    TokenKind::Word(_) => !["TO", "FROM", "ON"]
                        .iter()
                        .any(|keyword| token.is_keyword(keyword)),
                    _ => false,
                });
                if is_name {
                    self.name(SecurableType::Table)
                } else {
                    Err(self.expected(&format!(
                        "a securable after ON (METASTORE, {TYPE_LIST}, or a table name)"
                    )))
                }
            }
        }
    }

    /// A dotted name with at most as many parts as the type's full name has.
    fn name(&mut self, securable_type: SecurableType) -> Result<SecurableName, StatementError> {
        let keyword = sql_keyword(securable_type);
        let most = securable_type.name_parts();
        let mut parts = Vec::new();
        loop {
            let index = self.next;
            let part = match self.peek().map(|token| &token.kind) {
                Some(TokenKind::Word(word)) => word.clone(),
                Some(TokenKind::Quoted(name)) => name.clone(),
                _ if parts.is_empty() => {
                    return Err(self.expected(&format!("a {keyword} name")));
                }
                _ => return Err(self.expected("a name part after '.'")),
            };
            if parts.len() == most {
                let plural = if most == 1 { "" } else { "s" };
                return Err(self.refuse(
                    index,
                    index,
                    &format!("a {keyword} name has at most {most} part{plural}"),
                ));
            }
            if let Some(why) = invalid_name_part(&part) {
                return Err(self.refuse(index, index, why));
            }
            parts.push(part);
            self.next += 1;
            if self.at_symbol('.') {
                self.next += 1;
            } else {
                break;
            }
        }
        Ok(SecurableName::new(securable_type, parts))
    }

    fn principal(&mut self, expected: &str) -> Result<PrincipalName, StatementError> {
        let index = self.next;
        let name = match self.peek().map(|token| &token.kind) {
            Some(TokenKind::Word(word)) => word.clone(),
            Some(TokenKind::Quoted(name)) => name.clone(),
            _ => {
                return Err(self.expected(&format!(
                    "{expected} (a userName, group name or applicationId, in backticks if it \
                     has characters other than letters, digits and '_')"
                )));
            }
        };
        if name.trim().is_empty() {
            return Err(self.refuse(index, index, "a principal name cannot be empty"));
        }
        if name.len() > MAX_PRINCIPAL_BYTES {
            return Err(self.refuse(
                index,
                index,
                &format!("a principal name is at most {MAX_PRINCIPAL_BYTES} bytes"),
            ));
        }
        self.next += 1;
        Ok(PrincipalName::new(name))
    }

    /// Skips from a `(` at the cursor to just past its matching `)`.
    fn skip_group(&mut self) -> Result<(), StatementError> {
        let mut open = Vec::new();
        while let Some(token) = self.peek() {
            if token.is_symbol('(') {
                open.push(self.next);
            } else if token.is_symbol(')') {
                open.pop();
            }
            self.next += 1;
            if open.is_empty() {
                return Ok(());
            }
        }
        let unclosed = open.last().copied().unwrap_or(self.next);
        let (opening, at) = self.describe(unclosed);
        let mut error = self.expected(&format!("')' to close the {opening} at offset {at}"));
        // Point at the parenthesis left open: that is where the fix goes.
        error.position = at;
        Err(error)
    }
}

/// Why a name part is not a Unity Catalog name, if it is not one.
pub(crate) fn invalid_name_part(part: &str) -> Option<&'static str> {
    if part.is_empty() {
        Some("a name part cannot be empty")
    } else if part.chars().count() > MAX_NAME_PART_CHARS {
        Some("a Unity Catalog name part is at most 255 characters")
    } else if part.contains('.') {
        Some("a Unity Catalog name cannot contain '.', even in backticks")
    } else if part.contains(' ') {
        Some("a Unity Catalog name cannot contain a space, even in backticks")
    } else if part.contains('/') {
        Some("a Unity Catalog name cannot contain '/'")
    } else if part.chars().any(|c| c.is_ascii_control()) {
        Some("a Unity Catalog name cannot contain control characters")
    } else {
        None
    }
}
