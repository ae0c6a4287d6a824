use kindling_model::esm::{MappingRecord, MappingState, SourceKind};

use super::on_both;
use crate::mappings::MappingStore;
use crate::{Entity, Store, StoreError};

/// Creates function `name` with its `$LATEST`.
pub(super) fn create_function(s: &impl Store, name: &str) {
    let (meta, latest) = crate::store_tests::function(name);
    s.create_function(&meta, &latest, None)
        .expect("create function");
}

pub(super) fn sample(uuid: &str, function: &str) -> MappingRecord {
    MappingRecord {
        uuid: uuid.into(),
        kind: SourceKind::Sqs,
        function_name: function.into(),
        qualifier: None,
        event_source_arn: Some("arn:aws:sqs:us-east-1:123456789012:q".into()),
        enabled: true,
        state: MappingState::Creating,
        state_transition_reason: "USER_INITIATED".into(),
        batch_size: 10,
        maximum_batching_window_in_seconds: 0,
        function_response_types: vec![],
        filters: None,
        maximum_concurrency: None,
        kafka_bootstrap_servers: vec![],
        topics: vec![],
        queues: vec![],
        starting_position: None,
        starting_position_timestamp: None,
        consumer_group_id: None,
        on_failure: None,
        maximum_retry_attempts: None,
        source_access_configurations: vec![],
        last_modified_ms: 1,
        last_processing_result: None,
    }
}

fn mappings_need_their_function_and_go_with_it(s: &(impl Store + MappingStore)) {
    assert!(matches!(
        s.create_mapping(&sample("u1", "f")),
        Err(StoreError::NotFound(Entity::Function))
    ));
    create_function(s, "f");
    s.create_mapping(&sample("u1", "f")).unwrap();
    let mut rec = sample("u1", "f");
    rec.state = MappingState::Enabled;
    s.put_mapping(&rec).unwrap();
    assert_eq!(
        s.mapping("u1").unwrap().unwrap().state,
        MappingState::Enabled
    );
    s.set_source_position("u1", "t-0", 42).unwrap();
    s.set_source_position("u1", "t-0", 43).unwrap();
    s.set_source_position("gone", "t-0", 1).unwrap();
    assert_eq!(s.source_positions("u1").unwrap(), vec![("t-0".into(), 43)]);
    assert!(s.source_positions("gone").unwrap().is_empty());
    s.set_recursive_loop("f", "Allow").unwrap();
    assert_eq!(s.recursive_loop("f").unwrap().as_deref(), Some("Allow"));
    assert!(matches!(
        s.set_recursive_loop("nope", "Allow"),
        Err(StoreError::NotFound(Entity::Function))
    ));
    s.delete_function("f").unwrap();
    assert!(s.mappings().unwrap().is_empty());
    assert!(s.source_positions("u1").unwrap().is_empty());
    assert_eq!(s.recursive_loop("f").unwrap(), None);
    assert!(matches!(
        s.put_mapping(&rec),
        Err(StoreError::NotFound(Entity::EventSourceMapping))
    ));
    assert!(!s.delete_mapping("u1").unwrap());
}

on_both!(mappings_need_their_function_and_go_with_it);
