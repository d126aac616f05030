"""WSGI entry point: `gunicorn wsgi:app` (or `feedsvc serve`).

The site is found as the CLI finds it: $FEEDSVC_CONFIG, else ./feedsvc.toml in gunicorn's
working directory (`feedsvc --config PATH serve` sets FEEDSVC_CONFIG for its workers).
"""

from feedsvc import create_app

app = create_app()
