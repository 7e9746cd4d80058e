"""The landing page of the real demo in a real browser: Debian's headless chromium, via Selenium.

The figures the browser shows must be /metrics' own, at a desktop and at a phone width, without
horizontal overflow on the phone. Screenshots are kept in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import base64
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.conftest import real_binary

from .exporter_process import ROOT, free_port, pinned_env

pytestmark = pytest.mark.integration

ARTIFACTS = ROOT / "test-artifacts"
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}
Figures = dict[tuple[str, str], float]
Texts = dict[tuple[str, str], str]


@pytest.fixture
def demo_url(tmp_path: Path, moment: int) -> Iterator[str]:
    """The running demo (its clock started at ``moment``), ready."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter", "demo", f"--web.listen-address=127.0.0.1:{port}"],
            env=pinned_env(moment, ticking=True),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, log_path.read_text()
                try:
                    if httpx.get(url + "/-/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "demo not ready:\n" + log_path.read_text()
                time.sleep(0.2)
            yield url
        finally:
            process.kill()
            process.wait()


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    """Headless chromium with the Debian chromedriver: never a driver downloaded."""
    chromium, chromedriver = real_binary("chromium"), real_binary("chromedriver")
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager: never a download
    options = Options()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(argument)
    # The browser keeps the real clock even when the suite runs under libfaketime: its timed
    # waits would hang on a faked monotonic clock (the page's figures come from the exporter).
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("FAKETIME") and k != "LD_PRELOAD"
    }
    service = Service(chromedriver, log_output=str(tmp_path / "chromedriver.log"), env=env)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


LIMIT_FIGURES = {
    "aicost_provider_limit_usd": "limit",
    "aicost_provider_limit_forecast_usd": "forecast",
}


def exposed(url: str) -> tuple[Figures, Figures, Figures]:
    """/metrics' month-to-date cost per (provider/account, billed|estimated), also for
    ("total", billed|estimated), each budget's utilization by (budget, period), and each provider
    limit and its forecast by (provider/account/project, limit|forecast)."""
    text = httpx.get(url + "/metrics", timeout=5).text
    values: dict[tuple[str, str], list[float]] = {}
    budgets: Figures = {}
    limits: Figures = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "aicost_budget_utilization_ratio":
                budgets[(labels["budget"], labels["period"])] = sample.value
            if sample.name in LIMIT_FIGURES:
                scope = labels.get("project") or labels.get("user_id") or ""
                key = f"{labels['provider']}/{labels['account']}/{scope}"
                limits[(key, LIMIT_FIGURES[sample.name])] = sample.value
            for figure in ("billed", "estimated"):
                if sample.name == f"aicost_{figure}_cost_usd_total":
                    key = f"{labels['provider']}/{labels['account']}"
                    values.setdefault((key, figure), []).append(sample.value)
                    values.setdefault(("total", figure), []).append(sample.value)
    return {key: math.fsum(v) for key, v in values.items()}, budgets, limits


def dollars(value: float) -> str:
    return f"${value:,.2f}"


def shown(driver: WebDriver) -> tuple[Figures, Figures, Figures, Texts]:
    """What the page shows: money figures, budget utilizations, provider limits, and each
    figure's text."""
    money: Figures = {}
    budgets: Figures = {}
    limits: Figures = {}
    texts: Texts = {}
    for element in driver.find_elements(By.CSS_SELECTOR, "[data-figure][data-value]"):
        figure = element.get_attribute("data-figure") or ""
        value = float(element.get_attribute("data-value") or "nan")
        account, budget = element.get_attribute("data-account"), element.get_attribute(
            "data-budget"
        )
        limit = element.get_attribute("data-limit")
        assert element.is_displayed(), (account or budget or limit, figure)
        if limit is not None:
            limits[(limit, figure)] = value
            texts[(limit, figure)] = element.text
        if account is not None and figure in ("billed", "estimated"):
            money[(account, figure)] = value
            texts[(account, figure)] = element.text
        elif budget is not None and figure == "utilization":
            periods = element.find_element(By.XPATH, "ancestor::*[@data-period]")
            key = (budget, periods.get_attribute("data-period") or "")
            budgets[key] = value
            texts[key] = element.text
    return money, budgets, limits, texts


def consistent_view(
    driver: WebDriver, url: str
) -> tuple[tuple[Figures, Figures, Figures], tuple[Figures, Figures, Figures, Texts]]:
    """/metrics and the page of one snapshot: the demo's clock runs and its polls publish, so
    the page is taken again until /metrics reads the same before and after it."""
    for _ in range(10):
        before = exposed(url)
        driver.get(url + "/")
        page = shown(driver)
        if exposed(url) == before:
            return before, page
    raise AssertionError("the demo published new figures during every page load")


@pytest.mark.parametrize("size", list(SIZES))
def test_landing_page_shows_the_metrics_figures(
    demo_url: str, browser: WebDriver, size: str
) -> None:
    width, height = SIZES[size]
    if size == "phone":
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True},
        )
    else:
        browser.set_window_size(width, height)
    (money, budgets, limits), (page_money, page_budgets, page_limits, texts) = consistent_view(
        browser, demo_url
    )
    assert browser.execute_script("return window.innerWidth") == width

    assert money and budgets
    assert page_money == money  # every account with cost series, and the totals
    for key, value in money.items():
        assert texts[key] == dollars(value), key
    assert page_budgets == budgets
    for key, value in budgets.items():
        assert texts[key] == f"{value * 100:.1f}%", key
    assert limits and page_limits == limits  # the demo's OpenAI organization has limits
    for key, value in limits.items():
        assert texts[key] == dollars(value), key

    banner = browser.find_element(By.CSS_SELECTOR, "[data-banner=demo]")
    assert banner.is_displayed() and banner.text == "Demo: simulated providers, no real spend"
    overflow = browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert overflow[0] <= overflow[1], f"horizontal overflow at {width} px: {overflow}"
    screenshot(browser, ARTIFACTS / f"landing-{size}.png")


def screenshot(driver: WebDriver, path: Path) -> None:
    """The whole page, not only the viewport."""
    path.parent.mkdir(exist_ok=True)
    content = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": content["width"], "height": content["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
