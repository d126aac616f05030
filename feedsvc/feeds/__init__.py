"""Feeds: what goes in (document), how it is written (render), and the bytes cache."""
