//! The OpenAPI document served at `/openapi.json`.

/// The OpenAPI 3 document of the v1 API, as JSON.
pub fn document() -> String {
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "shellctl", "version": env!("CARGO_PKG_VERSION")},
        "paths": {}
    })
    .to_string()
}
