//! An environment's stream across its rotation (its full file renamed `<name>-earlier`, a new
//! file of its name): one stream to every operation, its lines in order under its own name.

use super::*;
use kindling_protocol::WireError;

const G: &str = "/aws/lambda/fn";
/// The name shape of an environment's stream (`YYYY/MM/DD/[<version>]<32 hex>`).
const S: &str = "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef";

fn call(l: &Logs, op: &str, input: Value) -> Result<Value, LogsError> {
    execute(l, Operation::parse(op).unwrap(), input)
}

/// Appends `line <n>` at time 1000 + (n + 1) / 2 (two lines per millisecond: lines 119 and
/// 120 tie across the rotation) to `stream` of `group`. Their order here can come from the
/// new file's higher inode number as well as from its later birth: that the birth time
/// decides is `stream::tests::places_are_ordered_by_their_file_s_birth_before_its_inode`.
fn append(l: &Logs, group: &str, stream: &str, range: std::ops::Range<i64>) {
    let events: Vec<(i64, String)> = range
        .map(|n| (1000 + (n + 1) / 2, format!("line {n}")))
        .collect();
    l.store
        .append_events(group, stream, &events)
        .unwrap()
        .unwrap();
}

/// What an environment's stream does at its limit.
fn rotate(l: &Logs, group: &str, stream: &str) {
    let path = layout::stream_file(&l.store.group_dir(group), stream).unwrap();
    std::fs::rename(&path, layout::earlier_file(&path)).unwrap();
    std::fs::write(&path, "").unwrap();
}

fn lines(range: std::ops::Range<i64>) -> Vec<String> {
    range.map(|n| format!("line {n}")).collect()
}

/// Every page of a FilterLogEvents search: (stream, message, eventId).
fn filter_all(l: &Logs, input: Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut input = input;
    for _ in 0..1000 {
        let page = call(l, "FilterLogEvents", input.clone()).unwrap();
        for e in page["events"].as_array().unwrap() {
            out.push((
                e["logStreamName"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
                e["eventId"].as_str().unwrap().to_string(),
            ));
        }
        match page.get("nextToken") {
            Some(t) => input["nextToken"] = t.clone(),
            None => return out,
        }
    }
    panic!("the search never ended");
}

fn messages(events: &[(String, String, String)]) -> Vec<String> {
    events.iter().map(|e| e.1.clone()).collect()
}

#[test]
fn a_rotated_stream_is_one_stream_with_its_earlier_lines_first() {
    let (l, _d) = Logs::for_tests();
    append(&l, G, S, 0..120);
    let before = filter_all(&l, json!({"logGroupName": G}));
    rotate(&l, G, S);
    append(&l, G, S, 120..150);
    // One stream, its figures over both files.
    let streams = call(&l, "DescribeLogStreams", json!({"logGroupName": G})).unwrap();
    let streams = streams["logStreams"].as_array().unwrap();
    let names: Vec<&str> = streams
        .iter()
        .map(|s| s["logStreamName"].as_str().unwrap())
        .collect();
    assert_eq!(names, [S]);
    let path = layout::stream_file(&l.store.group_dir(G), S).unwrap();
    let bytes = std::fs::metadata(&path).unwrap().len()
        + std::fs::metadata(layout::earlier_file(&path))
            .unwrap()
            .len();
    assert_eq!(streams[0]["storedBytes"], bytes);
    assert_eq!(streams[0]["firstEventTimestamp"], 1000);
    assert_eq!(streams[0]["lastEventTimestamp"], 1000 + 150 / 2);
    // FilterLogEvents: every line once, in order, under the stream's name, the ids of the
    // lines written before the rotation unchanged; in pages too.
    let all = filter_all(&l, json!({"logGroupName": G}));
    assert_eq!(messages(&all), lines(0..150));
    assert!(all.iter().all(|e| e.0 == S), "{:?}", all[0]);
    assert_eq!(all[..120], before[..]);
    let ids: BTreeSet<&str> = all.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(ids.len(), 150);
    for input in [
        json!({"logGroupName": G, "limit": 7}),
        json!({"logGroupName": G, "logStreamNames": [S], "limit": 1}),
        json!({"logGroupName": G, "logStreamNamePrefix": "2024/01/01/", "limit": 13}),
    ] {
        assert_eq!(filter_all(&l, input.clone()), all, "{input}");
    }
    // GetLogEvents: from the head through both files; the newest page reaches back into the
    // earlier file.
    let head = call(
        &l,
        "GetLogEvents",
        json!({"logGroupName": G, "logStreamName": S, "startFromHead": true}),
    )
    .unwrap();
    let got: Vec<&str> = head["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(got, lines(0..150));
    let newest = call(
        &l,
        "GetLogEvents",
        json!({"logGroupName": G, "logStreamName": S, "limit": 40}),
    )
    .unwrap();
    let got: Vec<&str> = newest["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(got, lines(110..150));
    let back = call(
        &l,
        "GetLogEvents",
        json!({"logGroupName": G, "logStreamName": S, "limit": 40, "nextToken": newest["nextBackwardToken"]}),
    )
    .unwrap();
    assert_eq!(back["events"][39]["message"], "line 109");
    // A page the stream's own file fills; the next one back crosses into the earlier file.
    let mut token = Value::Null;
    let mut pages = Vec::new();
    for _ in 0..3 {
        let mut input = json!({"logGroupName": G, "logStreamName": S, "limit": 20});
        if !token.is_null() {
            input["nextToken"] = token.clone();
        }
        let page = call(&l, "GetLogEvents", input).unwrap();
        let got: Vec<String> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect();
        pages.push(got);
        token = page["nextBackwardToken"].clone();
    }
    assert_eq!(pages, [lines(130..150), lines(110..130), lines(90..110)]);
    // The set-aside file is no stream of its own.
    let earlier = format!("{S}-earlier");
    let err = call(
        &l,
        "GetLogEvents",
        json!({"logGroupName": G, "logStreamName": earlier}),
    )
    .unwrap_err();
    assert_eq!(err.code(), "ResourceNotFoundException");
    let none = filter_all(&l, json!({"logGroupName": G, "logStreamNames": [earlier]}));
    assert!(none.is_empty());
}

#[test]
fn filter_pages_go_on_across_a_rotation_between_them() {
    let (l, _d) = Logs::for_tests();
    append(&l, G, S, 0..120);
    let mut seen = Vec::new();
    let mut input = json!({"logGroupName": G, "limit": 50});
    let mut rotations = 0;
    for _ in 0..100 {
        let page = call(&l, "FilterLogEvents", input.clone()).unwrap();
        for e in page["events"].as_array().unwrap() {
            assert_eq!(e["logStreamName"], S);
            seen.push(e["message"].as_str().unwrap().to_string());
        }
        // Between pages the stream rotates (twice: the first file is gone by the third page)
        // and grows.
        if rotations < 2 {
            rotate(&l, G, S);
            append(&l, G, S, 120 + rotations * 10..130 + rotations * 10);
            rotations += 1;
        }
        match page.get("nextToken") {
            Some(t) => input["nextToken"] = t.clone(),
            None => break,
        }
    }
    // Lines 0-119 went with the first file after the second rotation: the first page had 50 of
    // them, the second 50 more (read from the earlier file); the third goes on in what is left.
    let want: Vec<String> = lines(0..100).into_iter().chain(lines(120..140)).collect();
    assert_eq!(seen, want);
}

#[test]
fn a_paused_search_goes_on_in_its_file_after_a_rotation() {
    let (mut l, _d) = Logs::for_tests();
    append(&l, G, S, 0..20);
    // About two lines per request: the first pauses inside the stream's file.
    l.searches = Arc::new(Searches::with_budget(40));
    let first = call(&l, "FilterLogEvents", json!({"logGroupName": G})).unwrap();
    assert!(first["events"].as_array().unwrap().is_empty());
    rotate(&l, G, S);
    append(&l, G, S, 20..40);
    let rest = filter_all(
        &l,
        json!({"logGroupName": G, "nextToken": first["nextToken"]}),
    );
    assert_eq!(messages(&rest), lines(0..40));
    assert!(rest.iter().all(|e| e.0 == S));
    l.searches = Arc::default();
    assert_eq!(filter_all(&l, json!({"logGroupName": G})), rest);
}

#[test]
fn a_stream_named_like_a_set_aside_file_is_an_ordinary_stream() {
    let (l, _d) = Logs::for_tests();
    let g = "/app/custom";
    call(&l, "CreateLogGroup", json!({"logGroupName": g})).unwrap();
    for s in ["x", "x-earlier", "2024/01/01/[$LATEST]abc-earlier"] {
        call(
            &l,
            "CreateLogStream",
            json!({"logGroupName": g, "logStreamName": s}),
        )
        .unwrap();
    }
    append(&l, g, "x", 0..2);
    append(&l, g, "x-earlier", 2..4);
    let streams = call(&l, "DescribeLogStreams", json!({"logGroupName": g})).unwrap();
    let names: Vec<&str> = streams["logStreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["logStreamName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["2024/01/01/[$LATEST]abc-earlier", "x", "x-earlier"]);
    let all = filter_all(&l, json!({"logGroupName": g}));
    let got: Vec<(&str, &str)> = all.iter().map(|e| (e.0.as_str(), e.1.as_str())).collect();
    assert_eq!(
        got,
        [
            ("x", "line 0"),
            ("x", "line 1"),
            ("x-earlier", "line 2"),
            ("x-earlier", "line 3")
        ]
    );
    let x = call(
        &l,
        "GetLogEvents",
        json!({"logGroupName": g, "logStreamName": "x", "startFromHead": true}),
    )
    .unwrap();
    assert_eq!(x["events"].as_array().unwrap().len(), 2);
    let xe = call(
        &l,
        "GetLogEvents",
        json!({"logGroupName": g, "logStreamName": "x-earlier", "startFromHead": true}),
    )
    .unwrap();
    assert_eq!(xe["events"][0]["message"], "line 2");
    // Deleting a rotated stream deletes both its files.
    append(&l, G, S, 0..2);
    rotate(&l, G, S);
    append(&l, G, S, 2..4);
    call(
        &l,
        "DeleteLogStream",
        json!({"logGroupName": G, "logStreamName": S}),
    )
    .unwrap();
    let left = l.store.group_streams(G).unwrap();
    assert!(left.is_empty(), "{left:?}");
    // The name of an environment's set-aside file is not given to a stream: its environment
    // would replace it at its next rotation.
    let err = call(
        &l,
        "CreateLogStream",
        json!({"logGroupName": G, "logStreamName": format!("{S}-earlier")}),
    )
    .unwrap_err();
    assert_eq!(err.code(), "InvalidParameterException");
}

/// Sets the modification time of the stream's files that exist to a day ago.
fn age(l: &Logs, group: &str, stream: &str) {
    let path = layout::stream_file(&l.store.group_dir(group), stream).unwrap();
    for p in [layout::earlier_file(&path), path] {
        if let Ok(f) = std::fs::File::options().append(true).open(&p) {
            f.set_modified(SystemTime::now() - Duration::from_secs(86_400))
                .unwrap();
        }
    }
}

/// The streams a FilterLogEvents from `startTime` now read (those it skipped are not listed).
fn searched_from_now(l: &Logs) -> Value {
    let found = call(
        l,
        "FilterLogEvents",
        json!({"logGroupName": G, "startTime": now_ms()}),
    )
    .unwrap();
    found["searchedLogStreams"].clone()
}

#[test]
fn filter_from_a_start_time_skips_old_environment_streams_unread() {
    // An environment's stream has a set-aside file name whether or not it has rotated.
    let (l, _d) = Logs::for_tests();
    append(&l, G, S, 0..4);
    age(&l, G, S);
    assert_eq!(searched_from_now(&l), json!([]));
    rotate(&l, G, S);
    age(&l, G, S);
    assert_eq!(searched_from_now(&l), json!([]));
    // Written again: read.
    append(&l, G, S, 4..6);
    let read = json!([{"logStreamName": S, "searchedCompletely": true}]);
    assert_eq!(searched_from_now(&l), read);
}
