//! SCIM 2.0 over HTTP, as a source and as a target: paged reads into [`Identity`] values,
//! creates, PATCH (or GET then PUT where a target has no PATCH), deletes; the generic RFC 7644
//! profile, the Databricks workspace profile and the Databricks account profile; retries of 429 and 503 that honour
//! `Retry-After` with a bounded back-off.

use crate::config::Profile;
use crate::model::{Capabilities, Identity, Kind};
use crate::plan::AttributeDiff;
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const SERVICE_PRINCIPAL_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal";

/// A bearer token (or a directory's bind password), never printed; read from a file or the
/// environment, so surrounding whitespace (a file's last newline) is not part of it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into().trim().to_string())
    }

    /// The value, to hand to the one call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Secret(..)")
    }
}

/// How long to wait and how often to try again when a service says it is busy.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The first back-off when the service names no `Retry-After`; doubled each time.
    pub first_backoff: Duration,
    /// No wait is longer than this, whatever `Retry-After` asks.
    pub max_wait: Duration,
    /// How long one request may take.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            first_backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(60),
            timeout: Duration::from_secs(60),
        }
    }
}

/// What a request that did not succeed ended with: the status (none when no answer came)
/// and the service's own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpFailure {
    pub status: Option<u16>,
    pub message: String,
}

impl std::fmt::Display for HttpFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(formatter, "HTTP {status}: {}", self.message),
            None => write!(formatter, "{}", self.message),
        }
    }
}

/// One SCIM service at a base URL (`http://host/scim/v2`).
#[derive(Debug, Clone)]
pub struct ScimEndpoint {
    base: String,
    token: Secret,
    profile: Profile,
    client: reqwest::Client,
    retry: RetryPolicy,
    /// Page size for list reads (`count`); a service may give fewer, and the reader reads
    /// on from what it got.
    pub page_size: usize,
    /// List pages read at once once the first page has said how many objects there are.
    pub read_concurrency: usize,
    /// How many requests `apply` and the reads have in flight at once, and the rate `pacer`
    /// keeps.
    limits: crate::pace::Limits,
    /// Shared by every clone, so the rate holds for the target whoever calls it.
    pacer: std::sync::Arc<crate::pace::Pacer>,
    /// Reads in flight at once, all kinds together, held to `limits.max_concurrency`; shared
    /// by every clone, as `pacer` is.
    reads: std::sync::Arc<tokio::sync::Semaphore>,
    /// Whether creates go in Bulk requests where the target has Bulk ([`crate::bulk`]).
    bulk: crate::bulk::BulkSetting,
}

/// Objects asked of a list page by default: Scimitar's largest page (RFC 7644 lets a service
/// give fewer, which the reader handles), so 100,000 users are 100 requests, not 1,000.
pub const DEFAULT_PAGE_SIZE: usize = 1_000;

/// List pages in flight at once by default: enough to keep a server's cores and the network
/// busy, few enough not to crowd out its other clients.
pub const DEFAULT_READ_CONCURRENCY: usize = 4;

/// One list page as read, its objects taken from the documents as the page arrives: a read of
/// 100,000 objects never holds every page's JSON at once (that was 1.5 GB at a sync's client,
/// much of its time the kernel zeroing fresh memory).
#[derive(Debug)]
struct ListPage {
    start: usize,
    asked: usize,
    total: usize,
    /// How many resources the page held, kept or not.
    got: usize,
    /// Each object, and whether its document listed `members` at all.
    objects: Vec<(Identity, bool)>,
    /// The latest `meta.lastModified` on the page.
    latest: Option<String>,
}

/// Which `startIndex` windows of a list are still to read, from the pages read so far: the
/// rest of the list after the first page, the gap a short page leaves, and the tail when the
/// total grows during the read. Windows past the last page read are handed out a few rounds'
/// worth at a time, so a service that claims an absurd total costs requests, not memory; an
/// empty page says the list ended there (it shrank under the read). Pure, so the paging rules
/// are tested without a server.
#[derive(Debug)]
struct ListWindows {
    size: usize,
    /// The largest `totalResults` a page has given.
    total: usize,
    /// Up to which position (1-based, inclusive) windows have been handed out.
    planned_until: usize,
    /// Set by an empty page: no windows past what is handed out already.
    exhausted: bool,
    gaps: Vec<(usize, usize)>,
}

impl ListWindows {
    fn new(size: usize) -> ListWindows {
        ListWindows {
            size: size.max(1),
            total: 0,
            planned_until: 0,
            exhausted: false,
            gaps: Vec::new(),
        }
    }

    /// Notes what one page gave.
    fn after(&mut self, page: &ListPage) {
        let got = page.got;
        self.total = self.total.max(page.total);
        self.planned_until = self
            .planned_until
            .max(page.start.saturating_add(page.asked).saturating_sub(1));
        if got == 0 {
            self.exhausted = true;
        } else if got < page.asked && page.start + got <= page.total {
            // Short, not at the end: the rest of its window is read from where it stopped.
            self.gaps.push((page.start + got, page.asked - got));
        }
    }

    /// At most `limit` windows to read next (every gap, then the list's next windows), in
    /// list order.
    fn take(&mut self, limit: usize) -> Vec<(usize, usize)> {
        let mut pending = std::mem::take(&mut self.gaps);
        while !self.exhausted && self.planned_until < self.total && pending.len() < limit {
            let count = self.size.min(self.total - self.planned_until);
            pending.push((self.planned_until + 1, count));
            self.planned_until += count;
        }
        pending.sort_unstable();
        pending
    }
}

/// What the result of a create was: a new object, or an existing one (a 409 matched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    New(String),
    Existing(String),
}

/// The files that say how a SCIM service's TLS is checked and how this client proves who it
/// is: `ca_file` (the CAs to trust instead of the public web's), and `client_cert_file` with
/// `client_key_file` (a certificate presented to a service that asks for one, mutual TLS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca_file: Option<std::path::PathBuf>,
    pub client_cert_file: Option<std::path::PathBuf>,
    pub client_key_file: Option<std::path::PathBuf>,
}

impl TlsFiles {
    /// Nothing configured: the public CAs, no client certificate.
    pub fn is_default(&self) -> bool {
        *self == TlsFiles::default()
    }
}

/// The HTTP client for one SCIM service (or change feed): HTTPS checked against the public
/// web's certificate authorities built in (the webpki roots), or, given `ca_file`, against the
/// CAs in that PEM file alone. A service whose certificate a private CA issued is vouched for
/// by that CA and by no public one, so that no other CA can stand in for it. Given a client
/// certificate and its key, it presents them to a service that asks (mutual TLS). A file that
/// cannot be read or parsed is an error naming it, never a fallback, and never quotes the key.
pub fn http_client(
    timeout: std::time::Duration,
    tls: &TlsFiles,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().timeout(timeout);
    if let Some(path) = &tls.ca_file {
        let pem =
            std::fs::read(path).map_err(|error| format!("ca_file {}: {error}", path.display()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
            format!(
                "ca_file {}: not a PEM certificate bundle: {error}",
                path.display()
            )
        })?;
        if certificates.is_empty() {
            return Err(format!(
                "ca_file {}: holds no PEM certificate",
                path.display()
            ));
        }
        builder = builder.tls_built_in_root_certs(false);
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if let Some(identity) = client_identity(tls)? {
        builder = builder.identity(identity);
    }
    builder.build().map_err(|error| match &tls.ca_file {
        Some(path) => format!("ca_file {}: {error}", path.display()),
        None => format!("the HTTP client: {error}"),
    })
}

/// The client certificate and key of `tls`, as one identity; `None` when neither is set.
/// Each file is checked on its own first, so that the error names the one at fault.
fn client_identity(tls: &TlsFiles) -> Result<Option<reqwest::Identity>, String> {
    let (certificate_path, key_path) = match (&tls.client_cert_file, &tls.client_key_file) {
        (None, None) => return Ok(None),
        (Some(certificate), Some(key)) => (certificate, key),
        (Some(_), None) => return Err("client_cert_file needs client_key_file".into()),
        (None, Some(_)) => return Err("client_key_file needs client_cert_file".into()),
    };
    let certificate = std::fs::read(certificate_path)
        .map_err(|error| format!("client_cert_file {}: {error}", certificate_path.display()))?;
    if !String::from_utf8_lossy(&certificate).contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "client_cert_file {}: holds no PEM certificate",
            certificate_path.display()
        ));
    }
    let key = std::fs::read(key_path)
        .map_err(|error| format!("client_key_file {}: {error}", key_path.display()))?;
    if !String::from_utf8_lossy(&key).contains("PRIVATE KEY-----") {
        return Err(format!(
            "client_key_file {}: holds no PEM private key",
            key_path.display()
        ));
    }
    let mut pem = certificate;
    pem.push(b'\n');
    pem.extend_from_slice(&key);
    // reqwest's error says what it could not use, not what the key holds.
    reqwest::Identity::from_pem(&pem)
        .map(Some)
        .map_err(|error| {
            format!(
                "client_cert_file {} and client_key_file {} do not make a usable client \
             certificate: {error}",
                certificate_path.display(),
                key_path.display()
            )
        })
}

impl ScimEndpoint {
    /// The same service, its HTTPS certificate checked against the CAs of `ca_file` alone
    /// (see [`http_client`]); an unreadable or empty file is an error, never a fallback.
    pub fn trusting_only(self, ca_file: &std::path::Path) -> Result<ScimEndpoint, String> {
        self.with_tls(&TlsFiles {
            ca_file: Some(ca_file.to_path_buf()),
            ..TlsFiles::default()
        })
    }

    /// The same service, reached with the TLS settings of `tls` (see [`http_client`]).
    pub fn with_tls(mut self, tls: &TlsFiles) -> Result<ScimEndpoint, String> {
        self.client = http_client(self.retry.timeout, tls)?;
        Ok(self)
    }
}

/// An error and its causes, `: `-separated: reqwest's own text names only the URL, and what
/// went wrong (refused, reset, a TLS alert) is further down.
fn causes(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(current) = cause {
        text.push_str(": ");
        text.push_str(&current.to_string());
        cause = current.source();
    }
    text
}

/// A TLS certificate the client refused, found in a request error's causes: worth saying
/// plainly (the fix is `ca_file`), and not worth retrying.
fn untrusted_certificate(error: &reqwest::Error) -> Option<String> {
    match rustls_error_in(error)? {
        rustls::Error::InvalidCertificate(reason) => Some(format!("{reason:?}")),
        _ => None,
    }
}

/// A service's refusal of this client's certificate (none given, or one it does not trust),
/// found in a request error's causes: the alert it sent. Not worth retrying either.
fn refused_client_certificate(error: &reqwest::Error) -> Option<String> {
    use rustls::AlertDescription::*;
    match rustls_error_in(error)? {
        rustls::Error::AlertReceived(
            alert @ (CertificateRequired
            | BadCertificate
            | UnknownCA
            | UnsupportedCertificate
            | CertificateUnknown
            | AccessDenied
            | HandshakeFailure),
        ) => Some(format!("{alert:?}")),
        _ => None,
    }
}

/// The rustls error among an error's causes, walked depth first: an I/O error hides the error
/// it wraps from `source()` (it skips to that error's own source), so it is looked inside.
fn rustls_error_in<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = error
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        .map(|inner| inner as &(dyn std::error::Error + 'static));
    inner
        .and_then(rustls_error_in)
        .or_else(|| error.source().and_then(rustls_error_in))
}

impl ScimEndpoint {
    pub fn new(base: &str, token: Secret, profile: Profile, retry: RetryPolicy) -> ScimEndpoint {
        let client = reqwest::Client::builder()
            .timeout(retry.timeout)
            .build()
            .unwrap_or_default();
        ScimEndpoint {
            base: base.trim_end_matches('/').to_string(),
            token,
            profile,
            client,
            retry,
            page_size: DEFAULT_PAGE_SIZE,
            read_concurrency: DEFAULT_READ_CONCURRENCY,
            limits: crate::pace::Limits::default(),
            pacer: std::sync::Arc::new(crate::pace::Pacer::new(None)),
            reads: std::sync::Arc::new(tokio::sync::Semaphore::new(
                crate::pace::DEFAULT_MAX_CONCURRENCY,
            )),
            bulk: crate::bulk::BulkSetting::default(),
        }
    }

    /// The same endpoint held to `limits` (`[target] max_concurrency`,
    /// `max_requests_per_second`).
    pub fn with_limits(mut self, limits: crate::pace::Limits) -> ScimEndpoint {
        self.pacer = std::sync::Arc::new(crate::pace::Pacer::new(limits.max_requests_per_second));
        self.reads =
            std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_concurrency.max(1)));
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> crate::pace::Limits {
        self.limits
    }

    /// Whether writes may go in SCIM Bulk requests when the target advertises Bulk
    /// (`[target] bulk`).
    pub fn with_bulk(mut self, bulk: crate::bulk::BulkSetting) -> ScimEndpoint {
        self.bulk = bulk;
        self
    }

    pub fn bulk_setting(&self) -> crate::bulk::BulkSetting {
        self.bulk
    }

    /// The base URL, which names the target in reports and audit events (it holds no secret).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// One request, retried on 429 and 503 (honouring `Retry-After`) and on a connection
    /// that failed before any answer, up to the policy's attempts.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), HttpFailure> {
        let url = format!("{}/{}", self.base, path);
        let mut backoff = self.retry.first_backoff;
        let mut attempt = 1;
        loop {
            self.pacer.ready().await;
            let mut request = self
                .client
                .request(method.clone(), &url)
                .bearer_auth(&self.token.0)
                .header("Accept", "application/scim+json, application/json");
            if let Some(body) = body {
                request = request
                    .header("Content-Type", "application/scim+json")
                    .body(body.to_string());
            }
            let (wait, failure) = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    // Parsed from the bytes: a page of 1,000 users is megabytes, and decoding
                    // it to text first copied and scanned it once more. A body that is not
                    // JSON is kept as text for the error it carries.
                    let body = response.bytes().await.unwrap_or_default();
                    let value = if body.trim_ascii().is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_slice(&body).unwrap_or_else(|_| {
                            Value::String(String::from_utf8_lossy(&body).into_owned())
                        })
                    };
                    if (200..300).contains(&status) {
                        return Ok((status, value));
                    }
                    let failure = HttpFailure {
                        status: Some(status),
                        message: error_message(&value),
                    };
                    if status != 429 && status != 503 {
                        return Err(failure);
                    }
                    (retry_after.unwrap_or(backoff), failure)
                }
                Err(error) if untrusted_certificate(&error).is_some() => {
                    return Err(HttpFailure {
                        status: None,
                        message: format!(
                            "{} presented a TLS certificate this client does not trust ({}); \
                             name the CA that issued it in ca_file",
                            self.base,
                            untrusted_certificate(&error).unwrap_or_default()
                        ),
                    })
                }
                Err(error) if refused_client_certificate(&error).is_some() => {
                    return Err(HttpFailure {
                        status: None,
                        message: format!(
                            "{} refused this client's TLS certificate ({}); set \
                             client_cert_file and client_key_file to a certificate issued by \
                             a CA it trusts",
                            self.base,
                            refused_client_certificate(&error).unwrap_or_default()
                        ),
                    })
                }
                Err(error) if error.is_connect() => (
                    backoff,
                    HttpFailure {
                        status: None,
                        message: format!("cannot connect to {}: {}", self.base, causes(&error)),
                    },
                ),
                Err(error) => {
                    return Err(HttpFailure {
                        status: None,
                        message: format!("{method} {url}: {error}"),
                    })
                }
            };
            if attempt >= self.retry.attempts {
                return Err(failure);
            }
            tracing::info!(%url, attempt, ?wait, %failure, "retrying");
            tokio::time::sleep(wait.min(self.retry.max_wait)).await;
            backoff = (backoff * 2).min(self.retry.max_wait);
            attempt += 1;
        }
    }

    /// What the target can do: from its `/ServiceProviderConfig` and the profile.
    pub async fn capabilities(
        &self,
        nested_override: Option<bool>,
    ) -> Result<Capabilities, HttpFailure> {
        let mut capabilities = match self.profile {
            // Databricks does not document /ServiceProviderConfig: its profile is built in.
            Profile::Databricks => Capabilities {
                patch: true,
                bulk: false,
                filter: true,
                nested_groups: true,
                entitlements: true,
                service_principals: true,
            },
            // Databricks documents the account API's shapes, not a /ServiceProviderConfig:
            // account groups nest and hold service principals; entitlements are a workspace's.
            Profile::DatabricksAccount => Capabilities {
                patch: true,
                bulk: false,
                filter: true,
                nested_groups: true,
                entitlements: false,
                service_principals: true,
            },
            Profile::Generic => {
                let (_, config) = self
                    .send(reqwest::Method::GET, "ServiceProviderConfig", None)
                    .await?;
                let supported = |name: &str| config[name]["supported"].as_bool().unwrap_or(false);
                Capabilities {
                    patch: supported("patch"),
                    bulk: supported("bulk"),
                    filter: supported("filter"),
                    nested_groups: true,
                    entitlements: false,
                    service_principals: false,
                }
            }
        };
        if let Some(nested) = nested_override {
            capabilities.nested_groups = nested;
        }
        Ok(capabilities)
    }

    /// Every object of `kind`, and the latest `meta.lastModified` among them.
    ///
    /// The first page (`startIndex=1`) says how many there are; the rest are read by
    /// `startIndex` windows of `page_size`, `read_concurrency` at once, since at 100,000
    /// objects the round trips, not the bytes, are what a one-page-after-another read waits
    /// on. A page shorter than asked (a server's own cap, or Scimitar's pages, which hold
    /// groups whole or not at all) leaves a gap that is read in the next round, and a total
    /// that grew while reading is read to its new end ([`ListWindows`]). An object seen twice
    /// (the list moved under the read) is kept once.
    pub async fn read_all(
        &self,
        kind: Kind,
    ) -> Result<(Vec<Identity>, Option<String>), HttpFailure> {
        self.read_list(kind, None).await
    }

    /// The objects of `kind` modified at or after `since` (a watermark: the latest
    /// `meta.lastModified` an earlier read returned), by `filter=meta.lastModified ge
    /// "since"`, paged as [`ScimEndpoint::read_all`] pages. `ge`, not `gt`: a change in the
    /// watermark's own millisecond is read again rather than missed. What was deleted does
    /// not show; a full read finds it.
    pub async fn read_modified_since(
        &self,
        kind: Kind,
        since: &str,
    ) -> Result<(Vec<Identity>, Option<String>), HttpFailure> {
        let filter = format!(
            "meta.lastModified ge \"{}\"",
            since.replace('\\', "\\\\").replace('"', "\\\"")
        );
        self.read_list(kind, Some(&filter)).await
    }

    /// Every object of `kind` that a SCIM filter matches, paged as [`ScimEndpoint::read_all`]
    /// pages.
    pub async fn read_matching(
        &self,
        kind: Kind,
        filter: &str,
    ) -> Result<Vec<Identity>, HttpFailure> {
        Ok(self.read_list(kind, Some(filter)).await?.0)
    }

    /// The objects of `kind` with these ids, read one by one (`read_concurrency` at once); an
    /// id the service does not know (404) is left out.
    pub async fn read_ids(&self, kind: Kind, ids: &[String]) -> Result<Vec<Identity>, HttpFailure> {
        // Owned ids: a future borrowing the stream's items is not `Send` for every lifetime,
        // which a spawned `watch` needs.
        let read: Vec<Result<Option<Identity>, HttpFailure>> = stream::iter(ids.to_vec())
            .map(|id| async move {
                let path = format!("{}/{}", kind.endpoint(), percent_encode(&id));
                match self.read(&path).await {
                    Ok((_, resource)) => Ok(identity_from(kind, &resource)),
                    Err(failure) if failure.status == Some(404) => Ok(None),
                    Err(failure) => Err(failure),
                }
            })
            .buffered(self.read_concurrency.max(1))
            .collect()
            .await;
        let mut identities = Vec::new();
        for identity in read {
            identities.extend(identity?);
        }
        Ok(identities)
    }

    /// Every object of `kind` that `filter` (SCIM filter text) matches, or every one.
    async fn read_list(
        &self,
        kind: Kind,
        filter: Option<&str>,
    ) -> Result<(Vec<Identity>, Option<String>), HttpFailure> {
        let concurrency = self.read_concurrency.max(1);
        let first = self
            .read_page(kind, filter, 1, self.page_size.max(1))
            .await?;
        // A first page shorter than asked, with more to come, shows the service's own page
        // size (Scimitar's group pages end at a member budget): windows of that size are read
        // at once, where windows of the asked size would each be read in several rounds.
        let got = first.got;
        let size = if got > 0 && got < first.asked && got < first.total {
            got
        } else {
            self.page_size
        };
        let mut windows = ListWindows::new(size);
        windows.after(&first);
        let mut pages = vec![first];
        loop {
            // A few rounds' worth of windows at a time; `buffered` keeps the concurrency.
            let pending = windows.take(concurrency * 8);
            if pending.is_empty() {
                break;
            }
            let read: Vec<Result<ListPage, HttpFailure>> = stream::iter(pending)
                .map(|(start, count)| self.read_page(kind, filter, start, count))
                .buffered(concurrency)
                .collect()
                .await;
            for page in read {
                let page = page?;
                windows.after(&page);
                pages.push(page);
            }
        }
        pages.sort_by_key(|page| page.start);
        let mut identities = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut latest: Option<String> = None;
        // Databricks' account API lists groups without their members (since 2025): a group
        // listed with no `members` at all is read again by id, which has them.
        let read_members_by_id = kind == Kind::Group && self.profile == Profile::DatabricksAccount;
        let mut without_members = Vec::new();
        for page in pages {
            if let Some(modified) = page.latest {
                if latest
                    .as_deref()
                    .is_none_or(|seen| modified.as_str() > seen)
                {
                    latest = Some(modified);
                }
            }
            for (identity, lists_members) in page.objects {
                if seen.insert(identity.id.clone()) {
                    if read_members_by_id && !lists_members {
                        without_members.push(identity.id.clone());
                    }
                    identities.push(identity);
                }
            }
        }
        if !without_members.is_empty() {
            let mut whole: std::collections::HashMap<String, Identity> = self
                .read_ids(kind, &without_members)
                .await?
                .into_iter()
                .map(|group| (group.id.clone(), group))
                .collect();
            for identity in &mut identities {
                if let Some(group) = whole.remove(&identity.id) {
                    *identity = group;
                }
            }
        }
        Ok((identities, latest))
    }

    /// One GET of a read, once fewer than `max_concurrency` reads are in flight at this
    /// service: the list windows of every kind read at once, and reads by id, share that bound
    /// with each other as `apply`'s writes keep it among themselves.
    async fn read(&self, path: &str) -> Result<(u16, Value), HttpFailure> {
        // The semaphore is never closed; were it, the read would go on unbounded.
        let _permit = self.reads.acquire().await.ok();
        self.send(reqwest::Method::GET, path, None).await
    }

    /// One list page of `kind`: `count` objects from `start` (1-based), as far as the
    /// service gives them.
    async fn read_page(
        &self,
        kind: Kind,
        filter: Option<&str>,
        start: usize,
        count: usize,
    ) -> Result<ListPage, HttpFailure> {
        // `groups` (what an object is a member of) is computed per object and large, and a job
        // reads membership from the groups' `members`: not asking for it makes a page of
        // 1,000 users a quarter of the size.
        let mut path = format!(
            "{}?startIndex={start}&count={count}&excludedAttributes=groups",
            kind.endpoint()
        );
        if let Some(filter) = filter {
            path.push_str("&filter=");
            path.push_str(&percent_encode(filter));
        }
        let (_, mut page) = self.read(&path).await?;
        let resources = match page["Resources"].take() {
            Value::Array(resources) => resources,
            _ => Vec::new(),
        };
        let mut latest: Option<&str> = None;
        let mut objects = Vec::with_capacity(resources.len());
        for resource in &resources {
            if let Some(modified) = resource["meta"]["lastModified"].as_str() {
                if latest.is_none_or(|seen| modified > seen) {
                    latest = Some(modified);
                }
            }
            if let Some(identity) = identity_from(kind, resource) {
                objects.push((identity, resource.get("members").is_some()));
            }
        }
        Ok(ListPage {
            start,
            asked: count,
            total: page["totalResults"].as_u64().unwrap_or(0) as usize,
            got: resources.len(),
            latest: latest.map(str::to_string),
            objects,
        })
    }

    /// The number of objects of `kind` (a zero-result read).
    pub async fn count(&self, kind: Kind) -> Result<u64, HttpFailure> {
        let path = format!("{}?count=0", kind.endpoint());
        let (_, page) = self.send(reqwest::Method::GET, &path, None).await?;
        Ok(page["totalResults"].as_u64().unwrap_or(0))
    }

    /// Creates an object (a group with `members`, target ids, in the same request); a 409 (it
    /// exists) is matched by its name and returned as existing, for the caller to adopt rather
    /// than retry.
    pub async fn create(
        &self,
        kind: Kind,
        attributes: &std::collections::BTreeMap<String, Value>,
        active: Option<bool>,
        members: &[String],
    ) -> Result<Created, HttpFailure> {
        let body = create_body(kind, attributes, active, members);
        match self
            .send(reqwest::Method::POST, kind.endpoint(), Some(&body))
            .await
        {
            Ok((_, created)) => created["id"]
                .as_str()
                .map(|id| Created::New(id.to_string()))
                .ok_or_else(|| HttpFailure {
                    status: None,
                    message: "the created resource has no id".into(),
                }),
            Err(failure) => self.existing_on_conflict(kind, attributes, failure).await,
        }
    }

    /// What a create that failed with `failure` leaves: on a 409, the existing object its name
    /// matches (for the caller to adopt); otherwise, or when no one object matches, the
    /// failure. One rule for single creates and for creates within a Bulk request.
    pub(crate) async fn existing_on_conflict(
        &self,
        kind: Kind,
        attributes: &std::collections::BTreeMap<String, Value>,
        failure: HttpFailure,
    ) -> Result<Created, HttpFailure> {
        if failure.status != Some(409) {
            return Err(failure);
        }
        let key = match kind {
            Kind::User => "userName",
            Kind::Group => "displayName",
            Kind::ServicePrincipal => "applicationId",
        };
        let value = attributes
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default();
        match self.find_one(kind, key, value).await? {
            Some(id) => Ok(Created::Existing(id)),
            None => Err(failure),
        }
    }

    async fn find_one(
        &self,
        kind: Kind,
        attribute: &str,
        value: &str,
    ) -> Result<Option<String>, HttpFailure> {
        let filter = format!(
            "{attribute} eq \"{}\"",
            value.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let path = format!("{}?filter={}", kind.endpoint(), percent_encode(&filter));
        let (_, page) = self.send(reqwest::Method::GET, &path, None).await?;
        let found: Vec<&str> = page["Resources"]
            .as_array()
            .map(|resources| resources.iter().filter_map(|r| r["id"].as_str()).collect())
            .unwrap_or_default();
        Ok(match found.as_slice() {
            [one] => Some(one.to_string()),
            _ => None,
        })
    }

    /// Changes attributes: PATCH where the target has it, else GET, change, PUT.
    pub async fn update(
        &self,
        kind: Kind,
        target_id: &str,
        diffs: &[AttributeDiff],
        capabilities: &Capabilities,
    ) -> Result<(), HttpFailure> {
        if capabilities.patch {
            let operations: Vec<Value> = diffs.iter().flat_map(patch_operations).collect();
            return self.patch(kind, target_id, operations).await;
        }
        self.put_with(kind, target_id, |resource| {
            for diff in diffs {
                set_attribute(resource, &diff.attribute, &diff.after);
            }
        })
        .await
    }

    /// Adds and removes group members by target id.
    pub async fn change_members(
        &self,
        group_id: &str,
        add: &[String],
        remove: &[String],
        capabilities: &Capabilities,
    ) -> Result<(), HttpFailure> {
        if capabilities.patch {
            let mut operations = Vec::new();
            if !add.is_empty() {
                operations.push(json!({
                    "op": "add",
                    "path": "members",
                    "value": add.iter().map(|id| json!({"value": id})).collect::<Vec<_>>(),
                }));
            }
            for id in remove {
                operations.push(json!({
                    "op": "remove",
                    "path": format!("members[value eq \"{id}\"]"),
                }));
            }
            return self.patch(Kind::Group, group_id, operations).await;
        }
        self.put_with(Kind::Group, group_id, |resource| {
            let mut members: Vec<Value> = resource["members"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|member| {
                    member["value"]
                        .as_str()
                        .is_none_or(|id| !remove.iter().any(|gone| gone == id))
                })
                .collect();
            members.extend(add.iter().map(|id| json!({"value": id})));
            resource["members"] = Value::Array(members);
        })
        .await
    }

    pub async fn deactivate(
        &self,
        kind: Kind,
        target_id: &str,
        capabilities: &Capabilities,
    ) -> Result<(), HttpFailure> {
        let diff = AttributeDiff {
            attribute: "active".into(),
            before: Value::Bool(true),
            after: Value::Bool(false),
        };
        self.update(kind, target_id, &[diff], capabilities).await
    }

    pub async fn delete(&self, kind: Kind, target_id: &str) -> Result<(), HttpFailure> {
        let path = format!("{}/{target_id}", kind.endpoint());
        match self.send(reqwest::Method::DELETE, &path, None).await {
            // Already gone is what a delete wants.
            Err(failure) if failure.status == Some(404) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    async fn patch(
        &self,
        kind: Kind,
        target_id: &str,
        operations: Vec<Value>,
    ) -> Result<(), HttpFailure> {
        if operations.is_empty() {
            return Ok(());
        }
        let body = json!({"schemas": [PATCH_OP], "Operations": operations});
        let path = format!("{}/{target_id}", kind.endpoint());
        self.send(reqwest::Method::PATCH, &path, Some(&body))
            .await
            .map(|_| ())
    }

    async fn put_with(
        &self,
        kind: Kind,
        target_id: &str,
        change: impl FnOnce(&mut Value),
    ) -> Result<(), HttpFailure> {
        let path = format!("{}/{target_id}", kind.endpoint());
        let (_, mut resource) = self.send(reqwest::Method::GET, &path, None).await?;
        if let Some(object) = resource.as_object_mut() {
            object.remove("meta");
        }
        change(&mut resource);
        self.send(reqwest::Method::PUT, &path, Some(&resource))
            .await
            .map(|_| ())
    }
}

/// The message of a SCIM (`detail`) or Databricks (`message`) error body.
fn error_message(body: &Value) -> String {
    body["detail"]
        .as_str()
        .or_else(|| body["message"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string())
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A SCIM resource reduced to the attributes a job compares.
pub fn identity_from(kind: Kind, resource: &Value) -> Option<Identity> {
    let id = resource["id"].as_str()?;
    let mut identity = Identity::new(kind, id);
    let mut copy = |path: &str, value: &Value| {
        if let Some(text) = value.as_str() {
            identity
                .attributes
                .insert(path.to_string(), Value::String(text.to_string()));
        }
    };
    copy("externalId", &resource["externalId"]);
    copy("displayName", &resource["displayName"]);
    match kind {
        Kind::User => {
            copy("userName", &resource["userName"]);
            copy("name.givenName", &resource["name"]["givenName"]);
            copy("name.familyName", &resource["name"]["familyName"]);
            let emails = resource["emails"].as_array().cloned().unwrap_or_default();
            let primary = emails
                .iter()
                .find(|email| email["primary"].as_bool() == Some(true))
                .or_else(|| emails.first());
            if let Some(email) = primary {
                copy("emails", &email["value"]);
            }
        }
        Kind::ServicePrincipal => copy("applicationId", &resource["applicationId"]),
        Kind::Group => {
            identity.members = resource["members"]
                .as_array()
                .map(|members| {
                    members
                        .iter()
                        .filter_map(|member| member["value"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
        }
    }
    if let Some(entitlements) = resource["entitlements"].as_array() {
        let values: BTreeSet<&str> = entitlements
            .iter()
            .filter_map(|entitlement| entitlement["value"].as_str())
            .collect();
        identity
            .attributes
            .insert("entitlements".into(), json!(values));
    }
    if kind.can_deactivate() {
        identity.active = Some(resource["active"].as_bool().unwrap_or(true));
    }
    Some(identity)
}

/// The wire value of one flat attribute.
fn wire_value(attribute: &str, value: &Value) -> Value {
    match attribute {
        "emails" => match value.as_str() {
            Some(address) => json!([{"value": address, "primary": true, "type": "work"}]),
            None => Value::Null,
        },
        "entitlements" => Value::Array(
            value
                .as_array()
                .map(|values| values.iter().map(|v| json!({"value": v})).collect())
                .unwrap_or_default(),
        ),
        _ => value.clone(),
    }
}

/// Sets a flat attribute (`name.givenName`) in a resource document.
fn set_attribute(resource: &mut Value, attribute: &str, value: &Value) {
    let wire = wire_value(attribute, value);
    let (parent, leaf) = match attribute.split_once('.') {
        Some((parent, leaf)) => (Some(parent), leaf),
        None => (None, attribute),
    };
    let holder = match parent {
        Some(parent) => {
            if !resource[parent].is_object() {
                resource[parent] = Value::Object(Map::new());
            }
            &mut resource[parent]
        }
        None => resource,
    };
    if let Some(object) = holder.as_object_mut() {
        if wire.is_null() {
            object.remove(leaf);
        } else {
            object.insert(leaf.to_string(), wire);
        }
    }
}

/// A resource's body for a create.
/// The body of a create: the resource, its `active` when the source says, and a group's
/// `members` (target ids) when it is created with them.
pub(crate) fn create_body(
    kind: Kind,
    attributes: &std::collections::BTreeMap<String, Value>,
    active: Option<bool>,
    members: &[String],
) -> Value {
    let mut body = resource_body(kind, attributes);
    if let Some(active) = active {
        body["active"] = Value::Bool(active);
    }
    if !members.is_empty() {
        body["members"] = Value::Array(members.iter().map(|id| json!({"value": id})).collect());
    }
    body
}

fn resource_body(kind: Kind, attributes: &std::collections::BTreeMap<String, Value>) -> Value {
    let schema = match kind {
        Kind::User => USER_SCHEMA,
        Kind::Group => GROUP_SCHEMA,
        Kind::ServicePrincipal => SERVICE_PRINCIPAL_SCHEMA,
    };
    let mut body = json!({"schemas": [schema]});
    for (attribute, value) in attributes {
        set_attribute(&mut body, attribute, value);
    }
    body
}

/// The PATCH operations of one diff. Entitlements are added and removed value by value (what
/// Databricks documents), everything else replaced, or removed when the source has none.
fn patch_operations(diff: &AttributeDiff) -> Vec<Value> {
    if diff.attribute == "entitlements" {
        let values = |value: &Value| -> BTreeSet<String> {
            value
                .as_array()
                .map(|values| {
                    values
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (before, after) = (values(&diff.before), values(&diff.after));
        let mut operations = Vec::new();
        let added: Vec<Value> = after
            .difference(&before)
            .map(|v| json!({"value": v}))
            .collect();
        if !added.is_empty() {
            operations.push(json!({"op": "add", "path": "entitlements", "value": added}));
        }
        for gone in before.difference(&after) {
            operations.push(
                json!({"op": "remove", "path": format!("entitlements[value eq \"{gone}\"]")}),
            );
        }
        return operations;
    }
    if diff.after.is_null() {
        return vec![json!({"op": "remove", "path": diff.attribute})];
    }
    vec![
        json!({"op": "replace", "path": diff.attribute, "value": wire_value(&diff.attribute, &diff.after)}),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn a_user_resource_is_reduced_to_the_compared_attributes() {
        let resource = json!({
            "id": "u1", "userName": "ada", "name": {"givenName": "Ada", "familyName": "L"},
            "emails": [{"value": "b@x", "primary": false}, {"value": "a@x", "primary": true}],
            "active": false, "title": "ignored",
        });
        let identity = identity_from(Kind::User, &resource).expect("an identity");
        assert_eq!(identity.text("userName"), Some("ada"));
        assert_eq!(identity.text("name.givenName"), Some("Ada"));
        assert_eq!(identity.text("emails"), Some("a@x"));
        assert_eq!(identity.active, Some(false));
        assert!(!identity.attributes.contains_key("title"));
    }

    #[test]
    fn a_create_body_nests_dotted_attributes_and_wraps_multi_valued_ones() {
        let attributes = [
            ("userName".to_string(), json!("ada")),
            ("name.givenName".to_string(), json!("Ada")),
            ("emails".to_string(), json!("a@x")),
        ]
        .into_iter()
        .collect();
        let body = resource_body(Kind::User, &attributes);
        assert_eq!(body["name"]["givenName"], json!("Ada"));
        assert_eq!(body["emails"][0]["value"], json!("a@x"));
        assert_eq!(body["emails"][0]["primary"], json!(true));
    }

    #[test]
    fn entitlement_diffs_become_value_by_value_adds_and_removes() {
        let diff = AttributeDiff {
            attribute: "entitlements".into(),
            before: json!(["a", "b"]),
            after: json!(["b", "c"]),
        };
        let operations = patch_operations(&diff);
        assert_eq!(
            operations[0],
            json!({"op": "add", "path": "entitlements", "value": [{"value": "c"}]})
        );
        assert_eq!(
            operations[1],
            json!({"op": "remove", "path": "entitlements[value eq \"a\"]"})
        );
    }

    fn page(start: usize, asked: usize, got: usize, total: usize) -> ListPage {
        ListPage {
            start,
            asked,
            total,
            got,
            objects: Vec::new(),
            latest: None,
        }
    }

    #[test]
    fn after_the_first_page_the_rest_of_the_list_is_read_in_windows_of_the_page_size() {
        let mut windows = ListWindows::new(10);
        windows.after(&page(1, 10, 10, 35));
        assert_eq!(windows.take(100), [(11, 10), (21, 10), (31, 5)]);
        windows.after(&page(11, 10, 10, 35));
        assert!(windows.take(100).is_empty());
    }

    #[test]
    fn a_short_page_leaves_a_gap_that_is_read_from_where_it_stopped() {
        let mut windows = ListWindows::new(10);
        windows.after(&page(1, 10, 3, 25));
        assert_eq!(windows.take(100), [(4, 7), (11, 10), (21, 5)]);
        windows.after(&page(4, 7, 7, 25));
        windows.after(&page(11, 10, 10, 25));
        // The last page is short because the list ends: no gap.
        windows.after(&page(21, 5, 5, 25));
        assert!(windows.take(100).is_empty());
    }

    #[test]
    fn a_total_that_grows_during_the_read_is_read_to_its_new_end() {
        let mut windows = ListWindows::new(10);
        windows.after(&page(1, 10, 10, 20));
        assert_eq!(windows.take(100), [(11, 10)]);
        windows.after(&page(11, 10, 10, 23));
        assert_eq!(windows.take(100), [(21, 3)]);
    }

    #[test]
    fn an_empty_page_ends_the_list_and_an_absurd_total_costs_no_memory() {
        let mut windows = ListWindows::new(10);
        windows.after(&page(1, 10, 10, usize::MAX / 2));
        assert_eq!(windows.take(8).len(), 8);
        windows.after(&page(11, 10, 0, usize::MAX / 2));
        assert!(windows.take(8).is_empty());
    }

    #[test]
    fn a_token_is_never_printed() {
        assert_eq!(format!("{:?}", Secret::new("dapi-secret")), "Secret(..)");
    }
}
