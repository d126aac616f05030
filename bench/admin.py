"""The admin's pages at 1,000 and at 100,000 posts: ratios measured side by side in one run.

Each admin page a publisher opens all day is built in process (Flask's test client, signed
in), on the bench corpora (bench/corpus.py: 2% drafts, 1% scheduled, 120 tags), median of
``--repeat`` requests: the dashboard, the posts list (page 1 and page 50), its filters
(category, tag, scheduled, drafts), a title search that finds many posts and one that finds
none (the worst case: every title read), the editor of a post and its preview. The last
column is the 100,000-post time over the 1,000-post time: the lists use the same indexes as
the feeds, and only the title search (a "contains", which no index serves) is meant to grow.

Run: `.venv/bin/python bench/admin.py [--sizes 1000,100000] [--postgres URL] [--repeat N]`.
"""

from __future__ import annotations

import argparse
import html
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import corpus

SECRET = "bench-only-secret-key-0123456789-abcdefgh"


def _signed_in(folder: Path) -> tuple[Any, Any]:
    """The app on this corpus and a test client with a signed-in admin session."""
    from feedsvc import create_app
    from feedsvc.config import load_settings
    from feedsvc.repo import users as user_repo
    from feedsvc.services import users as user_service

    overrides = {
        "database": {"url": corpus.database_url(folder)},
        "scheduler": {"enabled": False},
        "site": {"secret_key": SECRET},
    }
    app = create_app(settings=load_settings(overrides, environ={}))
    ctx = app.extensions["feedsvc"]
    with ctx.db.read() as session:
        user = user_repo.get_user_by_name(session, "bench")
    if user is None:
        user = user_service.create_user(ctx, "bench", "bench-password-0123")
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie.permanent = True
        cookie["uid"] = user.id
        cookie["pw"] = user_service.password_stamp(user)
        cookie["since"] = ctx.clock.now().timestamp()
        cookie["csrf"] = "bench-csrf"
    return app, client


def _requests(client: Any) -> dict[str, tuple[str, str, dict[str, str] | None]]:
    """(method, path, form) of each page measured, read from the corpus."""
    listed = client.get("/admin/posts").get_data(as_text=True)
    post_id = re.search(r'<tr id="post-(\d+)">', listed)
    assert post_id, "no post listed"
    editor = client.get(f"/admin/posts/{post_id.group(1)}").get_data(as_text=True)
    form = {
        name: value for name, value in re.findall(r'name="([a-z_]+)" (?:value="([^"]*)")', editor)
    }
    content = re.search(r'name="content"[^>]*>\n?([^<]*)</textarea>', editor)
    assert content
    form = {k: html.unescape(v) for k, v in form.items()}
    form |= {
        "content": html.unescape(content.group(1)),
        "csrf_token": "bench-csrf",
        "category": corpus.CATEGORIES[0][0],
        "format": "markdown",
        "status": "published",
        "summary": "",
    }
    tag = re.search(r'<td class="wrap">([^<，]+)', listed.split('id="posts"')[1])
    assert tag
    return {
        "dashboard": ("GET", "/admin", None),
        "posts, page 1": ("GET", "/admin/posts", None),
        "posts, page 50": ("GET", "/admin/posts?page=50", None),
        "posts of a category": ("GET", f"/admin/posts?category={corpus.CATEGORIES[0][0]}", None),
        "posts with a tag": ("GET", f"/admin/posts?tag={tag.group(1).strip()}", None),
        "scheduled posts": ("GET", "/admin/posts?status=scheduled", None),
        "drafts": ("GET", "/admin/posts?status=draft", None),
        "title search, many": ("GET", "/admin/posts?q=基金", None),
        "title search, none": ("GET", "/admin/posts?q=没有这个标题", None),
        "editor": ("GET", f"/admin/posts/{post_id.group(1)}", None),
        "preview": ("POST", "/admin/posts/preview", form),
    }


def measure(folder: Path, repeat: int) -> dict[str, float]:
    """Median ms of each page."""
    app, client = _signed_in(folder)
    figures: dict[str, float] = {}
    try:
        for label, (method, path, form) in _requests(client).items():
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                get = method == "GET"
                response = client.get(path) if get else client.post(path, data=form)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, (label, response.status_code)
            figures[label] = statistics.median(times) * 1e3
    finally:
        app.extensions["feedsvc"].db.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000", help="corpus sizes, comma-separated")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server for the corpora")
    parser.add_argument("--repeat", type=int, default=15, help="requests timed per page")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    backend = "PostgreSQL" if args.postgres else "SQLite"
    table: dict[str, dict[int, float]] = {}
    for size in sizes:
        for label, figure in measure(corpus.site_for(size, args.postgres), args.repeat).items():
            table.setdefault(label, {})[size] = figure
    print(f"{backend}: admin pages, median ms of {args.repeat} (signed in, in process)")
    print("  " + " " * 22 + "".join(f"{size:>12,}" for size in sizes) + "     ratio")
    for label, by_size in table.items():
        ratio = by_size[sizes[-1]] / by_size[sizes[0]] if len(sizes) > 1 else 1.0
        row = "".join(f"{by_size[size]:12.2f}" for size in sizes)
        print(f"  {label:22}{row}  {ratio:7.2f}x")


if __name__ == "__main__":
    main()
