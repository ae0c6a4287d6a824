use serde_json::json;

use super::on_both;
use crate::apis::{ApiRecord, ApiStore};
use crate::{Entity, StoreError};

fn rec(id: &str, rev: &str) -> ApiRecord {
    ApiRecord {
        api_id: id.into(),
        kind: "HTTP".into(),
        created_ms: 1,
        revision_id: rev.into(),
        document: json!({"name": id}),
    }
}

fn create_get_cas_delete(s: &impl ApiStore) {
    s.create_api(&rec("a", "r1")).expect("create");
    assert!(matches!(
        s.create_api(&rec("a", "r1")),
        Err(StoreError::AlreadyExists(Entity::Api))
    ));
    assert_eq!(s.api("a").expect("get"), Some(rec("a", "r1")));
    assert_eq!(s.apis("HTTP").expect("list").len(), 1);
    assert!(s.apis("REST").expect("list").is_empty());
    s.put_api(&rec("a", "r2"), "r1").expect("cas");
    assert!(matches!(
        s.put_api(&rec("a", "r3"), "r1"),
        Err(StoreError::RevisionMismatch)
    ));
    assert!(matches!(
        s.put_api(&rec("b", "r3"), "r1"),
        Err(StoreError::NotFound(Entity::Api))
    ));
    s.delete_api("a").expect("delete");
    assert!(matches!(
        s.delete_api("a"),
        Err(StoreError::NotFound(Entity::Api))
    ));
}

on_both!(create_get_cas_delete);
