//! `dryRun=All`: the request is admitted, validated and answered as usual, but nothing is
//! stored and no watch event goes out. The only value a real server knows is `All`; anything
//! else is refused (422 on the request's options) rather than silently doing the real thing,
//! which is what a lenient fake did with a misspelled `dryRun=all`.
//!
//! kube-rs sends a delete's dry run in the DeleteOptions body, not the query, so both count.

use serde_json::Value;

use super::api::Params;
use super::field_validation::options_invalid;
use super::status::ApiError;

fn check(values: &[String], options_kind: &str) -> Result<bool, ApiError> {
    if values.iter().all(|v| v == "All") {
        return Ok(!values.is_empty());
    }
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    Err(options_invalid(
        options_kind,
        "dryRun",
        &format!("[]string{{{}}}", quoted.join(", ")),
        r#""All""#,
    ))
}

/// Whether the request is a dry run; Err for values other than `All`.
pub fn requested(params: &Params, options_kind: &str) -> Result<bool, ApiError> {
    let values: Vec<String> = params.get("dryRun").into_iter().cloned().collect();
    check(&values, options_kind)
}

/// The same for a delete, whose DeleteOptions body may carry `dryRun` too.
pub fn requested_delete(params: &Params, body: &Value) -> Result<bool, ApiError> {
    let in_query = requested(params, "DeleteOptions")?;
    let in_body: Vec<String> = body
        .get("dryRun")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    Ok(check(&in_body, "DeleteOptions")? || in_query)
}
