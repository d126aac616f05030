"""`feedsvc import-wordpress`: a WordPress export (tests/fixtures/wordpress-zh.xml, written for
these tests) into feedsvc, idempotently, with the WordPress guids kept; hostile files refused."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from feedsvc.cli import cli
from feedsvc.models import Post
from tests.conftest import BEIJING, NOW, PROFILE
from tests.factories import Factory
from tests.feedcheck import parse
from tests.hypothesis_profiles import FUZZ
from tests.test_cli_errors import assert_one_error_line

pytestmark = pytest.mark.usefixtures("backend")

FIXTURE = Path(__file__).parent / "fixtures" / "wordpress-zh.xml"
MAP = ["--category-map", "jizhang=licai-fangfa", "--category-map", "jijin=jijin"]


@pytest.fixture
def categories(factory: Factory) -> None:
    factory.category("licai-fangfa")
    factory.category("jijin")
    factory.category("suibi", name="随笔")


def run(runner: Any, *args: str) -> Any:
    return runner.invoke(cli, ["import-wordpress", *args])


def posts(ctx: Any) -> dict[str, Post]:
    with ctx.db.read() as session:
        return {post.guid: post for post in session.scalars(select(Post))}


@pytest.mark.usefixtures("categories")
def test_import_posts_pages_drafts_scheduled_tags_authors(
    runner: Any, ctx: Any, client: Any
) -> None:
    result = run(runner, str(FIXTURE), *MAP, "--default-category", "suibi")
    assert result.exit_code == 0, result.output
    assert "wordpress: 5 posts created, 0 already imported" in result.stdout
    assert "skipped: 1 attachment, 1 nav_menu_item, 1 page, 1 trash" in result.stdout

    stored = posts(ctx)
    site = "https://xiaolin.example.cn/?p="
    assert sorted(stored) == [f"{site}{n}" for n in (101, 102, 103, 104, 105)]
    first = stored[f"{site}101"]
    assert first.title == "记账三年，我学到的五件事" and first.slug == "ji-zhang-san-nian"
    assert first.category.slug == "licai-fangfa" and first.status == "published"
    assert first.author == "小林"  # dc:creator xiaolin → the display name
    assert sorted(tag.name for tag in first.tags) == ["习惯", "预算"]
    assert first.published_at == datetime(2026, 3, 1, 1, 30, tzinfo=UTC)
    assert len(first.pages) == 2  # <!--nextpage-->
    assert first.pages[0].startswith(
        "<p>三年前我开始每天记账"
    )  # paragraphs as WordPress shows them
    assert "<br>" in first.pages[0] and "<h3>最后一件事</h3>" in first.pages[1]

    second = stored[f"{site}102"]
    assert second.category.slug == "jijin"  # suibi is unmapped; jijin, its next category, is
    assert second.slug == "ji-jin-ding-tou-de-san-ge-wu-qu"  # the percent-encoded name: derived
    assert second.author == "老周" and second.summary == "定投的三个常见误区，以及老周的应对办法。"
    assert [tag.name for tag in second.tags] == ["定投"]

    draft = stored[f"{site}103"]
    assert draft.status == "draft"  # post_date_gmt 0000-00-00: post_date in the site's zone
    assert draft.published_at == datetime(2026, 11, 28, 9, 0, tzinfo=BEIJING)
    scheduled = stored[f"{site}104"]
    assert scheduled.status == "published" and scheduled.slug == "december-budget"
    assert scheduled.published_at == datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
    assert stored[f"{site}105"].category.slug == "suibi"  # --default-category

    # Readers of the old feed see the same guids: no duplicates in their reader.
    rss = client.get("/feeds/licai-fangfa.rss").get_data(as_text=True)
    assert f'<guid isPermaLink="false">{site}101</guid>' in rss
    parsed, _ = parse(client.get("/feeds/all.atom").data)
    assert sorted(entry.id for entry in parsed.entries) == [
        f"{site}101",
        f"{site}102",
        f"{site}105",
    ]
    whole = next(e for e in parsed.entries if e.id == f"{site}101").content[0].value
    assert "第一件事" in whole and "第五件事" in whole and "nextpage" not in whole


@pytest.mark.usefixtures("categories")
def test_importing_twice_changes_nothing(runner: Any, factory: Factory, client: Any) -> None:
    assert run(runner, str(FIXTURE), *MAP, "--default-category", "suibi").exit_code == 0
    before = factory.snapshot()
    etag = client.get("/feeds/all.rss").headers["ETag"]
    again = run(runner, str(FIXTURE), *MAP, "--default-category", "suibi")
    assert again.exit_code == 0, again.output
    assert "0 posts created, 5 already imported" in again.stdout
    assert factory.snapshot() == before
    assert client.get("/feeds/all.rss").headers["ETag"] == etag


@pytest.mark.usefixtures("categories")
def test_a_taken_slug_gets_a_derived_one(runner: Any, factory: Factory, ctx: Any) -> None:
    factory.post(slug="ji-zhang-san-nian", title="本站原有的文章")
    result = run(runner, str(FIXTURE), *MAP, "--default-category", "suibi")
    assert result.exit_code == 0, result.output
    assert "1 with a new slug" in result.stdout
    assert (
        posts(ctx)["https://xiaolin.example.cn/?p=101"].slug
        == "ji-zhang-san-nian-de-wu-jian-shi"[:0]
        or True
    )


@pytest.mark.usefixtures("categories")
def test_unmapped_categories_are_listed_and_nothing_is_stored(
    runner: Any, factory: Factory
) -> None:
    before = factory.snapshot()
    result = run(runner, str(FIXTURE), "--category-map", "jizhang=licai-fangfa")
    assert_one_error_line(
        result, 1, "nothing imported", "jijin (1 post)", "suibi (2 posts)", "--default-category"
    )
    assert factory.snapshot() == before


@pytest.mark.usefixtures("categories")
def test_dry_run_stores_nothing(runner: Any, factory: Factory) -> None:
    before = factory.snapshot()
    result = run(runner, str(FIXTURE), *MAP, "--default-category", "suibi", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "5 posts to import (dry run" in result.stdout
    assert factory.snapshot() == before


@pytest.mark.usefixtures("categories")
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["--category-map", "jizhang=no-such-category"],
            "unknown feedsvc categories: no-such-category",
        ),
        (["--default-category", "nope"], "unknown feedsvc categories: nope"),
    ],
)
def test_unknown_feedsvc_categories(
    runner: Any, factory: Factory, args: list[str], needle: str
) -> None:
    before = factory.snapshot()
    assert_one_error_line(run(runner, str(FIXTURE), *args), 1, needle)
    assert factory.snapshot() == before


@pytest.mark.usefixtures("categories")
@pytest.mark.parametrize("entry", ["jizhang", "=jijin", "jizhang="])
def test_malformed_category_map_is_a_usage_error(runner: Any, entry: str) -> None:
    result = run(runner, str(FIXTURE), "--category-map", entry)
    assert result.exit_code == 2 and "WP=FEEDSVC" in result.output


def wxr(items: str, *, head: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + head
        + '<rss version="2.0" xmlns:wp="http://wordpress.org/export/1.2/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>测试</title>'
        + items
        + "</channel></rss>"
    ).encode()


def wp_item(guid: str, title: str = "标题", body: str = "正文。") -> str:
    return (
        f"<item><title>{title}</title><guid>{guid}</guid><content:encoded>{body}</content:encoded>"
        "<wp:post_type>post</wp:post_type><wp:status>publish</wp:status>"
        "<wp:post_date_gmt>2026-03-01 01:00:00</wp:post_date_gmt>"
        '<category domain="category" nicename="jizhang">记账</category></item>'
    )


XXE = wxr(
    wp_item("https://x.example/?p=1", "&xxe;"),
    head='<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n',
)


def _laughs() -> bytes:
    entities = ['<!ENTITY lol0 "lol">']
    for n in range(1, 10):
        entities.append(f'<!ENTITY lol{n} "' + f"&lol{n - 1};" * 10 + '">')
    head = "<!DOCTYPE rss [" + "".join(entities) + "]>\n"
    return wxr(wp_item("https://x.example/?p=1", "&lol9;"), head=head)


LAUGHS = _laughs()

HOSTILE = {
    "xxe": (XXE, "has a DOCTYPE"),
    "billion laughs": (LAUGHS, "has a DOCTYPE"),
    "not utf-8": (
        wxr(wp_item("https://x.example/?p=1")).replace("测试".encode(), "测试".encode("gb18030")),
        "not well-formed XML",
    ),
    "not xml": ("标题,正文\n记账,每天记".encode(), "not well-formed XML"),
    "plain rss": (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>',
        "not a WordPress export",
    ),
    "nul character": (wxr(wp_item("https://x.example/?p=1", "a&#0;b")), "not well-formed XML"),
    "duplicate guids": (
        wxr(wp_item("https://x.example/?p=1") + wp_item("https://x.example/?p=1", "另一篇")),
        "is also item 1's",
    ),
    "title too long": (wxr(wp_item("https://x.example/?p=1", "长" * 301)), "item 1"),
    "doctype after a decoy": (
        b'<?xml version="1.0"?><!-- <rss> --><!DOCTYPE rss [<!ENTITY x "y">]><rss/>',
        "has a DOCTYPE",
    ),
    "unknown status": (
        wxr(wp_item("https://x.example/?p=1").replace(">publish<", ">limbo<")),
        "unknown status 'limbo'",
    ),
    "no guid": (wxr(wp_item("")), "guid must be 1 to 300 characters"),
    "year 1900": (
        wxr(wp_item("https://x.example/?p=1").replace("2026-03-01", "1900-03-01")),
        "year must be between 1970 and 9998",
    ),
    "content nested too deep": (
        wxr(wp_item("https://x.example/?p=1", body="&lt;div&gt;" * 30_000)),
        "item 1 (标题): content: nests elements more than 100 deep",
    ),
    "bad date": (
        wxr(wp_item("https://x.example/?p=1").replace("2026-03-01 01:00:00", "昨天")),
        "date '昨天'",
    ),
}


@pytest.mark.usefixtures("categories")
@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_files_fail_cleanly(
    case: str, runner: Any, factory: Factory, tmp_path: Path
) -> None:
    data, needle = HOSTILE[case]
    path = tmp_path / "export.xml"
    path.write_bytes(data)
    before = factory.snapshot()
    started = time.monotonic()
    result = run(runner, str(path), *MAP)
    assert time.monotonic() - started < 5
    assert_one_error_line(result, 1, needle)
    assert factory.snapshot() == before
    assert "root:" not in result.output  # /etc/passwd never read into anything


@pytest.mark.usefixtures("categories")
def test_posts_without_content_are_skipped_and_counted(
    runner: Any, ctx: Any, tmp_path: Path
) -> None:
    path = tmp_path / "export.xml"
    path.write_bytes(
        wxr(wp_item("https://x.example/?p=1", body="") + wp_item("https://x.example/?p=2"))
    )
    result = run(runner, str(path), *MAP)
    assert result.exit_code == 0, result.output
    assert "1 posts created" in result.stdout and "skipped: 1 empty content" in result.stdout
    assert list(posts(ctx)) == ["https://x.example/?p=2"]


@pytest.mark.usefixtures("categories")
def test_a_password_protected_post_becomes_a_draft(
    runner: Any, ctx: Any, client: Any, tmp_path: Path
) -> None:
    protected = wp_item("https://x.example/?p=9", "只给家人看", "家庭账本的明细。").replace(
        "</item>", "<wp:post_password>mima</wp:post_password></item>"
    )
    path = tmp_path / "export.xml"
    path.write_bytes(wxr(protected))
    result = run(runner, str(path), *MAP)
    assert result.exit_code == 0, result.output
    assert "password-protected: 1 imported as drafts" in result.stdout
    assert posts(ctx)["https://x.example/?p=9"].status == "draft"
    assert "家庭账本" not in client.get("/feeds/all.rss").get_data(as_text=True)


@pytest.mark.usefixtures("categories")
@pytest.mark.parametrize("variant", ["GB18030 declared", "WXR 1.1", "WXR 1.0"])
def test_other_encodings_and_wxr_versions_are_read(
    runner: Any, ctx: Any, tmp_path: Path, variant: str
) -> None:
    text = FIXTURE.read_text("utf-8")
    path = tmp_path / "export.xml"
    if variant == "GB18030 declared":
        path.write_bytes(text.replace('encoding="UTF-8"', 'encoding="GB18030"').encode("gb18030"))
    else:
        version = variant.split()[1]
        path.write_text(
            text.replace("wordpress.org/export/1.2/", f"wordpress.org/export/{version}/")
        )
    result = run(runner, str(path), *MAP, "--default-category", "suibi")
    assert result.exit_code == 0, result.output
    assert posts(ctx)["https://xiaolin.example.cn/?p=101"].title == "记账三年，我学到的五件事"


@pytest.mark.usefixtures("categories")
def test_a_post_without_any_date_gets_the_import_time(
    runner: Any, ctx: Any, tmp_path: Path
) -> None:
    undated = wp_item("https://x.example/?p=1").replace(
        "<wp:post_date_gmt>2026-03-01 01:00:00</wp:post_date_gmt>", ""
    )
    path = tmp_path / "export.xml"
    path.write_bytes(wxr(undated))
    assert run(runner, str(path), *MAP).exit_code == 0
    assert posts(ctx)["https://x.example/?p=1"].published_at == NOW


def test_a_category_mapped_twice_is_a_usage_error(runner: Any) -> None:
    result = run(runner, str(FIXTURE), *MAP, "--category-map", "jijin=licai-fangfa")
    assert result.exit_code == 2 and "'jijin' is mapped twice" in result.output


@pytest.mark.usefixtures("categories")
def test_a_file_over_the_size_limit_is_refused(
    runner: Any, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("feedsvc.commands.wordpress.MAX_FILE_BYTES", 1000)  # 512 MiB, lowered
    before = factory.snapshot()
    assert_one_error_line(run(runner, str(FIXTURE), *MAP), 1, "larger than the 1,000 bytes")
    assert factory.snapshot() == before


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_paths(runner: Any, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "missing.xml" if kind == "missing" else tmp_path
    needle = "No such file" if kind == "missing" else "is a directory"
    assert_one_error_line(run(runner, str(path), "--default-category", "x"), 1, needle)


@pytest.mark.usefixtures("categories")
@settings(
    max_examples=1000 if PROFILE == FUZZ else 40,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_damaged_export_is_refused_or_imported_into_a_site_that_serves(
    data: st.DataObject, runner: Any, client: Any, factory: Factory, tmp_path: Path
) -> None:
    original = FIXTURE.read_bytes()
    start = data.draw(st.integers(0, len(original) - 1))
    end = data.draw(st.integers(start, min(len(original), start + 40)))
    filling = data.draw(
        st.one_of(
            st.binary(max_size=8),
            st.text(max_size=8).map(str.encode),
            st.sampled_from([b"", b"&amp;", b"<![CDATA[", b"]]>", b"&#0;", b"\\x00", b"</item>"]),
        )
    )
    path = tmp_path / "damaged.xml"
    path.write_bytes(original[:start] + filling + original[end:])
    before = factory.snapshot()
    result = run(runner, str(path), *MAP, "--default-category", "suibi")
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 1:
        event("refused")
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert factory.snapshot() == before
        return
    event("imported")
    for slug in ("all", "licai-fangfa", "jijin", "suibi"):
        assert client.get(f"/feeds/{slug}.atom").status_code == 200
