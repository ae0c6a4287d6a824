//! Process mode with real processes: output, environment, exit reporting, whole-tree kill.

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use common::*;
use kindling_sandbox::{EnvironmentSpec, Exit, Sandbox, SandboxError, Stream};

const LIMIT: Duration = Duration::from_secs(10);

/// A tree with a double-forked daemon in its own session and a SIGTERM-ignoring process that
/// keeps forking; prints "ready" when all are started.
const TREE: &str = r#"
( setsid sh -c 'echo daemon $$; exec sleep 1000' & )
sh -c 'trap "" TERM; echo stubborn $$; while :; do sleep 1; done' &
echo main $$
sleep 0.05
echo ready
wait
"#;

#[tokio::test]
async fn echo_delivers_stdout_and_stderr_lines() {
    let sandbox = Sandbox::process();
    let mut env = sandbox
        .spawn(shell(
            &unique("echo"),
            "echo out1; echo err1 >&2; echo out2; printf 'no newline'",
        ))
        .await
        .unwrap();
    let lines = all_lines(env.take_output().unwrap(), LIMIT).await;
    assert_eq!(
        texts(&lines, Stream::Stdout),
        ["out1", "out2", "no newline"]
    );
    assert_eq!(texts(&lines, Stream::Stderr), ["err1"]);
    assert_eq!(env.wait().await, Exit::Code(0));
    assert!(env.take_output().is_none(), "output is handed out once");
}

#[tokio::test]
async fn environment_is_exactly_the_given_one() {
    let sandbox = Sandbox::process();
    let spec = EnvironmentSpec {
        id: unique("env"),
        program: "/usr/bin/env".into(),
        env: vec![
            ("A".into(), "1".into()),
            ("B".into(), "two words".into()),
            ("EMPTY".into(), String::new()),
        ],
        cwd: "/".into(),
        ..Default::default()
    };
    let mut env = sandbox.spawn(spec).await.unwrap();
    let mut got = texts(
        &all_lines(env.take_output().unwrap(), LIMIT).await,
        Stream::Stdout,
    );
    got.sort();
    assert_eq!(got, ["A=1", "B=two words", "EMPTY="]);
    assert!(env.wait().await.success());
}

#[tokio::test]
async fn arguments_and_working_directory_are_passed() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::process();
    let mut spec = shell(&unique("cwd"), r#"pwd; printf '%s|' "$0" "$1" "$2"; echo"#);
    spec.args
        .extend(["zero".into(), "one".into(), "two words".into()]);
    spec.cwd = dir.path().to_path_buf();
    let mut env = sandbox.spawn(spec).await.unwrap();
    let out = texts(
        &all_lines(env.take_output().unwrap(), LIMIT).await,
        Stream::Stdout,
    );
    assert_eq!(out, [dir.path().to_str().unwrap(), "zero|one|two words|"]);
}

#[tokio::test]
async fn exit_codes_and_signals_are_reported() {
    let sandbox = Sandbox::process();
    let env = sandbox
        .spawn(shell(&unique("code"), "exit 3"))
        .await
        .unwrap();
    assert_eq!(env.wait().await, Exit::Code(3));
    assert_eq!(env.try_wait(), Some(Exit::Code(3)));
    assert_eq!(env.wait().await, Exit::Code(3), "wait can be repeated");

    let env = sandbox
        .spawn(shell(&unique("sig"), "kill -USR1 $$"))
        .await
        .unwrap();
    assert_eq!(env.wait().await, Exit::Signal(libc::SIGUSR1));
}

#[tokio::test]
async fn exec_failures_are_returned_by_spawn() {
    let sandbox = Sandbox::process();
    let mut spec = shell(&unique("noexec"), "");
    spec.program = "/nonexistent/bootstrap".into();
    match sandbox.spawn(spec).await {
        Err(SandboxError::Exec { source, .. }) => {
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT))
        }
        other => panic!("expected an exec error, got {other:?}"),
    }

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bootstrap");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let mut spec = shell(&unique("noexec"), "");
    spec.program = script;
    match sandbox.spawn(spec).await {
        Err(SandboxError::Exec { source, .. }) => {
            assert_eq!(source.raw_os_error(), Some(libc::EACCES))
        }
        other => panic!("expected an exec error, got {other:?}"),
    }

    let mut spec = shell(&unique("nocwd"), "");
    spec.cwd = "/nonexistent".into();
    assert!(matches!(
        sandbox.spawn(spec).await,
        Err(SandboxError::Setup { .. })
    ));

    let mut spec = shell("bad/id", "");
    spec.id = "bad/id".into();
    assert!(matches!(
        sandbox.spawn(spec).await,
        Err(SandboxError::InvalidSpec(_))
    ));
}

#[tokio::test]
async fn kill_ends_the_whole_tree() {
    let sandbox = Sandbox::process();
    let id = unique("kill");
    let mut env = sandbox.spawn(shell(&id, TREE)).await.unwrap();
    let mut output = env.take_output().unwrap();
    let seen = lines_until(&mut output, LIMIT, |lines| {
        lines.iter().any(|l| l.line == "ready")
    })
    .await;
    for prefix in ["daemon ", "stubborn ", "main "] {
        assert!(
            seen.iter().any(|l| l.line.starts_with(prefix)),
            "{prefix}missing from {seen:?}"
        );
    }
    assert!(
        marked_processes(&id).len() >= 4,
        "tree: {:?}",
        marked_processes(&id)
    );

    env.kill();
    env.kill();
    assert_eq!(env.wait().await, Exit::Killed);
    assert_eq!(
        marked_processes(&id),
        Vec::<i32>::new(),
        "nothing left behind"
    );
    // Output ends once nothing holds the pipes any more.
    all_lines(output, LIMIT).await;
    env.kill();
    drop(env);
}

#[tokio::test]
async fn dropping_the_handle_ends_the_tree() {
    let sandbox = Sandbox::process();
    let id = unique("drop");
    let mut env = sandbox.spawn(shell(&id, TREE)).await.unwrap();
    let mut output = env.take_output().unwrap();
    lines_until(&mut output, LIMIT, |lines| {
        lines.iter().any(|l| l.line == "ready")
    })
    .await;
    drop(env);
    eventually("the tree is gone after drop", LIMIT, || {
        marked_processes(&id).is_empty()
    })
    .await;
}

#[tokio::test]
async fn live_environments_are_counted_until_they_are_gone() {
    let sandbox = Sandbox::process();
    assert_eq!(sandbox.live_environments(), 0);
    let a = sandbox
        .spawn(shell(&unique("live-a"), "sleep 1000"))
        .await
        .unwrap();
    let b = sandbox
        .spawn(shell(&unique("live-b"), "sleep 1000"))
        .await
        .unwrap();
    assert_eq!(sandbox.live_environments(), 2);
    drop(a);
    assert!(
        sandbox.wait_fewer_than(2, LIMIT).await,
        "one environment left"
    );
    assert_eq!(sandbox.live_environments(), 1);
    assert!(
        !sandbox.wait_fewer_than(1, Duration::from_millis(50)).await,
        "the other is alive"
    );
    drop(b);
    eventually("none left", LIMIT, || sandbox.live_environments() == 0).await;
    let mut spec = shell(&unique("live-c"), "");
    spec.program = "/nonexistent/program".into();
    assert!(sandbox.spawn(spec).await.is_err());
    assert_eq!(
        sandbox.live_environments(),
        0,
        "a failed start is not counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reservations_hold_a_limit_under_concurrent_starts() {
    const LIMIT_ENVS: usize = 3;
    let sandbox = Arc::new(Sandbox::process());
    // Many starts at once, each reserving its place first: never more than the limit live
    // or reserved, and exactly the limit's worth of them get a place.
    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (sandbox, barrier) = (Arc::clone(&sandbox), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let slot = sandbox.reserve(Some(LIMIT_ENVS))?;
            assert!(sandbox.live_environments() <= LIMIT_ENVS);
            let env = sandbox
                .spawn_in(slot, shell(&unique(&format!("slot-{i}")), "sleep 1000"))
                .await
                .unwrap();
            assert!(sandbox.live_environments() <= LIMIT_ENVS);
            Some(env)
        }));
    }
    let mut envs = Vec::new();
    for t in tasks {
        envs.extend(t.await.unwrap());
    }
    assert_eq!(envs.len(), LIMIT_ENVS, "exactly the limit's worth started");
    assert_eq!(sandbox.live_environments(), LIMIT_ENVS);
    assert!(sandbox.reserve(Some(LIMIT_ENVS)).is_none(), "full");

    // A place frees when an environment is gone; a reservation dropped unused, at once.
    drop(envs.pop());
    assert!(sandbox.wait_fewer_than(LIMIT_ENVS, LIMIT).await);
    let slot = sandbox.reserve(Some(LIMIT_ENVS)).expect("a place is free");
    assert!(
        sandbox.reserve(Some(LIMIT_ENVS)).is_none(),
        "the reservation holds it"
    );
    drop(slot);
    assert_eq!(sandbox.live_environments(), LIMIT_ENVS - 1);

    // A start that fails gives its reserved place back.
    let slot = sandbox.reserve(Some(LIMIT_ENVS)).expect("a place is free");
    let mut spec = shell(&unique("slot-fail"), "");
    spec.program = "/nonexistent/program".into();
    assert!(sandbox.spawn_in(slot, spec).await.is_err());
    assert_eq!(sandbox.live_environments(), LIMIT_ENVS - 1);
    assert!(sandbox.reserve(None).is_some(), "no limit: always a place");
    drop(envs);
    eventually("none left", LIMIT, || sandbox.live_environments() == 0).await;
}

#[tokio::test]
async fn the_programs_end_is_known_before_the_exit_is_published() {
    let sandbox = Sandbox::process();
    let env = sandbox
        .spawn(shell(&unique("ended"), "sleep 1; exit 4"))
        .await
        .unwrap();
    assert_eq!(env.program_ended_at(), None, "the program is still running");
    assert_eq!(env.wait().await, Exit::Code(4));
    let published = std::time::Instant::now();
    let ended = env
        .program_ended_at()
        .expect("the end is known once the exit is published");
    assert!(ended <= published);
}

#[tokio::test]
async fn leftovers_die_when_the_program_exits() {
    let sandbox = Sandbox::process();
    let id = unique("leftover");
    let env = sandbox
        .spawn(shell(
            &id,
            "( setsid sh -c 'trap \"\" TERM; exec sleep 1000' & ); sleep 1000 & exit 7",
        ))
        .await
        .unwrap();
    assert_eq!(env.wait().await, Exit::Code(7));
    assert_eq!(marked_processes(&id), Vec::<i32>::new());
}

#[tokio::test]
async fn process_mode_reports_memory_and_ignores_freeze() {
    let sandbox = Sandbox::process();
    let mut env = sandbox
        .spawn(shell(&unique("mem"), "echo up; exec sleep 1000"))
        .await
        .unwrap();
    let mut output = env.take_output().unwrap();
    lines_until(&mut output, LIMIT, |l| !l.is_empty()).await;
    assert!(env.pid().is_some());
    assert!(env.memory_peak_bytes().is_some_and(|b| b > 0));
    assert!(!env.can_freeze());
    env.freeze().await.unwrap();
    env.thaw().await.unwrap();
    assert!(!env.oom_killed());
    env.kill();
    assert_eq!(env.wait().await, Exit::Killed);
}

#[tokio::test]
async fn peak_memory_is_kept_after_the_end() {
    let sandbox = Sandbox::process();
    let env = sandbox
        .spawn(shell(&unique("rss"), "exit 0"))
        .await
        .unwrap();
    env.wait().await;
    assert!(env.memory_peak_bytes().is_some_and(|b| b > 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_spawns_keep_their_output_apart() {
    let sandbox = std::sync::Arc::new(Sandbox::process());
    let mut tasks = Vec::new();
    for i in 0..16 {
        let sandbox = sandbox.clone();
        tasks.push(tokio::spawn(async move {
            let mut env = sandbox
                .spawn(shell(&unique("many"), &format!("echo {i}")))
                .await
                .unwrap();
            let out = texts(
                &all_lines(env.take_output().unwrap(), LIMIT).await,
                Stream::Stdout,
            );
            assert_eq!(out, [i.to_string()]);
            assert!(env.wait().await.success());
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn long_lines_are_cut() {
    let config = kindling_sandbox::SandboxConfig {
        max_line_bytes: 10,
        ..Default::default()
    };
    let sandbox = Sandbox::new(kindling_sandbox::IsolationMode::Process, config).unwrap();
    let mut env = sandbox
        .spawn(shell(&unique("long"), "echo 0123456789abcdefghij"))
        .await
        .unwrap();
    let out = texts(
        &all_lines(env.take_output().unwrap(), LIMIT).await,
        Stream::Stdout,
    );
    assert_eq!(out, ["0123456789", "abcdefghij"]);
}

#[tokio::test]
async fn a_cancelled_spawn_leaves_nothing_behind() {
    let sandbox = Sandbox::process();
    let id = unique("cancel");
    // Polled once: the tree is cloned, then the future is dropped while it waits for the start.
    let spawned =
        tokio::time::timeout(Duration::ZERO, sandbox.spawn(shell(&id, "exec sleep 1000"))).await;
    drop(spawned);
    eventually("the tree is gone", LIMIT, || {
        marked_processes(&id).is_empty()
    })
    .await;
    settles_free_of(&id, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn prepared_network_is_the_hosts_loopback() {
    let prepared = Sandbox::process()
        .prepare_network(9001)
        .await
        .expect("prepare");
    assert!(prepared.namespace.is_none());
    let addr = prepared.listener.local_addr().expect("address");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    let listener = tokio::net::TcpListener::from_std(prepared.listener).expect("non-blocking");
    let client = std::net::TcpStream::connect(addr).expect("connect");
    let (_, peer) = tokio::time::timeout(LIMIT, listener.accept())
        .await
        .expect("accepted")
        .expect("accept");
    assert_eq!(peer, client.local_addr().expect("client address"));
}

#[tokio::test]
async fn passes_descriptors_at_fixed_numbers_and_nothing_else() {
    let sandbox = Sandbox::process();
    passes_descriptors_at_fixed_numbers(&sandbox, shell(&unique("passfds"), "")).await;
}

#[tokio::test]
async fn output_settled_waits_for_every_line_written_before_it() {
    let sandbox = Sandbox::process();
    let id = unique("settle");
    let done = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{id}.done"));
    // Several pipe-fulls on each stream, then a sign that everything was written.
    let script = format!(
        "seq 1 20000 | sed 's/$/ stdout-padding-padding-padding/'; \
         seq 1 20000 | sed 's/$/ stderr-padding-padding-padding/' >&2; \
         : > '{}'; exec sleep 1000",
        done.display()
    );
    let mut env = sandbox.spawn(shell(&id, &script)).await.unwrap();
    let mut output = env.take_output().unwrap();
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&handled);
    // A slow holder: every 500 lines take it a while.
    tokio::spawn(async move {
        while output.recv().await.is_some() {
            if (counter.fetch_add(1, SeqCst) + 1).is_multiple_of(500) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    eventually("the program wrote everything", LIMIT, || done.exists()).await;
    tokio::time::timeout(LIMIT, env.output_settled())
        .await
        .expect("output settles");
    assert_eq!(handled.load(SeqCst), 40_000);
    // Idle output: settled at once.
    tokio::time::timeout(Duration::from_millis(100), env.output_settled())
        .await
        .expect("idle output is settled");
    env.kill();
    let _ = std::fs::remove_file(&done);
}

/// The host's OOM killer takes functions first: the program, what it starts and its
/// supervisor run with the highest `oom_score_adj`, whatever the parent's.
#[tokio::test]
async fn the_environment_is_the_oom_killers_first_choice() {
    let sandbox = Sandbox::process();
    let script = "cat /proc/self/oom_score_adj; sh -c 'cat /proc/$PPID/oom_score_adj'; \
                  cat /proc/$PPID/oom_score_adj";
    let mut env = sandbox
        .spawn(shell(&unique("oom-adj"), script))
        .await
        .unwrap();
    let lines = all_lines(env.take_output().unwrap(), LIMIT).await;
    assert_eq!(texts(&lines, Stream::Stdout), ["1000", "1000", "1000"]);
    assert_eq!(env.wait().await, Exit::Code(0));
}
