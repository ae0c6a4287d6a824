use kindling_protocol::WireError;
use kindling_scheduler::layout::{earlier_file, stream_file};
use serde_json::{Value, json};

use super::*;
use crate::ops::{Logs, Operation, execute};

const G: &str = "/aws/lambda/fn";
const S: &str = "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef";

fn logs() -> (Logs, tempfile::TempDir) {
    Logs::for_tests()
}

/// Appends lines `range` (`line <n>`, at time 1000 + n) to the stream's file.
fn append(l: &Logs, range: std::ops::Range<i64>) {
    let events: Vec<(i64, String)> = range.map(|n| (1000 + n, format!("line {n}"))).collect();
    l.store.append_events(G, S, &events).unwrap().unwrap();
}

/// What an environment's stream does at its limit: its file becomes `<name>-earlier`
/// (replacing the one before) and the next line starts a new file of its name.
fn rotate(l: &Logs) {
    let path = stream_file(&l.store.group_dir(G), S).unwrap();
    std::fs::rename(&path, earlier_file(&path)).unwrap();
    std::fs::write(&path, "").unwrap();
}

fn get(l: &Logs, input: Value) -> Result<Value, crate::LogsError> {
    let mut input = input;
    input["logGroupName"] = json!(G);
    input["logStreamName"] = json!(S);
    execute(l, Operation::GetLogEvents, input)
}

fn msgs(v: &Value) -> Vec<String> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

fn lines(range: std::ops::Range<i64>) -> Vec<String> {
    range.map(|n| format!("line {n}")).collect()
}

#[test]
fn forward_tokens_read_every_line_once_across_rotations() {
    let (l, _d) = logs();
    append(&l, 0..10);
    let mut seen = Vec::new();
    let page = get(&l, json!({"limit": 4, "startFromHead": true})).unwrap();
    seen.extend(msgs(&page));
    // The token points into the file that is set aside now.
    rotate(&l);
    append(&l, 10..15);
    let page = get(
        &l,
        json!({"limit": 4, "nextToken": page["nextForwardToken"]}),
    )
    .unwrap();
    seen.extend(msgs(&page));
    // This page ends the set-aside file and goes on in the new one.
    let page = get(
        &l,
        json!({"limit": 4, "nextToken": page["nextForwardToken"]}),
    )
    .unwrap();
    seen.extend(msgs(&page));
    assert_eq!(msgs(&page), lines(8..12));
    rotate(&l);
    append(&l, 15..40);
    let mut token = page["nextForwardToken"].clone();
    for _ in 0..20 {
        let page = get(&l, json!({"limit": 4, "nextToken": token})).unwrap();
        seen.extend(msgs(&page));
        if page["nextForwardToken"] == token {
            break;
        }
        token = page["nextForwardToken"].clone();
    }
    assert_eq!(seen, lines(0..40));
    // The end token waits for the stream's next line, in its next file too.
    rotate(&l);
    append(&l, 40..42);
    let page = get(&l, json!({"nextToken": token})).unwrap();
    assert_eq!(msgs(&page), lines(40..42));
}

#[test]
fn a_token_whose_file_is_gone_goes_on_from_the_oldest_file_left() {
    let (l, _d) = logs();
    append(&l, 0..5);
    let page = get(&l, json!({"limit": 2, "startFromHead": true})).unwrap();
    rotate(&l);
    append(&l, 5..8);
    rotate(&l);
    append(&l, 8..10);
    // Lines 2-4 went with the first file; the rest comes once, in order.
    let page = get(&l, json!({"nextToken": page["nextForwardToken"]})).unwrap();
    assert_eq!(msgs(&page), lines(5..10));
}

#[test]
fn backward_tokens_go_on_in_the_file_they_name() {
    let (l, _d) = logs();
    append(&l, 0..10);
    let last = get(&l, json!({"limit": 3})).unwrap();
    assert_eq!(msgs(&last), lines(7..10));
    rotate(&l);
    append(&l, 10..30);
    let mut token = last["nextBackwardToken"].clone();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let page = get(&l, json!({"limit": 3, "nextToken": token})).unwrap();
        let mut m = msgs(&page);
        m.extend(seen);
        seen = m;
        if page["nextBackwardToken"] == token {
            break;
        }
        token = page["nextBackwardToken"].clone();
    }
    assert_eq!(seen, lines(0..7));
    // The forward token of a backward page goes on after it, then into the new file.
    let back = get(
        &l,
        json!({"limit": 3, "nextToken": last["nextBackwardToken"]}),
    )
    .unwrap();
    assert_eq!(msgs(&back), lines(4..7));
    let on = get(
        &l,
        json!({"limit": 5, "nextToken": back["nextForwardToken"]}),
    )
    .unwrap();
    assert_eq!(msgs(&on), lines(7..12));
}

#[test]
fn tokens_are_opaque_and_others_are_refused() {
    let (l, _d) = logs();
    append(&l, 0..3);
    let page = get(&l, json!({"startFromHead": true})).unwrap();
    let token = page["nextForwardToken"].as_str().unwrap().to_string();
    assert!(token.starts_with("f/") && token[2..].bytes().all(|b| b.is_ascii_digit()));
    let (forward, place) = parse_token(&token).unwrap();
    assert!(forward);
    // One digit changed: refused by the check.
    let mut forged = token.clone().into_bytes();
    let i = forged.len() - 10;
    forged[i] = if forged[i] == b'9' { b'8' } else { b'9' };
    // A well-formed token in the middle of a line.
    let mid = super::token(
        true,
        Place {
            offset: place.offset - 3,
            ..place
        },
    );
    for bad in [
        // An older Kindling's line number.
        format!("f/{:056}", 2),
        format!("b/{:056}", 0),
        String::from_utf8(forged).unwrap(),
        mid,
        "zzz".to_string(),
        "f/".to_string(),
        format!("x{}", &token[1..]),
    ] {
        let err = get(&l, json!({"nextToken": bad})).unwrap_err();
        assert_eq!(err.code(), "InvalidParameterException", "{bad}");
        assert_eq!(err.status(), 400, "{bad}");
    }
}

#[test]
fn a_line_too_long_for_a_page_is_cut_and_pages_go_on() {
    let (l, _d) = logs();
    append(&l, 0..1);
    let long = "z".repeat(2 * 1024 * 1024);
    l.store
        .append_events(G, S, &[(1001, long)])
        .unwrap()
        .unwrap();
    append(&l, 2..4);
    let mut seen = Vec::new();
    let mut token = Value::Null;
    for _ in 0..10 {
        let mut input = json!({"startFromHead": true});
        if !token.is_null() {
            input["nextToken"] = token.clone();
        }
        let page = get(&l, input).unwrap();
        seen.extend(msgs(&page));
        if page["nextForwardToken"] == token {
            break;
        }
        token = page["nextForwardToken"].clone();
    }
    assert_eq!(
        seen.len(),
        4,
        "{:?}",
        seen.iter().map(String::len).collect::<Vec<_>>()
    );
    assert!(seen[1].starts_with("zzz") && seen[1].len() < 1024 * 1024);
    assert_eq!(
        [&seen[0], &seen[2], &seen[3]],
        ["line 0", "line 2", "line 3"]
    );
}
