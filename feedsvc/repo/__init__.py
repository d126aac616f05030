"""Queries, one module per entity. Repo functions take a Session and know nothing of HTTP."""
