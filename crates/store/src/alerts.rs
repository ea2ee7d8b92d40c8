//! Audit alerts as storage keeps them: an account's alert rules (their definition as JSON text,
//! and the webhook signing secret they were given), each account's evaluation cursor with the
//! lease that lets one node at a time move it, and the outbox of firings waiting to be (or
//! already) delivered. What the rules mean is the application's business (`scimitar_app::alerts`);
//! storage only keeps the rules that make it exactly-once: an outbox row is unique per rule and
//! triggering event, and the cursor moves only from where its holder read it.

use scimitar_domain::Timestamp;

/// A rule as stored. `definition` is the rule's validated JSON form, without its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredAlertRule {
    pub id: String,
    pub name: String,
    pub definition: String,
    /// The webhook's HMAC-SHA256 signing key, stored as given (the server must sign with it,
    /// so no digest will do), never logged and never returned after creation.
    pub secret: String,
    /// The trail's size when the rule was made: it applies to later events only. Set by the
    /// store on creation (whatever is given), kept on update.
    pub after_seq: u64,
    pub created: Timestamp,
    pub updated: Timestamp,
}

impl std::fmt::Debug for StoredAlertRule {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("StoredAlertRule")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("definition", &self.definition)
            .field("secret", &"<redacted>")
            .field("after_seq", &self.after_seq)
            .finish()
    }
}

/// Where an account's evaluation stands, and who may move it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertCursor {
    /// The last event evaluated (0: none).
    pub position: u64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
}

/// A firing to deliver: what a rule made of one event.
#[derive(Clone, PartialEq, Eq)]
pub struct AlertFiring {
    /// The delivery id (a UUID), sent as `X-Scimitar-Delivery` for receivers' deduplication.
    pub id: String,
    pub rule_id: String,
    pub event_seq: u64,
    pub url: String,
    /// `generic` or `slack`.
    pub format: String,
    pub secret: String,
    /// The exact body to post.
    pub body: String,
}

impl std::fmt::Debug for AlertFiring {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AlertFiring")
            .field("id", &self.id)
            .field("rule_id", &self.rule_id)
            .field("event_seq", &self.event_seq)
            .field("url", &self.url)
            .field("format", &self.format)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// An outbox row: a firing and its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertDelivery {
    pub account: scimitar_domain::AccountId,
    pub firing: AlertFiring,
    /// Attempts started so far.
    pub attempts: u32,
    /// When the next attempt may start (a claimed row's is pushed past its attempt's timeout).
    pub next_attempt: Timestamp,
    pub delivered: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created: Timestamp,
}

/// The writes of alerting, as one [`crate::Change::Alerts`] each.
#[derive(Debug, Clone)]
pub enum AlertChange {
    /// A new rule; refused as a conflict when the account has one with this id or name. Its
    /// `after_seq` is the trail's size as of this change, and the account's cursor is made
    /// there if it has none, so the rule sees every event after its creation.
    CreateRule(StoredAlertRule),
    /// Replaces a rule's name, definition and (when `secret` is `Some`) secret; refused as
    /// missing when there is no such rule.
    UpdateRule {
        id: String,
        name: String,
        definition: String,
        secret: Option<String>,
        updated: Timestamp,
    },
    /// Deletes a rule (its undelivered firings stay and are delivered); refused as missing.
    DeleteRule { id: String },
    /// Takes (or renews) the account's evaluation lease for `owner` until `until`, if it is
    /// free, expired at `now`, or already `owner`'s; makes the cursor at the trail's size if
    /// the account has none. Whether it was taken is read back ([`crate::Store::alert_cursor`]).
    TakeLease {
        owner: String,
        now: Timestamp,
        until: Timestamp,
    },
    /// Moves the cursor from `from` to `to` and adds the firings of the events between, only
    /// while `owner` holds the lease and the cursor is still at `from` (a conflict otherwise,
    /// which writes nothing). A firing already in the outbox (same rule and event) is skipped.
    Advance {
        owner: String,
        from: u64,
        to: u64,
        firings: Vec<AlertFiring>,
        now: Timestamp,
    },
    /// Starts an attempt at delivery `id`: counts it and pushes its next attempt to `until`,
    /// only if it is undelivered, due at `now` and still at `attempts` (a conflict otherwise:
    /// another node took it).
    ClaimDelivery {
        id: String,
        attempts: u32,
        now: Timestamp,
        until: Timestamp,
    },
    /// The receiver acknowledged delivery `id` (a 2xx) at `at`.
    Delivered { id: String, at: Timestamp },
    /// An attempt at delivery `id` failed; the next may start at `next_attempt`.
    DeliveryFailed {
        id: String,
        next_attempt: Timestamp,
        error: String,
    },
}
