//! The change feed: a long poll that answers as soon as this node has applied more of the
//! caller's account's changes than the caller has seen, so that a `scimitar sync watch` job
//! whose source is this deployment reads it again within moments of a change instead of
//! re-reading the whole directory on a timer (`docs/design/sync.md`).
//!
//! What it waits on is the account's change token (`docs/design/node-state.md`), the number
//! of its own access-log entries this node has applied: every write to a user, group,
//! service principal or membership adds one. The engine signals each time it applies entries,
//! whether they come from this node's own write or from the follower reading other nodes'
//! writes ([`AccessEngine::subscribe_changes`](crate::access::AccessEngine::subscribe_changes)),
//! so a waiter wakes on the change itself, not on a timer.

use crate::authority::Actor;
use crate::Services;
use scimitar_domain::credentials::TokenScope;
use scimitar_domain::{ScimError, ScimResult};
use std::time::Duration;

/// The longest one wait may last: a caller that wants longer asks again. Long enough that an
/// idle watcher costs a request a minute, short enough that proxies with idle timeouts of a
/// minute or more let it through.
pub const MAX_CHANGE_WAIT: Duration = Duration::from_secs(60);

impl Services {
    /// Waits until this node has applied more than `after` of the actor's account's changes,
    /// or `timeout` (at most [`MAX_CHANGE_WAIT`]) has passed, or `stop` completes (the server
    /// is shutting down: the caller is answered as at the timeout and asks again elsewhere or
    /// later), and returns the account's change token then: above `after` when something
    /// changed, else unchanged.
    ///
    /// Who may wait: an admin of the account, or of the workspace the actor acts in, and a
    /// token of the SCIM provisioning scope (what a sync job holds to read the directory
    /// anyway); anyone else is refused with 403. The token counts the caller's own account's
    /// changes only.
    pub async fn wait_for_changes(
        &self,
        actor: &Actor,
        after: u64,
        timeout: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) -> ScimResult<u64> {
        self.authorize_change_feed(actor).await?;
        let mut stop = std::pin::pin!(stop);
        let account = actor.account();
        // Subscribed before the token is read: a change applied between the read and the
        // wait still wakes it.
        let mut changed = self.access.subscribe_changes();
        let deadline = tokio::time::Instant::now() + timeout.min(MAX_CHANGE_WAIT);
        loop {
            let token = self.access.change_token(account);
            if token > after {
                return Ok(token);
            }
            tokio::select! {
                woken = tokio::time::timeout_at(deadline, changed.changed()) => match woken {
                    Ok(Ok(())) => continue,
                    // The deadline passed (or the engine is gone, which it is not while
                    // `self` lives): the token as it is.
                    Ok(Err(_)) | Err(_) => return Ok(self.access.change_token(account)),
                },
                () = &mut stop => return Ok(self.access.change_token(account)),
            }
        }
    }

    async fn authorize_change_feed(&self, actor: &Actor) -> ScimResult<()> {
        if actor
            .token()
            .is_some_and(|token| token.scope == TokenScope::Scim)
        {
            return Ok(());
        }
        self.access.catch_up_to_now(self.store.as_ref()).await?;
        let admin = self
            .access
            .read(actor.account(), |model| actor.is_admin_in(model))?;
        if admin {
            return Ok(());
        }
        Err(ScimError::Forbidden(format!(
            "only admins, and tokens of the scim scope, may follow the change feed: principal {} \
             is neither an admin of the account nor of the workspace it calls",
            actor.principal()
        )))
    }
}
