"""What the browser tests (tests/e2e) share: a served site, Chromium, and the checks of a page.

- ``served_site``: `feedsvc new-site --samples`, the site's own edits to its feedsvc.toml,
  `init`, and a real `feedsvc serve` (web workers and the scheduler process) on a free
  loopback port, stopped at the end.
- ``chromium``: Debian's Chromium driven by Selenium, headless, that reaches nothing but
  127.0.0.1: Selenium is given the driver and the browser binaries (so its manager downloads
  nothing), Chromium's background networking is off, and its resolver maps every other name
  to nothing.
- ``check_page``: a loaded page fails on a console error (level SEVERE), a request answered
  >= 400 (the page itself, unless the step expects that status, its stylesheet, an image), an
  image that did not load, a stylesheet that is not applied, a missing ``<title>`` or
  ``<h1>``. The layouts name an empty icon (``data:,``), so the browser asks for no
  /favicon.ico: every request it makes is a page's.
- ``loopback_feed``: an upstream RSS feed with two Chinese items, on 127.0.0.1.
- ``screenshot``: the whole page as build/e2e/NAME.png; ``at_phone_width`` and
  ``check_no_horizontal_scroll`` for a phone's viewport.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from tests.processes import alive, children, free_port, kill_all, wait_for

ROOT = Path(__file__).resolve().parent.parent.parent
SHOTS = ROOT / "build" / "e2e"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CJK_FONTS = Path("/usr/share/fonts/opentype/noto")
PHONE = (390, 844)  # CSS pixels: a common phone's viewport


# -- the site -----------------------------------------------------------------------------------


def _run(args: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None) -> str:
    result = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return result.stdout


def http_status(url: str, headers: dict[str, str] | None = None) -> int:
    """The status a plain client gets (0: no answer). Loopback only."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def http_get(url: str, headers: dict[str, str] | None = None) -> bytes:
    """The body of a 200 answer. Loopback only."""
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, (url, response.status)
        body: bytes = response.read()
        return body


@dataclass(frozen=True)
class Site:
    base: str
    work: Path
    config: Path
    env: dict[str, str]

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """`feedsvc --config <the site's> ARGS`, as the site's owner runs it."""
        command = [sys.executable, "-m", "feedsvc.cli", "--config", str(self.config), *args]
        return _run(command, self.work, self.env, stdin)


def _stop(server: subprocess.Popen[bytes], started: list[int]) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=60)
    finally:
        kill_all([pid for pid in started if alive(pid)])
        if server.poll() is None:
            kill_all([server.pid])
            server.wait(timeout=10)


@contextmanager
def served_site(work: Path, edits: tuple[tuple[str, str], ...] = ()) -> Iterator[Site]:
    """`feedsvc new-site --samples`, then each (old, new) edit of its feedsvc.toml (as its
    owner would make it with an editor), `init`, and `serve` on a free port until the end."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("FEEDSVC_")}
    env["PYTHONPATH"] = str(ROOT)
    cli = [sys.executable, "-m", "feedsvc.cli"]
    _run([*cli, "new-site", str(work / "site"), "--samples", "--base-url", base], work, env)
    config = work / "site" / "feedsvc.toml"
    text = config.read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) == 1, f"feedsvc.toml: {old!r} is not there once"
        text = text.replace(old, new)
    config.write_text(text, encoding="utf-8")
    site = Site(base, work, config, env)
    assert "sample posts: 16 loaded" in site.cli("init")

    log = work / "serve.log"
    with log.open("wb") as output:
        serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        server = subprocess.Popen(
            [*cli, "--config", str(config), *serve, "--no-access-log"],
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
            return http_status(f"{base}/healthz") == 200

        wait_for(up, 120, "feedsvc serve to answer /healthz", step=0.3)
        yield site
    finally:
        _stop(server, started)


# -- the browser --------------------------------------------------------------------------------


@contextmanager
def chromium() -> Iterator[WebDriver]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if not any(CJK_FONTS.glob("NotoSansCJK-*.ttc")):
        missing.append(f"{CJK_FONTS}/NotoSansCJK-*.ttc")
    if missing:
        pytest.fail(
            "missing " + ", ".join(missing) + ": run `make test-e2e`, which installs "
            "Debian's chromium, chromium-driver and fonts-noto-cjk"
        )
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
return entries.map(e => [e.name, e.entryType,
                         e.responseStatus === undefined ? -1 : e.responseStatus]);
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


def _request_problems(driver: WebDriver, page_status: int) -> list[str]:
    requests: list[list[Any]] = driver.execute_script(_REQUESTS)
    if not requests:
        return ["no navigation entry"]
    problems = []
    for name, kind, status in requests:
        if status == -1:  # Resource Timing without responseStatus: ask the server
            status = http_status(name)
        if kind == "navigation" and page_status != 200:
            if status != page_status:
                problems.append(f"the page answered {status}, not {page_status}")
        elif not 200 <= status < 400:
            problems.append(f"request failed: {name} answered {status}")
    return problems


def _style_problems(driver: WebDriver) -> list[str]:
    style: dict[str, Any] = driver.execute_script(_STYLE)
    problems = []
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
    return problems


def check_page(
    driver: WebDriver,
    expect_title: str,
    expect_h1: str,
    *,
    min_text: int = 50,
    page_status: int = 200,
) -> None:
    """The loaded page: no console error, no failed request (the page itself answered
    ``page_status``: a form shown again answers 422), images loaded, the stylesheet applied,
    a ``<title>`` and a non-empty ``<h1>`` (with the text the step expects), and at least
    ``min_text`` characters of text."""
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    # Chromium logs a page answered >= 400 as a console error: not one when the step expects it.
    expected = f"{driver.current_url} - Failed to load resource: the server responded with a "
    expected += f"status of {page_status} "
    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    problems = [
        f"console error: {entry['message']}"
        for entry in severe
        if page_status == 200 or not entry["message"].startswith(expected)
    ]
    problems += _request_problems(driver, page_status)
    for src, complete, width in driver.execute_script(_IMAGES):
        if not (complete and width > 0):
            problems.append(f"broken image: {src} (complete={complete}, naturalWidth={width})")
    problems += _style_problems(driver)

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
    if len(body.strip()) < min_text:
        problems.append(f"body text is {len(body.strip())} characters")

    if problems:
        pytest.fail(f"{driver.current_url}:\n  " + "\n  ".join(problems))


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


@contextmanager
def at_phone_width(driver: WebDriver) -> Iterator[None]:
    """The browser as a phone (PHONE, a mobile viewport) until the end."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        yield
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def check_no_horizontal_scroll(driver: WebDriver) -> None:
    """At the phone's width the page does not scroll sideways (an element may scroll inside
    itself). A page wider than the phone scrolls sideways, or (a mobile viewport) is zoomed
    out until it fits, which widens window.innerWidth: both fail here."""
    scroll_width, inner_width, wide = driver.execute_script(_WIDER, PHONE[0])
    if not scroll_width <= inner_width == PHONE[0]:
        pytest.fail(
            f"{driver.current_url}: horizontal scrollbar at {PHONE[0]} px: scrollWidth "
            f"{scroll_width}, innerWidth {inner_width}; wider than {PHONE[0]} px: {wide}"
        )


# -- an upstream feed ---------------------------------------------------------------------------

UPSTREAM_ITEMS = (
    (
        "上游：如何为孩子准备教育金",
        "upstream-jiaoyujin",
        "教育金要早做打算，定投指数基金是常见的办法。",
    ),
    (
        "上游：个人养老金账户怎么开",
        "upstream-yanglaojin",
        "个人养老金账户每年可存一万二千元，享受税收优惠。",
    ),
)
UPSTREAM_RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
<title>上游理财周刊</title><link>{base}/</link><description>测试用的上游订阅</description>
<language>zh-CN</language>
{items}
</channel></rss>
"""
UPSTREAM_ITEM = """<item><title>{title}</title><link>{base}/{slug}</link>
<guid isPermaLink="false">{slug}</guid><pubDate>{date}</pubDate>
<description>{text}</description></item>"""


@dataclass
class Upstream:
    """An upstream RSS feed on 127.0.0.1 (``url``) with the two Chinese ``items`` (title,
    slug, text); ``requests`` records each path asked for, in order."""

    url: str
    items: tuple[tuple[str, str, str], ...] = UPSTREAM_ITEMS
    requests: list[str] = field(default_factory=list)


@contextmanager
def loopback_feed() -> Iterator[Upstream]:
    """An upstream feed: a tiny HTTP server in a thread answering /feed.xml (200, RSS 2.0
    with the two Chinese UPSTREAM_ITEMS) and 404 to anything else, until the end."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    upstream = Upstream(f"{base}/feed.xml")
    dates = ("Sat, 28 Nov 2026 02:00:00 GMT", "Sun, 29 Nov 2026 02:00:00 GMT")
    body = UPSTREAM_RSS.format(
        base=base,
        items="\n".join(
            UPSTREAM_ITEM.format(base=base, title=title, slug=slug, text=text, date=date)
            for (title, slug, text), date in zip(UPSTREAM_ITEMS, dates, strict=True)
        ),
    ).encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            upstream.requests.append(self.path)
            found = self.path.split("?")[0] == "/feed.xml"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body) if found else 0))
            self.end_headers()
            if found:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: pytest shows what failed

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
