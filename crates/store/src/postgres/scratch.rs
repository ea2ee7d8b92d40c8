//! Scratch databases for tests: each test gets an empty database of its own on the server a
//! `TEST_DATABASE_URL` names, and drops it when done. Built only with the `testing` feature.

use deadpool_postgres::tokio_postgres::{self, NoTls};
use scimitar_domain::{ScimError, ScimResult};

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> ScimResult<String> {
    let authority_start = url
        .find("://")
        .map(|index| index + 3)
        .ok_or_else(|| ScimError::invalid_value(format!("not a PostgreSQL URL: {url}")))?;
    let rest = &url[authority_start..];
    let path_start = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(path_start);
    let query = after.find('?').map_or("", |index| &after[index..]);
    Ok(format!(
        "{}{authority}/{database}{query}",
        &url[..authority_start]
    ))
}

async fn run(url: &str, sql: &str) -> ScimResult<()> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(|error| {
        ScimError::internal_caused_by(format!("cannot connect to {url}"), error)
    })?;
    let driver = tokio::spawn(connection);
    let outcome = client
        .batch_execute(sql)
        .await
        .map_err(|error| ScimError::internal_caused_by(format!("cannot run: {sql}"), error));
    std::mem::drop(client);
    let _ = driver.await;
    outcome
}

fn check_name(name: &str) -> ScimResult<()> {
    let valid = !name.is_empty()
        && name.len() < 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(ScimError::invalid_value(format!(
            "'{name}' is not a scratch database name (lower-case letters, digits, _)"
        )))
    }
}

/// Creates the empty database `name` on the server `url` names (dropping any leftover of
/// that name first) and returns a URL for it.
pub async fn create(url: &str, name: &str) -> ScimResult<String> {
    check_name(name)?;
    run(url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
    run(url, &format!("CREATE DATABASE {name}")).await?;
    with_database(url, name)
}

/// Drops the database `name`, closing any connection still open to it.
pub async fn drop(url: &str, name: &str) -> ScimResult<()> {
    check_name(name)?;
    run(url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://u@h:5432/test", "x").unwrap(),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgresql://u@h/test?sslmode=disable", "x").unwrap(),
            "postgresql://u@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h", "x").unwrap(),
            "postgres://u@h/x"
        );
    }
}
