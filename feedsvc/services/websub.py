"""The built-in hub's write operations: a subscriber's request recorded, a subscription removed.

A request (W3C WebSub §5.1) is answered 202 once it is recorded: nothing here talks to the
network. The scheduler process verifies it (or tells the callback it was denied) within
seconds (feedsvc/websub/verify.py).
"""

from __future__ import annotations

from feedsvc.config import BUILTIN_HUB
from feedsvc.context import Context
from feedsvc.errors import BadRequest, NotFound, Unavailable
from feedsvc.feeds import service
from feedsvc.feeds.versions import TAG_FEED
from feedsvc.repo import websub as websub_repo
from feedsvc.schemas import HubRequest
from feedsvc.sources.guard import literal_refusal
from feedsvc.websub.topics import NotATopic, Topic, parse_topic


def allowed_callback_hosts(ctx: Context) -> frozenset[str]:
    return frozenset(ctx.settings.websub.allow_hosts) | frozenset(ctx.settings.sources.allow_hosts)


def lease_for(ctx: Context, asked: int | None) -> int:
    """§5.1: the hub chooses the lease; what was asked is kept within the configured bounds."""
    settings = ctx.settings.websub
    if asked is None:
        return settings.default_lease_seconds
    return max(settings.min_lease_seconds, min(asked, settings.max_lease_seconds))


def find_topic(ctx: Context, url: str) -> Topic:
    """The feed of this site a topic URL names; NotATopic (with the reason) otherwise."""
    topic = parse_topic(url, ctx.settings.site.base_url)
    if service.versions(ctx).state(topic.feed) is not None:
        return topic
    if topic.feed.startswith(TAG_FEED):  # a tag's feed named by the tag (its URL redirects)
        slug = service.tag_slug_named(ctx, topic.feed[len(TAG_FEED) :])
        if slug is not None:
            return Topic(TAG_FEED + slug, topic.fmt)
    raise NotATopic(f"{url} is not a feed of this site")


def request_subscription(ctx: Context, hub_request: HubRequest) -> None:
    """Record a (un)subscription to act on; a topic that is no feed here is recorded as
    denied (§5.2: the callback is told so)."""
    if ctx.settings.websub.hub != BUILTIN_HUB:
        raise NotFound('this site runs no WebSub hub (websub.hub is not "builtin")')
    refused = literal_refusal(hub_request.callback, allowed_callback_hosts(ctx))
    if refused is not None:
        message = "hub.callback " + refused.removeprefix("fetch: ")
        raise BadRequest(message, fields={"hub.callback": message.removeprefix("hub.callback ")})
    try:
        topic: Topic | None = find_topic(ctx, hub_request.topic)
        reason = None
    except NotATopic as exc:
        topic, reason = None, str(exc)
    intent = websub_repo.NewIntent(
        mode="denied" if topic is None else hub_request.mode,
        topic=hub_request.topic,
        callback=hub_request.callback,
        feed=None if topic is None else topic.feed,
        fmt=None if topic is None else topic.fmt,
        secret=hub_request.secret if hub_request.mode == "subscribe" else None,
        lease_seconds=lease_for(ctx, hub_request.lease_seconds),
        reason=reason,
    )
    with ctx.db.write() as session:
        held = websub_repo.count_held(session)
        if (
            hub_request.mode == "subscribe"
            and held >= ctx.settings.websub.max_subscriptions
            and not websub_repo.pair_held(session, intent)  # a renewal adds nothing
        ):
            raise Unavailable(
                f"the hub holds {held} subscriptions and requests, its limit "
                "(websub.max_subscriptions); try again later"
            )
        websub_repo.add_intent(session, intent, ctx.clock.now())


def remove_subscription(ctx: Context, subscription_id: int) -> None:
    with ctx.db.write() as session:
        if not websub_repo.remove_subscription(session, subscription_id):
            raise NotFound(f"no WebSub subscription {subscription_id}")
