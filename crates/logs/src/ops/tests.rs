use super::*;
use kindling_protocol::WireError;

fn logs() -> (Logs, tempfile::TempDir) {
    Logs::for_tests()
}

fn call(l: &Logs, op: &str, input: Value) -> Result<Value, LogsError> {
    execute(l, Operation::parse(op).unwrap(), input)
}

fn write(l: &Logs, group: &str, stream: &str, events: &[(i64, &str)]) {
    let events: Vec<(i64, String)> = events.iter().map(|(t, m)| (*t, m.to_string())).collect();
    l.store
        .append_events(group, stream, &events)
        .unwrap()
        .unwrap();
}

const G: &str = "/aws/lambda/fn";

#[test]
fn groups_and_streams_are_described() {
    let (l, _d) = logs();
    write(
        &l,
        G,
        "2024/01/01/[$LATEST]aaa",
        &[(1000, "a1"), (5000, "a2")],
    );
    write(
        &l,
        G,
        "2024/01/01/[$LATEST]bbb",
        &[(2000, "b1"), (3000, "b2")],
    );
    let groups = call(&l, "DescribeLogGroups", json!({})).unwrap();
    assert_eq!(groups["logGroups"][0]["logGroupName"], G);
    assert_eq!(
        groups["logGroups"][0]["arn"],
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fn:*"
    );
    let streams = call(
        &l,
        "DescribeLogStreams",
        json!({"logGroupName": G, "orderBy": "LastEventTime", "descending": true}),
    )
    .unwrap();
    let names: Vec<&str> = streams["logStreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["logStreamName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["2024/01/01/[$LATEST]aaa", "2024/01/01/[$LATEST]bbb"]
    );
    assert_eq!(streams["logStreams"][0]["lastEventTimestamp"], 5000);
    assert_eq!(streams["logStreams"][0]["firstEventTimestamp"], 1000);
    let page = call(
        &l,
        "DescribeLogStreams",
        json!({"logGroupName": G, "limit": 1}),
    )
    .unwrap();
    assert_eq!(page["logStreams"].as_array().unwrap().len(), 1);
    let rest = call(
        &l,
        "DescribeLogStreams",
        json!({"logGroupName": G, "limit": 1, "nextToken": page["nextToken"]}),
    )
    .unwrap();
    assert_eq!(
        rest["logStreams"][0]["logStreamName"],
        "2024/01/01/[$LATEST]bbb"
    );
    assert!(rest.get("nextToken").is_none());
    let err = call(&l, "DescribeLogStreams", json!({"logGroupName": "/nope"})).unwrap_err();
    assert_eq!(err.code(), "ResourceNotFoundException");
    let err = call(
        &l,
        "DescribeLogStreams",
        json!({"logGroupName": G, "orderBy": "LastEventTime", "logStreamNamePrefix": "2024"}),
    )
    .unwrap_err();
    assert_eq!(err.code(), "InvalidParameterException");
}

#[test]
fn get_log_events_pages_both_ways_and_repeats_tokens_at_the_end() {
    let (l, _d) = logs();
    let s = "2024/01/01/[$LATEST]x";
    let events: Vec<(i64, String)> = (0..5).map(|i| (1000 + i, format!("e{i}"))).collect();
    l.store.append_events(G, s, &events).unwrap();
    let msgs = |v: &Value| -> Vec<String> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect()
    };
    // Newest page by default.
    let last = call(
        &l,
        "GetLogEvents",
        json!({"logGroupName": G, "logStreamName": s, "limit": 2}),
    )
    .unwrap();
    assert_eq!(msgs(&last), ["e3", "e4"]);
    let back = call(
        &l,
        "GetLogEvents",
        json!({"logGroupName": G, "logStreamName": s, "limit": 2, "nextToken": last["nextBackwardToken"]}),
    )
    .unwrap();
    assert_eq!(msgs(&back), ["e1", "e2"]);
    let back2 = call(
        &l,
        "GetLogEvents",
        json!({"logGroupName": G, "logStreamName": s, "limit": 2, "nextToken": back["nextBackwardToken"]}),
    )
    .unwrap();
    assert_eq!(msgs(&back2), ["e0"]);
    let back3 = call(
        &l,
        "GetLogEvents",
        json!({"logGroupName": G, "logStreamName": s, "limit": 2, "nextToken": back2["nextBackwardToken"]}),
    )
    .unwrap();
    assert!(msgs(&back3).is_empty());
    assert_eq!(back3["nextBackwardToken"], back2["nextBackwardToken"]);
    // From the head, forward to the end; the end repeats the token sent.
    let mut token = Value::Null;
    let mut seen = Vec::new();
    for _ in 0..10 {
        let mut input =
            json!({"logGroupName": G, "logStreamName": s, "limit": 2, "startFromHead": true});
        if !token.is_null() {
            input["nextToken"] = token.clone();
        }
        let page = call(&l, "GetLogEvents", input).unwrap();
        seen.extend(msgs(&page));
        if page["nextForwardToken"] == token {
            break;
        }
        token = page["nextForwardToken"].clone();
    }
    assert_eq!(seen, ["e0", "e1", "e2", "e3", "e4"]);
    // New events appear after the end token.
    l.store
        .append_events(G, s, &[(2000, "late".to_string())])
        .unwrap();
    let more = call(
        &l,
        "GetLogEvents",
        json!({"logGroupName": G, "logStreamName": s, "nextToken": token}),
    )
    .unwrap();
    assert_eq!(msgs(&more), ["late"]);
    let ranged = call(
        &l,
        "GetLogEvents",
        json!({"logGroupName": G, "logStreamName": s, "startTime": 1001, "endTime": 1003, "startFromHead": true}),
    )
    .unwrap();
    assert_eq!(msgs(&ranged), ["e1", "e2"]);
    let err = call(
        &l,
        "GetLogEvents",
        json!({"logGroupName": G, "logStreamName": "nope"}),
    )
    .unwrap_err();
    assert_eq!(err.message(), "The specified log stream does not exist.");
    let err = call(
        &l,
        "GetLogEvents",
        json!({"logGroupName": G, "logStreamName": s, "nextToken": "zzz"}),
    )
    .unwrap_err();
    assert_eq!(err.code(), "InvalidParameterException");
}

#[test]
fn a_stream_whose_file_time_lags_its_events_is_still_searched() {
    // The kernel stamps files from its coarse clock: a stream written right after `startTime`
    // can carry a modification time a few milliseconds before it.
    let (l, _d) = logs();
    let at = now_ms();
    write(&l, G, "lagging", &[(at, "just written")]);
    let path = l.store.group_streams(G).unwrap().pop().unwrap();
    let earlier = UNIX_EPOCH + std::time::Duration::from_millis((at - 5) as u64);
    std::fs::File::options()
        .append(true)
        .open(&path)
        .unwrap()
        .set_modified(earlier)
        .unwrap();
    let found = call(
        &l,
        "FilterLogEvents",
        json!({"logGroupName": G, "startTime": at, "interleaved": true}),
    )
    .unwrap();
    assert_eq!(found["events"][0]["message"], "just written", "{found}");
}

#[test]
fn filter_log_events_interleaves_filters_and_pages() {
    let (l, _d) = logs();
    write(
        &l,
        G,
        "a",
        &[
            (1, "INFO one"),
            (3, "ERROR three"),
            (5, "{\"level\":\"ERROR\",\"n\":5}"),
        ],
    );
    write(&l, G, "b", &[(2, "ERROR two"), (4, "INFO four")]);
    let all = call(
        &l,
        "FilterLogEvents",
        json!({"logGroupName": G, "interleaved": true}),
    )
    .unwrap();
    let ts: Vec<i64> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["timestamp"].as_i64().unwrap())
        .collect();
    assert_eq!(ts, [1, 2, 3, 4, 5]);
    let errors = call(
        &l,
        "FilterLogEvents",
        json!({"logGroupName": G, "filterPattern": "ERROR -three"}),
    )
    .unwrap();
    assert_eq!(errors["events"].as_array().unwrap().len(), 2);
    let json_only = call(
        &l,
        "FilterLogEvents",
        json!({"logGroupName": G, "filterPattern": "{ $.level = \"ERROR\" && $.n != 4 }"}),
    )
    .unwrap();
    assert_eq!(json_only["events"][0]["timestamp"], 5);
    let b_only = call(
        &l,
        "FilterLogEvents",
        json!({"logGroupName": G, "logStreamNames": ["b"], "startTime": 3}),
    )
    .unwrap();
    assert_eq!(b_only["events"][0]["message"], "INFO four");
    // Pages of two, then the rest; event ids are stable across calls.
    let mut token: Option<Value> = None;
    let mut ids = Vec::new();
    loop {
        let mut input = json!({"logGroupName": G, "limit": 2});
        if let Some(t) = &token {
            input["nextToken"] = t.clone();
        }
        let page = call(&l, "FilterLogEvents", input).unwrap();
        ids.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["eventId"].as_str().unwrap().to_string()),
        );
        match page.get("nextToken") {
            Some(t) => token = Some(t.clone()),
            None => break,
        }
    }
    let again: Vec<String> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, again);
    assert!(ids.iter().all(|i| i.len() == 56));
    let err = call(
        &l,
        "FilterLogEvents",
        json!({"logGroupName": G, "filterPattern": "{ $.x = "}),
    )
    .unwrap_err();
    assert_eq!(err.code(), "InvalidParameterException");
}

#[test]
fn groups_can_be_created_retained_and_deleted() {
    let (l, _d) = logs();
    call(&l, "CreateLogGroup", json!({"logGroupName": "/app/custom"})).unwrap();
    let err = call(&l, "CreateLogGroup", json!({"logGroupName": "/app/custom"})).unwrap_err();
    assert_eq!(err.code(), "ResourceAlreadyExistsException");
    let err = call(&l, "CreateLogGroup", json!({"logGroupName": "bad name"})).unwrap_err();
    assert_eq!(err.code(), "InvalidParameterException");
    call(
        &l,
        "CreateLogStream",
        json!({"logGroupName": "/app/custom", "logStreamName": "s1"}),
    )
    .unwrap();
    call(
        &l,
        "PutLogEvents",
        json!({"logGroupName": "/app/custom", "logStreamName": "s1", "logEvents": [{"timestamp": 10, "message": "hello"}]}),
    )
    .unwrap();
    let got = call(
        &l,
        "GetLogEvents",
        json!({"logGroupName": "/app/custom", "logStreamName": "s1"}),
    )
    .unwrap();
    assert_eq!(got["events"][0]["message"], "hello");
    // An old stream goes when a retention policy is set.
    write(&l, "/app/custom", "old", &[(10, "old")]);
    let old = l.store.group_dir("/app/custom").join("old.log");
    std::fs::File::options()
        .append(true)
        .open(&old)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3 * 86_400))
        .unwrap();
    let err = call(
        &l,
        "PutRetentionPolicy",
        json!({"logGroupName": "/app/custom", "retentionInDays": 2}),
    )
    .unwrap_err();
    assert_eq!(err.code(), "InvalidParameterException");
    call(
        &l,
        "PutRetentionPolicy",
        json!({"logGroupName": "/app/custom", "retentionInDays": 1}),
    )
    .unwrap();
    assert!(!old.exists());
    let groups = call(
        &l,
        "DescribeLogGroups",
        json!({"logGroupNamePrefix": "/app"}),
    )
    .unwrap();
    assert_eq!(groups["logGroups"][0]["retentionInDays"], 1);
    call(
        &l,
        "DeleteRetentionPolicy",
        json!({"logGroupName": "/app/custom"}),
    )
    .unwrap();
    let groups = call(
        &l,
        "DescribeLogGroups",
        json!({"logGroupNamePrefix": "/app"}),
    )
    .unwrap();
    assert!(groups["logGroups"][0].get("retentionInDays").is_none());
    call(&l, "DeleteLogGroup", json!({"logGroupName": "/app/custom"})).unwrap();
    let err = call(&l, "DeleteLogGroup", json!({"logGroupName": "/app/custom"})).unwrap_err();
    assert_eq!(err.code(), "ResourceNotFoundException");
    let groups = call(&l, "DescribeLogGroups", json!({})).unwrap();
    assert!(groups["logGroups"].as_array().unwrap().is_empty());
}

/// Every page of a FilterLogEvents search (events, and how many pages were partial).
fn filter_all(l: &Logs, input: Value) -> (Vec<Value>, usize) {
    let (mut events, mut partial) = (Vec::new(), 0);
    let mut input = input;
    for _ in 0..10_000 {
        let page = call(l, "FilterLogEvents", input.clone()).unwrap();
        let got = page["events"].as_array().unwrap();
        if got.is_empty() && page.get("nextToken").is_some() {
            partial += 1;
        }
        events.extend(got.iter().cloned());
        match page.get("nextToken") {
            Some(t) => input["nextToken"] = t.clone(),
            None => return (events, partial),
        }
    }
    panic!("the search never ended");
}

#[test]
fn filter_log_events_pauses_within_its_budget_and_resumes_exactly() {
    let (mut l, _d) = logs();
    for (s, offset) in [("a", 0), ("b", 1), ("c", 2)] {
        let events: Vec<(i64, String)> = (0..40)
            .map(|i| {
                (
                    1000 + i * 3 + offset,
                    format!("{s}{i} {}", if i % 3 == 0 { "hit" } else { "miss" }),
                )
            })
            .collect();
        let refs: Vec<(i64, &str)> = events.iter().map(|(t, m)| (*t, m.as_str())).collect();
        write(&l, G, s, &refs);
    }
    for input in [
        json!({"logGroupName": G}),
        json!({"logGroupName": G, "filterPattern": "hit", "limit": 7}),
        json!({"logGroupName": G, "startTime": 1010, "endTime": 1090, "limit": 5}),
    ] {
        l.searches = Arc::default();
        let (whole, partial) = filter_all(&l, input.clone());
        assert_eq!(partial, 0);
        // About two lines per request: the search pauses and resumes many times.
        l.searches = Arc::new(Searches::with_budget(40));
        let (paged, partial) = filter_all(&l, input.clone());
        assert!(partial > 10, "{partial} partial pages");
        assert_eq!(paged, whole, "{input}");
        let ids: BTreeSet<&str> = paged
            .iter()
            .map(|e| e["eventId"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), paged.len());
    }
    // A paused search that is gone (here: resumed once already) restarts its page: the same
    // answer.
    l.searches = Arc::new(Searches::with_budget(40));
    let first = call(&l, "FilterLogEvents", json!({"logGroupName": G})).unwrap();
    let token = first["nextToken"].clone();
    assert!(first["events"].as_array().unwrap().is_empty());
    let again = json!({"logGroupName": G, "nextToken": token});
    let (a, _) = filter_all(&l, again.clone());
    let (b, _) = filter_all(&l, again);
    assert_eq!(a, b);
    assert_eq!(a.len(), 120);
    // A token for another query does not resume this one's search.
    let other = json!({"logGroupName": G, "filterPattern": "hit", "nextToken": first["nextToken"]});
    let (c, _) = filter_all(&l, other);
    assert_eq!(c.len(), 42);
}

/// Pages a FilterLogEvents search while another search pauses between every two of its
/// requests (pushing its paused search out when one is all that is kept): the events, or
/// None when the search did not end within `bound` requests.
fn filter_all_pushed_out(l: &Logs, input: Value, bound: usize) -> Option<Vec<Value>> {
    let mut events = Vec::new();
    let mut input = input;
    for _ in 0..bound {
        let page = call(l, "FilterLogEvents", input.clone()).unwrap();
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        match page.get("nextToken") {
            Some(t) => input["nextToken"] = t.clone(),
            None => return Some(events),
        }
        let rival = call(l, "FilterLogEvents", json!({"logGroupName": G, "limit": 3})).unwrap();
        assert!(rival["events"].as_array().unwrap().is_empty());
    }
    None
}

#[test]
fn filter_log_events_ends_when_every_paused_search_is_pushed_out() {
    let (mut l, _d) = logs();
    for (s, offset) in [("a", 0), ("b", 1), ("c", 2)] {
        let events: Vec<(i64, String)> = (0..40)
            .map(|i| (1000 + i * 3 + offset, format!("{s}{i} event")))
            .collect();
        let refs: Vec<(i64, &str)> = events.iter().map(|(t, m)| (*t, m.as_str())).collect();
        write(&l, G, s, &refs);
    }
    let input = json!({"logGroupName": G, "limit": 50});
    let (whole, _) = filter_all(&l, input.clone());
    assert_eq!(whole.len(), 120);
    // Every page reads the whole group: a tenth of it per budget, one search paused at a time.
    // Every paused search of `input` is gone by its next request, so each page restarts, with
    // one budget more every time (the group is under `MAX_RESTART_ROUNDS` budgets).
    let size: u64 = std::fs::read_dir(l.store.group_dir(G))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(size > 3000, "{size}");
    l.searches = Arc::new(Searches::with_capacity(size / 10, 1));
    let paged = filter_all_pushed_out(&l, input.clone(), 1_000).expect("the search never ended");
    assert_eq!(paged, whole);
    // A forged round count buys no more than `MAX_RESTART_ROUNDS` budgets: 120 lines are far
    // over 16 budgets of 40 bytes, so the first page pauses again, counting 16.
    l.searches = Arc::new(Searches::with_budget(40));
    let page = call(
        &l,
        "FilterLogEvents",
        json!({"logGroupName": G, "limit": 50, "nextToken": "p999-1000000"}),
    )
    .unwrap();
    assert!(page["events"].as_array().unwrap().is_empty());
    let token = page["nextToken"].as_str().unwrap();
    assert!(token.starts_with("p") && token.ends_with("-16"), "{token}");
}

#[test]
fn filter_log_events_resumes_only_an_equal_query() {
    let (mut l, _d) = logs();
    let events: Vec<(i64, String)> = (0..40).map(|i| (1000 + i, format!("e{i}"))).collect();
    let refs: Vec<(i64, &str)> = events.iter().map(|(t, m)| (*t, m.as_str())).collect();
    write(&l, G, "a", &refs);
    l.searches = Arc::new(Searches::with_budget(40));
    let first = call(
        &l,
        "FilterLogEvents",
        json!({"logGroupName": G, "limit": 5}),
    )
    .unwrap();
    let token = first["nextToken"].clone();
    // Another limit: the paused search is not taken (it stays for its own query).
    let other = call(
        &l,
        "FilterLogEvents",
        json!({"logGroupName": G, "limit": 6, "nextToken": token}),
    )
    .unwrap();
    assert_ne!(other["nextToken"], token);
    assert_eq!(l.searches.paused_ids(), [1, 2]);
    let own = json!({"logGroupName": G, "limit": 5, "nextToken": token});
    let resumed = call(&l, "FilterLogEvents", own).unwrap();
    assert_eq!(l.searches.paused_ids(), [2, 3]);
    assert_eq!(resumed["nextToken"], "p3-2");
}

#[test]
fn a_line_too_long_for_a_page_does_not_end_the_search() {
    let (l, _d) = logs();
    write(&l, G, "s", &[(1000, "before")]);
    l.store
        .append_events(G, "s", &[(1001, "z".repeat(2 * 1024 * 1024))])
        .unwrap();
    write(&l, G, "s", &[(1002, "after")]);
    let (events, _) = filter_all(&l, json!({"logGroupName": G}));
    let got: Vec<&str> = events
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        got.len(),
        3,
        "{:?}",
        got.iter().map(|m| m.len()).collect::<Vec<_>>()
    );
    assert!(got[1].starts_with("zzz") && got[1].len() < 1024 * 1024);
    assert_eq!([got[0], got[2]], ["before", "after"]);
}
