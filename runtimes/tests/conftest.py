"""Fixtures: a fake Runtime API per test and a launcher for real bootstrap processes."""

import os
import textwrap

import pytest

from harness import FakeRuntimeApi, RuntimeProcess, launch_command, runtime_environment


@pytest.fixture
def api():
    server = FakeRuntimeApi().start()
    yield server
    server.close()


@pytest.fixture
def start_runtime(api, tmp_path):
    """start_runtime(runtime, handler, files, env=None) -> RuntimeProcess.

    `files` maps paths relative to the task root to their (dedented) source.
    The process gets Kindling's command line and environment, with the task
    root as its working directory, and is killed at the end of the test.
    """
    processes = []

    def start(runtime, handler, files, env=None):
        task_root = tmp_path / "task"
        task_root.mkdir(exist_ok=True)
        for relative, source in files.items():
            target = task_root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(source))
        environment = runtime_environment(api.address, handler, str(task_root), env)
        process = RuntimeProcess(launch_command(runtime), environment, str(task_root))
        api.watch(process)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()


@pytest.fixture
def task_root(tmp_path):
    return os.path.join(str(tmp_path), "task")
