//! `scimitar sql "GRANT ..."`: one statement of governance SQL run against a database
//! directly, as a principal (the bootstrap admin by default), through the same governance
//! service the Statement Execution API uses. A running server sees the change within its
//! access-log poll.

use clap::Args;
use scimitar_app::governance::{Governance, Outcome};
use scimitar_app::service::{Services, BOOTSTRAP_ADMIN_USER_NAME};

#[derive(Args)]
pub struct SqlArgs {
    #[arg(long, env = "SCIMITAR_DATABASE_URL")]
    database: Option<String>,
    /// The account (default: the first one).
    #[arg(long)]
    account: Option<String>,
    /// Who runs the statement: a userName, group name or applicationId.
    #[arg(long = "as", default_value = BOOTSTRAP_ADMIN_USER_NAME)]
    as_principal: String,
    /// The current catalog, for names that do not give one.
    #[arg(long)]
    catalog: Option<String>,
    /// The current schema, for names that do not give one.
    #[arg(long)]
    schema: Option<String>,
    /// The statement: CREATE, DROP, ALTER ... OWNER TO, GRANT, REVOKE, SHOW GRANTS, or
    /// SELECT ... FROM system.access.audit (admins only).
    statement: String,
}

impl SqlArgs {
    /// The database URL given on the command line or in the environment.
    pub fn database(&self) -> Option<String> {
        self.database.clone()
    }
}

pub async fn run(args: SqlArgs, services: Services) -> Result<(), String> {
    services
        .load_access_state()
        .await
        .map_err(|error| format!("cannot load access state: {error}"))?;
    let account = services
        .account_or_first(args.account.as_deref())
        .await
        .map_err(|error| error.to_string())?;
    let governance = Governance::new(services.clone());
    let (principal, _) = governance
        .principal_named(&account, &args.as_principal)
        .await
        .map_err(|error| error.to_string())?;
    // The statement is authorised as that principal, exactly as if it had come over HTTP.
    let actor = services
        .act_as(&account, &principal)
        .await
        .map_err(|error| error.to_string())?;
    let outcome = governance
        .caller(&actor)
        .run_sql(
            &args.statement,
            args.catalog.as_deref(),
            args.schema.as_deref(),
        )
        .await
        .map_err(|error| error.to_string())?;
    match outcome {
        Outcome::Done => println!("OK"),
        Outcome::Rows { columns, rows } => print!("{}", table(&columns, &rows)),
        Outcome::Table { columns, rows } => {
            let rows: Vec<Vec<String>> = rows
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .map(|cell| cell.unwrap_or_else(|| "NULL".to_string()))
                        .collect()
                })
                .collect();
            print!("{}", table(&columns, &rows))
        }
    }
    Ok(())
}

/// Rows under their column names, each column as wide as its widest cell.
pub(crate) fn table(columns: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(index, name)| {
            rows.iter()
                .filter_map(|row| row.get(index))
                .map(|cell| cell.chars().count())
                .chain(std::iter::once(name.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(columns.to_vec());
    out.push_str(&line(
        widths
            .iter()
            .map(|width| "-".repeat(*width))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out.push_str(&format!(
        "({} row{})\n",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_lines_up_its_columns() {
        let rows = vec![vec!["Data Engineers".to_string(), "SELECT".to_string()]];
        let printed = table(&["principal", "actionType"], &rows);
        assert_eq!(
            printed,
            "principal       actionType\n\
             --------------  ----------\n\
             Data Engineers  SELECT\n\
             (1 row)\n"
        );
    }
}
