//! Web pages must not drive the server: bodies that are not JSON, foreign
//! origins, `Sec-Fetch-Site: cross-site` and DNS-rebinding `Host` values are
//! refused before any work, on every route; `--allow-origin` and
//! `--allow-host` admit exactly what they name. Requests go over raw
//! sockets, byte for byte what a browser could send. Part of
//! `scripts/reliability`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::{Value, json};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use support::*;

/// A response as read off the socket.
struct Raw {
    status: u16,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
    }

    /// Status and error code of a refusal.
    fn refusal(&self) -> (u16, String) {
        let code = self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (self.status, code)
    }
}

fn port_of(server: &TestServer) -> u16 {
    server.base.rsplit(':').next().unwrap().parse().unwrap()
}

/// Sends one HTTP/1.1 request with exactly `headers` (plus Content-Length
/// when there is a body) and reads the response to EOF.
fn raw(server: &TestServer, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Raw {
    let mut stream = TcpStream::connect(("127.0.0.1", port_of(server))).unwrap();
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    if !body.is_empty() {
        let _ = write!(request, "Content-Length: {}\r\n", body.len());
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Raw {
        status,
        headers,
        body: body.to_owned(),
    }
}

const RUN_BODY: &str = r#"{"script":"echo pwned > pwned.txt; echo pwned"}"#;

/// The loopback Host a client of this server sends.
fn own_host(server: &TestServer) -> String {
    format!("127.0.0.1:{}", port_of(server))
}

async fn job_count(server: &TestServer) -> usize {
    let (status, list) = server.get("/v1/jobs").await;
    assert_eq!(status, 200, "{list}");
    list["jobs"].as_array().unwrap().len()
}

fn nothing_ran(server: &TestServer) {
    assert!(
        !server.root.join("home/pwned.txt").exists(),
        "a refused request ran its script"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_are_not_json_typed_get_415_and_run_nothing() {
    let server = TestServer::start();
    let host = own_host(&server);
    // The issue's curl: text/plain from a foreign page.
    let cases: [&[(&str, &str)]; 4] = [
        &[
            ("Host", &host),
            ("Content-Type", "text/plain"),
            ("Origin", "http://evil.example.com"),
        ],
        &[("Host", &host), ("Content-Type", "text/plain")],
        &[
            ("Host", &host),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &[("Host", &host)],
    ];
    for headers in cases {
        let answer = raw(&server, "POST", "/v1/jobs/run", headers, RUN_BODY);
        assert_eq!(
            answer.refusal(),
            (415, "unsupported_media_type".into()),
            "{headers:?}: {}",
            answer.body
        );
        assert_eq!(answer.header("access-control-allow-origin"), None);
    }
    // The other routes that take a body are gated the same way.
    for path in [
        "/v1/jobs/01010101-abc/wait",
        "/v1/jobs/01010101-abc/input",
        "/v1/jobs/01010101-abc/terminate",
    ] {
        let answer = raw(
            &server,
            "POST",
            path,
            &[("Host", &host), ("Content-Type", "text/plain")],
            r#"{"offset":0}"#,
        );
        assert_eq!(
            answer.refusal(),
            (415, "unsupported_media_type".into()),
            "{path}"
        );
    }
    assert_eq!(job_count(&server).await, 0);
    nothing_ran(&server);
    // The same body declared JSON (with a charset) runs.
    let answer = raw(
        &server,
        "POST",
        "/v1/jobs/run",
        &[
            ("Host", &host),
            ("Content-Type", "application/json; charset=utf-8"),
        ],
        r#"{"script":"echo fine"}"#,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["output"], "fine\n");
    assert_eq!(answer.header("access-control-allow-origin"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_browser_requests_get_403_before_any_work() {
    let server = TestServer::start();
    let host = own_host(&server);
    let json = ("Content-Type", "application/json");
    let refused: [&[(&str, &str)]; 5] = [
        &[("Host", &host), json, ("Origin", "http://evil.example.com")],
        &[("Host", &host), json, ("Origin", "null")],
        // Another port of this very host is another origin.
        &[("Host", &host), json, ("Origin", "http://127.0.0.1:3000")],
        &[("Host", &host), json, ("Sec-Fetch-Site", "cross-site")],
        &[("Host", &host), json, ("Sec-Fetch-Site", "same-site")],
    ];
    for headers in refused {
        let answer = raw(&server, "POST", "/v1/jobs/run", headers, RUN_BODY);
        assert_eq!(
            answer.refusal(),
            (403, "cross_origin".into()),
            "{headers:?}"
        );
        assert_eq!(answer.header("access-control-allow-origin"), None);
    }
    // Reads are refused too: a rebinding page must not read job output.
    let answer = raw(
        &server,
        "GET",
        "/v1/jobs",
        &[("Host", &host), ("Origin", "http://evil.example.com")],
        "",
    );
    assert_eq!(answer.refusal(), (403, "cross_origin".into()));
    // A preflight from a foreign origin gets no CORS grant.
    let answer = raw(
        &server,
        "OPTIONS",
        "/v1/jobs/run",
        &[
            ("Host", &host),
            ("Origin", "http://evil.example.com"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        "",
    );
    assert_eq!(answer.refusal(), (403, "cross_origin".into()));
    assert_eq!(answer.header("access-control-allow-origin"), None);
    assert_eq!(job_count(&server).await, 0);
    nothing_ran(&server);

    // What a page served by the server itself sends still works.
    let own_origin = format!("http://{host}");
    for headers in [
        &[
            ("Host", host.as_str()),
            json,
            ("Origin", own_origin.as_str()),
            ("Sec-Fetch-Site", "same-origin"),
        ][..],
        &[("Host", host.as_str()), json, ("Sec-Fetch-Site", "none")][..],
    ] {
        let answer = raw(
            &server,
            "POST",
            "/v1/jobs/run",
            headers,
            r#"{"script":"echo same"}"#,
        );
        assert_eq!(answer.status, 200, "{headers:?}: {}", answer.body);
        assert_eq!(answer.header("access-control-allow-origin"), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebinding_host_names_get_403_on_every_route() {
    let server = TestServer::start();
    let port = port_of(&server);
    let evil = format!("evil.example.com:{port}");
    let json = ("Content-Type", "application/json");
    for (method, path, body) in [
        ("POST", "/v1/jobs/run", RUN_BODY),
        ("GET", "/v1/jobs", ""),
        ("GET", "/healthz", ""),
        ("GET", "/openapi.json", ""),
        ("GET", "/no/such/route", ""),
    ] {
        let answer = raw(&server, method, path, &[("Host", &evil), json], body);
        assert_eq!(
            answer.refusal(),
            (403, "host_not_allowed".into()),
            "{method} {path}"
        );
    }
    assert_eq!(job_count(&server).await, 0);
    nothing_ran(&server);
    for host in [
        format!("localhost:{port}"),
        "localhost".to_owned(),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let answer = raw(&server, "GET", "/healthz", &[("Host", &host)], "");
        assert_eq!(
            (answer.status, answer.json()),
            (200, json!({"status": "ok"})),
            "{host}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_origin_admits_its_origin_with_cors_and_nothing_else() {
    let server = TestServer::start_with(Options {
        token: Some("gate-token".into()),
        extra: vec!["--allow-origin".into(), "http://localhost:3000".into()],
    });
    let host = own_host(&server);
    let page = "http://localhost:3000";
    let preflight = raw(
        &server,
        "OPTIONS",
        "/v1/jobs/run",
        &[
            ("Host", &host),
            ("Origin", page),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization, content-type",
            ),
        ],
        "",
    );
    assert_eq!(preflight.status, 204, "{}", preflight.body);
    assert_eq!(preflight.header("access-control-allow-origin"), Some(page));
    let methods = preflight.header("access-control-allow-methods").unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = preflight.header("access-control-allow-headers").unwrap();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );

    let answer = raw(
        &server,
        "POST",
        "/v1/jobs/run",
        &[
            ("Host", &host),
            ("Origin", page),
            ("Sec-Fetch-Site", "same-site"),
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer gate-token"),
        ],
        r#"{"script":"echo admitted"}"#,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["output"], "admitted\n");
    assert_eq!(answer.header("access-control-allow-origin"), Some(page));
    assert_eq!(answer.header("vary"), Some("Origin"));

    // The token is still required of an admitted origin.
    let answer = raw(
        &server,
        "GET",
        "/v1/jobs",
        &[("Host", &host), ("Origin", page)],
        "",
    );
    assert_eq!(answer.refusal(), (401, "unauthorized".into()));
    assert_eq!(answer.header("access-control-allow-origin"), Some(page));

    // Another origin, even on the same host, is not admitted.
    for other in [
        "http://localhost:3001",
        "https://localhost:3000",
        "http://evil.example.com",
    ] {
        let answer = raw(
            &server,
            "OPTIONS",
            "/v1/jobs/run",
            &[
                ("Host", &host),
                ("Origin", other),
                ("Access-Control-Request-Method", "POST"),
            ],
            "",
        );
        assert_eq!(answer.refusal(), (403, "cross_origin".into()), "{other}");
        assert_eq!(answer.header("access-control-allow-origin"), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_host_admits_its_name() {
    let server = TestServer::start_with(Options {
        token: None,
        extra: vec!["--allow-host".into(), "dev.example".into()],
    });
    let port = port_of(&server);
    let named = format!("dev.example:{port}");
    let answer = raw(
        &server,
        "POST",
        "/v1/jobs/run",
        &[("Host", &named), ("Content-Type", "application/json")],
        r#"{"script":"echo named"}"#,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["output"], "named\n");
    // A page served under that name is that origin.
    let answer = raw(
        &server,
        "GET",
        "/v1/jobs",
        &[("Host", &named), ("Origin", &format!("http://{named}"))],
        "",
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let other = format!("dev.example.evil.com:{port}");
    let answer = raw(&server, "GET", "/healthz", &[("Host", &other)], "");
    assert_eq!(answer.refusal(), (403, "host_not_allowed".into()));
}

#[test]
fn unusable_allow_flags_stop_the_server_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, expected) in [
        ("--allow-origin", "null", "--allow-origin \"null\""),
        ("--allow-origin", "http://x.example/path", "no path"),
        ("--allow-host", "bad host", "--allow-host \"bad host\""),
    ] {
        let output = std::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(dir.path().join("state"))
            .arg("--runtime-dir")
            .arg(dir.path().join("run"))
            .args([flag, value])
            .env_remove("SHELLCTL_AUTH_TOKEN")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flag} {value} was accepted");
        assert!(stderr.contains(expected), "{flag} {value}: {stderr}");
    }
}

type Headers<'a> = &'a [(&'a str, &'a str)];

/// Every route in `/openapi.json`, the terminal routes included, refuses a
/// foreign `Host`, a cross-site `Origin`, a non-JSON body and a missing
/// token, before it looks at the job (the id named here does not exist, so
/// any 404 would mean the gates let the request through).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_is_gated() {
    let server = TestServer::start_with(Options {
        token: Some("gate-token".into()),
        extra: Vec::new(),
    });
    let host = own_host(&server);
    let evil_host = format!("evil.example.com:{}", port_of(&server));
    let document = raw(&server, "GET", "/openapi.json", &[("Host", &host)], "").json();
    let json = ("Content-Type", "application/json");
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let path = path.replace("{id}", "01010101-abc");
        for method in item.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            let body = if method == "POST" { "{}" } else { "" };
            let cases: [(Headers<'_>, (u16, &str)); 3] = [
                (&[("Host", &evil_host), json], (403, "host_not_allowed")),
                (
                    &[("Host", &host), json, ("Origin", "http://evil.example.com")],
                    (403, "cross_origin"),
                ),
                (
                    &[("Host", &host), json, ("Sec-Fetch-Site", "cross-site")],
                    (403, "cross_origin"),
                ),
            ];
            for (headers, (status, code)) in cases {
                let answer = raw(&server, &method, &path, headers, body);
                assert_eq!(
                    answer.refusal(),
                    (status, code.into()),
                    "{method} {path} {headers:?}"
                );
            }
            if !body.is_empty() {
                let answer = raw(
                    &server,
                    &method,
                    &path,
                    &[("Host", &host), ("Content-Type", "text/plain")],
                    body,
                );
                assert_eq!(
                    answer.refusal(),
                    (415, "unsupported_media_type".into()),
                    "{method} {path}"
                );
            }
            if path.starts_with("/v1/") || path == "/mcp" {
                let answer = raw(&server, &method, &path, &[("Host", &host), json], body);
                assert_eq!(
                    answer.refusal(),
                    (401, "unauthorized".into()),
                    "{method} {path}"
                );
            }
            checked += 1;
        }
    }
    // /healthz, the reference's eight operations, the five terminal ones,
    // the four agent routes, the three methods of /mcp and the two streams.
    assert!(checked >= 23, "only {checked} operations documented");
    // The pages (the console, its files, /docs) are not API operations,
    // but the same gates stand in front of them.
    for page in [
        "/",
        "/console/console.js",
        "/console/console.css",
        "/console/favicon.svg",
        "/docs",
        "/docs/docs.js",
    ] {
        let ok = raw(&server, "GET", page, &[("Host", &host)], "");
        assert_eq!(ok.status, 200, "{page}");
        for (headers, refusal) in [
            (
                &[("Host", evil_host.as_str())][..],
                (403, "host_not_allowed"),
            ),
            (
                &[
                    ("Host", host.as_str()),
                    ("Origin", "http://evil.example.com"),
                ][..],
                (403, "cross_origin"),
            ),
            (
                &[("Host", host.as_str()), ("Sec-Fetch-Site", "cross-site")][..],
                (403, "cross_origin"),
            ),
        ] {
            let answer = raw(&server, "GET", page, headers, "");
            assert_eq!(
                answer.refusal(),
                (refusal.0, refusal.1.into()),
                "{page} {headers:?}"
            );
        }
    }
}
