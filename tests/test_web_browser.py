"""``mlpkit serve`` in a real browser: Debian's headless ``chromium`` driven by Selenium through
``chromium-driver``, against the app served by uvicorn on 127.0.0.1 (a free port, in a thread).

A model is trained here on real MNIST (task3c, 3 epochs: about 95% on validation). The test
draws a vertical stroke and a closed loop with pointer actions and reads "1" and "0" off the
page; the probability bars, the 28x28 preview and the heat strips must have rendered; the runs
page lists the run and opens its report; a run that ``mlpkit train`` is writing in another
process gains points on the live page. The browser log must hold no error. Screenshots go to
``$MLPKIT_SCREENSHOTS`` (else the test's temporary folder).

Without chromium, chromedriver or Selenium the tests skip with how to install them, except
under ``CI=true``, where they fail.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from mlpkit.web.app import create_app
from mlpkit.web.models import ModelSet
from mlpkit.web.server import RunningServer, bind, start_in_thread
from report_fakes import write_fake_run
from test_report_browser import CHROMIUM, in_ci

CHROMEDRIVER = shutil.which("chromedriver") or next(
    (p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if Path(p).exists()), None
)
INSTALL_HINT = (
    "the web app's browser tests need chromium, chromium-driver (apt-get install chromium chromium-driver)"
    " and selenium (pip install -e '.[test]')"
)
WAIT_S = 30.0
TRAIN = ["task3c", "--set", "epochs=3", "--no-progress"]


def _require_browser() -> None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing = True
    else:
        missing = CHROMIUM is None or CHROMEDRIVER is None
    if missing:
        if in_ci():
            pytest.fail(f"CI=true but {INSTALL_HINT}", pytrace=False)
        pytest.skip(INSTALL_HINT)


def screenshot_dir(tmp_path: Path) -> Path:
    target = Path(os.environ.get("MLPKIT_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def mlpkit(*args: str, mnist: Path) -> subprocess.Popen:
    env = dict(os.environ, MLPKIT_DATA=str(mnist))
    return subprocess.Popen([sys.executable, "-m", "mlpkit", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


@pytest.fixture(scope="module")
def runs(mnist_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("web-browser") / "runs"
    proc = mlpkit("train", *TRAIN, "--out", str(root / "task3c-small"), mnist=mnist_path)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    write_fake_run(root / "fake-best", "task4a", val_accuracy=0.99)  # a second row to sort and compare
    return root


@pytest.fixture(scope="module")
def server(runs: Path) -> Iterator[RunningServer]:
    sock = bind("127.0.0.1", 0)
    app = create_app(ModelSet.load([runs / "task3c-small"]), runs=runs, port=sock.getsockname()[1], poll_s=0.2)
    running = start_in_thread(app, sock)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000",
                "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    browser.set_page_load_timeout(WAIT_S)
    yield browser
    browser.quit()


def wait_for(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = WAIT_S) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message=f"waited for {what}")


def errors(driver: Any) -> list[str]:
    """The browser log's errors (console.error, uncaught exceptions, failed loads, CSP refusals)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def stroke(driver: Any, canvas: Any, points: list[tuple[float, float]]) -> None:
    """Press at the first point (offsets from the canvas centre, CSS pixels), move through the
    others, release: pointerdown, pointermove..., pointerup on the canvas."""
    from selenium.webdriver.common.action_chains import ActionChains

    actions = ActionChains(driver, duration=10)
    actions.move_to_element_with_offset(canvas, int(points[0][0]), int(points[0][1])).click_and_hold()
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        actions.move_by_offset(int(round(x1)) - int(round(x0)), int(round(y1)) - int(round(y0)))
    actions.release().perform()


def read_answer(driver: Any, expected: str) -> dict[str, Any]:
    wait_for(driver, lambda d: d.find_element("id", "label").text == expected, f"the label {expected!r}")
    return driver.execute_script(
        """
        const bars = Array.from(document.querySelectorAll('#bars .bar'));
        const preview = document.getElementById('preview');
        const px = preview.getContext('2d').getImageData(0, 0, preview.width, preview.height).data;
        let ink = 0; for (let i = 0; i < px.length; i += 4) ink += px[i] > 0 ? 1 : 0;
        const strips = Array.from(document.querySelectorAll('#layers canvas.strip'));
        return {
          bars: bars.map(b => ({label: b.dataset.label, best: b.classList.contains('best'),
                               width: b.querySelector('.bar-fill').getBoundingClientRect().width,
                               track: b.querySelector('.bar-track').getBoundingClientRect().width})),
          preview: {w: preview.width, h: preview.height, ink: ink, shown: preview.getBoundingClientRect().width},
          strips: strips.map(s => ({units: s.width * s.height, shown: s.getBoundingClientRect().width})),
        };
        """
    )


def test_drawing_a_one_and_a_zero(driver, server, tmp_path):
    shots = screenshot_dir(tmp_path)
    driver.get(server.url + "/")
    canvas = driver.find_element("id", "pad")
    stroke(driver, canvas, [(2, -100 + 10 * i) for i in range(21)])  # a vertical stroke, top to bottom
    one = read_answer(driver, "1")
    driver.save_screenshot(str(shots / "web-draw-1.png"))
    assert [b["label"] for b in one["bars"]] == [str(k) for k in range(10)]
    best = next(b for b in one["bars"] if b["best"])
    assert best["label"] == "1" and best["width"] > 0.5 * best["track"] > 0
    assert (one["preview"]["w"], one["preview"]["h"]) == (28, 28) and 20 < one["preview"]["ink"] < 300
    assert one["preview"]["shown"] >= 100  # drawn large, pixelated
    assert [s["units"] >= 64 for s in one["strips"]] == [True] and one["strips"][0]["shown"] > 50

    driver.find_element("id", "clear").click()
    wait_for(driver, lambda d: d.find_element("id", "label").text == "?", "the page to clear")
    loop = [(70 * math.sin(2 * math.pi * k / 40), -100 * math.cos(2 * math.pi * k / 40)) for k in range(41)]
    stroke(driver, canvas, loop)  # a closed loop
    zero = read_answer(driver, "0")
    driver.save_screenshot(str(shots / "web-draw-0.png"))
    assert next(b for b in zero["bars"] if b["best"])["label"] == "0"
    assert zero["preview"]["ink"] > one["preview"]["ink"]
    assert errors(driver) == []


def test_the_draw_page_fits_a_phone(driver, server, tmp_path):
    driver.set_window_size(390, 844)
    try:
        driver.get(server.url + "/")
        canvas = driver.find_element("id", "pad")
        stroke(driver, canvas, [(0, -90 + 9 * i) for i in range(21)])
        read_answer(driver, "1")
        width = driver.execute_script("return document.documentElement.scrollWidth")
        inner = driver.execute_script("return window.innerWidth")
        driver.save_screenshot(str(screenshot_dir(tmp_path) / "web-draw-phone.png"))
        assert width <= inner  # nothing sticks out sideways
        assert canvas.rect["width"] <= inner
    finally:
        driver.set_window_size(1280, 1000)
    assert errors(driver) == []


def test_runs_page_lists_the_run_and_opens_its_report(driver, server, tmp_path):
    shots = screenshot_dir(tmp_path)
    driver.get(server.url + "/runs")

    def names() -> list[str]:
        return [r.get_attribute("data-name") for r in driver.find_elements("css selector", "#runs tbody tr")]

    assert sorted(names()) == ["fake-best", "task3c-small"]
    row = driver.find_element("css selector", "#runs tbody tr[data-name='task3c-small']")
    assert "finished" in row.text and "0.95" in row.text
    accuracy = driver.find_element("xpath", "//table[@id='runs']//th[normalize-space()='val accuracy']")
    accuracy.click()  # highest first
    assert names() == ["fake-best", "task3c-small"]
    accuracy.click()  # reversed
    assert names() == ["task3c-small", "fake-best"]
    driver.save_screenshot(str(shots / "web-runs.png"))
    row = driver.find_element("css selector", "#runs tbody tr[data-name='task3c-small']")
    row.find_element("link text", "report").click()
    wait_for(driver, lambda d: "mlpkit report" in d.title, "the report page")
    images = driver.execute_script("return Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
    assert images and all(images)
    driver.save_screenshot(str(shots / "web-report.png"))
    driver.get(server.url + "/runs")
    for box in driver.find_elements("css selector", "input.pick"):
        box.click()
    driver.find_element("id", "compare").click()
    wait_for(driver, lambda d: "/compare?run=" in d.current_url and "mlpkit report" in d.title, "compare")
    assert "task3c" in driver.title and "task4a" in driver.title  # both runs on one page
    driver.save_screenshot(str(shots / "web-compare.png"))
    assert errors(driver) == []


def test_a_training_run_gains_points_on_the_live_page(driver, server, runs, mnist_path, tmp_path):
    folder = runs / "live-run"
    proc = mlpkit("train", "task3c", "--set", "epochs=30", "--no-progress", "--out", str(folder), mnist=mnist_path)
    try:
        deadline = time.monotonic() + 120
        while not (folder / "progress.json").exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.2)
        driver.get(server.url + "/live/live-run")

        def points(d: Any) -> int:
            return int(d.find_element("id", "loss-chart").get_attribute("data-points") or 0)

        first = wait_for(driver, lambda d: points(d) > 0 and points(d), "the first points", timeout=60)
        wait_for(driver, lambda d: points(d) > first, "more points while training", timeout=90)
        assert proc.poll() is None  # still training: the points came live
        assert driver.find_element("id", "status").text == "running"
        assert " of " in driver.find_element("id", "step").text
        assert driver.find_element("id", "eta").text.endswith("s")
        assert "checks without improvement" in driver.find_element("id", "early").text
        driver.save_screenshot(str(screenshot_dir(tmp_path) / "web-live.png"))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert errors(driver) == []


def test_a_finished_run_leaves_a_finished_progress_file(runs):
    """What the live page read while the run trained ends as the run's own numbers."""
    import json

    folder = runs / "task3c-small"
    progress = json.loads((folder / "progress.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    history = json.loads((folder / "history.json").read_text())
    assert progress["status"] == "finished" and progress["step"] == progress["total_steps"] == metrics["steps"]
    assert progress["validation"]["val_loss"] == history["validation"]["val_loss"]
    assert progress["train"]["step"][-1] == metrics["steps"]
