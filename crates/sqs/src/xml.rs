//! The query protocol's XML results, written from the JSON protocol's output shape with the
//! legacy model's element names: flattened lists (`<QueueUrl>` repeated), attribute maps as
//! `<Attribute><Name/><Value/></Attribute>`, tags as `<Tag><Key/><Value/></Tag>`.

use kindling_protocol::xml::Xml;
use serde_json::Value;

use crate::ops::Operation;

/// The element each list member is written as.
fn list_member(op: Operation, key: &str) -> &'static str {
    match key {
        "QueueUrls" | "queueUrls" => "QueueUrl",
        "Messages" => "Message",
        "Failed" => "BatchResultErrorEntry",
        "Results" => "ListMessageMoveTasksResultEntry",
        "StringListValues" => "StringListValue",
        "BinaryListValues" => "BinaryListValue",
        "Successful" => match op {
            Operation::SendMessageBatch => "SendMessageBatchResultEntry",
            Operation::DeleteMessageBatch => "DeleteMessageBatchResultEntry",
            _ => "ChangeMessageVisibilityBatchResultEntry",
        },
        _ => "member",
    }
}

/// Writes the members of a JSON output object.
pub fn write(op: Operation, xml: &mut Xml, output: &Value) {
    let Value::Object(map) = output else {
        return;
    };
    for (key, value) in map {
        match (key.as_str(), value) {
            ("Attributes", Value::Object(attrs)) => {
                for (k, v) in attrs {
                    xml.open("Attribute")
                        .leaf("Name", k)
                        .leaf("Value", text(v))
                        .close("Attribute");
                }
            }
            ("Tags", Value::Object(tags)) => {
                for (k, v) in tags {
                    xml.open("Tag")
                        .leaf("Key", k)
                        .leaf("Value", text(v))
                        .close("Tag");
                }
            }
            ("MessageAttributes", Value::Object(attrs)) => {
                for (k, v) in attrs {
                    xml.open("MessageAttribute").leaf("Name", k).open("Value");
                    write(op, xml, v);
                    xml.close("Value").close("MessageAttribute");
                }
            }
            (_, Value::Array(items)) => {
                let member = list_member(op, key);
                for item in items {
                    match item {
                        Value::Object(_) => {
                            xml.open(member);
                            write(op, xml, item);
                            xml.close(member);
                        }
                        other => {
                            xml.leaf(member, text(other));
                        }
                    }
                }
            }
            (_, Value::Object(_)) => {
                xml.open(key);
                write(op, xml, value);
                xml.close(key);
            }
            (_, v) => {
                xml.leaf(key, text(v));
            }
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lists_and_maps_use_the_legacy_element_names() {
        let mut x = Xml::fragment();
        write(
            Operation::ReceiveMessage,
            &mut x,
            &json!({"Messages": [{"MessageId": "m", "Attributes": {"SenderId": "s"},
                "MessageAttributes": {"k": {"StringValue": "v", "DataType": "String"}}}]}),
        );
        assert_eq!(
            x.finish(),
            "<Message><MessageId>m</MessageId><Attribute><Name>SenderId</Name>\
             <Value>s</Value></Attribute><MessageAttribute><Name>k</Name><Value>\
             <StringValue>v</StringValue><DataType>String</DataType></Value>\
             </MessageAttribute></Message>"
        );
        let mut x = Xml::fragment();
        write(
            Operation::SendMessageBatch,
            &mut x,
            &json!({"Successful": [{"Id": "a"}], "Failed": [], "QueueUrls": ["u"]}),
        );
        assert_eq!(
            x.finish(),
            "<SendMessageBatchResultEntry><Id>a</Id></SendMessageBatchResultEntry>\
             <QueueUrl>u</QueueUrl>"
        );
    }
}
