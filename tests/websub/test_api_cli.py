"""The built-in hub's subscriptions through the API and the CLI; the websub job's backlog."""

from __future__ import annotations

import json
from typing import Any

import pytest

from feedsvc import jobs
from feedsvc.cli import cli
from feedsvc.config import load_settings
from feedsvc.websub.jobs import WEBSUB
from tests.conftest import BASE_URL, overrides_for
from tests.test_cli_errors import assert_one_error_line
from tests.websub.subscriber import Subscriber, running_subscriber

pytestmark = pytest.mark.usefixtures("backend")

TOPIC = f"{BASE_URL}/feeds/all.json"


@pytest.fixture
def settings(db_url: str):  # type: ignore[no-untyped-def]
    return load_settings(overrides_for(db_url, websub={"hub": "builtin"}), environ={})


@pytest.fixture
def subscriber() -> Any:
    with running_subscriber() as sub:
        yield sub


def subscribe_two(client: Any, ctx: Any, sub: Subscriber) -> None:
    for n in (1, 2):
        form = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": sub.callback(f"c{n}")}
        if n == 1:
            form["hub.secret"] = "只给推送签名用的密钥"
        assert client.post("/websub", data=form).status_code == 202
        # One at a time: verified together, their ids would come in the order they answered.
        assert jobs.run_job(ctx, WEBSUB, trigger="cli") is jobs.Outcome.SUCCEEDED


def websub_backlog(client: Any, auth: dict[str, str]) -> int:
    listing = client.get("/api/v1/jobs", headers=auth).json["items"]
    (job,) = [item for item in listing if item["name"] == "websub"]
    return int(job["backlog"])


def test_list_page_and_remove(client, ctx, factory, auth, subscriber) -> None:
    factory.post()
    assert client.get("/api/v1/websub/subscriptions").status_code == 401
    subscribe_two(client, ctx, subscriber)
    first = client.get("/api/v1/websub/subscriptions?limit=1", headers=auth)
    assert first.status_code == 200
    (one,) = first.json["items"]
    assert one["topic"] == TOPIC and one["callback"] == subscriber.callback("c1")
    assert one["has_secret"] is True and "secret" not in one
    assert one["owed"] is False and one["failures"] == 0
    assert one["lease_seconds"] == ctx.settings.websub.default_lease_seconds
    second = client.get(
        f"/api/v1/websub/subscriptions?limit=1&cursor={first.json['next_cursor']}", headers=auth
    )
    (two,) = second.json["items"]
    assert two["callback"] == subscriber.callback("c2") and two["has_secret"] is False
    assert second.json["next_cursor"] is None

    # A change: both are owed the new body until the job delivers it; the backlog says so.
    assert websub_backlog(client, auth) == 0
    factory.post(title="又一篇")
    jobs.run_job(ctx, WEBSUB, trigger="cli")
    assert len(subscriber.deliveries) == 2
    assert websub_backlog(client, auth) == 0
    subscriber.post_status = 503
    factory.post(title="订阅者暂时不可用")
    jobs.run_job(ctx, WEBSUB, trigger="cli")
    assert websub_backlog(client, auth) == 2
    items = client.get("/api/v1/websub/subscriptions", headers=auth).json["items"]
    assert all(i["owed"] and i["failures"] == 1 and "503" in i["last_error"] for i in items)

    assert client.delete(f"/api/v1/websub/subscriptions/{one['id']}").status_code == 401
    gone = client.delete(f"/api/v1/websub/subscriptions/{one['id']}", headers=auth)
    assert gone.status_code == 204
    again = client.delete(f"/api/v1/websub/subscriptions/{one['id']}", headers=auth)
    assert again.status_code == 404
    left = client.get("/api/v1/websub/subscriptions", headers=auth).json["items"]
    assert [i["id"] for i in left] == [two["id"]]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=١", "cursor=abc", "limit=99999999999999999999", "bogus=1"]
)
def test_bad_list_queries_are_400(client, auth, query) -> None:
    assert client.get(f"/api/v1/websub/subscriptions?{query}", headers=auth).status_code == 400


@pytest.mark.parametrize("ident", ["0", "99999999999999999999", "abc", "%00", "١"])
def test_removing_what_is_not_there_is_404(client, auth, ident) -> None:
    answer = client.delete(f"/api/v1/websub/subscriptions/{ident}", headers=auth)
    assert answer.status_code == 404
    assert answer.json["error"]["code"] == "not_found"


def test_cli_list_and_remove(client, ctx, factory, runner, subscriber) -> None:
    factory.post()
    empty = runner.invoke(cli, ["websub", "list"])
    assert empty.exit_code == 0 and "no subscriptions" in empty.output
    # A request waiting for verification is listed too.
    pending = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": "https://r.example/x"}
    client.post("/websub", data=pending)
    waiting = runner.invoke(cli, ["websub", "list"])
    assert "https://r.example/x" in waiting.output and "subscribe" in waiting.output
    (pending_json,) = json.loads(runner.invoke(cli, ["websub", "list", "--json"]).output)["pending"]
    assert pending_json["callback"] == "https://r.example/x" and pending_json["attempts"] == 0
    api = client.get(
        "/api/v1/websub/requests", headers={"Authorization": f"Bearer {factory.token()}"}
    )
    assert [item["callback"] for item in api.json["items"]] == ["https://r.example/x"]
    assert client.get("/api/v1/websub/requests").status_code == 401
    subscribe_two(client, ctx, subscriber)
    shown = runner.invoke(cli, ["websub", "list"])
    assert shown.exit_code == 0
    assert subscriber.callback("c1") in shown.output and TOPIC in shown.output
    as_json = json.loads(runner.invoke(cli, ["websub", "list", "--json"]).output)
    ids = [item["id"] for item in as_json["items"]]
    assert len(ids) == 2
    removed = runner.invoke(cli, ["websub", "remove", str(ids[0])])
    assert removed.exit_code == 0 and f"removed subscription {ids[0]}" in removed.output
    assert_one_error_line(runner.invoke(cli, ["websub", "remove", str(ids[0])]), 1, "no WebSub")
    assert_one_error_line(runner.invoke(cli, ["websub", "remove", "abc"]), 1, "id")
    assert_one_error_line(runner.invoke(cli, ["websub", "remove", "9" * 30]), 1, "9" * 30)
    listing = runner.invoke(cli, ["jobs", "list"])
    assert listing.exit_code == 0 and "backlog" in listing.output and "websub" in listing.output
