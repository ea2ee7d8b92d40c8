//! Audit alerts: rules over an account's committed audit events, their evaluation in commit
//! order from a cursor kept in the database, and their delivery to webhooks through an outbox
//! in the same database. See `docs/design/alerts.md`.
//!
//! # Flow
//! 1. Rules come from the API (stored per account, [`Services::create_alert_rule`] and the rest,
//!    account admins only, audited) and from the config file ([`AlertRule::from_config`],
//!    applying to every account).
//! 2. [`Services::evaluate_alerts`] takes each account's lease (one node at a time), reads the
//!    events after its cursor, decides which rules fire on which event, and writes the firings
//!    to the outbox and moves the cursor in one transaction ([`AlertChange::Advance`]): the
//!    cursor moves only from where it was read, and a firing is unique per rule and event.
//! 3. [`Services::deliver_alerts`] claims due outbox rows one by one and posts them through a
//!    [`WebhookPoster`] the HTTP edge provides, signed ([`signature`]); a 2xx marks the row
//!    delivered, anything else schedules a retry with exponential back-off and jitter.
//!
//! Window rules (mass deprovisioning, authentication failures) keep no state in memory: each
//! candidate event re-reads its window from the trail, so a restart or another node decides
//! the same way.

use crate::authority::{is_admin, not_an_admin, Actor};
use crate::Services;
use hmac::{Hmac, KeyInit, Mac};
use scimitar_domain::ids::lower_hex;
use scimitar_domain::{AccountId, ScimError, ScimResult, Timestamp};
use scimitar_scim::{CompValue, CompareOp, Filter};
pub use scimitar_store::alerts::AlertDelivery;
use scimitar_store::alerts::{AlertChange, AlertFiring, StoredAlertRule};
use scimitar_store::{AuditEvent, Change};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The most rules an account may hold: each is evaluated on every event.
pub const MAX_RULES_PER_ACCOUNT: usize = 100;
/// The most events a window rule re-reads for one decision.
const MAX_WINDOW_EVENTS: usize = 10_000;
/// Events read per evaluation step.
const EVALUATION_BATCH: usize = 500;
/// The longest accepted webhook URL, name, pattern or filter.
const MAX_TEXT: usize = 2_048;

/// A rule as the API and the config file write it. `kind` selects which other fields apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleSpec {
    pub name: String,
    /// `admins_group_change`, `securable_change`, `mass_deprovisioning`, `token_expiry`,
    /// `authentication_failures` or `event_filter`.
    pub kind: String,
    /// `securable_change`: a glob over the securable's full name (`*` any run of characters,
    /// `?` one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Window rules: fire when more than this many events fall in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u64>,
    /// Window rules: the window's length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
    /// `token_expiry`: also fire for a token whose lifetime is shorter than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_lifetime_seconds: Option<u64>,
    /// `event_filter`: a SCIM filter expression over the event's fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    pub webhook: WebhookSpec,
}

/// Where a rule's firings go. Its `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    pub url: String,
    /// `generic` (the default) or `slack`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The HMAC-SHA256 signing secret; made by the server when not given. Never stored in
    /// the rule's definition and never rendered.
    #[serde(default, skip_serializing)]
    pub secret: Option<String>,
}

impl std::fmt::Debug for WebhookSpec {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WebhookSpec")
            .field("url", &self.url)
            .field("format", &self.format)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What a rule watches for, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// A membership or attribute change of a group that makes admins: the account's `admins`,
    /// or a group that reaches it or a workspace's `ADMIN` assignment through nesting.
    AdminsGroupChange,
    /// A grant, revoke, or owner change on a securable whose full name matches `pattern`.
    SecurableChange { pattern: String },
    /// More than `threshold` principal deletions or deactivations within `window` seconds.
    MassDeprovisioning { threshold: u64, window: u64 },
    /// A token created without expiry, or living less than `min_lifetime` seconds.
    TokenExpiry { min_lifetime: u64 },
    /// More than `threshold` authentication failures (events answered 401) from one source
    /// address within `window` seconds.
    AuthenticationFailures { threshold: u64, window: u64 },
    /// Any event the filter matches.
    EventFilter(Filter),
}

/// The payload shape a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    Generic,
    Slack,
}

impl WebhookFormat {
    fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Generic => "generic",
            WebhookFormat::Slack => "slack",
        }
    }
}

/// A validated rule.
#[derive(Clone)]
pub struct AlertRule {
    pub id: String,
    pub spec: AlertRuleSpec,
    pub kind: RuleKind,
    pub format: WebhookFormat,
    secret: String,
    /// It applies to events after this position only.
    after_seq: u64,
    /// From the config file rather than the API.
    configured: bool,
    created: Option<Timestamp>,
    updated: Option<Timestamp>,
}

impl std::fmt::Debug for AlertRule {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AlertRule")
            .field("id", &self.id)
            .field("spec", &self.spec)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::invalid_value(detail)
}

fn bounded(text: &str, what: &str) -> ScimResult<()> {
    if text.trim().is_empty() {
        return Err(invalid(format!("`{what}` must not be empty")));
    }
    if text.len() > MAX_TEXT {
        return Err(invalid(format!("`{what}` is longer than {MAX_TEXT} bytes")));
    }
    Ok(())
}

/// Checks a spec into a kind and format; a field of another kind is refused, so a misspelt
/// kind cannot quietly drop a threshold.
fn validate(spec: &AlertRuleSpec) -> ScimResult<(RuleKind, WebhookFormat)> {
    bounded(&spec.name, "name")?;
    bounded(&spec.webhook.url, "webhook.url")?;
    let url = spec.webhook.url.as_str();
    let has_scheme = url.starts_with("http://") || url.starts_with("https://");
    if !has_scheme || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "`webhook.url` must be an http:// or https:// URL without spaces",
        ));
    }
    let format = match spec.webhook.format.as_deref() {
        None | Some("generic") => WebhookFormat::Generic,
        Some("slack") => WebhookFormat::Slack,
        Some(other) => {
            return Err(invalid(format!(
                "`webhook.format` {other:?} is not `generic` or `slack`"
            )))
        }
    };
    if let Some(secret) = &spec.webhook.secret {
        if secret.len() < 16 || secret.len() > 512 {
            return Err(invalid(
                "`webhook.secret` must be between 16 and 512 bytes long",
            ));
        }
    }
    let window = |spec: &AlertRuleSpec| -> ScimResult<(u64, u64)> {
        let threshold = spec
            .threshold
            .ok_or_else(|| invalid(format!("a `{}` rule needs `threshold`", spec.kind)))?;
        let window = spec
            .window_seconds
            .ok_or_else(|| invalid(format!("a `{}` rule needs `window_seconds`", spec.kind)))?;
        if window == 0 || window > 31 * 86_400 {
            return Err(invalid(
                "`window_seconds` must be between 1 and 2678400 (31 days)",
            ));
        }
        if threshold > 1_000_000 {
            return Err(invalid("`threshold` must be at most 1000000"));
        }
        Ok((threshold, window))
    };
    let allowed: &[&str];
    let kind = match spec.kind.as_str() {
        "admins_group_change" => {
            allowed = &[];
            RuleKind::AdminsGroupChange
        }
        "securable_change" => {
            allowed = &["pattern"];
            let pattern = spec
                .pattern
                .clone()
                .ok_or_else(|| invalid("a `securable_change` rule needs `pattern`"))?;
            bounded(&pattern, "pattern")?;
            RuleKind::SecurableChange { pattern }
        }
        "mass_deprovisioning" => {
            allowed = &["threshold", "window_seconds"];
            let (threshold, window) = window(spec)?;
            RuleKind::MassDeprovisioning { threshold, window }
        }
        "token_expiry" => {
            allowed = &["min_lifetime_seconds"];
            RuleKind::TokenExpiry {
                min_lifetime: spec.min_lifetime_seconds.unwrap_or(0),
            }
        }
        "authentication_failures" => {
            allowed = &["threshold", "window_seconds"];
            let (threshold, window) = window(spec)?;
            RuleKind::AuthenticationFailures { threshold, window }
        }
        "event_filter" => {
            allowed = &["filter"];
            let text = spec
                .filter
                .as_deref()
                .ok_or_else(|| invalid("an `event_filter` rule needs `filter`"))?;
            bounded(text, "filter")?;
            let filter = scimitar_scim::parse_filter(text)
                .map_err(|error| ScimError::invalid_filter(format!("invalid filter: {error}")))?;
            RuleKind::EventFilter(filter)
        }
        other => {
            return Err(invalid(format!(
                "unknown alert rule kind {other:?}: use admins_group_change, securable_change, \
                 mass_deprovisioning, token_expiry, authentication_failures or event_filter"
            )))
        }
    };
    let given = [
        ("pattern", spec.pattern.is_some()),
        ("threshold", spec.threshold.is_some()),
        ("window_seconds", spec.window_seconds.is_some()),
        ("min_lifetime_seconds", spec.min_lifetime_seconds.is_some()),
        ("filter", spec.filter.is_some()),
    ];
    for (field, present) in given {
        if present && !allowed.contains(&field) {
            return Err(invalid(format!(
                "`{field}` does not apply to a `{}` rule",
                spec.kind
            )));
        }
    }
    Ok((kind, format))
}

impl AlertRule {
    /// A rule of the config file, applying to every account from the first evaluation on.
    /// Its id is `config:<name>`; its secret is required (nobody could read a made one).
    pub fn from_config(spec: AlertRuleSpec) -> ScimResult<AlertRule> {
        let (kind, format) = validate(&spec)?;
        let secret = spec.webhook.secret.clone().ok_or_else(|| {
            invalid(format!(
                "alert rule {:?}: a configured rule needs `webhook.secret`",
                spec.name
            ))
        })?;
        Ok(AlertRule {
            id: format!("config:{}", spec.name),
            spec: AlertRuleSpec {
                webhook: WebhookSpec {
                    secret: None,
                    ..spec.webhook.clone()
                },
                ..spec
            },
            kind,
            format,
            secret,
            after_seq: 0,
            configured: true,
            created: None,
            updated: None,
        })
    }

    fn from_stored(stored: StoredAlertRule) -> ScimResult<AlertRule> {
        let spec: AlertRuleSpec = serde_json::from_str(&stored.definition)
            .map_err(|error| ScimError::internal_caused_by("a stored alert rule", error))?;
        let (kind, format) = validate(&spec)?;
        Ok(AlertRule {
            id: stored.id,
            spec,
            kind,
            format,
            secret: stored.secret,
            after_seq: stored.after_seq,
            configured: false,
            created: Some(stored.created),
            updated: Some(stored.updated),
        })
    }

    /// The rule as the API shows it: its definition and where it came from, never its secret.
    pub fn to_json(&self) -> Value {
        let mut value = serde_json::to_value(&self.spec).unwrap_or(Value::Null);
        value["id"] = json!(self.id);
        value["source"] = json!(if self.configured { "config" } else { "api" });
        if let Some(created) = self.created {
            value["created_time"] = json!(created.to_rfc3339());
        }
        if let Some(updated) = self.updated {
            value["updated_time"] = json!(updated.to_rfc3339());
        }
        value
    }
}

/// A created rule, with the secret the server made for it when none was given (shown once).
#[derive(Debug, Clone)]
pub struct CreatedAlertRule {
    pub rule: AlertRule,
    pub generated_secret: Option<String>,
}

impl CreatedAlertRule {
    pub fn to_json(&self) -> Value {
        let mut value = self.rule.to_json();
        if let Some(secret) = &self.generated_secret {
            value["webhook"]["secret"] = json!(secret);
        }
        value
    }
}

/// The definition stored for a spec: its JSON without the secret.
fn definition(spec: &AlertRuleSpec) -> ScimResult<String> {
    serde_json::to_string(spec)
        .map_err(|error| ScimError::internal_caused_by("an alert rule as JSON", error))
}

impl Services {
    /// Rules are the account's business alone, and only its admins'.
    async fn authorize_alert_admin(&self, actor: &Actor) -> ScimResult<()> {
        self.access.catch_up_to_now(self.store.as_ref()).await?;
        let admin = self
            .access
            .read(actor.account(), |model| is_admin(model, actor.principal()))?;
        if !admin {
            return Err(not_an_admin(actor, "manage the account's alert rules"));
        }
        Ok(())
    }

    async fn stored_alert_rules(&self, account: &AccountId) -> ScimResult<Vec<AlertRule>> {
        self.store
            .alert_rules(account)
            .await?
            .into_iter()
            .map(AlertRule::from_stored)
            .collect()
    }

    /// Creates a rule of the caller's account; it applies to events after its creation.
    pub async fn create_alert_rule(
        &self,
        actor: &Actor,
        spec: AlertRuleSpec,
    ) -> ScimResult<CreatedAlertRule> {
        self.authorize_alert_admin(actor).await?;
        validate(&spec)?;
        let account = actor.account();
        if self.store.alert_rules(account).await?.len() >= MAX_RULES_PER_ACCOUNT {
            return Err(invalid(format!(
                "an account holds at most {MAX_RULES_PER_ACCOUNT} alert rules"
            )));
        }
        let generated_secret = match spec.webhook.secret {
            Some(_) => None,
            None => Some(format!("whsec_{}", lower_hex(&self.ids.random_bytes(32)))),
        };
        let secret = spec
            .webhook
            .secret
            .clone()
            .or_else(|| generated_secret.clone())
            .unwrap_or_default();
        let now = self.clock.now();
        let id = self.ids.uuid();
        let stored = StoredAlertRule {
            id: id.clone(),
            name: spec.name.clone(),
            definition: definition(&spec)?,
            secret,
            after_seq: 0,
            created: now,
            updated: now,
        };
        self.commit(account, Change::Alerts(AlertChange::CreateRule(stored)))
            .await?;
        let rule = self.get_alert_rule_unchecked(account, &id).await?;
        Ok(CreatedAlertRule {
            rule,
            generated_secret,
        })
    }

    async fn get_alert_rule_unchecked(
        &self,
        account: &AccountId,
        id: &str,
    ) -> ScimResult<AlertRule> {
        self.stored_alert_rules(account)
            .await?
            .into_iter()
            .find(|rule| rule.id == id)
            .ok_or_else(|| ScimError::NotFound(format!("alert rule {id} not found")))
    }

    /// The account's rules, then the config file's (which apply to every account).
    pub async fn list_alert_rules(
        &self,
        actor: &Actor,
        configured: &[AlertRule],
    ) -> ScimResult<Vec<AlertRule>> {
        self.authorize_alert_admin(actor).await?;
        let mut rules = self.stored_alert_rules(actor.account()).await?;
        rules.extend(configured.iter().cloned());
        Ok(rules)
    }

    pub async fn get_alert_rule(
        &self,
        actor: &Actor,
        id: &str,
        configured: &[AlertRule],
    ) -> ScimResult<AlertRule> {
        self.authorize_alert_admin(actor).await?;
        if let Some(rule) = configured.iter().find(|rule| rule.id == id) {
            return Ok(rule.clone());
        }
        self.get_alert_rule_unchecked(actor.account(), id).await
    }

    /// Replaces a rule's definition; its secret is kept unless a new one is given.
    pub async fn update_alert_rule(
        &self,
        actor: &Actor,
        id: &str,
        spec: AlertRuleSpec,
    ) -> ScimResult<AlertRule> {
        self.authorize_alert_admin(actor).await?;
        if id.starts_with("config:") {
            return Err(invalid(
                "rules from the config file are changed in the config file",
            ));
        }
        validate(&spec)?;
        let change = AlertChange::UpdateRule {
            id: id.to_string(),
            name: spec.name.clone(),
            definition: definition(&spec)?,
            secret: spec.webhook.secret.clone(),
            updated: self.clock.now(),
        };
        self.commit(actor.account(), Change::Alerts(change)).await?;
        self.get_alert_rule_unchecked(actor.account(), id).await
    }

    pub async fn delete_alert_rule(&self, actor: &Actor, id: &str) -> ScimResult<()> {
        self.authorize_alert_admin(actor).await?;
        if id.starts_with("config:") {
            return Err(invalid(
                "rules from the config file are removed from the config file",
            ));
        }
        let change = AlertChange::DeleteRule { id: id.to_string() };
        self.commit(actor.account(), Change::Alerts(change)).await
    }
}

/// How a node evaluates and delivers alerts.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// Rules of the config file, applying to every account.
    pub rules: Vec<AlertRule>,
    /// How often the node looks for new events and due deliveries.
    pub poll_interval: Duration,
    /// How long an account's evaluation lease lasts without renewal.
    pub lease: Duration,
    /// The outbound POST's whole timeout.
    pub timeout: Duration,
    /// The first retry's delay; each later one doubles, up to `retry_max`, with jitter.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Whether this node delivers (a node may evaluate only).
    pub deliver: bool,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            rules: Vec::new(),
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            deliver: true,
        }
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

fn plus(time: Timestamp, duration: Duration) -> Timestamp {
    Timestamp::from_micros(time.as_micros().saturating_add(micros(duration)))
}

/// `*` matches any run of characters (dots included), `?` one; everything else itself,
/// ignoring ASCII case (securable names are case-insensitive).
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let text: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// The values a filter's attribute path names in `object`: keys matched ignoring case, and a
/// multi-valued attribute (an array) giving each of its elements.
fn path_values<'a>(
    object: &'a Map<String, Value>,
    name: &str,
    sub: Option<&str>,
) -> Vec<&'a Value> {
    let get = |object: &'a Map<String, Value>, key: &str| {
        object
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(key))
            .map(|(_, value)| value)
    };
    let spread = |value: &'a Value| -> Vec<&'a Value> {
        match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        }
    };
    let Some(top) = get(object, name) else {
        return Vec::new();
    };
    match sub {
        None => spread(top),
        Some(sub) => spread(top)
            .into_iter()
            .filter_map(|item| item.as_object().and_then(|object| get(object, sub)))
            .flat_map(spread)
            .collect(),
    }
}

fn compare(found: &Value, op: CompareOp, wanted: &CompValue) -> bool {
    use std::cmp::Ordering;
    let ordering = match (found, wanted) {
        (Value::String(found), CompValue::String(wanted)) => {
            match op {
                CompareOp::Co => return found.contains(wanted.as_str()),
                CompareOp::Sw => return found.starts_with(wanted.as_str()),
                CompareOp::Ew => return found.ends_with(wanted.as_str()),
                _ => {}
            }
            found.as_str().cmp(wanted.as_str())
        }
        (Value::Number(found), CompValue::Number(wanted)) => {
            match (found.as_f64(), wanted.as_f64()) {
                (Some(found), Some(wanted)) => match found.partial_cmp(&wanted) {
                    Some(ordering) => ordering,
                    None => return false,
                },
                _ => return false,
            }
        }
        (Value::Bool(found), CompValue::Bool(wanted)) => found.cmp(wanted),
        (Value::Null, CompValue::Null) => Ordering::Equal,
        _ => return op == CompareOp::Ne,
    };
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

/// Evaluates a SCIM filter over an event's JSON (its stored field names: `action_name`,
/// `service_name`, `user_identity.principal_id`, `response.status_code`, `targets.type`,
/// ...). Strings compare exactly; `ne` on an absent attribute matches, `eq null` too.
pub fn filter_matches(filter: &Filter, object: &Map<String, Value>) -> bool {
    match filter {
        Filter::Present(path) => path_values(object, &path.name, path.sub_attr.as_deref())
            .iter()
            .any(|value| !value.is_null()),
        Filter::Compare(path, op, wanted) => {
            let values = path_values(object, &path.name, path.sub_attr.as_deref());
            if values.is_empty() {
                return matches!(
                    (op, wanted),
                    (CompareOp::Ne, _) | (CompareOp::Eq, CompValue::Null)
                );
            }
            values.iter().any(|value| compare(value, *op, wanted))
        }
        Filter::ValuePath(path, inner) => {
            path_values(object, &path.name, None).iter().any(|item| {
                item.as_object()
                    .is_some_and(|item| filter_matches(inner, item))
            })
        }
        Filter::And(left, right) => filter_matches(left, object) && filter_matches(right, object),
        Filter::Or(left, right) => filter_matches(left, object) || filter_matches(right, object),
        Filter::Not(inner) => !filter_matches(inner, object),
    }
}

/// Whether an event deletes or deactivates a principal.
fn deprovisions(event: &AuditEvent) -> bool {
    match event.action_name.as_str() {
        "delete" | "removeGroup" => true,
        _ => event.targets.iter().any(|target| {
            target.modified_properties.iter().any(|property| {
                property.display_name == "active" && property.new_value == Value::Bool(false)
            })
        }),
    }
}

/// Whether an event is a refused authentication (401), and from where.
fn authentication_failure(event: &AuditEvent) -> Option<&str> {
    (event.response.status_code == 401)
        .then_some(event.source_ip_address.as_deref())
        .flatten()
}

/// The group whose membership or attributes an event changed, if any.
fn changed_group(event: &AuditEvent) -> Option<String> {
    match event.action_name.as_str() {
        "addPrincipalToGroup" | "removePrincipalFromGroup" | "updateGroup" => event
            .targets
            .iter()
            .find(|target| target.kind == "Group")
            .map(|target| target.id.clone()),
        _ => None,
    }
}

/// The securables an event grants, revokes or changes the owner of.
fn securables_changed(event: &AuditEvent) -> Vec<&str> {
    let relevant = match event.action_name.as_str() {
        "updatePermissions" | "changeSecurableOwner" | "changePermissions" => true,
        "batchUpdate" => event
            .request_params
            .get("changes")
            .and_then(Value::as_array)
            .is_some_and(|changes| {
                changes.iter().any(|change| {
                    change.get("principal").is_some()
                        || change.get("event").and_then(Value::as_str) == Some("set_owner")
                })
            }),
        _ => false,
    };
    if !relevant {
        return Vec::new();
    }
    event
        .targets
        .iter()
        .filter(|target| target.kind != "Workspace")
        .map(|target| target.id.as_str())
        .collect()
}

/// The summary line of a firing.
fn describe_event(event: &AuditEvent) -> String {
    let who = event
        .user_identity
        .as_ref()
        .map_or("nobody known", |identity| identity.principal_id.as_str());
    let targets: Vec<&str> = event
        .targets
        .iter()
        .map(|target| target.id.as_str())
        .collect();
    let from = event
        .source_ip_address
        .as_deref()
        .unwrap_or("unknown address");
    format!(
        "{} {} by {} from {} (event {}, targets: {})",
        event.service_name,
        event.action_name,
        who,
        from,
        event.seq,
        if targets.is_empty() {
            "none".to_string()
        } else {
            targets.join(", ")
        }
    )
}

impl Services {
    /// Whether `group` makes admins: it is `admins`, or it (or a group it is in, at any depth)
    /// is `admins` or is assigned `ADMIN` in a workspace. Read from the engine as of now.
    async fn makes_admins(&self, account: &AccountId, group: &str) -> ScimResult<bool> {
        self.access.catch_up_to_now(self.store.as_ref()).await?;
        let workspaces = self.store.workspaces(account).await?;
        let group = scimitar_domain::PrincipalId::new(group);
        self.access.read(account, |model| {
            let admins = model.admins_group().map(|admins| admins.id);
            if admins.as_ref() == Some(&group) {
                return true;
            }
            let ancestors = model.groups_of(&group).unwrap_or_default();
            if ancestors
                .iter()
                .any(|membership| Some(&membership.group.id) == admins.as_ref())
            {
                return true;
            }
            workspaces
                .iter()
                .any(|workspace| model.admin_assignment(&workspace.id, &group).is_some())
        })
    }

    /// How many events of the window ending at `event` (its time minus `window` seconds, up
    /// to and including it) `counts`, re-read from the trail.
    async fn count_in_window(
        &self,
        account: &AccountId,
        event: &AuditEvent,
        window: u64,
        counts: impl Fn(&AuditEvent) -> bool,
    ) -> ScimResult<u64> {
        let Some(time) = event
            .event_time
            .as_deref()
            .and_then(Timestamp::parse_rfc3339)
        else {
            return Ok(0);
        };
        let window = i64::try_from(window)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000);
        let since = Timestamp::from_micros(time.as_micros().saturating_sub(window));
        let stored = self
            .store
            .alert_window(account, since, event.seq, MAX_WINDOW_EVENTS)
            .await?;
        let mut count = 0;
        for stored in stored {
            let other: AuditEvent = serde_json::from_str(&stored.text)
                .map_err(|error| ScimError::internal_caused_by("a stored audit event", error))?;
            if counts(&other) {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Whether `rule` fires on `event`, and why (the summary sent).
    async fn fires(
        &self,
        account: &AccountId,
        rule: &AlertRule,
        event: &AuditEvent,
        text: &str,
    ) -> ScimResult<Option<String>> {
        Ok(match &rule.kind {
            RuleKind::AdminsGroupChange => match changed_group(event) {
                Some(group) if self.makes_admins(account, &group).await? => {
                    Some(format!("a group that makes admins ({group}) changed"))
                }
                _ => None,
            },
            RuleKind::SecurableChange { pattern } => securables_changed(event)
                .into_iter()
                .find(|name| glob_matches(pattern, name))
                .map(|name| format!("grants or owner of {name} changed")),
            RuleKind::TokenExpiry { min_lifetime } => {
                if !matches!(
                    event.action_name.as_str(),
                    "generateDbToken" | "rotateDbToken"
                ) {
                    return Ok(None);
                }
                let expires = event.request_params.get("expires").and_then(Value::as_str);
                let created = event
                    .event_time
                    .as_deref()
                    .and_then(Timestamp::parse_rfc3339);
                match (expires.and_then(Timestamp::parse_rfc3339), created) {
                    (None, _) => Some("a token was created without expiry".to_string()),
                    (Some(expires), Some(created))
                        if expires.as_micros() - created.as_micros()
                            < i64::try_from(*min_lifetime)
                                .unwrap_or(i64::MAX)
                                .saturating_mul(1_000_000) =>
                    {
                        Some(format!(
                            "a token was created expiring in less than {min_lifetime} seconds"
                        ))
                    }
                    _ => None,
                }
            }
            RuleKind::MassDeprovisioning { threshold, window } => {
                if !deprovisions(event) {
                    return Ok(None);
                }
                let count = self
                    .count_in_window(account, event, *window, deprovisions)
                    .await?;
                // Fires once as the count crosses the threshold, not on every event above it.
                (count == threshold + 1).then(|| {
                    format!(
                        "more than {threshold} deletions or deactivations within {window} seconds"
                    )
                })
            }
            RuleKind::AuthenticationFailures { threshold, window } => {
                let Some(source) = authentication_failure(event) else {
                    return Ok(None);
                };
                let count = self
                    .count_in_window(account, event, *window, |other| {
                        authentication_failure(other) == Some(source)
                    })
                    .await?;
                (count == threshold + 1).then(|| {
                    format!(
                        "more than {threshold} authentication failures from {source} within \
                         {window} seconds"
                    )
                })
            }
            RuleKind::EventFilter(filter) => {
                let object: Map<String, Value> = serde_json::from_str(text).map_err(|error| {
                    ScimError::internal_caused_by("a stored audit event", error)
                })?;
                filter_matches(filter, &object).then(|| "an event matched the filter".to_string())
            }
        })
    }

    fn firing(
        &self,
        account: &AccountId,
        rule: &AlertRule,
        event: &AuditEvent,
        reason: &str,
    ) -> ScimResult<AlertFiring> {
        let id = self.ids.uuid();
        let summary = format!("{reason}: {}", describe_event(event));
        let body = match rule.format {
            WebhookFormat::Generic => json!({
                "delivery_id": id,
                "account_id": account.as_str(),
                "rule": {"id": rule.id, "name": rule.spec.name, "kind": rule.spec.kind},
                "summary": summary,
                "event": scimitar_store::audit::databricks_row(event),
            }),
            WebhookFormat::Slack => json!({
                "text": format!(
                    "Scimitar alert \"{}\" (account {}): {summary}",
                    rule.spec.name,
                    account.as_str()
                ),
            }),
        };
        Ok(AlertFiring {
            id,
            rule_id: rule.id.clone(),
            event_seq: event.seq,
            url: rule.spec.webhook.url.clone(),
            format: rule.format.as_str().to_string(),
            secret: rule.secret.clone(),
            body: serde_json::to_string(&body)
                .map_err(|error| ScimError::internal_caused_by("an alert as JSON", error))?,
        })
    }

    /// One evaluation pass over every account with rules: for each whose lease this node
    /// (`node`) holds or takes, evaluates the events after its cursor and commits their
    /// firings with the cursor's move. Returns how many firings it wrote.
    pub async fn evaluate_alerts(&self, node: &str, settings: &AlertSettings) -> ScimResult<usize> {
        let mut fired = 0;
        for account in self.store.accounts().await? {
            // One account's trouble (a database error, a rule that no longer parses) must not
            // stop the others' alerts: it is logged, and retried on the next pass.
            match self.evaluate_account(&account.id, node, settings).await {
                Ok(count) => fired += count,
                Err(error) => tracing::error!(
                    account = %account.id,
                    %error,
                    "evaluating an account's alert rules failed"
                ),
            }
        }
        Ok(fired)
    }

    async fn evaluate_account(
        &self,
        account: &AccountId,
        node: &str,
        settings: &AlertSettings,
    ) -> ScimResult<usize> {
        let mut rules = self.stored_alert_rules(account).await?;
        rules.extend(settings.rules.iter().cloned());
        if rules.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now();
        // A lease this node holds with more than half of it left is used as it is: an idle
        // account costs a read per pass, not a write.
        let held = self.store.alert_cursor(account).await?.filter(|cursor| {
            cursor.lease_owner.as_deref() == Some(node)
                && cursor
                    .lease_until
                    .is_some_and(|until| until > plus(now, settings.lease / 2))
        });
        let cursor = match held {
            Some(cursor) => cursor,
            None => {
                let until = plus(now, settings.lease);
                let take = AlertChange::TakeLease {
                    owner: node.to_string(),
                    now,
                    until,
                };
                self.store.apply(account, Change::Alerts(take)).await?;
                let Some(cursor) = self.store.alert_cursor(account).await? else {
                    return Ok(0);
                };
                if cursor.lease_owner.as_deref() != Some(node) || cursor.lease_until != Some(until)
                {
                    return Ok(0); // another node's
                }
                cursor
            }
        };
        let mut position = cursor.position;
        let mut fired = 0;
        // A bounded number of batches per pass, so the lease taken above stays valid.
        for _ in 0..10 {
            let events = self
                .store
                .audit_events(account, position, EVALUATION_BATCH)
                .await?;
            let Some(last) = events.last().map(|event| event.seq) else {
                break;
            };
            let full = events.len() == EVALUATION_BATCH;
            let mut firings = Vec::new();
            for stored in &events {
                let event: AuditEvent = serde_json::from_str(&stored.text).map_err(|error| {
                    ScimError::internal_caused_by("a stored audit event", error)
                })?;
                for rule in rules.iter().filter(|rule| stored.seq > rule.after_seq) {
                    if let Some(reason) = self.fires(account, rule, &event, &stored.text).await? {
                        firings.push(self.firing(account, rule, &event, &reason)?);
                    }
                }
            }
            let count = firings.len();
            let advance = AlertChange::Advance {
                owner: node.to_string(),
                from: position,
                to: last,
                firings,
                now: self.clock.now(),
            };
            match self.store.apply(account, Change::Alerts(advance)).await {
                Ok(()) => {}
                Err(ScimError::Conflict(_)) => return Ok(fired), // another node took over
                Err(error) => return Err(error),
            }
            fired += count;
            position = last;
            if !full {
                break;
            }
        }
        Ok(fired)
    }
}

/// The signature of a delivery: lowercase hex of HMAC-SHA256 over `"{timestamp}.{body}"`
/// with the rule's secret, sent as `X-Scimitar-Signature: sha256=<hex>`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    lower_hex(&mac.finalize().into_bytes())
}

/// One outbound POST, as the HTTP edge makes it.
pub struct WebhookRequest<'a> {
    pub url: &'a str,
    /// `(name, value)` pairs: content type, signature, timestamp and delivery id.
    pub headers: Vec<(&'static str, String)>,
    pub body: &'a str,
    pub timeout: Duration,
}

/// The HTTP client the delivery worker posts through: the status the receiver answered, or
/// why there was none (refused, timed out). Provided by the HTTP crate; this crate knows no
/// HTTP client.
pub trait WebhookPoster: Send + Sync {
    fn post<'a>(
        &'a self,
        request: WebhookRequest<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<u16, String>> + Send + 'a>>;
}

impl Services {
    /// The delay before attempt `attempts + 1`: `base * 2^(attempts - 1)`, at most `max`, then
    /// a random point in its upper half (jitter, so receivers coming back are not hit by every
    /// sender at once).
    fn retry_delay(&self, attempts: u32, settings: &AlertSettings) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let delay = settings
            .retry_base
            .saturating_mul(1u32 << exponent)
            .min(settings.retry_max);
        let random = self.ids.random_bytes(4);
        let fraction = f64::from(u32::from_le_bytes([
            random.first().copied().unwrap_or(0),
            random.get(1).copied().unwrap_or(0),
            random.get(2).copied().unwrap_or(0),
            random.get(3).copied().unwrap_or(0),
        ])) / f64::from(u32::MAX);
        delay.mul_f64(0.5 + fraction / 2.0)
    }

    /// Delivers the outbox rows due now: claims each (so no other node posts it at once),
    /// posts it signed, and marks it delivered on a 2xx or schedules its retry. Returns how
    /// many were delivered.
    pub async fn deliver_alerts(
        &self,
        poster: &dyn WebhookPoster,
        settings: &AlertSettings,
    ) -> ScimResult<usize> {
        let now = self.clock.now();
        let due = self.store.alert_deliveries_due(now, 100).await?;
        let mut delivered = 0;
        for row in due {
            let account = row.account.clone();
            let id = row.firing.id.clone();
            // The claim outlasts the attempt's timeout, so a node that dies mid-attempt leaves
            // the row to be retried after it.
            let claim = AlertChange::ClaimDelivery {
                id: id.clone(),
                attempts: row.attempts,
                now,
                until: plus(self.clock.now(), settings.timeout + Duration::from_secs(5)),
            };
            match self.store.apply(&account, Change::Alerts(claim)).await {
                Ok(()) => {}
                Err(ScimError::Conflict(_)) => continue,
                Err(error) => return Err(error),
            }
            let timestamp = self.clock.now().as_micros() / 1_000_000;
            let request = WebhookRequest {
                url: &row.firing.url,
                headers: vec![
                    ("content-type", "application/json".to_string()),
                    (
                        "x-scimitar-signature",
                        format!(
                            "sha256={}",
                            signature(&row.firing.secret, timestamp, &row.firing.body)
                        ),
                    ),
                    ("x-scimitar-timestamp", timestamp.to_string()),
                    ("x-scimitar-delivery", id.clone()),
                ],
                body: &row.firing.body,
                timeout: settings.timeout,
            };
            let outcome = poster.post(request).await;
            let change = match outcome {
                Ok(status) if (200..300).contains(&status) => {
                    delivered += 1;
                    AlertChange::Delivered {
                        id: id.clone(),
                        at: self.clock.now(),
                    }
                }
                failed => {
                    let error = match failed {
                        Ok(status) => format!("the receiver answered {status}"),
                        Err(error) => error,
                    };
                    let delay = self.retry_delay(row.attempts + 1, settings);
                    tracing::warn!(
                        delivery = %id,
                        rule = %row.firing.rule_id,
                        attempt = row.attempts + 1,
                        retry_in_ms = delay.as_millis() as u64,
                        %error,
                        "an alert delivery failed"
                    );
                    AlertChange::DeliveryFailed {
                        id: id.clone(),
                        next_attempt: plus(self.clock.now(), delay),
                        error,
                    }
                }
            };
            self.store.apply(&account, Change::Alerts(change)).await?;
        }
        Ok(delivered)
    }

    /// Evaluates and delivers every `settings.poll_interval` until the task is dropped. Errors
    /// are logged and the next round tries again.
    pub async fn run_alerts(
        &self,
        node: String,
        settings: AlertSettings,
        poster: &dyn WebhookPoster,
    ) {
        let mut ticks = tokio::time::interval(settings.poll_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = self.evaluate_alerts(&node, &settings).await {
                tracing::error!(%error, "evaluating alert rules failed");
            }
            if settings.deliver {
                if let Err(error) = self.deliver_alerts(poster, &settings).await {
                    tracing::error!(%error, "delivering alerts failed");
                }
            }
        }
    }

    /// Whether evaluation has reached the end of the account's trail (every event committed
    /// so far was evaluated): for operators, and for tests that wait for it.
    pub async fn alerts_caught_up(&self, account: &AccountId) -> ScimResult<bool> {
        let head = self.store.audit_head(account).await?;
        let cursor = self.store.alert_cursor(account).await?;
        Ok(cursor.is_some_and(|cursor| cursor.position >= head.size))
    }

    /// A name for this node as a lease holder: unique per process.
    pub fn alert_node_id(&self) -> String {
        format!("node-{}", self.ids.uuid())
    }

    /// An account's alert outbox (for operators and tests): every firing and its state.
    pub async fn alert_outbox(&self, account: &AccountId) -> ScimResult<Vec<AlertDelivery>> {
        self.store.alert_deliveries(account).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_signature_is_rfc_4231s_hmac_sha256_over_timestamp_dot_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            lower_hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(b"12.{}");
        assert_eq!(
            signature("secret", 12, "{}"),
            lower_hex(&mac.finalize().into_bytes())
        );
    }

    #[test]
    fn globs_match_whole_names_with_stars_and_question_marks() {
        assert!(glob_matches("main.sales.*", "main.sales.orders"));
        assert!(glob_matches("main.*", "main.sales.orders"));
        assert!(glob_matches("*.pii_*", "main.pii_people"));
        assert!(glob_matches("MAIN.s?les", "main.sales"));
        assert!(!glob_matches("main.sales.*", "main.salesx"));
        assert!(!glob_matches("main.sales", "main.sales.orders"));
        assert!(glob_matches("*", ""));
    }

    #[test]
    fn filters_compare_event_fields_and_elements_of_arrays() {
        let event = json!({
            "action_name": "delete",
            "service_name": "accounts",
            "response": {"status_code": 200},
            "targets": [{"type": "User", "id": "7"}],
        });
        let object = event.as_object().unwrap();
        let check =
            |text: &str| filter_matches(&scimitar_scim::parse_filter(text).unwrap(), object);
        assert!(check(
            r#"action_name eq "delete" and service_name eq "accounts""#
        ));
        assert!(!check(r#"action_name eq "deleteUser""#));
        assert!(check("response.status_code lt 400"));
        assert!(check(r#"targets[type eq "User" and id eq "7"]"#));
        assert!(check(r#"targets.type eq "User""#));
        assert!(!check(r#"targets[type eq "Group"]"#));
        assert!(check("not (request_id pr)"));
    }

    fn spec(kind: &str) -> AlertRuleSpec {
        AlertRuleSpec {
            name: "r".into(),
            kind: kind.into(),
            pattern: None,
            threshold: None,
            window_seconds: None,
            min_lifetime_seconds: None,
            filter: None,
            webhook: WebhookSpec {
                url: "https://hooks.example/x".into(),
                format: None,
                secret: None,
            },
        }
    }

    #[test]
    fn a_rule_refuses_fields_of_another_kind_and_missing_ones_of_its_own() {
        assert!(validate(&spec("admins_group_change")).is_ok());
        assert!(validate(&spec("securable_change")).is_err());
        assert!(validate(&spec("mass_deprovisioning")).is_err());
        let mut with_pattern = spec("admins_group_change");
        with_pattern.pattern = Some("main.*".into());
        assert!(validate(&with_pattern).is_err());
        let mut bad_url = spec("token_expiry");
        bad_url.webhook.url = "ftp://x".into();
        assert!(validate(&bad_url).is_err());
        let mut bad_filter = spec("event_filter");
        bad_filter.filter = Some("action_name eq".into());
        assert!(validate(&bad_filter).is_err());
        assert!(validate(&spec("nonsense")).is_err());
    }
}
