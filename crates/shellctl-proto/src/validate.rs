//! Decoding plus validation of request bodies and query strings, with errors
//! that name the offending field.

use crate::error::{RequestError, ValidationError};
use serde::de::DeserializeOwned;

/// A request type whose values have bounds beyond what its Rust types say.
pub trait Validate {
    /// Checks every bound; the error names the first field that breaks one.
    fn validate(&self) -> Result<(), ValidationError>;
}

/// Parses a JSON request body and validates it.
///
/// A body that is not JSON gives [`RequestError::Syntax`]; a missing, unknown,
/// mistyped or out-of-bounds field gives [`RequestError::Invalid`] naming it.
pub fn decode_request<T: DeserializeOwned + Validate>(body: &[u8]) -> Result<T, RequestError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => value,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Data => {
                    RequestError::Invalid(field_error(&path, &inner.to_string(), "body"))
                }
                _ => RequestError::Syntax(inner.to_string()),
            });
        }
    };
    deserializer
        .end()
        .map_err(|err| RequestError::Syntax(err.to_string()))?;
    value.validate()?;
    Ok(value)
}

/// Parses a URL query string (without the `?`) and validates it.
pub fn decode_query<T: DeserializeOwned + Validate>(query: &str) -> Result<T, RequestError> {
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    let value: T = serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        RequestError::Invalid(field_error(&path, &err.into_inner().to_string(), "query"))
    })?;
    value.validate()?;
    Ok(value)
}

/// Turns serde's message into a field-named error. serde reports a missing
/// field at its parent's path, with the name only in the message, so lift the
/// name out of the message in that case.
fn field_error(path: &str, message: &str, root: &str) -> ValidationError {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let parent = if path == "." || path.is_empty() {
        None
    } else {
        Some(path)
    };
    let field = match (parent, named) {
        // Unknown fields already end the path; missing ones do not.
        (Some(parent), Some(name)) if parent.rsplit('.').next() == Some(name) => parent.to_owned(),
        (Some(parent), Some(name)) => format!("{parent}.{name}"),
        (None, Some(name)) => name.to_owned(),
        (Some(parent), None) => parent.to_owned(),
        (None, None) => root.to_owned(),
    };
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    ValidationError::new(field, message)
}

/// Checks `lo <= value <= hi` for an integer field.
pub(crate) fn int_in_range<T>(field: &str, value: T, lo: T, hi: T) -> Result<(), ValidationError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if value < lo {
        Err(ValidationError::new(
            field,
            format!("must be at least {lo}, got {value}"),
        ))
    } else if value > hi {
        Err(ValidationError::new(
            field,
            format!("must be at most {hi}, got {value}"),
        ))
    } else {
        Ok(())
    }
}

/// Checks a float field against its bounds; NaN and infinities never pass.
pub(crate) fn float_in_range(
    field: &str,
    value: f64,
    lo: f64,
    lo_inclusive: bool,
    hi: f64,
) -> Result<(), ValidationError> {
    let above_lo = if lo_inclusive {
        value >= lo
    } else {
        value > lo
    };
    if above_lo && value <= hi {
        return Ok(());
    }
    let relation = if lo_inclusive { ">=" } else { ">" };
    Err(ValidationError::new(
        field,
        format!("must be {relation} {lo} and <= {hi}, got {value}"),
    ))
}
