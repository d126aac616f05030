"""The `feedsvc` commands, one module per group (feedsvc/cli.py assembles them).

setup (init, db, serve, scheduler) · jobs (jobs, related) · category · post · source ·
feed_import (import) · token · user (admin accounts); base holds what they share.
"""
