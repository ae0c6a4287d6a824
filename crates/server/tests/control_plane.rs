//! End-to-end: the real binary serves the control plane over HTTP and keeps state across restarts.

mod support;

use reqwest::blocking::Client;
use serde_json::{Value, json};
use support::{Server, b64, sha256_b64, zip_of};

fn create_body(name: &str, zip: &[u8]) -> Value {
    json!({
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": "arn:aws:iam::000000000000:role/lambda",
        "Handler": "app.handler",
        "Code": { "ZipFile": b64(zip) },
        "Publish": true,
    })
}

#[test]
fn create_read_restart_and_delete() {
    let server = Server::start();
    let http = Client::new();
    let zip = zip_of(&[("app.py", b"def handler(e, c):\n    return e\n")]);

    let res = http
        .post(server.url("/2015-03-31/functions"))
        .json(&create_body("e2e", &zip))
        .send()
        .unwrap();
    assert_eq!(res.status(), 201);
    assert!(res.headers().contains_key("x-amzn-requestid"));
    let created: Value = res.json().unwrap();
    assert_eq!(created["State"], "Pending");
    assert_eq!(created["CodeSha256"], sha256_b64(&zip));
    assert_eq!(created["CodeSize"], zip.len());

    let dup = http
        .post(server.url("/2015-03-31/functions"))
        .json(&create_body("e2e", &zip))
        .send()
        .unwrap();
    assert_eq!(dup.status(), 409);
    assert_eq!(
        dup.headers()["x-amzn-errortype"],
        "ResourceConflictException"
    );

    let data_dir = server.stop();
    let server = Server::start_in(data_dir);

    let got: Value = http
        .get(server.url("/2015-03-31/functions/e2e"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(got["Configuration"]["State"], "Active");
    assert_eq!(got["Configuration"]["LastUpdateStatus"], "Successful");
    let location = got["Code"]["Location"].as_str().unwrap();
    let downloaded = http.get(location).send().unwrap().bytes().unwrap();
    assert_eq!(downloaded.as_ref(), zip.as_slice());

    let versions: Value = http
        .get(server.url("/2015-03-31/functions/e2e/versions"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let labels: Vec<&str> = versions["Versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["Version"].as_str().unwrap())
        .collect();
    assert_eq!(labels, vec!["$LATEST", "1"]);

    let del = http
        .delete(server.url(
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Ae2e",
        ))
        .send()
        .unwrap();
    assert_eq!(del.status(), 204);
    let gone = http
        .get(server.url("/2015-03-31/functions/e2e"))
        .send()
        .unwrap();
    assert_eq!(gone.status(), 404);
    server.stop();
}
