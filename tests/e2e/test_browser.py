"""The reader-facing site in a real browser (`make test-e2e`; `make test` does not collect it).

Debian's Chromium (``chromium``, ``chromium-driver``, ``fonts-noto-cjk``; `make test-e2e`
installs them when missing), driven by Selenium, headless, walks a fresh sample site served by
a real `feedsvc serve` on a free loopback port: the home page, a category page, a Chinese tag
page, a 共N页 post followed by clicking 下一页 to its last page, the post that shows the chart,
and that post at a phone's width. Each step is saved as a full-page screenshot in build/e2e/.

A step fails on a console error (level SEVERE), a request answered >= 400 (the page itself,
its stylesheet, an image), an image that did not load, a stylesheet that is not applied, a
missing ``<title>`` or ``<h1>``, a post page without its 相关内容 block, or (on the phone) a
horizontal scrollbar. The layout names an empty icon (``data:,``), so the browser asks for no
/favicon.ico: every request it makes is a page's.

Nothing but 127.0.0.1 is reached: Selenium is given the driver and the browser binaries (so
its manager downloads nothing), Chromium's background networking is off, and its resolver
maps every other name to nothing.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.processes import alive, children, free_port, kill_all, wait_for

ROOT = Path(__file__).resolve().parent.parent.parent
SHOTS = ROOT / "build" / "e2e"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CJK_FONTS = Path("/usr/share/fonts/opentype/noto")

# A multi-page post of the samples (two <!--nextpage--> breaks: 共3页), the post that shows
# /static/img/chart.png, a category and a Chinese tag they have.
MULTI_PAGE = ("zhaiquan-jijin-kuisun", "债券基金为什么也会亏钱", 3)
CHART_POST = ("dingtou-pinghua-bodong", "如何用定投平滑基金波动")
CATEGORY = ("jijin", "基金")
TAG = "债券基金"
PHONE = (390, 844)  # CSS pixels: a common phone's viewport

pytestmark = pytest.mark.timeout(300)


@dataclass(frozen=True)
class Site:
    base: str


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return result.stdout


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
            return int(response.status)
    except OSError:
        return 0


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """`feedsvc new-site --samples`, `init` and `serve` on a free port, stopped at the end."""
    work = tmp_path_factory.mktemp("e2e")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("FEEDSVC_")}
    env["PYTHONPATH"] = str(ROOT)
    cli = [sys.executable, "-m", "feedsvc.cli"]
    _run([*cli, "new-site", str(work / "site"), "--samples", "--base-url", base], work, env)
    config = str(work / "site" / "feedsvc.toml")
    assert "sample posts: 16 loaded" in _run([*cli, "--config", config, "init"], work, env)

    log = work / "serve.log"
    with log.open("wb") as output:
        serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        server = subprocess.Popen(
            [*cli, "--config", config, *serve, "--no-access-log"],
            cwd=work,
            env=env,
            stdout=output,
            stderr=output,
        )
    started: list[int] = []
    try:

        def up() -> bool:
            started[:] = children(server.pid)
            assert server.poll() is None, log.read_text(errors="replace")[-3000:]
            return _status(f"{base}/healthz") == 200

        wait_for(up, 120, "feedsvc serve to answer /healthz", step=0.3)

        # The scheduler's first related-refresh (seconds after start) fills 相关内容: the walk
        # starts once a post page shows it, so every post page is seen as a reader sees it.
        def related() -> bool:
            with urllib.request.urlopen(f"{base}/posts/{CHART_POST[0]}", timeout=5) as page:
                return "相关内容" in page.read().decode("utf-8")

        wait_for(related, 60, "the related lists (相关内容) of the sample posts", step=0.5)
        yield Site(base)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        finally:
            kill_all([pid for pid in started if alive(pid)])
            if server.poll() is None:
                kill_all([server.pid])
                server.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if not any(CJK_FONTS.glob("NotoSansCJK-*.ttc")):
        missing.append(f"{CJK_FONTS}/NotoSansCJK-*.ttc")
    if missing:
        pytest.fail(
            "missing " + ", ".join(missing) + ": run `make test-e2e`, which installs "
            "Debian's chromium, chromium-driver and fonts-noto-cjk"
        )
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never download anything
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--window-size=1280,900",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider",
        "--no-pings",
        # Chromium's own services (updates, safe browsing) resolve no name: only 127.0.0.1.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--lang=zh-CN",
    ):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # as root, Chromium does not start without it
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


# -- what every step checks ---------------------------------------------------------------------

_REQUESTS = """
const entries = [...performance.getEntriesByType('navigation'),
                 ...performance.getEntriesByType('resource')];
return entries.map(e => [e.name, e.responseStatus === undefined ? -1 : e.responseStatus]);
"""
_IMAGES = """
return [...document.images].map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth]);
"""
_WIDER = """
const width = arguments[0];
return [document.documentElement.scrollWidth, window.innerWidth,
        [...document.querySelectorAll('body *')]
          .filter(e => e.getBoundingClientRect().right > width + 0.5)
          .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
                                + ' ' + Math.round(e.getBoundingClientRect().width) + 'px')];
"""
_STYLE = """
const header = document.querySelector('.site-header');
const style = header && getComputedStyle(header);
return {
  sheets: [...document.styleSheets].map(s => [s.href, s.cssRules.length]),
  headerBorder: style ? style.borderBottomStyle + ' ' + style.borderBottomWidth : null,
  maxWidth: getComputedStyle(document.querySelector('main')).maxWidth,
  fontFamily: getComputedStyle(document.body).fontFamily,
};
"""


def check_page(driver: WebDriver, expect_title: str, expect_h1: str) -> None:
    """The loaded page: no console error, no failed request, images loaded, the stylesheet
    applied, a ``<title>`` and a non-empty ``<h1>`` (with the text the step expects)."""
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    url = driver.current_url
    problems: list[str] = []

    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    problems += [f"console error: {entry['message']}" for entry in severe]

    requests: list[list[Any]] = driver.execute_script(_REQUESTS)
    assert requests, f"{url}: no navigation entry"
    for name, status in requests:
        if status == -1:  # Resource Timing without responseStatus: ask the server
            status = _status(name)
        if not 200 <= status < 400:
            problems.append(f"request failed: {name} answered {status}")

    for src, complete, width in driver.execute_script(_IMAGES):
        if not (complete and width > 0):
            problems.append(f"broken image: {src} (complete={complete}, naturalWidth={width})")

    style: dict[str, Any] = driver.execute_script(_STYLE)
    sheets = [(href, rules) for href, rules in style["sheets"] if href]
    if not sheets or any(rules == 0 for _, rules in sheets):
        problems.append(f"stylesheet not loaded: {style['sheets']}")
    if style["headerBorder"] != "solid 1px" or style["maxWidth"] == "none":
        problems.append(
            "stylesheet not applied: .site-header border-bottom is "
            f"{style['headerBorder']!r}, main max-width {style['maxWidth']!r}"
        )
    if "Noto Sans CJK SC" not in style["fontFamily"]:
        problems.append(f"body font-family is {style['fontFamily']!r}")

    title = driver.title
    if not title.strip():
        problems.append("empty <title>")
    elif expect_title not in title:
        problems.append(f"<title> {title!r} lacks {expect_title!r}")
    headings = driver.find_elements(By.TAG_NAME, "h1")
    heading = headings[0].text.strip() if headings else ""
    if not heading:
        problems.append("no <h1>, or an empty one")
    elif expect_h1 not in heading:
        problems.append(f"<h1> {heading!r} lacks {expect_h1!r}")
    body = driver.find_element(By.TAG_NAME, "body").text
    if len(body.strip()) < 50:
        problems.append(f"body text is {len(body.strip())} characters")

    if problems:
        pytest.fail(f"{url}:\n  " + "\n  ".join(problems))


def screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page (beyond the viewport) as build/e2e/NAME.png."""
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    height = max(size["height"], driver.execute_script("return window.innerHeight"))
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": height} | {"scale": 1},
        },
    )
    path = SHOTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def visit(driver: WebDriver, url: str) -> None:
    driver.get_log("browser")  # what an earlier step left is that step's
    driver.get(url)


def check_related(driver: WebDriver) -> None:
    """The 相关内容 block: its heading and at least one related post linked."""
    blocks = driver.find_elements(By.CSS_SELECTOR, "section.related")
    assert blocks, f"{driver.current_url}: no 相关内容 block"
    assert blocks[0].find_element(By.TAG_NAME, "h2").text == "相关内容"
    links = blocks[0].find_elements(By.CSS_SELECTOR, "li > a")
    assert links and all(link.text.strip() for link in links), driver.current_url


def current_page(driver: WebDriver) -> tuple[int, int]:
    """(the page shown, 共N页) from the post's pager."""
    pager = driver.find_element(By.CSS_SELECTOR, "nav.pager")
    number = int(pager.find_element(By.CSS_SELECTOR, "[aria-current=page]").text)
    total = pager.find_element(By.CSS_SELECTOR, ".total").text
    assert total.startswith("共") and total.endswith("页"), total
    return number, int(total[1:-1])


# -- the steps ----------------------------------------------------------------------------------


def test_home_page(site: Site, browser: WebDriver) -> None:
    visit(browser, f"{site.base}/")
    check_page(browser, "我的订阅站", "我的订阅站")
    links = browser.find_elements(By.CSS_SELECTOR, "ul.posts li h2 a")
    assert len(links) == 16, [link.text for link in links]
    categories = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "ul.categories a")]
    assert CATEGORY[1] in categories
    screenshot(browser, "01-home")


def test_category_page(site: Site, browser: WebDriver) -> None:
    slug, name = CATEGORY
    visit(browser, f"{site.base}/categories/{slug}")
    check_page(browser, name, name)
    titles = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "ul.posts li h2 a")]
    assert CHART_POST[1] in titles
    screenshot(browser, f"02-category-{slug}")


def test_chinese_tag_page(site: Site, browser: WebDriver) -> None:
    path = f"/tags/{urllib.parse.quote(TAG)}"
    assert "%E5%80%BA" in path  # the URL carries the tag percent-encoded
    visit(browser, site.base + path)
    check_page(browser, TAG, TAG)
    titles = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "ul.posts li h2 a")]
    assert MULTI_PAGE[1] in titles
    screenshot(browser, "03-tag-zhaiquan-jijin")


def test_multi_page_post_clicking_next_to_the_last_page(site: Site, browser: WebDriver) -> None:
    slug, title, pages = MULTI_PAGE
    visit(browser, f"{site.base}/posts/{slug}")
    check_page(browser, title, title)
    assert current_page(browser) == (1, pages)
    check_related(browser)
    screenshot(browser, f"04-post-{slug}-page1")
    for number in range(2, pages + 1):
        link = browser.find_element(By.CSS_SELECTOR, "nav.pager a[rel=next]")
        assert link.text == "下一页"
        browser.get_log("browser")
        link.click()
        WebDriverWait(browser, 20).until(expected_conditions.staleness_of(link))
        check_page(browser, f"（第{number}页）", title)
        assert current_page(browser) == (number, pages)
        assert browser.current_url == f"{site.base}/posts/{slug}?page={number}"
        previous = browser.find_element(By.CSS_SELECTOR, "nav.pager a[rel=prev]")
        assert previous.text == "上一页"
        screenshot(browser, f"0{3 + number}-post-{slug}-page{number}")
    # The last page: no 下一页.
    assert not browser.find_elements(By.CSS_SELECTOR, "nav.pager a[rel=next]")


def test_post_with_the_chart_image(site: Site, browser: WebDriver) -> None:
    slug, title = CHART_POST
    visit(browser, f"{site.base}/posts/{slug}")
    check_page(browser, title, title)
    sources = [img.get_attribute("src") for img in browser.find_elements(By.TAG_NAME, "img")]
    assert any(src and src.endswith("/static/img/chart.png") for src in sources), sources
    check_related(browser)
    screenshot(browser, f"07-post-{slug}-chart")


def test_post_at_phone_width_has_no_horizontal_scrollbar(site: Site, browser: WebDriver) -> None:
    slug, title = CHART_POST
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        visit(browser, f"{site.base}/posts/{slug}")
        check_page(browser, title, title)
        # A page wider than the phone scrolls sideways, or (a mobile viewport) is zoomed out
        # until it fits, which widens window.innerWidth: both fail here.
        scroll_width, inner_width, wide = browser.execute_script(_WIDER, PHONE[0])
        if not scroll_width <= inner_width == PHONE[0]:
            pytest.fail(
                f"horizontal scrollbar at {PHONE[0]} px: scrollWidth {scroll_width}, "
                f"innerWidth {inner_width}; wider than {PHONE[0]} px: {wide}"
            )
        screenshot(browser, f"08-phone-390x844-post-{slug}")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
