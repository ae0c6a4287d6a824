"""Logs: the `LogType=Tail` result (START/END/REPORT lines and the function's own output) and
`kindling logs`, which must hold the same lines."""

from __future__ import annotations

import pytest

import kindling_e2e as k


def _check_tail(inv: k.Invocation, text: str, *, cold: bool, memory: int = 128) -> k.Report:
    log = inv.log
    assert log is not None, "no LogResult although LogType=Tail"
    assert len(log.encode()) <= 4096, f"tail is {len(log.encode())} bytes (Lambda returns the last 4 KB)"
    rid = inv.request_id
    lines = log.splitlines()
    start = f"START RequestId: {rid} Version: $LATEST"
    assert start in lines, f"no {start!r} line in tail:\n{log}"
    assert f"END RequestId: {rid}" in lines, f"no END line in tail:\n{log}"
    i_start = lines.index(start)
    i_end = lines.index(f"END RequestId: {rid}")
    printed = [i for i, ln in enumerate(lines) if text in ln and "stderr:" not in ln]
    errs = [i for i, ln in enumerate(lines) if f"stderr:{text}" in ln]
    assert printed, f"the function's stdout line {text!r} is missing from the tail:\n{log}"
    assert errs, f"the function's stderr line is missing from the tail:\n{log}"
    assert i_start < printed[0] < i_end and i_start < errs[0] < i_end, f"lines out of order:\n{log}"
    rep = k.report_for(log, rid)
    assert lines.index(rep.line) > i_end, f"REPORT before END:\n{log}"
    assert rep.line.endswith("\t"), f"REPORT line must end with a tab: {rep.line!r}"
    assert rep.memory == memory, rep.line
    assert rep.max_memory >= 1, rep.line
    assert rep.duration >= 150, f"Duration {rep.duration} ms for a 200 ms sleep: {rep.line!r}"
    k.check_billed(rep)
    rest = k.REPORT_RE.search(rep.line).group("rest")
    if cold:
        assert rep.init_duration is not None, f"cold start without Init Duration: {rep.line!r}"
        assert rep.init_duration > 0
        assert rest == f"Init Duration: {rep.init_duration:.2f} ms\t", (
            f"Init Duration must be the last field: {rep.line!r}")
    else:
        assert rep.init_duration is None, f"warm invoke reports Init Duration: {rep.line!r}"
        assert rest == "", f"unexpected fields after Max Memory Used: {rep.line!r}"
    return rep


def test_tail_and_kindling_logs(lam, logs, deploy, kind):
    name = deploy()
    text1, text2 = k.unique("printed"), k.unique("printed")
    inv1 = k.invoke(lam, name, {"print": text1, "sleep_ms": 200, "info": True}, tail=True)
    assert inv1.ok()["aws_request_id"] == inv1.request_id
    _check_tail(inv1, text1, cold=True)
    inv2 = k.invoke(lam, name, {"print": text2, "sleep_ms": 200, "info": True}, tail=True)
    inv2.ok()
    _check_tail(inv2, text2, cold=False)
    assert text1 not in inv2.log, "the tail holds another invocation's output"

    # The stored log holds the same lines, in order.
    messages = logs.wait_contains(name, f"REPORT RequestId: {inv2.request_id}")
    for inv, text in ((inv1, text1), (inv2, text2)):
        rid = inv.request_id
        start = f"START RequestId: {rid} Version: $LATEST"
        assert start in messages, f"{start!r} missing from kindling logs:\n" + "\n".join(messages)
        assert f"END RequestId: {rid}" in messages
        i_start = messages.index(start)
        i_end = messages.index(f"END RequestId: {rid}")
        assert any(text in m for m in messages[i_start:i_end]), f"{text!r} not between START and END"
        reports = [m for m in messages if m.startswith(f"REPORT RequestId: {rid}")]
        assert len(reports) == 1
        tail_report = k.report_for(inv.log, rid)
        assert reports[0] == tail_report.line, (
            f"kindling logs and the tail disagree:\n{reports[0]!r}\n{tail_report.line!r}")


def test_no_tail_without_log_type(lam, deploy, kind):
    name = deploy()
    inv = k.invoke(lam, name, {"print": "quiet"})
    assert inv.log is None and "x-amz-log-result" not in inv.headers


@pytest.mark.runtimes("python")
def test_tail_is_last_4kb(lam, deploy, kind):
    """A long output is cut to the last 4 KB, which still ends with the REPORT line."""
    name = deploy()
    text = "y" * 1000
    inv = k.invoke(lam, name, {"print": text * 3 + "-END", "sleep_ms": 200}, tail=True)
    log = inv.log or ""
    assert 3500 < len(log.encode()) <= 4096, f"tail length {len(log.encode())}"
    k.report_for(log, inv.request_id)


def test_event_invocation_runs(lam, logs, deploy, kind):
    name = deploy()
    text = k.unique("async")
    resp = lam.invoke(FunctionName=name, InvocationType="Event", Payload=f'{{"print": "{text}"}}')
    assert resp["StatusCode"] == 202
    assert resp["Payload"].read() == b""
    messages = logs.wait_contains(name, text, timeout=30)
    rid = resp["ResponseMetadata"]["RequestId"]
    messages = logs.wait_contains(name, f"REPORT RequestId: {rid}", timeout=30)
    assert f"START RequestId: {rid} Version: $LATEST" in messages, (
        "the Event invoke's RequestId is not the id the function ran with:\n" + "\n".join(messages))


def test_a_burst_of_output_is_logged_before_end(lam, logs, deploy, kind):
    """Everything a function printed before it answered is in its log before END and REPORT,
    however much it printed: here several pipe-fulls per stream (the platform's lines must wait
    for Kindling's output readers, not race them)."""
    name = deploy()
    count = 2000
    ids = []
    for r in range(4):
        marker = k.unique(f"burst{r}")
        text = "\n".join(f"{marker} {i:05d} " + "x" * 100 for i in range(count))
        inv = k.invoke(lam, name, {"print": text})
        inv.ok()
        ids.append((inv.request_id, marker))
    # Events split on "\n" only: the Node.js runtime logs one console.log as one event, its
    # newlines turned into "\r" (as Lambda's does).
    raw = k.wait_for(lambda: (lambda r: r if f"REPORT RequestId: {ids[-1][0]}" in r else None)(
        logs.raw(name)), what="the last REPORT in `kindling logs`")
    events = [line.partition("\t")[2] for line in raw.split("\n") if line]
    for rid, marker in ids:
        start = events.index(f"START RequestId: {rid} Version: $LATEST")
        end = events.index(f"END RequestId: {rid}")
        # stdout's lines and stderr's (its first line prefixed `stderr:`).
        printed = sum(e.count(marker) for e in events)
        assert printed == 2 * count, f"{printed} of {2 * count} lines of {rid} logged"
        late = [e[:60] for i, e in enumerate(events) if marker in e and not start < i < end]
        assert not late, f"{len(late)} lines of {rid} outside START..END, first {late[:3]}"
