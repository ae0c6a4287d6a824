"""Measure bootstrap cold starts: process spawn until the first GET /next, and until the first response.

    python3 runtimes/tests/startup_bench.py [--runs 30] [--baseline] [python|node|ruby|java|java-cds ...]

Each run starts the real bootstrap with Kindling's command line against the fake Runtime API,
with a trivial echo handler and one event already queued, and records the time from just before
spawning the process until (1) the runtime's first /next request reaches the server (handler
loading included) and (2) its response to that first event arrives (a cold invocation, handler
call and JSON work included), and (3) the CPU time the process used until then (all threads;
this one barely depends on other load on the machine). The process is then killed. `java` runs without a CDS archive,
`java-cds` with the archive Kindling creates once per JDK. --baseline also measures the bare
interpreter or JVM doing nothing but sending that same GET, the floor any bootstrap sits on.
Variants run interleaved (one run of each per round), so load from other processes on the
machine affects them alike; compare minimums and medians within one invocation.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import java_fixtures  # noqa: E402
from harness import NODE, PYTHON, RUBY, FakeRuntimeApi, RuntimeProcess, launch_command, runtime_environment  # noqa: E402

SCRIPT_HANDLERS = {
    "python": ("app.handler", "app.py", "def handler(event, context):\n    return event\n"),
    "node": ("index.handler", "index.js", "exports.handler = async (event) => event;\n"),
    "ruby": ("app.handler", "app.rb", "def handler(event:, context:)\n  event\nend\n"),
}
RUNTIMES = ["python", "node", "ruby", "java", "java-cds"]

NEXT_REQUEST = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"

JAVA_BASELINE = """
import java.io.OutputStream;
import java.net.Socket;

public class Baseline {
    public static void main(String[] args) throws Exception {
        String[] address = System.getenv("AWS_LAMBDA_RUNTIME_API").split(":");
        Socket socket = new Socket(address[0], Integer.parseInt(address[1]));
        OutputStream out = socket.getOutputStream();
        out.write("GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n".getBytes());
        out.flush();
        socket.getInputStream().read();
    }
}
"""


class Setup:
    """What one runtime needs: its task root, handler and (Java) compiled artifacts."""

    def __init__(self, runtime, work):
        self.runtime = runtime
        self.task_root = os.path.join(work, "task-" + runtime)
        os.makedirs(self.task_root)
        self.java_runtime = None
        self.env = {}  # extra environment for the runtime
        if runtime.startswith("java"):
            build = java_build(work)
            java_fixtures.JAVA_APP.install(build, self.task_root)
            self.handler = "example.Echo"
            self.java_runtime = build.runtime if runtime == "java-cds" else harness.JavaRuntime(build.runtime.jar)
            self.baseline_classes = build.baseline
        else:
            self.handler, filename, source = SCRIPT_HANDLERS[runtime]
            with open(os.path.join(self.task_root, filename), "w") as handle:
                handle.write(source)

    def command(self, env, baseline):
        if not baseline:
            return launch_command(self.runtime.split("-")[0], env, java_runtime=self.java_runtime)
        host, port = env["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
        if self.runtime == "python":
            script = "import _socket; s = _socket.socket(); s.connect((%r, %s)); s.sendall(b'%s'); s.recv(1)"
            return [PYTHON, "-I", "-S", "-c", script % (host, port, NEXT_REQUEST)]
        if self.runtime == "node":
            return [NODE, "-e", "require('http').get('http://%s:%s/2018-06-01/runtime/invocation/next')" % (host, port)]
        if self.runtime == "ruby":
            script = "require 'socket'; s = TCPSocket.new(%r, %s); s.write(\"%s\"); s.read(1)"
            return [RUBY, "--disable-gems", "-e", script % (host, port, NEXT_REQUEST)]
        # The JVM with Kindling's flags (and archive, for java-cds) running a class that only sends the GET.
        command = launch_command("java", env, java_runtime=self.java_runtime)
        command[command.index("-cp") + 1] = self.baseline_classes
        command[-1] = "Baseline"
        return command


_JAVA_BUILD = {}


def java_build(work):
    if "build" not in _JAVA_BUILD:
        build = java_fixtures.build(os.path.join(work, "java"))
        baseline = os.path.join(work, "java", "baseline")
        os.makedirs(baseline)
        with open(os.path.join(baseline, "Baseline.java"), "w") as handle:
            handle.write(JAVA_BASELINE)
        javac = harness.javac_next_to(harness.JAVA)
        subprocess.run([javac, "--release", "17", "-d", baseline, os.path.join(baseline, "Baseline.java")], check=True)
        build.baseline = baseline
        _JAVA_BUILD["build"] = build
    return _JAVA_BUILD["build"]


def cpu_ms(pid):
    """CPU time the process's live threads have used so far (schedstat), in milliseconds.

    Unlike wall-clock times this hardly depends on what else the machine is running.
    """
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as handle:
                total += int(handle.read().split()[0])
        except OSError:  # the thread just ended
            pass
    return total / 1e6


def measure_once(setup, baseline):
    """(spawn -> first /next, spawn -> first response, CPU until then) in milliseconds.

    The last two are None for baselines."""
    api = FakeRuntimeApi().start()
    env = runtime_environment(api.address, setup.handler, setup.task_root, setup.env)
    request_id = None if baseline else api.enqueue({"ping": 1})
    process = RuntimeProcess(setup.command(env, baseline), env, setup.task_root)
    api.watch(process)
    try:
        first_next = api.wait_next_calls(1, timeout=60)[0]
        if baseline:
            return (first_next - process.started_at) * 1000.0, None, None
        result = api.wait_posted(request_id, timeout=60)
        cpu = cpu_ms(process.pid)  # the runtime now waits in its second /next
        assert result.kind == "response" and result.json() == {"ping": 1}, result
        return (first_next - process.started_at) * 1000.0, (result.received_at - process.started_at) * 1000.0, cpu
    finally:
        process.stop()
        api.close()


def describe(samples):
    samples = sorted(samples)
    p90 = samples[min(len(samples) - 1, int(round(0.9 * (len(samples) - 1))))]
    return "min %.1f ms, median %.1f ms, p90 %.1f ms" % (samples[0], statistics.median(samples), p90)


def bench(setups, runs, with_baseline):
    """Runs every variant once per round (interleaved), so a busy machine affects all alike."""
    variants = [(setup, False) for setup in setups] + ([(setup, True) for setup in setups] if with_baseline else [])
    for setup, baseline in variants:
        measure_once(setup, baseline)  # warm the page cache
    results = {index: [] for index in range(len(variants))}
    for _ in range(runs):
        for index, (setup, baseline) in enumerate(variants):
            results[index].append(measure_once(setup, baseline))
    for index, (setup, baseline) in enumerate(variants):
        label = setup.runtime + (" (bare baseline)" if baseline else " bootstrap")
        samples = results[index]
        print("%-28s spawn -> first /next:    %s (%d runs)" % (label, describe([r[0] for r in samples]), runs))
        if not baseline:
            print("%-28s spawn -> first response: %s" % ("", describe([r[1] for r in samples])))
            print("%-28s CPU until then:          %s" % ("", describe([r[2] for r in samples])))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--baseline", action="store_true", help="also measure the bare interpreter / JVM")
    parser.add_argument("runtimes", nargs="*", metavar="RUNTIME", help=" | ".join(RUNTIMES) + " (default: all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        setups = []
        for runtime in args.runtimes or RUNTIMES:
            if runtime not in RUNTIMES:
                parser.error("unknown runtime %r" % runtime)
            setup = Setup(runtime, work)
            env = runtime_environment("127.0.0.1:9001", setup.handler, setup.task_root)
            print("command: %s" % " ".join(setup.command(env, False)))
            setups.append(setup)
        bench(setups, args.runs, args.baseline)

if __name__ == "__main__":
    main()
