//! Hostile and slow connections: the connection cap, the header, body and idle timeouts, the
//! shutdown deadline, and 414/431 in the called API's shape. Each test starts the server with
//! small limits and talks to it over raw sockets where a well-behaved client would not do
//! what the test needs (stall mid-headers, never send a body).
//!
//! The timeouts under test are one second; every wait for their effect allows ten, so a
//! loaded machine does not fail them, while a server without the mechanism still does.

use crate::support::{bootstrapped, read, TestDatabase, ERROR_SCHEMA};
use scimitar_server::{Application, ServeLimits};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for something a one-second limit should cause.
const PATIENCE: Duration = Duration::from_secs(10);
/// A limit long enough never to be reached during a test.
const NEVER: Duration = Duration::from_secs(600);

/// Limits where nothing expires during a test; each test shortens the one it exercises.
fn patient_limits() -> ServeLimits {
    ServeLimits {
        header_timeout: NEVER,
        body_timeout: NEVER,
        idle_timeout: NEVER,
        shutdown_deadline: NEVER,
        ..ServeLimits::default()
    }
}

/// A server started with `limits`, whose shutdown the test controls.
struct LimitedApp {
    address: std::net::SocketAddr,
    token: String,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<scimitar_domain::ScimResult<()>>,
    /// Kept so the database outlives the server.
    _database: TestDatabase,
}

impl LimitedApp {
    async fn spawn(limits: ServeLimits) -> LimitedApp {
        let (database, url) = TestDatabase::fresh().await;
        let (services, token, _) = bootstrapped(&url).await;
        let application = Application::bind_with("127.0.0.1:0", services, limits)
            .await
            .expect("binds a free port");
        let address = application.local_addr().expect("an address");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until(async move {
            let _ = stopped.await;
        }));
        LimitedApp {
            address,
            token,
            stop: Some(stop),
            server,
            _database: database,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.address).await.expect("connects")
    }

    /// A request on a new connection of a new client, so that it needs a slot of its own.
    async fn get(&self, path: &str) -> crate::support::Reply {
        let client = reqwest::Client::builder()
            .timeout(PATIENCE)
            .build()
            .expect("a client");
        let response = client
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path} got no answer: {error}"));
        read(response).await
    }
}

/// Reads until the server closes the connection: `Ok` with what it sent then, or `Err` with
/// what it sent if it was still open after [`PATIENCE`].
async fn read_until_closed(stream: &mut TcpStream) -> Result<String, String> {
    let mut received = Vec::new();
    let reading = async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(count) => received.extend_from_slice(&buffer[..count]),
            }
        }
    };
    let closed = tokio::time::timeout(PATIENCE, reading).await.is_ok();
    let text = String::from_utf8_lossy(&received).into_owned();
    if closed {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Sends the head of a `POST /scim/v2/Users` with a body of `length` bytes and
/// `Expect: 100-continue`, and waits for the server's `100 Continue`, which hyper sends when
/// the handler starts reading the body: from then on the request is in flight.
async fn start_post(app: &LimitedApp, stream: &mut TcpStream, length: usize) {
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: scimitar\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: {length}\r\n\
         Expect: 100-continue\r\n\r\n",
        app.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut byte = [0u8; 1];
    while !received.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
            .await
            .expect("an interim response")
            .unwrap();
        assert_eq!(
            read,
            1,
            "closed after {:?}",
            String::from_utf8_lossy(&received)
        );
        received.push(byte[0]);
    }
    let interim = String::from_utf8_lossy(&received);
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
}

/// The JSON body of a raw HTTP/1.1 response.
fn body_of(response: &str) -> serde_json::Value {
    let (_, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not a JSON body: {response:?}"))
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected_after_the_header_timeout() {
    let app = LimitedApp::spawn(ServeLimits {
        header_timeout: Duration::from_secs(1),
        ..patient_limits()
    })
    .await;
    let mut slow = app.connect().await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: scimitar\r\nX-Slow: ")
        .await
        .unwrap();
    let sent = read_until_closed(&mut slow).await;
    assert!(sent.is_ok(), "the connection was still open: {sent:?}");
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_answered_408_in_the_scim_shape_and_closed() {
    let app = LimitedApp::spawn(ServeLimits {
        body_timeout: Duration::from_secs(1),
        ..patient_limits()
    })
    .await;
    let mut slow = app.connect().await;
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: scimitar\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{{\"userName\"",
        app.token
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let sent = read_until_closed(&mut slow)
        .await
        .unwrap_or_else(|open| panic!("the connection was still open, having sent {open:?}"));
    assert!(sent.starts_with("HTTP/1.1 408"), "{sent}");
    let body = body_of(&sent);
    assert_eq!(body["schemas"], json!([ERROR_SCHEMA]), "{body}");
    assert_eq!(body["status"], json!("408"), "{body}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = LimitedApp::spawn(ServeLimits {
        idle_timeout: Duration::from_secs(1),
        ..patient_limits()
    })
    .await;
    let mut client = app.connect().await;
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: scimitar\r\n\r\n")
        .await
        .unwrap();
    let sent = read_until_closed(&mut client).await;
    let sent = sent.unwrap_or_else(|open| panic!("still open after answering {open:?}"));
    assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");
}

#[tokio::test]
async fn with_every_slot_held_by_idle_or_slow_sockets_real_requests_are_still_answered() {
    let cap = 8;
    let app = LimitedApp::spawn(ServeLimits {
        max_connections: cap,
        ..patient_limits()
    })
    .await;
    // Three times the cap: idle sockets, and sockets stalled in the middle of their headers.
    let mut attackers = Vec::new();
    for index in 0..3 * cap {
        let mut socket = app.connect().await;
        if index % 2 == 1 {
            socket
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        attackers.push(socket);
    }
    assert_eq!(app.get("/healthz").await.status, 200);
    let users = app.get("/scim/v2/Users").await;
    assert_eq!(users.status, 200, "{}", users.body);
    // Room was made by closing the oldest attackers.
    let first = read_until_closed(&mut attackers[0]).await;
    assert!(first.is_ok(), "the oldest idle socket was kept: {first:?}");
}

#[tokio::test]
async fn connections_with_requests_in_flight_are_never_closed_to_make_room() {
    let app = LimitedApp::spawn(ServeLimits {
        max_connections: 2,
        ..patient_limits()
    })
    .await;
    let body = json!({"schemas": [crate::support::USER_SCHEMA], "userName": "a"}).to_string();
    let mut first = app.connect().await;
    start_post(&app, &mut first, body.len()).await;
    let mut second = app.connect().await;
    start_post(&app, &mut second, body.len()).await;
    // Every slot is busy: the newcomer waits rather than pushing a request out.
    let newcomer = tokio::spawn({
        let url = app.url("/healthz");
        async move {
            reqwest::get(url)
                .await
                .map(|response| response.status().as_u16())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.write_all(body.as_bytes()).await.unwrap();
    let answer = read_until_closed_or_answered(&mut first).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let second_body = body.replace("\"a\"", "\"b\"");
    second.write_all(second_body.as_bytes()).await.unwrap();
    let answer = read_until_closed_or_answered(&mut second).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let status = tokio::time::timeout(PATIENCE, newcomer)
        .await
        .expect("the newcomer is answered once a slot is free")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}

/// What the server sends until it closes the connection or a response with a body of
/// `Content-Length` has arrived whole.
async fn read_until_closed_or_answered(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let reading = async {
        loop {
            let text = String::from_utf8_lossy(&received).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    return;
                }
            }
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(count) => received.extend_from_slice(&buffer[..count]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, reading)
        .await
        .expect("an answer or a close");
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn shutdown_with_slow_clients_connected_ends_within_the_deadline() {
    let mut app = LimitedApp::spawn(ServeLimits {
        shutdown_deadline: Duration::from_secs(1),
        ..patient_limits()
    })
    .await;
    // One client stalled in its headers, one in the body of a request the server is
    // waiting for.
    let mut slow_header = app.connect().await;
    slow_header
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // In flight, unlike an idle socket, which shutdown closes at once without the deadline.
    let mut slow_body = app.connect().await;
    start_post(&app, &mut slow_body, 100).await;
    slow_body.write_all(b"{").await.unwrap();
    drop(app.stop.take());
    let ended = tokio::time::timeout(PATIENCE, &mut app.server).await;
    let result = ended.expect("the server was still running past its shutdown deadline");
    result.expect("the server task").expect("a clean shutdown");
    assert!(read_until_closed(&mut slow_body).await.is_ok());
    assert!(read_until_closed(&mut slow_header).await.is_ok());
}

#[tokio::test]
async fn a_request_in_flight_at_shutdown_is_finished_before_the_server_stops() {
    let mut app = LimitedApp::spawn(ServeLimits {
        shutdown_deadline: Duration::from_secs(30),
        ..patient_limits()
    })
    .await;
    let mut client = app.connect().await;
    let body = json!({"schemas": [crate::support::USER_SCHEMA], "userName": "late"}).to_string();
    start_post(&app, &mut client, body.len()).await;
    drop(app.stop.take());
    // Time for the server to see the shutdown before the body arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.write_all(body.as_bytes()).await.unwrap();
    let sent = read_until_closed(&mut client)
        .await
        .unwrap_or_else(|open| panic!("still open after {open:?}"));
    assert!(sent.starts_with("HTTP/1.1 201"), "{sent}");
    let ended = tokio::time::timeout(PATIENCE, &mut app.server).await;
    ended
        .expect("the server stops once its request is answered")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_request_target_too_long_is_answered_414_in_the_shape_of_the_api_called() {
    let app = LimitedApp::spawn(ServeLimits::default()).await;
    let long = "a".repeat(ServeLimits::default().max_uri_bytes + 1);
    let scim = app.get(&format!("/scim/v2/Users?filter={long}")).await;
    scim.assert_error(414, None);
    let databricks_scim = app
        .get(&format!("/api/2.0/preview/scim/v2/Users?filter={long}"))
        .await;
    databricks_scim.assert_error(414, None);
    let rest = app
        .get(&format!(
            "/api/2.1/unity-catalog/catalogs?page_token={long}"
        ))
        .await;
    assert_eq!(rest.status, 414);
    assert_eq!(
        rest.body["error_code"],
        json!("BAD_REQUEST"),
        "{}",
        rest.body
    );
    assert!(rest.body["message"].is_string(), "{}", rest.body);
}

#[tokio::test]
async fn headers_too_large_are_answered_431_in_the_shape_of_the_api_called() {
    let app = LimitedApp::spawn(ServeLimits::default()).await;
    let client = reqwest::Client::new();
    let many_headers = |request: reqwest::RequestBuilder| {
        (0..150).fold(request, |request, index| {
            request.header(format!("x-filler-{index}"), "x")
        })
    };
    let scim = read(
        many_headers(
            client
                .get(app.url("/scim/v2/Users"))
                .bearer_auth(&app.token),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    scim.assert_error(431, None);
    let one_huge_header = "x".repeat(ServeLimits::default().max_header_bytes + 1);
    let rest = read(
        client
            .get(app.url("/api/2.1/unity-catalog/catalogs"))
            .bearer_auth(&app.token)
            .header("x-filler", one_huge_header)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(rest.status, 431);
    assert_eq!(
        rest.body["error_code"],
        json!("BAD_REQUEST"),
        "{}",
        rest.body
    );
}
