use super::on_both;
use crate::StoreError;
use crate::stacks::{ChangeSetRow, ScheduleStore, StackRow, StackStore};

fn stacks_and_events_round_trip(s: &(impl StackStore + ScheduleStore)) {
    let row = StackRow {
        stack_id: "arn:1".into(),
        name: "a".into(),
        status: "CREATE_IN_PROGRESS".into(),
        updated_ms: 1,
        document: "{}".into(),
        revision: 0,
        owner: Some("n1".into()),
    };
    assert_eq!(s.save_stack(&row, &["e1".into()]).expect("save"), 1);
    let other = StackRow {
        stack_id: "arn:0".into(),
        name: "b".into(),
        ..row.clone()
    };
    s.save_stack(&other, &[]).expect("save");
    let row2 = StackRow {
        status: "CREATE_COMPLETE".into(),
        revision: 1,
        owner: None,
        ..row.clone()
    };
    assert_eq!(
        s.save_stack(&row2, &["e2".into(), "e3".into()])
            .expect("save"),
        2
    );
    // Creation order, not key order; a replaced stack keeps its place.
    let stored = s.stacks().expect("stacks");
    assert_eq!(
        stored,
        vec![
            StackRow {
                revision: 2,
                ..row2.clone()
            },
            StackRow {
                revision: 1,
                ..other.clone()
            }
        ]
    );
    assert_eq!(
        s.stack_revisions().expect("revisions"),
        vec![("arn:1".to_string(), 2), ("arn:0".to_string(), 1)]
    );
    assert_eq!(
        s.stacks_by_id(&["arn:0".into(), "nope".into()])
            .expect("by id"),
        vec![stored[1].clone()]
    );
    assert_eq!(
        s.stack_events("arn:1").expect("events"),
        vec!["e1", "e2", "e3"]
    );
    let cs = ChangeSetRow {
        change_set_id: "cs".into(),
        stack_id: "arn:1".into(),
        created_ms: 3,
        document: "{}".into(),
    };
    s.save_change_set(&cs).expect("cs");
    assert_eq!(s.change_sets().expect("list").len(), 1);
    assert_eq!(s.change_sets_of("arn:1").expect("of"), vec![cs.clone()]);
    assert!(s.change_sets_of("arn:0").expect("of").is_empty());
    assert_eq!(s.change_set("cs").expect("one"), Some(cs.clone()));
    s.delete_change_set("cs").expect("delete");
    assert!(s.change_sets().expect("list").is_empty());
    assert_eq!(s.change_set("cs").expect("one"), None);

    s.put_schedule("b", "{\"n\":1}").expect("put");
    s.put_schedule("a", "{\"n\":2}").expect("put");
    s.put_schedule("b", "{\"n\":3}").expect("replace");
    assert_eq!(s.schedules().expect("list"), vec!["{\"n\":2}", "{\"n\":3}"]);
    s.delete_schedule("a").expect("delete");
    s.delete_schedule("a").expect("absent is fine");
    assert_eq!(s.schedules().expect("list").len(), 1);
}

on_both!(stacks_and_events_round_trip);

/// Saves are compare-and-swap on the revision: a writer that read an older revision (another
/// node started an operation meanwhile) writes nothing, events included; a new stack cannot
/// take the name of a stack that is not deleted, but can take a deleted one's.
fn stack_saves_compare_revisions(s: &impl StackStore) {
    let row = StackRow {
        stack_id: "arn:s1".into(),
        name: "s".into(),
        status: "CREATE_COMPLETE".into(),
        updated_ms: 1,
        document: "{}".into(),
        revision: 0,
        owner: None,
    };
    assert_eq!(s.save_stack(&row, &["created".into()]).expect("save"), 1);
    // The same stack again as new: refused (its name is taken; under another name, its id).
    assert!(matches!(
        s.save_stack(&row, &[]),
        Err(StoreError::AlreadyExists(crate::Entity::Stack))
    ));
    let renamed = StackRow {
        name: "renamed".into(),
        ..row.clone()
    };
    assert!(matches!(
        s.save_stack(&renamed, &[]),
        Err(StoreError::RevisionMismatch)
    ));
    // Two writers read revision 1: the first wins, the second is refused.
    let a = StackRow {
        status: "UPDATE_IN_PROGRESS".into(),
        owner: Some("node-a".into()),
        revision: 1,
        ..row.clone()
    };
    let b = StackRow {
        owner: Some("node-b".into()),
        ..a.clone()
    };
    assert_eq!(s.save_stack(&a, &["a".into()]).expect("a"), 2);
    assert!(matches!(
        s.save_stack(&b, &["b".into()]),
        Err(StoreError::RevisionMismatch)
    ));
    assert_eq!(
        s.stack_events("arn:s1").expect("events"),
        vec!["created", "a"]
    );
    assert_eq!(
        s.stacks().expect("stacks")[0].owner.as_deref(),
        Some("node-a")
    );
    // A second live stack of the same name: refused.
    let twin = StackRow {
        stack_id: "arn:s2".into(),
        ..row.clone()
    };
    assert!(matches!(
        s.save_stack(&twin, &[]),
        Err(StoreError::AlreadyExists(crate::Entity::Stack))
    ));
    // Once the first is deleted, the name is free.
    let deleted = StackRow {
        status: "DELETE_COMPLETE".into(),
        owner: None,
        revision: 2,
        ..row.clone()
    };
    assert_eq!(s.save_stack(&deleted, &[]).expect("delete"), 3);
    assert_eq!(s.save_stack(&twin, &[]).expect("again"), 1);
    // An absent stack cannot be updated.
    let ghost = StackRow {
        stack_id: "arn:ghost".into(),
        name: "ghost".into(),
        revision: 4,
        ..row
    };
    assert!(matches!(
        s.save_stack(&ghost, &[]),
        Err(StoreError::RevisionMismatch)
    ));
    assert_eq!(s.stacks().expect("stacks").len(), 2);
}

on_both!(stack_saves_compare_revisions);

/// Deleted stacks can be forgotten with their events and change sets; live ones cannot.
fn deleted_stacks_are_forgotten_whole(s: &impl StackStore) {
    let live = StackRow {
        stack_id: "arn:live".into(),
        name: "live".into(),
        status: "CREATE_COMPLETE".into(),
        updated_ms: 1,
        document: "{}".into(),
        revision: 0,
        owner: None,
    };
    let gone = StackRow {
        stack_id: "arn:gone".into(),
        name: "gone".into(),
        status: "DELETE_COMPLETE".into(),
        ..live.clone()
    };
    s.save_stack(&live, &["l1".into()]).expect("save");
    s.save_stack(&gone, &["g1".into(), "g2".into()])
        .expect("save");
    s.save_change_set(&ChangeSetRow {
        change_set_id: "cs-gone".into(),
        stack_id: "arn:gone".into(),
        created_ms: 1,
        document: "{}".into(),
    })
    .expect("cs");
    let ids = ["arn:live".to_string(), "arn:gone".into(), "arn:nope".into()];
    assert_eq!(s.forget_deleted_stacks(&ids).expect("forget"), 1);
    assert_eq!(s.stack_revisions().expect("revisions").len(), 1);
    assert!(s.stack_events("arn:gone").expect("events").is_empty());
    assert!(s.change_sets_of("arn:gone").expect("of").is_empty());
    assert_eq!(s.stack_events("arn:live").expect("events"), vec!["l1"]);
    assert_eq!(s.forget_deleted_stacks(&ids).expect("again"), 0);
}

on_both!(deleted_stacks_are_forgotten_whole);
