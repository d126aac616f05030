"""/websub requests: what is accepted (202), what is refused (4xx, JSON, nothing recorded),
what is denied (202, then a hub.mode=denied GET to the callback), leases within bounds."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from sqlalchemy import func, select

from feedsvc import jobs
from feedsvc.config import load_settings
from feedsvc.models import WebSubIntent, WebSubSubscription
from feedsvc.websub.jobs import WEBSUB
from tests.conftest import BASE_URL, overrides_for
from tests.factories import Factory
from tests.websub.subscriber import running_subscriber

pytestmark = pytest.mark.usefixtures("backend")

TOPIC = f"{BASE_URL}/feeds/licai-fangfa.rss"
CALLBACK = "https://reader.example.test/push/1"


@pytest.fixture
def settings(db_url: str):  # type: ignore[no-untyped-def]
    websub = {
        "hub": "builtin",
        "min_lease_seconds": 600,
        "max_lease_seconds": 86400,
        "default_lease_seconds": 3600,
        "max_subscriptions": 3,
    }
    return load_settings(overrides_for(db_url, websub=websub), environ={})


def held(ctx: Any) -> tuple[int, int]:
    with ctx.db.read() as session:
        return (
            session.scalar(select(func.count()).select_from(WebSubIntent)) or 0,
            session.scalar(select(func.count()).select_from(WebSubSubscription)) or 0,
        )


def form(**fields: str) -> dict[str, str]:
    base = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": CALLBACK}
    base.update({key.replace("_", ".", 1): value for key, value in fields.items()})
    return {key: value for key, value in base.items() if value != "-"}


BAD = [
    (form(hub_mode="-"), "hub.mode", "is required"),
    (form(hub_mode="publish"), "hub.mode", "must be one of"),
    (form(hub_mode="SUBSCRIBE"), "hub.mode", "must be one of"),
    (form(hub_topic="-"), "hub.topic", "is required"),
    (form(hub_topic="feeds/licai-fangfa.rss"), "hub.topic", "absolute http(s) URL"),
    (form(hub_callback="-"), "hub.callback", "is required"),
    (form(hub_callback=""), "hub.callback", "absolute http(s) URL"),
    (form(hub_callback="ftp://reader.example.test/x"), "hub.callback", "absolute http(s) URL"),
    (form(hub_callback="javascript:alert(1)"), "hub.callback", "absolute http(s) URL"),
    (form(hub_callback="https://reader.example.test/a#frag"), "hub.callback", "fragment"),
    (form(hub_callback="https://reader.example.test/a b"), "hub.callback", "spaces"),
    (form(hub_callback="https://reader.example.test/" + "x" * 2000), "hub.callback", "2000"),
    (form(hub_callback="http://10.0.0.7/cb"), "hub.callback", "private address"),
    (form(hub_callback="http://169.254.169.254/latest"), "hub.callback", "link-local"),
    (form(hub_callback="http://[::1]:8080/cb"), "hub.callback", "loopback"),
    (form(hub_callback="http://app.localhost/cb"), "hub.callback", "loopback"),
    (form(hub_callback="http://xn--/cb"), "hub.callback", "invalid URL"),
    (form(hub_callback="http://xn--a.com/cb"), "hub.callback", "invalid URL"),
    (form(hub_callback="http://reader.example.test:99999/cb"), "hub.callback", "port"),
    (form(hub_callback="http://reader.example.test:0/cb"), "hub.callback", "port"),
    (form(hub_callback="https://reader.example.test/cb%zz%"), "hub.callback", "hexadecimal"),
    (form(hub_callback="https://me:pw@reader.example.test/cb"), "hub.callback", "credentials"),
    (form(hub_topic="http://xn--/feeds/all.rss"), "hub.topic", "invalid URL"),
    (form(hub_lease_seconds="٣٦٠٠"), "hub.lease_seconds", "ASCII digits"),
    (form(hub_lease_seconds="-5"), "hub.lease_seconds", "whole number"),
    (form(hub_lease_seconds="1e6"), "hub.lease_seconds", "whole number"),
    (form(hub_lease_seconds=""), "hub.lease_seconds", "whole number"),
    (form(hub_secret="s" * 200), "hub.secret", "less than 200 bytes"),
    (form(hub_secret="密" * 67), "hub.secret", "less than 200 bytes"),  # 201 bytes
]


@pytest.mark.parametrize(("data", "field", "message"), BAD)
def test_bad_requests_are_400_and_record_nothing(
    client, ctx, factory, data, field, message
) -> None:
    factory.category()
    answer = client.post("/websub", data=data)
    assert answer.status_code == 400, answer.data
    error = answer.json["error"]
    assert field in error["fields"] and message in error["fields"][field], error
    assert held(ctx) == (0, 0)


@pytest.mark.parametrize("field", ["hub.topic", "hub.callback", "hub.secret", "hub.mode"])
def test_nul_anywhere_is_refused(client, ctx, factory, field) -> None:
    factory.category()
    data = form()
    data[field] = data.get(field, "密钥") + "\x00"
    answer = client.post("/websub", data=data)
    assert answer.status_code == 400 and "NUL" in answer.json["error"]["message"]
    assert held(ctx) == (0, 0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # An escape that is not UTF-8: werkzeug would keep "%FF%C3" as the secret's text.
        (b"hub.secret=%ff%c3&", "not UTF-8"),
        (b"hub.topic=\xff\xfe&", "ASCII"),
        (b"hub.callback=https%3A%2F%2Fother.example.test%2Fcb&", "given twice"),
        (b"&".join(b"p%d=1" % n for n in range(60)) + b"&", "more than 50 parameters"),
    ],
)
def test_forms_read_strictly(client, ctx, factory, body, message) -> None:
    factory.category()
    good = (
        f"hub.mode=subscribe&hub.topic={TOPIC}&hub.callback=https%3A%2F%2Freader.example.test%2F1"
    ).encode()
    answer = client.post(
        "/websub", data=body + good, content_type="application/x-www-form-urlencoded"
    )
    assert answer.status_code == 400, answer.data
    assert message in answer.json["error"]["message"]
    assert held(ctx) == (0, 0)


def test_callbacks_are_normalised(client, ctx, factory) -> None:
    factory.category()
    data = form(hub_callback="HTTPS://Reader.Example.TEST:8443/Push?Id=A")
    assert client.post("/websub", data=data).status_code == 202
    with ctx.db.read() as session:
        (row,) = session.scalars(select(WebSubIntent))
    assert row.callback == "https://reader.example.test:8443/Push?Id=A"


def test_a_form_is_required(client, ctx, factory) -> None:
    factory.category()
    assert client.post("/websub", json=form()).status_code == 415
    assert (
        client.post("/websub", data="hub.mode=subscribe", content_type="text/plain").status_code
        == 415
    )
    assert client.get("/websub").status_code == 405
    big = client.post("/websub", data={**form(), "padding": "x" * 2_000_000})
    assert big.status_code == 413
    assert held(ctx) == (0, 0)


def test_accepted_requests_and_lease_bounds(client, ctx, factory) -> None:
    factory.category()
    # Unknown parameters are ignored (WebSub §5.1); a huge lease is clamped, never an error.
    extra = {"hub.lease_seconds": "9" * 40, "utm_source": "x"}
    answer = client.post("/websub", data={**form(), **extra})
    assert answer.status_code == 202 and answer.json["status"] == "accepted"
    other = form(hub_callback="https://reader.example.test/push/2", hub_lease_seconds="1")
    assert client.post("/websub", data=other).status_code == 202
    third = form(hub_callback="https://reader.example.test/push/3", hub_secret="")
    assert client.post("/websub", data=third).status_code == 202
    with ctx.db.read() as session:
        rows = list(session.scalars(select(WebSubIntent).order_by(WebSubIntent.id)))
    assert [row.lease_seconds for row in rows] == [86400, 600, 3600]
    assert rows[2].secret is None  # an empty secret is none
    # The same pair again supersedes its pending request: still three held ...
    assert client.post("/websub", data=form(hub_lease_seconds="7200")).status_code == 202
    assert held(ctx) == (3, 0)
    # ... and a fourth pair is past websub.max_subscriptions.
    full = client.post("/websub", data=form(hub_callback="https://reader.example.test/push/4"))
    assert full.status_code == 503 and "max_subscriptions" in full.json["error"]["message"]
    assert held(ctx) == (3, 0)


@pytest.mark.parametrize(
    "topic",
    [
        "https://elsewhere.example.test/feed.xml",
        f"{BASE_URL}/feeds/no-such-category.rss",
        f"{BASE_URL}/feeds/licai-fangfa.rss?limit=5",
        f"{BASE_URL}/feeds/licai-fangfa.xml",
        f"{BASE_URL}/posts/abc",
        f"{BASE_URL}/feeds/tags/没有这个标签.atom",
    ],
)
def test_topics_that_are_not_feeds_here_are_denied(client, ctx, factory, topic) -> None:
    factory.category()
    with running_subscriber() as sub:
        answer = client.post("/websub", data=form(hub_topic=topic, hub_callback=sub.callback()))
        assert answer.status_code == 202
        assert jobs.run_job(ctx, WEBSUB, trigger="cli") is jobs.Outcome.SUCCEEDED
        (denied,) = sub.of("GET")
        assert denied.params["hub.mode"] == "denied"
        assert denied.params["hub.topic"] == topic
        assert denied.params["hub.reason"]
        assert "hub.challenge" not in denied.params
    assert held(ctx) == (0, 0)


def test_a_tag_feed_named_by_its_tag_is_a_topic(client, ctx, factory) -> None:
    factory.post(tags=["定投"])
    with running_subscriber() as sub:
        topic = f"{BASE_URL}/feeds/tags/定投.json"
        assert (
            client.post(
                "/websub", data=form(hub_topic=topic, hub_callback=sub.callback())
            ).status_code
            == 202
        )
        assert jobs.run_job(ctx, WEBSUB, trigger="cli") is jobs.Outcome.SUCCEEDED
        (check,) = sub.of("GET", "subscribe")
        assert check.params["hub.topic"] == topic
        with ctx.db.read() as session:
            (row,) = session.scalars(select(WebSubSubscription))
        assert (row.feed, row.fmt, row.topic) == ("tags/ding-tou", "json", topic)
        factory.post(tags=["定投"], title="定投第二篇")
        assert jobs.run_job(ctx, WEBSUB, trigger="cli") is jobs.Outcome.SUCCEEDED
        (delivery,) = sub.deliveries
        # WebSub §7: rel="self" is the topic's canonical URL, the one the feed says it has.
        canonical = f"{BASE_URL}/feeds/tags/ding-tou.json"
        assert f'<{canonical}>; rel="self"' in delivery.headers["link"]


def test_a_callback_that_says_404_is_not_subscribed(client, ctx, factory) -> None:
    factory.category()
    with running_subscriber(echo=404) as sub:
        client.post("/websub", data=form(hub_callback=sub.callback()))
        assert jobs.run_job(ctx, WEBSUB, trigger="cli") is jobs.Outcome.SUCCEEDED
        assert len(sub.of("GET", "subscribe")) == 1
    assert held(ctx) == (0, 0)


def test_a_callback_name_resolving_to_a_private_address_is_never_asked(
    db_url, clock, caplog
) -> None:
    """A name is judged when the job resolves it: this machine's own name resolves to a
    loopback or private address (/etc/hosts), which the guard refuses when no allow-list
    names it (the test settings allow 127.0.0.1 for the other tests: not here)."""
    from feedsvc import create_app

    websub = {"hub": "builtin"}
    settings = load_settings(
        overrides_for(db_url, websub=websub, sources={"allow_hosts": []}), environ={}
    )
    app = create_app(settings=settings, clock=clock)
    ctx, client = app.extensions["feedsvc"], app.test_client()
    Factory(ctx).category()
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 80)}
    except OSError:
        pytest.skip(f"{name} does not resolve here")
    if any(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses):
        pytest.skip(f"{name} resolves to a public address here")
    with running_subscriber() as sub:
        callback = f"http://{name}:{sub.port}/cb"
        assert client.post("/websub", data=form(hub_callback=callback)).status_code == 202
        with caplog.at_level("WARNING", logger="feedsvc.websub"):
            assert jobs.run_job(ctx, WEBSUB, trigger="cli") is jobs.Outcome.SUCCEEDED
        assert sub.received == []
    assert held(ctx) == (0, 0)
    assert "not verified" in caplog.text and "address" in caplog.text
    ctx.db.dispose()


def test_the_hub_is_off_unless_builtin(db_url, clock) -> None:
    from feedsvc import create_app

    for hub in ("", "https://pubsubhubbub.example.test/"):
        settings = load_settings(overrides_for(db_url, websub={"hub": hub}), environ={})
        app = create_app(settings=settings, clock=clock)
        try:
            answer = app.test_client().post("/websub", data=form())
            assert answer.status_code == 404
            assert "builtin" in answer.json["error"]["message"]
        finally:
            app.extensions["feedsvc"].db.dispose()
