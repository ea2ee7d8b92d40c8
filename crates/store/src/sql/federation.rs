//! Federation policies and exchanged JWTs in SQL, written once for both backends: the reads,
//! and what [`Change::CreateFederationPolicy`], [`Change::UpdateFederationPolicy`],
//! [`Change::DeleteFederationPolicy`] and [`Change::RecordExchangedToken`] mean.
//!
//! [`Change::CreateFederationPolicy`]: crate::Change::CreateFederationPolicy
//! [`Change::UpdateFederationPolicy`]: crate::Change::UpdateFederationPolicy
//! [`Change::DeleteFederationPolicy`]: crate::Change::DeleteFederationPolicy
//! [`Change::RecordExchangedToken`]: crate::Change::RecordExchangedToken

use crate::federation::{ExchangedToken, FederationPolicy, OidcPolicy};
use crate::governance::AccessEvent;
use crate::sql::transaction::{params, query_opt, Lock, LogEntry, SqlRow, SqlTransaction};
use scimitar_domain::{AccountId, PrincipalId, PrincipalKind, ScimError, ScimResult, Timestamp};

const POLICY_COLUMNS: &str = "account_id, uid, policy_id, principal_id, description, issuer, \
     audiences, subject, subject_claim, jwks_json, jwks_uri, created, updated";

fn policy_from_row(mut row: SqlRow) -> ScimResult<FederationPolicy> {
    let audiences: Vec<String> =
        serde_json::from_str(&row.text(6)?).map_err(ScimError::internal)?;
    Ok(FederationPolicy {
        account: AccountId::new(row.text(0)?),
        uid: row.text(1)?,
        policy_id: row.text(2)?,
        service_principal: row.optional_text(3)?.map(PrincipalId::new),
        description: row.optional_text(4)?,
        oidc: OidcPolicy {
            issuer: row.text(5)?,
            audiences,
            subject: row.optional_text(7)?,
            subject_claim: row.optional_text(8)?,
            jwks_json: row.optional_text(9)?,
            jwks_uri: row.optional_text(10)?,
        },
        created: Timestamp::from_micros(row.integer(11)?),
        updated: Timestamp::from_micros(row.integer(12)?),
    })
}

/// The owner column: `''` for the account's policies, else the service principal's id.
fn owner_of(policy: &FederationPolicy) -> &str {
    policy
        .service_principal
        .as_ref()
        .map_or("", PrincipalId::as_str)
}

/// The account's policies (`None`) or a service principal's, oldest first.
pub async fn policies_of<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    service_principal: Option<&PrincipalId>,
) -> ScimResult<Vec<FederationPolicy>> {
    let sql = format!(
        "SELECT {POLICY_COLUMNS} FROM federation_policies WHERE account_id = $1 AND owner = $2 \
         ORDER BY created, uid"
    );
    let owner = service_principal.map_or("", PrincipalId::as_str);
    let rows = session
        .query(&sql, params![account.as_str(), owner])
        .await?;
    rows.into_iter().map(policy_from_row).collect()
}

/// A policy by its uid.
pub async fn policy<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    uid: &str,
) -> ScimResult<Option<FederationPolicy>> {
    let sql = format!(
        "SELECT {POLICY_COLUMNS} FROM federation_policies WHERE account_id = $1 AND uid = $2"
    );
    query_opt(session, &sql, params![account.as_str(), uid])
        .await?
        .map(policy_from_row)
        .transpose()
}

/// Stores a new policy: a service principal's is written under a lock on the principal's row,
/// which must be a service principal; a `policy_id` its owner already has is a uniqueness
/// conflict, decided by the unique index (`federation_policies_by_owner`).
pub async fn create_policy<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    policy: &FederationPolicy,
) -> ScimResult<()> {
    if let Some(principal) = &policy.service_principal {
        transaction
            .lock(Lock::Principal(account, principal))
            .await?;
        let kind = query_opt(
            transaction,
            "SELECT kind FROM principals WHERE account_id = $1 AND id = $2",
            params![account.as_str(), principal.as_str()],
        )
        .await?
        .map(|mut row| row.text(0))
        .transpose()?;
        if kind.as_deref() != Some(PrincipalKind::ServicePrincipal.as_str()) {
            return Err(ScimError::NotFound(format!(
                "service principal {principal} not found"
            )));
        }
    }
    let taken = query_opt(
        transaction,
        "SELECT uid FROM federation_policies WHERE account_id = $1 AND owner = $2 \
         AND policy_id = $3",
        params![
            account.as_str(),
            owner_of(policy),
            policy.policy_id.as_str()
        ],
    )
    .await?;
    if taken.is_some() {
        return Err(ScimError::uniqueness(format!(
            "a federation policy with id {:?} already exists",
            policy.policy_id.escape_debug().to_string()
        )));
    }
    let audiences = serde_json::to_string(&policy.oidc.audiences).map_err(ScimError::internal)?;
    let oidc = &policy.oidc;
    transaction
        .execute(
            "INSERT INTO federation_policies \
             (account_id, uid, owner, policy_id, principal_id, description, issuer, audiences, \
              subject, subject_claim, jwks_json, jwks_uri, created, updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            params![
                account.as_str(),
                policy.uid.as_str(),
                owner_of(policy),
                policy.policy_id.as_str(),
                policy.service_principal.as_ref().map(PrincipalId::as_str),
                policy.description.as_deref(),
                oidc.issuer.as_str(),
                audiences.as_str(),
                oidc.subject.as_deref(),
                oidc.subject_claim.as_deref(),
                oidc.jwks_json.as_deref(),
                oidc.jwks_uri.as_deref(),
                policy.created.as_micros(),
                policy.updated.as_micros()
            ],
        )
        .await?;
    Ok(())
}

/// Replaces what may change of a policy (its description and OIDC settings, and when it was
/// updated), found by its uid.
pub async fn update_policy<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    policy: &FederationPolicy,
) -> ScimResult<()> {
    let audiences = serde_json::to_string(&policy.oidc.audiences).map_err(ScimError::internal)?;
    let oidc = &policy.oidc;
    let updated = transaction
        .execute(
            "UPDATE federation_policies SET description = $3, issuer = $4, audiences = $5, \
             subject = $6, subject_claim = $7, jwks_json = $8, jwks_uri = $9, updated = $10 \
             WHERE account_id = $1 AND uid = $2",
            params![
                account.as_str(),
                policy.uid.as_str(),
                policy.description.as_deref(),
                oidc.issuer.as_str(),
                audiences.as_str(),
                oidc.subject.as_deref(),
                oidc.subject_claim.as_deref(),
                oidc.jwks_json.as_deref(),
                oidc.jwks_uri.as_deref(),
                policy.updated.as_micros()
            ],
        )
        .await?;
    if updated == 0 {
        return Err(policy_not_found(&policy.policy_id));
    }
    Ok(())
}

fn policy_not_found(id: &str) -> ScimError {
    ScimError::NotFound(format!("federation policy {} not found", id.escape_debug()))
}

/// Deletes a policy by its uid, logged under the uid so that every node forgets it, and the
/// access tokens exchanged through it, before its next request.
pub async fn delete_policy<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    uid: &str,
    log: &mut Vec<LogEntry>,
) -> ScimResult<()> {
    let deleted = transaction
        .execute(
            "DELETE FROM federation_policies WHERE account_id = $1 AND uid = $2",
            params![account.as_str(), uid],
        )
        .await?;
    if deleted == 0 {
        return Err(policy_not_found(uid));
    }
    log.push((
        account.clone(),
        AccessEvent::TokenChanged {
            id: uid.to_string(),
        },
    ));
    Ok(())
}

/// Records an exchanged JWT once: a second record of the same one (on any node) inserts
/// nothing and is refused as a conflict. Records that expired by the exchange are deleted
/// first, so the table holds only JWTs that could still be presented.
pub async fn record_exchanged_token<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    token: &ExchangedToken,
) -> ScimResult<()> {
    transaction
        .execute(
            "DELETE FROM federation_replays WHERE account_id = $1 AND expires <= $2",
            params![account.as_str(), token.now.as_micros()],
        )
        .await?;
    let inserted = transaction
        .execute(
            "INSERT INTO federation_replays (account_id, issuer, token_id, expires) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            params![
                account.as_str(),
                token.issuer.as_str(),
                token.token_id.as_str(),
                token.expires.as_micros()
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(ScimError::Conflict(
            "this token was exchanged before".to_string(),
        ));
    }
    Ok(())
}
