"""Fixtures: a fake Runtime API per test and a launcher for real bootstrap processes."""

import os
import textwrap

import pytest

from harness import FakeRuntimeApi, RuntimeProcess, launch_command, runtime_environment
import java_fixtures


@pytest.fixture
def api():
    server = FakeRuntimeApi().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def java_build(tmp_path_factory):
    """The Java bootstrap and the Java test functions, compiled once per test session."""
    return java_fixtures.build(str(tmp_path_factory.mktemp("java")))


@pytest.fixture
def start_runtime(api, tmp_path, request):
    """start_runtime(runtime, handler, files, env=None, opt_dir=None, java_runtime=None) -> RuntimeProcess.

    `files` maps paths relative to the task root to their (dedented) source, to bytes, or to
    one of java_fixtures' artifacts (JAVA_APP: the compiled test functions, unpacked as a
    deployment package is; JAVA_CORE_JAR / GREETER_JAR: jars). The process gets Kindling's
    command line and environment, with the task root as its working directory, and is killed
    at the end of the test.
    """
    processes = []

    def start(runtime, handler, files, env=None, opt_dir=None, java_runtime=None):
        task_root = tmp_path / "task"
        task_root.mkdir(exist_ok=True)
        build = request.getfixturevalue("java_build") if runtime == "java" else None
        for relative, content in files.items():
            target = task_root / relative
            if isinstance(content, java_fixtures.Artifact):
                content.install(build, str(target))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(textwrap.dedent(content))
        environment = runtime_environment(api.address, handler, str(task_root), env)
        if java_runtime is None and build is not None:
            java_runtime = build.runtime
        command = launch_command(runtime, environment, java_runtime=java_runtime, opt_dir=opt_dir)
        process = RuntimeProcess(command, environment, str(task_root))
        api.watch(process)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()


@pytest.fixture
def task_root(tmp_path):
    return os.path.join(str(tmp_path), "task")


@pytest.fixture
def opt_dir(tmp_path):
    """A layer root standing in for /opt (Kindling passes the real one to each runtime)."""
    path = tmp_path / "opt"
    path.mkdir()
    return str(path)


# --- The real server (test_server_*.py) ----------------------------------------------------------

@pytest.fixture(scope="session")
def kindling(tmp_path_factory):
    """A real `kindling serve` (KINDLING_BIN, else target/debug/kindling) for the whole session."""
    import server_support

    srv = server_support.start_server(tmp_path_factory)
    yield srv
    running = srv.running
    srv.kill()
    assert running, "kindling died during the tests:\n" + srv.log_tail()


@pytest.fixture(scope="session")
def lam(kindling):
    import server_support

    return server_support.client(kindling.url)
