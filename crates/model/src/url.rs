//! Function URL configurations (CreateFunctionUrlConfig & co.) and the resource-policy
//! statement a public (`AuthType` NONE) URL needs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `AuthType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UrlAuthType {
    #[serde(rename = "NONE")]
    None,
    #[serde(rename = "AWS_IAM")]
    AwsIam,
}

impl UrlAuthType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::AwsIam => "AWS_IAM",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "NONE" => Some(Self::None),
            "AWS_IAM" => Some(Self::AwsIam),
            _ => None,
        }
    }
}

/// `InvokeMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum InvokeMode {
    #[default]
    #[serde(rename = "BUFFERED")]
    Buffered,
    #[serde(rename = "RESPONSE_STREAM")]
    ResponseStream,
}

impl InvokeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buffered => "BUFFERED",
            Self::ResponseStream => "RESPONSE_STREAM",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "BUFFERED" => Some(Self::Buffered),
            "RESPONSE_STREAM" => Some(Self::ResponseStream),
            _ => None,
        }
    }
}

/// `Cors`, in Lambda's wire shape (members absent when unset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Cors {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_origins: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
}

/// One function URL: a function (unqualified, i.e. `$LATEST`, or an alias) reachable over
/// HTTP under its url-id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionUrlRecord {
    /// 32 lowercase letters and digits; the URL's first host label on AWS.
    pub url_id: String,
    pub function_name: String,
    /// `$LATEST` for an unqualified URL, else the alias name.
    pub qualifier: String,
    pub auth_type: UrlAuthType,
    pub cors: Option<Cors>,
    pub invoke_mode: InvokeMode,
    pub creation_ms: i64,
    pub last_modified_ms: i64,
    /// Changes on every update (compare-and-swap).
    pub revision_id: String,
}

impl FunctionUrlRecord {
    /// The alias the URL invokes, `None` for `$LATEST`.
    pub fn alias(&self) -> Option<&str> {
        (self.qualifier != "$LATEST").then_some(self.qualifier.as_str())
    }
}

/// True when `statement` lets anyone invoke through a URL with `AuthType` NONE: Allow,
/// principal `*` (or `{"AWS": "*"}`), action `lambda:InvokeFunctionUrl` (or `lambda:*`, `*`),
/// and no condition other than `lambda:FunctionUrlAuthType` = `NONE`.
pub fn allows_public_url(statement: &Value) -> bool {
    if statement["Effect"] != "Allow" {
        return false;
    }
    let principal_ok = match &statement["Principal"] {
        Value::String(p) => p == "*",
        Value::Object(m) => m.get("AWS").is_some_and(|a| a == "*"),
        _ => false,
    };
    let action_ok = |a: &Value| {
        a.as_str()
            .is_some_and(|a| matches!(a, "lambda:InvokeFunctionUrl" | "lambda:*" | "*"))
    };
    let actions_ok = match &statement["Action"] {
        Value::Array(list) => list.iter().any(action_ok),
        a => action_ok(a),
    };
    let condition_ok = match &statement["Condition"] {
        Value::Null => true,
        Value::Object(conds) => conds.iter().all(|(op, kv)| {
            op == "StringEquals"
                && kv.as_object().is_some_and(|kv| {
                    kv.iter()
                        .all(|(k, v)| k == "lambda:FunctionUrlAuthType" && v == "NONE")
                })
        }),
        _ => false,
    };
    principal_ok && actions_ok && condition_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn public_statement() {
        let good = json!({"Sid":"url","Effect":"Allow","Principal":"*",
            "Action":"lambda:InvokeFunctionUrl","Resource":"arn:aws:lambda:us-east-1:1:function:f",
            "Condition":{"StringEquals":{"lambda:FunctionUrlAuthType":"NONE"}}});
        assert!(allows_public_url(&good));
        let mut no_cond = good.clone();
        no_cond.as_object_mut().unwrap().remove("Condition");
        assert!(allows_public_url(&no_cond));
        let mut iam = good.clone();
        iam["Condition"]["StringEquals"]["lambda:FunctionUrlAuthType"] = json!("AWS_IAM");
        assert!(!allows_public_url(&iam));
        let mut invoke = good.clone();
        invoke["Action"] = json!("lambda:InvokeFunction");
        assert!(!allows_public_url(&invoke));
        let mut account = good.clone();
        account["Principal"] = json!({"AWS": "arn:aws:iam::123456789012:root"});
        assert!(!allows_public_url(&account));
        let mut source = good.clone();
        source["Condition"]["ArnLike"] = json!({"AWS:SourceArn": "x"});
        assert!(!allows_public_url(&source));
        let mut deny = good;
        deny["Effect"] = json!("Deny");
        assert!(!allows_public_url(&deny));
    }

    #[test]
    fn record_round_trip() {
        let rec = FunctionUrlRecord {
            url_id: "a".repeat(32),
            function_name: "f".into(),
            qualifier: "$LATEST".into(),
            auth_type: UrlAuthType::None,
            cors: Some(Cors {
                max_age: Some(5),
                ..Cors::default()
            }),
            invoke_mode: InvokeMode::Buffered,
            creation_ms: 1,
            last_modified_ms: 2,
            revision_id: "r".into(),
        };
        let back: FunctionUrlRecord =
            serde_json::from_str(&serde_json::to_string(&rec).unwrap()).unwrap();
        assert_eq!(back, rec);
        assert_eq!(back.alias(), None);
        assert_eq!(
            serde_json::to_value(&rec.cors).unwrap(),
            json!({"MaxAge": 5})
        );
    }
}
