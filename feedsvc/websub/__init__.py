"""WebSub (W3C Recommendation, formerly PubSubHubbub): feeds pushed to subscribers.

Publisher side: every feed advertises the hub (``websub.hub``) with rel="hub" and rel="self",
in the feed and as HTTP Link headers (feeds/render.py, feeds/cache.py). A change is noticed
and told outside the web request, in the scheduler process:

    a write bumps feed versions (as always) / a scheduled post becomes due (no write)
    → watch.py: the feeds whose version moved, or whose recheck time came, are rendered;
      a topic (feed × format) whose ETag changed is owed a notification
    → external hub: distribute.ping_hub, one hub.mode=publish POST per changed topic
    → built-in hub (/websub): verify.py acts on subscribe/unsubscribe requests (§5.3);
      distribute.deliver POSTs the new body to each subscriber owed it (§7)

Everything owed is a column in the database (a topic's ``ping_due_at``, a subscription's
``delivered_etag`` against its topic's ``etag``, a pending request's row), so a backlog
survives a restart and a hub that is down only delays, with backoff, what is owed.
"""
