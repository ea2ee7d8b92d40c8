//! The scope filter, attribute mappings with transforms, and the Databricks account profile,
//! each into a real Scimitar target, with the job's state in SQLite and in PostgreSQL.

use super::*;

/// A policy from its TOML text, as a job file's `[policy]` holds it.
fn policy(text: &str) -> Policy {
    toml::from_str(text).expect("a valid [policy]")
}

/// A source user with an address of its own choosing.
async fn create_user_with_email(source: &Scimitar, user_name: &str, email: &str) -> String {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "displayName": user_name.to_uppercase(),
        "emails": [{"value": email, "primary": true}],
    });
    let (status, created) = source
        .call(reqwest::Method::POST, "Users", Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("an id").to_string()
}

const MAPPED: &str = r#"
groups = ["eng-all"]
filter = 'emails.value ew "@example.com"'
[mappings.user]
userName = { from = "email", transforms = [{ split = "@" }, "first", { prefix = "x-" }] }
displayName = { from = "displayName", transforms = ["lower"] }
givenName = { from = "familyName", default = "Unknown" }
[mappings.group]
displayName = { from = "displayName", transforms = [{ suffix = "-team" }] }
"#;

/// `eng-all` holds `platform` (ada, bob), carol and dave; dave's address is elsewhere, so the
/// filter leaves him out. Mapped names arrive, a re-run writes nothing, a changed mapping
/// updates what it changes, and a narrower filter deprovisions who falls outside it.
async fn mapped_attributes_and_the_scope_filter(state: StateDatabase) {
    let source = Scimitar::start().await;
    let ada = source.create_user("ada").await;
    let bob = source.create_user("bob").await;
    let carol = source.create_user("carol").await;
    let dave = create_user_with_email(&source, "dave", "dave@elsewhere.org").await;
    let platform = source.create_group("platform", &[&ada, &bob]).await;
    source
        .create_group("eng-all", &[&platform, &carol, &dave])
        .await;
    let target = Scimitar::start().await;
    let mut job = job(&source, target.endpoint(GENERIC, Profile::Generic), &[]);
    job.policy = policy(MAPPED);

    let first = apply(&job, &state).await;
    assert_eq!(first.exit_code(), 0, "{:#?}", first.failures);
    assert_eq!(first.plan.creates.len(), 5, "{:#?}", first.plan.creates);
    let ada_there = target.one("Users", "userName", "x-ada").await;
    assert_eq!(ada_there["displayName"], json!("ada"));
    assert_eq!(ada_there["name"]["givenName"], json!("Unknown"));
    // Unmapped attributes are the source's own.
    assert_eq!(ada_there["emails"][0]["value"], json!("ada@example.com"));
    assert!(target.find("Users", "userName", "dave").await.is_empty());
    assert!(target.find("Users", "userName", "x-dave").await.is_empty());
    assert_eq!(
        target.member_names("eng-all-team").await,
        ["carol", "platform-team"]
    );
    assert_eq!(target.member_names("platform-team").await, ["ada", "bob"]);

    let again = apply(&job, &state).await;
    assert!(again.plan.writes_nothing(), "{:#?}", again.plan);
    assert_eq!(again.writes, 0);

    // A changed mapping is an update of each object whose value it changes.
    job.policy = policy(&MAPPED.replace(
        r#"transforms = ["lower"]"#,
        r#"transforms = ["upper", { replace = ["A", "4"] }]"#,
    ));
    let changed = apply(&job, &state).await;
    assert_eq!(changed.exit_code(), 0, "{:#?}", changed.failures);
    assert_eq!(changed.plan.updates.len(), 3, "{:#?}", changed.plan.updates);
    assert!(changed.plan.creates.is_empty() && changed.plan.deactivations.is_empty());
    assert_eq!(
        target.one("Users", "userName", "x-ada").await["displayName"],
        json!("4D4")
    );
    assert_eq!(
        target.one("Users", "userName", "x-carol").await["displayName"],
        json!("C4ROL")
    );
    assert!(apply(&job, &state).await.plan.writes_nothing());

    // Out of the filter is out of scope: deactivated, and out of the groups it was in.
    let narrower = MAPPED
        .replace(
            r#"filter = 'emails.value ew "@example.com"'"#,
            r#"filter = 'emails.value ew "@example.com" and not (userName eq "carol")'"#,
        )
        .replace(
            r#"transforms = ["lower"]"#,
            r#"transforms = ["upper", { replace = ["A", "4"] }]"#,
        );
    job.policy = policy(&narrower);
    let narrowed = apply(&job, &state).await;
    assert_eq!(narrowed.exit_code(), 0, "{:#?}", narrowed.failures);
    let gone: Vec<&str> = narrowed
        .plan
        .deactivations
        .iter()
        .map(|item| item.label.as_str())
        .collect();
    assert_eq!(gone, ["x-carol"]);
    assert_eq!(
        target.one("Users", "userName", "x-carol").await["active"],
        json!(false)
    );
    assert_eq!(target.member_names("eng-all-team").await, ["platform-team"]);
    assert!(apply(&job, &state).await.plan.writes_nothing());
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_attributes_and_the_scope_filter_reach_the_target_with_state_in_sqlite() {
    mapped_attributes_and_the_scope_filter(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_attributes_and_the_scope_filter_reach_the_target_with_state_in_postgres() {
    let Some(state) = StateDatabase::postgres().await else {
        return;
    };
    mapped_attributes_and_the_scope_filter(state).await;
}

/// A GET at a Scimitar's account mount, past any proxy.
async fn account_get(scimitar: &Scimitar, path: &str) -> (u16, Value) {
    let response = scimitar
        .client
        .get(format!(
            "{}/api/2.0/accounts/{}/scim/v2/{path}",
            scimitar.address, scimitar.account
        ))
        .bearer_auth(&scimitar.token)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The one resource of a kind at a Scimitar's account mount whose `attribute` is `value`.
async fn account_one(scimitar: &Scimitar, kind: &str, attribute: &str, value: &str) -> Value {
    let (status, page) = account_get(
        scimitar,
        &format!("{kind}?filter={attribute}%20eq%20%22{value}%22"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let found = page["Resources"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        found.len(),
        1,
        "one {kind} with {attribute} {value}: {found:?}"
    );
    let id = found[0]["id"].as_str().expect("an id");
    account_get(scimitar, &format!("{kind}/{id}")).await.1
}

/// The displayNames of an account group's members, read one by one at the account mount.
async fn account_member_names(scimitar: &Scimitar, group_name: &str) -> Vec<String> {
    let group = account_one(scimitar, "Groups", "displayName", group_name).await;
    let mut names = Vec::new();
    for member in group["members"].as_array().cloned().unwrap_or_default() {
        let id = member["value"].as_str().expect("a member id");
        for kind in ["Users", "Groups", "ServicePrincipals"] {
            let (status, found) = account_get(scimitar, &format!("{kind}/{id}")).await;
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

/// A proxy in front of an account mount that answers as Databricks' account API has since
/// 2025: group lists without `members` (a group read by id has them). It counts group reads
/// by id.
struct AccountApiProxy {
    address: String,
    groups_read_by_id: Arc<AtomicUsize>,
    _shutdown: oneshot::Sender<()>,
}

impl AccountApiProxy {
    async fn start(upstream: &str) -> AccountApiProxy {
        let upstream = upstream.to_string();
        let client = reqwest::Client::new();
        let groups_read_by_id = Arc::new(AtomicUsize::new(0));
        let counter = groups_read_by_id.clone();
        let router = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (upstream, client, counter) = (upstream.clone(), client.clone(), counter.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 24)
                    .await
                    .unwrap_or_default();
                let path = parts.uri.to_string();
                let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
                    .expect("a method");
                let read = method == reqwest::Method::GET;
                let group_list = read && parts.uri.path().ends_with("/Groups");
                if read && parts.uri.path().contains("/Groups/") {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                let mut forwarded = client.request(method, format!("{upstream}{path}"));
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
                if group_list {
                    if let Ok(mut page) = serde_json::from_str::<Value>(&text) {
                        for group in page["Resources"].as_array_mut().into_iter().flatten() {
                            if let Some(group) = group.as_object_mut() {
                                group.remove("members");
                            }
                        }
                        text = page.to_string();
                    }
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
        AccountApiProxy {
            address,
            groups_read_by_id,
            _shutdown: shutdown,
        }
    }
}

/// Into Scimitar's account mount (`/api/2.0/accounts/{id}/scim/v2`), its profile found from the
/// URL, behind a proxy that lists groups without members as Databricks does: account groups
/// nest, service principals are created by applicationId, entitlements (a workspace's) are not
/// sent, members are read by id, and a re-run writes nothing.
async fn an_account_target(state: StateDatabase) {
    let source = seeded_source().await;
    let (status, robot) = source
        .call(
            reqwest::Method::POST,
            "ServicePrincipals",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"],
                "applicationId": "7d9f3a52-0b1c-4e0e-9a51-2f0a6b1c9d11",
                "displayName": "etl-robot",
            })),
        )
        .await;
    assert_eq!(status, 201, "{robot}");
    let robot_id = robot["id"].as_str().expect("an id").to_string();
    let (status, body) = source
        .call(
            reqwest::Method::PATCH,
            &format!(
                "Groups/{}",
                source.one("Groups", "displayName", "platform").await["id"]
                    .as_str()
                    .expect("an id")
            ),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": robot_id}]}],
            })),
        )
        .await;
    assert!(status == 200 || status == 204, "{status} {body}");

    let target = Scimitar::start().await;
    let proxy = AccountApiProxy::start(&target.address).await;
    let url = format!(
        "{}/api/2.0/accounts/{}/scim/v2",
        proxy.address, target.account
    );
    let profile = scimitar_sync::config::Profile::for_url(&url, None);
    assert_eq!(profile, Profile::DatabricksAccount);
    let mut job = job(
        &source,
        endpoint(&url, &target.token, profile),
        &["eng-all"],
    );
    job.profile = profile;
    job.policy.entitlements = [(
        "platform".to_string(),
        vec!["allow-cluster-create".to_string()],
    )]
    .into_iter()
    .collect();

    let first = apply(&job, &state).await;
    assert_eq!(first.exit_code(), 0, "{:#?}", first.failures);
    assert_eq!(first.plan.creates.len(), 6, "{:#?}", first.plan.creates);
    let (status, robots) = account_get(&target, "ServicePrincipals").await;
    assert_eq!(status, 200, "{robots}");
    let robots = robots["Resources"].as_array().cloned().unwrap_or_default();
    assert_eq!(robots.len(), 1, "{robots:?}");
    let created_robot = &robots[0];
    assert_eq!(
        created_robot["applicationId"],
        json!("7d9f3a52-0b1c-4e0e-9a51-2f0a6b1c9d11")
    );
    assert_eq!(created_robot["displayName"], json!("etl-robot"));
    // Account groups nest, and hold service principals.
    assert_eq!(
        account_member_names(&target, "eng-all").await,
        ["CAROL", "platform"]
    );
    assert_eq!(
        account_member_names(&target, "platform").await,
        ["ADA", "BOB", "etl-robot"]
    );
    let platform = account_one(&target, "Groups", "displayName", "platform").await;
    // Entitlements are a workspace's: the account profile sends none.
    assert!(
        platform
            .get("entitlements")
            .is_none_or(|e| e.as_array().is_some_and(Vec::is_empty)),
        "{platform}"
    );

    // The lists hid every group's members: the job read them by id, and sees them as they
    // are, so a re-run writes nothing.
    proxy.groups_read_by_id.store(0, Ordering::SeqCst);
    let again = apply(&job, &state).await;
    assert!(again.plan.writes_nothing(), "{:#?}", again.plan);
    assert!(
        proxy.groups_read_by_id.load(Ordering::SeqCst) >= 2,
        "both groups were read by id"
    );

    // A member removed at the source is removed at the account group.
    let carol = source.one("Users", "userName", "carol").await;
    source
        .delete("Users", carol["id"].as_str().expect("an id"))
        .await;
    let mut allowed = job.clone();
    allowed.policy.allow_deletions = true;
    let removed = apply(&allowed, &state).await;
    assert_eq!(removed.exit_code(), 0, "{:#?}", removed.failures);
    assert_eq!(account_member_names(&target, "eng-all").await, ["platform"]);
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_databricks_account_target_gets_account_groups_and_service_principals_with_state_in_sqlite(
) {
    an_account_target(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_databricks_account_target_gets_account_groups_and_service_principals_with_state_in_postgres(
) {
    let Some(state) = StateDatabase::postgres().await else {
        return;
    };
    an_account_target(state).await;
}

/// A PATCH of a source group's members.
async fn change_members(source: &Scimitar, group: &str, operation: Value) {
    let group = source.one("Groups", "displayName", group).await;
    let (status, body) = source
        .call(
            reqwest::Method::PATCH,
            &format!("Groups/{}", group["id"].as_str().expect("an id")),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [operation],
            })),
        )
        .await;
    assert!(status == 200 || status == 204, "{status} {body}");
}

/// Into a target that flattens: a member added to (then removed from) `platform`, nested in
/// `eng-all`, reaches `eng-all`'s flattened members in an incremental run, which reads
/// `eng-all` as `platform`'s ancestor and never reads the source whole.
async fn incremental_runs_into_a_target_that_flattens(state: StateDatabase) {
    let source = seeded_source().await;
    let core = source.create_user("erin").await;
    let core_group = source.create_group("core", &[&core]).await;
    change_members(
        &source,
        "eng-all",
        json!({"op": "add", "path": "members", "value": [{"value": core_group}]}),
    )
    .await;
    let target = Scimitar::start().await;
    let proxy = FaultProxy::start(&source.address).await;
    let mut job = job(
        &source,
        target.endpoint(GENERIC, Profile::Generic),
        &["eng-all"],
    );
    job.source = Source::Scim(endpoint(
        &format!("{}{GENERIC}", proxy.address),
        &source.token,
        Profile::Generic,
    ));
    job.nested_groups = Some(false);
    assert_eq!(apply(&job, &state).await.exit_code(), 0);
    assert_eq!(
        target.member_names("eng-all").await,
        ["ADA", "BOB", "CAROL", "ERIN"]
    );

    // Past the watermark's millisecond, dave is created and joins platform.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let dave = source.create_user("dave").await;
    change_members(
        &source,
        "platform",
        json!({"op": "add", "path": "members", "value": [{"value": dave}]}),
    )
    .await;
    proxy.faults.unfiltered_lists.store(0, Ordering::SeqCst);
    let report = incremental(&job, &state).await.expect("an incremental run");
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    let created: Vec<&str> = report
        .plan
        .creates
        .iter()
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(created, ["dave"]);
    assert_eq!(
        target.member_names("platform").await,
        ["ADA", "BOB", "DAVE"]
    );
    // eng-all holds platform's members through nesting; core (unchanged, read as eng-all's
    // nested group) keeps erin there.
    assert_eq!(
        target.member_names("eng-all").await,
        ["ADA", "BOB", "CAROL", "DAVE", "ERIN"]
    );
    assert_eq!(
        proxy.faults.unfiltered_lists.load(Ordering::SeqCst),
        0,
        "the source was not read whole"
    );

    // bob leaves platform: he leaves eng-all's flattened members too.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let bob = source.one("Users", "userName", "bob").await;
    change_members(
        &source,
        "platform",
        json!({"op": "remove", "path": format!("members[value eq \"{}\"]", bob["id"].as_str().expect("an id"))}),
    )
    .await;
    let report = incremental(&job, &state).await.expect("an incremental run");
    assert_eq!(report.exit_code(), 0, "{:#?}", report.failures);
    assert_eq!(target.member_names("platform").await, ["ADA", "DAVE"]);
    assert_eq!(
        target.member_names("eng-all").await,
        ["ADA", "CAROL", "DAVE", "ERIN"]
    );
    assert_eq!(proxy.faults.unfiltered_lists.load(Ordering::SeqCst), 0);

    // Converged: a full run changes no membership (it deactivates bob, now out of scope, which
    // an incremental run leaves to it), and an incremental one finds nothing to do.
    let full = apply(&job, &state).await;
    assert!(full.plan.memberships.is_empty(), "{:#?}", full.plan);
    let again = incremental(&job, &state).await.expect("an incremental run");
    assert!(again.plan.writes_nothing(), "{:#?}", again.plan);
    state.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_runs_into_a_target_that_flattens_read_the_changed_groups_ancestors_with_state_in_sqlite(
) {
    incremental_runs_into_a_target_that_flattens(StateDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_runs_into_a_target_that_flattens_read_the_changed_groups_ancestors_with_state_in_postgres(
) {
    let Some(state) = StateDatabase::postgres().await else {
        return;
    };
    incremental_runs_into_a_target_that_flattens(state).await;
}
