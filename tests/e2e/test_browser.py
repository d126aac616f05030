"""The reader-facing site in a real browser (`make test-e2e`; `make test` does not collect it).

Debian's Chromium (``chromium``, ``chromium-driver``, ``fonts-noto-cjk``; `make test-e2e`
installs them when missing), driven by Selenium, headless, walks a fresh sample site served by
a real `feedsvc serve` on a free loopback port: the home page, a category page, a Chinese tag
page, a 共N页 post followed by clicking 下一页 to its last page, the post that shows the chart,
and that post at a phone's width. Each step is saved as a full-page screenshot in build/e2e/.

A step fails on a console error (level SEVERE), a request answered >= 400 (the page itself,
its stylesheet, an image), an image that did not load, a stylesheet that is not applied, a
missing ``<title>`` or ``<h1>``, a post page without its 相关内容 block, or (on the phone) a
horizontal scrollbar. The machinery (the served site, Chromium that reaches nothing but
127.0.0.1, the checks of a page, the screenshots) is tests/e2e/browser.py, shared with the
admin's walk (test_admin.py).
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.e2e.browser import (
    Site,
    at_phone_width,
    check_no_horizontal_scroll,
    check_page,
    screenshot,
    served_site,
    visit,
)
from tests.processes import wait_for

# A multi-page post of the samples (two <!--nextpage--> breaks: 共3页), the post that shows
# /static/img/chart.png, a category and a Chinese tag they have.
MULTI_PAGE = ("zhaiquan-jijin-kuisun", "债券基金为什么也会亏钱", 3)
CHART_POST = ("dingtou-pinghua-bodong", "如何用定投平滑基金波动")
CATEGORY = ("jijin", "基金")
TAG = "债券基金"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The sample site served (browser.served_site), once its post pages show 相关内容."""
    with served_site(tmp_path_factory.mktemp("e2e")) as served:
        # The scheduler's first related-refresh (seconds after start) fills 相关内容: the walk
        # starts once a post page shows it, so every post page is seen as a reader sees it.
        def related() -> bool:
            url = f"{served.base}/posts/{CHART_POST[0]}"
            with urllib.request.urlopen(url, timeout=5) as page:
                return "相关内容" in page.read().decode("utf-8")

        wait_for(related, 60, "the related lists (相关内容) of the sample posts", step=0.5)
        yield served


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
    with at_phone_width(browser):
        visit(browser, f"{site.base}/posts/{slug}")
        check_page(browser, title, title)
        check_no_horizontal_scroll(browser)
        screenshot(browser, f"08-phone-390x844-post-{slug}")
