//! The web console and the API docs page: static files embedded in the
//! binary and served without auth (they hold no data; every request the
//! page makes carries the token), behind the same site gates as every
//! route.
//!
//! The console is plain HTML, CSS and JavaScript in `console/`, compiled in
//! with `include_str!`: no build step, no CDN, it works offline. Its script
//! and style are separate files so the Content-Security-Policy can forbid
//! every inline script and style: a job's output is shown on this page, and
//! if some bug ever let output reach the DOM as markup, the policy keeps it
//! from running. `/docs` is the one page that loads code from elsewhere
//! (Swagger UI from a CDN, pinned to one version and checked by its
//! `integrity` hash), and its policy admits exactly that CDN path.

use crate::api::AppState;
use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The policy of the console's files: everything from this server only,
/// nothing inline, no framing (clickjacking a page that can run commands),
/// no `<base>` rewrite, no form posted anywhere (forms are handled by the
/// script).
const CONSOLE_CSP: &str = "default-src 'self'; connect-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Where `/docs` loads Swagger UI from (a macro, so the policy below is
/// built from the same text). A CSP source with a path admits only files
/// under it, so the policy names this one package version and nothing else
/// on the CDN.
macro_rules! docs_cdn {
    () => {
        "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.35.0/"
    };
}

/// The policy of `/docs`: the console's, plus scripts and styles from the
/// CDN path, and `data:` images (Swagger UI's icons are inlined in its
/// stylesheet).
const DOCS_CSP: &str = concat!(
    "default-src 'self'; connect-src 'self'; script-src 'self' ",
    docs_cdn!(),
    "; style-src 'self' ",
    docs_cdn!(),
    "; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'"
);

const INDEX_HTML: &str = include_str!("console/index.html");
const CONSOLE_CSS: &str = include_str!("console/console.css");
const CONSOLE_JS: &str = include_str!("console/console.js");
const FAVICON_SVG: &str = include_str!("console/favicon.svg");
const DOCS_HTML: &str = include_str!("console/docs.html");
const DOCS_JS: &str = include_str!("console/docs.js");
const DOCS_CSS: &str = include_str!("console/docs.css");

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// The routes of the console (`/` and its assets) and of `/docs`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { file(HTML, CONSOLE_CSP, INDEX_HTML) }))
        .route(
            "/console/console.css",
            get(|| async { file(CSS, CONSOLE_CSP, CONSOLE_CSS) }),
        )
        .route(
            "/console/console.js",
            get(|| async { file(JAVASCRIPT, CONSOLE_CSP, CONSOLE_JS) }),
        )
        .route(
            "/console/favicon.svg",
            get(|| async { file(SVG, CONSOLE_CSP, FAVICON_SVG) }),
        )
        .route("/docs", get(|| async { file(HTML, DOCS_CSP, DOCS_HTML) }))
        .route(
            "/docs/docs.css",
            get(|| async { file(CSS, DOCS_CSP, DOCS_CSS) }),
        )
        .route(
            "/docs/docs.js",
            get(|| async { file(JAVASCRIPT, DOCS_CSP, DOCS_JS) }),
        )
}

/// One embedded file with its headers. `no-store`: the files change with
/// the binary, and a cached console from an older server would speak an
/// older API; they are small, and served from memory. `nosniff`: the
/// declared type is the only one a browser may run a file as.
fn file(content_type: &'static str, csp: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy forbids inline code, so any that slipped into the HTML
    /// would silently not run; these checks catch it before a browser does.
    #[test]
    fn the_pages_hold_no_inline_script_or_style() {
        for (name, html) in [("index.html", INDEX_HTML), ("docs.html", DOCS_HTML)] {
            let lower = html.to_ascii_lowercase();
            for tag in lower.match_indices("<script").map(|(at, _)| &lower[at..]) {
                let open = &tag[..tag.find('>').unwrap_or(tag.len())];
                assert!(open.contains(" src="), "{name}: inline <script>");
            }
            assert!(!lower.contains("<style"), "{name}: inline <style>");
            assert!(!lower.contains(" style="), "{name}: style attribute");
            assert!(!lower.contains(" onclick="), "{name}: inline handler");
            assert!(!lower.contains("javascript:"), "{name}: javascript: URL");
        }
    }

    #[test]
    fn the_docs_page_loads_only_from_the_cdn_its_policy_names() {
        let cdn = docs_cdn!();
        for url in DOCS_HTML
            .match_indices("https://")
            .map(|(at, _)| &DOCS_HTML[at..])
        {
            assert!(url.starts_with(cdn), "{}", &url[..url.len().min(80)]);
        }
        assert_eq!(DOCS_CSP.matches(cdn).count(), 2);
        assert!(
            !DOCS_CSP.contains("https://cdn.jsdelivr.net "),
            "the whole CDN admitted"
        );
        assert_eq!(DOCS_HTML.matches("integrity=\"sha384-").count(), 2);
    }

    #[test]
    fn the_console_never_puts_the_token_in_a_url_or_asks_with_prompt() {
        assert!(!CONSOLE_JS.contains("prompt("));
        assert!(!CONSOLE_JS.contains("new EventSource"));
        assert!(!CONSOLE_JS.contains("token="));
        assert!(CONSOLE_JS.contains("sessionStorage"));
    }
}
