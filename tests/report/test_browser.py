"""The report in a real browser: headless Chromium opens it from disk with the network off, every
chart draws, nothing is logged as an error, no request leaves the page, and the table sorts and filters.

Needs Chromium and its driver (Debian: apt-get install chromium chromium-driver) and selenium (the dev
extra). With REPORT_SCREENSHOT=docs/report.png set, the screenshot is kept there too.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import invoke, succeeded, tiny_config, write_yaml

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
STARTUP_SECONDS = 300  # a busy 2-core machine can take long to start a browser and draw; the waits end on events
CHARTS = {"against": ".scatterlayer .trace path.js-line", "heatmap": ".heatmaplayer image",
          "curves": ".scatterlayer .trace path.js-line", "updates": ".scatterlayer .trace path.js-line",
          "parallel": ".parcoords .y-axis", "lr-find-0": ".scatterlayer .trace path.js-line"}
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")

missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).is_file()]
pytestmark = pytest.mark.skipif(bool(missing), reason=f"no browser to test the report in: {', '.join(missing)} "
                                "not installed (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A small sweep (one lr diverges) and an lr-find, reported: (the HTML file, runs.csv)."""
    folder = tmp_path_factory.mktemp("browser")
    config = write_yaml(folder, tiny_config(name="grid", train={"epochs": 4, "log_steps": True}))
    succeeded(invoke("sweep", config, "--grid", "optim.batch_size=16,32", "--grid", "optim.lr=0.05,0.3,1000000",
                     "--seeds", 2, "--out", folder / "out"))
    succeeded(invoke("lr-find", config, "--steps", 40, "--out", folder / "out"))
    succeeded(invoke("report", folder / "out", "-o", folder / "report.html"))
    return folder / "report.html", pd.read_csv(folder / "out" / "grid" / "runs.csv", dtype={"run_id": str})


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                     "--enable-unsafe-swiftshader",  # software WebGL for the parallel coordinates
                     "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"):  # a dead proxy: no network
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(STARTUP_SECONDS)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, "latency": 0,
                                                                "downloadThroughput": -1, "uploadThroughput": -1})
    yield driver
    driver.quit()


def rows_shown(driver) -> list[dict[str, str]]:
    return driver.execute_script("""
        const names = Array.from(document.querySelectorAll('#runs-table th')).map(th => th.textContent);
        return Array.from(document.querySelectorAll('#runs-table tbody tr')).map(tr => Object.fromEntries(
            Array.from(tr.children).map((td, i) => [names[i], td.textContent])));""")


def click_header(driver, name: str) -> None:
    from selenium.webdriver.common.by import By

    next(th for th in driver.find_elements(By.CSS_SELECTOR, "#runs-table th") if th.text.strip(" ▲▼") == name).click()


def open_drawn(driver, page: Path) -> None:
    """Open the page and wait until every chart has drawn; no error logged."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(page.as_uri())
    WebDriverWait(driver, STARTUP_SECONDS).until(
        lambda driver: driver.execute_script("return document.body.getAttribute('data-ready')") == "true")
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


def test_the_report_draws_offline_and_its_table_sorts(report, browser, tmp_path):
    from selenium.webdriver.common.by import By

    page, runs = report
    open_drawn(browser, page)
    for chart, drawn_marks in CHARTS.items():
        marks = browser.execute_script("return document.querySelectorAll(arguments[0]).length",
                                       f"#chart-{chart} {drawn_marks}")
        assert marks > 0, f"{chart}: nothing drawn ({drawn_marks})"
    assert browser.execute_script("return Array.from(document.querySelectorAll('#chart-parallel canvas'))"
                                  ".some(canvas => canvas.width > 0 && canvas.height > 0)")

    done = runs[runs["status"] == "completed"]
    means = done.groupby(["optim.batch_size", "optim.lr"])["test_error"].mean()
    click_header(browser, "lr")
    click_header(browser, "test_error")  # ascending: the best first
    rows = rows_shown(browser)
    assert (int(rows[0]["batch_size"]), float(rows[0]["lr"])) == means.idxmin(), rows[0]
    assert [row["status"] for row in rows][-2:] == ["diverged", "diverged"]  # failures stay last
    click_header(browser, "test_error")  # descending: the worst completed first
    assert (int(rows_shown(browser)[0]["batch_size"]), float(rows_shown(browser)[0]["lr"])) == means.idxmax()
    browser.find_element(By.ID, "runs-filter").send_keys("diverged")
    assert {row["status"] for row in rows_shown(browser)} == {"diverged"}

    requests = [json.loads(entry["message"])["message"] for entry in browser.get_log("performance")]
    urls = [event["params"]["request"]["url"] for event in requests if event["method"] == "Network.requestWillBeSent"]
    assert urls and all(url.startswith(LOCAL_SCHEMES) for url in urls), urls

    browser.find_element(By.ID, "runs-filter").clear()
    browser.set_window_size(1400, browser.execute_script("return document.body.scrollHeight"))
    screenshot = tmp_path / "report.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    if os.environ.get("REPORT_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["REPORT_SCREENSHOT"])


@pytest.fixture(scope="module")
def search_report(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A random search with successive halving, reported: (the HTML file, runs.csv)."""
    folder = tmp_path_factory.mktemp("browser_search")
    config = tiny_config(name="search")
    config["train"] = {"epochs": 9, "val_fraction": 0.25}
    succeeded(invoke("sweep", write_yaml(folder, config), "--method", "random", "--trials", 9, "--prune", "asha",
                     "--grid", "optim.lr=loguniform(1e-3,0.5)", "--out", folder / "out"))
    succeeded(invoke("report", folder / "out" / "search", "-o", folder / "search.html"))
    return folder / "search.html", pd.read_csv(folder / "out" / "search" / "runs.csv")


def test_a_search_report_draws_the_best_so_far_and_sorts_the_chosen_trial_first(search_report, browser):
    page, runs = search_report
    open_drawn(browser, page)
    stars = browser.execute_script("return document.querySelectorAll(arguments[0]).length",
                                   "#chart-best-so-far .scatterlayer .trace .points path")
    assert stars >= len(runs) * 2  # a dot per trial in each panel, the chosen one among them
    click_header(browser, "val_error")  # ascending: the lowest validation error first
    first = rows_shown(browser)[0]
    done = runs[runs["status"] == "completed"]
    chosen = done.loc[done["val_error"].idxmin()]
    assert first["trial"] == f"★ {chosen['trial']}" and first["status"] == "completed", first
    assert browser.execute_script("return document.querySelector('#runs-table tbody tr').className") == "chosen"
