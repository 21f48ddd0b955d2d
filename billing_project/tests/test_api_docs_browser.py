"""/api/docs/ in a real browser with the network closed: Swagger UI renders from our own static files.

Debian's Chromium and chromedriver (`scripts/ensure-browser.sh`, run by `make test`, installs them).
Only loopback is reachable: every host name resolves to nothing except the one the page is served
under, mapped to 127.0.0.1. That name is not `localhost` on purpose: Swagger UI skips some of its
outside requests (the validator badge) for local pages, and a page served to the world must not make
them either. Chromium's own log of network requests proves nothing else was asked for.
"""

import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DOCS_HOST = "docs.billing.test"


@pytest.fixture
def browser(tmp_path):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run scripts/ensure-browser.sh (make test does)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                 f"--host-resolver-rules=MAP {DOCS_HOST} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def _requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_swagger_ui_renders_every_operation_offline_from_our_own_files(browser, live_server, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, DOCS_HOST]
    port = urlsplit(live_server.url).port
    browser.get(f"http://{DOCS_HOST}:{port}/api/docs/")

    WebDriverWait(browser, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 35)
    paths = {e.get_attribute("data-path") for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/api/v1/usage/events/", "/api/v1/invoices/{id}/html/", "/api/v1/credits/balance/"} <= paths
    assert browser.find_elements(By.CSS_SELECTOR, "#operations-v1-v1_usage_events_create")

    urls = _requested_urls(browser)
    assert any(u.endswith("/swagger-ui-bundle.js") for u in urls)
    assert any("/api/schema/" in u for u in urls)
    # data:, blob: and Chromium's own chrome:// pages never leave the machine; anything on the wire must.
    on_the_wire = [u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss", "ftp")]
    assert on_the_wire
    assert [u for u in on_the_wire if urlsplit(u).hostname != DOCS_HOST] == []
