"""Measure bootstrap start-up: process spawn until the first GET /next arrives.

    python3 runtimes/tests/startup_bench.py [--runs 30] [--baseline] [python|node ...]

Each run starts the real bootstrap with Kindling's command line against the
fake Runtime API, with a trivial handler, and records the time from just
before spawning the process until the runtime's first /next request reaches
the server (so the handler module's import is included). One echo
invocation is then served to check the runtime works, and the process is
killed. --baseline also measures the bare interpreter doing nothing but
sending that same GET, which is the floor any bootstrap sits on.
"""

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import NODE, PYTHON, FakeRuntimeApi, RuntimeProcess, launch_command, runtime_environment  # noqa: E402

HANDLERS = {
    "python": ("app.handler", "app.py", "def handler(event, context):\n    return event\n"),
    "node": ("index.handler", "index.js", "exports.handler = async (event) => event;\n"),
}

NEXT_REQUEST = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"


def baseline_command(runtime, address):
    """The interpreter alone: connect, send GET /next, wait."""
    host, port = address.rsplit(":", 1)
    if runtime == "python":
        script = "import _socket; s = _socket.socket(); s.connect((%r, %s)); s.sendall(b'%s'); s.recv(1)"
        return [PYTHON, "-I", "-S", "-c", script % (host, port, NEXT_REQUEST)]
    return [NODE, "-e", "require('http').get('http://%s/2018-06-01/runtime/invocation/next')" % address]


def measure_once(runtime, task_root, baseline):
    handler, _, _ = HANDLERS[runtime]
    api = FakeRuntimeApi().start()
    command = baseline_command(runtime, api.address) if baseline else launch_command(runtime)
    process = RuntimeProcess(command, runtime_environment(api.address, handler, task_root), task_root)
    api.watch(process)
    try:
        first_next = api.wait_next_calls(1)[0]
        if not baseline:
            result = api.invoke({"ping": 1})
            assert result.kind == "response" and result.json() == {"ping": 1}, result
        return (first_next - process.started_at) * 1000.0
    finally:
        process.stop()
        api.close()


def bench(runtime, runs, baseline=False):
    _, filename, source = HANDLERS[runtime]
    with tempfile.TemporaryDirectory() as task_root:
        with open(os.path.join(task_root, filename), "w") as handle:
            handle.write(source)
        measure_once(runtime, task_root, baseline)  # warm the page cache
        samples = sorted(measure_once(runtime, task_root, baseline) for _ in range(runs))
    p90 = samples[min(len(samples) - 1, int(round(0.9 * (len(samples) - 1))))]
    label = runtime + (" (bare interpreter baseline)" if baseline else " bootstrap")
    print(
        "%-36s spawn -> first /next, %d runs: min %.1f ms, median %.1f ms, mean %.1f ms, p90 %.1f ms"
        % (label, runs, samples[0], statistics.median(samples), statistics.mean(samples), p90)
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--baseline", action="store_true", help="also measure the bare interpreter")
    parser.add_argument("runtimes", nargs="*", metavar="RUNTIME", help="python and/or node (default: both)")
    args = parser.parse_args()
    for runtime in args.runtimes or ["python", "node"]:
        if runtime not in HANDLERS:
            parser.error("unknown runtime %r" % runtime)
        print("command: %s" % " ".join(launch_command(runtime)))
        bench(runtime, args.runs)
        if args.baseline:
            bench(runtime, args.runs, baseline=True)


if __name__ == "__main__":
    main()
