use super::on_both;
use crate::stacks::{ChangeSetRow, ScheduleStore, StackRow, StackStore};

fn stacks_and_events_round_trip(s: &(impl StackStore + ScheduleStore)) {
    let row = StackRow {
        stack_id: "arn:1".into(),
        name: "a".into(),
        status: "CREATE_IN_PROGRESS".into(),
        updated_ms: 1,
        document: "{}".into(),
    };
    s.save_stack(&row, &["e1".into()]).expect("save");
    let other = StackRow {
        stack_id: "arn:0".into(),
        name: "b".into(),
        ..row.clone()
    };
    s.save_stack(&other, &[]).expect("save");
    let row2 = StackRow {
        status: "CREATE_COMPLETE".into(),
        ..row.clone()
    };
    s.save_stack(&row2, &["e2".into(), "e3".into()])
        .expect("save");
    // Creation order, not key order; a replaced stack keeps its place.
    assert_eq!(s.stacks().expect("stacks"), vec![row2, other]);
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
    s.delete_change_set("cs").expect("delete");
    assert!(s.change_sets().expect("list").is_empty());

    s.put_schedule("b", "{\"n\":1}").expect("put");
    s.put_schedule("a", "{\"n\":2}").expect("put");
    s.put_schedule("b", "{\"n\":3}").expect("replace");
    assert_eq!(s.schedules().expect("list"), vec!["{\"n\":2}", "{\"n\":3}"]);
    s.delete_schedule("a").expect("delete");
    s.delete_schedule("a").expect("absent is fine");
    assert_eq!(s.schedules().expect("list").len(), 1);
}

on_both!(stacks_and_events_round_trip);
