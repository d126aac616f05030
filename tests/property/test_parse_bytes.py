"""sources/parse.py's one entry point, parse_feed, on any bytes: a ParsedFeed whose every
field keeps its promise, or FeedParseError. Nothing else, ever (it runs in the scheduler,
where an exception would stop the source's polling)."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from hypothesis import event, example, given
from hypothesis import strategies as st

from feedsvc.sources.parse import FeedParseError, ParsedFeed, parse_feed
from tests.property.strategies import hostile_text
from tests.property.test_dates import date_strings

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
URL = "https://blog.example.cn/feed.xml"


def _xml_legal(text: str) -> bool:
    """XML 1.0 §2.2 Char: what parse.py promises to have dropped."""
    return not any(
        ("\x00" <= char <= "\x1f" and char not in "\t\n\r")
        or "\ud800" <= char <= "\udfff"
        or char in "\ufffe\uffff"
        for char in text
    )


field = st.one_of(hostile_text().map(escape), hostile_text(max_pieces=4))  # escaped or raw
RSS = (
    '<?xml version="1.0" encoding="{enc}"?><rss version="2.0"><channel><title>{0}</title>'
    "<link>{1}</link><item><title>{2}</title><link>{3}</link><guid>{4}</guid>"
    "<description>{5}</description><pubDate>{6}</pubDate><category>{7}</category>"
    "<dc:creator xmlns:dc='http://purl.org/dc/elements/1.1/'>{8}</dc:creator></item>"
    "</channel></rss>"
)
ATOM = (
    '<?xml version="1.0" encoding="{enc}"?><feed xmlns="http://www.w3.org/2005/Atom">'
    "<title>{0}</title><link href='{1}'/><entry><title type='html'>{2}</title>"
    "<link href='{3}'/><id>{4}</id><content type='html'>{5}</content>"
    "<updated>{6}</updated><category term='{7}'/><author><name>{8}</name></author></entry></feed>"
)


@st.composite
def feeds(draw: st.DrawFn) -> bytes:
    template = draw(st.sampled_from([RSS, ATOM]))
    encoding = draw(st.sampled_from(["utf-8", "gb2312", "gb18030", "iso-8859-1"]))
    texts = [draw(field) for _ in range(9)]
    texts[6] = draw(st.one_of(date_strings, field))
    document = template.format(*texts, enc=encoding)
    # A lone surrogate is written as the bytes UTF-8 would give it (invalid UTF-8); anything
    # the declared encoding cannot hold as a "?" or as UTF-8 bytes: mislabelled feeds.
    if draw(st.booleans()):
        return document.encode("utf-8", "surrogatepass")
    return document.encode(encoding, "replace")


any_bytes = st.one_of(feeds(), st.binary(max_size=2000))


@given(content=any_bytes, site_tz=st.sampled_from([ZoneInfo("Asia/Shanghai"), UTC]))
@example(content=b"", site_tz=UTC)
@example(content=RSS.format(*["\x00"] * 9, enc="utf-8").encode(), site_tz=UTC)
@example(
    content=RSS.format(*["\ud800"] * 6, "9999-12-31T23:59:59-12:00", "x", "y", enc="utf-8").encode(
        "utf-8", "surrogatepass"
    ),
    site_tz=UTC,
)
@example(
    content=ATOM.format(*["a"] * 6, "(" * 100_000, "x", "y", enc="utf-8").encode(), site_tz=UTC
)
# Found by `make fuzz`: feedparser leaves None (not "") for this title; parse_feed raised.
@example(
    content=(
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title></title><entry>'
        b"<title type='html'>" + b"<?" * 5000 + b"</title><id></id></entry></feed>"
    ),
    site_tz=UTC,
)
def test_parse_feed_gives_a_clean_feed_or_feed_parse_error(
    content: bytes, site_tz: ZoneInfo
) -> None:
    try:
        feed = parse_feed(content, headers={"content-type": "application/xml"}, url=URL,
                          site_tz=site_tz, now=NOW)  # fmt: skip
    except FeedParseError:
        event("FeedParseError")
        return
    event(f"entries: {min(len(feed.entries), 1)}")
    assert isinstance(feed, ParsedFeed)
    assert _xml_legal(feed.title)
    assert feed.link is None or feed.link.startswith(("http://", "https://"))
    for entry in feed.entries:
        texts = [entry.entry_id, entry.title, entry.author or "", entry.summary_html,
                 entry.content_html, *entry.tags]  # fmt: skip
        assert all(_xml_legal(text) for text in texts), texts
        assert entry.entry_id
        assert entry.link is None or entry.link.startswith(("http://", "https://"))
        for moment in (entry.published, entry.updated):
            assert moment is None or (moment.tzinfo is not None and moment <= NOW)
            assert moment is None or moment.astimezone(UTC) <= NOW
