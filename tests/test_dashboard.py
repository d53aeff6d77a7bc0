"""The coordinators' dashboard in a real headless Chromium (Debian's, driven through chromedriver).

`make test` installs chromium and chromium-driver when they are missing; without them these tests
fail, they do not skip. `python -m tests.test_dashboard --screenshot docs/dashboard.png` saves the
README's screenshot of the demo district.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from tests.test_stats import known, story  # noqa: F401  (fixtures: the small district with known outcomes)

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-dev-shm-usage", "--lang=zh-CN")
PERIOD = {"from": "2026-03-01", "to": "2026-04-30"}


@contextlib.contextmanager
def serving(app):
    """The app on a real HTTP server on a free loopback port, in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


@contextlib.contextmanager
def chromium(width=1280, height=900, downloads: Path | None = None):
    for path in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(path), f"{path} is missing: `make test` installs Debian's chromium and chromium-driver"
    with tempfile.TemporaryDirectory(prefix="yishitang-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        if downloads is not None:
            options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                      "download.prompt_for_download": False})
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        try:
            if width < 600:  # a desktop window is never that narrow: emulate the phone's screen
                driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                       {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True})
            if downloads is not None:
                driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
            yield driver
        finally:
            driver.quit()


@pytest.fixture(scope="module")
def downloads():
    with tempfile.TemporaryDirectory(prefix="yishitang-downloads-") as folder:
        yield Path(folder)


@pytest.fixture(scope="module")
def browser(downloads):
    with chromium(downloads=downloads) as driver:
        yield driver


@pytest.fixture
def server(app):
    with serving(app) as url:
        yield url


def wait(driver, condition, timeout=10, message=""):
    try:
        # the page redraws whole parts: an element may go stale between finding and reading it
        return WebDriverWait(driver, timeout, poll_frequency=0.05,
                             ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out: {message}") from None


def text(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text


def percent(rate):
    from yishitang.stats.export import percent as as_percent

    return "—" if rate is None else as_percent(rate) + "%"


def log_in(driver, base, username, password):
    driver.get(f"{base}/dashboard")
    driver.execute_script("sessionStorage.clear()")
    driver.get(f"{base}/dashboard")
    wait(driver, lambda d: d.find_element(By.ID, "login-form").is_displayed(), message="login form")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()


def set_period(driver, date_from, date_to):
    driver.execute_script("""
        for (const [id, value] of [["from", arguments[0]], ["to", arguments[1]]]) {
          const input = document.getElementById(id);
          input.value = value;
          input.dispatchEvent(new Event("change"));
        }""", date_from, date_to)


def shown_period(driver):
    return text(driver, "#scope-period")


def table(driver):
    rows = driver.find_elements(By.CSS_SELECTOR, "#rows-table tbody tr")
    return [[cell.text for cell in row.find_elements(By.CSS_SELECTOR, "td")] for row in rows]


def test_log_in_read_the_figures_switch_grouping_and_download_the_csv(
        app, client, login, people, known, server, browser, downloads):
    coordinator = people["district_coordinator"]
    log_in(browser, server, coordinator.username, "secret-pass-1")
    wait(browser, lambda d: text(d, "#kpis [data-field=received] .value") != "", message="figures after sign-in")
    assert "联络员" in text(browser, "#who-name")

    set_period(browser, PERIOD["from"], PERIOD["to"])
    wait(browser, lambda d: "2026-03-01 至 2026-04-30" in shown_period(d) and
         text(d, "#kpis [data-field=received] .value") == "11", message="figures of the period")
    api = client.get("/api/v1/stats/overview", query_string=PERIOD, headers=login(coordinator)).get_json()
    totals = api["totals"]
    assert text(browser, "#scope-name") == "示范区"
    for rate in ("response_rate", "meeting_rate", "closure_rate", "satisfaction_rate"):
        assert text(browser, f"#kpis [data-field={rate}] .value") == percent(totals[rate]), rate
    assert text(browser, "#kpis [data-field=response_rate] .detail") == "7/9"
    assert text(browser, "#kpis [data-field=median_days_to_close] .value").startswith("8.5")
    for field in ("overdue_open", "escalated", "supervised"):
        assert text(browser, f"#kpis [data-field={field}] .value").split()[0] == str(totals[field]), field
    assert [row[0] for row in table(browser)] == [row["name"] for row in api["rows"]] == ["东湖街道", "西山镇"]
    assert table(browser)[0][2].startswith(percent(api["rows"][0]["response_rate"]))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#rate-charts svg rect")) >= 4  # a bar per group and rate
    assert len(browser.find_elements(By.CSS_SELECTOR, "#trend svg path")) == 4  # one line per rate

    # the grouping switch
    browser.find_element(By.CSS_SELECTOR, "#group-by input[value=studio] + span").click()
    by_studio = client.get("/api/v1/stats/overview", query_string={**PERIOD, "group_by": "studio"},
                           headers=login(coordinator)).get_json()
    assert [str(row["received"]) for row in by_studio["rows"]] == ["5", "3", "3"]
    wait(browser, lambda d: text(d, "#rows-table thead th") == "委员工作室" and
         [row[:2] for row in table(d)] == [[row["name"], str(row["received"])] for row in by_studio["rows"]],
         message="studio grouping")

    # the CSV download: the very file the API serves
    browser.find_element(By.ID, "export-csv").click()
    name = "示范区议题统计_2026-03-01_2026-04-30.csv"
    wait(browser, lambda d: (downloads / name).exists() and (downloads / name).stat().st_size > 0, message="CSV file")
    expected = client.get("/api/v1/stats/overview.csv", query_string={**PERIOD, "group_by": "studio"},
                          headers=login(coordinator)).get_data()
    assert (downloads / name).read_bytes() == expected
    assert (downloads / name).read_bytes().decode("utf-8-sig").splitlines()[0].startswith("委员工作室,代码,收到议题,答复率(%)")

    # the overdue list links to the issue
    overdue = client.get("/api/v1/issues", query_string={"overdue": 1, "region": "211104",
                                                         "status": "submitted,accepted,scheduled,consulted,in_progress,resolved"},
                         headers=login(coordinator)).get_json()
    assert len(overdue) == 4  # E, F, I and L (from February: the list is not limited to the period)
    wait(browser, lambda d: [a.text.split()[0] for a in d.find_elements(By.CSS_SELECTOR, "#overdue-list a")]
         == [issue["number"] for issue in overdue], message="overdue list")
    browser.find_element(By.CSS_SELECTOR, "#overdue-list a").click()
    wait(browser, lambda d: d.find_element(By.ID, "issue-view").is_displayed() and
         "办理过程" in text(d, "#issue"), message="issue detail")
    assert browser.current_url.split("#")[1].startswith("issue/")
    assert "超期" in text(browser, "#issue .facts")

    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors  # no CSP violation, no failed script


def test_the_page_fits_a_phone_and_refuses_non_staff(app, people, server, downloads):
    with chromium(width=375, height=812) as phone:
        log_in(phone, server, people["member"].username, "secret-pass-1")
        wait(phone, lambda d: d.find_element(By.ID, "login-error").is_displayed(), message="refusal")
        assert "不是联络员或管理员" in text(phone, "#login-error")
        log_in(phone, server, people["coordinator"].username, "secret-pass-1")
        wait(phone, lambda d: text(d, "#kpis [data-field=received] .value") != "", message="figures on a phone")
        assert text(phone, "#scope-name") == "东湖街道"
        assert phone.execute_script("return window.innerWidth") == 375
        wide = phone.execute_script("return document.documentElement.scrollWidth")
        assert wide <= 375, f"the page is {wide} px wide on a 375 px phone"


def test_dashboard_headers_keep_the_page_safe(client):
    page = client.get("/dashboard")
    assert page.status_code == 200 and "工作人员登录" in page.get_data(as_text=True)
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in page.get_data(as_text=True) and "style=" not in page.get_data(as_text=True)
    script = client.get("/dashboard/static/dashboard.js")
    assert script.status_code == 200 and script.headers["X-Frame-Options"] == "DENY"
    assert "//cdn" not in script.get_data(as_text=True) and "http" not in script.get_data(as_text=True).replace(
        "http://www.w3.org/2000/svg", "")


# --- the README's screenshot ---------------------------------------------------------------------------

def screenshot(path: Path, phone_path: Path | None = None) -> None:
    """The demo district with a year of issues, as the district coordinator sees it."""
    from yishitang import create_app
    from yishitang.config import Settings
    from yishitang.db import utcnow
    from yishitang.devtools.demo import COORDINATOR_PASSWORD, DISTRICT_CODE, seed_demo
    from yishitang.devtools.embedded import EmbeddedDatabase
    from yishitang.devtools import histories as demo
    from yishitang.stats import jobs

    database = EmbeddedDatabase(":memory:").start()
    try:
        app = create_app(Settings.from_env(env={}, testing=True, mongodb_uri=database.uri))
        now = utcnow()
        with app.app_context():
            seed_demo(progress=False)
            start = dt.datetime(now.year, 1, 1, tzinfo=dt.timezone.utc)
            demo.seed_issues(700, region_code=DISTRICT_CODE, start=start, end=now, now=now, seed=2026, duplicates=15,
                             settings=app.config["SETTINGS"])
            jobs.refresh_rollups(now)
        with serving(app) as base:
            for target, width in ((path, 1280), (phone_path, 390)):
                if target is None:
                    continue
                with chromium(width=width, height=900) as driver:
                    log_in(driver, base, "coord-district", COORDINATOR_PASSWORD)
                    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#overdue-list li a")) > 0,
                         timeout=30, message="demo figures")
                    time.sleep(0.5)
                    height = driver.execute_script("return document.documentElement.scrollHeight")
                    driver.set_window_size(width, height + 120)
                    time.sleep(0.5)
                    driver.save_screenshot(str(target))
                    print(f"wrote {target} ({width} px wide)")
    finally:
        database.stop()


if __name__ == "__main__":  # python -m tests.test_dashboard --screenshot docs/dashboard.png [--phone out.png]
    import argparse

    parser = argparse.ArgumentParser(description="save the dashboard screenshot of the demo district")
    parser.add_argument("--screenshot", type=Path, default=Path("docs/dashboard.png"))
    parser.add_argument("--phone", type=Path)
    arguments = parser.parse_args()
    arguments.screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot(arguments.screenshot, arguments.phone)
