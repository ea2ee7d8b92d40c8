//! The answers of recent SQL statements, kept on this node so that
//! `GET /api/2.0/sql/statements/{id}` can return them as a polling client expects. A kept
//! answer belongs to the account and the workspace its statement ran in: from anywhere else
//! its id is unknown, and there only whoever ran it and the admins may read it again, since a
//! result can name grants and principals (of an isolated catalog, say) its reader may not see.

use crate::authority::Actor;
use crate::service::Services;
use scimitar_domain::{AccountId, PrincipalId, ScimError, ScimResult, WorkspaceId};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// How many answers a node keeps.
pub const KEPT_STATEMENTS: usize = 1024;

/// One kept answer, with where and by whom its statement ran.
struct KeptStatement {
    account: AccountId,
    /// `None` for a statement run at the account level.
    workspace: Option<WorkspaceId>,
    principal: PrincipalId,
    id: String,
    answer: Value,
}

/// The recent answers of this node, by statement id, oldest first.
#[derive(Clone, Default)]
pub struct RecentStatements {
    answers: Arc<Mutex<VecDeque<KeptStatement>>>,
}

impl RecentStatements {
    /// Keeps the answer to a statement `actor` ran, forgetting the oldest beyond
    /// [`KEPT_STATEMENTS`].
    pub fn keep(&self, actor: &Actor, id: &str, answer: &Value) {
        if let Ok(mut answers) = self.answers.lock() {
            if answers.len() >= KEPT_STATEMENTS {
                answers.pop_front();
            }
            answers.push_back(KeptStatement {
                account: actor.account().clone(),
                workspace: actor.workspace().cloned(),
                principal: actor.principal().clone(),
                id: id.to_string(),
                answer: answer.clone(),
            });
        }
    }

    /// The answer kept under `id`, for `actor`: one of another account or workspace, and
    /// someone else's to anyone but an admin where it ran, is answered exactly as an unknown
    /// id.
    pub async fn find(&self, services: &Services, actor: &Actor, id: &str) -> ScimResult<Value> {
        let unknown = || {
            ScimError::NotFound(format!(
                "statement {id} is not known to this server (answers are kept for the last \
                 {KEPT_STATEMENTS} statements)"
            ))
        };
        let found = self.answers.lock().ok().and_then(|answers| {
            answers
                .iter()
                .find(|kept| {
                    kept.account == *actor.account()
                        && kept.workspace.as_ref() == actor.workspace()
                        && kept.id == id
                })
                .map(|kept| (kept.principal.clone(), kept.answer.clone()))
        });
        let Some((runner, answer)) = found else {
            return Err(unknown());
        };
        if runner != *actor.principal() {
            match services.authorize_admin(actor).await {
                Ok(_) => {}
                Err(ScimError::Forbidden(_)) => return Err(unknown()),
                Err(other) => return Err(other),
            }
        }
        Ok(answer)
    }
}
