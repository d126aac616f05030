"""The admin (/admin) in a real browser, walked as a publisher would (`make test-e2e`).

One walk (``test_admin_walk``) through Debian's Chromium against a real `feedsvc serve` (its
web worker and its scheduler process) of a fresh sample site, with an account made by
`feedsvc user create NAME --password-stdin`. The site's feedsvc.toml keeps the `site.secret_key`
that `feedsvc new-site` generated; its owner's edits: the scheduler ticks every second, and
`[sources] allow_hosts` lets it fetch from 127.0.0.1 (the upstream of the source step).

The steps (``STEPS``, in order; each takes the ``Walk``):

1. /admin signed out lands on the login page; a wrong password shows the error; the right one
   opens the dashboard (概览) with its counts.
2. 分类: a category created through the form shows in the list with its feed URLs; its RSS,
   fetched over HTTP, parses with the category's name as its title.
3. The create form with a slug in 中文: the page comes back (422) with the Chinese message
   next to the field and the typed values kept.
4. 文章: a two-page Markdown post with tags written in the new category, both pages previewed
   (the public page, in a new tab), published: in the category's RSS and Atom with its tags,
   on its public page with 共2页, counted on the dashboard. Another post scheduled a minute or
   two ahead: the dashboard lists it under 定时发布; the feed does not show it yet.
5. 订阅源: the loopback upstream feed added in the new category; the scheduler fetches it;
   立即抓取 queues another fetch, which the upstream sees; the page shows the fetch state.
5b. The session ends while a post is written: 保存 gives back everything typed (400);
   signed in again in a new tab, 重新提交 saves it.
6. API 令牌: a token created (shown once) authorizes GET /api/v1/jobs; revoked (after its
   confirm page), the API answers it 401.
7. 后台任务: the jobs are listed; 立即运行 on related-refresh shows the notice, and the
   scheduler runs it.
8. The dashboard, the categories, posts and sources lists and the post editor at a phone's
   width (390x844): no horizontal page scrollbar (a table may scroll inside itself).
9. 退出登录: back at the login page, and /admin sends there again.

Each step saves full-page screenshots as build/e2e/admin-NN-<what>.png (numbered in the
order taken) and checks every page it loads (browser.check_page): no console error, no request
answered >= 400 (but the 422 of a form shown again, which that step expects), the stylesheet
applied, the expected <title> and <h1>. Nothing but 127.0.0.1 is reached.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import feedparser
import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from tests.e2e.browser import (
    Site,
    Upstream,
    at_phone_width,
    check_no_horizontal_scroll,
    check_page,
    http_get,
    http_status,
    screenshot,
    served_site,
    visit,
)
from tests.processes import wait_for

pytestmark = pytest.mark.timeout(300)

ACCOUNT = ("bianji", "收入规划-correct-horse-42")  # a password of at least 10 characters
CATEGORY = ("shouru-guihua", "收入规划", "工资、奖金与副业收入的安排。")
BAD_SLUG = "收入"
TOKEN_NAME = "发布脚本"
PAGE_HEADINGS = ("第一步：算清每月收入", "第二步：先存后花")
POST = (
    "工资到账后的三步预算",
    f"## {PAGE_HEADINGS[0]}\n\n把工资、奖金和副业收入分开记，**按月**算出能支配的钱。\n\n"
    f"<!--nextpage-->\n\n## {PAGE_HEADINGS[1]}\n\n到账当天先转三成进储蓄账户，余下的再安排开销。",
    ("预算", "储蓄", "工资"),
)
SCHEDULED_TITLE = "下个月的预算提前写好"
KEPT_TITLE = "会话过期也不丢的草稿"
JOB = "related-refresh"
SAMPLE_POSTS = 16
CHINESE = re.compile(r"[\u4e00-\u9fff]")

# The owner's edits of the feedsvc.toml `feedsvc new-site` wrote: the scheduler ticks every
# second (a requested run starts at once), and sources may be fetched from 127.0.0.1.
CONFIG_EDITS = (
    ("[scheduler]\nenabled = true\n", "[scheduler]\nenabled = true\ntick_seconds = 1\n"),
    ("\n[admin]\n", '\n[sources]\nallow_hosts = ["127.0.0.1"]\n\n[admin]\n'),
)


@pytest.fixture(scope="module")
def admin_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The sample site served, with one admin account."""
    with served_site(tmp_path_factory.mktemp("e2e-admin"), CONFIG_EDITS) as site:
        config = site.config.read_text(encoding="utf-8")
        secret = re.search(r'^secret_key = "(.*)"$', config, re.MULTILINE)
        assert secret and len(secret.group(1)) >= 32, "new-site wrote no usable secret_key"
        name, password = ACCOUNT
        site.cli("user", "create", name, "--password-stdin", stdin=password + "\n")
        yield site


@dataclass
class Walk:
    """What the steps share: the site, the browser, the loopback upstream feed, and the
    numbered screenshots taken so far."""

    site: Site
    driver: WebDriver
    upstream: Upstream
    shots: int = 0

    def url(self, path: str) -> str:
        return self.site.base + path

    def open(self, path: str) -> None:
        visit(self.driver, self.url(path))

    def shot(self, what: str) -> None:
        self.shots += 1
        screenshot(self.driver, f"admin-{self.shots:02d}-{what}")

    def find(self, selector: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def texts(self, selector: str) -> list[str]:
        return [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, selector)]

    def fill(self, values: dict[str, str]) -> None:
        """Type into the fields (by id), replacing what they held."""
        for field_id, value in values.items():
            element = self.find(f"#{field_id}")
            element.clear()
            element.send_keys(value)

    def click(self, selector: str) -> None:
        """Click (a link, a submit button) and wait for the next page."""
        self.driver.get_log("browser")  # what an earlier page left is that page's
        for attempt in range(3):
            element = self.find(selector)
            try:
                element.click()
                break
            except WebDriverException as exc:
                # ChromeDriver, after a full-page screenshot (captureBeyondViewport), may
                # resolve the element to a node id of the document before it: the click is
                # refused before it is dispatched. Find the element again and click it.
                if "does not belong to the document" not in str(exc) or attempt == 2:
                    raise
        WebDriverWait(self.driver, 20).until(expected_conditions.staleness_of(element))

    def check_nav_aligned(self) -> None:
        """The admin's menu starts where the page's column does (as the header's title)."""
        menu = self.find("nav.admin-nav a").rect["x"]
        column = self.find("main h1").rect["x"]
        assert abs(menu - column) <= 1, f"menu at x={menu}, the column at x={column}"

    def notice(self) -> str:
        notices = self.texts("p.admin-notice[role=status]")
        assert len(notices) == 1, notices
        return notices[0]


# -- the steps ----------------------------------------------------------------------------------


def _sign_in(walk: Walk) -> None:
    """Signed out, /admin is the login page; a wrong password, then the right one."""
    walk.driver.delete_all_cookies()
    walk.open("/admin")
    login = walk.url("/admin/login?next=" + urllib.parse.quote("/admin", safe=""))
    assert walk.driver.current_url in (login, walk.url("/admin/login?next=/admin"))
    check_page(walk.driver, "登录", "登录管理后台", min_text=10)
    assert not walk.driver.find_elements(By.CSS_SELECTOR, "nav.admin-nav")
    walk.shot("login")

    name, password = ACCOUNT
    walk.fill({"name": name, "password": password + "x"})
    walk.click("section.admin-box button[type=submit]")
    check_page(walk.driver, "登录", "登录管理后台", min_text=10)
    assert walk.texts("p.admin-message[role=alert]") == ["用户名或密码错误。"]
    assert walk.find("#name").get_attribute("value") == name  # the name is kept
    assert walk.find("#password").get_attribute("value") == ""
    walk.shot("login-wrong-password")

    walk.fill({"name": name, "password": password})
    walk.click("section.admin-box button[type=submit]")
    assert walk.driver.current_url == walk.url("/admin")
    check_page(walk.driver, "概览", "概览")
    counts = {
        key: int(walk.find(f"#count-{key}").text) for key in ("published", "drafts", "scheduled")
    }
    assert counts == {"published": SAMPLE_POSTS, "drafts": 0, "scheduled": 0}, counts
    menu = ["概览", "文章", "分类", "订阅源", "API 令牌", "后台任务"]
    assert walk.texts("nav.admin-nav a") == menu
    assert name in walk.find("header.site-header").text
    assert len(walk.texts("#latest tbody tr")) == 10  # the ten last written
    assert JOB in walk.find("#jobs").text
    walk.check_nav_aligned()
    walk.shot("dashboard")


def _create_category(walk: Walk) -> None:
    """分类: create one through the form; it is listed with its feed URLs, and its RSS is a
    feed with the category's name."""
    slug, name, description = CATEGORY
    walk.click("nav.admin-nav a[href='/admin/categories']")
    check_page(walk.driver, "分类", "分类")
    assert f"category-{slug}" not in walk.driver.page_source
    walk.shot("categories")

    walk.fill({"field-slug": slug, "field-name": name, "field-description": description})
    walk.click("#create-category button[type=submit]")
    assert walk.driver.current_url == walk.url("/admin/categories")
    check_page(walk.driver, "分类", "分类")
    assert walk.notice() == f"已创建分类“{name}”（{slug}）。"
    row = walk.find(f"#category-{slug}")
    assert name in row.text and slug in row.text
    feeds = [
        e.get_attribute("value") for e in row.find_elements(By.CSS_SELECTOR, "input.admin-copy")
    ]
    assert feeds == [walk.url(f"/feeds/{slug}.{fmt}") for fmt in ("rss", "atom", "json")]
    walk.shot("category-created")

    rss = feedparser.parse(http_get(walk.url(f"/feeds/{slug}.rss")))
    assert not rss.bozo, rss.bozo_exception
    assert rss.version == "rss20", rss.version
    assert name in rss.feed.title, rss.feed.title
    assert rss.entries == []  # nothing written in it yet


def _invalid_category(walk: Walk) -> None:
    """The create form with a slug in 中文: 422, the Chinese message by the field, the typed
    values kept, nothing created."""
    walk.fill(
        {
            "field-slug": BAD_SLUG,
            "field-name": "工资与奖金",
            "field-feed_length": "15",
        }
    )
    walk.click("#create-category button[type=submit]")
    check_page(walk.driver, "分类", "分类", page_status=422)
    assert walk.texts("p.admin-message[role=alert]") == ["请修改标出的字段。"]
    error = walk.find("#error-slug")
    assert CHINESE.search(error.text) and "小写英文字母" in error.text, error.text
    # Next to its field: in the same .admin-field, and the field points at it.
    field = walk.find("#field-slug")
    assert error.find_element(By.XPATH, "..") == field.find_element(By.XPATH, "..")
    assert field.get_attribute("aria-invalid") == "true"
    assert field.get_attribute("aria-describedby") == "error-slug"
    assert field.get_attribute("value") == BAD_SLUG
    assert walk.find("#field-name").get_attribute("value") == "工资与奖金"
    assert walk.find("#field-feed_length").get_attribute("value") == "15"
    assert walk.texts("p.admin-field-error") == [error.text]  # only the slug is wrong
    assert "工资与奖金" not in walk.find("#categories").text
    walk.shot("category-invalid-slug")


def _api(walk: Walk, path: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http_status(walk.url(f"/api/v1{path}"), headers)


def _token_create_and_revoke(walk: Walk) -> None:
    """API 令牌: a new token (shown once) authorizes the API; revoked, it is refused."""
    walk.click("nav.admin-nav a[href='/admin/tokens']")
    check_page(walk.driver, "API 令牌", "API 令牌")
    walk.fill({"field-name": TOKEN_NAME})
    walk.click("#create-token button[type=submit]")
    check_page(walk.driver, "令牌已创建", TOKEN_NAME)
    token = walk.find("#new-token").get_attribute("value") or ""
    assert len(token) >= 32, token
    walk.shot("token-created")

    assert _api(walk, "/jobs", None) == 401  # the jobs need a token…
    assert _api(walk, "/jobs", token) == 200  # …and this one is accepted
    jobs = json.loads(http_get(walk.url("/api/v1/jobs"), {"Authorization": f"Bearer {token}"}))
    assert JOB in [job["name"] for job in jobs["items"]], jobs

    walk.click("main a[href='/admin/tokens']")
    check_page(walk.driver, "API 令牌", "API 令牌")
    assert token not in walk.driver.page_source  # shown once, never again
    rows = walk.driver.find_elements(By.CSS_SELECTOR, "#tokens tbody tr")
    row = next(r for r in rows if TOKEN_NAME in r.text)
    assert "有效" in row.text and "从未使用" not in row.text, row.text  # used just now
    token_id = (row.get_attribute("id") or "").removeprefix("token-")
    walk.shot("tokens")

    walk.click(f"#token-{token_id} a[href='/admin/tokens/{token_id}/revoke']")
    check_page(walk.driver, "吊销令牌", TOKEN_NAME)
    walk.shot("token-revoke-confirm")
    walk.click("#revoke-token button[type=submit]")
    assert walk.driver.current_url == walk.url("/admin/tokens")
    check_page(walk.driver, "API 令牌", "API 令牌")
    assert walk.notice().startswith(f"已吊销令牌“{TOKEN_NAME}”（编号 {token_id}）")
    assert "已吊销" in walk.find(f"#token-{token_id}").text
    walk.shot("token-revoked")

    assert _api(walk, "/categories", token) == 401  # a revoked token: 401 on every call
    assert _api(walk, "/jobs", token) == 401


def _run_job(walk: Walk) -> None:
    """后台任务: every job listed; 立即运行 on related-refresh asks the scheduler, which runs it."""
    walk.click("nav.admin-nav a[href='/admin/jobs']")
    check_page(walk.driver, "后台任务", "后台任务")
    jobs = walk.texts("main section[id^=job-] > h2")
    assert JOB in jobs and len(jobs) >= 4, jobs
    walk.shot("jobs")

    walk.click(f"#job-{JOB} form button[type=submit]")
    assert walk.driver.current_url == walk.url(f"/admin/jobs#job-{JOB}")
    check_page(walk.driver, "后台任务", "后台任务")
    notice = re.fullmatch(
        rf"已请求运行 {JOB}（运行编号 (\d+)）：调度进程会在下一次检查时开始运行。", walk.notice()
    )
    assert notice, walk.notice()
    run = notice.group(1)
    walk.shot("job-requested")

    # The scheduler process (tick_seconds = 1) starts it and records how it went.
    def finished() -> bool:
        visit(walk.driver, walk.url("/admin/jobs"))
        rows = walk.driver.find_elements(By.CSS_SELECTOR, f"#job-{JOB} #run-{run}")
        return bool(rows) and rows[0].find_elements(By.TAG_NAME, "td")[4].text == "成功"

    wait_for(finished, 60, f"run {run} of {JOB} to succeed", step=1)
    check_page(walk.driver, "后台任务", "后台任务")
    assert walk.find(f"#run-{run}").find_elements(By.TAG_NAME, "td")[3].text == "手动"
    # Each run's items: a number, or — while it has none.
    items = walk.texts("section[id^=job-] tr[id^=run-] td:nth-child(6)")
    assert items and all(text.isdigit() or text == "—" for text in items), items
    walk.shot("job-succeeded")


def _phone_width(walk: Walk) -> None:
    """The dashboard, the categories, posts and sources lists and the editor at 390x844: no
    horizontal page scrollbar."""
    with at_phone_width(walk.driver):
        for path, title, what in (
            ("/admin", "概览", "phone-390x844-dashboard"),
            ("/admin/categories", "分类", "phone-390x844-categories"),
            ("/admin/posts", "文章", "phone-390x844-posts"),
            ("/admin/posts/new", "写文章", "phone-390x844-editor"),
            ("/admin/sources", "订阅源", "phone-390x844-sources"),
        ):
            walk.open(path)
            check_page(walk.driver, title, title)
            check_no_horizontal_scroll(walk.driver)
            walk.check_nav_aligned()
            walk.shot(what)


def _sign_out(walk: Walk) -> None:
    """退出登录: the login page; /admin sends there again."""
    walk.click("header.site-header form[action='/admin/logout'] button")
    assert walk.driver.current_url == walk.url("/admin/login")
    check_page(walk.driver, "登录", "登录管理后台", min_text=10)
    walk.shot("signed-out")
    walk.open("/admin/categories")
    assert walk.driver.current_url.startswith(walk.url("/admin/login?next="))
    walk.open("/admin")
    assert walk.driver.current_url.startswith(walk.url("/admin/login?next="))
    check_page(walk.driver, "登录", "登录管理后台", min_text=10)
    assert not walk.driver.find_elements(By.CSS_SELECTOR, "nav.admin-nav")


# -- posts and sources (steps 4 and 5) ----------------------------------------------------------


def _in_new_tab(walk: Walk, selector: str) -> str:
    """Click what opens a new tab (a form with target=_blank); switch to it; the old handle."""
    before = set(walk.driver.window_handles)
    home = walk.driver.current_window_handle
    walk.driver.get_log("browser")
    walk.find(selector).click()
    WebDriverWait(walk.driver, 20).until(lambda d: len(set(d.window_handles) - before) == 1)
    walk.driver.switch_to.window((set(walk.driver.window_handles) - before).pop())
    return home


def _entry(walk: Walk, feed: str, title: str) -> feedparser.FeedParserDict | None:
    parsed = feedparser.parse(http_get(walk.url(feed)))
    assert not parsed.bozo, (feed, parsed.bozo_exception)
    return next((entry for entry in parsed.entries if entry.title == title), None)


def _write_and_publish_post(walk: Walk) -> None:
    """文章: write a two-page Markdown post with tags in the new category, preview both of
    its pages (the public page, rendered, with its 共2页 pager), publish it; it is in the
    category's RSS and Atom with its tags, on its public page, and counted on the dashboard.
    Then a post scheduled a minute or two ahead: the dashboard lists it under 定时发布, and
    the feed does not show it yet."""
    slug = CATEGORY[0]
    title, two_pages, tags = POST
    walk.click("nav.admin-nav a[href='/admin/posts']")
    check_page(walk.driver, "文章", "文章")
    assert len(walk.texts("#posts tbody tr")) == SAMPLE_POSTS
    walk.shot("posts")
    walk.click("#new-post")
    check_page(walk.driver, "写文章", "写文章")
    walk.fill({"field-title": title, "field-tags": "，".join(tags), "field-content": two_pages})
    Select(walk.find("#field-category")).select_by_value(slug)
    walk.shot("post-new")

    home = _in_new_tab(walk, "#preview-post")
    for number in (1, 2):
        check_page(walk.driver, title, title)
        banner = walk.find("div.admin-preview").text
        assert "预览" in banner and f"第{number}页，共2页" in banner, banner
        assert "共2页" in walk.find("nav.pager").text
        assert walk.find("div.page h2").text == PAGE_HEADINGS[number - 1]  # Markdown rendered
        assert sorted(walk.texts("p.meta a.tag")) == sorted(tags)
        walk.shot(f"post-preview-page-{number}")
        if number == 1:
            walk.click("div.admin-preview button[value='2']")
    walk.driver.close()
    walk.driver.switch_to.window(home)

    walk.click("#save-post")
    assert re.fullmatch(walk.url(r"/admin/posts/\d+"), walk.driver.current_url)
    check_page(walk.driver, "编辑文章", "编辑文章")
    assert walk.notice() == f"已发布《{title}》。"
    assert walk.find("#post-state").text == "已发布"
    walk.shot("post-published")

    for feed in (f"/feeds/{slug}.rss", f"/feeds/{slug}.atom"):
        entry = _entry(walk, feed, title)
        assert entry is not None, feed
        assert {tag.term for tag in entry.tags} >= set(tags), (feed, entry.tags)
    walk.click("#public-link")
    check_page(walk.driver, title, title)
    assert "共2页" in walk.find("nav.pager").text
    assert walk.find("div.page h2").text == PAGE_HEADINGS[0]
    walk.shot("post-public")

    # Another post, a minute or two ahead in the site's time zone: scheduled.
    walk.open("/admin/posts/new")
    check_page(walk.driver, "写文章", "写文章")
    hint = walk.find("#field-published_at + span.meta").text
    zone = re.search(r"站点时区（(.+?)）", hint)
    assert zone, hint
    due = datetime.now(ZoneInfo(zone.group(1))) + timedelta(minutes=2)
    walk.fill({"field-title": SCHEDULED_TITLE, "field-content": "下个月的预算，明天再发。"})
    Select(walk.find("#field-category")).select_by_value(slug)
    walk.driver.execute_script(
        "arguments[0].value = arguments[1]",
        walk.find("#field-published_at"),
        due.strftime("%Y-%m-%dT%H:%M"),
    )
    walk.click("#save-post")
    check_page(walk.driver, "编辑文章", "编辑文章")
    assert walk.notice() == f"《{SCHEDULED_TITLE}》将于 {due:%Y-%m-%d %H:%M} 发布。"
    assert walk.find("#post-state").text == "定时"
    walk.shot("post-scheduled")

    walk.click("nav.admin-nav a[href='/admin']")
    check_page(walk.driver, "概览", "概览")
    assert walk.find("#count-published").text == str(SAMPLE_POSTS + 1)
    assert walk.find("#count-scheduled").text == "1"
    scheduled = walk.find("#scheduled").text
    assert SCHEDULED_TITLE in scheduled and f"{due:%Y-%m-%d %H:%M}" in scheduled, scheduled
    assert title in walk.find("#latest").text
    assert _entry(walk, f"/feeds/{slug}.rss", SCHEDULED_TITLE) is None  # not due yet
    walk.shot("dashboard-scheduled")


def _fetch_state(walk: Walk) -> dict[str, str]:
    rows = walk.driver.find_elements(By.CSS_SELECTOR, "#fetch-state tr")
    return {
        row.find_element(By.TAG_NAME, "th").text: row.find_element(By.TAG_NAME, "td").text
        for row in rows
    }


def _add_and_refresh_source(walk: Walk) -> None:
    """订阅源: add the loopback upstream feed (its two Chinese items) in the new category; the
    scheduler fetches it; 立即抓取 queues another fetch, which the upstream sees; the page
    shows the fetch state (when, HTTP status, no error, the items), and the dashboard still
    has no failing source."""
    slug = CATEGORY[0]
    walk.click("nav.admin-nav a[href='/admin/sources']")
    check_page(walk.driver, "订阅源", "订阅源")
    walk.shot("sources")
    walk.fill({"field-url": walk.upstream.url})
    Select(walk.find("#field-category")).select_by_value(slug)
    walk.click("#create-source button[type=submit]")
    check_page(walk.driver, "订阅源", "订阅源")
    assert walk.notice().startswith(f"已添加订阅源 {walk.upstream.url}"), walk.notice()
    row = next(
        r
        for r in walk.driver.find_elements(By.CSS_SELECTOR, "#sources tbody tr")
        if walk.upstream.url in r.text
    )
    source_id = (row.get_attribute("id") or "").removeprefix("source-")
    walk.shot("source-added")

    def fetched(count: int) -> Callable[[], bool]:
        def done() -> bool:
            walk.open(f"/admin/sources/{source_id}")
            state = _fetch_state(walk)
            return len(walk.upstream.requests) >= count and state["条目"].startswith("2 ")

        return done

    # Added, it is due at once: the scheduler (a tick a second) fetches it.
    wait_for(fetched(1), 60, "the scheduler to fetch the new source", step=1)
    before = len(walk.upstream.requests)
    check_page(walk.driver, "编辑订阅源", "编辑订阅源")
    walk.click("#refresh-source button[type=submit]")
    check_page(walk.driver, "编辑订阅源", "编辑订阅源")
    assert walk.notice().startswith("已加入抓取队列"), walk.notice()
    walk.shot("source-refresh-queued")
    wait_for(fetched(before + 1), 60, "立即抓取 to fetch the source again", step=1)
    check_page(walk.driver, "编辑订阅源", "编辑订阅源")
    state = _fetch_state(walk)
    assert state["上次抓取"] != "从未抓取" and state["上次错误"] == "—", state
    assert state["HTTP 状态"] in ("200", "304") and state["连续失败"] == "0", state
    assert set(walk.upstream.requests) == {"/feed.xml"}, walk.upstream.requests
    walk.shot("source-fetched")

    walk.click("nav.admin-nav a[href='/admin']")
    check_page(walk.driver, "概览", "概览")
    assert "所有订阅源正常" in walk.driver.page_source


def _session_ends_while_writing(walk: Walk) -> None:
    """The session ends while a post is being written (its cookie gone, as after signing out
    in another tab): 保存 answers 400 with everything typed kept; signed in again in a new
    tab, 重新提交 saves it."""
    walk.open("/admin/posts/new")
    check_page(walk.driver, "写文章", "写文章")
    walk.fill({"field-title": KEPT_TITLE, "field-content": "会话过期时写的正文，不能丢。"})
    Select(walk.find("#field-category")).select_by_value(CATEGORY[0])
    walk.driver.delete_all_cookies()
    walk.click("#save-post")
    check_page(walk.driver, "没有保存", "没有保存", page_status=400)
    boxes = {
        e.get_attribute("name"): e.get_attribute("value")
        for e in walk.driver.find_elements(By.CSS_SELECTOR, "#resubmit textarea")
    }
    assert boxes["title"] == KEPT_TITLE and boxes["content"] == "会话过期时写的正文，不能丢。"
    walk.shot("post-kept-after-session-ended")

    kept = walk.driver.current_window_handle
    walk.find("a[target=_blank][href^='/admin/login']").click()
    WebDriverWait(walk.driver, 20).until(lambda d: len(d.window_handles) == 2)
    walk.driver.switch_to.window(next(h for h in walk.driver.window_handles if h != kept))
    check_page(walk.driver, "登录", "登录管理后台", min_text=10)
    name, password = ACCOUNT
    walk.fill({"name": name, "password": password})
    walk.click("section.admin-box button[type=submit]")
    check_page(walk.driver, "概览", "概览")
    walk.driver.close()
    walk.driver.switch_to.window(kept)
    # Back in a tab that was in the background, ChromeDriver may resolve elements to node ids
    # of a stale document ("does not belong to the document"): the button is clicked by the
    # page's own script, as a user's click would (the form's submit handler runs), and the
    # step waits for the editor the save redirects to.
    walk.driver.get_log("browser")
    walk.driver.execute_script("document.querySelector('#resubmit button[type=submit]').click()")
    saved = re.compile(re.escape(walk.url("/admin/posts/")) + r"\d+")
    WebDriverWait(walk.driver, 20).until(lambda d: saved.fullmatch(d.current_url))
    check_page(walk.driver, "编辑文章", "编辑文章")
    assert walk.notice() == f"已发布《{KEPT_TITLE}》。"
    walk.shot("post-resubmitted")


Step = Callable[[Walk], None]

STEPS: tuple[Step, ...] = (
    _sign_in,
    _create_category,
    _invalid_category,
    _write_and_publish_post,
    _add_and_refresh_source,
    _session_ends_while_writing,
    _token_create_and_revoke,
    _run_job,
    _phone_width,
    _sign_out,
)


def test_admin_walk(admin_site: Site, browser: WebDriver, upstream_feed: Upstream) -> None:
    walk = Walk(admin_site, browser, upstream_feed)
    for step in STEPS:
        step(walk)


def test_upstream_feed_for_the_source_step(upstream_feed: Upstream) -> None:
    """The loopback upstream the source step will add: RSS 2.0 with its two Chinese items."""
    parsed = feedparser.parse(http_get(upstream_feed.url))
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.feed.title == "上游理财周刊"
    assert [entry.title for entry in parsed.entries] == [t for t, _, _ in upstream_feed.items]
    assert upstream_feed.requests[-1:] == ["/feed.xml"]
    assert http_status(upstream_feed.url.replace("feed.xml", "other")) == 404
