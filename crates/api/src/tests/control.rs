//! The control plane through the router, one resource after another: every route answers with
//! Lambda's status, shape and errors (the conformance suite checks the same with boto3; these
//! run in `cargo test`, without a socket).

use axum::http::StatusCode;
use base64::Engine;
use serde_json::{Value, json};

use super::{app, call};

const ROLE: &str = "arn:aws:iam::000000000000:role/lambda";

/// A zip holding `app.py` (stored, no compression) — built by hand: the api crate does not
/// depend on a zip writer.
fn tiny_zip(content: &[u8]) -> String {
    let name = b"app.py";
    let crc = crc32(content);
    let mut out = Vec::new();
    let local = |out: &mut Vec<u8>| {
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(content.len() as u32).to_le_bytes());
        out.extend_from_slice(&(content.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(content);
    };
    local(&mut out);
    let cd_start = out.len() as u32;
    out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    out.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&(content.len() as u32).to_le_bytes());
    out.extend_from_slice(&(content.len() as u32).to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&(0o100_644u32 << 16).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(name);
    let cd_len = out.len() as u32 - cd_start;
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    out.extend_from_slice(&cd_len.to_le_bytes());
    out.extend_from_slice(&cd_start.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    base64::engine::general_purpose::STANDARD.encode(out)
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub(crate) fn create_body(name: &str) -> String {
    json!({
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": ROLE,
        "Handler": "app.handler",
        "Code": {"ZipFile": tiny_zip(b"def handler(e, c):\n    return e\n")},
    })
    .to_string()
}

async fn expect(
    app: &super::Router,
    method: &str,
    uri: &str,
    body: &str,
    status: StatusCode,
) -> Value {
    let (got, headers, json) = call(app, method, uri, body).await;
    assert_eq!(got, status, "{method} {uri}: {json}");
    assert!(headers.contains_key("x-amzn-RequestId"), "{method} {uri}");
    json
}

async fn expect_error(app: &super::Router, method: &str, uri: &str, body: &str, kind: &str) {
    let (status, headers, json) = call(app, method, uri, body).await;
    assert!(status.is_client_error(), "{method} {uri}: {status} {json}");
    assert_eq!(headers["x-amzn-ErrorType"], kind, "{method} {uri}: {json}");
}

#[tokio::test]
async fn functions_code_and_configuration() {
    let (app, _d) = app();
    let f = "/2015-03-31/functions";
    let created = expect(&app, "POST", f, &create_body("fn"), StatusCode::CREATED).await;
    assert_eq!(created["FunctionName"], "fn");
    assert_eq!(created["Version"], "$LATEST");
    assert_eq!(
        created["State"], "Pending",
        "Lambda answers CreateFunction while Pending"
    );
    assert_eq!(created["CodeSize"].as_u64().map(|n| n > 0), Some(true));
    expect_error(
        &app,
        "POST",
        f,
        &create_body("fn"),
        "ResourceConflictException",
    )
    .await;
    expect_error(&app, "POST", f, "{}", "ValidationException").await;
    expect_error(
        &app,
        "POST",
        f,
        &json!({"FunctionName": "x", "Runtime": "python3.12", "Role": ROLE,
                "Handler": "a.b", "Code": {"ZipFile": "bm90IGEgemlw"}})
        .to_string(),
        "InvalidParameterValueException",
    )
    .await;

    let got = expect(&app, "GET", "/2015-03-31/functions/fn", "", StatusCode::OK).await;
    assert_eq!(got["Configuration"]["FunctionName"], "fn");
    assert!(
        got["Code"]["Location"]
            .as_str()
            .is_some_and(|l| l.contains("X-Amz-Signature="))
    );
    let config = expect(
        &app,
        "GET",
        "/2015-03-31/functions/fn/configuration",
        "",
        StatusCode::OK,
    )
    .await;
    let updated = expect(
        &app,
        "PUT",
        "/2015-03-31/functions/fn/configuration",
        &json!({"Timeout": 9, "MemorySize": 256, "Environment": {"Variables": {"AB": "1"}}})
            .to_string(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(updated["Timeout"], 9);
    assert_eq!(updated["Environment"]["Variables"]["AB"], "1");
    assert_ne!(updated["RevisionId"], config["RevisionId"]);
    // A stale RevisionId is refused.
    expect_error(
        &app,
        "PUT",
        "/2015-03-31/functions/fn/configuration",
        &json!({"Timeout": 3, "RevisionId": config["RevisionId"]}).to_string(),
        "PreconditionFailedException",
    )
    .await;
    expect_error(
        &app,
        "PUT",
        "/2015-03-31/functions/fn/configuration",
        &json!({"Timeout": 0}).to_string(),
        "ValidationException",
    )
    .await;
    let code = expect(
        &app,
        "PUT",
        "/2015-03-31/functions/fn/code",
        &json!({"ZipFile": tiny_zip(b"def handler(e, c):\n    return 2\n")}).to_string(),
        StatusCode::OK,
    )
    .await;
    assert_ne!(code["CodeSha256"], created["CodeSha256"]);

    let listed = expect(
        &app,
        "GET",
        "/2015-03-31/functions?MaxItems=1",
        "",
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["Functions"].as_array().map(Vec::len), Some(1));
    expect(
        &app,
        "DELETE",
        "/2015-03-31/functions/fn",
        "",
        StatusCode::NO_CONTENT,
    )
    .await;
    expect_error(
        &app,
        "GET",
        "/2015-03-31/functions/fn",
        "",
        "ResourceNotFoundException",
    )
    .await;
}

#[tokio::test]
async fn versions_aliases_and_concurrency() {
    let (app, _d) = app();
    expect(
        &app,
        "POST",
        "/2015-03-31/functions",
        &create_body("v"),
        StatusCode::CREATED,
    )
    .await;
    let v1 = expect(
        &app,
        "POST",
        "/2015-03-31/functions/v/versions",
        "{}",
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(v1["Version"], "1");
    expect(
        &app,
        "PUT",
        "/2015-03-31/functions/v/configuration",
        &json!({"Timeout": 5}).to_string(),
        StatusCode::OK,
    )
    .await;
    let v2 = expect(
        &app,
        "POST",
        "/2015-03-31/functions/v/versions",
        "{}",
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(v2["Version"], "2");
    let versions = expect(
        &app,
        "GET",
        "/2015-03-31/functions/v/versions",
        "",
        StatusCode::OK,
    )
    .await;
    assert_eq!(versions["Versions"].as_array().map(Vec::len), Some(3));

    let alias = expect(
        &app,
        "POST",
        "/2015-03-31/functions/v/aliases",
        &json!({"Name": "live", "FunctionVersion": "1"}).to_string(),
        StatusCode::CREATED,
    )
    .await;
    assert!(
        alias["AliasArn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":v:live"))
    );
    let weighted = expect(
        &app,
        "PUT",
        "/2015-03-31/functions/v/aliases/live",
        &json!({"RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1}}}).to_string(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        weighted["RoutingConfig"]["AdditionalVersionWeights"]["2"],
        0.1
    );
    expect_error(
        &app,
        "PUT",
        "/2015-03-31/functions/v/aliases/live",
        &json!({"RoutingConfig": {"AdditionalVersionWeights": {"2": 1.5}}}).to_string(),
        "ValidationException",
    )
    .await;
    expect_error(
        &app,
        "POST",
        "/2015-03-31/functions/v/aliases",
        &json!({"Name": "bad", "FunctionVersion": "9"}).to_string(),
        "ResourceNotFoundException",
    )
    .await;
    let aliases = expect(
        &app,
        "GET",
        "/2015-03-31/functions/v/aliases",
        "",
        StatusCode::OK,
    )
    .await;
    assert_eq!(aliases["Aliases"].as_array().map(Vec::len), Some(1));
    expect(
        &app,
        "GET",
        "/2015-03-31/functions/v/aliases/live",
        "",
        StatusCode::OK,
    )
    .await;
    expect(
        &app,
        "DELETE",
        "/2015-03-31/functions/v/aliases/live",
        "",
        StatusCode::NO_CONTENT,
    )
    .await;

    let put = expect(
        &app,
        "PUT",
        "/2017-10-31/functions/v/concurrency",
        &json!({"ReservedConcurrentExecutions": 10}).to_string(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(put["ReservedConcurrentExecutions"], 10);
    expect_error(
        &app,
        "PUT",
        "/2017-10-31/functions/v/concurrency",
        &json!({"ReservedConcurrentExecutions": 950}).to_string(),
        "InvalidParameterValueException",
    )
    .await;
    let got = expect(
        &app,
        "GET",
        "/2019-09-30/functions/v/concurrency",
        "",
        StatusCode::OK,
    )
    .await;
    assert_eq!(got["ReservedConcurrentExecutions"], 10);
    let settings = expect(
        &app,
        "GET",
        "/2016-08-19/account-settings",
        "",
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        settings["AccountLimit"]["UnreservedConcurrentExecutions"],
        990
    );
    expect(
        &app,
        "DELETE",
        "/2017-10-31/functions/v/concurrency",
        "",
        StatusCode::NO_CONTENT,
    )
    .await;
}

#[tokio::test]
async fn layers_tags_policies_and_event_invoke_configs() {
    let (app, _d) = app();
    let created = expect(
        &app,
        "POST",
        "/2015-03-31/functions",
        &create_body("t"),
        StatusCode::CREATED,
    )
    .await;
    let arn = created["FunctionArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let layer = expect(
        &app,
        "POST",
        "/2018-10-31/layers/lib/versions",
        &json!({"Content": {"ZipFile": tiny_zip(b"x = 1\n")}, "CompatibleRuntimes": ["python3.12"]})
            .to_string(),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(layer["Version"], 1);
    expect(
        &app,
        "GET",
        "/2018-10-31/layers/lib/versions/1",
        "",
        StatusCode::OK,
    )
    .await;
    let layers = expect(&app, "GET", "/2018-10-31/layers", "", StatusCode::OK).await;
    assert_eq!(layers["Layers"][0]["LayerName"], "lib");
    expect_error(
        &app,
        "GET",
        "/2018-10-31/layers/lib/versions/7",
        "",
        "ResourceNotFoundException",
    )
    .await;
    expect(
        &app,
        "DELETE",
        "/2018-10-31/layers/lib/versions/1",
        "",
        StatusCode::NO_CONTENT,
    )
    .await;

    let tags_uri = format!("/2017-03-31/tags/{arn}");
    expect(
        &app,
        "POST",
        &tags_uri,
        &json!({"Tags": {"team": "a"}}).to_string(),
        StatusCode::NO_CONTENT,
    )
    .await;
    let tags = expect(&app, "GET", &tags_uri, "", StatusCode::OK).await;
    assert_eq!(tags["Tags"]["team"], "a");
    expect(
        &app,
        "DELETE",
        &format!("{tags_uri}?tagKeys=team"),
        "",
        StatusCode::NO_CONTENT,
    )
    .await;

    let statement = expect(
        &app,
        "POST",
        "/2015-03-31/functions/t/policy",
        &json!({"StatementId": "s1", "Action": "lambda:InvokeFunction",
                "Principal": "sns.amazonaws.com"})
        .to_string(),
        StatusCode::CREATED,
    )
    .await;
    assert!(
        statement["Statement"]
            .as_str()
            .is_some_and(|s| s.contains("\"Sid\":\"s1\""))
    );
    expect_error(
        &app,
        "POST",
        "/2015-03-31/functions/t/policy",
        &json!({"StatementId": "s1", "Action": "lambda:InvokeFunction",
                "Principal": "sns.amazonaws.com"})
        .to_string(),
        "ResourceConflictException",
    )
    .await;
    let policy = expect(
        &app,
        "GET",
        "/2015-03-31/functions/t/policy",
        "",
        StatusCode::OK,
    )
    .await;
    assert!(policy["Policy"].as_str().is_some_and(|p| p.contains("s1")));
    expect(
        &app,
        "DELETE",
        "/2015-03-31/functions/t/policy/s1",
        "",
        StatusCode::NO_CONTENT,
    )
    .await;

    let uri = "/2019-09-25/functions/t/event-invoke-config";
    let put = expect(
        &app,
        "PUT",
        uri,
        &json!({"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 120}).to_string(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(put["MaximumRetryAttempts"], 1);
    let updated = expect(
        &app,
        "POST",
        uri,
        &json!({"MaximumRetryAttempts": 0}).to_string(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(updated["MaximumEventAgeInSeconds"], 120);
    expect_error(
        &app,
        "PUT",
        uri,
        &json!({"MaximumRetryAttempts": 3}).to_string(),
        "ValidationException",
    )
    .await;
    let listed = expect(&app, "GET", &format!("{uri}/list"), "", StatusCode::OK).await;
    assert_eq!(
        listed["FunctionEventInvokeConfigs"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    expect(&app, "DELETE", uri, "", StatusCode::NO_CONTENT).await;
    expect_error(&app, "GET", uri, "", "ResourceNotFoundException").await;
}

#[tokio::test]
async fn invoke_without_a_data_plane_is_a_clear_error() {
    let (app, _d) = app();
    expect(
        &app,
        "POST",
        "/2015-03-31/functions",
        &create_body("i"),
        StatusCode::CREATED,
    )
    .await;
    let (status, headers, _) =
        call(&app, "POST", "/2015-03-31/functions/i/invocations", "{}").await;
    assert!(status.is_server_error(), "{status}");
    assert!(headers.contains_key("x-amzn-ErrorType"));
    expect_error(
        &app,
        "POST",
        "/2015-03-31/functions/nope/invocations",
        "{}",
        "ResourceNotFoundException",
    )
    .await;
}
