"""HTTP: one blueprint per module (feeds, pages, api) and the error handlers."""

from __future__ import annotations

from flask import current_app

from feedsvc.context import Context
from feedsvc.feeds.cache import FeedCache


def ctx() -> Context:
    context: Context = current_app.extensions["feedsvc"]
    return context


def feed_cache() -> FeedCache:
    cache: FeedCache = current_app.extensions["feedsvc.feed_cache"]
    return cache
