"""A fuzz pass over every route that reads: hostile path segments and query strings, 0 × 5xx.

The routes come from ``app.url_map`` (every rule that answers GET), so a new route is covered
the day it is added. Each converter argument in turn gets a hostile value while the others keep
a real one (so the hostile value reaches the view, not just the router), and hostile query
strings go with every route: NUL, percent-encoded invalid UTF-8, huge integers, non-ASCII
digits, 8 KB values, repeated keys. GET, HEAD and OPTIONS; API routes with a valid token, a
bogus one and none. What a user must see: never a 5xx; an error is the short HTML page off the
API and ``{"error": {"code", "message", "fields"}}`` under /api/.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.routing import Rule
from werkzeug.serving import make_server

from feedsvc.schemas import SourceCreate
from feedsvc.services import sources
from tests.factories import Factory

pytestmark = pytest.mark.usefixtures("backend")

ARGUMENT = re.compile(r"<(?:[^:<>]+:)?(?P<name>\w+)>")
METHODS = ("GET", "HEAD", "OPTIONS")
EIGHT_KB = "9" * 8192

# Path segments, already percent-encoded as they would arrive on the wire.
HOSTILE_SEGMENTS = [
    "a%00b",
    "%00",
    "%ff%fe",  # not UTF-8
    "%C0%AF",  # overlong '/'
    "%ED%A0%80",  # an encoded surrogate
    "%EF%BF%BF",  # U+FFFF, illegal in XML
    "%D9%A3",  # ٣, an Arabic-Indic three
    "%C2%B2",  # ², a superscript two
    "%EF%BC%91",  # １, a full-width one
    "99999999999999999999",
    "9223372036854775808",
    "2147483648",
    "-1",
    "0",
    "+1",
    "1e3",
    "0x10",
    "%E7%90%86%E8%B4%A2",  # 理财
    "%F0%9F%92%B0",  # an emoji outside the BMP
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "%20",
    "%0d%0aSet-Cookie:%20x=1",
    "%7f",
    "x" * 8192,
    EIGHT_KB,
]

# Whole query strings, as they would arrive on the wire.
HOSTILE_QUERIES = [
    "limit=%C2%B2",
    "limit=%D9%A3",
    "limit=99999999999999999999",
    "limit=-1",
    "limit=0",
    "limit=1.5",
    "limit=1&limit=2&limit=abc",
    "page=%C2%B2",
    "page=99999999999999999999",
    "page=-1",
    "page=%ff%fe",
    "%00",
    "a=%00",
    "%00=1",
    "%ff%fe",
    "%ff%fe=%ff%fe",
    "limit=%ff",
    "cursor=%00",
    "cursor=not-a-cursor",
    "cursor=" + "A" * 8192,
    "tag=%E5%82%A8%E8%93%84&tag=%ff",
    "category=" + "x" * 8192,
    "q=" + EIGHT_KB,
    "status=%C2%B2&status=published",
    "since=9999-99-99T99:99:99",
    "before=%00",
    "before=not-a-cursor",
    "before=" + "A" * 8192,
    "before=W10.AAAAAAAAAAA",
    "&&&==&=",
    "=",
    "x" * 8192,
]

QUERY_KEYS = ["limit", "page", "cursor", "tag", "category", "status", "since", "before", "q"]


@pytest.fixture
def site(factory: Factory, ctx: Any) -> dict[str, str]:
    """A site with something behind each route, and a real value for every argument."""
    post = factory.post(title="每月结余先存一半，再谈投资", tags=["储蓄", "预算"])
    factory.post("jijin", title="指数基金定投：跌了更要买？")
    source = sources.create_source(
        ctx, SourceCreate(url="https://partner.example.cn/feed.xml", category="jijin")
    )
    return {
        "slug": "licai-fangfa",
        "fmt": "rss",
        "post_id": str(post.id),
        "source_id": str(source.id),
        "filename": "missing.css",
        "name": "related",
        "post_slug": post.slug,
        "tag": "chu-xu",  # 储蓄
    }


def read_rules(app: Flask) -> list[Rule]:
    return sorted(
        (rule for rule in app.url_map.iter_rules() if "GET" in (rule.methods or ())),
        key=lambda rule: rule.rule,
    )


def build(rule: Rule, site: dict[str, str], hostile: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group("name")
        if name in hostile:
            return hostile[name]
        if name == "slug" and rule.rule.startswith("/posts/"):
            return site["post_slug"]
        return site.get(name, "1")

    return ARGUMENT.sub(value, rule.rule)


def problems(method: str, url: str, status: int, mimetype: str, body: bytes) -> list[str]:
    """What a user would see wrong in this answer (empty when it is right)."""
    where = f"{method} {url[:120]}{'…' if len(url) > 120 else ''} -> {status}"
    if status >= 500:
        return [f"{where}: a server error"]
    if status < 400:
        return []
    path = url.split("?", 1)[0]
    if path.startswith("/api/"):
        if mimetype != "application/json":
            return [f"{where}: API error as {mimetype}"]
        if method != "HEAD":
            error = json.loads(body).get("error")
            if not isinstance(error, dict) or set(error) != {"code", "message", "fields"}:
                return [f"{where}: API error body {body[:200]!r}"]
    elif mimetype != "text/html":
        return [f"{where}: page error as {mimetype}"]
    return []


def check(
    client: Any, method: str, url: str, headers: dict[str, str], seen: Counter[int] | None = None
) -> list[str]:
    response = client.open(url, method=method, headers=headers)
    if seen is not None:
        seen[response.status_code] += 1
    return problems(method, url, response.status_code, response.mimetype, response.data)


def header_sets(auth: dict[str, str]) -> list[dict[str, str]]:
    return [{}, auth, {"Authorization": "Bearer fsv_" + "%00" * 3}]


def test_every_route_with_every_hostile_segment_and_query(client, app, auth, site) -> None:
    """The fixed sweep: each rule × argument × hostile segment, each rule × hostile query."""
    found: list[str] = []
    seen: Counter[int] = Counter()
    for rule in read_rules(app):
        headers_for = header_sets(auth) if rule.rule.startswith("/api/") else [{}]
        urls = [build(rule, site, {})]
        for name in rule.arguments:
            urls += [build(rule, site, {name: segment}) for segment in HOSTILE_SEGMENTS]
        plain = urls[0]
        urls += [f"{plain}?{query}" for query in HOSTILE_QUERIES]
        for url in urls:
            for method in METHODS:
                for headers in headers_for:
                    found += check(client, method, url, headers, seen)
    print(sorted(seen.items()))
    assert not found, "\n".join(found[:50])
    # Hostile values reached the views, not only the router: answers of every kind came back.
    assert {200, 400, 401, 404} <= set(seen), seen


def segments() -> st.SearchStrategy[str]:
    """Path segments or query values: the fixed list, any text, any bytes, any integer."""
    return st.one_of(
        st.sampled_from(HOSTILE_SEGMENTS),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=30).map(
            lambda text: quote(text, safe="")
        ),
        st.binary(max_size=30).map(lambda raw: quote(raw, safe="")),
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
    )


def queries() -> st.SearchStrategy[str]:
    pair = st.tuples(st.one_of(st.sampled_from(QUERY_KEYS), segments()), segments())
    built = st.lists(pair, max_size=4).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))
    return st.one_of(st.sampled_from(HOSTILE_QUERIES), built)


# The client and the site are shared by the examples on purpose: every request here only
# reads (a token's last-use time aside), so one site serves them all.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_segments_and_queries_never_reach_a_5xx(client, app, auth, site, data) -> None:
    rule = data.draw(st.sampled_from(read_rules(app)), label="rule")
    hostile = {
        name: data.draw(segments(), label=name)
        for name in sorted(rule.arguments)
        if data.draw(st.booleans(), label=f"hostile {name}")
    }
    url = build(rule, site, hostile)
    query = data.draw(st.one_of(st.just(""), queries()), label="query")
    if query:
        url = f"{url}?{query}"
    method = data.draw(st.sampled_from(METHODS), label="method")
    headers = data.draw(st.sampled_from(header_sets(auth)), label="headers")
    assert check(client, method, url, headers) == []


# -- the issue's examples, over a real HTTP server ------------------------------------------

ISSUE_EXAMPLES = [
    ("/feeds/a%00b.rss", 404),
    ("/feeds/a%00b.atom", 404),
    ("/categories/a%00b", 404),
    ("/posts/a%00b", 404),
    ("/feeds/licai-fangfa.rss?limit=%C2%B2", None),
    ("/feeds/licai-fangfa.atom?limit=%D9%A3", None),
    ("/feeds/licai-fangfa.rss?limit=99999999999999999999", None),
    ("/feeds/%ff%fe.rss", 404),
    ("/categories/%ff%fe", 404),
    ("/posts/" + "x" * 8192, 404),
    ("/?page=%ff%fe", None),
    ("/healthz?%00", 400),
    ("/api/v1/posts/%D9%A3", 404),
    ("/api/v1/posts?limit=%C2%B2", None),
]


@pytest.fixture
def served(app: Flask, site: dict[str, str]) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.mark.parametrize(("url", "status"), ISSUE_EXAMPLES)
def test_the_issues_examples_over_http(served: str, url: str, status: int | None) -> None:
    """The bytes go on the wire as written (no client-side decoding or normalising)."""
    for method in METHODS:
        connection = http.client.HTTPConnection(served, timeout=30)
        try:
            connection.putrequest(method, url, skip_accept_encoding=True)
            connection.endheaders()
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        mimetype = (response.getheader("Content-Type") or "").split(";")[0]
        assert problems(method, url, response.status, mimetype, body) == []
        if status is not None and method != "OPTIONS":
            assert response.status == status, (method, url)
