"""Upstream sources: fetch → parse → decide → store.

- ``fetch``: HTTP with limits, SSRF guard, conditional GET → FetchResult.
- ``parse``: bytes → ParsedFeed of typed, sanitized ParsedEntry (the only
  module that imports feedparser).
- ``decide``: pure; FetchResult + SourceState → next SourceState, and parsed
  entries + what is stored → EntryPlan.
- ``store``, ``poll``, ``importer``, ``jobs``: storing entries, the poll job, `feedsvc import`.

Nothing is re-exported here: ``feedsvc.sources.fetch`` is the module, never the function.
"""
