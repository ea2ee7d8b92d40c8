//! `scimitar access check|who|what`: the access API's questions asked of a database directly,
//! for operators at a terminal. The engine is built from the database the way `serve` builds
//! it, and the answers are rendered by the application crate's `access_questions`, the same code
//! the HTTP API uses.

use clap::{Args, Subcommand};
use scimitar_app::access_questions::{self, Target};
use scimitar_app::service::Services;
use scimitar_domain::{AccountId, ScimError, WorkspaceId};
use std::collections::HashMap;
use std::io::Write;

#[derive(Subcommand)]
pub enum AccessCommand {
    /// Whether a principal has a privilege, an object permission level or an entitlement,
    /// and why (or what is missing).
    Check {
        #[command(flatten)]
        common: Common,
        /// userName, group displayName, service principal applicationId, or id.
        #[arg(long)]
        principal: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Every user and service principal that has it, through nested groups.
    Who {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Everything a principal holds, and through which grant, ACL entry or entitlement.
    What {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        principal: String,
    },
}

#[derive(Args)]
pub struct Common {
    #[arg(long, env = "SCIMITAR_DATABASE_URL")]
    database: Option<String>,
    /// The account (default: the first one).
    #[arg(long)]
    account: Option<String>,
    /// Print the access API's JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// One of: `--privilege --securable-type --full-name`; `--object-type --object-id
/// --permission-level`; or `--entitlement`.
#[derive(Args)]
pub struct TargetArgs {
    /// A Unity Catalog privilege, e.g. SELECT.
    #[arg(long)]
    privilege: Option<String>,
    /// CATALOG, SCHEMA, TABLE, ...
    #[arg(long)]
    securable_type: Option<String>,
    /// e.g. main.sales.orders
    #[arg(long)]
    full_name: Option<String>,
    /// A Permissions API object type, e.g. jobs, clusters, directories.
    #[arg(long)]
    object_type: Option<String>,
    #[arg(long)]
    object_id: Option<String>,
    /// e.g. CAN_VIEW
    #[arg(long)]
    permission_level: Option<String>,
    /// e.g. workspace-access
    #[arg(long)]
    entitlement: Option<String>,
}

impl TargetArgs {
    fn target(self) -> Result<Target, String> {
        let parameters: HashMap<String, String> = [
            ("privilege", self.privilege),
            ("securable_type", self.securable_type),
            ("full_name", self.full_name),
            ("object_type", self.object_type),
            ("object_id", self.object_id),
            ("permission_level", self.permission_level),
            ("entitlement", self.entitlement),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| (name.to_string(), value)))
        .collect();
        Target::from_parameters(&parameters).map_err(|error| error.to_string())
    }
}

/// Opens the database, builds the engine as `serve` does, and answers.
async fn open(common: &Common) -> Result<(Services, AccountId), String> {
    let database = common
        .database
        .clone()
        .unwrap_or_else(|| crate::config::DEFAULT_DATABASE.to_string());
    let services = crate::services(&database, 1).await?;
    services
        .load_access_state()
        .await
        .map_err(|error| format!("cannot load access state: {error}"))?;
    let account = services
        .account_or_first(common.account.as_deref())
        .await
        .map_err(|error| error.to_string())?;
    Ok((services, account))
}

/// The workspace entitlements and objects are answered for: the account's first, as for any
/// actor without a workspace (`Services::questions_workspace`).
async fn first_workspace(services: &Services, account: &AccountId) -> Result<WorkspaceId, String> {
    services
        .first_workspace(account)
        .await
        .map_err(|error| error.to_string())
}

fn print_json(value: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|error| error.to_string())?;
    println!("{text}");
    Ok(())
}

pub async fn run(command: AccessCommand) -> Result<(), String> {
    match command {
        AccessCommand::Check {
            common,
            principal,
            target,
        } => {
            let target = target.target()?;
            let (services, account) = open(&common).await?;
            let principal = access_questions::resolve_principal(&services, &account, &principal)
                .await
                .map_err(|error| error.to_string())?;
            let workspace = first_workspace(&services, &account).await?;
            let target = target.in_workspace(&workspace);
            let answer = services
                .access()
                .read(&account, |model| {
                    access_questions::check(model, &workspace, &principal, &target)
                })
                .and_then(|answer| answer)
                .map_err(|error| error.to_string())?;
            if common.json {
                let mut json = answer.to_json(true).map_err(|error| error.to_string())?;
                json.push(b'\n');
                std::io::stdout()
                    .write_all(&json)
                    .map_err(|error| error.to_string())
            } else {
                print!("{answer}");
                Ok(())
            }
        }
        AccessCommand::Who { common, target } => {
            let target = target.target()?;
            let (services, account) = open(&common).await?;
            let workspace = first_workspace(&services, &account).await?;
            let target = target.in_workspace(&workspace);
            // Rendered while the model is read, from the engine's answer as it is: a
            // securable's holders are never copied into owned values.
            let rendered = services
                .access()
                .read(&account, |model| {
                    access_questions::who(model, &workspace, &target, |answer| {
                        if common.json {
                            let mut json =
                                answer.to_json(true).map_err(|error| error.to_string())?;
                            json.push(b'\n');
                            Ok::<_, String>(json)
                        } else {
                            Ok(answer.to_string().into_bytes())
                        }
                    })
                })
                .and_then(|answer| answer)
                .map_err(|error| error.to_string())??;
            std::io::stdout()
                .write_all(&rendered)
                .map_err(|error| error.to_string())
        }
        AccessCommand::What { common, principal } => {
            let (services, account) = open(&common).await?;
            let principal = access_questions::resolve_principal(&services, &account, &principal)
                .await
                .map_err(|error| error.to_string())?;
            let workspace = first_workspace(&services, &account).await?;
            let (reference, held) = services
                .access()
                .read(&account, |model| {
                    let reference = model.principal_ref(&principal).map_err(ScimError::from)?;
                    let held = model
                        .what(&workspace, &principal)
                        .map_err(ScimError::from)?;
                    Ok((reference, held))
                })
                .and_then(|answer| answer)
                .map_err(|error| error.to_string())?;
            if common.json {
                return print_json(&access_questions::what_json(&reference, &held));
            }
            println!("{reference} holds {} accesses", held.len());
            for via in held {
                println!("  {}", access_questions::via_text(&via));
            }
            Ok(())
        }
    }
}
