//! The governance SQL parser as a table of named cases (what each statement parses to, and
//! how each bad one is refused), plus properties: no input panics it, and every parsed
//! statement's canonical text parses back to the same statement.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use scimitar_access::statement::{
    parse_statement, CreateObject, DropObject, PrincipalName, PrivilegeChange, SecurableName,
    SetOwner, ShowGrants, Statement, MAX_STATEMENT_BYTES,
};
use scimitar_access::{AccessError, Privilege, PrivilegeSet, SecurableType};

use Privilege as P;
use SecurableType as T;

fn name(securable_type: SecurableType, full_name: &str) -> SecurableName {
    let parts = if full_name.is_empty() {
        Vec::new()
    } else {
        full_name.split('.').map(str::to_string).collect()
    };
    SecurableName::new(securable_type, parts)
}

fn who(principal: &str) -> PrincipalName {
    PrincipalName::new(principal)
}

fn create(
    securable_type: SecurableType,
    full_name: &str,
    if_not_exists: bool,
    comment: Option<&str>,
) -> Statement {
    Statement::Create(CreateObject {
        securable: name(securable_type, full_name),
        if_not_exists,
        or_replace: false,
        comment: comment.map(str::to_string),
    })
}

fn change(
    privileges: &[Privilege],
    securable_type: SecurableType,
    full_name: &str,
    principal: &str,
) -> PrivilegeChange {
    PrivilegeChange {
        privileges: PrivilegeSet::of(privileges),
        securable: name(securable_type, full_name),
        principal: who(principal),
    }
}

fn grant(p: &[Privilege], t: SecurableType, n: &str, to: &str) -> Statement {
    Statement::Grant(change(p, t, n, to))
}

fn revoke(p: &[Privilege], t: SecurableType, n: &str, from: &str) -> Statement {
    Statement::Revoke(change(p, t, n, from))
}

fn show(principal: Option<&str>, t: SecurableType, n: &str) -> Statement {
    Statement::ShowGrants(ShowGrants {
        principal: principal.map(who),
        securable: name(t, n),
    })
}

#[test]
fn valid_statements_parse_to_their_meaning() {
    let cases: Vec<(&str, &str, Statement)> = vec![
        (
            "a catalog",
            "CREATE CATALOG main",
            create(T::Catalog, "main", false, None),
        ),
        (
            "keywords in any case, a comment and a trailing semicolon",
            "create catalog if not exists Main comment 'Sales data';",
            create(T::Catalog, "Main", true, Some("Sales data")),
        ),
        (
            "DATABASE is SCHEMA, and its options are read past",
            "CREATE DATABASE IF NOT EXISTS main.sales MANAGED LOCATION 's3://b/p' WITH DBPROPERTIES ('a' = 'b') COMMENT 'it\\'s'",
            create(T::Schema, "main.sales", true, Some("it's")),
        ),
        (
            "a table with columns, USING, partitioning and properties",
            "CREATE TABLE main.sales.orders (id BIGINT NOT NULL COMMENT 'key', amount DECIMAL(10, 2)) USING delta PARTITIONED BY (id) COMMENT 'Orders' TBLPROPERTIES ('x' = '1')",
            create(T::Table, "main.sales.orders", false, Some("Orders")),
        ),
        (
            "a table as select: the query is read past",
            "CREATE TABLE sales.big AS SELECT * FROM t WHERE a = 'COMMENT' -- done",
            create(T::Table, "sales.big", false, None),
        ),
        (
            "a view with a column list and a query",
            "CREATE VIEW main.sales.v (a COMMENT 'x', b) COMMENT 'v' AS SELECT a, b FROM t",
            create(T::View, "main.sales.v", false, Some("v")),
        ),
        (
            "an external volume",
            "CREATE EXTERNAL VOLUME main.sales.files LOCATION 's3://bucket/files' COMMENT 'raw'",
            create(T::Volume, "main.sales.files", false, Some("raw")),
        ),
        (
            "a SQL function",
            "CREATE FUNCTION main.util.twice(x INT) RETURNS INT COMMENT 'doubles' RETURN x * 2",
            create(T::Function, "main.util.twice", false, Some("doubles")),
        ),
        (
            "a Python function with a dollar-quoted body",
            "CREATE OR REPLACE FUNCTION main.util.f(s STRING) RETURNS STRING LANGUAGE PYTHON AS $$ return s + '`' $$",
            Statement::Create(CreateObject {
                securable: name(T::Function, "main.util.f"),
                if_not_exists: false,
                or_replace: true,
                comment: None,
            }),
        ),
        (
            "an external location",
            "CREATE EXTERNAL LOCATION IF NOT EXISTS landing URL 's3://b/landing' WITH (STORAGE CREDENTIAL cred) COMMENT 'in'",
            create(T::ExternalLocation, "landing", true, Some("in")),
        ),
        (
            "a connection",
            "CREATE CONNECTION pg TYPE postgresql OPTIONS (host 'db', port '5432')",
            create(T::Connection, "pg", false, None),
        ),
        (
            "a backticked name with a doubled backtick",
            "CREATE SCHEMA `main`.`sales-eu``x`",
            create(T::Schema, "main.sales-eu`x", false, None),
        ),
        (
            "drop a catalog with everything in it",
            "DROP CATALOG IF EXISTS main CASCADE",
            Statement::Drop(DropObject {
                securable: name(T::Catalog, "main"),
                if_exists: true,
                cascade: true,
            }),
        ),
        (
            "RESTRICT is the default",
            "DROP SCHEMA main.sales RESTRICT",
            Statement::Drop(DropObject {
                securable: name(T::Schema, "main.sales"),
                if_exists: false,
                cascade: false,
            }),
        ),
        (
            "drop a storage credential",
            "DROP STORAGE CREDENTIAL cred",
            Statement::Drop(DropObject {
                securable: name(T::StorageCredential, "cred"),
                if_exists: false,
                cascade: false,
            }),
        ),
        (
            "ownership to a user in backticks",
            "ALTER TABLE main.sales.orders OWNER TO `alice@example.com`",
            Statement::SetOwner(SetOwner {
                securable: name(T::Table, "main.sales.orders"),
                owner: who("alice@example.com"),
            }),
        ),
        (
            "SET OWNER to a group with a space",
            "ALTER SCHEMA main.sales SET OWNER TO `Data Engineers`",
            Statement::SetOwner(SetOwner {
                securable: name(T::Schema, "main.sales"),
                owner: who("Data Engineers"),
            }),
        ),
        (
            "grant several privileges, multi-word ones included",
            "GRANT USE CATALOG, USE SCHEMA, SELECT ON CATALOG main TO analysts",
            grant(&[P::UseCatalog, P::UseSchema, P::Select], T::Catalog, "main", "analysts"),
        ),
        (
            "the longest privilege wins: CREATE TABLE, not CREATE",
            "GRANT CREATE TABLE, CREATE VOLUME ON SCHEMA main.sales TO `team-a`",
            grant(&[P::CreateTable, P::CreateVolume], T::Schema, "main.sales", "team-a"),
        ),
        (
            "REST spellings are read too",
            "GRANT use_schema, Apply Tag ON DATABASE main.sales TO g",
            grant(&[P::UseSchema, P::ApplyTag], T::Schema, "main.sales", "g"),
        ),
        (
            "ALL PRIVILEGES on a table",
            "GRANT ALL PRIVILEGES ON TABLE main.sales.orders TO `Data Engineers`",
            grant(&[P::AllPrivileges], T::Table, "main.sales.orders", "Data Engineers"),
        ),
        (
            "a bare name after ON is a table",
            "GRANT SELECT, MODIFY ON main.sales.orders TO `0b9c7e3a-1111-2222-3333-444455556666`",
            grant(
                &[P::Select, P::Modify],
                T::Table,
                "main.sales.orders",
                "0b9c7e3a-1111-2222-3333-444455556666",
            ),
        ),
        (
            "metastore privileges take no name",
            "GRANT CREATE CATALOG, CREATE EXTERNAL LOCATION ON METASTORE TO admins",
            grant(&[P::CreateCatalog, P::CreateExternalLocation], T::Metastore, "", "admins"),
        ),
        (
            "volumes, functions, models, locations, credentials and connections",
            "GRANT READ VOLUME, WRITE VOLUME ON VOLUME main.sales.files TO u",
            grant(&[P::ReadVolume, P::WriteVolume], T::Volume, "main.sales.files", "u"),
        ),
        (
            "execute on a registered model",
            "GRANT EXECUTE ON REGISTERED MODEL main.ml.churn TO u",
            grant(&[P::Execute], T::RegisteredModel, "main.ml.churn", "u"),
        ),
        (
            "external location privileges",
            "GRANT READ FILES, CREATE EXTERNAL TABLE ON EXTERNAL LOCATION landing TO u",
            grant(&[P::ReadFiles, P::CreateExternalTable], T::ExternalLocation, "landing", "u"),
        ),
        (
            "SERVER is CONNECTION",
            "GRANT USE CONNECTION ON SERVER pg TO u",
            grant(&[P::UseConnection], T::Connection, "pg", "u"),
        ),
        (
            "revoke",
            "REVOKE MANAGE, BROWSE ON CATALOG main FROM `bob@example.com`",
            revoke(&[P::Manage, P::Browse], T::Catalog, "main", "bob@example.com"),
        ),
        (
            "show every grant",
            "SHOW GRANTS ON SCHEMA main.sales",
            show(None, T::Schema, "main.sales"),
        ),
        (
            "show one principal's grants with SHOW GRANT",
            "show grant `alf@melmak.et` on table main.sales.orders",
            show(Some("alf@melmak.et"), T::Table, "main.sales.orders"),
        ),
        (
            "show metastore grants",
            "SHOW GRANTS ON METASTORE",
            show(None, T::Metastore, ""),
        ),
        (
            "comments anywhere",
            "/* setup */ GRANT SELECT -- read\n ON TABLE t TO u ;",
            grant(&[P::Select], T::Table, "t", "u"),
        ),
    ];
    for (case, text, expected) in cases {
        let parsed = parse_statement(text).unwrap_or_else(|error| panic!("{case}: {error}"));
        assert_eq!(parsed, expected, "{case}");
        let canonical = parsed.to_string();
        assert_eq!(
            parse_statement(&canonical).as_ref(),
            Ok(&parsed),
            "{case}: {canonical}"
        );
    }
}

#[test]
fn invalid_statements_name_the_offending_token_and_its_offset() {
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            "no privilege",
            "GRANT TO alice",
            "expected a privilege after GRANT, found 'TO' at offset 6",
        ),
        (
            "an unknown privilege",
            "GRANT SELEKT ON TABLE t TO u",
            "expected a privilege after GRANT, found 'SELEKT' at offset 6",
        ),
        (
            "a missing comma",
            "GRANT SELECT MODIFY ON TABLE t TO u",
            "expected ',' or ON after SELECT, found 'MODIFY' at offset 13",
        ),
        (
            "a privilege after a comma",
            "REVOKE SELECT, ON TABLE t FROM u",
            "expected a privilege after ',', found 'ON' at offset 15",
        ),
        (
            "a privilege that does not apply to the type",
            "GRANT SELECT, USE SCHEMA ON TABLE main.s.t TO u",
            "privilege USE_SCHEMA does not apply to a TABLE: 'USE SCHEMA' at offset 14",
        ),
        (
            "the legacy CREATE on a schema",
            "GRANT CREATE TABLE, CREATE ON SCHEMA main.sales TO u",
            "privilege CREATE does not apply to a SCHEMA: 'CREATE' at offset 20",
        ),
        (
            "modify on a view",
            "GRANT MODIFY ON VIEW main.s.v TO u",
            "privilege MODIFY does not apply to a VIEW: 'MODIFY' at offset 6",
        ),
        (
            "ALL PRIVILEGES listed with others",
            "GRANT SELECT, ALL PRIVILEGES ON TABLE t TO u",
            "ALL PRIVILEGES cannot be listed with other privileges: 'ALL PRIVILEGES' at offset 14",
        ),
        (
            "an unquoted e-mail address",
            "GRANT SELECT ON TABLE t TO alice@example.com",
            "expected the end of the statement, found '@' at offset 32",
        ),
        (
            "a missing principal",
            "GRANT SELECT ON TABLE t TO",
            "expected a principal after TO (a userName",
        ),
        (
            "FROM in a GRANT",
            "GRANT SELECT ON TABLE t FROM u",
            "expected TO after the securable, found 'FROM' at offset 24",
        ),
        (
            "too many name parts",
            "GRANT USE SCHEMA ON SCHEMA a.b.c TO u",
            "a SCHEMA name has at most 2 parts: 'c' at offset 31",
        ),
        (
            "a space inside a backticked name",
            "CREATE CATALOG `my catalog`",
            "a Unity Catalog name cannot contain a space, even in backticks: '`my catalog`' at offset 15",
        ),
        (
            "a dot inside a backticked name",
            "DROP TABLE `a.b`",
            "cannot contain '.', even in backticks: '`a.b`' at offset 11",
        ),
        (
            "an empty backticked principal",
            "ALTER CATALOG c OWNER TO ``",
            "a principal name cannot be empty: '``' at offset 25",
        ),
        (
            "an unterminated backtick",
            "GRANT SELECT ON TABLE t TO `alice",
            "unterminated backticked name: expected a closing ` for '`alice' at offset 27",
        ),
        (
            "an unterminated string",
            "CREATE CATALOG c COMMENT 'oops",
            "unterminated string",
        ),
        (
            "an unsupported securable type",
            "GRANT SELECT ON SHARE s TO u",
            "Scimitar does not model this kind of securable: 'SHARE' at offset 16",
        ),
        (
            "a materialized view",
            "SHOW GRANTS ON MATERIALIZED VIEW a.b.c",
            "'MATERIALIZED VIEW' at offset 15",
        ),
        (
            "an empty statement",
            "  -- nothing\n",
            "expected a statement (CREATE, DROP, ALTER, GRANT, REVOKE or SHOW GRANTS), found end of input at offset 13",
        ),
        (
            "two statements",
            "GRANT SELECT ON t TO u; GRANT SELECT ON t TO v",
            "expected the end of the statement, found ';' at offset 22",
        ),
        (
            "an ALTER other than OWNER TO",
            "ALTER TABLE main.s.t ADD COLUMN x INT",
            "expected OWNER TO after the TABLE name (Scimitar runs only ALTER ... OWNER TO), found 'ADD' at offset 21",
        ),
        (
            "an unknown create clause",
            "CREATE SCHEMA main.s PURPLE",
            "expected a CREATE SCHEMA clause (COMMENT, MANAGED, LOCATION, WITH, DEFAULT) or the end of the statement, found 'PURPLE' at offset 21",
        ),
        (
            "an unclosed column list",
            "CREATE TABLE t (a INT, b DECIMAL(10, 2)",
            "expected ')' to close the '(' at offset 15, found end of input at offset 39",
        ),
        (
            "a function without parameters",
            "CREATE FUNCTION f RETURNS INT RETURN 1",
            "expected '(' and the parameter list after the function name, found 'RETURNS' at offset 18",
        ),
        (
            "a temporary view",
            "CREATE TEMPORARY VIEW v AS SELECT 1",
            "temporary objects live in a session, not in Unity Catalog, so they cannot be registered: 'TEMPORARY' at offset 7",
        ),
        (
            "a storage credential is not created with SQL",
            "CREATE STORAGE CREDENTIAL cred",
            "'STORAGE CREDENTIAL' at offset 7",
        ),
        (
            "OR REPLACE on a catalog",
            "CREATE OR REPLACE CATALOG c",
            "OR REPLACE applies only to tables, views and functions: 'OR REPLACE' at offset 7",
        ),
        (
            "OR REPLACE with IF NOT EXISTS",
            "CREATE OR REPLACE VIEW IF NOT EXISTS v AS SELECT 1",
            "OR REPLACE and IF NOT EXISTS cannot be used together: 'IF NOT EXISTS' at offset 23",
        ),
        (
            "CASCADE on a table",
            "DROP TABLE t CASCADE",
            "CASCADE and RESTRICT apply only to catalogs and schemas: 'CASCADE' at offset 13",
        ),
        (
            "a comment given twice",
            "CREATE VOLUME v COMMENT 'a' COMMENT 'b'",
            "COMMENT is given twice: 'COMMENT' at offset 28",
        ),
        (
            "a comment that is not a string",
            "CREATE CATALOG c COMMENT hello",
            "expected a quoted string after COMMENT, found 'hello' at offset 25",
        ),
        (
            "dropping the metastore",
            "DROP METASTORE",
            "the metastore cannot be changed with DROP: 'METASTORE' at offset 5",
        ),
        (
            "SHOW GRANTS TO RECIPIENT",
            "SHOW GRANTS TO RECIPIENT r",
            "Scimitar does not model: 'TO' at offset 12",
        ),
        (
            "SHOW something else",
            "SHOW TABLES",
            "expected GRANTS after SHOW (Scimitar runs only SHOW GRANTS), found 'TABLES' at offset 5",
        ),
        (
            "a missing securable",
            "GRANT SELECT ON TO u",
            "expected a securable after ON (METASTORE, CATALOG",
        ),
    ];
    for (case, text, expected) in cases {
        let error = parse_statement(text)
            .map(|parsed| panic!("{case}: {text:?} parsed as {parsed:?}"))
            .unwrap_err();
        assert!(
            error.message.contains(expected),
            "{case}: {text:?}\n  got:      {}\n  expected: {expected}",
            error.message
        );
        assert!(error.position <= text.len(), "{case}");
    }
}

#[test]
fn statement_errors_become_access_errors_with_the_same_text() {
    let error = parse_statement("GRANT TO alice").unwrap_err();
    assert_eq!(error.position, 6);
    assert_eq!(error.found, "'TO'");
    let access: AccessError = error.clone().into();
    assert_eq!(access.to_string(), error.message);
}

#[test]
fn every_privilege_parses_in_its_sql_spelling_where_it_applies() {
    for securable_type in SecurableType::ALL {
        let target = if securable_type == T::Metastore {
            SecurableName::new(T::Metastore, Vec::new())
        } else {
            let parts = ["c", "s", "x"][..securable_type.name_parts()]
                .iter()
                .map(|part| part.to_string())
                .collect();
            SecurableName::new(securable_type, parts)
        };
        for privilege in Privilege::ALL {
            let text = format!("GRANT {} ON {target} TO u", privilege.as_sql());
            let parsed = parse_statement(&text);
            if securable_type.applicable().contains(*privilege) {
                assert_eq!(
                    parsed,
                    Ok(Statement::Grant(PrivilegeChange {
                        privileges: PrivilegeSet::of(&[*privilege]),
                        securable: target.clone(),
                        principal: who("u"),
                    })),
                    "{text}"
                );
            } else {
                assert!(parsed.is_err(), "{text}");
            }
        }
    }
}

#[test]
fn short_names_are_qualified_from_the_current_catalog_and_schema() {
    let table = SecurableName::new(T::Table, vec!["orders".into()]);
    assert!(!table.is_fully_qualified());
    assert_eq!(
        table.qualified("main", "sales").full_name(),
        "main.sales.orders"
    );
    let two = SecurableName::new(T::Table, vec!["sales".into(), "orders".into()]);
    assert_eq!(
        two.qualified("main", "default").full_name(),
        "main.sales.orders"
    );
    let schema = SecurableName::new(T::Schema, vec!["sales".into()]);
    assert_eq!(
        schema.qualified("main", "default").full_name(),
        "main.sales"
    );
    let catalog = SecurableName::new(T::Catalog, vec!["main".into()]);
    assert_eq!(catalog.qualified("x", "y"), catalog);
    let metastore = SecurableName::new(T::Metastore, Vec::new());
    assert!(metastore.is_fully_qualified());
    assert_eq!(metastore.qualified("x", "y"), metastore);
}

#[test]
fn an_oversized_statement_is_refused_before_it_is_read() {
    let text = format!(
        "GRANT SELECT ON t TO u --{}",
        "x".repeat(MAX_STATEMENT_BYTES)
    );
    let error = parse_statement(&text).unwrap_err();
    assert!(error.message.contains("bytes long"), "{}", error.message);
}

#[test]
fn deep_parentheses_do_not_exhaust_the_stack() {
    let text = format!(
        "CREATE TABLE t ({}{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    assert!(parse_statement(&text).is_err());
    let balanced = format!(
        "CREATE TABLE t {}{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    assert!(parse_statement(&balanced).is_ok());
}

// ----- properties ----------------------------------------------------------------------------

/// Words and symbols the grammar cares about, so random statements reach deep into it.
const VOCABULARY: &[&str] = &[
    "CREATE",
    "DROP",
    "ALTER",
    "GRANT",
    "REVOKE",
    "SHOW",
    "GRANTS",
    "ON",
    "TO",
    "FROM",
    "OWNER",
    "SET",
    "IF",
    "NOT",
    "EXISTS",
    "OR",
    "REPLACE",
    "CASCADE",
    "RESTRICT",
    "COMMENT",
    "AS",
    "CATALOG",
    "SCHEMA",
    "DATABASE",
    "TABLE",
    "VIEW",
    "VOLUME",
    "FUNCTION",
    "MODEL",
    "EXTERNAL",
    "LOCATION",
    "STORAGE",
    "CREDENTIAL",
    "CONNECTION",
    "METASTORE",
    "SHARE",
    "SELECT",
    "USE",
    "ALL",
    "PRIVILEGES",
    "MODIFY",
    "EXECUTE",
    "MANAGE",
    "READ",
    "VOLUME",
    "RETURNS",
    "RETURN",
    "USING",
    "LOCATION",
    "URL",
    "WITH",
    "TYPE",
    "OPTIONS",
    "main",
    "sales",
    "`a b`",
    "`x``y`",
    "`alice@example.com`",
    "'c'",
    "'it''s'",
    "$$ x $$",
    ".",
    ",",
    "(",
    ")",
    ";",
    "--",
    "/*",
    "*/",
    "`",
    "'",
    "@",
    "é",
    "\n",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(VOCABULARY), 0..24).prop_map(|words| words.join(" "))
}

fn name_part() -> impl Strategy<Value = String> {
    // Anything Unity Catalog allows in backticks: no '.', space, '/' or control character.
    "[a-zA-Z0-9_@`'\\-é\u{4e2d}]{1,12}"
}

fn securable_name(securable_type: SecurableType) -> BoxedStrategy<SecurableName> {
    if securable_type == T::Metastore {
        return Just(SecurableName::new(T::Metastore, Vec::new())).boxed();
    }
    prop::collection::vec(name_part(), 1..=securable_type.name_parts())
        .prop_map(move |parts| SecurableName::new(securable_type, parts))
        .boxed()
}

fn any_securable(with_metastore: bool) -> BoxedStrategy<SecurableName> {
    let types: Vec<SecurableType> = SecurableType::ALL
        .into_iter()
        .filter(|kind| with_metastore || *kind != T::Metastore)
        .collect();
    prop::sample::select(types)
        .prop_flat_map(securable_name)
        .boxed()
}

fn principal() -> impl Strategy<Value = PrincipalName> {
    "[ -~é]{0,20}[!-~]".prop_map(PrincipalName::new)
}

fn privilege_change() -> impl Strategy<Value = PrivilegeChange> {
    (
        any_securable(true),
        principal(),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(|(securable, principal, bits, all)| {
            let applicable: Vec<Privilege> = securable.securable_type.applicable().iter().collect();
            let privileges = if all && applicable.contains(&P::AllPrivileges) {
                PrivilegeSet::of(&[P::AllPrivileges])
            } else {
                let others: Vec<Privilege> = applicable
                    .into_iter()
                    .filter(|privilege| *privilege != P::AllPrivileges)
                    .collect();
                let mut chosen: PrivilegeSet = others
                    .iter()
                    .enumerate()
                    .filter(|(index, _)| bits & (1 << (index % 64)) != 0)
                    .map(|(_, privilege)| *privilege)
                    .collect();
                if chosen.is_empty() {
                    chosen.insert(others[bits as usize % others.len()]);
                }
                chosen
            };
            PrivilegeChange {
                privileges,
                securable,
                principal,
            }
        })
}

fn statement() -> impl Strategy<Value = Statement> {
    let creatable = prop::sample::select(vec![
        T::Catalog,
        T::Schema,
        T::Table,
        T::View,
        T::Volume,
        T::Function,
        T::ExternalLocation,
        T::Connection,
    ]);
    prop_oneof![
        (
            creatable.prop_flat_map(securable_name),
            any::<bool>(),
            any::<bool>(),
            prop::option::of("[ -~\n\\\\é]{0,20}")
        )
            .prop_map(|(securable, if_not_exists, replace, comment)| {
                let replaceable =
                    matches!(securable.securable_type, T::Table | T::View | T::Function);
                let or_replace = replace && replaceable;
                Statement::Create(CreateObject {
                    securable,
                    if_not_exists: if_not_exists && !or_replace,
                    or_replace,
                    comment,
                })
            }),
        (any_securable(false), any::<bool>(), any::<bool>()).prop_map(
            |(securable, if_exists, cascade)| {
                let container = matches!(securable.securable_type, T::Catalog | T::Schema);
                Statement::Drop(DropObject {
                    securable,
                    if_exists,
                    cascade: cascade && container,
                })
            }
        ),
        (any_securable(false), principal())
            .prop_map(|(securable, owner)| Statement::SetOwner(SetOwner { securable, owner })),
        privilege_change().prop_map(Statement::Grant),
        privilege_change().prop_map(Statement::Revoke),
        (any_securable(true), prop::option::of(principal())).prop_map(|(securable, principal)| {
            Statement::ShowGrants(ShowGrants {
                principal,
                securable,
            })
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_string_panics_the_parser(text in "\\PC{0,200}") {
        let _ = parse_statement(&text);
    }

    #[test]
    fn no_token_soup_panics_and_what_parses_round_trips(text in token_soup()) {
        if let Ok(parsed) = parse_statement(&text) {
            let canonical = parsed.to_string();
            prop_assert_eq!(parse_statement(&canonical), Ok(parsed), "{}", canonical);
        } else if let Err(error) = parse_statement(&text) {
            prop_assert!(error.position <= text.len());
        }
    }

    #[test]
    fn every_statement_prints_as_sql_that_parses_back_to_it(statement in statement()) {
        let canonical = statement.to_string();
        prop_assert_eq!(parse_statement(&canonical), Ok(statement), "{}", canonical);
    }
}
