//! The test harness: `spawn_app()` starts the application exactly as `scimitar serve` does
//! (bootstrap, bind on port 0, serve) and returns a client for it.
//!
//! Each app gets a database of its own: a SQLite file in a temporary directory, or, with
//! `SCIMITAR_TEST_BACKEND=postgres`, a scratch database created on the PostgreSQL server that
//! `TEST_DATABASE_URL` names and dropped when the app is.

use reqwest::header::HeaderMap;
use reqwest::Method;
use scimitar_app::service::Services;
use scimitar_domain::{RandomIds, SystemClock};
use scimitar_server::Application;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::oneshot;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const SERVICE_PRINCIPAL_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal";
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// The generic mount point, which most tests use.
pub const SCIM: &str = "/scim/v2";

/// A running application over its own database. Dropping it stops the server and deletes the
/// database directory.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub address: String,
    /// The bootstrap admin token's secret.
    pub token: String,
    pub client: reqwest::Client,
    /// The running app's services, for tests that must set up state no HTTP API makes yet
    /// (directory placement, Unity Catalog securables) or mint tokens for other principals.
    pub services: Services,
    /// The bootstrapped account.
    pub account: scimitar_domain::AccountId,
    /// Kept so the server stops when the test ends.
    _shutdown: oneshot::Sender<()>,
    /// Kept so the database outlives the server (fields drop in order: the server first).
    _database: TestDatabase,
}

/// Where a test app's data lives; dropping it removes the database.
pub enum TestDatabase {
    /// The temporary directory holding the file; deleted when dropped.
    Sqlite {
        _directory: tempfile::TempDir,
    },
    Postgres {
        server: String,
        name: String,
    },
}

impl TestDatabase {
    /// A fresh, empty database for the backend the environment selects, and its URL.
    pub async fn fresh() -> (TestDatabase, String) {
        match std::env::var("SCIMITAR_TEST_BACKEND").as_deref() {
            Ok("postgres") => {
                let server = std::env::var("TEST_DATABASE_URL").expect(
                    "SCIMITAR_TEST_BACKEND=postgres needs TEST_DATABASE_URL, \
                     e.g. postgres://postgres@127.0.0.1:5432/test",
                );
                static NEXT: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(0);
                let name = format!(
                    "scimitar_api_{}_{}",
                    std::process::id(),
                    NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                );
                let url = scimitar_store::postgres::scratch::create(&server, &name)
                    .await
                    .unwrap_or_else(|error| panic!("cannot create database {name}: {error}"));
                (TestDatabase::Postgres { server, name }, url)
            }
            Ok("sqlite") | Err(_) => {
                let directory = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}/db.sqlite", directory.path().display());
                (
                    TestDatabase::Sqlite {
                        _directory: directory,
                    },
                    url,
                )
            }
            Ok(other) => panic!("SCIMITAR_TEST_BACKEND={other}: use sqlite or postgres"),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres { server, name } = self {
            // Drop is synchronous and runs inside the test's runtime: the database is dropped
            // on a thread of its own with a runtime of its own.
            let (server, name) = (server.clone(), name.clone());
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(scimitar_store::postgres::scratch::drop(&server, &name))
            })
            .join();
            if let Ok(Err(error)) = dropped {
                eprintln!("could not drop a test database: {error}");
            }
        }
    }
}

/// A response, read whole: status, headers and the JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts an RFC 7644 error response: the status, the error schema, `status` as a string,
    /// a `detail`, and the `scimType` when one is expected.
    pub fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(self.body["schemas"], json!([ERROR_SCHEMA]), "{}", self.body);
        assert_eq!(
            self.body["status"],
            json!(status.to_string()),
            "{}",
            self.body
        );
        assert!(
            self.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "an error needs a detail: {}",
            self.body
        );
        if let Some(scim_type) = scim_type {
            assert_eq!(self.body["scimType"], json!(scim_type), "{}", self.body);
        }
    }

    /// The `id` of the returned resource.
    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.body))
            .to_string()
    }

    /// `Resources` of a list response.
    pub fn resources(&self) -> &Vec<Value> {
        self.body["Resources"]
            .as_array()
            .unwrap_or_else(|| panic!("not a list response: {}", self.body))
    }

    pub fn total(&self) -> u64 {
        self.body["totalResults"]
            .as_u64()
            .unwrap_or_else(|| panic!("no totalResults in {}", self.body))
    }
}

pub async fn spawn_app() -> TestApp {
    let (database, url) = TestDatabase::fresh().await;
    spawn_app_on(database, &url).await
}

/// Starts the application over the database at `url`, which `database` owns.
pub async fn spawn_app_on(database: TestDatabase, url: &str) -> TestApp {
    let settings = scimitar_server::WorkspaceSettings::default();
    spawn_configured(database, url, settings, Arc::new(SystemClock)).await
}

/// [`spawn_app`] on a clock the test moves (`ManualClock`): expiry and rotation overlaps
/// are tested without waiting.
pub async fn spawn_app_with_clock(clock: Arc<dyn scimitar_domain::Clock>) -> TestApp {
    let (database, url) = TestDatabase::fresh().await;
    let settings = scimitar_server::WorkspaceSettings::default();
    spawn_configured(database, &url, settings, clock).await
}

/// [`spawn_app`] with workspace addressing configured (a default workspace, a host domain).
pub async fn spawn_app_with_workspaces(settings: scimitar_server::WorkspaceSettings) -> TestApp {
    let (database, url) = TestDatabase::fresh().await;
    spawn_configured(database, &url, settings, Arc::new(SystemClock)).await
}

async fn spawn_configured(
    database: TestDatabase,
    url: &str,
    settings: scimitar_server::WorkspaceSettings,
    clock: Arc<dyn scimitar_domain::Clock>,
) -> TestApp {
    let (services, token, account) = bootstrapped_with_clock(url, clock).await;
    let application = Application::bind("127.0.0.1:0", services.clone())
        .await
        .expect("binds a free port")
        .with_workspaces(settings);
    let address = format!("http://{}", application.local_addr().expect("an address"));
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        token,
        client: reqwest::Client::new(),
        services,
        account,
        _shutdown: shutdown,
        _database: database,
    }
}

/// The services over the empty database at `url`, bootstrapped: with the first admin's token
/// secret and the account, for tests that start the application their own way.
pub async fn bootstrapped(url: &str) -> (Services, String, scimitar_domain::AccountId) {
    bootstrapped_with_clock(url, Arc::new(SystemClock)).await
}

/// [`bootstrapped`] with the clock the services read.
pub async fn bootstrapped_with_clock(
    url: &str,
    clock: Arc<dyn scimitar_domain::Clock>,
) -> (Services, String, scimitar_domain::AccountId) {
    let options = scimitar_store::StoreOptions { max_connections: 4 };
    let store = scimitar_store::open_with(url, &options)
        .await
        .expect("the store opens");
    let services = Services::new(store, clock, Arc::new(RandomIds));
    let bootstrap = services
        .bootstrap()
        .await
        .expect("bootstrap succeeds")
        .expect("an empty database is bootstrapped");
    let token = bootstrap.admin_token.expose().to_string();
    (services, token, bootstrap.account.id)
}

/// A request with `token` (or none) to a path from the root, with a JSON body if given.
pub async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut request = app.client.request(method, format!("{}{path}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.expect("sent")).await
}

/// An access question (`check`, `who`, `what`) asked with `token` in a workspace, by `/w/{id}`.
pub async fn ask_in(
    app: &TestApp,
    workspace: &str,
    token: &str,
    question: &str,
    query: &[(&str, &str)],
) -> Reply {
    let path = format!("/w/{workspace}/api/2.0/access/{question}");
    let request = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(token)
        .query(query);
    read(request.send().await.expect("sent")).await
}

pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("a readable body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

pub fn patch_op(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations})
}

impl TestApp {
    /// A token for a principal other than the bootstrap admin, minted by an admin as
    /// `scimitar token create --user` does. It may do what its principal may do.
    pub async fn token_for(&self, principal_id: &str) -> String {
        let operator = self
            .services
            .act_as_admin(&self.account)
            .await
            .expect("an admin to act as");
        let admin = self
            .services
            .authorize_admin(&operator)
            .await
            .expect("the operator is an admin");
        self.services
            .create_token(
                &admin,
                &scimitar_domain::PrincipalId::new(principal_id),
                scimitar_domain::credentials::TokenScope::AllApis,
                None,
            )
            .await
            .expect("a token")
            .expose()
            .to_string()
    }

    /// An absolute URL for a path under the generic mount point.
    pub fn url(&self, path: &str) -> String {
        format!("{}{SCIM}{path}", self.address)
    }

    /// A request to an absolute path on the server (any mount), with the admin token.
    pub fn request(&self, method: Method, path_from_root: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path_from_root}", self.address))
            .bearer_auth(&self.token)
    }

    /// A request under `/scim/v2` with the admin token.
    pub fn scim(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.request(method, &format!("{SCIM}{path}"))
    }

    pub async fn get(&self, path: &str) -> Reply {
        read(self.scim(Method::GET, path).send().await.expect("sent")).await
    }

    pub async fn get_with(&self, path: &str, query: &[(&str, &str)]) -> Reply {
        read(
            self.scim(Method::GET, path)
                .query(query)
                .send()
                .await
                .expect("sent"),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        read(
            self.scim(Method::POST, path)
                .json(&body)
                .send()
                .await
                .expect("sent"),
        )
        .await
    }

    pub async fn post_with(&self, path: &str, query: &[(&str, &str)], body: Value) -> Reply {
        read(
            self.scim(Method::POST, path)
                .query(query)
                .json(&body)
                .send()
                .await
                .expect("sent"),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        read(
            self.scim(Method::PUT, path)
                .json(&body)
                .send()
                .await
                .expect("sent"),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        read(
            self.scim(Method::PATCH, path)
                .json(&body)
                .send()
                .await
                .expect("sent"),
        )
        .await
    }

    pub async fn patch_with(&self, path: &str, query: &[(&str, &str)], body: Value) -> Reply {
        read(
            self.scim(Method::PATCH, path)
                .query(query)
                .json(&body)
                .send()
                .await
                .expect("sent"),
        )
        .await
    }

    /// PATCH with a PatchOp body built from `operations`.
    pub async fn patch_ops(&self, path: &str, operations: Value) -> Reply {
        self.patch(path, patch_op(operations)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        read(self.scim(Method::DELETE, path).send().await.expect("sent")).await
    }

    /// Creates a user with this userName and returns the created document.
    pub async fn create_user(&self, user_name: &str) -> Value {
        let reply = self
            .post(
                "/Users",
                json!({"schemas": [USER_SCHEMA], "userName": user_name}),
            )
            .await;
        assert_eq!(reply.status, 201, "creating {user_name}: {}", reply.body);
        reply.body
    }

    pub async fn create_group(&self, display_name: &str, member_ids: &[&str]) -> Value {
        let members: Vec<Value> = member_ids.iter().map(|id| json!({"value": id})).collect();
        let reply = self
            .post(
                "/Groups",
                json!({"schemas": [GROUP_SCHEMA], "displayName": display_name, "members": members}),
            )
            .await;
        assert_eq!(reply.status, 201, "creating {display_name}: {}", reply.body);
        reply.body
    }

    pub async fn create_service_principal(&self, display_name: &str) -> Value {
        let reply = self
            .post(
                "/ServicePrincipals",
                json!({"schemas": [SERVICE_PRINCIPAL_SCHEMA], "displayName": display_name}),
            )
            .await;
        assert_eq!(reply.status, 201, "creating {display_name}: {}", reply.body);
        reply.body
    }

    /// The id of the built-in group with this name.
    pub async fn system_group_id(&self, name: &str) -> String {
        let filter = format!("displayName eq \"{name}\"");
        let reply = self.get_with("/Groups", &[("filter", &filter)]).await;
        assert_eq!(reply.total(), 1, "{}", reply.body);
        reply.resources()[0]["id"].as_str().unwrap().to_string()
    }

    /// Makes a second active admin, so that the first (whose token the app holds) may be
    /// deactivated or deleted: an account keeps at least one active admin.
    pub async fn add_second_admin(&self) -> Value {
        let admins = self.system_group_id("admins").await;
        let user = self.create_user("second.admin@example.com").await;
        let reply = self
            .patch_ops(
                &format!("/Groups/{admins}"),
                json!([{"op": "add", "path": "members", "value": [{"value": user["id"]}]}]),
            )
            .await;
        assert_eq!(reply.status, 200, "adding a second admin: {}", reply.body);
        user
    }

    /// The ids of a group's members, read back with GET.
    pub async fn member_ids(&self, group_id: &str) -> Vec<String> {
        let reply = self.get(&format!("/Groups/{group_id}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        member_ids_of(&reply.body)
    }

    /// The ids of the groups `groups` lists on a user or service principal.
    pub async fn group_ids_of(&self, path: &str) -> Vec<String> {
        let reply = self.get(path).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["groups"]
            .as_array()
            .map(|groups| {
                groups
                    .iter()
                    .filter_map(|group| group["value"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub fn member_ids_of(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .filter_map(|member| member["value"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The `userName`s (or `displayName`s for groups) of a list response, in order.
pub fn names_of(reply: &Reply, attribute: &str) -> Vec<String> {
    reply
        .resources()
        .iter()
        .filter_map(|resource| resource[attribute].as_str().map(str::to_string))
        .collect()
}

pub fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string '{key}' in {value}"))
}

/// [`spawn_app_on`] with the clock the services read.
pub async fn spawn_app_on_with_clock(
    database: TestDatabase,
    url: &str,
    clock: Arc<dyn scimitar_domain::Clock>,
) -> TestApp {
    let settings = scimitar_server::WorkspaceSettings::default();
    spawn_configured(database, url, settings, clock).await
}

/// [`spawn_app`] with audit alert settings (fast polls and retries, rules of a config file).
pub async fn spawn_app_with_alerts(alerts: scimitar_app::alerts::AlertSettings) -> TestApp {
    let (database, url) = TestDatabase::fresh().await;
    let (services, token, account) = bootstrapped(&url).await;
    let application = Application::bind("127.0.0.1:0", services.clone())
        .await
        .expect("binds a free port")
        .with_alerts(alerts);
    let address = format!("http://{}", application.local_addr().expect("an address"));
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        token,
        client: reqwest::Client::new(),
        services,
        account,
        _shutdown: shutdown,
        _database: database,
    }
}
