"""The reports in a real browser: headless Chromium (Debian's ``chromium`` package) opens each
report and we assert no console errors, every image decoded (naturalWidth > 0), every section
present, and save a full-page screenshot.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so the test needs only the
standard library: no network port, no websocket package. Where Chromium is not installed
the tests are skipped with a message saying how to install it, except under ``CI=true``,
where a missing Chromium fails them.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from mlpkit.report.page import CSP
from mlpkit.report.run_report import REPORT_SECTIONS, RUN_SECTIONS, build_report
from mlpkit.runs.folder import load_run
from mlpkit.seed import build_seed_report, seed_task_keys
from report_fakes import write_fake_reproduce, write_fake_run

TIMEOUT_S = 60.0


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


CHROMIUM = find_chromium()
INSTALL_HINT = (
    "chromium not installed: apt-get install chromium (Debian/Ubuntu; or put chromium, chromium-browser "
    "or google-chrome on PATH); the browser tests of the HTML reports need it"
)


def require_chromium(*, ci: bool) -> str:
    """The browser's path. Without one the tests skip, except in CI (``CI=true``), where a
    missing browser is a failure: CI must never look green without having opened the pages."""
    if CHROMIUM is not None:
        return CHROMIUM
    if ci:
        pytest.fail(f"CI=true but {INSTALL_HINT}", pytrace=False)
    pytest.skip(INSTALL_HINT)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


class Browser:
    """Headless Chromium under the DevTools protocol on a pipe; one page at a time."""

    def __init__(self, profile: Path, *, width: int = 1280, height: int = 900) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_fds() -> None:  # in the child: its fd 3 reads our commands, fd 4 writes replies
            r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.log = open(profile.with_suffix(".stderr.txt"), "wb")
        self.proc = subprocess.Popen(
            [
                require_chromium(ci=in_ci()),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--disable-extensions",
                "--mute-audio",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            pass_fds=(3, 4, to_child_r, from_child_w),
            preexec_fn=wire_fds,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=True,
        )

    # -- protocol
    def _recv(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium closed the pipe (exit code {self.proc.poll()})")
            self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: bool = False) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode("utf-8") + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self._recv(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            event = self._recv(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}, session=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    # -- what the tests use
    def open(self, path: Path) -> None:
        self.events.clear()
        self.call("Page.navigate", {"url": path.resolve().as_uri()}, session=True)
        self.wait_for("Page.loadEventFired")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors (failed loads, CSP) so far."""
        self.evaluate("1")  # drain events that arrived up to now
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
            elif e.get("method") == "Runtime.exceptionThrown":
                out.append(
                    "exception: "
                    + str(
                        p["exceptionDetails"].get("exception", {}).get("description")
                        or p["exceptionDetails"].get("text")
                    )
                )
            elif e.get("method") == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(f"log ({p['entry'].get('source')}): {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out

    def images(self) -> list[dict[str, Any]]:
        """Every <img>: whether it decodes, and its natural size."""
        return self.evaluate("""Promise.all(Array.from(document.images).map(async (img) => {
            let decoded = true;
            try { await img.decode(); } catch (e) { decoded = false; }
            return {alt: img.alt, decoded, complete: img.complete, width: img.naturalWidth,
                    height: img.naturalHeight};
        }))""")

    def section_ids(self) -> list[str]:
        return self.evaluate("Array.from(document.querySelectorAll('section[id]')).map(s => s.id)")

    def screenshot(self, path: Path) -> Path:
        shot = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    require_chromium(ci=in_ci())
    b = Browser(tmp_path_factory.mktemp("chromium") / "profile")
    yield b
    b.close()


def screenshot_dir(tmp_path: Path) -> Path:
    """$MLPKIT_SCREENSHOTS if set (e.g. CI artifacts), else the test's temporary folder."""
    target = Path(os.environ.get("MLPKIT_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def assert_page_ok(browser: Browser, page: Path, sections: list[str], shot: Path) -> list[dict[str, Any]]:
    browser.open(page)
    images = browser.images()
    ids = set(browser.section_ids())
    browser.screenshot(shot)
    assert browser.errors() == []
    assert images, "no images on the page"
    broken = [i for i in images if not (i["decoded"] and i["complete"] and i["width"] > 0 and i["height"] > 0)]
    assert broken == []
    assert [s for s in sections if s not in ids] == []
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot: {shot}")
    return images


def test_run_report_in_chromium(browser, tmp_path):
    a = write_fake_run(tmp_path / "a", "task3c")
    b = write_fake_run(tmp_path / "b", "task4a", val_accuracy=0.93, early_stop_step=320, seed=1)
    out = build_report([a, b], tmp_path / "report.html")
    sections = list(REPORT_SECTIONS) + [f"{s}-{k}" for s in ("run",) + RUN_SECTIONS for k in (1, 2)]
    images = assert_page_ok(browser, out, sections, screenshot_dir(tmp_path) / "report.png")
    digits = sum(min(48, len(load_run(d).predictions()["misclassified_index"])) for d in (a, b))
    assert sum(1 for i in images if (i["width"], i["height"]) == (28, 28)) == digits > 0
    # the HTML alone, without its _files folder, shows everything too
    alone = tmp_path / "alone" / "report.html"
    alone.parent.mkdir()
    alone.write_bytes(out.read_bytes())
    assert_page_ok(browser, alone, sections, tmp_path / "alone.png")


def test_seed_report_in_chromium(browser, tmp_path):
    root = write_fake_reproduce(tmp_path / "repro")
    out = build_seed_report(root, root / "report.html")
    sections = ["overview"] + [f"task-{k}" for k in seed_task_keys()]
    images = assert_page_ok(browser, out, sections, screenshot_dir(tmp_path) / "seed-report.png")
    assert len(images) == 16  # loss and accuracy for each of the eight tasks with a figure


def test_harness_catches_errors_and_broken_images(browser, tmp_path):
    """The checks above would fail on a page with a console error or an undecodable image."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>'
        '<section id="x"></section><img alt="broken" src="data:image/png;base64,AAAA">'
        '<img alt="missing" src="missing.png"><script>console.error("boom")</script></body></html>',
        encoding="utf-8",
    )
    browser.open(page)
    images = {i["alt"]: i for i in browser.images()}
    assert images["broken"]["width"] == 0 and not images["broken"]["decoded"]
    assert images["missing"]["width"] == 0
    errors = browser.errors()
    assert any("boom" in e for e in errors)
    assert any("missing.png" in e for e in errors), errors
    # the reports' Content-Security-Policy turns any non-embedded resource into an error
    page = tmp_path / "csp.html"
    page.write_text(
        f'<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<link rel="icon" href="data:,"></head><body><img alt="outside" src="outside.png"></body></html>',
        encoding="utf-8",
    )
    (tmp_path / "outside.png").write_bytes(
        base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==")
    )
    browser.open(page)
    assert browser.images()[0]["width"] == 0
    assert any("Content Security Policy" in e for e in browser.errors()), browser.errors()


def test_missing_chromium_skips_locally_and_fails_in_ci(monkeypatch):
    """No browser: a skip on a developer's machine, a failure (saying how to install it) in CI."""
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", None)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        require_chromium(ci=False)
    with pytest.raises(pytest.fail.Exception, match="CI=true but chromium not installed: apt-get install chromium"):
        require_chromium(ci=True)
    monkeypatch.setenv("CI", "true")
    assert in_ci()
    monkeypatch.setenv("CI", "false")
    assert not in_ci()
