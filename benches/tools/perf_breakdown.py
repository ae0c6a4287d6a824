#!/usr/bin/env python3
"""Groups `perf script -F tid,comm,ip,sym` samples of one process into cost categories.

Usage: perf_breakdown.py SCRIPT_FILE SAMPLE_HZ INVOKES
Prints CPU microseconds per invoke for each category (a sample's category is the first rule,
in the order below, that matches any frame of its stack).
"""
import re
import sys
from collections import Counter

RULES = [
    ("memory peak read (/proc or cgroup file)", r"memory_peak_bytes|vm_hwm_bytes|memory_peak"),
    ("log lines (START/END/REPORT writes)", r"LogStream::line|logs::report_line|logs::start_line|logs::end_line"),
    ("spawn_blocking hop (invoke_target)", r"blocking::pool::spawn_blocking|Spawner::spawn|invoke_target|blocking::task::BlockingTask"),
    ("socket write + loopback delivery to peer", r"__x64_sys_(write|writev|sendto|sendmsg)\b|tcp_sendmsg|poll_write_vectored|poll_flush"),
    ("socket read", r"__x64_sys_(read|readv|recvfrom|recvmsg)\b|tcp_recvmsg|poll_read"),
    ("accept/connect", r"__x64_sys_(accept4|connect)"),
    ("park/epoll/futex (waiting, wake-ups)", r"park|epoll_wait|__x64_sys_futex|__x64_sys_epoll"),
    ("reschedule IPI / irq exit", r"sysvec_reschedule_ipi|irqentry_exit|asm_sysvec"),
    ("other syscalls", r"__x64_sys_|do_syscall_64"),
]
# Samples no rule above claims are classified by their leaf (self) frame.
LEAF_RULES = [
    ("malloc/free/memcpy (self)", r"malloc|free|realloc|memmove|memcpy|memcmp|memchr|memset"),
    ("hyper/http (self)", r"hyper::|http::|httparse"),
    ("axum/tower (self)", r"axum::|tower::|matchit"),
    ("kindling crates (self)", r"kindling"),
    ("tokio (self)", r"tokio::"),
    ("serde_json (self)", r"serde"),
    ("formatting (self)", r"core::fmt|alloc::fmt"),
]
COMPILED = [(name, re.compile(rx)) for name, rx in RULES]
LEAF = [(name, re.compile(rx)) for name, rx in LEAF_RULES]


def samples(path):
    stack = []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if stack:
                    yield stack
                stack = []
            elif line.startswith("\t") or line.startswith(" "):
                stack.append(line.strip())
            else:
                if stack:
                    yield stack
                stack = [line]
    if stack:
        yield stack


def main():
    path, hz, invokes = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    counts = Counter()
    total = 0
    for st in samples(path):
        frames = "\n".join(st[1:])
        total += 1
        for name, rx in COMPILED:
            if rx.search(frames):
                counts[name] += 1
                break
        else:
            leaf = st[1] if len(st) > 1 else ""
            for name, rx in LEAF:
                if rx.search(leaf):
                    counts[name] += 1
                    break
            else:
                counts["other user/kernel (self)"] += 1
    us = 1e6 / hz / invokes
    print(f"{'category':<45} {'us/invoke':>9} {'share':>6}")
    for name, c in counts.most_common():
        print(f"{name:<45} {c * us:>9.1f} {100.0 * c / total:>5.1f}%")
    print(f"{'TOTAL':<45} {total * us:>9.1f}")


main()
