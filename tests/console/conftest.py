"""Harness for the console suite.

Starts the real `kindling` binary (`$KINDLING_BIN`, else `<repo>/target/debug/kindling`) on a free
port (the conformance suite's `KindlingServer`) and drives its web console in headless Chromium
through Selenium (Debian's `chromium` and `chromium-driver`). Screenshots go to
`$KINDLING_TEST_ARTIFACTS/console` (default `<repo>/target/test-artifacts/console`).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "conformance"))

import support  # noqa: E402

for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
    os.environ.pop(_var, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

SHARED_KEY = "AKIDCONSOLESHARED001"
SHARED_SECRET = "console-shared-secret-0123456789"


def _binary() -> Path:
    env = os.environ.get("KINDLING_BIN")
    return Path(env) if env else REPO / "target" / "debug" / "kindling"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    base = Path(os.environ.get("KINDLING_TEST_ARTIFACTS", REPO / "target" / "test-artifacts"))
    out = base / "console"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory):
    path = _binary()
    if not path.is_file():
        pytest.exit(f"kindling binary not found at {path}; build it with "
                    "`cargo build -p kindling-server` or set KINDLING_BIN", returncode=2)
    started: list[support.KindlingServer] = []
    logs = tmp_path_factory.mktemp("server-logs")

    def start(extra: list[str] | None = None):
        srv = support.KindlingServer(path, tmp_path_factory.mktemp("data"),
                                     logs / f"kindling-{len(started)}.log", extra_args=extra)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.kill()


@pytest.fixture(scope="session")
def server(server_factory):
    srv = server_factory()
    yield srv
    support.stop_cleanly(srv)


@pytest.fixture(scope="session")
def shared_server(server_factory, tmp_path_factory):
    creds = tmp_path_factory.mktemp("creds") / "credentials"
    creds.write_text(f"{SHARED_KEY} {SHARED_SECRET}\n")
    srv = server_factory(extra=["--shared", "--credentials", str(creds)])
    yield srv
    support.stop_cleanly(srv)


def aws(service: str, url: str, key: str = "test", secret: str = "test"):
    return boto3.client(service, endpoint_url=url, region_name=support.REGION,
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"total_max_attempts": 1}, read_timeout=60))


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.fail("the console suite needs Chromium and chromedriver (Debian: apt-get install "
                    "chromium chromium-driver; .ci/run installs them)")
    return browser, driver


def _start_driver(webdriver, Service, driver_path: str, opts, log: Path):
    """Starts chromedriver, up to twice more if it exits at start. Selenium picks chromedriver's
    port by binding a free one and closing it, then starts the driver on it: a connection made
    on the machine in between may take that port (chromedriver then exits with status 1, "port
    not available"). Its log goes to `log` and is shown when it still fails."""
    from selenium.common.exceptions import WebDriverException

    for attempt in range(3):
        try:
            return webdriver.Chrome(service=Service(driver_path, log_output=str(log)), options=opts)
        except WebDriverException as e:
            if "unexpectedly exited" not in str(e) or attempt == 2:
                try:
                    said = log.read_text(errors="replace")[-4000:]
                except OSError:
                    said = "<no log>"
                raise AssertionError(f"chromedriver did not start: {e}\nits log:\n{said}") from e


@pytest.fixture
def browser(artifacts, request):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--force-color-profile=srgb",
                "--disable-extensions", "--no-first-run"):
        opts.add_argument(arg)
    driver = _start_driver(webdriver, Service, driver_path, opts,
                           artifacts / f"chromedriver-{request.node.name}.log")
    driver.set_page_load_timeout(30)
    yield driver
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        driver.save_screenshot(str(artifacts / f"FAILED-{request.node.name}.png"))
        (artifacts / f"FAILED-{request.node.name}.log").write_text(
            "\n".join(str(e) for e in driver.get_log("browser")))
    driver.quit()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep
