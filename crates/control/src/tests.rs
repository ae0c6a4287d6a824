//! Domain tests over an in-memory store: the rules, not the wire.

use std::io::Write;
use std::sync::Arc;

use base64::Engine;
use kindling_model::ArnContext;
use kindling_store::{BlobStore, SqliteStore};

use super::*;
use crate::input::*;

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

fn zip_b64(content: &str) -> String {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        w.start_file("app.py", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(content.as_bytes()).unwrap();
        w.finish().unwrap();
    }
    base64::engine::general_purpose::STANDARD.encode(buf.into_inner())
}

pub(crate) fn create(plane: &ControlPlane, name: &str, publish: bool) -> VersionRecordPair {
    plane
        .create_function(CreateFunction {
            function_name: Some(name.into()),
            code: Some(CodeInput {
                zip_file: Some(zip_b64("x = 1")),
                ..Default::default()
            }),
            publish,
            config: ConfigInput {
                role: Some("arn:aws:iam::000000000000:role/r".into()),
                runtime: Some("python3.12".into()),
                handler: Some("app.handler".into()),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap()
}

pub(crate) type VersionRecordPair = (
    kindling_model::function::VersionRecord,
    Option<kindling_model::function::VersionRecord>,
);

#[test]
fn create_then_publish_is_idempotent_until_something_changes() {
    let (plane, _d) = plane();
    let (latest, v1) = create(&plane, "f", true);
    assert_eq!(v1.unwrap().version, Some(1));
    assert!(matches!(
        plane.create_function(CreateFunction {
            function_name: Some("f".into()),
            ..Default::default()
        }),
        Err(ControlError::Validation(_))
    ));
    let again = plane
        .publish_version("f", PublishVersion::default())
        .unwrap();
    assert_eq!(
        again.version,
        Some(1),
        "unchanged $LATEST publishes nothing new"
    );
    let updated = plane
        .update_function_configuration(
            "f",
            UpdateFunctionConfiguration {
                revision_id: Some(latest.revision_id.clone()),
                config: ConfigInput {
                    timeout: Some(30),
                    ..Default::default()
                },
            },
        )
        .unwrap();
    assert_ne!(updated.revision_id, latest.revision_id);
    let stale = plane.update_function_configuration(
        "f",
        UpdateFunctionConfiguration {
            revision_id: Some(latest.revision_id),
            config: ConfigInput {
                timeout: Some(31),
                ..Default::default()
            },
        },
    );
    assert!(matches!(stale, Err(ControlError::PreconditionFailed(_))));
    let v2 = plane
        .publish_version("f", PublishVersion::default())
        .unwrap();
    assert_eq!(v2.version, Some(2));
    assert_eq!(v2.spec.timeout, 30);
}

#[test]
fn validation_rejects_bad_input_and_changes_nothing() {
    let (plane, _d) = plane();
    create(&plane, "f", false);
    let err = plane.update_function_configuration(
        "f",
        UpdateFunctionConfiguration {
            revision_id: None,
            config: ConfigInput {
                environment: Some(EnvironmentInput {
                    variables: Some([("AWS_REGION".to_string(), "x".to_string())].into()),
                }),
                ..Default::default()
            },
        },
    );
    assert!(matches!(err, Err(ControlError::InvalidParameter(m)) if m.contains("AWS_REGION")));
    let err = plane.update_function_configuration(
        "f",
        UpdateFunctionConfiguration {
            revision_id: None,
            config: ConfigInput {
                memory_size: Some(64),
                timeout: Some(0),
                ..Default::default()
            },
        },
    );
    assert!(
        matches!(err, Err(ControlError::Validation(m)) if m.starts_with("2 validation errors"))
    );
    let details = plane.get_function("f", None).unwrap();
    assert_eq!(details.version.spec.memory_size, 128);
    assert!(details.version.spec.environment.is_none());
}

#[test]
fn aliases_validate_routing() {
    let (plane, _d) = plane();
    create(&plane, "f", true);
    let alias = |version: &str, weights: &[(&str, f64)]| CreateAlias {
        name: Some("live".into()),
        function_version: Some(version.into()),
        description: None,
        routing_config: Some(RoutingInput {
            additional_version_weights: Some(
                weights.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ),
        }),
    };
    assert!(matches!(
        plane.create_alias("f", alias("1", &[("1", 0.5)])),
        Err(ControlError::InvalidParameter(_))
    ));
    assert!(matches!(
        plane.create_alias("f", alias("$LATEST", &[("1", 0.5)])),
        Err(ControlError::InvalidParameter(_))
    ));
    assert!(matches!(
        plane.create_alias("f", alias("1", &[("2", 1.5)])),
        Err(ControlError::Validation(_))
    ));
    assert!(matches!(
        plane.create_alias("f", alias("1", &[("2", 0.5)])),
        Err(ControlError::NotFound(_))
    ));
    assert!(matches!(
        plane.create_alias("f", alias("7", &[])),
        Err(ControlError::NotFound(_))
    ));
    plane.create_alias("f", alias("1", &[])).unwrap();
    assert!(matches!(
        plane.create_alias("f", alias("1", &[])),
        Err(ControlError::Conflict(_))
    ));
    assert!(matches!(
        plane.delete_function("f", Some("1")),
        Err(ControlError::Conflict(_))
    ));
}

#[test]
fn reserved_concurrency_keeps_the_unreserved_floor() {
    let (plane, _d) = plane();
    create(&plane, "a", false);
    create(&plane, "b", false);
    assert_eq!(plane.put_concurrency("a", Some(850)).unwrap(), 850);
    assert!(matches!(
        plane.put_concurrency("b", Some(51)),
        Err(ControlError::InvalidParameter(_))
    ));
    assert_eq!(
        plane
            .account_settings()
            .unwrap()
            .unreserved_concurrent_executions,
        150
    );
    plane.delete_concurrency("a").unwrap();
    assert_eq!(plane.get_concurrency("a").unwrap(), None);
}

#[test]
fn resolves_every_reference_form() {
    let (plane, _d) = plane();
    create(&plane, "f", true);
    for raw in [
        "f",
        "f:1",
        "000000000000:function:f",
        "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST",
    ] {
        assert_eq!(
            plane.resolve(raw, None).unwrap().record.function_name,
            "f",
            "{raw}"
        );
    }
    assert!(
        matches!(plane.resolve("f:2", None), Err(ControlError::NotFound(m)) if m.ends_with("function:f:2"))
    );
    assert!(matches!(
        plane.resolve("f:1", Some("2")),
        Err(ControlError::InvalidParameter(_))
    ));
    assert!(matches!(
        plane.resolve("arn:aws:lambda:eu-west-1:000000000000:function:f", None),
        Err(ControlError::NotFound(_))
    ));
}

#[test]
fn provisioned_concurrency_follows_lambdas_rules() {
    let (plane, _d) = plane();
    create(&plane, "f", true);
    let err = |r: Result<crate::ProvisionedView>| match r {
        Err(e) => e,
        Ok(v) => panic!("accepted: {v:?}"),
    };
    assert!(matches!(
        err(plane.put_provisioned("f", Some("$LATEST"), Some(1))),
        ControlError::InvalidParameter(m) if m.contains("unpublished")
    ));
    assert!(matches!(
        err(plane.put_provisioned("f", Some("1"), Some(0))),
        ControlError::Validation(_)
    ));
    assert!(matches!(
        err(plane.put_provisioned("f", Some("2"), Some(1))),
        ControlError::NotFound(m) if m.ends_with("function:f:2")
    ));
    let v = plane.put_provisioned("f", Some("1"), Some(3)).unwrap();
    assert_eq!((v.version, v.requested), (Some(1), 3));
    assert_eq!(
        plane
            .account_settings()
            .unwrap()
            .unreserved_concurrent_executions,
        997
    );
    plane
        .create_alias(
            "f",
            CreateAlias {
                name: Some("live".into()),
                function_version: Some("1".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(matches!(
        err(plane.put_provisioned("f", Some("live"), Some(1))),
        ControlError::Conflict(_)
    ));
    // What the data plane keeps: version 1, three environments.
    let targets = plane.provisioned_targets("f").unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].view.requested, 3);
    assert_eq!(targets[0].target.as_ref().unwrap().record.version, Some(1));
    // A reservation must hold all of the function's provisioned concurrency.
    plane.put_concurrency("f", Some(3)).unwrap();
    plane.delete_provisioned("f", Some("1")).unwrap();
    plane.delete_provisioned("f", Some("1")).unwrap();
    plane.put_provisioned("f", Some("live"), Some(3)).unwrap();
    assert!(matches!(
        err(plane.put_provisioned("f", Some("live"), Some(4))),
        ControlError::InvalidParameter(m) if m.contains("reservedConcurrentExecution")
    ));
    assert_eq!(plane.provisioned_functions().unwrap(), ["f"]);
    let page = plane.list_provisioned("f", None, None).unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.items[0].function_arn.ends_with("function:f:live"));
    assert!(matches!(
        plane.get_provisioned("f", Some("1")),
        Err(ControlError::ProvisionedConfigNotFound(_))
    ));
    // Deleting the alias deletes its configuration; deleting the version deletes its own.
    plane.delete_alias("f", "live").unwrap();
    assert!(
        plane
            .list_provisioned("f", None, None)
            .unwrap()
            .items
            .is_empty()
    );
    assert!(plane.provisioned_targets("f").unwrap().is_empty());
    assert!(plane.provisioned_functions().unwrap().is_empty());
    plane.delete_concurrency("f").unwrap();
    plane.put_provisioned("f", Some("1"), Some(2)).unwrap();
    assert_eq!(
        plane
            .account_settings()
            .unwrap()
            .unreserved_concurrent_executions,
        998
    );
    plane.delete_function("f", Some("1")).unwrap();
    assert!(plane.provisioned_functions().unwrap().is_empty());
    assert_eq!(
        plane
            .account_settings()
            .unwrap()
            .unreserved_concurrent_executions,
        1000
    );
}

#[test]
fn deleted_functions_leave_nothing_in_the_invoke_cache() {
    let (plane, _dir) = plane();
    for i in 0..20 {
        let name = format!("f{i}");
        create(&plane, &name, false);
        plane.invoke_target(&name, None).unwrap();
        plane.delete_function(&name, None).unwrap();
    }
    create(&plane, "g", false);
    plane.invoke_target("g", None).unwrap();
    let cached = plane
        .invoke_cache
        .lock()
        .unwrap()
        .keys()
        .map(|(name, _)| name.clone())
        .collect::<Vec<_>>();
    assert_eq!(cached, ["g"]);
}

#[test]
fn other_nodes_changes_drop_cached_targets_and_a_lost_listener_stops_caching() {
    let (plane, _dir) = plane();
    create(&plane, "f", false);
    plane.invoke_target("f", None).unwrap();
    assert!(plane.cached_invoke_target("f", None).unwrap().is_some());
    // Another node's write, heard through the store's listener.
    plane.on_store_change(kindling_store::Change::Committed(7));
    assert!(plane.cached_invoke_target("f", None).unwrap().is_none());
    plane.invoke_target("f", None).unwrap();
    assert!(plane.cached_invoke_target("f", None).unwrap().is_some());
    // Writes may now go unannounced: nothing cached is reused, even just loaded.
    plane.on_store_change(kindling_store::Change::Lost);
    plane.invoke_target("f", None).unwrap();
    assert!(plane.cached_invoke_target("f", None).unwrap().is_none());
    assert_ne!(plane.generation(), plane.generation());
    // Resynchronized: caching resumes.
    plane.on_store_change(kindling_store::Change::Resync);
    plane.invoke_target("f", None).unwrap();
    assert!(plane.cached_invoke_target("f", None).unwrap().is_some());
    assert_eq!(plane.generation(), plane.generation());
}

#[test]
fn async_settings_are_cached_until_a_write_of_any_node() {
    let (plane, _dir) = plane();
    create(&plane, "f", false);
    let retries = |n: i64| EventInvokeConfigInput {
        maximum_retry_attempts: Some(n),
        ..Default::default()
    };
    assert_eq!(
        plane
            .async_settings("f", None)
            .unwrap()
            .maximum_retry_attempts,
        None
    );
    // This node's write: seen by the next event at once.
    plane
        .put_event_invoke_config("f", None, retries(1))
        .unwrap();
    assert_eq!(
        plane
            .async_settings("f", None)
            .unwrap()
            .maximum_retry_attempts,
        Some(1)
    );
    // Another node's write straight to the shared store: the cached settings stand until the
    // store's listener announces it, then the next event reads the new ones.
    let mut other = plane
        .store()
        .event_invoke_config("f", "$LATEST")
        .unwrap()
        .unwrap();
    other.maximum_retry_attempts = Some(0);
    plane
        .store()
        .put_event_invoke_config("f", "$LATEST", &other)
        .unwrap();
    assert_eq!(
        plane
            .async_settings("f", None)
            .unwrap()
            .maximum_retry_attempts,
        Some(1)
    );
    plane.on_store_change(kindling_store::Change::Committed(8));
    assert_eq!(
        plane
            .async_settings("f", None)
            .unwrap()
            .maximum_retry_attempts,
        Some(0)
    );
    // Keyed by qualifier: '$LATEST' has a configuration, an alias-less version none.
    assert_eq!(
        plane
            .async_settings("f", Some("1"))
            .unwrap()
            .maximum_retry_attempts,
        None
    );
    // A lost listener: nothing cached is reused.
    plane.on_store_change(kindling_store::Change::Lost);
    assert_eq!(
        plane
            .async_settings("f", None)
            .unwrap()
            .maximum_retry_attempts,
        Some(0)
    );
    plane
        .store()
        .delete_event_invoke_config("f", "$LATEST")
        .unwrap();
    assert_eq!(
        plane
            .async_settings("f", None)
            .unwrap()
            .maximum_retry_attempts,
        None
    );
    plane.on_store_change(kindling_store::Change::Resync);
    // Deleting the configuration through this node resets to Lambda's defaults at once.
    plane
        .put_event_invoke_config("f", None, retries(2))
        .unwrap();
    assert_eq!(
        plane
            .async_settings("f", None)
            .unwrap()
            .maximum_retry_attempts,
        Some(2)
    );
    plane.delete_event_invoke_config("f", None).unwrap();
    assert_eq!(
        plane
            .async_settings("f", None)
            .unwrap()
            .maximum_retry_attempts,
        None
    );
}
