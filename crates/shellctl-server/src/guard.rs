//! The gates that keep web pages from driving the server.
//!
//! The server runs whatever it is sent, and a browser will send requests to
//! `127.0.0.1` on behalf of any page its user opens. Three checks close that
//! door, on every route (present and future) and before auth or any handler
//! work:
//!
//! - **Host** (DNS rebinding): a page whose name was re-pointed at
//!   `127.0.0.1` talks to us with its own name in `Host`. On a loopback
//!   listener only loopback names and `--allow-host` names are answered.
//! - **Cross-site** (`Origin`, `Sec-Fetch-Site`): a browser marks what a page
//!   sends; anything not from the server's own origin is refused, unless its
//!   origin was named with `--allow-origin`, which also turns on CORS for
//!   exactly those origins.
//! - **JSON bodies**: a body must be declared `application/json`, which no
//!   page can send across sites without a CORS preflight (that we refuse).
//!
//! Clients that are not browsers send no `Origin` and are unaffected.

use crate::api::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Host names a loopback listener always answers to.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Headers a preflight may ask for on an allowed origin: the token, the
/// JSON content type, and a stream's resume point.
const PREFLIGHT_ALLOW_HEADERS: &str = "authorization, content-type, last-event-id";
const PREFLIGHT_ALLOW_METHODS: &str = "GET, POST, DELETE";
const PREFLIGHT_MAX_AGE_SECONDS: &str = "600";

static SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// A `--allow-host` or `--allow-origin` value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SitePolicyError {
    /// Not a host name, optionally with a port.
    #[error("--allow-host {value:?}: {reason}")]
    InvalidHost {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not an origin of the form `scheme://host[:port]`.
    #[error("--allow-origin {value:?}: {reason}")]
    InvalidOrigin {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// One name the server answers to in `Host`; without a port it matches any
/// port (a forwarded port still names this server).
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostName {
    /// Lower-case, IPv6 in brackets.
    host: String,
    port: Option<u16>,
}

impl HostName {
    /// Parses `host[:port]` as a `Host` header carries it: a DNS name or
    /// IPv4 address, or an IPv6 address in brackets; the port, if any, a
    /// number.
    fn parse(text: &str) -> Option<HostName> {
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (address, after) = rest.split_once(']')?;
            address.parse::<std::net::Ipv6Addr>().ok()?;
            let port = match after {
                "" => None,
                colon_port => Some(colon_port.strip_prefix(':')?),
            };
            (&text[..address.len() + 2], port)
        } else {
            let (host, port) = match text.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            };
            is_reg_name(host).then_some((host, port))?
        };
        let port = match port {
            None => None,
            Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                Some(digits.parse::<u16>().ok()?)
            }
            Some(_) => return None,
        };
        Some(HostName {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn admits(&self, presented: &HostName) -> bool {
        self.host == presented.host && self.port.is_none_or(|port| presented.port == Some(port))
    }
}

/// Which `Host` and `Origin` values the server answers, built once from
/// the listen address and the `--allow-host` / `--allow-origin` flags.
#[derive(Debug, Clone)]
pub struct SitePolicy {
    /// `None`: no `Host` check (a non-loopback listener without
    /// `--allow-host`; it needs a token anyway).
    allowed_hosts: Option<Vec<HostName>>,
    /// Origins in their serialized form (`http://host:port`, default port
    /// left out), compared after the same normalization.
    allowed_origins: Vec<String>,
}

impl SitePolicy {
    /// The policy of a server listening on `listen`.
    ///
    /// On a loopback address it answers `localhost`, `127.0.0.1`, `[::1]`,
    /// the listen address itself, and `allow_hosts`; elsewhere it checks
    /// `Host` only when `allow_hosts` is not empty (and then also admits the
    /// loopback names, so local clients keep working). `allow_origins` are
    /// full origins such as `http://localhost:3000`.
    pub fn new(
        listen: SocketAddr,
        allow_hosts: &[String],
        allow_origins: &[String],
    ) -> Result<SitePolicy, SitePolicyError> {
        let mut named = Vec::with_capacity(allow_hosts.len());
        for value in allow_hosts {
            let host = HostName::parse(value.trim()).ok_or(SitePolicyError::InvalidHost {
                value: value.clone(),
                reason: "expected a host name, optionally with :PORT",
            })?;
            named.push(host);
        }
        let allowed_hosts = if listen.ip().is_loopback() || !named.is_empty() {
            let mut hosts: Vec<HostName> = LOOPBACK_NAMES
                .iter()
                .map(|name| HostName {
                    host: (*name).to_owned(),
                    port: None,
                })
                .collect();
            if listen.ip().is_loopback() {
                hosts.push(HostName {
                    host: host_literal(listen.ip()),
                    port: None,
                });
            }
            hosts.extend(named);
            Some(hosts)
        } else {
            None
        };
        let mut allowed_origins = Vec::with_capacity(allow_origins.len());
        for value in allow_origins {
            allowed_origins.push(parse_allowed_origin(value)?);
        }
        Ok(SitePolicy {
            allowed_hosts,
            allowed_origins,
        })
    }

    /// `presented` is the request's `Host`, parsed by [`presented_host`].
    fn check_host(
        &self,
        headers: &HeaderMap,
        presented: Option<&HostName>,
    ) -> Result<(), ApiError> {
        let Some(allowed) = &self.allowed_hosts else {
            return Ok(());
        };
        match presented {
            Some(host) if allowed.iter().any(|name| name.admits(host)) => Ok(()),
            Some(host) => Err(ApiError::HostNotAllowed(format!(
                "Host {:?} is not a name of this server (DNS-rebinding protection); start the server with --allow-host {} to answer it",
                host_text(host),
                host.host
            ))),
            None => Err(ApiError::HostNotAllowed(match headers.get(header::HOST) {
                Some(raw) => format!(
                    "Host {:?} is not a valid host name",
                    String::from_utf8_lossy(raw.as_bytes())
                ),
                None => "the request has no Host header".to_owned(),
            })),
        }
    }

    /// Refuses what a browser marks as cross-site; answers the allowed
    /// origin (for CORS headers) when the request came from one.
    fn check_site(
        &self,
        headers: &HeaderMap,
        host: Option<&HostName>,
    ) -> Result<Option<HeaderValue>, ApiError> {
        let origin = headers.get(header::ORIGIN);
        if let Some(origin) = origin {
            let normalized = origin.to_str().ok().and_then(serialized_origin);
            if let Some(normalized) = &normalized
                && self.allowed_origins.contains(normalized)
            {
                return Ok(Some(origin.clone()));
            }
            let own = host.and_then(own_origin);
            if normalized.is_none() || normalized != own {
                return Err(ApiError::CrossOrigin(format!(
                    "cross-site request refused: Origin {:?} is not this server's origin; start the server with --allow-origin ORIGIN to admit a page",
                    String::from_utf8_lossy(origin.as_bytes())
                )));
            }
        }
        // `same-site` is refused too: a page on another port of this host
        // is another origin, just not another registrable domain.
        let fetch_site = headers.get(&SEC_FETCH_SITE).map(HeaderValue::as_bytes);
        if let Some(site @ (b"cross-site" | b"same-site")) = fetch_site {
            return Err(ApiError::CrossOrigin(format!(
                "cross-site request refused (Sec-Fetch-Site: {})",
                String::from_utf8_lossy(site)
            )));
        }
        Ok(None)
    }
}

/// The middleware: only a request that passes the Host, JSON-body and
/// cross-site checks (in that order of answers) reaches its route and the
/// route's auth. A preflight from an admitted origin is answered here.
pub async fn enforce(
    State(policy): State<Arc<SitePolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let host = presented_host(headers);
    if let Err(refused) = policy.check_host(headers, host.as_ref()) {
        return refused.into_response();
    }
    let site = policy.check_site(headers, host.as_ref());
    let cors_origin = site.as_ref().ok().cloned().flatten();
    // A body that is not JSON is named as such even when it also came from
    // another site: the more specific answer, and the one the reference's
    // framework gives.
    if let Err(refused) = check_json_body(headers) {
        return with_cors(refused.into_response(), cors_origin);
    }
    if let Err(refused) = site {
        return refused.into_response();
    }
    if let Some(origin) = &cors_origin
        && is_preflight(&request)
    {
        return preflight_response(origin.clone());
    }
    with_cors(next.run(request).await, cors_origin)
}

fn is_preflight(request: &Request) -> bool {
    request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

fn preflight_response(origin: HeaderValue) -> Response {
    let response = (
        StatusCode::NO_CONTENT,
        [
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(PREFLIGHT_ALLOW_METHODS),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(PREFLIGHT_ALLOW_HEADERS),
            ),
            (
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(PREFLIGHT_MAX_AGE_SECONDS),
            ),
        ],
    )
        .into_response();
    with_cors(response, Some(origin))
}

fn with_cors(mut response: Response, origin: Option<HeaderValue>) -> Response {
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// A request that carries a body must declare it `application/json`
/// (parameters such as `charset` allowed). No body, no rule: a bodiless
/// `terminate` means its defaults.
fn check_json_body(headers: &HeaderMap) -> Result<(), ApiError> {
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|len| len.trim() != "0");
    if !has_body {
        return Ok(());
    }
    let content_type = headers.get(header::CONTENT_TYPE);
    let is_json = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType(match content_type {
        Some(value) => format!(
            "request body must be JSON: send Content-Type: application/json (got {:?})",
            String::from_utf8_lossy(value.as_bytes())
        ),
        None => "request body must be JSON: send Content-Type: application/json".to_owned(),
    }))
}

/// The request's `Host`, if present and well formed.
fn presented_host(headers: &HeaderMap) -> Option<HostName> {
    let raw = headers.get(header::HOST)?.to_str().ok()?;
    HostName::parse(raw)
}

/// `http://HOST` of the request: the origin a page served by this server
/// would send (the server speaks plain HTTP).
fn own_origin(host: &HostName) -> Option<String> {
    serialized_origin(&format!("http://{}", host_text(host)))
}

/// An origin in the form browsers compare: lower-case scheme and host,
/// default port left out, no path. `None` for opaque origins (`null`) and
/// anything that is not an origin.
fn serialized_origin(text: &str) -> Option<String> {
    let url = url::Url::parse(text).ok()?;
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

fn parse_allowed_origin(value: &str) -> Result<String, SitePolicyError> {
    let invalid = |reason| SitePolicyError::InvalidOrigin {
        value: value.to_owned(),
        reason,
    };
    let trimmed = value.trim().trim_end_matches('/');
    let url = url::Url::parse(trimmed).map_err(|_| invalid("expected scheme://host[:port]"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("an origin has no path, query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("an origin has no user name or password"));
    }
    serialized_origin(trimmed).ok_or_else(|| invalid("expected scheme://host[:port]"))
}

/// A DNS name or IPv4 address: letters, digits, `-`, `_` and dots.
fn is_reg_name(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

fn host_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn host_text(host: &HostName) -> String {
    match host.port {
        Some(port) => format!("{}:{port}", host.host),
        None => host.host.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:8765".parse().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn check_host(policy: &SitePolicy, headers: &HeaderMap) -> Result<(), ApiError> {
        policy.check_host(headers, presented_host(headers).as_ref())
    }

    fn check_site(
        policy: &SitePolicy,
        headers: &HeaderMap,
    ) -> Result<Option<HeaderValue>, ApiError> {
        policy.check_site(headers, presented_host(headers).as_ref())
    }

    fn code(result: Result<impl Sized, ApiError>) -> Option<&'static str> {
        result.err().map(|err| err.code().as_str())
    }

    #[test]
    fn loopback_names_pass_with_or_without_a_port() {
        let policy = SitePolicy::new(loopback(), &[], &[]).unwrap();
        for host in [
            "localhost",
            "LOCALHOST:8765",
            "127.0.0.1",
            "127.0.0.1:9999",
            "[::1]",
            "[::1]:8765",
        ] {
            assert_eq!(
                code(check_host(&policy, &headers(&[("host", host)]))),
                None,
                "{host}"
            );
        }
    }

    #[test]
    fn foreign_odd_and_missing_hosts_are_refused() {
        let policy = SitePolicy::new(loopback(), &[], &[]).unwrap();
        for host in [
            "evil.example",
            "evil.example:8765",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "user@localhost",
            "localhost:notaport",
            "localhost:",
            "localhost:99999",
            "[::1]x",
            "[::1]:",
            "[nope]:1",
            "local host",
            "",
        ] {
            assert_eq!(
                code(check_host(&policy, &headers(&[("host", host)]))),
                Some("host_not_allowed"),
                "{host}"
            );
        }
        assert_eq!(
            code(check_host(&policy, &HeaderMap::new())),
            Some("host_not_allowed")
        );
    }

    #[test]
    fn allow_host_admits_its_name_and_port() {
        let allow = ["Dev.Box".to_owned(), "tunnel.example:443".to_owned()];
        let policy = SitePolicy::new(loopback(), &allow, &[]).unwrap();
        let host = |h: &str| code(check_host(&policy, &headers(&[("host", h)])));
        assert_eq!(host("dev.box:8765"), None);
        assert_eq!(host("tunnel.example:443"), None);
        assert_eq!(host("tunnel.example:444"), Some("host_not_allowed"));
        assert!(SitePolicy::new(loopback(), &["a b".to_owned()], &[]).is_err());
    }

    #[test]
    fn a_loopback_listen_address_names_itself() {
        let policy = SitePolicy::new("127.0.0.2:1".parse().unwrap(), &[], &[]).unwrap();
        assert_eq!(
            code(check_host(&policy, &headers(&[("host", "127.0.0.2:1")]))),
            None
        );
        let v6 = SitePolicy::new("[::1]:1".parse().unwrap(), &[], &[]).unwrap();
        assert_eq!(
            code(check_host(&v6, &headers(&[("host", "[::1]:1")]))),
            None
        );
    }

    #[test]
    fn a_public_listener_checks_host_only_when_names_are_given() {
        let public: SocketAddr = "0.0.0.0:8765".parse().unwrap();
        let open = SitePolicy::new(public, &[], &[]).unwrap();
        assert_eq!(
            code(check_host(&open, &headers(&[("host", "anything.example")]))),
            None
        );
        let named = SitePolicy::new(public, &["box.example".to_owned()], &[]).unwrap();
        assert_eq!(
            code(check_host(
                &named,
                &headers(&[("host", "box.example:8765")])
            )),
            None
        );
        assert_eq!(
            code(check_host(&named, &headers(&[("host", "localhost:8765")]))),
            None
        );
        assert_eq!(
            code(check_host(&named, &headers(&[("host", "other.example")]))),
            Some("host_not_allowed")
        );
    }

    #[test]
    fn only_the_own_origin_passes_by_default() {
        let policy = SitePolicy::new(loopback(), &[], &[]).unwrap();
        let site = |pairs: &[(&str, &str)]| code(check_site(&policy, &headers(pairs)));
        assert_eq!(site(&[("host", "127.0.0.1:8765")]), None);
        assert_eq!(
            site(&[
                ("host", "127.0.0.1:8765"),
                ("origin", "http://127.0.0.1:8765")
            ]),
            None
        );
        assert_eq!(
            site(&[("host", "localhost"), ("origin", "http://LOCALHOST:80")]),
            None
        );
        for origin in [
            "http://evil.example.com",
            "http://127.0.0.1:3000",
            "https://127.0.0.1:8765",
            "http://localhost:8765",
            "null",
            "garbage",
        ] {
            assert_eq!(
                site(&[("host", "127.0.0.1:8765"), ("origin", origin)]),
                Some("cross_origin"),
                "{origin}"
            );
        }
        for fetch_site in ["cross-site", "same-site"] {
            assert_eq!(
                site(&[("host", "127.0.0.1:8765"), ("sec-fetch-site", fetch_site)]),
                Some("cross_origin")
            );
        }
        for fetch_site in ["same-origin", "none"] {
            assert_eq!(
                site(&[("host", "127.0.0.1:8765"), ("sec-fetch-site", fetch_site)]),
                None
            );
        }
    }

    #[test]
    fn allow_origin_admits_exactly_its_origin() {
        let allow = ["http://LocalHost:3000/".to_owned()];
        let policy = SitePolicy::new(loopback(), &[], &allow).unwrap();
        let admitted = check_site(
            &policy,
            &headers(&[
                ("host", "127.0.0.1:8765"),
                ("origin", "http://localhost:3000"),
                ("sec-fetch-site", "same-site"),
            ]),
        )
        .unwrap();
        assert_eq!(admitted.unwrap(), "http://localhost:3000");
        assert_eq!(
            code(check_site(
                &policy,
                &headers(&[
                    ("host", "127.0.0.1:8765"),
                    ("origin", "http://localhost:3001"),
                ])
            )),
            Some("cross_origin")
        );
        for bad in [
            "null",
            "localhost:3000",
            "ftp://x",
            "http://x/path",
            "http://u@x",
        ] {
            assert!(
                SitePolicy::new(loopback(), &[], &[bad.to_owned()]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn bodies_must_be_declared_json() {
        let body = |pairs: &[(&str, &str)]| code(check_json_body(&headers(pairs)));
        assert_eq!(
            body(&[("content-length", "2")]),
            Some("unsupported_media_type")
        );
        assert_eq!(
            body(&[("content-length", "2"), ("content-type", "text/plain")]),
            Some("unsupported_media_type")
        );
        assert_eq!(
            body(&[
                ("transfer-encoding", "chunked"),
                ("content-type", "application/x-www-form-urlencoded")
            ]),
            Some("unsupported_media_type")
        );
        assert_eq!(
            body(&[
                ("content-length", "2"),
                ("content-type", "application/jsonp")
            ]),
            Some("unsupported_media_type")
        );
        assert_eq!(
            body(&[
                ("content-length", "2"),
                ("content-type", "Application/JSON; charset=utf-8")
            ]),
            None
        );
        assert_eq!(body(&[("content-length", "0")]), None);
        assert_eq!(body(&[]), None);
    }
}
