//! Template bodies (JSON or YAML text) → JSON values.

use serde_json::Value;

use crate::error::{Location, Result, TemplateError};

/// Largest template body CloudFormation accepts inline (`TemplateBody`).
pub const MAX_TEMPLATE_BODY_BYTES: usize = 51_200;
/// Largest template CloudFormation reads from S3 (`TemplateURL`).
pub const MAX_TEMPLATE_URL_BYTES: usize = 1_000_000;

/// Parses a template body. A body whose first non-blank character is `{` is read as JSON
/// (with JSON's error positions); anything else as YAML with CloudFormation's short forms.
pub fn parse_document(body: &str) -> Result<Value> {
    let body = body.strip_prefix('\u{feff}').unwrap_or(body);
    let value = if body.trim_start().starts_with('{') {
        serde_json::from_str::<Value>(body).map_err(|source| TemplateError::Json {
            at: Location {
                line: source.line(),
                column: source.column(),
            },
            source,
        })?
    } else {
        crate::yaml::parse_yaml(body)?
    };
    if !value.is_object() {
        return Err(crate::error::format_err(
            "Template must be a JSON object or a YAML mapping.",
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_and_yaml() {
        assert_eq!(
            parse_document(" {\"Resources\": {}}").expect("json"),
            json!({"Resources": {}})
        );
        assert_eq!(
            parse_document("Resources: {}\n").expect("yaml"),
            json!({"Resources": {}})
        );
    }

    #[test]
    fn json_errors_have_positions() {
        let err = parse_document("{\n  \"a\": [1,\n}").expect_err("bad json");
        assert_eq!(
            err.to_string(),
            "Template format error: JSON not well-formed. (line 3, column 1)"
        );
    }

    #[test]
    fn scalars_are_not_templates() {
        assert!(parse_document("just text").is_err());
        assert!(parse_document("").is_err());
    }
}
