//! Resource-based policy statements built from AddPermission requests.

use serde_json::{Map, Value, json};

/// The members of an AddPermission request that shape the statement.
#[derive(Debug, Clone, Default)]
pub struct PermissionInput {
    pub statement_id: String,
    pub action: String,
    pub principal: String,
    pub source_arn: Option<String>,
    pub source_account: Option<String>,
    pub event_source_token: Option<String>,
    pub principal_org_id: Option<String>,
    pub function_url_auth_type: Option<String>,
    /// `{"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}` when set.
    pub invoked_via_function_url: Option<bool>,
}

/// Renders the principal as IAM does: services by name, accounts as root ARNs.
fn principal(p: &str, partition: &str) -> Value {
    if p == "*" {
        json!("*")
    } else if crate::validate::is_digits(p) && p.len() == 12 {
        json!({ "AWS": format!("arn:{partition}:iam::{p}:root") })
    } else if p.starts_with("arn:") {
        json!({ "AWS": p })
    } else {
        json!({ "Service": p })
    }
}

/// Builds one policy statement for `resource_arn`.
pub fn statement(input: &PermissionInput, resource_arn: &str, partition: &str) -> Value {
    let mut conditions = Map::new();
    let mut string_equals = Map::new();
    if let Some(acct) = &input.source_account {
        string_equals.insert("AWS:SourceAccount".into(), json!(acct));
    }
    if let Some(org) = &input.principal_org_id {
        string_equals.insert("aws:PrincipalOrgID".into(), json!(org));
    }
    if let Some(token) = &input.event_source_token {
        string_equals.insert("lambda:EventSourceToken".into(), json!(token));
    }
    if let Some(auth) = &input.function_url_auth_type {
        string_equals.insert("lambda:FunctionUrlAuthType".into(), json!(auth));
    }
    if !string_equals.is_empty() {
        conditions.insert("StringEquals".into(), Value::Object(string_equals));
    }
    if let Some(via) = input.invoked_via_function_url {
        conditions.insert(
            "Bool".into(),
            json!({ "lambda:InvokedViaFunctionUrl": via.to_string() }),
        );
    }
    if let Some(arn) = &input.source_arn {
        conditions.insert("ArnLike".into(), json!({ "AWS:SourceArn": arn }));
    }
    let mut stmt = json!({
        "Sid": input.statement_id,
        "Effect": "Allow",
        "Principal": principal(&input.principal, partition),
        "Action": input.action,
        "Resource": resource_arn,
    });
    if !conditions.is_empty() {
        stmt["Condition"] = Value::Object(conditions);
    }
    stmt
}

/// Wraps statements in a policy document.
pub fn document(statements: &[Value]) -> Value {
    json!({ "Version": "2012-10-17", "Id": "default", "Statement": statements })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_statements() {
        let input = PermissionInput {
            statement_id: "s3".into(),
            action: "lambda:InvokeFunction".into(),
            principal: "s3.amazonaws.com".into(),
            source_account: Some("123456789012".into()),
            source_arn: Some("arn:aws:s3:::bucket".into()),
            ..Default::default()
        };
        let s = statement(
            &input,
            "arn:aws:lambda:us-east-1:123456789012:function:f",
            "aws",
        );
        assert_eq!(s["Principal"]["Service"], "s3.amazonaws.com");
        assert_eq!(
            s["Condition"]["StringEquals"]["AWS:SourceAccount"],
            "123456789012"
        );
        assert_eq!(
            s["Condition"]["ArnLike"]["AWS:SourceArn"],
            "arn:aws:s3:::bucket"
        );
        let acct = PermissionInput {
            principal: "111122223333".into(),
            ..input
        };
        let s = statement(&acct, "r", "aws");
        assert_eq!(s["Principal"]["AWS"], "arn:aws:iam::111122223333:root");
        assert_eq!(
            document(&[s])["Statement"].as_array().map(Vec::len),
            Some(1)
        );
    }
}
