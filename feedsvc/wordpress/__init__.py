"""WordPress import: WXR export file → feedsvc posts.

Pipeline: parse (parse.py: bytes → typed items, safely; nothing else touches XML) → plan
(plan.py: pure; items + category map → posts to create, items skipped and why, or one error
listing every problem) → store (store.py: one short transaction per batch, keyed by the
WordPress guid, so a second import of the same file changes nothing).
"""
