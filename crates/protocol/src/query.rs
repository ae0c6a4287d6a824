//! The query protocol (SNS, CloudFormation, STS, SQS's legacy form): a form-encoded request with
//! `Action` and `Version`, answered with XML.
//!
//! Clients flatten nested members into dotted names (`botocore/serialize.py`): structures as
//! `Parent.Member`, lists as `Name.member.N` (or `Name.N` when the model says flattened), maps
//! as `Name.entry.N.key`/`.value` (or `Name.N.Name`/`.Value`). [`Params`] reads all of these
//! forms; indexes are 1-based and may arrive in any order.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::Bytes;
use percent_encoding::percent_decode;

use crate::error::{ProtocolError, WireError};
use crate::xml::Xml;

/// The decoded parameters of a query-protocol request, in arrival order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space).
fn decode(part: &[u8]) -> Result<String, ProtocolError> {
    let spaced: Cow<[u8]> = if part.contains(&b'+') {
        Cow::Owned(
            part.iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect(),
        )
    } else {
        Cow::Borrowed(part)
    };
    percent_decode(&spaced)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| ProtocolError::Malformed("Request parameters are not valid UTF-8.".into()))
}

impl Params {
    /// Parses a form body (or a URL query string).
    pub fn parse(form: &[u8]) -> Result<Self, ProtocolError> {
        let mut pairs = Vec::new();
        for part in form.split(|&b| b == b'&') {
            if part.is_empty() {
                continue;
            }
            let (k, v) = match part.iter().position(|&b| b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &b""[..]),
            };
            pairs.push((decode(k)?, decode(v)?));
        }
        Ok(Self { pairs })
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Adds the parameters of `other` (e.g. the URL's query to the body's form).
    pub fn extend(&mut self, other: Params) {
        self.pairs.extend(other.pairs);
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of `name` (the first, if repeated).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or AWS's "missing parameter" error.
    pub fn require(&self, name: &str) -> Result<&str, ProtocolError> {
        self.get(name)
            .ok_or_else(|| ProtocolError::Missing(name.to_string()))
    }

    pub fn action(&self) -> Option<&str> {
        self.get("Action")
    }

    pub fn version(&self) -> Option<&str> {
        self.get("Version")
    }

    /// An integer parameter, if present.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ProtocolError> {
        self.get(name)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| ProtocolError::invalid(name, v, "Not a valid integer."))
            })
            .transpose()
    }

    /// A boolean parameter (`true`/`false`, any case), if present.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ProtocolError> {
        self.get(name)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ProtocolError::invalid(name, v, "Not a valid boolean.")),
            })
            .transpose()
    }

    /// The members of structure `prefix`: every `prefix.X...` as `X...`.
    pub fn sub(&self, prefix: &str) -> Params {
        Params {
            pairs: self
                .pairs
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix(prefix)
                        .and_then(|rest| rest.strip_prefix('.'))
                        .map(|rest| (rest.to_string(), v.clone()))
                })
                .collect(),
        }
    }

    /// Whether any parameter is `prefix` itself or inside it.
    pub fn has(&self, prefix: &str) -> bool {
        self.pairs.iter().any(|(k, _)| {
            k == prefix
                || k.strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }

    /// The elements of list (or map) `prefix` in index order, in every form clients send:
    /// `prefix.member.N`, `prefix.entry.N` and flattened `prefix.N`. Each element's members
    /// are relative to it; a scalar element's value is under the empty name `""`.
    pub fn indexed(&self, prefix: &str) -> Vec<Params> {
        let mut by_index: BTreeMap<u32, Params> = BTreeMap::new();
        for (k, v) in &self.pairs {
            let Some(rest) = k.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
                continue;
            };
            let rest = rest
                .strip_prefix("member.")
                .or_else(|| rest.strip_prefix("entry."))
                .unwrap_or(rest);
            let (index, member) = match rest.split_once('.') {
                Some((i, m)) => (i, m),
                None => (rest, ""),
            };
            let Ok(index) = index.parse::<u32>() else {
                continue;
            };
            by_index
                .entry(index)
                .or_default()
                .pairs
                .push((member.to_string(), v.clone()));
        }
        by_index.into_values().collect()
    }

    /// A list of scalars (`Name.member.N=v` or `Name.N=v`); an empty list (`Name=`) is empty.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        self.indexed(prefix)
            .into_iter()
            .filter_map(|p| p.get("").map(str::to_string))
            .collect()
    }

    /// A map of string to string in either form (`Name.entry.N.key`/`value` or
    /// `Name.N.Name`/`Value`, whichever names the model gives).
    pub fn string_map(&self, prefix: &str, key: &str, value: &str) -> Vec<(String, String)> {
        self.indexed(prefix)
            .into_iter()
            .filter_map(|p| Some((p.get(key)?.to_string(), p.get(value)?.to_string())))
            .collect()
    }
}

/// A query-protocol success: `<{action}Response xmlns><{action}Result>…</…Result>
/// <ResponseMetadata><RequestId>…` (botocore finds the result by the wrapper's exact name).
/// `result` is `None` for operations without output.
pub fn response(
    action: &str,
    namespace: &str,
    request_id: &str,
    result: Option<&dyn Fn(&mut Xml)>,
) -> crate::Response {
    let mut xml = Xml::document();
    xml.open_ns(&format!("{action}Response"), namespace);
    if let Some(write) = result {
        xml.open(&format!("{action}Result"));
        write(&mut xml);
        xml.close(&format!("{action}Result"));
    }
    xml.open("ResponseMetadata");
    xml.leaf("RequestId", request_id);
    xml.close("ResponseMetadata");
    xml.close(&format!("{action}Response"));
    xml_response(200, request_id, xml.finish())
}

/// A query-protocol error: `<ErrorResponse><Error><Type/><Code/><Message/></Error>
/// <RequestId/></ErrorResponse>` with the error's status.
pub fn error_response(err: &dyn WireError, namespace: &str, request_id: &str) -> crate::Response {
    let mut xml = Xml::document();
    xml.open_ns("ErrorResponse", namespace);
    xml.open("Error");
    xml.leaf("Type", err.fault().as_str());
    xml.leaf("Code", err.code());
    xml.leaf("Message", err.message());
    xml.close("Error");
    xml.leaf("RequestId", request_id);
    xml.close("ErrorResponse");
    xml_response(err.status(), request_id, xml.finish())
}

fn xml_response(status: u16, request_id: &str, body: String) -> crate::Response {
    let mut res = http::Response::new(Bytes::from(body));
    *res.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = res.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/xml"),
    );
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-RequestId", v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Fault;

    #[test]
    fn decodes_forms_with_plus_and_percent() {
        let p = Params::parse(b"Action=Publish&Message=a+b%2Bc%26d&Empty=&Flag").unwrap();
        assert_eq!(p.action(), Some("Publish"));
        assert_eq!(p.get("Message"), Some("a b+c&d"));
        assert_eq!(p.get("Empty"), Some(""));
        assert_eq!(p.get("Flag"), Some(""));
        assert!(matches!(
            Params::parse(b"A=%ff%fe"),
            Err(ProtocolError::Malformed(_))
        ));
    }

    #[test]
    fn reads_lists_in_member_and_flattened_forms_in_index_order() {
        let member = Params::parse(b"AttributeNames.member.2=B&AttributeNames.member.1=A").unwrap();
        assert_eq!(member.list("AttributeNames"), ["A", "B"]);
        let flat = Params::parse(b"AttributeName.10=J&AttributeName.2=B").unwrap();
        assert_eq!(flat.list("AttributeName"), ["B", "J"]);
        let empty = Params::parse(b"Tags=").unwrap();
        assert!(empty.list("Tags").is_empty());
        assert!(empty.has("Tags"));
    }

    #[test]
    fn reads_maps_and_structured_list_elements() {
        let p = Params::parse(
            b"Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=60\
              &Attributes.entry.1.key=Policy&Attributes.entry.1.value=%7B%7D\
              &MessageAttributes.entry.1.Name=color\
              &MessageAttributes.entry.1.Value.DataType=String\
              &MessageAttributes.entry.1.Value.StringValue=red",
        )
        .unwrap();
        assert_eq!(
            p.string_map("Attribute", "Name", "Value"),
            [("VisibilityTimeout".to_string(), "60".to_string())]
        );
        assert_eq!(
            p.string_map("Attributes", "key", "value"),
            [("Policy".to_string(), "{}".to_string())]
        );
        let attrs = p.indexed("MessageAttributes");
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs[0].get("Name"), Some("color"));
        assert_eq!(attrs[0].sub("Value").get("DataType"), Some("String"));
        assert!(p.has("MessageAttributes"));
        assert!(!p.has("MessageAttribute"));
    }

    #[test]
    fn typed_values_report_the_parameter() {
        let p = Params::parse(b"N=12&B=TRUE&Bad=x").unwrap();
        assert_eq!(p.int("N").unwrap(), Some(12));
        assert_eq!(p.bool("B").unwrap(), Some(true));
        assert_eq!(p.int("Missing").unwrap(), None);
        assert!(matches!(p.int("Bad"), Err(ProtocolError::Invalid { .. })));
        assert_eq!(
            p.require("Nope").unwrap_err().to_string(),
            "Value for parameter Nope is missing"
        );
    }

    struct NotFound;
    impl WireError for NotFound {
        fn status(&self) -> u16 {
            404
        }
        fn code(&self) -> &str {
            "NotFound"
        }
        fn message(&self) -> String {
            "Topic <x> & co does not exist".into()
        }
    }

    #[test]
    fn renders_results_and_errors() {
        let ok = response(
            "CreateTopic",
            "http://sns.amazonaws.com/doc/2010-03-31/",
            "req-1",
            Some(&|x: &mut Xml| {
                x.leaf("TopicArn", "arn:aws:sns:us-east-1:000000000000:t");
            }),
        );
        let body = std::str::from_utf8(ok.body()).unwrap();
        assert!(body.contains(
            "<CreateTopicResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
             <CreateTopicResult><TopicArn>arn:aws:sns:us-east-1:000000000000:t</TopicArn>\
             </CreateTopicResult><ResponseMetadata><RequestId>req-1</RequestId>"
        ));
        assert_eq!(ok.headers()["x-amzn-RequestId"], "req-1");
        let err = error_response(&NotFound, "ns", "req-2");
        assert_eq!(err.status(), 404);
        let body = std::str::from_utf8(err.body()).unwrap();
        assert!(body.contains("<Type>Sender</Type><Code>NotFound</Code>"));
        assert!(body.contains("Topic &lt;x&gt; &amp; co does not exist"));
        assert_eq!(NotFound.fault(), Fault::Sender);
    }
}
