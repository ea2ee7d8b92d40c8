//! What the SQL backends share. This file: translation of resolved SCIM filters and sort keys
//! into SQL over the `principals` table (aliased `p`). Below it:
//! - [`transaction`]: the session trait the shared SQL runs on, its parameters and rows, the
//!   backends' hooks (locks, the access log), and the constraint messages clients are given.
//! - [`write`]: what each [`crate::Change`] means, once for both backends.
//! - [`read`]: every read of [`crate::Store`], and the queries of an access snapshot.
//! - [`store`]: the one [`crate::Store`] implementation over a backend's sessions.
//!
//! A translation is either exact (the SQL selects precisely the matching rows, so counting and
//! paging happen in the database on indexes) or a superset (some part of the filter names an
//! attribute without a column; the SQL narrows the candidates and [`crate::listing`] evaluates
//! the filter on each). Negation is pushed down to the comparisons, so that every comparison
//! stays a plain indexable predicate and `NULL`s never leak through `NOT`.

use scimitar_domain::filter::ResolvedFilter;
use scimitar_domain::paths::{AttributeHome, ResolvedAttr};
use scimitar_domain::query::{ListQuery, SortOrder};
use scimitar_domain::resource::fold_case;
use scimitar_domain::PrincipalKind;
use scimitar_domain::Timestamp;
use scimitar_scim::{CompValue, CompareOp};

pub(crate) mod alerts;
pub(crate) mod audit;
pub(crate) mod federation;
pub(crate) mod list_anchors;
pub(crate) mod oauth;
pub(crate) mod read;
pub(crate) mod store;
pub(crate) mod sync_state;
pub(crate) mod transaction;
pub(crate) mod write;

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(String),
    Integer(i64),
}

/// The differences between SQL dialects that matter here.
pub trait Dialect {
    /// The placeholder for the `index`-th parameter (1-based).
    fn placeholder(&self, index: usize) -> String;
    /// `column` ends with the text bound at `placeholder`.
    fn ends_with(&self, column: &str, placeholder: &str) -> String;
    /// `column` contains the text bound at `placeholder`.
    fn contains(&self, column: &str, placeholder: &str) -> String;
    /// The join that keeps the order written. SQLite's planner may otherwise turn a walk over
    /// a few index entries into a scan of the account; PostgreSQL has no such join with `ON`
    /// and plans these joins well.
    fn ordered_join(&self) -> &'static str;
    /// Whether `LIMIT` and `OFFSET` are written into a statement's text instead of bound:
    /// see the top of `sqlite.rs` for why SQLite wants them there.
    fn limits_in_text(&self) -> bool;
    /// Appended to the read of a would-be member: PostgreSQL reads it `FOR KEY SHARE`, so a
    /// concurrent delete of the member waits for the adding transaction and its cascade then
    /// removes the new membership, rather than the insert failing on the foreign key. Empty
    /// where one writer runs every change alone.
    fn key_share(&self) -> &'static str;
    /// A query whose one boolean column says whether the `schema_migrations` table exists.
    fn migrations_table_exists(&self) -> &'static str;
}

pub struct SqliteDialect;

impl Dialect for SqliteDialect {
    fn placeholder(&self, index: usize) -> String {
        format!("?{index}")
    }
    fn ends_with(&self, column: &str, placeholder: &str) -> String {
        format!("substr({column}, -length({placeholder})) = {placeholder}")
    }
    fn contains(&self, column: &str, placeholder: &str) -> String {
        format!("instr({column}, {placeholder}) > 0")
    }
    fn ordered_join(&self) -> &'static str {
        "CROSS JOIN"
    }
    fn limits_in_text(&self) -> bool {
        true
    }
    fn key_share(&self) -> &'static str {
        ""
    }
    fn migrations_table_exists(&self) -> &'static str {
        "SELECT EXISTS (SELECT 1 FROM sqlite_master \
         WHERE type = 'table' AND name = 'schema_migrations')"
    }
}

/// PostgreSQL: numbered `$n` placeholders. The text functions take their operand cast to
/// `text`, because a bare parameter in a function call has no type PostgreSQL can infer.
pub struct PostgresDialect;

impl Dialect for PostgresDialect {
    fn placeholder(&self, index: usize) -> String {
        format!("${index}")
    }
    fn ends_with(&self, column: &str, placeholder: &str) -> String {
        format!("right({column}, char_length({placeholder}::text)) = {placeholder}::text")
    }
    fn contains(&self, column: &str, placeholder: &str) -> String {
        format!("strpos({column}, {placeholder}::text) > 0")
    }
    fn ordered_join(&self) -> &'static str {
        "JOIN"
    }
    fn limits_in_text(&self) -> bool {
        false
    }
    fn key_share(&self) -> &'static str {
        " FOR KEY SHARE"
    }
    fn migrations_table_exists(&self) -> &'static str {
        "SELECT to_regclass('schema_migrations') IS NOT NULL"
    }
}

/// A column and how its values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    /// Text compared exactly.
    ExactText,
    /// Text stored lower-cased; the operand is lower-cased too.
    FoldedText,
    /// Microseconds since the epoch; the operand is an RFC 3339 date-time.
    Timestamp,
    /// 0/1.
    Boolean,
}

/// The SQL being built: its parameters and the dialect.
pub struct SqlBuilder<'d> {
    dialect: &'d dyn Dialect,
    pub params: Vec<SqlValue>,
}

/// The result of translating a filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// A boolean SQL expression; `None` means no constraint could be expressed.
    pub condition: Option<String>,
    /// True when `condition` selects exactly the rows the filter matches.
    pub exact: bool,
}

impl<'d> SqlBuilder<'d> {
    pub fn new(dialect: &'d dyn Dialect) -> Self {
        SqlBuilder {
            dialect,
            params: Vec::new(),
        }
    }

    /// Binds a parameter and returns its placeholder.
    pub fn bind(&mut self, value: SqlValue) -> String {
        self.params.push(value);
        self.dialect.placeholder(self.params.len())
    }

    pub fn translate(&mut self, filter: &ResolvedFilter) -> Translation {
        let mut exact = true;
        let condition = self.node(filter, true, &mut exact);
        Translation { condition, exact }
    }

    fn node(
        &mut self,
        filter: &ResolvedFilter,
        positive: bool,
        exact: &mut bool,
    ) -> Option<String> {
        match filter {
            ResolvedFilter::And(..) | ResolvedFilter::Or(..) => {
                let is_and = matches!(filter, ResolvedFilter::And(..));
                // Under negation AND becomes OR and vice versa (De Morgan).
                let conjunction = is_and == positive;
                let mut parts = Vec::new();
                let mut unknown = false;
                for operand in chain_operands(filter) {
                    match self.node(operand, positive, exact) {
                        Some(part) => parts.push(part),
                        None => unknown = true,
                    }
                }
                // A missing operand of a conjunction is "true": the others still narrow. A
                // missing operand of a disjunction makes the whole disjunction unknown.
                if unknown && !conjunction {
                    return None;
                }
                balanced(&parts, if conjunction { "AND" } else { "OR" })
            }
            ResolvedFilter::Not(inner) => self.node(inner, !positive, exact),
            ResolvedFilter::Present(attribute) => self.atom(attribute, None, positive, exact),
            ResolvedFilter::Compare(attribute, op, value) => {
                self.atom(attribute, Some((*op, value)), positive, exact)
            }
            ResolvedFilter::ValuePath(attribute, inner) => {
                let translated = self.value_path(attribute, inner);
                match translated {
                    Some(exists) if positive => Some(exists),
                    Some(exists) => Some(format!("NOT {exists}")),
                    None => {
                        *exact = false;
                        None
                    }
                }
            }
        }
    }

    fn atom(
        &mut self,
        attribute: &ResolvedAttr,
        comparison: Option<(CompareOp, &CompValue)>,
        positive: bool,
        exact: &mut bool,
    ) -> Option<String> {
        // Multi-valued attributes with their own tables become EXISTS sub-queries.
        if let Some(exists) = self.related_exists(attribute, comparison) {
            return Some(if positive {
                exists
            } else {
                format!("NOT {exists}")
            });
        }
        let Some((column, kind)) = principal_column(attribute) else {
            *exact = false;
            return None;
        };
        let result = match comparison {
            None => self.presence(column, kind, positive),
            Some((op, value)) => self.comparison(column, kind, op, value, positive),
        };
        if result.is_none() {
            *exact = false;
        }
        result
    }

    fn presence(&mut self, column: &str, kind: ColumnKind, positive: bool) -> Option<String> {
        let text = matches!(kind, ColumnKind::ExactText | ColumnKind::FoldedText);
        Some(match (positive, text) {
            (true, true) => format!("({column} IS NOT NULL AND {column} <> '')"),
            (true, false) => format!("{column} IS NOT NULL"),
            (false, true) => format!("({column} IS NULL OR {column} = '')"),
            (false, false) => format!("{column} IS NULL"),
        })
    }

    /// A comparison on one column. `None` when the operand cannot be expressed (the caller then
    /// treats the comparison as unknown and evaluates it in memory).
    fn comparison(
        &mut self,
        column: &str,
        kind: ColumnKind,
        op: CompareOp,
        value: &CompValue,
        positive: bool,
    ) -> Option<String> {
        let (op, positive) = match op {
            CompareOp::Ne => (CompareOp::Eq, !positive),
            other => (other, positive),
        };
        if matches!(value, CompValue::Null) {
            // `eq null` asks for absence, like the in-memory evaluator.
            return match op {
                CompareOp::Eq => self.presence(column, kind, !positive),
                _ => None,
            };
        }
        let operand = operand(kind, value)?;
        let predicate = match (kind, op) {
            (ColumnKind::Boolean, CompareOp::Eq) => {
                let placeholder = self.bind(operand);
                format!("{column} = {placeholder}")
            }
            (ColumnKind::Boolean, _) => return None,
            (ColumnKind::Timestamp, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) => return None,
            (_, CompareOp::Co) => {
                let placeholder = self.bind(operand);
                self.dialect.contains(column, &placeholder)
            }
            (_, CompareOp::Ew) => {
                let placeholder = self.bind(operand);
                self.dialect.ends_with(column, &placeholder)
            }
            (_, CompareOp::Sw) => {
                // A range, so an index on the column serves it: prefix <= x < prefix + U+10FFFF.
                let SqlValue::Text(prefix) = operand else {
                    return None;
                };
                let upper = format!("{prefix}\u{10FFFF}");
                let low = self.bind(SqlValue::Text(prefix));
                let high = self.bind(SqlValue::Text(upper));
                format!("({column} >= {low} AND {column} < {high})")
            }
            (_, op) => {
                let placeholder = self.bind(operand);
                let symbol = match op {
                    CompareOp::Gt => ">",
                    CompareOp::Ge => ">=",
                    CompareOp::Lt => "<",
                    CompareOp::Le => "<=",
                    _ => "=",
                };
                format!("{column} {symbol} {placeholder}")
            }
        };
        Some(if positive {
            predicate
        } else {
            format!("({column} IS NULL OR NOT {predicate})")
        })
    }

    /// `emails...` and `members...`/`groups...` comparisons as EXISTS over their tables.
    fn related_exists(
        &mut self,
        attribute: &ResolvedAttr,
        comparison: Option<(CompareOp, &CompValue)>,
    ) -> Option<String> {
        if attribute.home != AttributeHome::Core {
            return None;
        }
        let sub = attribute
            .sub_attribute
            .map(|sub| sub.name)
            .unwrap_or("value");
        let (table, column, kind) = related_column(attribute.attribute.name, sub)?;
        let condition = match comparison {
            None => self.presence(column, kind, true)?,
            Some((CompareOp::Ne, _)) => return None,
            Some((op, value)) => self.comparison(column, kind, op, value, true)?,
        };
        Some(format!("EXISTS ({} AND {condition})", related_from(table)))
    }

    /// `emails[type eq "work" and value co "x"]`: one EXISTS whose row meets every condition.
    fn value_path(&mut self, attribute: &ResolvedAttr, inner: &ResolvedFilter) -> Option<String> {
        if attribute.home != AttributeHome::Core {
            return None;
        }
        let (table, _, _) = related_column(attribute.attribute.name, "value")?;
        let condition = self.relative(attribute.attribute.name, inner, true)?;
        Some(format!("EXISTS ({} AND {condition})", related_from(table)))
    }

    fn relative(&mut self, name: &str, filter: &ResolvedFilter, positive: bool) -> Option<String> {
        match filter {
            ResolvedFilter::And(..) | ResolvedFilter::Or(..) => {
                let conjunction = matches!(filter, ResolvedFilter::And(..)) == positive;
                let mut parts = Vec::new();
                for operand in chain_operands(filter) {
                    parts.push(self.relative(name, operand, positive)?);
                }
                balanced(&parts, if conjunction { "AND" } else { "OR" })
            }
            ResolvedFilter::Not(inner) => self.relative(name, inner, !positive),
            ResolvedFilter::Present(attribute) => {
                let (_, column, kind) = related_column(name, attribute.sub_attribute?.name)?;
                self.presence(column, kind, positive)
            }
            ResolvedFilter::Compare(attribute, op, value) => {
                let (_, column, kind) = related_column(name, attribute.sub_attribute?.name)?;
                self.comparison(column, kind, *op, value, positive)
            }
            ResolvedFilter::ValuePath(..) => None,
        }
    }
}

/// The operands of a chain of one operator: `a or b or c` is parsed as `(a or b) or c`, a tree
/// as deep as the chain is long; this gathers `[a, b, c]` without recursing. Only the same
/// operator is gathered, so `a or (b and c)` gives `[a, (b and c)]`.
fn chain_operands(filter: &ResolvedFilter) -> Vec<&ResolvedFilter> {
    let is_and = matches!(filter, ResolvedFilter::And(..));
    let mut operands = Vec::new();
    let mut pending = vec![filter];
    while let Some(next) = pending.pop() {
        match next {
            ResolvedFilter::And(left, right) if is_and => {
                pending.push(right);
                pending.push(left);
            }
            ResolvedFilter::Or(left, right) if !is_and => {
                pending.push(right);
                pending.push(left);
            }
            other => operands.push(other),
        }
    }
    operands
}

/// `parts` joined by `operator` as a balanced tree of parentheses, `((a OR b) OR (c OR d))`:
/// the SQL's nesting grows with the logarithm of the number of operands, not the number. SQLite
/// refuses an expression nested more than 1,000 deep, and a flat `a OR b OR ...` is parsed as
/// deep as it is long, so a chain of a thousand comparisons must not be written either way.
fn balanced(parts: &[String], operator: &str) -> Option<String> {
    match parts {
        [] => None,
        [only] => Some(only.clone()),
        _ => {
            let (left, right) = parts.split_at(parts.len() / 2);
            Some(format!(
                "({} {operator} {})",
                balanced(left, operator)?,
                balanced(right, operator)?
            ))
        }
    }
}

fn related_from(table: &str) -> String {
    match table {
        "principal_emails" => "SELECT 1 FROM principal_emails r WHERE r.account_id = p.account_id AND r.principal_id = p.id".to_string(),
        _ => "SELECT 1 FROM memberships r WHERE r.account_id = p.account_id AND r.group_id = p.id".to_string(),
    }
}

/// The column of a related table holding `attribute.sub`, for the attributes kept in tables.
fn related_column(attribute: &str, sub: &str) -> Option<(&'static str, &'static str, ColumnKind)> {
    match (attribute, sub) {
        ("emails", "value") => Some(("principal_emails", "r.value_lower", ColumnKind::FoldedText)),
        ("emails", "type") => Some(("principal_emails", "r.type", ColumnKind::ExactText)),
        ("emails", "primary") => Some(("principal_emails", "r.is_primary", ColumnKind::Boolean)),
        ("members", "value") => Some(("members", "r.member_id", ColumnKind::ExactText)),
        ("members", "type") => Some(("members", "r.member_kind", ColumnKind::ExactText)),
        _ => None,
    }
}

/// The `principals` column holding an attribute, for the attributes clients search by.
fn principal_column(attribute: &ResolvedAttr) -> Option<(&'static str, ColumnKind)> {
    let name = attribute.attribute.name;
    let sub = attribute.sub_attribute.map(|sub| sub.name);
    match (attribute.home, name, sub) {
        (AttributeHome::Common, "id", None) => Some(("p.id", ColumnKind::ExactText)),
        (AttributeHome::Common, "externalId", None) => {
            Some(("p.external_id", ColumnKind::ExactText))
        }
        (AttributeHome::Common, "meta", Some("created")) => {
            Some(("p.created", ColumnKind::Timestamp))
        }
        (AttributeHome::Common, "meta", Some("lastModified")) => {
            Some(("p.last_modified", ColumnKind::Timestamp))
        }
        (AttributeHome::Core, "userName", None) => {
            Some(("p.user_name_lower", ColumnKind::FoldedText))
        }
        (AttributeHome::Core, "displayName", None) => {
            Some(("p.display_name_lower", ColumnKind::FoldedText))
        }
        (AttributeHome::Core, "applicationId", None) => {
            Some(("p.application_id_lower", ColumnKind::FoldedText))
        }
        (AttributeHome::Core, "active", None) => Some(("p.active", ColumnKind::Boolean)),
        _ => None,
    }
}

fn operand(kind: ColumnKind, value: &CompValue) -> Option<SqlValue> {
    let text = match value {
        CompValue::String(text) => text.clone(),
        CompValue::Number(number) => number.to_string(),
        CompValue::Bool(flag) => flag.to_string(),
        CompValue::Null => return None,
    };
    Some(match kind {
        ColumnKind::ExactText => SqlValue::Text(text),
        ColumnKind::FoldedText => SqlValue::Text(fold_case(&text)),
        ColumnKind::Timestamp => SqlValue::Integer(Timestamp::parse_rfc3339(&text)?.as_micros()),
        ColumnKind::Boolean => match value {
            CompValue::Bool(flag) => SqlValue::Integer(i64::from(*flag)),
            CompValue::String(text) if text.eq_ignore_ascii_case("true") => SqlValue::Integer(1),
            CompValue::String(text) if text.eq_ignore_ascii_case("false") => SqlValue::Integer(0),
            _ => return None,
        },
    })
}

/// The `WHERE` condition of a principal list: the account, the kind, and as much of the
/// filter as SQL can express. Returns the condition and whether it is exact (when not, the
/// rows are a superset that the reference evaluator finishes).
///
/// The kind is a literal, not a parameter: the unique indexes on userName, displayName and
/// applicationId are partial (`WHERE kind = 'User'`...), and a planner (SQLite's, or a
/// PostgreSQL generic plan) uses a partial index only when the query's text implies its
/// condition.
pub fn list_condition(
    builder: &mut SqlBuilder<'_>,
    account: &str,
    kind: PrincipalKind,
    filter: Option<&ResolvedFilter>,
) -> (String, bool) {
    let account_placeholder = builder.bind(SqlValue::Text(account.to_string()));
    let mut condition = format!(
        "p.account_id = {account_placeholder} AND p.kind = '{}'",
        kind.as_str()
    );
    let mut exact = true;
    if let Some(filter) = filter {
        let translation = builder.translate(filter);
        exact = translation.exact;
        if let Some(extra) = translation.condition {
            condition.push_str(" AND ");
            condition.push_str(&extra);
        }
    }
    (condition, exact)
}

/// The `ORDER BY` of a principal list: creation order by default, else the sort key's column
/// with creation order to break ties. `None` when the sort key has no column (the list is then
/// sorted in memory).
pub fn list_order(query: &ListQuery) -> Option<String> {
    match &query.sort_by {
        None => Some("p.created ASC, p.id ASC".to_string()),
        Some(attribute) => sort_column(attribute).map(|column| {
            let direction = match query.sort_order {
                SortOrder::Ascending => "ASC",
                SortOrder::Descending => "DESC",
            };
            format!("{column} {direction} NULLS LAST, p.created ASC, p.id ASC")
        }),
    }
}

/// The name a member is shown with: its stored display name, or for users without one their
/// userName (applicationId for service principals), as Databricks does.
pub fn member_display(display: Option<String>, attributes: &str) -> Option<String> {
    display.or_else(|| {
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(attributes)
            .ok()
            .and_then(|document| {
                document
                    .get("userName")
                    .or_else(|| document.get("applicationId"))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string)
            })
    })
}

/// The column to sort by in SQL, when the sort key has one. Text sorts use the lower-cased copy
/// so that order ignores case, as the attribute's comparisons do.
pub fn sort_column(attribute: &ResolvedAttr) -> Option<&'static str> {
    principal_column(attribute).map(|(column, _)| column)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use scimitar_domain::filter::parse_filter;
    use scimitar_domain::schema::{GROUP_RESOURCE, USER_RESOURCE};

    fn translate(text: &str) -> (Translation, Vec<SqlValue>) {
        let filter = parse_filter(&USER_RESOURCE, text).unwrap();
        let mut builder = SqlBuilder::new(&SqliteDialect);
        let translation = builder.translate(&filter);
        (translation, builder.params)
    }

    #[test]
    fn user_name_equality_is_an_exact_indexed_comparison_on_the_folded_column() {
        let (translation, params) = translate(r#"userName eq "BJensen""#);
        assert_eq!(
            translation.condition.as_deref(),
            Some("p.user_name_lower = ?1")
        );
        assert!(translation.exact);
        assert_eq!(params, vec![SqlValue::Text("bjensen".into())]);
    }

    /// The deepest nesting of parentheses in `sql`.
    fn parenthesis_depth(sql: &str) -> usize {
        let (mut depth, mut deepest) = (0usize, 0usize);
        for character in sql.chars() {
            match character {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                _ => {}
            }
            deepest = deepest.max(depth);
        }
        deepest
    }

    #[test]
    fn a_long_or_chain_nests_by_its_logarithm_and_keeps_every_comparison_in_order() {
        // The parsed filter is a tree as deep as the chain, which the resolver walks
        // recursively: fine in a release build, but an unoptimised build's frames are several
        // KiB, more than a test thread's 2 MiB stack holds for a thousand levels.
        std::thread::Builder::new()
            .stack_size(256 * 1024 * 1024)
            .spawn(long_or_chain)
            .unwrap()
            .join()
            .unwrap();
    }

    fn long_or_chain() {
        let comparisons = scimitar_scim::limits::MAX_COMPARISONS;
        let text = (0..comparisons)
            .map(|n| format!("userName eq \"u{n}\""))
            .collect::<Vec<_>>()
            .join(" or ");
        let (translation, params) = translate(&text);
        let condition = translation.condition.unwrap();
        assert!(translation.exact);
        assert!(
            parenthesis_depth(&condition) <= 12,
            "nested {} deep",
            parenthesis_depth(&condition)
        );
        assert_eq!(params.len(), comparisons);
        assert_eq!(params[0], SqlValue::Text("u0".into()));
        assert_eq!(condition.matches(" OR ").count(), comparisons - 1);
        // A mixed chain: `and` binds tighter and stays inside its operand.
        let (mixed, _) = translate(
            r#"userName eq "a" or userName eq "b" and active eq true or displayName eq "c""#,
        );
        assert_eq!(
            mixed.condition.as_deref(),
            Some("(p.user_name_lower = ?1 OR ((p.user_name_lower = ?2 AND p.active = ?3) OR p.display_name_lower = ?4))")
        );
    }

    #[test]
    fn negation_is_pushed_down_and_keeps_rows_without_the_value() {
        let (translation, _) = translate(r#"not (externalId eq "x")"#);
        assert_eq!(
            translation.condition.as_deref(),
            Some("(p.external_id IS NULL OR NOT p.external_id = ?1)")
        );
    }

    #[test]
    fn an_unindexed_attribute_makes_a_superset_that_still_narrows() {
        let (translation, _) = translate(r#"userName sw "a" and title eq "boss""#);
        assert!(!translation.exact);
        assert_eq!(
            translation.condition.as_deref(),
            Some("(p.user_name_lower >= ?1 AND p.user_name_lower < ?2)")
        );
        let (translation, _) = translate(r#"userName sw "a" or title eq "boss""#);
        assert_eq!(translation.condition, None);
        assert!(!translation.exact);
    }

    #[test]
    fn email_value_paths_become_one_exists_subquery() {
        let (translation, _) = translate(r#"emails[type eq "work" and value co "@x.com"]"#);
        assert!(translation.exact);
        let condition = translation.condition.unwrap();
        assert!(condition.starts_with("EXISTS (SELECT 1 FROM principal_emails"));
        assert!(condition.contains("r.type = ?1"));
    }

    #[test]
    fn group_member_filters_use_the_membership_table() {
        let filter = parse_filter(&GROUP_RESOURCE, r#"members.value eq "42""#).unwrap();
        let mut builder = SqlBuilder::new(&SqliteDialect);
        let translation = builder.translate(&filter);
        assert!(translation.exact);
        assert!(translation
            .condition
            .unwrap()
            .contains("FROM memberships r"));
    }

    #[test]
    fn postgres_numbers_its_placeholders_and_types_its_text_operands() {
        let filter =
            parse_filter(&USER_RESOURCE, r#"userName ew "X" or displayName co "y""#).unwrap();
        let mut builder = SqlBuilder::new(&PostgresDialect);
        let translation = builder.translate(&filter);
        assert!(translation.exact);
        assert_eq!(
            translation.condition.as_deref(),
            Some(
                "(right(p.user_name_lower, char_length($1::text)) = $1::text \
                 OR strpos(p.display_name_lower, $2::text) > 0)"
            )
        );
        assert_eq!(
            builder.params,
            vec![SqlValue::Text("x".into()), SqlValue::Text("y".into())]
        );
    }

    #[test]
    fn dates_compare_as_integers() {
        let (translation, params) = translate(r#"meta.lastModified gt "2026-01-01T00:00:00Z""#);
        assert_eq!(
            translation.condition.as_deref(),
            Some("p.last_modified > ?1")
        );
        assert!(matches!(params[0], SqlValue::Integer(_)));
    }
}
