"""The Java side of the tests, built once per session.

* Kindling's Java bootstrap, compiled the way Kindling compiles it (harness.build_java_runtime),
  plus its CDS archive (harness.create_cds_archive), so tests start the JVM as Kindling does.
* The test functions (java/functions) with the aws-lambda-java-core API (java/aws-lambda-java-core)
  and two event model classes (java/aws-lambda-java-events), compiled with javac --release 17, in
  the layouts a deployment package can take.
"""

import glob
import os
import shutil
import subprocess

import harness

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "java")


class Build:
    def __init__(self, runtime, app, functions, core_jar, greeter_jar, unit_classes, future):
        self.runtime = runtime
        self.future = future  # a function built against a Context with a method the runtime lacks
        self.unit_classes = unit_classes  # CodecCheck, next to the runtime's own classes
        self.app = app  # every class, unpacked at the root (a shaded jar as Lambda unzips it)
        self.functions = functions  # only example/*: the dependencies come as jars
        self.core_jar = core_jar
        self.greeter_jar = greeter_jar


class Artifact:
    """A placeholder in start_runtime's `files` for something from the session's Build."""

    def __init__(self, name, kind):
        self.name = name
        self.kind = kind  # "tree" or "file"

    def install(self, build, target):
        if build is None:
            raise ValueError("%s is only available to the java runtime" % self.name)
        source = getattr(build, self.name)
        if self.kind == "tree":
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(source, target)

    def __repr__(self):
        return "Artifact(%s)" % self.name


JAVA_APP = Artifact("app", "tree")
JAVA_FUTURE_APP = Artifact("future", "tree")
JAVA_FUNCTIONS = Artifact("functions", "tree")
JAVA_CORE_JAR = Artifact("core_jar", "file")
GREETER_JAR = Artifact("greeter_jar", "file")

# A class file version no JVM supports yet (Java 17 reads up to 61, Java 25 up to 69).
UNSUPPORTED_CLASS_VERSION = 100


def build(out_dir):
    javac = harness.javac_next_to(harness.JAVA) or shutil.which("javac")
    classes = os.path.join(out_dir, "fixtures")
    core = os.path.join(FIXTURES, "aws-lambda-java-core")
    sources = sorted(glob.glob(os.path.join(core, "**", "*.java"), recursive=True))
    for part in ("aws-lambda-java-events", "functions"):
        sources += sorted(glob.glob(os.path.join(FIXTURES, part, "**", "*.java"), recursive=True))
    # The compilations at once: javac start-up dominates and the machine has two cores.
    fixtures = subprocess.Popen([javac, "--release", "17", "-encoding", "UTF-8", "-nowarn", "-d", classes] + sources)
    future = os.path.join(out_dir, "future")
    future_sources = [path for path in glob.glob(os.path.join(core, "**", "*.java"), recursive=True)
                      if not path.endswith(os.sep + "Context.java")]
    future_sources += glob.glob(os.path.join(FIXTURES, "future-core", "**", "*.java"), recursive=True)
    future_sources += glob.glob(os.path.join(FIXTURES, "future-functions", "**", "*.java"), recursive=True)
    future_build = subprocess.Popen([javac, "--release", "17", "-encoding", "UTF-8", "-nowarn", "-d", future] + future_sources)
    runtime = harness.build_java_runtime(os.path.join(out_dir, "runtime"))
    unit = os.path.join(out_dir, "unit")
    subprocess.run(
        [javac, "--release", "17", "-encoding", "UTF-8", "-nowarn", "-cp", os.path.join(out_dir, "runtime", "classes"), "-d", unit]
        + glob.glob(os.path.join(FIXTURES, "unit", "kindling", "runtime", "*.java")),
        check=True,
    )
    if fixtures.wait() != 0 or future_build.wait() != 0:
        raise RuntimeError("compiling the Java test functions failed")
    runtime = harness.create_cds_archive(runtime, os.path.join(out_dir, "runtime", "kindling-java-runtime.jsa"))

    _bump_class_version(os.path.join(classes, "example", "Future.class"), UNSUPPORTED_CLASS_VERSION)
    app = os.path.join(out_dir, "app")
    shutil.copytree(classes, app, ignore=shutil.ignore_patterns("lib"))
    functions = os.path.join(out_dir, "functions", "example")
    shutil.copytree(os.path.join(classes, "example"), functions, ignore=shutil.ignore_patterns("lib"))
    core_classes = os.path.join(out_dir, "core")
    shutil.copytree(os.path.join(classes, "com"), os.path.join(core_classes, "com"))
    greeter = os.path.join(out_dir, "greeter")
    shutil.copytree(os.path.join(classes, "example", "lib"), os.path.join(greeter, "example", "lib"))
    return Build(
        runtime,
        app,
        os.path.dirname(functions),
        harness.write_jar(os.path.join(out_dir, "aws-lambda-java-core.jar"), core_classes),
        harness.write_jar(os.path.join(out_dir, "greeter.jar"), greeter),
        unit,
        future,
    )


def _bump_class_version(path, major):
    with open(path, "r+b") as handle:
        handle.seek(6)  # magic (4 bytes), minor version (2), then the major version (2)
        handle.write(major.to_bytes(2, "big"))
