//! The web console at `/` and the API docs at `/docs`: served without a
//! token, with a strict Content-Security-Policy, behind the site gates; and
//! the console driven end to end in headless Chromium by Selenium
//! (`tests/browser/console_test.py`) against a real server with a token.
//! The browser test needs the venv, Chromium and chromedriver that
//! `scripts/browser-venv` installs (scripts/test runs it).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use support::*;

const TOKEN: &str = "console-token";

fn server_with_token() -> TestServer {
    TestServer::start_with(Options {
        token: Some(TOKEN.into()),
        extra: Vec::new(),
    })
}

/// GET `path` without a token.
async fn get(server: &TestServer, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .timeout(HANG_GUARD)
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_and_docs_are_served_without_a_token_under_a_strict_policy() {
    let server = server_with_token();
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/console/console.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
        ("/docs", "text/html; charset=utf-8"),
        ("/docs/docs.js", "text/javascript; charset=utf-8"),
        ("/docs/docs.css", "text/css; charset=utf-8"),
    ] {
        let response = get(&server, path).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(header(&response, "content-type"), content_type, "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header(&response, "cache-control"), "no-store");
        let csp = header(&response, "content-security-policy").to_owned();
        for directive in [
            "default-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        let body = response.text().await.unwrap();
        if content_type.starts_with("text/html") {
            assert!(body.starts_with("<!doctype html>"), "{path}");
        }
        if path == "/" {
            assert!(
                csp.starts_with("default-src 'self'; connect-src 'self'; script-src 'self';"),
                "{csp}"
            );
            assert!(body.contains(r#"<script src="/console/console.js" defer></script>"#));
        }
        if path == "/docs" {
            let cdn = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.35.0/";
            assert!(csp.contains(&format!("script-src 'self' {cdn};")), "{csp}");
            assert!(body.contains(cdn), "{body}");
        }
    }
    // The pages are public; the data behind them is not.
    assert_eq!(get(&server, "/v1/jobs").await.status().as_u16(), 401);
}

/// One raw request (a browser's headers, byte for byte); status and body.
fn raw_get(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let port: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_behind_the_site_gates() {
    let server = server_with_token();
    let own_host = server.base.trim_start_matches("http://").to_owned();
    let own_origin = server.base.clone();
    let (status, body) = raw_get(&server, "/", &[("Host", &own_host)]);
    assert_eq!(status, 200, "{body}");
    let (status, _) = raw_get(
        &server,
        "/",
        &[
            ("Host", &own_host),
            ("Origin", &own_origin),
            ("Sec-Fetch-Site", "same-origin"),
        ],
    );
    assert_eq!(status, 200);
    for path in ["/", "/console/console.js", "/docs"] {
        let refusals: [(&[(&str, &str)], &str); 4] = [
            (&[("Host", "evil.example")], "host_not_allowed"),
            (
                &[("Host", "evil.example"), ("Origin", "http://evil.example")],
                "host_not_allowed",
            ),
            (
                &[("Host", &own_host), ("Origin", "http://evil.example")],
                "cross_origin",
            ),
            (
                &[("Host", &own_host), ("Sec-Fetch-Site", "cross-site")],
                "cross_origin",
            ),
        ];
        for (headers, code) in refusals {
            let (status, body) = raw_get(&server, path, headers);
            assert_eq!(status, 403, "{path} {headers:?}: {body}");
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["error"]["code"], code, "{path} {headers:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_runs_jobs_in_headless_chromium() {
    let server = server_with_token();
    let python = venv_python("browser-venv", "scripts/browser-venv");
    let screenshot =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshot.png");
    run_python_script(
        python,
        "browser/console_test.py",
        &[&server.base, TOKEN, screenshot.to_str().unwrap()],
        "console ok",
    )
    .await;
}
