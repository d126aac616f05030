"""WSGI entry point: `gunicorn wsgi:app` (or `feedsvc serve`)."""

from feedsvc import create_app

app = create_app()
