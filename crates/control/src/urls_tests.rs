//! Function URL configurations over an in-memory store.

use std::sync::Arc;

use kindling_model::ArnContext;
use kindling_model::url::{InvokeMode, UrlAuthType};
use kindling_store::{BlobStore, SqliteStore};

use crate::input::{AddPermission, FunctionUrlConfigInput};
use crate::tests::create;
use crate::{ControlConfig, ControlError, ControlPlane};

fn plane() -> (ControlPlane, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let plane = ControlPlane::new(
        Arc::new(SqliteStore::in_memory().unwrap()),
        BlobStore::open(dir.path()).unwrap(),
        ControlConfig {
            arn: ArnContext::new("us-east-1", "000000000000"),
            account_concurrency: 1000,
            min_unreserved_concurrency: 100,
        },
    );
    (plane, dir)
}

fn none() -> FunctionUrlConfigInput {
    FunctionUrlConfigInput {
        auth_type: Some("NONE".into()),
        ..Default::default()
    }
}

#[test]
fn lifecycle_and_lookup_by_id() {
    let (p, _d) = plane();
    create(&p, "f", false);
    let v = p.create_function_url_config("f", None, none()).unwrap();
    assert_eq!(v.record.url_id.len(), 32);
    assert!(
        v.record
            .url_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    );
    assert_eq!(
        v.function_arn,
        "arn:aws:lambda:us-east-1:000000000000:function:f"
    );
    assert_eq!(v.record.invoke_mode, InvokeMode::Buffered);
    // `$LATEST` spelled out is the unqualified URL.
    let same = p.get_function_url_config("f", Some("$LATEST")).unwrap();
    assert_eq!(same.record.url_id, v.record.url_id);
    assert!(matches!(
        p.create_function_url_config("f", None, none()),
        Err(ControlError::Conflict(_))
    ));

    let updated = p
        .update_function_url_config(
            "f",
            None,
            FunctionUrlConfigInput {
                auth_type: Some("AWS_IAM".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(updated.record.auth_type, UrlAuthType::AwsIam);
    assert_ne!(updated.record.revision_id, v.record.revision_id);
    assert_eq!(updated.record.creation_ms, v.record.creation_ms);

    let target = p.url_target(&v.record.url_id).unwrap().unwrap();
    assert_eq!(target.record.auth_type, UrlAuthType::AwsIam);
    assert!(!target.public);
    assert!(p.url_target("nope").unwrap().is_none());

    p.delete_function_url_config("f", None).unwrap();
    assert!(p.url_target(&v.record.url_id).unwrap().is_none());
    assert!(matches!(
        p.get_function_url_config("f", None),
        Err(ControlError::NotFound(_))
    ));
}

#[test]
fn the_public_statement_opens_a_none_url_and_the_cache_follows_writes() {
    let (p, _d) = plane();
    create(&p, "f", false);
    let id = p
        .create_function_url_config("f", None, none())
        .unwrap()
        .record
        .url_id;
    assert!(!p.url_target(&id).unwrap().unwrap().public);
    assert!(p.cached_url_target(&id).is_some());
    p.add_permission(
        "f",
        None,
        AddPermission {
            statement_id: Some("url".into()),
            action: Some("lambda:InvokeFunctionUrl".into()),
            principal: Some("*".into()),
            function_url_auth_type: Some("NONE".into()),
            ..Default::default()
        },
    )
    .unwrap();
    // The write invalidated the cached target.
    assert!(p.cached_url_target(&id).is_none());
    assert!(p.url_target(&id).unwrap().unwrap().public);
}

#[test]
fn qualifiers_are_aliases_only() {
    let (p, _d) = plane();
    create(&p, "f", true);
    assert!(matches!(
        p.create_function_url_config("f", Some("1"), none()),
        Err(ControlError::Validation(m)) if m.contains("at 'qualifier'")
    ));
    assert!(matches!(
        p.create_function_url_config("f:1", None, none()),
        Err(ControlError::Validation(_))
    ));
    assert!(matches!(
        p.create_function_url_config("f", Some("live"), none()),
        Err(ControlError::NotFound(_))
    ));
    assert!(matches!(
        p.create_function_url_config("f", None, FunctionUrlConfigInput::default()),
        Err(ControlError::Validation(m)) if m.contains("'authType'")
    ));
    assert!(matches!(
        p.create_function_url_config("nope", None, none()),
        Err(ControlError::NotFound(m)) if m.contains("Function not found")
    ));
}
