//! OAuth secrets and signing keys in SQL, written once for both backends: the reads, and what
//! [`Change::CreateOAuthSecret`], [`Change::DeleteOAuthSecret`] and [`Change::AddSigningKey`]
//! mean.
//!
//! [`Change::CreateOAuthSecret`]: crate::Change::CreateOAuthSecret
//! [`Change::DeleteOAuthSecret`]: crate::Change::DeleteOAuthSecret
//! [`Change::AddSigningKey`]: crate::Change::AddSigningKey

use crate::governance::AccessEvent;
use crate::oauth::{OAuthSecret, SigningKey, StoredOAuthSecret};
use crate::sql::transaction::{params, query_one, Lock, LogEntry, SqlRow, SqlTransaction};
use scimitar_domain::{AccountId, PrincipalId, PrincipalKind, ScimError, ScimResult, Timestamp};

const SECRET_COLUMNS: &str =
    "id, account_id, principal_id, scopes, created, expires, secret_digest";

fn secret_from_row(mut row: SqlRow) -> ScimResult<StoredOAuthSecret> {
    let scopes: Vec<String> = serde_json::from_str(&row.text(3)?).map_err(ScimError::internal)?;
    Ok(StoredOAuthSecret {
        secret: OAuthSecret {
            id: row.text(0)?,
            account: AccountId::new(row.text(1)?),
            principal: PrincipalId::new(row.text(2)?),
            scopes,
            created: Timestamp::from_micros(row.integer(4)?),
            expires: row.optional_integer(5)?.map(Timestamp::from_micros),
        },
        digest: row.text(6)?,
    })
}

/// A service principal's secrets, oldest first (at most a handful).
pub async fn secrets_of<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
    principal: &PrincipalId,
) -> ScimResult<Vec<StoredOAuthSecret>> {
    let sql = format!(
        "SELECT {SECRET_COLUMNS} FROM oauth_secrets WHERE account_id = $1 AND principal_id = $2 \
         ORDER BY created, id"
    );
    let rows = session
        .query(&sql, params![account.as_str(), principal.as_str()])
        .await?;
    rows.into_iter().map(secret_from_row).collect()
}

/// An account's signing keys, newest first.
pub async fn signing_keys<T: SqlTransaction>(
    session: &mut T,
    account: &AccountId,
) -> ScimResult<Vec<SigningKey>> {
    let rows = session
        .query(
            "SELECT account_id, kid, private_key, created, signs_until, remove_after \
             FROM oauth_signing_keys WHERE account_id = $1 ORDER BY created DESC, kid",
            params![account.as_str()],
        )
        .await?;
    rows.into_iter()
        .map(|mut row| {
            Ok(SigningKey {
                account: AccountId::new(row.text(0)?),
                kid: row.text(1)?,
                private_key: row.text(2)?,
                created: Timestamp::from_micros(row.integer(3)?),
                signs_until: Timestamp::from_micros(row.integer(4)?),
                remove_after: Timestamp::from_micros(row.integer(5)?),
            })
        })
        .collect()
}

/// Stores a secret for a service principal that has fewer than `limit`. The principal's row
/// is locked first, so that two nodes adding the last allowed secret at once make one.
pub async fn create_secret<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    secret: &OAuthSecret,
    digest: &str,
    limit: usize,
) -> ScimResult<()> {
    transaction
        .lock(Lock::Principal(account, &secret.principal))
        .await?;
    let kind = crate::sql::transaction::query_opt(
        transaction,
        "SELECT kind FROM principals WHERE account_id = $1 AND id = $2",
        params![account.as_str(), secret.principal.as_str()],
    )
    .await?
    .map(|mut row| row.text(0))
    .transpose()?;
    if kind.as_deref() != Some(PrincipalKind::ServicePrincipal.as_str()) {
        return Err(ScimError::NotFound(format!(
            "service principal {} not found",
            secret.principal
        )));
    }
    let count = query_one(
        transaction,
        "SELECT COUNT(*) FROM oauth_secrets WHERE account_id = $1 AND principal_id = $2",
        params![account.as_str(), secret.principal.as_str()],
    )
    .await?
    .integer(0)?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= limit {
        return Err(ScimError::Conflict(format!(
            "service principal {} already has {limit} OAuth secrets, the most it may have: \
             delete one first",
            secret.principal
        )));
    }
    let scopes = serde_json::to_string(&secret.scopes).map_err(ScimError::internal)?;
    transaction
        .execute(
            "INSERT INTO oauth_secrets \
             (account_id, id, principal_id, secret_digest, scopes, created, expires) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            params![
                account.as_str(),
                secret.id.as_str(),
                secret.principal.as_str(),
                digest,
                scopes.as_str(),
                secret.created.as_micros(),
                secret.expires.map(Timestamp::as_micros)
            ],
        )
        .await?;
    Ok(())
}

/// Deletes a secret of a service principal, logged (as a credential that changed) so that
/// every node forgets it, and the tokens minted from it, before its next request.
pub async fn delete_secret<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    principal: &PrincipalId,
    id: &str,
    log: &mut Vec<LogEntry>,
) -> ScimResult<()> {
    let deleted = transaction
        .execute(
            "DELETE FROM oauth_secrets WHERE account_id = $1 AND principal_id = $2 AND id = $3",
            params![account.as_str(), principal.as_str(), id],
        )
        .await?;
    if deleted == 0 {
        return Err(ScimError::NotFound(format!(
            "secret {} does not exist",
            id.escape_debug()
        )));
    }
    log.push((
        account.clone(),
        AccessEvent::TokenChanged { id: id.to_string() },
    ));
    Ok(())
}

/// Deletes every secret of a principal being deactivated, in its transaction, logged one by
/// one: reactivating it later must not bring back secrets handed out before.
pub async fn delete_secrets_of<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    principal: &PrincipalId,
    log: &mut Vec<LogEntry>,
) -> ScimResult<()> {
    let ids: Vec<String> = transaction
        .query(
            "SELECT id FROM oauth_secrets WHERE account_id = $1 AND principal_id = $2",
            params![account.as_str(), principal.as_str()],
        )
        .await?
        .into_iter()
        .map(|mut row| row.text(0))
        .collect::<ScimResult<_>>()?;
    for id in ids {
        delete_secret(transaction, account, principal, &id, log).await?;
    }
    Ok(())
}

/// Stores a new signing key and deletes the account's keys whose tokens have all expired by
/// the new key's creation. Not logged: a node meeting an unknown key id reads the keys again.
pub async fn add_signing_key<T: SqlTransaction>(
    transaction: &mut T,
    account: &AccountId,
    key: &SigningKey,
) -> ScimResult<()> {
    transaction
        .execute(
            "DELETE FROM oauth_signing_keys WHERE account_id = $1 AND remove_after <= $2",
            params![account.as_str(), key.created.as_micros()],
        )
        .await?;
    transaction
        .execute(
            "INSERT INTO oauth_signing_keys \
             (account_id, kid, private_key, created, signs_until, remove_after) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            params![
                account.as_str(),
                key.kid.as_str(),
                key.private_key.as_str(),
                key.created.as_micros(),
                key.signs_until.as_micros(),
                key.remove_after.as_micros()
            ],
        )
        .await?;
    Ok(())
}
