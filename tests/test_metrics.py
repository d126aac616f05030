"""/metrics through the Flask test client: format, labels, token, off switch, hostile input.

Counters live for the whole test process (one registry per process, as in production), so
every assertion compares two scrapes. The multiprocess side (several gunicorn workers and the
scheduler) is in test_metrics_process.py.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from feedsvc import create_app, metrics
from feedsvc.config import ConfigError, load_settings
from feedsvc.jobs import run_job
from feedsvc.related.jobs import REFRESH
from feedsvc.web.metrics import route_label
from tests.conftest import overrides_for
from tests.dbfaults import with_url
from tests.factories import Factory
from tests.metrics_scrape import Samples, delta, label_values, parse_samples, total, value

pytestmark = pytest.mark.usefixtures("backend")

TOKEN = "s3cret-metrics-token_0123456789"
FEED_ROUTE = "/feeds/<slug>.<fmt>"


@pytest.fixture
def settings(db_url: str):  # type: ignore[no-untyped-def]
    """The conftest app, client and factory, with metrics on."""
    return load_settings(overrides_for(db_url, metrics={"enabled": True}), environ={})


def scrape(client: Any, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return parse_samples(response.get_data(as_text=True))


def test_text_format_and_headers(client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert families["feedsvc_http_requests"].type == "counter"
    assert families["feedsvc_http_request_duration_seconds"].type == "histogram"
    assert families["feedsvc_related_stale_seconds"].type == "gauge"
    assert "feedsvc_http_requests_created" not in families  # no *_created noise


def test_feed_requests_cache_and_conditional_gets(client, factory: Factory) -> None:
    factory.post(category="jijin", title="定投的第一年")
    before = scrape(client)
    first = client.get("/feeds/jijin.rss")  # rendered: a cache miss
    assert first.status_code == 200
    assert client.get("/feeds/jijin.rss").status_code == 200  # from the cache
    etag = first.headers["ETag"]
    assert client.get("/feeds/jijin.rss", headers={"If-None-Match": etag}).status_code == 304
    changed = client.get("/feeds/jijin.rss", headers={"If-None-Match": '"old"'})
    assert changed.status_code == 200
    assert client.head("/feeds/jijin.atom").status_code == 200  # a miss: another format
    assert client.get("/feeds/no-such-category.rss").status_code == 404
    d = delta(scrape(client), before)

    requests = "feedsvc_http_requests_total"
    assert value(d, requests, route=FEED_ROUTE, method="GET", status="200") == 3
    assert value(d, requests, route=FEED_ROUTE, method="GET", status="304") == 1
    assert value(d, requests, route=FEED_ROUTE, method="HEAD", status="200") == 1
    assert value(d, requests, route=FEED_ROUTE, method="GET", status="404") == 1
    # The scrape before this one is counted too, under its own rule.
    assert value(d, requests, route="/metrics", method="GET", status="200") == 1
    assert value(d, "feedsvc_http_request_duration_seconds_count", route=FEED_ROUTE) == 6
    assert value(d, "feedsvc_http_request_duration_seconds_sum", route=FEED_ROUTE) > 0
    # Lookups for an existing category only: 2 misses (rss, atom) and 3 hits.
    assert value(d, "feedsvc_feed_cache_lookups_total", result="miss") == 2
    assert value(d, "feedsvc_feed_cache_lookups_total", result="hit") == 3
    # Only the two requests that carried a validator: one 304, one 200.
    assert value(d, "feedsvc_feed_conditional_requests_total", status="304") == 1
    assert value(d, "feedsvc_feed_conditional_requests_total", status="200") == 1


def test_routes_are_url_rules_never_raw_paths(client, factory: Factory) -> None:
    factory.post(category="jijin")
    factory.post(category="gupiao")
    for path in ("/feeds/jijin.rss", "/feeds/gupiao.atom", "/categories/jijin"):
        assert client.get(path).status_code == 200
    for n in range(5):  # a crawler trying paths: one label, not five
        assert client.get(f"/wp-admin/{n}/setup.php?x={n}").status_code == 404
    assert client.open("/feeds/jijin.rss", method="BREW").status_code == 405
    samples = scrape(client)
    routes = label_values(samples, "feedsvc_http_requests_total", "route")
    assert {FEED_ROUTE, "/categories/<slug>", metrics.UNMATCHED} <= routes
    assert not any("jijin" in route or "wp-admin" in route for route in routes), routes
    assert "BREW" not in label_values(samples, "feedsvc_http_requests_total", "method")
    assert total(samples, "feedsvc_http_requests_total", route=metrics.UNMATCHED, method="other")


def test_disabled_is_a_404_like_any_unknown_path(db_url: str) -> None:
    app = create_app(settings=load_settings(overrides_for(db_url), environ={}))
    try:
        client = app.test_client()
        response = client.get("/metrics")
        unknown = client.get("/no-such-page")
        assert response.status_code == unknown.status_code == 404
        assert response.headers["Content-Type"] == unknown.headers["Content-Type"]
        assert not metrics.enabled()
        # Hooks with metrics off do nothing, and do not fail.
        metrics.feed_cache_hit()
        metrics.job_finished(metrics.job_started("sources-poll"), "succeeded")
        metrics.source_polled(200, None)
    finally:
        app.extensions["feedsvc"].db.dispose()


@pytest.fixture
def token_client(db_url: str):  # type: ignore[no-untyped-def]
    overrides = overrides_for(db_url, metrics={"enabled": True, "token": TOKEN})
    app = create_app(settings=load_settings(overrides, environ={}))
    yield app.test_client()
    app.extensions["feedsvc"].db.dispose()


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong-token-0123456789",
        f"Bearer {TOKEN[:-1]}",  # a prefix
        f"Bearer {TOKEN}x",  # longer
        f"Bearer {TOKEN}\x00",  # NUL
        f"Bearer \x00{TOKEN}",
        f"Basic {TOKEN}",
        f"Bearer {TOKEN[:-2]}指标",  # not ASCII
        TOKEN,  # no scheme
    ],
)
def test_token_refuses_anything_else(token_client, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = token_client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"feedsvc_http_requests" not in response.data
    assert "metrics.token" in response.get_data(as_text=True)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_token_accepted(token_client, scheme: str) -> None:
    response = token_client.get("/metrics", headers={"Authorization": f"{scheme} {TOKEN}"})
    assert response.status_code == 200
    assert b"feedsvc_http_requests_total" in response.data


@pytest.mark.parametrize(
    "token",
    [
        "short",
        "a" * 201,
        "has space in it 0123",
        "nul\x00-in-the-token-0123",
        "指标指标指标指标指标指标指标指标",
    ],
)
def test_unusable_token_stops_start_up(db_url: str, token: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(overrides_for(db_url, metrics={"enabled": True, "token": token}), environ={})
    assert "metrics.token" in str(error.value)
    assert "\n" not in str(error.value)


def test_query_strings_head_and_methods(client) -> None:
    plain = client.get("/metrics?name[]=feedsvc_job_runs&format=json")
    assert plain.status_code == 200
    assert plain.headers["Content-Type"].startswith("text/plain")
    assert "feedsvc_http_requests_total" in parse_samples_names(plain.get_data(as_text=True))
    assert client.get("/metrics?x=%00").status_code == 400  # the app's NUL guard, as elsewhere
    head = client.head("/metrics")
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Type"].startswith("text/plain")
    assert client.post("/metrics").status_code == 405


def parse_samples_names(text: str) -> set[str]:
    return {name for name, _ in parse_samples(text)}


def test_gzip_and_openmetrics(client) -> None:
    zipped = client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(zipped.data).decode()
    assert "feedsvc_http_requests_total" in parse_samples_names(text)
    open_metrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert open_metrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert open_metrics.data.endswith(b"# EOF\n")
    for accept in ("text/plain; version=abc", "application/openmetrics-text; version=x.y", "\x7f"):
        odd = client.get("/metrics", headers={"Accept": accept})
        assert odd.status_code == 200, accept


def test_job_runs_by_job_and_status(client, ctx, factory: Factory) -> None:
    factory.post()
    before = scrape(client)
    assert run_job(ctx, REFRESH, trigger="cli").value == "succeeded"
    d = delta(scrape(client), before)
    assert value(d, "feedsvc_job_runs_total", job="related-refresh", status="succeeded") == 1
    assert value(d, "feedsvc_job_run_duration_seconds_count", job="related-refresh") == 1
    after = scrape(client)
    assert value(after, "feedsvc_job_running", job="related-refresh") == 0
    assert value(after, "feedsvc_job_last_success_timestamp_seconds", job="related-refresh") > 0


def test_related_freshness_gauges(client, ctx, clock, factory: Factory) -> None:
    stale, pending = "feedsvc_related_stale_seconds", "feedsvc_related_pending_changes"
    age = "feedsvc_related_refreshed_age_seconds"
    samples = scrape(client)
    assert value(samples, stale) == 0 and value(samples, pending) == 0
    assert total(samples, age) == 0 and (age, frozenset()) not in samples  # never refreshed

    factory.post(title="写于此刻的一篇")  # logged as a change at "now"
    clock.advance(seconds=120)
    samples = scrape(client)
    assert value(samples, stale) == 120 and value(samples, pending) == 1

    assert run_job(ctx, REFRESH, trigger="cli").value == "succeeded"
    clock.advance(seconds=60)
    samples = scrape(client)
    assert value(samples, stale) == 0 and value(samples, pending) == 0
    assert value(samples, age) == 60

    # A scheduled post: its write is applied at once, it becomes due later with no write.
    factory.post(title="定时发布", published_at=clock.now() + timedelta(minutes=5))
    assert run_job(ctx, REFRESH, trigger="cli").value == "succeeded"
    clock.advance(minutes=4)
    assert value(scrape(client), stale) == 0  # not due yet: nothing to show
    clock.advance(minutes=3)  # due one minute after the write... and two minutes ago
    samples = scrape(client)
    assert value(samples, stale) == 120 and value(samples, pending) == 1
    assert run_job(ctx, REFRESH, trigger="cli").value == "succeeded"
    assert value(scrape(client), stale) == 0


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (200, None, "fetched"),
        (304, None, "not_modified"),
        (404, "fetch: HTTP 404 Not Found", "http_4xx"),
        (410, "fetch: HTTP 410 Gone", "http_4xx"),
        (503, "fetch: HTTP 503 Service Unavailable", "http_5xx"),
        (None, "fetch: connect timeout after 10s", "timeout"),
        (None, "fetch: read timeout after 30s", "timeout"),
        (200, "fetch: took longer than 120s", "timeout"),
        (None, "fetch: cannot resolve host nope.invalid: [Errno -2]", "dns"),
        (None, "fetch: cannot connect to 127.0.0.1: [Errno 111]", "connect"),
        (None, "fetch: host 10.0.0.1 is a private address", "refused"),
        (None, "fetch: host x.test resolves to 127.0.0.1, a loopback address", "refused"),
        (None, "fetch: only http and https URLs are fetched, not 'file:///etc/passwd'", "refused"),
        (302, "fetch: more than 5 redirects", "redirect"),
        (302, "fetch: redirect loop at http://a.test/", "redirect"),
        (301, "fetch: HTTP 301 without a Location header", "redirect"),
        (200, "fetch: body larger than 10485760 bytes", "too_large"),
        (200, "fetch: decompressed body larger than 10485760 bytes", "too_large"),
        (200, "fetch: corrupt gzip body: Error -3", "bad_body"),
        (200, "fetch: unsupported content-encoding 'br'", "bad_body"),
        (200, "parse: no entries and not a feed", "parse_error"),
        (None, "store: IntegrityError: duplicate key", "store_error"),
        (None, "fetch: RemoteProtocolError: illegal header", "other"),
    ],
)
def test_fetch_outcome_kinds(status: int | None, error: str | None, kind: str) -> None:
    assert metrics.fetch_outcome(status, error) == kind


@pytest.mark.parametrize("broken", ["unreachable", "not-migrated"])
def test_scrape_answers_when_the_database_does_not(
    settings, clock, tmp_path, broken: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = (
        "postgresql+psycopg://postgres@127.0.0.1:1/feedsvc"
        if broken == "unreachable"
        else f"sqlite:///{tmp_path / 'empty.db'}"
    )
    app = create_app(settings=with_url(settings, url), clock=clock)
    try:
        client = app.test_client()
        assert client.get("/healthz").status_code == 503
        response = client.get("/metrics")
    finally:
        app.extensions["feedsvc"].db.dispose()
    assert response.status_code == 200  # the counters are still worth reading
    samples = parse_samples(response.get_data(as_text=True))
    assert value(
        samples, "feedsvc_http_requests_total", route="/healthz", method="GET", status="503"
    )
    names = {name for name, _ in samples}
    assert "feedsvc_related_stale_seconds" not in names  # absent: alert on absent()
    assert "metrics: related freshness not read" in caplog.text


def test_unknown_metrics_key_stops_start_up(db_url: str) -> None:
    with pytest.raises(ConfigError, match=r"metrics\.enable: unknown key"):
        load_settings(overrides_for(db_url, metrics={"enable": True}), environ={})
    with pytest.raises(ConfigError, match=r"metrics\.enabled"):
        load_settings(overrides_for(db_url, metrics={"enabled": "yes please"}), environ={})


def test_the_metrics_folder_of_a_serve(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    path = metrics.prepare_multiprocess_dir()
    try:
        assert path.parent == tmp_path and path.name.startswith("feedsvc-metrics-")
        assert list(path.iterdir()) == []  # fresh and empty: no earlier run's counts
        assert os.environ[metrics.MULTIPROC_ENV] == str(path)
    finally:
        metrics.remove_multiprocess_dir(path)
    assert not path.exists() and metrics.MULTIPROC_ENV not in os.environ

    not_a_folder = tmp_path / "runtime"
    not_a_folder.write_text("")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(not_a_folder))
    path = metrics.prepare_multiprocess_dir()
    try:
        assert path.parent == Path(tempfile.gettempdir())
    finally:
        metrics.remove_multiprocess_dir(path)


def test_a_metrics_folder_that_is_gone_stops_start_up(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path / "gone"))
    with pytest.raises(ConfigError, match=r"PROMETHEUS_MULTIPROC_DIR=.*gone is not a writable"):
        metrics.configure(True)


@hypothesis_settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.text(max_size=40),
    method=st.one_of(st.sampled_from(sorted(metrics.METHODS)), st.from_regex(r"[A-Za-z]{1,12}")),
    query=st.text(max_size=20),
)
def test_no_request_adds_a_label_value(app, client, path: str, method: str, query: str) -> None:
    """Whatever a client sends, the label values stay within the app's rules and a fixed set."""
    response = client.open(
        "/" + quote(path, safe="/"), method=method, query_string=quote(query, safe="=&")
    )
    assert response.status_code < 500
    samples = scrape(client)
    rules = {route_label(rule.rule) for rule in app.url_map.iter_rules()} | {metrics.UNMATCHED}
    assert label_values(samples, "feedsvc_http_requests_total", "route") <= rules
    methods = metrics.METHODS | {"other"}
    assert label_values(samples, "feedsvc_http_requests_total", "method") <= methods


def test_tallied_latency_equals_what_observe_writes(client) -> None:
    """Requests are tallied in memory and added per bucket (feedsvc/metrics.py): the exported
    histogram must be what prometheus_client's own observe() makes of the same values."""
    from prometheus_client import CollectorRegistry, Histogram

    route = f"/test-route-{uuid.uuid4().hex}"
    values = [0.0001, 0.0005, 0.00051, 0.003, 0.02, 0.7, 5.0, 7.5, 120.0, 0.0]
    reference = Histogram(
        "reference",
        "the same values, observed",
        buckets=metrics.HTTP_BUCKETS,
        registry=CollectorRegistry(),
    )
    for seconds in values:
        metrics.request_finished(route, "GET", 200, seconds)
        reference.observe(seconds)
    samples = scrape(client)
    expected = {
        (
            sample.name.replace("reference", "feedsvc_http_request_duration_seconds"),
            frozenset({**sample.labels, "route": route}.items()),
        ): sample.value
        for family in reference.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }
    ours = {
        key: v
        for key, v in samples.items()
        if ("route", route) in key[1] and key[0].startswith("feedsvc_http_request_duration_seconds")
    }
    assert ours == pytest.approx(expected)
    assert (
        value(samples, "feedsvc_http_requests_total", route=route, method="GET", status="200") == 10
    )


def test_fast_path_label_is_the_feed_rule_label(app: Any) -> None:
    """Warm polls answered before Flask count under the same label as the view's."""
    from feedsvc.web.feeds import FEED_ROUTE
    from feedsvc.web.metrics import route_label

    rules = [r.rule for r in app.url_map.iter_rules() if r.endpoint == "feeds.feed"]
    assert [route_label(rule) for rule in rules] == [FEED_ROUTE]


def test_page_fast_path_labels_are_the_page_rules_labels(app: Any) -> None:
    """Cached pages answered before Flask count under the labels of their views."""
    from feedsvc.web.metrics import route_label
    from feedsvc.web.pages import _ROUTES

    rules = {
        route_label(r.rule)
        for r in app.url_map.iter_rules()
        if r.endpoint in ("pages.home", "pages.category", "pages.tag", "pages.post")
    }
    assert {label for _, label in _ROUTES} == rules
