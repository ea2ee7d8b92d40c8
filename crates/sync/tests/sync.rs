//! `scimitar sync` against real servers: Scimitar itself (started in process, as `scimitar
//! serve` starts it) as source and as target, on its generic and Databricks mounts, with a
//! small fault-injecting proxy of our own in front of a target, a TLS front with a private
//! CA's certificate for HTTPS, and the Python reference server `scim2-server` as a target; the
//! job's state in a real database (SQLite always, PostgreSQL too when `TEST_DATABASE_URL` is
//! set).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scimitar_app::service::Services;
use scimitar_domain::clock::ManualClock;
use scimitar_domain::{Clock, RandomIds, SystemClock};
use scimitar_ldap::testing::PrivateCa;
use scimitar_server::Application;
use scimitar_store::SharedStore;
use scimitar_sync::bulk::BulkSetting;
use scimitar_sync::config::{Policy, Profile};
use scimitar_sync::feed::ChangeFeed;
use scimitar_sync::incremental::run_incremental;
use scimitar_sync::model::{Kind, Ownership};
use scimitar_sync::pace::Limits;
use scimitar_sync::quarantine::QuarantineSettings;
use scimitar_sync::run::{
    job_state, run, run_all, FanOut, FanOutReport, Job, Mode, Oversight, Report, Source, Target,
    TargetOutcome,
};
use scimitar_sync::scim::{RetryPolicy, ScimEndpoint, Secret};
use scimitar_sync::trail::TargetRef;
use scimitar_sync::watch::{apply_once, JobLease, Trigger, Turn, Watch};
use scimitar_sync::SyncError;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

const GENERIC: &str = "/scim/v2";
const DATABRICKS: &str = "/api/2.0/preview/scim/v2";

/// A running Scimitar over a SQLite database of its own; dropping it stops the server.
struct Scimitar {
    address: String,
    token: String,
    client: reqwest::Client,
    /// Its database, which a job may keep its state in (as a deployment's own jobs do).
    store: SharedStore,
    account: scimitar_domain::AccountId,
    _shutdown: oneshot::Sender<()>,
    _directory: tempfile::TempDir,
}

impl Scimitar {
    async fn start() -> Scimitar {
        Scimitar::start_with(None).await
    }

    /// A Scimitar that evaluates and delivers audit alerts with `alerts`.
    async fn start_with(alerts: Option<scimitar_app::alerts::AlertSettings>) -> Scimitar {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}/db.sqlite", directory.path().display());
        let store = scimitar_store::open(&url).await.expect("the store opens");
        let services = Services::new(store.clone(), Arc::new(SystemClock), Arc::new(RandomIds));
        let bootstrap = services
            .bootstrap()
            .await
            .expect("bootstrap succeeds")
            .expect("an empty database is bootstrapped");
        let mut application = Application::bind("127.0.0.1:0", services)
            .await
            .expect("binds a free port");
        if let Some(alerts) = alerts {
            application = application.with_alerts(alerts);
        }
        let address = format!("http://{}", application.local_addr().expect("an address"));
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(application.run_until(async move {
            let _ = stopped.await;
        }));
        Scimitar {
            address,
            token: bootstrap.admin_token.expose().to_string(),
            client: reqwest::Client::new(),
            store,
            account: bootstrap.account.id,
            _shutdown: shutdown,
            _directory: directory,
        }
    }

    fn endpoint(&self, mount: &str, profile: Profile) -> ScimEndpoint {
        endpoint(&format!("{}{mount}", self.address), &self.token, profile)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{GENERIC}/{path}", self.address))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn create_user(&self, user_name: &str) -> String {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "displayName": user_name.to_uppercase(),
            "emails": [{"value": format!("{user_name}@example.com"), "primary": true}],
        });
        let (status, created) = self.call(reqwest::Method::POST, "Users", Some(body)).await;
        assert_eq!(status, 201, "{created}");
        created["id"].as_str().expect("an id").to_string()
    }

    async fn create_group(&self, name: &str, members: &[&str]) -> String {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
            "members": members.iter().map(|id| json!({"value": id})).collect::<Vec<_>>(),
        });
        let (status, created) = self.call(reqwest::Method::POST, "Groups", Some(body)).await;
        assert_eq!(status, 201, "{created}");
        created["id"].as_str().expect("an id").to_string()
    }

    async fn delete(&self, kind: &str, id: &str) {
        let (status, body) = self
            .call(reqwest::Method::DELETE, &format!("{kind}/{id}"), None)
            .await;
        assert_eq!(status, 204, "{body}");
    }

    /// Every resource of a kind whose `attribute` equals `value`.
    async fn find(&self, kind: &str, attribute: &str, value: &str) -> Vec<Value> {
        let path = format!("{kind}?filter={attribute}%20eq%20%22{value}%22");
        let (status, page) = self.call(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        page["Resources"].as_array().cloned().unwrap_or_default()
    }

    async fn one(&self, kind: &str, attribute: &str, value: &str) -> Value {
        let found = self.find(kind, attribute, value).await;
        assert_eq!(
            found.len(),
            1,
            "one {kind} with {attribute} {value}: {found:?}"
        );
        let id = found[0]["id"].as_str().expect("an id");
        self.call(reqwest::Method::GET, &format!("{kind}/{id}"), None)
            .await
            .1
    }

    /// The displayNames of a target group's members, read one by one.
    async fn member_names(&self, group_name: &str) -> Vec<String> {
        let group = self.one("Groups", "displayName", group_name).await;
        let mut names = Vec::new();
        for member in group["members"].as_array().cloned().unwrap_or_default() {
            let id = member["value"].as_str().expect("a member id");
            for kind in ["Users", "Groups"] {
                let (status, found) = self
                    .call(reqwest::Method::GET, &format!("{kind}/{id}"), None)
                    .await;
                if status == 200 {
                    names.push(
                        found["displayName"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    );
                    break;
                }
            }
        }
        names.sort();
        names
    }
}

fn endpoint(base: &str, token: &str, profile: Profile) -> ScimEndpoint {
    let retry = RetryPolicy {
        attempts: 4,
        first_backoff: Duration::from_millis(50),
        max_wait: Duration::from_secs(2),
        timeout: Duration::from_secs(30),
    };
    ScimEndpoint::new(base, Secret::new(token), profile, retry)
}

/// Where a job's state lives: a SQLite file, or a scratch PostgreSQL database.
struct StateDatabase {
    store: SharedStore,
    postgres: Option<(String, String)>,
    _directory: Option<tempfile::TempDir>,
}

impl StateDatabase {
    async fn sqlite() -> StateDatabase {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}/state.sqlite", directory.path().display());
        StateDatabase {
            store: scimitar_store::open(&url)
                .await
                .expect("the state store opens"),
            postgres: None,
            _directory: Some(directory),
        }
    }

    /// `None` without `TEST_DATABASE_URL`, as the other suites decide.
    async fn postgres() -> Option<StateDatabase> {
        let server = std::env::var("TEST_DATABASE_URL").ok()?;
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "scimitar_sync_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let url = scimitar_store::postgres::scratch::create(&server, &name)
            .await
            .expect("a scratch database");
        Some(StateDatabase {
            store: scimitar_store::open(&url)
                .await
                .expect("the state store opens"),
            postgres: Some((server, name)),
            _directory: None,
        })
    }

    async fn close(self) {
        drop(self.store);
        if let Some((server, name)) = self.postgres {
            // The pool's connections close as it drops; give them a moment before the drop.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = scimitar_store::postgres::scratch::drop(&server, &name).await;
        }
    }
}

fn job(source: &Scimitar, target: ScimEndpoint, groups: &[&str]) -> Job {
    Job {
        name: "test-job".into(),
        source: Source::Scim(source.endpoint(GENERIC, Profile::Generic)),
        target,
        profile: Profile::Generic,
        nested_groups: None,
        policy: Policy {
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Policy::default()
        },
        oversight: Oversight::default(),
    }
}

async fn apply(job: &Job, state: &StateDatabase) -> Report {
    run(job, &*state.store, &SystemClock, Mode::Apply)
        .await
        .expect("the run completes")
}

/// A source with `eng-all` holding `platform` (ada, bob) and carol directly.
async fn seeded_source() -> Scimitar {
    let source = Scimitar::start().await;
    let ada = source.create_user("ada").await;
    let bob = source.create_user("bob").await;
    let carol = source.create_user("carol").await;
    let platform = source.create_group("platform", &[&ada, &bob]).await;
    source.create_group("eng-all", &[&platform, &carol]).await;
    source
}

async fn initial_sync_then_a_rerun_writes_nothing(state: StateDatabase) {
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let job = job(
        &source,
        target.endpoint(GENERIC, Profile::Generic),
        &["eng-all"],
    );

    let plan = run(&job, &*state.store, &SystemClock, Mode::Plan)
        .await
        .expect("plans");
    assert_eq!(plan.plan.creates.len(), 5, "{:#?}", plan.plan);
    assert_eq!(plan.exit_code(), 2);
    assert!(
        target.find("Users", "userName", "ada").await.is_empty(),
        "plan wrote nothing"
    );

    let first = apply(&job, &state).await;
    assert_eq!(first.exit_code(), 0, "{:#?}", first.failures);
    assert_eq!(first.plan.creates.len(), 5);
    assert_eq!(
        target.one("Users", "userName", "ada").await["emails"][0]["value"],
        json!("ada@example.com")
    );
    // The target nests groups: nesting is mirrored.
    assert_eq!(target.member_names("eng-all").await, ["CAROL", "platform"]);
    assert_eq!(target.member_names("platform").await, ["ADA", "BOB"]);

    let again = apply(&job, &state).await;
    assert!(again.plan.writes_nothing(), "{:#?}", again.plan);
    assert_eq!(again.writes, 0);
    assert_eq!(again.exit_code(), 0);
    let recorded = job_state(&*state.store, "test-job")
        .await
        .expect("the state");
    assert_eq!(recorded.mappings.len(), 5);
    assert!(recorded
        .mappings
        .values()
        .all(|m| m.ownership == Ownership::Created));
    let runs = state.store.sync_runs("test-job", 10).await.expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].outcome, "applied");
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initial_sync_creates_everything_and_a_rerun_writes_nothing_with_state_in_sqlite() {
    initial_sync_then_a_rerun_writes_nothing(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initial_sync_creates_everything_and_a_rerun_writes_nothing_with_state_in_postgres() {
    let Some(state) = StateDatabase::postgres().await else {
        return;
    };
    initial_sync_then_a_rerun_writes_nothing(state).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_groups_are_flattened_for_a_target_that_does_not_nest() {
    let state = StateDatabase::sqlite().await;
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let mut job = job(
        &source,
        target.endpoint(GENERIC, Profile::Generic),
        &["eng-all"],
    );
    job.nested_groups = Some(false);
    let report = apply(&job, &state).await;
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    assert_eq!(
        target.member_names("eng-all").await,
        ["ADA", "BOB", "CAROL"]
    );
    assert_eq!(target.member_names("platform").await, ["ADA", "BOB"]);
    assert!(apply(&job, &state).await.plan.writes_nothing());
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brownfield_objects_are_adopted_without_duplicates_and_foreign_ones_are_left_alone() {
    let state = StateDatabase::sqlite().await;
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let existing_ada = target.create_user("ADA").await;
    let root = target.create_user("root").await;
    let existing_group = target.create_group("eng-all", &[&root]).await;
    let job = job(
        &source,
        target.endpoint(GENERIC, Profile::Generic),
        &["eng-all"],
    );

    let report = apply(&job, &state).await;
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    assert_eq!(
        report.plan.adoptions.len(),
        2,
        "{:#?}",
        report.plan.adoptions
    );
    assert_eq!(
        target.find("Users", "userName", "ada").await.len(),
        1,
        "no duplicate"
    );
    assert_eq!(
        target.one("Users", "userName", "ada").await["id"],
        json!(existing_ada)
    );
    assert_eq!(
        target.one("Groups", "displayName", "eng-all").await["id"],
        json!(existing_group)
    );
    // root is no source member, but the job does not manage it: it stays, untouched.
    assert_eq!(
        target.member_names("eng-all").await,
        ["CAROL", "ROOT", "platform"]
    );
    let recorded = job_state(&*state.store, "test-job")
        .await
        .expect("the state");
    let ownership = |kind, id: &str| {
        recorded
            .mappings
            .values()
            .find(|m| m.target_id == id)
            .map(|m| (kind, m.ownership))
    };
    assert_eq!(
        ownership(Kind::User, &existing_ada),
        Some((Kind::User, Ownership::Adopted))
    );
    assert_eq!(ownership(Kind::User, &root), None);
    assert!(apply(&job, &state).await.plan.writes_nothing());
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deletion_guard_stops_the_run_until_deletions_are_allowed_and_deletion_waits_for_the_grace_period(
) {
    let state = StateDatabase::sqlite().await;
    let source = Scimitar::start().await;
    let mut ids = Vec::new();
    for index in 0..5 {
        ids.push(source.create_user(&format!("user{index}")).await);
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    source.create_group("staff", &refs).await;
    let target = Scimitar::start().await;
    let mut job = job(
        &source,
        target.endpoint(GENERIC, Profile::Generic),
        &["staff"],
    );
    assert_eq!(apply(&job, &state).await.exit_code(), 0);

    // Two of six managed objects gone at once is more than 20 %.
    source.delete("Users", &ids[0]).await;
    source.delete("Users", &ids[1]).await;
    let stopped = apply(&job, &state).await;
    assert_eq!(stopped.exit_code(), 1);
    assert!(
        stopped
            .stopped
            .as_deref()
            .is_some_and(|why| why.contains("--allow-deletions")),
        "{stopped:?}"
    );
    assert_eq!(stopped.writes, 0);
    assert_eq!(
        target.one("Users", "userName", "user0").await["active"],
        json!(true)
    );
    assert_eq!(
        state.store.sync_runs("test-job", 1).await.expect("runs")[0].outcome,
        "stopped"
    );

    job.policy.allow_deletions = true;
    let allowed = apply(&job, &state).await;
    assert_eq!(allowed.exit_code(), 0, "{:#?}", allowed.failures);
    assert_eq!(allowed.plan.deactivations.len(), 2);
    assert_eq!(
        target.one("Users", "userName", "user0").await["active"],
        json!(false)
    );
    // Deactivated first: deleted only after the grace period.
    assert_eq!(target.find("Users", "userName", "user1").await.len(), 1);
    assert_eq!(target.member_names("staff").await.len(), 3);
    let clock = ManualClock::new(SystemClock.now());
    let within = run(&job, &*state.store, &clock, Mode::Apply)
        .await
        .expect("runs");
    assert!(within.plan.writes_nothing(), "{:#?}", within.plan);
    clock.advance_micros(job.policy.delete_after_seconds * 1_000_000);
    let after = run(&job, &*state.store, &clock, Mode::Apply)
        .await
        .expect("runs");
    assert_eq!(after.exit_code(), 0, "{:#?}", after.failures);
    assert_eq!(after.plan.deletions.len(), 2);
    assert!(target.find("Users", "userName", "user0").await.is_empty());
    assert!(target.find("Users", "userName", "user1").await.is_empty());
    assert_eq!(target.find("Users", "userName", "user2").await.len(), 1);
    let recorded = job_state(&*state.store, "test-job")
        .await
        .expect("the state");
    assert_eq!(
        recorded.mappings.len(),
        4,
        "the deleted are no longer managed"
    );
    state.close().await;
}

/// A loopback proxy in front of a target that throttles the first writes and fails the ones
/// whose body holds a marker, counting what it passed on.
struct FaultProxy {
    address: String,
    faults: Arc<Faults>,
    _shutdown: oneshot::Sender<()>,
}

#[derive(Default)]
struct Faults {
    /// Writes still to answer with 429 and `Retry-After: 1`.
    throttle: AtomicUsize,
    throttled: AtomicUsize,
    /// Writes whose body holds this are answered 500.
    fail_marker: Mutex<Option<String>>,
    /// Writes passed on to the target.
    writes: AtomicUsize,
    /// Users with this userName are left out of list pages (as if a list lagged behind).
    hide_user: Mutex<Option<String>>,
    /// `/ServiceProviderConfig` says PATCH is not supported.
    no_patch: std::sync::atomic::AtomicBool,
    /// `/ServicePrincipals` is answered 404, as by a service that has none.
    no_service_principals: std::sync::atomic::AtomicBool,
    /// Every request is answered 502, as by a gateway whose target is down.
    down: std::sync::atomic::AtomicBool,
    /// PATCH and PUT requests passed on.
    patches: AtomicUsize,
    puts: AtomicUsize,
    /// When set, unfiltered list pages after the first hold at most this many resources (the
    /// total unchanged), as from a service whose pages end early (Scimitar's at a budget of
    /// members).
    short_pages: AtomicUsize,
    /// Milliseconds each list read is held before it is passed on, so that reads made at
    /// once are seen at once.
    list_delay_ms: AtomicUsize,
    /// List reads (GETs with `startIndex`) in progress now, and the most there ever were.
    lists_in_flight: AtomicUsize,
    most_lists_in_flight: AtomicUsize,
    /// List reads without a filter (a whole side read), and every GET.
    unfiltered_lists: AtomicUsize,
    gets: AtomicUsize,
    /// Every request received, and how many were in the proxy at once, at most.
    requests: AtomicUsize,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: AtomicUsize,
    /// Writes are held this long (milliseconds) before they are passed on, so that
    /// concurrent ones overlap.
    write_delay_ms: std::sync::atomic::AtomicU64,
    /// POSTs of single resources, `/Bulk` requests passed on, and the most operations one of
    /// those held.
    posts: AtomicUsize,
    bulk_requests: AtomicUsize,
    most_bulk_operations: AtomicUsize,
    /// When set, `/ServiceProviderConfig` advertises Bulk with this `maxOperations`.
    bulk_max_operations: AtomicUsize,
    /// `/ServiceProviderConfig` says Bulk is not supported.
    no_bulk: std::sync::atomic::AtomicBool,
    /// Bulk operations whose data holds this lose their `userName` on the way, so that the
    /// target refuses them (and only them) with its own error.
    spoil_in_bulk: Mutex<Option<String>>,
    /// `/Bulk` is answered 501, as by a service that advertises Bulk and has none.
    refuse_bulk: std::sync::atomic::AtomicBool,
}

/// One request inside the proxy, counted out however it leaves.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FaultProxy {
    async fn start(upstream: &str) -> FaultProxy {
        let faults = Arc::new(Faults::default());
        let upstream = upstream.to_string();
        let client = reqwest::Client::new();
        let shared = faults.clone();
        let router = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (faults, upstream, client) = (shared.clone(), upstream.clone(), client.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 24)
                    .await
                    .unwrap_or_default();
                let write = parts.method != axum::http::Method::GET;
                faults.requests.fetch_add(1, Ordering::SeqCst);
                let now_in = faults.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                let _in_flight = InFlight(faults.in_flight.clone());
                faults.max_in_flight.fetch_max(now_in, Ordering::SeqCst);
                let delay = faults.write_delay_ms.load(Ordering::SeqCst);
                if write && delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                let reply = |status: u16, text: String| {
                    axum::response::Response::builder()
                        .status(status)
                        .header("content-type", "application/scim+json")
                        .header("retry-after", "1")
                        .body(axum::body::Body::from(text))
                        .expect("a response")
                };
                if parts.uri.path().ends_with("/Bulk") && faults.refuse_bulk.load(Ordering::SeqCst)
                {
                    return reply(
                        501,
                        json!({"detail": "no Bulk here", "status": "501"}).to_string(),
                    );
                }
                if faults.down.load(Ordering::SeqCst) {
                    return reply(
                        502,
                        json!({"detail": "the target is down", "status": "502"}).to_string(),
                    );
                }
                if parts.uri.path().contains("/ServicePrincipals")
                    && faults.no_service_principals.load(Ordering::SeqCst)
                {
                    return reply(
                        404,
                        json!({"detail": "no such endpoint", "status": "404"}).to_string(),
                    );
                }
                if write {
                    let marker = faults.fail_marker.lock().expect("lock").clone();
                    if marker.is_some_and(|marker| String::from_utf8_lossy(&body).contains(&marker))
                    {
                        return reply(
                            500,
                            json!({"detail": "injected failure", "status": "500"}).to_string(),
                        );
                    }
                    let left = faults.throttle.load(Ordering::SeqCst);
                    if left > 0 {
                        faults.throttle.store(left - 1, Ordering::SeqCst);
                        faults.throttled.fetch_add(1, Ordering::SeqCst);
                        return reply(
                            429,
                            json!({"detail": "slow down", "status": "429"}).to_string(),
                        );
                    }
                    faults.writes.fetch_add(1, Ordering::SeqCst);
                    match parts.method.as_str() {
                        "PATCH" => faults.patches.fetch_add(1, Ordering::SeqCst),
                        "PUT" => faults.puts.fetch_add(1, Ordering::SeqCst),
                        "POST" if parts.uri.path().ends_with("/Bulk") => {
                            faults.bulk_requests.fetch_add(1, Ordering::SeqCst)
                        }
                        "POST" => faults.posts.fetch_add(1, Ordering::SeqCst),
                        _ => 0,
                    };
                }
                let body = if parts.uri.path().ends_with("/Bulk") {
                    spoil_bulk(&faults, body)
                } else {
                    body
                };
                let path = parts.uri.to_string();
                let list = !write && path.contains("startIndex=");
                if !write {
                    faults.gets.fetch_add(1, Ordering::SeqCst);
                }
                if list && !path.contains("filter=") {
                    faults.unfiltered_lists.fetch_add(1, Ordering::SeqCst);
                }
                if list {
                    let now = faults.lists_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    faults.most_lists_in_flight.fetch_max(now, Ordering::SeqCst);
                    let delay = faults.list_delay_ms.load(Ordering::SeqCst) as u64;
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
                    .expect("a method");
                let mut forwarded = client.request(method, format!("{upstream}{}", parts.uri));
                for name in ["authorization", "content-type", "accept"] {
                    if let Some(value) = parts.headers.get(name).and_then(|v| v.to_str().ok()) {
                        forwarded = forwarded.header(name, value);
                    }
                }
                let answer = forwarded
                    .body(body)
                    .send()
                    .await
                    .expect("the target answers");
                let status = answer.status().as_u16();
                let mut text = answer.text().await.unwrap_or_default();
                if list {
                    faults.lists_in_flight.fetch_sub(1, Ordering::SeqCst);
                }
                if !write {
                    text = rewrite(&faults, &path, text);
                }
                axum::response::Response::builder()
                    .status(status)
                    .header("content-type", "application/scim+json")
                    .body(axum::body::Body::from(text))
                    .expect("a response")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let address = format!("http://{}", listener.local_addr().expect("an address"));
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        FaultProxy {
            address,
            faults,
            _shutdown: shutdown,
        }
    }
}

/// A `/Bulk` request as the proxy passes it on: its operations counted, and those holding
/// `spoil_in_bulk` without their `userName`.
fn spoil_bulk(faults: &Faults, body: axum::body::Bytes) -> axum::body::Bytes {
    let Ok(mut request) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    let marker = faults.spoil_in_bulk.lock().expect("lock").clone();
    let Some(operations) = request["Operations"].as_array_mut() else {
        return body;
    };
    faults
        .most_bulk_operations
        .fetch_max(operations.len(), Ordering::SeqCst);
    for operation in operations {
        if marker
            .as_ref()
            .is_some_and(|marker| operation["data"].to_string().contains(marker.as_str()))
        {
            if let Some(data) = operation["data"].as_object_mut() {
                data.remove("userName");
            }
        }
    }
    axum::body::Bytes::from(request.to_string())
}

/// What the proxy changes in a read: hidden users left out of unfiltered list pages, PATCH withdrawn
/// from `/ServiceProviderConfig`.
fn rewrite(faults: &Faults, path: &str, text: String) -> String {
    let Ok(mut body) = serde_json::from_str::<Value>(&text) else {
        return text;
    };
    if path.contains("/ServiceProviderConfig") && faults.no_patch.load(Ordering::SeqCst) {
        body["patch"]["supported"] = json!(false);
    }
    if path.contains("/ServiceProviderConfig") {
        if faults.no_bulk.load(Ordering::SeqCst) {
            body["bulk"]["supported"] = json!(false);
        }
        let most = faults.bulk_max_operations.load(Ordering::SeqCst);
        if most > 0 {
            body["bulk"]["maxOperations"] = json!(most);
        }
    }
    // Only full listings lag; a filtered search finds the user.
    let hidden = faults
        .hide_user
        .lock()
        .expect("lock")
        .clone()
        .filter(|_| !path.contains("filter="));
    let cap = faults.short_pages.load(Ordering::SeqCst);
    if let Some(resources) = body["Resources"].as_array_mut() {
        // The first page is whole, so the reader keeps its page size and meets short pages
        // after it.
        if cap > 0 && !path.contains("filter=") && !path.contains("startIndex=1&") {
            resources.truncate(cap);
        }
    }
    if let (Some(hidden), Some(resources)) = (hidden, body["Resources"].as_array_mut()) {
        let before = resources.len();
        resources.retain(|resource| resource["userName"].as_str() != Some(hidden.as_str()));
        let gone = (before - resources.len()) as u64;
        if let Some(total) = body["totalResults"].as_u64() {
            body["totalResults"] = json!(total - gone);
        }
    }
    body.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_on_create_is_matched_and_adopted_not_retried() {
    let state = StateDatabase::sqlite().await;
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let existing = target.create_user("bob").await;
    let proxy = FaultProxy::start(&target.address).await;
    // The target's list does not show bob: the plan creates him, and the target says 409.
    *proxy.faults.hide_user.lock().expect("lock") = Some("bob".into());
    let job = job(
        &source,
        endpoint(
            &format!("{}{GENERIC}", proxy.address),
            &target.token,
            Profile::Generic,
        ),
        &["eng-all"],
    );
    let report = apply(&job, &state).await;
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    assert_eq!(report.adopted_on_conflict, 1);
    assert_eq!(
        target.find("Users", "userName", "bob").await.len(),
        1,
        "no duplicate"
    );
    assert_eq!(target.member_names("platform").await, ["ADA", "BOB"]);
    let recorded = job_state(&*state.store, "test-job")
        .await
        .expect("the state");
    let bob = recorded
        .mappings
        .values()
        .find(|m| m.target_id == existing)
        .expect("bob is managed");
    assert_eq!(bob.ownership, Ownership::Adopted);
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_without_patch_is_written_with_get_then_put() {
    let state = StateDatabase::sqlite().await;
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let proxy = FaultProxy::start(&target.address).await;
    proxy
        .faults
        .no_patch
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let job = job(
        &source,
        endpoint(
            &format!("{}{GENERIC}", proxy.address),
            &target.token,
            Profile::Generic,
        ),
        &["eng-all"],
    );
    let report = apply(&job, &state).await;
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    assert!(!report.capabilities.patch);
    assert_eq!(target.member_names("eng-all").await, ["CAROL", "platform"]);
    assert_eq!(target.member_names("platform").await, ["ADA", "BOB"]);
    // The groups were created with their members: the membership change comes after.
    let platform = source.id_of("Groups", "displayName", "platform").await;
    let bob = source.id_of("Users", "userName", "bob").await;
    source
        .patch(
            "Groups",
            &platform,
            json!([{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}]),
        )
        .await;
    let changed = apply(&job, &state).await;
    assert_eq!(changed.exit_code(), 0, "{:#?}", changed.failures);
    assert_eq!(proxy.faults.patches.load(Ordering::SeqCst), 0);
    assert!(proxy.faults.puts.load(Ordering::SeqCst) >= 1);
    assert_eq!(target.member_names("platform").await, ["ADA"]);
    assert!(apply(&job, &state).await.plan.writes_nothing());
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_list_is_read_in_concurrent_windows_and_past_pages_shorter_than_asked() {
    let source = Scimitar::start().await;
    for number in 0..14 {
        source.create_user(&format!("user-{number:02}")).await;
    }
    let proxy = FaultProxy::start(&source.address).await;
    // Pages of 4 asked, 3 given: every window leaves a gap the reader must go back for.
    proxy.faults.short_pages.store(3, Ordering::SeqCst);
    proxy.faults.list_delay_ms.store(100, Ordering::SeqCst);
    let mut through_proxy = endpoint(
        &format!("{}{GENERIC}", proxy.address),
        &source.token,
        Profile::Generic,
    );
    through_proxy.page_size = 4;
    through_proxy.read_concurrency = 3;
    let (read, _) = through_proxy.read_all(Kind::User).await.expect("reads");
    let (direct, _) = source
        .endpoint(GENERIC, Profile::Generic)
        .read_all(Kind::User)
        .await
        .expect("reads");
    let names = |identities: &[scimitar_sync::model::Identity]| {
        let mut names: Vec<String> = identities.iter().map(|i| i.label()).collect();
        names.sort();
        names
    };
    // Fourteen users and the bootstrap admin, each once.
    assert_eq!(direct.len(), 15);
    assert_eq!(names(&read), names(&direct));
    assert!(
        proxy.faults.most_lists_in_flight.load(Ordering::SeqCst) >= 2,
        "the windows after the first page are read at once"
    );
}

/// A target's `max_concurrency` holds for reads as for writes: the windows of a long list and
/// the kinds read at once share it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_at_once_are_held_to_the_targets_max_concurrency() {
    let source = Scimitar::start().await;
    let mut members = Vec::new();
    for number in 0..14 {
        members.push(source.create_user(&format!("user-{number:02}")).await);
    }
    for (number, member) in members.iter().take(9).enumerate() {
        source
            .create_group(&format!("group-{number}"), &[member])
            .await;
    }
    let proxy = FaultProxy::start(&source.address).await;
    proxy.faults.list_delay_ms.store(100, Ordering::SeqCst);
    let mut through_proxy = endpoint(
        &format!("{}{GENERIC}", proxy.address),
        &source.token,
        Profile::Generic,
    )
    .with_limits(Limits::new(2, None).expect("limits"));
    through_proxy.page_size = 3;
    through_proxy.read_concurrency = 4;
    let (users, groups) = tokio::join!(
        through_proxy.read_all(Kind::User),
        through_proxy.read_all(Kind::Group)
    );
    // Fourteen users and the bootstrap admin; nine groups and the built-in ones.
    assert_eq!(users.expect("reads").0.len(), 15);
    assert!(groups.expect("reads").0.len() >= 9);
    let most = proxy.faults.most_lists_in_flight.load(Ordering::SeqCst);
    assert!(most <= 2, "{most} list reads were in flight at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scim_source_is_read_by_what_changed_since_its_watermark_and_by_id() {
    let source = Scimitar::start().await;
    let ada = source.create_user("ada").await;
    let bob = source.create_user("bob").await;
    let eng = source.create_group("eng", &[&ada]).await;
    let reader = source.endpoint(GENERIC, Profile::Generic);
    let (_, users_mark) = reader.read_all(Kind::User).await.expect("reads");
    let (_, groups_mark) = reader.read_all(Kind::Group).await.expect("reads");
    let watermark = users_mark.max(groups_mark).expect("a watermark");
    // Past the watermark's millisecond, so that only what changes next is after it.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (status, body) = source
        .call(
            reqwest::Method::PATCH,
            &format!("Groups/{eng}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": bob}]}],
            })),
        )
        .await;
    assert!(status == 200 || status == 204, "{body}");

    let (groups, newer) = reader
        .read_modified_since(Kind::Group, &watermark)
        .await
        .expect("reads");
    let changed: Vec<(String, usize)> = groups
        .iter()
        .map(|group| (group.label(), group.members.len()))
        .collect();
    assert_eq!(changed, [("eng".to_string(), 2)]);
    assert!(newer.is_some_and(|newer| newer > watermark));
    let (users, _) = reader
        .read_modified_since(Kind::User, &watermark)
        .await
        .expect("reads");
    assert!(users.is_empty(), "no user changed: {users:?}");

    let found = reader
        .read_ids(Kind::User, &[bob.clone(), "no-such-id".to_string()])
        .await
        .expect("reads");
    let labels: Vec<String> = found.iter().map(|user| user.label()).collect();
    assert_eq!(labels, ["bob"]);
}

/// An incremental run of `job`'s one target: `None` when the job must run in full.
async fn incremental(job: &Job, state: &StateDatabase) -> Option<Report> {
    let job: FanOut = job.clone().into();
    let report = run_incremental(&job, &*state.store, &SystemClock, Mode::Apply)
        .await
        .expect("the run completes")?;
    assert_eq!(report.targets.len(), 1);
    Some(ran(&report.targets[0]).clone())
}

async fn an_incremental_run_reads_only_what_changed_and_converges(state: StateDatabase) {
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let proxy = FaultProxy::start(&source.address).await;
    let mut job = job(&source, target.endpoint(GENERIC, Profile::Generic), &[]);
    job.source = Source::Scim(endpoint(
        &format!("{}{GENERIC}", proxy.address),
        &source.token,
        Profile::Generic,
    ));
    // Without a watermark (no run yet) there is nothing to read from: a full run is needed.
    assert!(incremental(&job, &state).await.is_none());
    assert_eq!(apply(&job, &state).await.exit_code(), 0);

    // Past the watermark's millisecond, then dave is created and joins platform.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let dave = source.create_user("dave").await;
    let platform = source.one("Groups", "displayName", "platform").await;
    let (status, body) = source
        .call(
            reqwest::Method::PATCH,
            &format!("Groups/{}", platform["id"].as_str().expect("an id")),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": dave}]}],
            })),
        )
        .await;
    assert!(status == 200 || status == 204, "{body}");
    proxy.faults.unfiltered_lists.store(0, Ordering::SeqCst);
    proxy.faults.gets.store(0, Ordering::SeqCst);

    let report = incremental(&job, &state).await.expect("an incremental run");
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    let created: Vec<&str> = report
        .plan
        .creates
        .iter()
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(created, ["dave"]);
    assert!(report.plan.deactivations.is_empty(), "{:#?}", report.plan);
    assert!(report.plan.forgotten.is_empty(), "{:#?}", report.plan);
    assert_eq!(
        proxy.faults.unfiltered_lists.load(Ordering::SeqCst),
        0,
        "the source was not read whole"
    );
    // A filtered read of each kind (users, groups); nothing else was needed.
    assert!(proxy.faults.gets.load(Ordering::SeqCst) <= 3);
    assert_eq!(
        target.member_names("platform").await,
        ["ADA", "BOB", "DAVE"]
    );

    // Converged: a full run finds nothing to do, and an incremental one nothing new.
    assert!(apply(&job, &state).await.plan.writes_nothing());
    let again = incremental(&job, &state).await.expect("an incremental run");
    assert!(again.plan.writes_nothing(), "{:#?}", again.plan);
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_reads_only_what_changed_and_converges_with_state_in_sqlite() {
    an_incremental_run_reads_only_what_changed_and_converges(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_reads_only_what_changed_and_converges_with_state_in_postgres() {
    if let Some(state) = StateDatabase::postgres().await {
        an_incremental_run_reads_only_what_changed_and_converges(state).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_is_waited_out_and_retried() {
    let state = StateDatabase::sqlite().await;
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let proxy = FaultProxy::start(&target.address).await;
    proxy.faults.throttle.store(2, Ordering::SeqCst);
    let job = job(
        &source,
        endpoint(
            &format!("{}{GENERIC}", proxy.address),
            &target.token,
            Profile::Generic,
        ),
        &["eng-all"],
    );
    let report = apply(&job, &state).await;
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    assert_eq!(proxy.faults.throttled.load(Ordering::SeqCst), 2);
    assert_eq!(target.member_names("platform").await, ["ADA", "BOB"]);

    // And a re-run through the proxy passes no write on.
    let before = proxy.faults.writes.load(Ordering::SeqCst);
    assert!(apply(&job, &state).await.plan.writes_nothing());
    assert_eq!(proxy.faults.writes.load(Ordering::SeqCst), before);
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_item_is_reported_and_does_not_stop_the_run_and_the_next_run_retries_it() {
    let state = StateDatabase::sqlite().await;
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let proxy = FaultProxy::start(&target.address).await;
    *proxy.faults.fail_marker.lock().expect("lock") = Some("\"bob\"".into());
    // One request per item, so that the proxy fails bob's alone (a failure within a Bulk
    // answer: `a_refused_bulk_operation_fails_only_its_item`).
    let job = job(
        &source,
        through(&proxy, &target, BulkSetting::Off),
        &["eng-all"],
    );

    let report = apply(&job, &state).await;
    assert_eq!(report.exit_code(), 1);
    assert_eq!(report.failures.len(), 1, "{:#?}", report.failures);
    assert_eq!(report.failures[0].item, "create user bob");
    assert!(
        report.failures[0].error.contains("injected failure"),
        "{:?}",
        report.failures
    );
    assert_eq!(target.member_names("platform").await, ["ADA"]);
    assert_eq!(target.member_names("eng-all").await, ["CAROL", "platform"]);

    *proxy.faults.fail_marker.lock().expect("lock") = None;
    let retried = apply(&job, &state).await;
    assert_eq!(retried.exit_code(), 0, "{:#?}", retried.failures);
    assert_eq!(retried.plan.creates.len(), 1);
    assert_eq!(target.member_names("platform").await, ["ADA", "BOB"]);
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_databricks_workspace_target_gets_mapped_entitlements_on_its_groups() {
    let state = StateDatabase::sqlite().await;
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let mut job = job(
        &source,
        target.endpoint(DATABRICKS, Profile::Databricks),
        &["eng-all"],
    );
    // A source without service principals (404) is one with none.
    let proxy = FaultProxy::start(&source.address).await;
    proxy
        .faults
        .no_service_principals
        .store(true, Ordering::SeqCst);
    job.source = Source::Scim(endpoint(
        &format!("{}{GENERIC}", proxy.address),
        &source.token,
        Profile::Generic,
    ));
    job.profile = Profile::Databricks;
    job.policy.entitlements = [(
        "platform".to_string(),
        vec!["allow-cluster-create".to_string()],
    )]
    .into_iter()
    .collect();
    let report = apply(&job, &state).await;
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    let platform = target.one("Groups", "displayName", "platform").await;
    let values: Vec<&str> = platform["entitlements"]
        .as_array()
        .map(|all| all.iter().filter_map(|e| e["value"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(values, ["allow-cluster-create"], "{platform}");
    let again = apply(&job, &state).await;
    assert!(again.plan.writes_nothing(), "{:#?}", again.plan);
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_lines_export_is_a_source() {
    let state = StateDatabase::sqlite().await;
    let target = Scimitar::start().await;
    let directory = tempfile::tempdir().expect("a directory");
    let path = directory.path().join("people.jsonl");
    std::fs::write(
        &path,
        "{\"type\":\"user\",\"id\":\"e1\",\"userName\":\"dora\",\"email\":\"dora@example.com\"}\n\
         {\"type\":\"user\",\"id\":\"e2\",\"userName\":\"eve\",\"active\":false}\n\
         {\"type\":\"group\",\"id\":\"g1\",\"displayName\":\"hr\",\"members\":[\"e1\",\"e2\"]}\n",
    )
    .expect("written");
    let job = Job {
        name: "hr-export".into(),
        source: Source::File(path),
        target: target.endpoint(GENERIC, Profile::Generic),
        profile: Profile::Generic,
        nested_groups: None,
        policy: Policy::default(),
        oversight: Oversight::default(),
    };
    let report = apply(&job, &state).await;
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    let eve = target.one("Users", "userName", "eve").await;
    assert_eq!(
        eve["active"],
        json!(false),
        "a suspended user is never synced as active"
    );
    assert_eq!(eve["externalId"], json!("e2"));
    assert_eq!(target.member_names("hr").await.len(), 2);
    state.close().await;
}

/// An LDAP directory (a real `slapd`, started for the test) into a target that does not nest
/// groups: users with their names and addresses, a disabled one inactive, `eng` flattened to
/// everyone under it; a re-run writes nothing; a rename and a member removed in the directory
/// are one attribute change and one membership change at the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ldap_directory_is_a_source_with_nesting_flattened_and_disabled_users_inactive() {
    use scimitar_ldap::testing::{Slapd, GROUPS, PEOPLE, READER_DN, READER_PASSWORD};
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    let person = |uid: &'static str, disabled: bool| {
        let mut attributes = vec![
            ("objectClass", vec!["inetOrgPerson"]),
            ("uid", vec![uid]),
            ("cn", vec![uid]),
            ("sn", vec!["Tester"]),
            ("displayName", vec![uid]),
        ];
        if disabled {
            attributes.push(("employeeType", vec!["disabled"]));
        }
        attributes
    };
    slapd
        .add(&[
            ("uid=ada,ou=people,dc=example,dc=test", person("ada", false)),
            ("uid=bob,ou=people,dc=example,dc=test", person("bob", false)),
            (
                "uid=cleo,ou=people,dc=example,dc=test",
                person("cleo", true),
            ),
            (
                "cn=platform,ou=groups,dc=example,dc=test",
                vec![
                    ("objectClass", vec!["groupOfNames"]),
                    ("cn", vec!["platform"]),
                    (
                        "member",
                        vec![
                            "uid=ada,ou=people,dc=example,dc=test",
                            "uid=bob,ou=people,dc=example,dc=test",
                        ],
                    ),
                ],
            ),
            (
                "cn=eng,ou=groups,dc=example,dc=test",
                vec![
                    ("objectClass", vec!["groupOfNames"]),
                    ("cn", vec!["eng"]),
                    (
                        "member",
                        vec![
                            "cn=platform,ou=groups,dc=example,dc=test",
                            "uid=cleo,ou=people,dc=example,dc=test",
                        ],
                    ),
                ],
            ),
        ])
        .await;
    slapd
        .replace(
            "uid=ada,ou=people,dc=example,dc=test",
            "mail",
            &["ada@example.test"],
        )
        .await;
    let directory: scimitar_ldap::DirectoryConfig = toml::from_str(&format!(
        "url = \"{}\"\nbind_dn = \"{READER_DN}\"\nbase_dn = \"dc=example,dc=test\"\n\
         user_base_dn = \"{PEOPLE}\"\ngroup_base_dn = \"{GROUPS}\"\n\
         disabled_filter = \"(employeeType=disabled)\"\npage_size = 2\n",
        slapd.url
    ))
    .expect("a directory configuration");
    let state = StateDatabase::sqlite().await;
    let target = Scimitar::start().await;
    let job = Job {
        name: "ldap".into(),
        source: Source::Ldap {
            directory,
            password: Some(Secret::new(READER_PASSWORD)),
            memory: Default::default(),
        },
        target: target.endpoint(GENERIC, Profile::Generic),
        profile: Profile::Generic,
        nested_groups: Some(false),
        policy: Policy::default(),
        oversight: Oversight::default(),
    };
    let report = apply(&job, &state).await;
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    let ada = target.one("Users", "userName", "ada").await;
    assert_eq!(ada["emails"][0]["value"], json!("ada@example.test"));
    assert_eq!(ada["name"]["familyName"], json!("Tester"));
    assert_eq!(
        target.one("Users", "userName", "cleo").await["active"],
        json!(false)
    );
    assert_eq!(target.member_names("eng").await, ["ada", "bob", "cleo"]);
    assert_eq!(target.member_names("platform").await, ["ada", "bob"]);
    assert!(apply(&job, &state).await.plan.writes_nothing());

    slapd
        .replace(
            "uid=bob,ou=people,dc=example,dc=test",
            "displayName",
            &["Bob B"],
        )
        .await;
    slapd
        .replace(
            "cn=platform,ou=groups,dc=example,dc=test",
            "member",
            &["uid=ada,ou=people,dc=example,dc=test"],
        )
        .await;
    let changed = apply(&job, &state).await;
    assert_eq!(changed.exit_code(), 0, "{:#?}", changed.failures);
    assert!(changed.plan.creates.is_empty(), "{:#?}", changed.plan);
    assert_eq!(
        target.one("Users", "userName", "bob").await["displayName"],
        json!("Bob B")
    );
    assert_eq!(target.member_names("platform").await, ["ada"]);
    // Bob left platform, and with it eng, which holds him only through platform.
    assert_eq!(target.member_names("eng").await, ["ada", "cleo"]);
    state.close().await;
}

/// Incremental runs from an LDAP directory, in a file of their own.
#[path = "sync/ldap_incremental.rs"]
mod ldap_incremental;

// ----- watch ------------------------------------------------------------------------------

/// A `watch` running in a task, with what each of its turns did (`ran applied`, `ran failed`,
/// `ran stopped`, `error`, `standby`).
struct Watching {
    stop: tokio::sync::watch::Sender<bool>,
    turns: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watching {
    fn start(watch: Watch, store: SharedStore) -> Watching {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let turns = Arc::new(Mutex::new(Vec::new()));
        let seen = turns.clone();
        let task = tokio::spawn(async move {
            watch
                .run(&*store, &SystemClock, stopped, |turn| {
                    let line = match turn {
                        Turn::Ran(report) if report.stopped.is_some() => "ran stopped".into(),
                        Turn::Ran(report) if report.failures.is_empty() => "ran applied".into(),
                        Turn::Ran(_) => "ran failed".to_string(),
                        Turn::Failed { error, .. } => format!("error {error}"),
                        Turn::StandingBy { .. } => "standby".into(),
                        Turn::Quarantined {
                            target: Some(target),
                            ..
                        } => format!("quarantined {target}"),
                        Turn::Quarantined { target: None, .. } => "quarantined".into(),
                    };
                    seen.lock().expect("lock").push(line);
                })
                .await
        });
        Watching { stop, turns, task }
    }

    fn turns(&self) -> Vec<String> {
        self.turns.lock().expect("lock").clone()
    }

    /// Stops the watch (as SIGINT does) and waits for it to end, however long its wait was.
    async fn stop(self) -> Vec<String> {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("a stopped watch ends between runs, cutting its wait short")
            .expect("the watch task did not panic");
        let turns = self.turns.lock().expect("lock").clone();
        turns
    }
}

/// A watch of `job` with a short back-off and lease.
fn watching(job: Job, trigger: Trigger, owner: &str) -> Watch {
    Watch {
        job: job.into(),
        trigger,
        max_backoff: Duration::from_secs(2),
        lease: Duration::from_secs(6),
        owner: owner.into(),
    }
}

/// The feed of a Scimitar started by these tests, with its admin token.
fn feed_of(source: &Scimitar) -> ChangeFeed {
    let url = scimitar_sync::config::changes_url_of(&format!("{}{GENERIC}", source.address))
        .expect("a Scimitar SCIM URL");
    ChangeFeed::new(&url, Secret::new(&source.token))
}

/// Polls `check` until it holds. Thirty seconds is the failure bound, far above what any of
/// this takes; nothing here asserts a speed.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not seen within 30 seconds"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Scimitar {
    /// PATCHes a group's members (or a user) at this Scimitar.
    async fn patch(&self, kind: &str, id: &str, operations: Value) {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations,
        });
        let (status, answer) = self
            .call(reqwest::Method::PATCH, &format!("{kind}/{id}"), Some(body))
            .await;
        assert!(status == 200 || status == 204, "{status} {answer}");
    }

    async fn id_of(&self, kind: &str, attribute: &str, value: &str) -> String {
        let found = self.find(kind, attribute, value).await;
        assert_eq!(found.len(), 1, "{found:?}");
        found[0]["id"].as_str().expect("an id").to_string()
    }

    /// A group's member names, or nothing while the group does not exist.
    async fn members_if_any(&self, group_name: &str) -> Vec<String> {
        if self.find("Groups", "displayName", group_name).await.len() != 1 {
            return Vec::new();
        }
        self.member_names(group_name).await
    }
}

/// A membership added, one removed, and a rename at a Scimitar source reach a Scimitar target
/// through `watch` following the source's change feed. The interval is an hour, so only the
/// feed can bring them.
async fn watch_follows_a_scimitar_source(state: StateDatabase) {
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let job = job(
        &source,
        target.endpoint(GENERIC, Profile::Generic),
        &["eng-all"],
    );
    let trigger = Trigger::Changes {
        feed: feed_of(&source),
        interval: Duration::from_secs(3600),
    };
    let running = Watching::start(watching(job, trigger, "test"), state.store.clone());
    eventually("the first run", || async {
        target.members_if_any("platform").await == ["ADA", "BOB"]
    })
    .await;

    let platform = source.id_of("Groups", "displayName", "platform").await;
    let dora = source.create_user("dora").await;
    source
        .patch(
            "Groups",
            &platform,
            json!([{"op": "add", "path": "members", "value": [{"value": dora}]}]),
        )
        .await;
    eventually("dora joins platform at the target", || async {
        target.member_names("platform").await == ["ADA", "BOB", "DORA"]
    })
    .await;

    let bob = source.id_of("Users", "userName", "bob").await;
    source
        .patch(
            "Groups",
            &platform,
            json!([{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}]),
        )
        .await;
    eventually("bob leaves platform at the target", || async {
        target.member_names("platform").await == ["ADA", "DORA"]
    })
    .await;

    source
        .patch(
            "Users",
            &dora,
            json!([{"op": "replace", "path": "displayName", "value": "Dora Dev"}]),
        )
        .await;
    eventually("dora's new name at the target", || async {
        target.member_names("platform").await == ["ADA", "Dora Dev"]
    })
    .await;

    let turns = running.stop().await;
    assert!(turns.iter().all(|turn| turn == "ran applied"), "{turns:?}");
    let runs = state.store.sync_runs("test-job", 100).await.expect("runs");
    assert!(runs.len() >= 4, "{} runs", runs.len());
    assert!(runs.iter().all(|run| run.outcome == "applied"));
    // Stopping gave the lease up.
    let after = state.store.sync_state("test-job").await.expect("the state");
    assert_eq!(after.lease_owner, None);
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_carries_changes_at_a_scimitar_source_to_the_target_with_state_in_sqlite() {
    watch_follows_a_scimitar_source(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_carries_changes_at_a_scimitar_source_to_the_target_with_state_in_postgres() {
    let Some(state) = StateDatabase::postgres().await else {
        return;
    };
    watch_follows_a_scimitar_source(state).await;
}

fn write_export(path: &std::path::Path, members: &[&str]) {
    let mut text = String::new();
    for (id, name) in [("e1", "dora"), ("e2", "eve"), ("e3", "finn")] {
        text.push_str(&format!(
            "{{\"type\":\"user\",\"id\":\"{id}\",\"userName\":\"{name}\",\"displayName\":\"{name}\"}}\n"
        ));
    }
    text.push_str(&format!(
        "{{\"type\":\"group\",\"id\":\"g1\",\"displayName\":\"hr\",\"members\":{}}}\n",
        json!(members)
    ));
    // Written whole, then renamed over the export: a run never reads half a file.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).expect("written");
    std::fs::rename(&partial, path).expect("renamed");
}

fn file_job(path: std::path::PathBuf, target: &Scimitar) -> Job {
    Job {
        name: "hr-export".into(),
        source: Source::File(path),
        target: target.endpoint(GENERIC, Profile::Generic),
        profile: Profile::Generic,
        nested_groups: None,
        policy: Policy::default(),
        oversight: Oversight::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reads_a_file_source_again_at_its_interval() {
    let state = StateDatabase::sqlite().await;
    let target = Scimitar::start().await;
    let directory = tempfile::tempdir().expect("a directory");
    let path = directory.path().join("people.jsonl");
    write_export(&path, &["e1"]);
    let job = file_job(path.clone(), &target);
    let trigger = Trigger::Interval(Duration::from_secs(1));
    let running = Watching::start(watching(job, trigger, "test"), state.store.clone());
    eventually("the first run", || async {
        target.members_if_any("hr").await == ["dora"]
    })
    .await;
    write_export(&path, &["e1", "e3"]);
    eventually("finn joins hr", || async {
        target.member_names("hr").await == ["dora", "finn"]
    })
    .await;
    let turns = running.stop().await;
    assert!(turns.iter().all(|turn| turn == "ran applied"), "{turns:?}");
    state.close().await;
}

/// The target down: the runs that cannot complete are recorded as `error` and retried with a
/// back-off, the watch goes on, and once the target is back the change made meanwhile
/// reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_survives_the_target_being_down_and_catches_up_when_it_is_back() {
    let state = StateDatabase::sqlite().await;
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let proxy = FaultProxy::start(&target.address).await;
    let job = job(
        &source,
        endpoint(
            &format!("{}{GENERIC}", proxy.address),
            &target.token,
            Profile::Generic,
        ),
        &["eng-all"],
    );
    let trigger = Trigger::Changes {
        feed: feed_of(&source),
        interval: Duration::from_secs(3600),
    };
    let running = Watching::start(watching(job, trigger, "test"), state.store.clone());
    eventually("the first run", || async {
        target.members_if_any("platform").await == ["ADA", "BOB"]
    })
    .await;

    proxy.faults.down.store(true, Ordering::SeqCst);
    let platform = source.id_of("Groups", "displayName", "platform").await;
    let dora = source.create_user("dora").await;
    source
        .patch(
            "Groups",
            &platform,
            json!([{"op": "add", "path": "members", "value": [{"value": dora}]}]),
        )
        .await;
    eventually("a run fails while the target is down", || async {
        running
            .turns()
            .iter()
            .filter(|t| t.starts_with("error"))
            .count()
            >= 2
    })
    .await;
    let runs = state.store.sync_runs("test-job", 1).await.expect("runs");
    assert_eq!(runs[0].outcome, "error");
    assert!(runs[0].report.contains("502"), "{}", runs[0].report);

    proxy.faults.down.store(false, Ordering::SeqCst);
    eventually("dora joins platform once the target is back", || async {
        target.member_names("platform").await == ["ADA", "BOB", "DORA"]
    })
    .await;
    let turns = running.stop().await;
    assert_eq!(
        turns.last().map(String::as_str),
        Some("ran applied"),
        "{turns:?}"
    );
    state.close().await;
}

/// Two processes watching one job: the second stands by while the first holds the job's
/// lease, and takes over once the first stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_watch_of_a_job_stands_by_until_the_first_stops() {
    let state = StateDatabase::sqlite().await;
    let target = Scimitar::start().await;
    let directory = tempfile::tempdir().expect("a directory");
    let path = directory.path().join("people.jsonl");
    write_export(&path, &["e1"]);
    let trigger = Trigger::Interval(Duration::from_secs(1));
    let first = Watching::start(
        watching(file_job(path.clone(), &target), trigger.clone(), "first"),
        state.store.clone(),
    );
    eventually("the first run", || async {
        target.members_if_any("hr").await == ["dora"]
    })
    .await;
    let second = Watching::start(
        watching(file_job(path.clone(), &target), trigger, "second"),
        state.store.clone(),
    );
    eventually("the second watch stands by", || async {
        second.turns().iter().any(|turn| turn == "standby")
    })
    .await;
    assert!(
        second.turns().iter().all(|turn| turn == "standby"),
        "{:?}",
        second.turns()
    );
    first.stop().await;
    write_export(&path, &["e1", "e2"]);
    eventually("the second watch takes over", || async {
        target.member_names("hr").await == ["dora", "eve"]
    })
    .await;
    let turns = second.stop().await;
    assert!(turns.iter().any(|turn| turn == "ran applied"), "{turns:?}");
    state.close().await;
}

/// `apply` holds the job's lease while it runs: refused, writing nothing, while another
/// process (here a lease taken as "another-process") holds it; once that is given up, it runs
/// and gives its own up after, so that a `watch` could take the job next.
async fn an_apply_holds_the_jobs_lease(state: StateDatabase) {
    let target = Scimitar::start().await;
    let directory = tempfile::tempdir().expect("a directory");
    let path = directory.path().join("people.jsonl");
    write_export(&path, &["e1"]);
    let job = file_job(path, &target);
    let lease = |owner: &str| JobLease {
        job: job.name.clone(),
        owner: owner.to_string(),
        length: Duration::from_secs(60),
    };
    let other = lease("another-process");
    assert!(other.take(&*state.store, &SystemClock).await.unwrap());

    let mine = lease("this-apply");
    let fan_out = job.clone().into();
    match apply_once(&fan_out, &*state.store, &SystemClock, &mine).await {
        Err(SyncError::Busy(message)) => {
            assert!(message.contains("another-process"), "{message}")
        }
        other => panic!("an apply beside another holder ran: {other:?}"),
    }
    assert!(
        target.members_if_any("hr").await.is_empty(),
        "nothing written"
    );

    other.release(&*state.store).await;
    let report = apply_once(&fan_out, &*state.store, &SystemClock, &mine)
        .await
        .expect("the run completes");
    assert_eq!(report.exit_code(), 0, "{report:?}");
    assert_eq!(target.members_if_any("hr").await, ["dora"]);
    let holder = scimitar_sync::state::lease_holder(&*state.store, &job.name, SystemClock.now())
        .await
        .unwrap();
    assert_eq!(holder, None, "the apply gave its lease up");
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_holds_the_jobs_lease_with_state_in_sqlite() {
    an_apply_holds_the_jobs_lease(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_holds_the_jobs_lease_with_state_in_postgres() {
    let Some(state) = StateDatabase::postgres().await else {
        return;
    };
    an_apply_holds_the_jobs_lease(state).await;
}

// ----- several targets ---------------------------------------------------------------------

/// A job from `source` (in scope: `eng-all`) into two targets: `generic`, a Scimitar's generic
/// mount that nests groups, and `workspace`, a Databricks workspace mount that flattens them.
fn fan_out(source: &Scimitar, generic: ScimEndpoint, workspace: ScimEndpoint) -> FanOut {
    FanOut {
        name: "fan-out".into(),
        source: Source::Scim(source.endpoint(GENERIC, Profile::Generic)),
        targets: vec![
            Target {
                name: Some("generic".into()),
                endpoint: generic,
                profile: Profile::Generic,
                nested_groups: None,
            },
            Target {
                name: Some("workspace".into()),
                endpoint: workspace,
                profile: Profile::Databricks,
                nested_groups: Some(false),
            },
        ],
        policy: Policy {
            groups: vec!["eng-all".into()],
            ..Policy::default()
        },
        oversight: Oversight::default(),
    }
}

fn ran(outcome: &TargetOutcome) -> &Report {
    match outcome {
        TargetOutcome::Ran(report) => report,
        TargetOutcome::Failed { target, error, .. } => {
            panic!("target {target:?} did not run: {error}")
        }
    }
}

/// One source into two targets, each with a state of its own (under `job/target`): both get
/// the initial sync and a later change; with one target down, the other is still applied and
/// the run's status is 1; the next run brings the one that was down up to date.
async fn a_job_fans_out_to_two_targets(state: StateDatabase) {
    let source = seeded_source().await;
    let generic = Scimitar::start().await;
    let workspace = Scimitar::start().await;
    let proxy = FaultProxy::start(&workspace.address).await;
    let job = fan_out(
        &source,
        generic.endpoint(GENERIC, Profile::Generic),
        endpoint(
            &format!("{}{DATABRICKS}", proxy.address),
            &workspace.token,
            Profile::Databricks,
        ),
    );
    let store = &*state.store;

    let first = run_all(&job, store, &SystemClock, Mode::Apply)
        .await
        .expect("the run completes");
    assert_eq!(first.exit_code(), 0, "{first:#?}");
    let names: Vec<_> = first
        .targets
        .iter()
        .map(|t| ran(t).target.clone())
        .collect();
    assert_eq!(names, [Some("generic".into()), Some("workspace".into())]);
    assert_eq!(generic.member_names("eng-all").await, ["CAROL", "platform"]);
    assert_eq!(
        workspace.member_names("eng-all").await,
        ["ADA", "BOB", "CAROL"]
    );
    for key in ["fan-out/generic", "fan-out/workspace"] {
        let recorded = job_state(store, key).await.expect("the state");
        assert_eq!(recorded.mappings.len(), 5, "{key}");
        assert_eq!(store.sync_runs(key, 10).await.expect("runs").len(), 1);
    }
    // The job's own key holds no target's state (only, while it runs, its lease).
    assert!(job_state(store, "fan-out")
        .await
        .unwrap()
        .mappings
        .is_empty());

    let platform = source.id_of("Groups", "displayName", "platform").await;
    let dora = source.create_user("dora").await;
    source
        .patch(
            "Groups",
            &platform,
            json!([{"op": "add", "path": "members", "value": [{"value": dora}]}]),
        )
        .await;
    proxy.faults.down.store(true, Ordering::SeqCst);
    let partial = run_all(&job, store, &SystemClock, Mode::Apply)
        .await
        .expect("a target down fails its own section only");
    assert_eq!(partial.exit_code(), 1, "{partial:#?}");
    assert_eq!(ran(&partial.targets[0]).exit_code(), 0);
    match &partial.targets[1] {
        TargetOutcome::Failed { target, error, .. } => {
            assert_eq!(target.as_deref(), Some("workspace"));
            assert!(error.contains("502"), "{error}");
        }
        other => panic!("the target behind a down proxy ran: {other:?}"),
    }
    let section = serde_json::to_value(&partial).expect("a report");
    assert_eq!(section["targets"][1]["target"], json!("workspace"));
    assert_eq!(
        generic.member_names("platform").await,
        ["ADA", "BOB", "DORA"]
    );
    assert_eq!(workspace.member_names("platform").await, ["ADA", "BOB"]);

    proxy.faults.down.store(false, Ordering::SeqCst);
    let caught_up = run_all(&job, store, &SystemClock, Mode::Apply)
        .await
        .expect("the run completes");
    assert_eq!(caught_up.exit_code(), 0, "{caught_up:#?}");
    assert!(ran(&caught_up.targets[0]).plan.writes_nothing());
    assert!(ran(&caught_up.targets[1]).writes > 0);
    assert_eq!(
        workspace.member_names("platform").await,
        ["ADA", "BOB", "DORA"]
    );
    assert_eq!(
        workspace.member_names("eng-all").await,
        ["ADA", "BOB", "CAROL", "DORA"]
    );
    state.close().await;
}

/// The `sync` events of an account's trail, as stored.
async fn sync_events(store: &SharedStore, account: &scimitar_domain::AccountId) -> Vec<Value> {
    store
        .audit_events(account, 0, 10_000)
        .await
        .expect("the trail")
        .iter()
        .map(|event| serde_json::from_str::<Value>(&event.text).expect("an event"))
        .filter(|event| event["service_name"] == "sync")
        .collect()
}

fn actions_of(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| {
            event["action_name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn count(actions: &[String], action: &str) -> usize {
    actions.iter().filter(|name| *name == action).count()
}

/// An account in the state database, as a Scimitar deployment's database holds one: the trail
/// the job's events join.
async fn account_in(state: &StateDatabase) -> scimitar_domain::AccountId {
    let services = Services::new(
        state.store.clone(),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
    );
    services
        .bootstrap()
        .await
        .expect("bootstrap succeeds")
        .expect("an empty database is bootstrapped")
        .account
        .id
}

/// Every action of a run is an audit event of the state database's account, attributed to the
/// job, naming the target and the item and never a token; the guard's stop is one too; and the
/// trail still verifies.
async fn a_runs_actions_are_audit_events_of_the_job(state: StateDatabase) {
    let account = account_in(&state).await;
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let job = job(
        &source,
        target.endpoint(GENERIC, Profile::Generic),
        &["eng-all"],
    );
    assert_eq!(apply(&job, &state).await.exit_code(), 0);
    let events = sync_events(&state.store, &account).await;
    let actions = actions_of(&events);
    assert_eq!(count(&actions, "syncCreateUser"), 3, "{actions:?}");
    assert_eq!(count(&actions, "syncCreateGroup"), 2, "{actions:?}");
    assert_eq!(count(&actions, "syncChangeMembers"), 2, "{actions:?}");
    let ada = target.id_of("Users", "userName", "ada").await;
    let created = events
        .iter()
        .find(|event| event["targets"][0]["id"] == json!(ada))
        .expect("ada's create");
    assert_eq!(created["action_name"], "syncCreateUser");
    assert_eq!(created["request_params"]["label"], "ada");
    assert_eq!(created["request_params"]["kind"], "user");
    for event in &events {
        assert_eq!(event["user_identity"]["principal_id"], "sync-job:test-job");
        assert_eq!(event["request_params"]["job"], "test-job");
        assert_eq!(
            event["request_params"]["target"],
            json!(format!("{}{GENERIC}", target.address))
        );
        let text = event.to_string();
        assert!(!text.contains(&target.token) && !text.contains(&source.token));
    }

    // Every user leaves the source: the guard stops the run, and says so in the trail.
    for name in ["ada", "bob", "carol"] {
        let id = source.id_of("Users", "userName", name).await;
        source.delete("Users", &id).await;
    }
    let stopped = apply(&job, &state).await;
    assert!(stopped.stopped.is_some());
    let events = sync_events(&state.store, &account).await;
    let last = events.last().expect("events");
    assert_eq!(last["action_name"], "syncGuardStop");
    assert_eq!(last["response"]["status_code"], 409);
    assert_eq!(last["request_params"]["deprovisions"], 3);
    let verified = scimitar_store::audit::verify_trail(&*state.store, &account, None)
        .await
        .expect("verifies");
    assert_eq!(verified.problem, None);
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_fans_out_to_two_targets_and_one_down_never_stops_the_other_with_state_in_sqlite() {
    a_job_fans_out_to_two_targets(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_fans_out_to_two_targets_and_one_down_never_stops_the_other_with_state_in_postgres() {
    let Some(state) = StateDatabase::postgres().await else {
        return;
    };
    a_job_fans_out_to_two_targets(state).await;
}

/// `watch` of a job with two targets, one down: the other is applied on every change, the
/// one down is recorded as `error` in its own history (not the other's) and retried, and
/// catches up once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_applies_the_target_that_is_up_and_retries_the_one_that_is_down() {
    let state = StateDatabase::sqlite().await;
    let source = seeded_source().await;
    let generic = Scimitar::start().await;
    let workspace = Scimitar::start().await;
    let proxy = FaultProxy::start(&workspace.address).await;
    proxy.faults.down.store(true, Ordering::SeqCst);
    let job = fan_out(
        &source,
        generic.endpoint(GENERIC, Profile::Generic),
        endpoint(
            &format!("{}{DATABRICKS}", proxy.address),
            &workspace.token,
            Profile::Databricks,
        ),
    );
    let watch = Watch {
        job,
        trigger: Trigger::Changes {
            feed: feed_of(&source),
            interval: Duration::from_secs(3600),
        },
        max_backoff: Duration::from_secs(2),
        lease: Duration::from_secs(6),
        owner: "test".into(),
    };
    let running = Watching::start(watch, state.store.clone());
    eventually("the generic target's first run", || async {
        generic.members_if_any("platform").await == ["ADA", "BOB"]
    })
    .await;
    eventually("the workspace target's runs fail", || async {
        running
            .turns()
            .iter()
            .any(|turn| turn.starts_with("error target workspace: ") && turn.contains("502"))
    })
    .await;
    let dora = source.create_user("dora").await;
    let platform = source.id_of("Groups", "displayName", "platform").await;
    source
        .patch(
            "Groups",
            &platform,
            json!([{"op": "add", "path": "members", "value": [{"value": dora}]}]),
        )
        .await;
    eventually("dora joins platform at the target that is up", || async {
        generic.member_names("platform").await == ["ADA", "BOB", "DORA"]
    })
    .await;
    let errors = state
        .store
        .sync_runs("fan-out/workspace", 1)
        .await
        .expect("runs");
    assert_eq!(errors[0].outcome, "error");
    assert!(
        errors[0].report.contains("\"target\":\"workspace\""),
        "{}",
        errors[0].report
    );
    let applied = state.store.sync_runs("fan-out/generic", 100).await.unwrap();
    assert!(applied.iter().all(|run| run.outcome == "applied"));

    proxy.faults.down.store(false, Ordering::SeqCst);
    eventually("the workspace target catches up", || async {
        workspace.members_if_any("platform").await == ["ADA", "BOB", "DORA"]
    })
    .await;
    running.stop().await;
    state.close().await;
}

/// Quarantine is per target: in a watch of two targets, the one that is down fails its runs
/// and is quarantined (its own history, events naming it, its quarantine under
/// `fan-out/workspace`) while the other keeps being applied on every change; resumed once it is
/// back, it catches up.
async fn one_target_is_quarantined_while_the_other_keeps_running(state: StateDatabase) {
    let account = account_in(&state).await;
    let source = seeded_source().await;
    let generic = Scimitar::start().await;
    let workspace = Scimitar::start().await;
    let proxy = FaultProxy::start(&workspace.address).await;
    proxy.faults.down.store(true, Ordering::SeqCst);
    let workspace_url = format!("{}{DATABRICKS}", proxy.address);
    let mut job = fan_out(
        &source,
        generic.endpoint(GENERIC, Profile::Generic),
        endpoint(&workspace_url, &workspace.token, Profile::Databricks),
    );
    job.oversight.quarantine = QuarantineSettings {
        after_failures: 2,
        interval: Duration::from_secs(3600),
    };
    let oversight = job.oversight.clone();
    let watch = Watch {
        job,
        trigger: Trigger::Changes {
            feed: feed_of(&source),
            interval: Duration::from_secs(3600),
        },
        max_backoff: Duration::from_secs(2),
        lease: Duration::from_secs(6),
        owner: "test".into(),
    };
    let running = Watching::start(watch, state.store.clone());
    eventually("the workspace target is quarantined", || async {
        running
            .turns()
            .contains(&"quarantined workspace".to_string())
    })
    .await;
    let quarantined = scimitar_sync::quarantine::status(
        &*state.store,
        "fan-out/workspace",
        &oversight.quarantine,
    )
    .await
    .expect("the status")
    .expect("quarantined");
    assert_eq!(quarantined.failures, 2);
    assert_eq!(
        scimitar_sync::quarantine::status(&*state.store, "fan-out/generic", &oversight.quarantine)
            .await
            .expect("the status"),
        None
    );

    // Quarantined, the workspace target is left out; the generic one runs on every change.
    let dora = source.create_user("dora").await;
    let platform = source.id_of("Groups", "displayName", "platform").await;
    source
        .patch(
            "Groups",
            &platform,
            json!([{"op": "add", "path": "members", "value": [{"value": dora}]}]),
        )
        .await;
    eventually(
        "dora joins platform at the target that is not quarantined",
        || async { generic.member_names("platform").await == ["ADA", "BOB", "DORA"] },
    )
    .await;
    let workspace_runs = state
        .store
        .sync_runs("fan-out/workspace", 10)
        .await
        .expect("runs");
    let outcomes: Vec<&str> = workspace_runs
        .iter()
        .map(|run| run.outcome.as_str())
        .collect();
    assert_eq!(outcomes, ["error", "error"]);
    let generic_runs = state.store.sync_runs("fan-out/generic", 100).await.unwrap();
    assert!(generic_runs.len() >= 2, "{generic_runs:?}");
    assert!(generic_runs.iter().all(|run| run.outcome == "applied"));

    // The trail says which target failed and which was quarantined.
    let events = sync_events(&state.store, &account).await;
    let about = |action: &str| -> Vec<String> {
        events
            .iter()
            .filter(|event| event["action_name"] == action)
            .map(|event| {
                event["request_params"]["targetName"]
                    .as_str()
                    .unwrap_or("-")
                    .to_string()
            })
            .collect()
    };
    assert_eq!(about("syncRunFailed"), ["workspace", "workspace"]);
    assert_eq!(about("syncQuarantined"), ["workspace"]);
    let created = about("syncCreateUser");
    assert!(!created.is_empty() && created.iter().all(|name| name == "generic"));
    let quarantine_event = events
        .iter()
        .find(|event| event["action_name"] == "syncQuarantined")
        .expect("the quarantine's event");
    assert_eq!(
        quarantine_event["request_params"]["target"],
        json!(workspace_url)
    );

    // Resumed once it is back, the workspace target catches up; the generic one was never
    // quarantined, so resuming it is refused, naming it.
    proxy.faults.down.store(false, Ordering::SeqCst);
    scimitar_sync::quarantine::resume(
        &*state.store,
        &SystemClock,
        "fan-out",
        TargetRef {
            name: Some("workspace"),
            url: &workspace_url,
        },
        &oversight,
    )
    .await
    .expect("resumed");
    let refused = scimitar_sync::quarantine::resume(
        &*state.store,
        &SystemClock,
        "fan-out",
        TargetRef {
            name: Some("generic"),
            url: "-",
        },
        &oversight,
    )
    .await
    .expect_err("not quarantined");
    assert!(refused.to_string().contains("target generic"), "{refused}");
    // The next trigger (a change at the source) runs both targets again.
    source.create_user("erin").await;
    eventually("the resumed target catches up", || async {
        workspace.members_if_any("platform").await == ["ADA", "BOB", "DORA"]
    })
    .await;
    running.stop().await;
    let verified = scimitar_store::audit::verify_trail(&*state.store, &account, None)
        .await
        .expect("verifies");
    assert_eq!(verified.problem, None);
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_target_is_quarantined_while_the_other_keeps_running_with_state_in_sqlite() {
    one_target_is_quarantined_while_the_other_keeps_running(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_target_is_quarantined_while_the_other_keeps_running_with_state_in_postgres() {
    let Some(state) = StateDatabase::postgres().await else {
        return;
    };
    one_target_is_quarantined_while_the_other_keeps_running(state).await;
}

/// The deletion guard stops one target's plan only: `generic` (run alone first with every
/// source user in scope) would deactivate three of the eight objects it manages when the scope
/// narrows to `eng-all`, so its part stops; `workspace`, new to the job, is applied; status 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_stop_at_one_target_does_not_stop_the_others() {
    let state = StateDatabase::sqlite().await;
    let source = seeded_source().await;
    for name in ["xena", "yuri", "zoe"] {
        source.create_user(name).await;
    }
    let generic = Scimitar::start().await;
    let workspace = Scimitar::start().await;
    let job = fan_out(
        &source,
        generic.endpoint(GENERIC, Profile::Generic),
        workspace.endpoint(DATABRICKS, Profile::Databricks),
    );
    let store = &*state.store;
    let mut everyone = job.clone().only("generic").expect("a target");
    everyone.policy.groups.clear();
    let first = run_all(&everyone, store, &SystemClock, Mode::Apply)
        .await
        .expect("the run completes");
    assert_eq!(first.exit_code(), 0, "{first:#?}");
    assert_eq!(generic.find("Users", "userName", "zoe").await.len(), 1);

    let narrowed = run_all(&job, store, &SystemClock, Mode::Apply)
        .await
        .expect("the run completes");
    assert_eq!(narrowed.exit_code(), 1, "{narrowed:#?}");
    let stopped = ran(&narrowed.targets[0]);
    assert!(stopped.stopped.is_some(), "{stopped:#?}");
    assert_eq!(stopped.writes, 0);
    let applied = ran(&narrowed.targets[1]);
    assert_eq!(applied.exit_code(), 0, "{applied:#?}");
    assert_eq!(
        workspace.member_names("eng-all").await,
        ["ADA", "BOB", "CAROL"]
    );
    assert_eq!(
        generic.one("Users", "userName", "zoe").await["active"],
        json!(true)
    );
    let runs = |key: &'static str| async move { store.sync_runs(key, 1).await.unwrap() };
    assert_eq!(runs("fan-out/generic").await[0].outcome, "stopped");
    assert_eq!(runs("fan-out/workspace").await[0].outcome, "applied");
    state.close().await;
}

async fn incremental_all(job: &FanOut, state: &StateDatabase) -> Option<FanOutReport> {
    run_incremental(job, &*state.store, &SystemClock, Mode::Apply)
        .await
        .expect("the run completes")
}

/// Incremental runs of a job with two targets that nest: the source is read once, by what
/// changed since the older of the two watermarks, so a target that was down while the other
/// moved on still gets what changed meanwhile; each target's watermark is its own. A job with a
/// target that flattens groups runs in full.
async fn incremental_runs_of_a_job_with_two_targets(state: StateDatabase) {
    let account = account_in(&state).await;
    let source = seeded_source().await;
    let reading = FaultProxy::start(&source.address).await;
    let first = Scimitar::start().await;
    let second = Scimitar::start().await;
    let writing = FaultProxy::start(&second.address).await;
    let mut job = fan_out(
        &source,
        first.endpoint(GENERIC, Profile::Generic),
        endpoint(
            &format!("{}{GENERIC}", writing.address),
            &second.token,
            Profile::Generic,
        ),
    );
    job.source = Source::Scim(endpoint(
        &format!("{}{GENERIC}", reading.address),
        &source.token,
        Profile::Generic,
    ));
    job.targets[1].profile = Profile::Generic;
    job.targets[1].nested_groups = None;
    let store = &*state.store;
    assert!(
        incremental_all(&job, &state).await.is_none(),
        "no watermark yet"
    );
    let full = run_all(&job, store, &SystemClock, Mode::Apply)
        .await
        .expect("the run completes");
    assert_eq!(full.exit_code(), 0, "{full:#?}");
    let watermark = |key: &'static str| async move {
        job_state(store, key)
            .await
            .expect("the state")
            .watermark
            .expect("a watermark")
    };
    let platform = source.id_of("Groups", "displayName", "platform").await;
    let join_platform = |name: &'static str| {
        let (source, platform) = (&source, &platform);
        async move {
            // Past the last watermark's millisecond.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let id = source.create_user(name).await;
            source
                .patch(
                    "Groups",
                    platform,
                    json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
                )
                .await;
        }
    };

    // While the second target is down, carol is renamed and then dave joins: the first target
    // gets both, the second fails. Only the older watermark reaches back to carol's change.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let carol = source.id_of("Users", "userName", "carol").await;
    source
        .patch(
            "Users",
            &carol,
            json!([{"op": "replace", "path": "displayName", "value": "CAROLINE"}]),
        )
        .await;
    join_platform("dave").await;
    writing.faults.down.store(true, Ordering::SeqCst);
    let partial = incremental_all(&job, &state)
        .await
        .expect("an incremental run");
    assert_eq!(partial.exit_code(), 1, "{partial:#?}");
    assert_eq!(ran(&partial.targets[0]).exit_code(), 0);
    assert!(
        matches!(&partial.targets[1], TargetOutcome::Failed { target, .. } if target.as_deref() == Some("workspace")),
        "{partial:#?}"
    );
    assert_eq!(first.member_names("platform").await, ["ADA", "BOB", "DAVE"]);
    assert!(watermark("fan-out/workspace").await < watermark("fan-out/generic").await);

    // erin joins, the second target is back: the read starts from its older watermark.
    join_platform("erin").await;
    writing.faults.down.store(false, Ordering::SeqCst);
    reading.faults.unfiltered_lists.store(0, Ordering::SeqCst);
    let caught_up = incremental_all(&job, &state)
        .await
        .expect("an incremental run");
    assert_eq!(caught_up.exit_code(), 0, "{caught_up:#?}");
    assert_eq!(
        reading.faults.unfiltered_lists.load(Ordering::SeqCst),
        0,
        "the source was not read whole"
    );
    let created = |outcome: &TargetOutcome| -> Vec<String> {
        let plan = &ran(outcome).plan;
        plan.creates.iter().map(|c| c.label.clone()).collect()
    };
    assert_eq!(created(&caught_up.targets[0]), ["erin"]);
    assert_eq!(created(&caught_up.targets[1]), ["dave", "erin"]);
    assert!(ran(&caught_up.targets[0]).plan.updates.is_empty());
    assert_eq!(ran(&caught_up.targets[1]).plan.updates.len(), 1);
    for target in [&first, &second] {
        assert_eq!(
            target.member_names("platform").await,
            ["ADA", "BOB", "DAVE", "ERIN"]
        );
        assert_eq!(
            target.member_names("eng-all").await,
            ["CAROLINE", "platform"]
        );
    }
    assert_eq!(
        watermark("fan-out/workspace").await,
        watermark("fan-out/generic").await
    );
    // The incremental runs' creates are audit events naming their target, as a full run's.
    let events = sync_events(&state.store, &account).await;
    for name in ["generic", "workspace"] {
        let mut created: Vec<&str> = events
            .iter()
            .filter(|event| event["action_name"] == "syncCreateUser")
            .filter(|event| event["request_params"]["targetName"] == name)
            .filter_map(|event| event["request_params"]["label"].as_str())
            .collect();
        created.sort();
        assert_eq!(created, ["ada", "bob", "carol", "dave", "erin"], "{name}");
    }
    let converged = run_all(&job, store, &SystemClock, Mode::Apply)
        .await
        .expect("the run completes");
    assert!(converged
        .targets
        .iter()
        .all(|t| ran(t).plan.writes_nothing()));

    // A target that flattens runs incrementally too (its groups' ancestors are read): see
    // `incremental_runs_into_a_target_that_flattens_read_the_changed_groups_ancestors`.
    job.targets[1].nested_groups = Some(false);
    assert!(incremental_all(&job, &state).await.is_some());
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_runs_of_two_targets_read_from_the_older_watermark_with_state_in_sqlite() {
    incremental_runs_of_a_job_with_two_targets(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_runs_of_two_targets_read_from_the_older_watermark_with_state_in_postgres() {
    let Some(state) = StateDatabase::postgres().await else {
        return;
    };
    incremental_runs_of_a_job_with_two_targets(state).await;
}

#[test]
fn one_target_of_a_job_is_picked_by_name() {
    let target = |name: &str| Target {
        name: Some(name.into()),
        endpoint: endpoint("http://127.0.0.1:9/scim/v2", "t", Profile::Generic),
        profile: Profile::Generic,
        nested_groups: None,
    };
    let job = FanOut {
        name: "j".into(),
        source: Source::File("x.jsonl".into()),
        targets: vec![target("a"), target("b")],
        policy: Policy::default(),
        oversight: Oversight::default(),
    };
    let only = job.clone().only("b").expect("b is a target");
    assert_eq!(only.targets.len(), 1);
    assert_eq!(only.targets[0].name.as_deref(), Some("b"));
    let error = job.only("c").expect_err("no such target").to_string();
    assert!(
        error.contains("no target named c") && error.contains("a, b"),
        "{error}"
    );
    let single: FanOut = Job {
        name: "j".into(),
        source: Source::File("x.jsonl".into()),
        target: endpoint("http://127.0.0.1:9/scim/v2", "t", Profile::Generic),
        profile: Profile::Generic,
        nested_groups: None,
        policy: Policy::default(),
        oversight: Oversight::default(),
    }
    .into();
    assert!(
        single.only("a").is_err(),
        "a [target] job has no named target"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_actions_are_audit_events_of_the_job_with_state_in_sqlite() {
    a_runs_actions_are_audit_events_of_the_job(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_actions_are_audit_events_of_the_job_with_state_in_postgres() {
    if let Some(state) = StateDatabase::postgres().await {
        a_runs_actions_are_audit_events_of_the_job(state).await;
    }
}

/// A webhook receiver on loopback that keeps the bodies it is posted.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
    _stop: oneshot::Sender<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let kept = kept.clone();
                async move {
                    kept.lock().expect("lock").push(body);
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let address = listener.local_addr().expect("an address");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver {
            url: format!("http://{address}/hook"),
            bodies,
            _stop: stop,
        }
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("lock").clone()
    }
}

/// A job whose state is a Scimitar deployment's own database: its events are served by the
/// audit API (`service_name=sync`), and an alert rule matching the job's failures (a filter on
/// the service and the status) posts the guard's stop to a webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_stop_raises_an_alert_and_the_jobs_events_are_served_by_the_audit_api() {
    let alerts = scimitar_app::alerts::AlertSettings {
        poll_interval: Duration::from_millis(50),
        retry_base: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        ..scimitar_app::alerts::AlertSettings::default()
    };
    let deployment = Scimitar::start_with(Some(alerts)).await;
    let receiver = Receiver::start().await;
    let rule = deployment
        .client
        .post(format!("{}/api/2.0/audit/alert-rules", deployment.address))
        .bearer_auth(&deployment.token)
        .json(&json!({
            "name": "sync-failures",
            "kind": "event_filter",
            "filter": "service_name eq \"sync\" and response.status_code ge 400",
            "webhook": {"url": receiver.url},
        }))
        .send()
        .await
        .expect("answers");
    assert_eq!(rule.status().as_u16(), 200, "{:?}", rule.text().await);

    let source = seeded_source().await;
    let job = job(
        &source,
        deployment.endpoint(GENERIC, Profile::Generic),
        &["eng-all"],
    );
    let state = &*deployment.store;
    let first = run(&job, state, &SystemClock, Mode::Apply)
        .await
        .expect("runs");
    assert_eq!(first.exit_code(), 0, "{:#?}", first.failures);
    for name in ["ada", "bob", "carol"] {
        let id = source.id_of("Users", "userName", name).await;
        source.delete("Users", &id).await;
    }
    let stopped = run(&job, state, &SystemClock, Mode::Apply)
        .await
        .expect("runs");
    assert!(stopped.stopped.is_some());

    eventually("the guard's stop is posted to the webhook", || async {
        receiver
            .bodies()
            .iter()
            .any(|body| body.contains("syncGuardStop"))
    })
    .await;
    // Only the failure fired: the creates answered 200.
    assert!(receiver
        .bodies()
        .iter()
        .all(|body| !body.contains("syncCreateUser")));

    let page: Value = deployment
        .client
        .get(format!(
            "{}/api/2.0/audit/events?service_name=sync&limit=100",
            deployment.address
        ))
        .bearer_auth(&deployment.token)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("a page");
    let actions = actions_of(page["events"].as_array().expect("events"));
    assert_eq!(count(&actions, "syncCreateUser"), 3, "{page}");
    assert_eq!(count(&actions, "syncGuardStop"), 1, "{page}");
    assert_eq!(
        scimitar_store::audit::verify_trail(state, &deployment.account, None)
            .await
            .expect("verifies")
            .problem,
        None
    );
}

/// A target down for every run: after `quarantine_after_failures` runs failed in a row the job
/// is quarantined (its status says so with the last error, and the trail has the failures and
/// the quarantine), `watch` stops running it, and once an operator resumes it the next run
/// applies and the quarantine is gone.
async fn a_failing_target_is_quarantined_until_resumed(state: StateDatabase) {
    let account = account_in(&state).await;
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let proxy = FaultProxy::start(&target.address).await;
    proxy.faults.down.store(true, Ordering::SeqCst);
    let target_url = format!("{}{GENERIC}", proxy.address);
    let mut job = job(
        &source,
        endpoint(&target_url, &target.token, Profile::Generic),
        &["eng-all"],
    );
    job.oversight.quarantine = QuarantineSettings {
        after_failures: 2,
        interval: Duration::from_secs(3600),
    };
    let oversight = job.oversight.clone();
    let trigger = Trigger::Interval(Duration::from_secs(3600));
    let running = Watching::start(watching(job, trigger, "test"), state.store.clone());
    eventually("the job is quarantined", || async {
        running.turns().contains(&"quarantined".to_string())
    })
    .await;
    // Quarantined: the watch waits out the interval and runs nothing more.
    let runs = state.store.sync_runs("test-job", 10).await.expect("runs");
    let outcomes: Vec<&str> = runs.iter().map(|run| run.outcome.as_str()).collect();
    assert_eq!(outcomes, ["error", "error"]);
    let quarantine =
        scimitar_sync::quarantine::status(&*state.store, "test-job", &oversight.quarantine)
            .await
            .expect("the status")
            .expect("quarantined");
    assert_eq!(quarantine.failures, 2);
    assert!(quarantine.last_error.contains("502"), "{quarantine:?}");
    let actions = actions_of(&sync_events(&state.store, &account).await);
    assert_eq!(
        actions,
        ["syncRunFailed", "syncRunFailed", "syncQuarantined"]
    );

    proxy.faults.down.store(false, Ordering::SeqCst);
    scimitar_sync::quarantine::resume(
        &*state.store,
        &SystemClock,
        "test-job",
        TargetRef {
            name: None,
            url: &target_url,
        },
        &oversight,
    )
    .await
    .expect("resumed");
    eventually("the resumed job runs and applies", || async {
        running.turns().last().map(String::as_str) == Some("ran applied")
    })
    .await;
    assert_eq!(target.member_names("platform").await, ["ADA", "BOB"]);
    assert_eq!(
        scimitar_sync::quarantine::status(&*state.store, "test-job", &oversight.quarantine)
            .await
            .expect("the status"),
        None
    );
    // Nothing is quarantined now: a second resume is refused, naming the job.
    let refused = scimitar_sync::quarantine::resume(
        &*state.store,
        &SystemClock,
        "test-job",
        TargetRef {
            name: None,
            url: &target_url,
        },
        &oversight,
    )
    .await
    .expect_err("not quarantined");
    assert!(refused.to_string().contains("test-job"), "{refused}");
    running.stop().await;
    let actions = actions_of(&sync_events(&state.store, &account).await);
    assert_eq!(count(&actions, "syncResumed"), 1, "{actions:?}");
    assert_eq!(count(&actions, "syncQuarantined"), 1, "{actions:?}");
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_target_is_quarantined_until_resumed_with_state_in_sqlite() {
    a_failing_target_is_quarantined_until_resumed(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_target_is_quarantined_until_resumed_with_state_in_postgres() {
    if let Some(state) = StateDatabase::postgres().await {
        a_failing_target_is_quarantined_until_resumed(state).await;
    }
}

/// A source of twelve users, all in `team`.
async fn wide_source() -> Scimitar {
    let source = Scimitar::start().await;
    let mut ids = Vec::new();
    for index in 0..12 {
        ids.push(source.create_user(&format!("user{index:02}")).await);
    }
    let members: Vec<&str> = ids.iter().map(String::as_str).collect();
    source.create_group("team", &members).await;
    source
}

/// One apply of the wide source into a fresh target behind a proxy held to `limits`: the
/// report, the proxy's counts, the target (for its contents), and how long the run took.
async fn limited_apply(
    source: &Scimitar,
    limits: Limits,
    write_delay_ms: u64,
) -> (Report, FaultProxy, Scimitar, Duration) {
    let state = StateDatabase::sqlite().await;
    let target = Scimitar::start().await;
    let proxy = FaultProxy::start(&target.address).await;
    proxy
        .faults
        .write_delay_ms
        .store(write_delay_ms, Ordering::SeqCst);
    let endpoint = endpoint(
        &format!("{}{GENERIC}", proxy.address),
        &target.token,
        Profile::Generic,
    )
    .with_limits(limits)
    // Single writes: what is held to the limits here is one request per item.
    .with_bulk(BulkSetting::Off);
    let job = job(source, endpoint, &[]);
    let begun = std::time::Instant::now();
    let report = apply(&job, &state).await;
    let took = begun.elapsed();
    state.close().await;
    (report, proxy, target, took)
}

/// A target's `max_concurrency` bounds the writes in flight (the proxy holds each a while, so
/// that concurrent ones overlap), `max_requests_per_second` paces every request (a lower bound
/// on the time only), and a concurrent run ends exactly as a sequential one does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_is_written_concurrently_up_to_its_limit_and_paced_to_its_rate() {
    let source = wide_source().await;
    let (concurrent, proxy, target, _) =
        limited_apply(&source, Limits::new(3, None).expect("limits"), 150).await;
    assert_eq!(concurrent.exit_code(), 0, "{:#?}", concurrent.failures);
    let most = proxy.faults.max_in_flight.load(Ordering::SeqCst);
    assert!(most <= 3, "{most} requests in flight at once");
    assert!(most >= 2, "the creates were not made concurrently");

    let (sequential, proxy, sequential_target, _) =
        limited_apply(&source, Limits::new(1, None).expect("limits"), 20).await;
    assert_eq!(proxy.faults.max_in_flight.load(Ordering::SeqCst), 1);
    assert_eq!(sequential.writes, concurrent.writes);
    assert_eq!(sequential.failures, concurrent.failures);
    assert_eq!(sequential.plan.creates, concurrent.plan.creates);
    assert_eq!(
        sequential.adopted_on_conflict,
        concurrent.adopted_on_conflict
    );
    // The same target: every user, and the group with all of them (target ids differ).
    assert_eq!(
        target.member_names("team").await,
        sequential_target.member_names("team").await
    );
    assert_eq!(target.member_names("team").await.len(), 12);
    assert_eq!(target.find("Users", "userName", "user07").await.len(), 1);

    let rate = 20.0;
    let (paced, proxy, _, took) =
        limited_apply(&source, Limits::new(4, Some(rate)).expect("limits"), 0).await;
    assert_eq!(paced.exit_code(), 0, "{:#?}", paced.failures);
    let requests = proxy.faults.requests.load(Ordering::SeqCst);
    assert!(requests > 13, "{requests}");
    // Every request to the target waited its turn: the run took at least the paced time.
    let paced_time = Duration::from_secs_f64((requests - 1) as f64 / rate);
    assert!(took >= paced_time, "{requests} requests in {took:?}");
}

/// A TLS front for a plain service on loopback, with a certificate a private CA issued for
/// 127.0.0.1: what a SCIM service behind HTTPS looks like to the job. It carries bytes both
/// ways once the handshake is done; a client that refuses the certificate gets nothing.
struct TlsFront {
    address: String,
    _task: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TlsFront {
    // ring's provider, the one reqwest's rustls builds (deprecated only for lacking
    // post-quantum key exchange).
    #[allow(deprecated)]
    async fn start(upstream: &str, ca: &PrivateCa) -> TlsFront {
        TlsFront::start_checking_clients(upstream, ca, None).await
    }

    /// A front that, given `client_ca`, demands a client certificate that CA issued (mutual
    /// TLS) and refuses the handshake of a client without one.
    #[allow(deprecated)]
    async fn start_checking_clients(
        upstream: &str,
        ca: &PrivateCa,
        client_ca: Option<&PrivateCa>,
    ) -> TlsFront {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certificates = CertificateDer::pem_file_iter(&ca.certificate_file)
            .expect("the certificate file")
            .collect::<Result<Vec<_>, _>>()
            .expect("PEM certificates");
        let key = PrivateKeyDer::from_pem_file(&ca.key_file).expect("the key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("TLS versions");
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(client_ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for certificate in
                    CertificateDer::pem_file_iter(&client_ca.ca_file).expect("the client CA's file")
                {
                    roots
                        .add(certificate.expect("a PEM certificate"))
                        .expect("a root");
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .expect("a client verifier");
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(certificates, key)
            .expect("a server configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let address = format!("https://{}", listener.local_addr().expect("an address"));
        let upstream = upstream.trim_start_matches("http://").to_string();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsFront {
            address,
            _task: AbortOnDrop(task),
        }
    }
}

/// A source and a target behind HTTPS whose certificates a private CA issued: with the
/// public CAs, or another private CA, the job refuses the target with an error that says so
/// (at once, not after retries) and writes nothing; with `ca_file` naming the CA that issued
/// them, it syncs through TLS on both sides and a re-run writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_is_trusted_through_ca_file_and_refused_without_it() {
    let (Some(ca), Some(other_ca)) = (PrivateCa::new(), PrivateCa::new()) else {
        return;
    };
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let source_front = TlsFront::start(&source.address, &ca).await;
    let target_front = TlsFront::start(&target.address, &ca).await;
    let over_https = |front: &TlsFront, token: &str, ca_file: Option<&std::path::Path>| {
        let endpoint = endpoint(
            &format!("{}{GENERIC}", front.address),
            token,
            Profile::Generic,
        );
        match ca_file {
            Some(ca_file) => endpoint.trusting_only(ca_file).expect("a CA file"),
            None => endpoint,
        }
    };
    let state = StateDatabase::sqlite().await;
    let job_to = |target_endpoint: ScimEndpoint| Job {
        source: Source::Scim(over_https(&source_front, &source.token, Some(&ca.ca_file))),
        ..job(&source, target_endpoint, &[])
    };
    for trusted in [None, Some(other_ca.ca_file.as_path())] {
        let refused = run(
            &job_to(over_https(&target_front, &target.token, trusted)),
            &*state.store,
            &SystemClock,
            Mode::Apply,
        )
        .await;
        let Err(SyncError::Target(message)) = refused else {
            panic!("trusting {trusted:?}: {refused:?}");
        };
        assert!(message.contains("does not trust"), "{message}");
        assert!(message.contains("ca_file"), "{message}");
        assert!(message.contains("UnknownIssuer"), "{message}");
    }
    assert!(target.find("Users", "userName", "ada").await.is_empty());

    let job = job_to(over_https(&target_front, &target.token, Some(&ca.ca_file)));
    let first = apply(&job, &state).await;
    assert_eq!(first.exit_code(), 0, "{:#?}", first.failures);
    assert_eq!(first.plan.creates.len(), 5);
    assert_eq!(target.member_names("platform").await, ["ADA", "BOB"]);
    let again = apply(&job, &state).await;
    assert_eq!(again.writes, 0, "{:#?}", again.plan);

    // A CA file that holds no certificate is refused when the job is built, not trusted as
    // "nothing" or replaced by the public CAs.
    let empty = tempfile::NamedTempFile::new().expect("a file");
    let error = endpoint(&target_front.address, &target.token, Profile::Generic)
        .trusting_only(empty.path())
        .expect_err("refused");
    assert!(error.contains("no PEM certificate"), "{error}");
    state.close().await;
}

/// Mutual TLS to SCIM services and a Scimitar source's change feed, in a file of its own.
#[path = "sync/client_certificates.rs"]
mod client_certificates;

/// The third-party Python reference server `scim2-server` (from the `.venv` that
/// `scripts/test` makes, or `SCIMITAR_VENV`), started on a free loopback port with a bearer
/// token; killed on drop. `None` when it is not installed, after saying so, except under `CI`,
/// where the test must run.
struct Scim2Server {
    child: std::process::Child,
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Scim2Server {
    async fn start() -> Option<Scim2Server> {
        let venv = std::env::var_os("SCIMITAR_VENV")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv")
            });
        let binary = venv.join("bin/scim2-server");
        if !binary.exists() {
            let advice = "run scripts/test once (it installs tests/external/requirements.txt \
                          into .venv), or set SCIMITAR_VENV";
            assert!(
                std::env::var_os("CI").is_none(),
                "scim2-server is not at {}, and CI must sync into it: {advice}",
                binary.display()
            );
            eprintln!(
                "skipped: scim2-server is not at {} ({advice})",
                binary.display()
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let token = "scim2-server-token".to_string();
        let child = std::process::Command::new(&binary)
            .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
            .args(["--bearer-token", &token])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("scim2-server starts");
        let server = Scim2Server {
            child,
            base: format!("http://127.0.0.1:{port}/v2"),
            token,
            client: reqwest::Client::new(),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "scim2-server did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(server)
    }

    async fn list(&self, kind: &str) -> Vec<Value> {
        let response = self
            .client
            .get(format!("{}/{kind}?count=1000", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("scim2-server answers");
        assert_eq!(response.status().as_u16(), 200);
        let page: Value = response.json().await.expect("a list");
        page["Resources"].as_array().cloned().unwrap_or_default()
    }

    async fn user(&self, user_name: &str) -> Option<Value> {
        self.list("Users")
            .await
            .into_iter()
            .find(|user| user["userName"] == json!(user_name))
    }

    /// A group's members as the userNames and displayNames of what they name.
    async fn member_names(&self, group_name: &str) -> Vec<String> {
        let users = self.list("Users").await;
        let groups = self.list("Groups").await;
        let group = groups
            .iter()
            .find(|group| group["displayName"] == json!(group_name))
            .unwrap_or_else(|| panic!("no group {group_name}: {groups:?}"));
        let mut names: Vec<String> = group["members"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|member| {
                let id = &member["value"];
                users
                    .iter()
                    .find(|user| &user["id"] == id)
                    .map(|user| user["userName"].as_str().unwrap_or_default().to_string())
                    .or_else(|| {
                        groups.iter().find(|group| &group["id"] == id).map(|group| {
                            group["displayName"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string()
                        })
                    })
                    .unwrap_or_else(|| format!("unknown {id}"))
            })
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scim2Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Scimitar into `scim2-server` on the generic profile (what its `/ServiceProviderConfig`
/// says): users, nested groups and memberships created, a re-run writes nothing; a nested
/// group taken out of scope and a user deleted at the source deactivate the users and retire
/// the group (its members removed), then all are deleted after the grace period, and a re-run
/// after that writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scimitar_source_syncs_into_scim2_server_and_a_rerun_writes_nothing() {
    let Some(target) = Scim2Server::start().await else {
        return;
    };
    let state = StateDatabase::sqlite().await;
    let source = seeded_source().await;
    let mut job = job(
        &source,
        endpoint(&target.base, &target.token, Profile::Generic),
        &["eng-all"],
    );
    job.policy.allow_deletions = true;
    let first = apply(&job, &state).await;
    assert_eq!(first.exit_code(), 0, "{:#?}", first.failures);
    assert_eq!(first.plan.creates.len(), 5, "{:#?}", first.plan);
    // scim2-server advertises Bulk (1,000 operations, 1 MiB): the creates, groups with their
    // members, went in its Bulk requests (`bulk = "auto"`, the default).
    assert!(first.capabilities.bulk);
    let ada = target.user("ada").await.expect("ada was created");
    assert_eq!(ada["emails"][0]["value"], json!("ada@example.com"));
    assert_eq!(ada["displayName"], json!("ADA"));
    assert_eq!(target.member_names("platform").await, ["ada", "bob"]);
    assert_eq!(target.member_names("eng-all").await, ["carol", "platform"]);
    let again = apply(&job, &state).await;
    assert!(again.plan.writes_nothing(), "{:#?}", again.plan);
    assert_eq!(again.writes, 0);

    // platform leaves eng-all (taking ada and bob out of scope), and carol is deleted.
    let platform = source.id_of("Groups", "displayName", "platform").await;
    let eng_all = source.id_of("Groups", "displayName", "eng-all").await;
    source
        .patch(
            "Groups",
            &eng_all,
            json!([{"op": "remove", "path": format!("members[value eq \"{platform}\"]")}]),
        )
        .await;
    let carol = source.id_of("Users", "userName", "carol").await;
    source.delete("Users", &carol).await;
    let changed = apply(&job, &state).await;
    assert_eq!(changed.exit_code(), 0, "{:#?}", changed.failures);
    assert_eq!(changed.plan.deactivations.len(), 4, "{:#?}", changed.plan);
    assert!(target.member_names("eng-all").await.is_empty());
    assert!(target.member_names("platform").await.is_empty(), "retired");
    for user in ["ada", "bob", "carol"] {
        let found = target.user(user).await.expect("deactivated, not deleted");
        assert_eq!(found["active"], json!(false), "{user}");
    }
    assert!(apply(&job, &state).await.plan.writes_nothing());

    let clock = ManualClock::new(SystemClock.now());
    clock.advance_micros(job.policy.delete_after_seconds * 1_000_000);
    let after = run(&job, &*state.store, &clock, Mode::Apply)
        .await
        .expect("runs");
    assert_eq!(after.exit_code(), 0, "{:#?}", after.failures);
    assert_eq!(after.plan.deletions.len(), 4, "{:#?}", after.plan);
    for user in ["ada", "bob", "carol"] {
        assert!(target.user(user).await.is_none(), "{user}");
    }
    let groups = target.list("Groups").await;
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["displayName"], json!("eng-all"));
    let last = run(&job, &*state.store, &clock, Mode::Apply)
        .await
        .expect("runs");
    assert!(last.plan.writes_nothing(), "{:#?}", last.plan);
    state.close().await;
}

/// A job's endpoint to `target` through `proxy`, writing in Bulk requests or not.
fn through(proxy: &FaultProxy, target: &Scimitar, bulk: BulkSetting) -> ScimEndpoint {
    endpoint(
        &format!("{}{GENERIC}", proxy.address),
        &target.token,
        Profile::Generic,
    )
    .with_bulk(bulk)
}

/// Users are created before groups and nested groups after the groups they hold, so that each
/// group is created with its members in the one request: five creates, no membership PATCH.
/// With `bulk = "off"` the creates are single POSTs although the target advertises Bulk.
async fn groups_are_created_with_their_members(state: StateDatabase) {
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let proxy = FaultProxy::start(&target.address).await;
    let job = job(
        &source,
        through(&proxy, &target, BulkSetting::Off),
        &["eng-all"],
    );
    let report = apply(&job, &state).await;
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    assert!(report.capabilities.bulk, "the target advertises Bulk");
    assert_eq!(report.writes, 5);
    assert_eq!(proxy.faults.posts.load(Ordering::SeqCst), 5);
    assert_eq!(proxy.faults.patches.load(Ordering::SeqCst), 0);
    assert_eq!(proxy.faults.bulk_requests.load(Ordering::SeqCst), 0);
    assert_eq!(target.member_names("eng-all").await, ["CAROL", "platform"]);
    assert_eq!(target.member_names("platform").await, ["ADA", "BOB"]);
    let again = apply(&job, &state).await;
    assert!(again.plan.writes_nothing(), "{:#?}", again.plan);
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_created_with_their_members_in_one_request_with_state_in_sqlite() {
    groups_are_created_with_their_members(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_created_with_their_members_in_one_request_with_state_in_postgres() {
    let Some(state) = StateDatabase::postgres().await else {
        return;
    };
    groups_are_created_with_their_members(state).await;
}

/// With `bulk = "auto"` and a target advertising Bulk, creates go in Bulk requests of at most
/// its `maxOperations` (5 here): the twelve users in three, the group with its twelve members
/// in a fourth; no single POST, no membership PATCH; a re-run writes nothing.
async fn creates_go_in_bulk_requests_cut_to_max_operations(state: StateDatabase) {
    let source = wide_source().await;
    let target = Scimitar::start().await;
    let proxy = FaultProxy::start(&target.address).await;
    proxy.faults.bulk_max_operations.store(5, Ordering::SeqCst);
    let job = job(&source, through(&proxy, &target, BulkSetting::Auto), &[]);
    let report = apply(&job, &state).await;
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    // Thirteen creates, and the update of the admin both sides have (adopted, given its
    // externalId): the one PATCH, since the group's members went with its create.
    assert_eq!(report.writes, 14, "{:#?}", report.plan);
    assert_eq!(report.plan.creates.len(), 13);
    assert_eq!(proxy.faults.bulk_requests.load(Ordering::SeqCst), 4);
    assert_eq!(proxy.faults.most_bulk_operations.load(Ordering::SeqCst), 5);
    assert_eq!(proxy.faults.posts.load(Ordering::SeqCst), 0);
    assert_eq!(proxy.faults.patches.load(Ordering::SeqCst), 1);
    assert_eq!(target.member_names("team").await.len(), 12);
    assert_eq!(target.find("Users", "userName", "user07").await.len(), 1);
    let recorded = job_state(&*state.store, "test-job")
        .await
        .expect("the state");
    // The thirteen created, and the admin both sides have, adopted.
    assert_eq!(recorded.mappings.len(), 14);
    let again = apply(&job, &state).await;
    assert!(again.plan.writes_nothing(), "{:#?}", again.plan);
    assert_eq!(again.writes, 0);
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_go_in_bulk_requests_cut_to_max_operations_with_state_in_sqlite() {
    creates_go_in_bulk_requests_cut_to_max_operations(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_go_in_bulk_requests_cut_to_max_operations_with_state_in_postgres() {
    let Some(state) = StateDatabase::postgres().await else {
        return;
    };
    creates_go_in_bulk_requests_cut_to_max_operations(state).await;
}

/// An operation the target refuses within a Bulk request is that item's failure, with the
/// target's status; the others in the same request stand (bob's group is created without him).
/// The next run creates bob and adds him.
async fn a_refused_bulk_operation_fails_only_its_item(state: StateDatabase) {
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let proxy = FaultProxy::start(&target.address).await;
    *proxy.faults.spoil_in_bulk.lock().expect("lock") = Some("\"bob\"".into());
    let job = job(
        &source,
        through(&proxy, &target, BulkSetting::Auto),
        &["eng-all"],
    );
    let report = apply(&job, &state).await;
    assert_ne!(report.exit_code(), 0);
    assert_eq!(report.failures.len(), 1, "{:#?}", report.failures);
    assert_eq!(report.failures[0].item, "create user bob");
    assert!(
        report.failures[0].error.starts_with("HTTP 400"),
        "{:#?}",
        report.failures
    );
    assert_eq!(report.writes, 4);
    assert!(target.find("Users", "userName", "bob").await.is_empty());
    assert_eq!(target.member_names("platform").await, ["ADA"]);
    assert_eq!(target.member_names("eng-all").await, ["CAROL", "platform"]);

    *proxy.faults.spoil_in_bulk.lock().expect("lock") = None;
    let next = apply(&job, &state).await;
    assert_eq!(next.exit_code(), 0, "{:#?}", next.failures);
    assert_eq!(target.member_names("platform").await, ["ADA", "BOB"]);
    assert!(apply(&job, &state).await.plan.writes_nothing());
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_bulk_operation_fails_only_its_item_with_state_in_sqlite() {
    a_refused_bulk_operation_fails_only_its_item(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_bulk_operation_fails_only_its_item_with_state_in_postgres() {
    let Some(state) = StateDatabase::postgres().await else {
        return;
    };
    a_refused_bulk_operation_fails_only_its_item(state).await;
}

/// A 409 within a Bulk answer is matched and adopted as a single create's is: no duplicate,
/// the object adopted, and the group created after it holds it.
async fn a_409_within_bulk_is_adopted(state: StateDatabase) {
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let existing = target.create_user("bob").await;
    let proxy = FaultProxy::start(&target.address).await;
    *proxy.faults.hide_user.lock().expect("lock") = Some("bob".into());
    let job = job(
        &source,
        through(&proxy, &target, BulkSetting::Auto),
        &["eng-all"],
    );
    let report = apply(&job, &state).await;
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    assert_eq!(report.adopted_on_conflict, 1);
    assert_eq!(proxy.faults.posts.load(Ordering::SeqCst), 0);
    assert!(proxy.faults.bulk_requests.load(Ordering::SeqCst) >= 1);
    assert_eq!(target.find("Users", "userName", "bob").await.len(), 1);
    assert_eq!(target.member_names("platform").await, ["ADA", "BOB"]);
    let recorded = job_state(&*state.store, "test-job")
        .await
        .expect("the state");
    let bob = recorded
        .mappings
        .values()
        .find(|m| m.target_id == existing)
        .expect("bob is managed");
    assert_eq!(bob.ownership, Ownership::Adopted);
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_within_a_bulk_answer_is_matched_and_adopted_with_state_in_sqlite() {
    a_409_within_bulk_is_adopted(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_within_a_bulk_answer_is_matched_and_adopted_with_state_in_postgres() {
    let Some(state) = StateDatabase::postgres().await else {
        return;
    };
    a_409_within_bulk_is_adopted(state).await;
}

/// `bulk = "auto"` writes one create at a time to a target that does not advertise Bulk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_does_not_advertise_bulk_gets_single_creates_under_bulk_auto() {
    let state = StateDatabase::sqlite().await;
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let proxy = FaultProxy::start(&target.address).await;
    proxy.faults.no_bulk.store(true, Ordering::SeqCst);
    let job = job(
        &source,
        through(&proxy, &target, BulkSetting::Auto),
        &["eng-all"],
    );
    let report = apply(&job, &state).await;
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    assert!(!report.capabilities.bulk);
    assert_eq!(proxy.faults.bulk_requests.load(Ordering::SeqCst), 0);
    assert_eq!(proxy.faults.posts.load(Ordering::SeqCst), 5);
    assert_eq!(target.member_names("platform").await, ["ADA", "BOB"]);
    state.close().await;
}

/// A target that advertises Bulk but answers the Bulk request itself 501 is sent the same
/// creates one at a time: the run succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_refuses_bulk_requests_gets_the_creates_one_at_a_time() {
    let state = StateDatabase::sqlite().await;
    let source = seeded_source().await;
    let target = Scimitar::start().await;
    let proxy = FaultProxy::start(&target.address).await;
    proxy.faults.refuse_bulk.store(true, Ordering::SeqCst);
    let job = job(
        &source,
        through(&proxy, &target, BulkSetting::Auto),
        &["eng-all"],
    );
    let report = apply(&job, &state).await;
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    assert!(report.capabilities.bulk);
    assert_eq!(report.writes, 5);
    assert_eq!(proxy.faults.posts.load(Ordering::SeqCst), 5);
    assert_eq!(target.member_names("eng-all").await, ["CAROL", "platform"]);
    assert_eq!(target.member_names("platform").await, ["ADA", "BOB"]);
    state.close().await;
}

/// Drift at the target, told apart from the source's changes.
#[path = "sync/drift.rs"]
mod drift;
/// The scope filter, attribute mappings and the Databricks account profile.
#[path = "sync/scope_mapping_account.rs"]
mod scope_mapping_account;
/// A large run's record: exact counts and bounded samples.
#[path = "sync/stored_report.rs"]
mod stored_report;
