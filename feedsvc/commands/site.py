"""`feedsvc new-site DIR`: a starter site anywhere, no checkout needed.

The site is a folder: feedsvc.toml (whose folder every relative path in it is relative to),
categories.toml and, with --samples, posts/ copied from the samples the package ships. Every
value given on the command line is validated by the same model as the settings before
anything is written, and the written config is read back and compared, so a new site always
loads. Files are created exclusively (open mode "x"): an existing file is never overwritten,
with or without --force (which only allows a folder that is not empty; it reports each file
it kept).
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from pydantic import ValidationError

from feedsvc.commands.base import CommandFailed
from feedsvc.config import CONFIG_NAME, DatabaseSettings, SiteSettings
from feedsvc.datafiles import find_illegal_text, one_line
from feedsvc.services.samples import SAMPLE_CATEGORIES, SAMPLE_POSTS, sample_files

_CONFIG_TEMPLATE = """\
# feedsvc site settings, written by `feedsvc new-site` on {today}.
# Every relative path here is relative to this file's folder, wherever feedsvc runs from.
# Run feedsvc from this folder, or name this file: feedsvc --config {config} ...
# All keys and defaults: see the README (Configuration).

[site]
title = {title}
description = ""
# Absolute URL readers reach the site at: links and rel="self" in feeds are built from it.
base_url = {base_url}
language = "zh-CN"
timezone = "Asia/Shanghai"
author = {title}
# The RFC 4151 tag: URIs minted from these two are every post's guid and every feed's id.
# Feed readers use the guid to tell posts apart: change either once feeds are published and
# every reader shows every post again as new. Set them now (a domain you own, and a date on
# which you owned it), then NEVER change them, even when base_url moves to another host.
tag_authority = {tag_authority}
tag_date = {tag_date}
# Generated secret that signs the sessions of the admin UI. Keep it private; changing it only
# logs everyone out.
secret_key = {secret_key}

[database]
# SQLite file beside this one; for PostgreSQL: "postgresql+psycopg://user@host/dbname"
# (or set FEEDSVC_DATABASE_URL, which keeps a password out of this file).
url = {database_url}

[paths]
# The categories `feedsvc init` adds, and the folder of sample posts it loads into a new
# database (defaults: categories.toml and posts/ beside this file, when they exist).
# categories = "categories.toml"
# posts = "posts"

[scheduler]
enabled = true

[websub]
# WebSub push (README: "WebSub push"): "" off; "builtin" runs the hub at <base_url>/websub;
# or an external hub's URL, pinged when a feed changes. Feeds advertise it (rel="hub").
hub = ""

[admin]
# The admin at <base_url>/admin (README: "Admin"): create an account with `feedsvc user create
# NAME`. A session ends this many hours after sign-in; failed sign-ins lock an account for
# an address after max_failures within failure_window_minutes.
session_hours = 12
# max_failures = 5
# failure_window_minutes = 15
# lockout_minutes = 15
"""

_CATEGORIES_TEMPLATE = """\
# Categories of this site. `feedsvc init` adds the ones the database has never had; it never
# changes one, and never brings back one removed through the API or CLI. To apply this file
# explicitly: `feedsvc category sync` (adds what is missing), `--overwrite` (also updates).
# The slug is the feed's URL (/feeds/<slug>.rss): never change it once published.
#
# A category may list upstream feeds to poll, for example:
#   [[categories.sources]]
#   url = "https://partner.example/feed.xml"
#   mode = "related"            # or "posts": its entries become posts of this category
#   interval_minutes = 30

[[categories]]
slug = "suibi"
name = "随笔"
description = "日常记录与想法。"
position = 1
feed_length = 20
"""


def _toml_string(value: str) -> str:
    # A JSON string is a TOML basic string once characters TOML forbids raw are escaped
    # (DEL; JSON escapes the other controls itself). Values were checked for controls before.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _validated(title: str, base_url: str, tag_authority: str | None, database_url: str) -> Any:
    for name, value in (("--title", title), ("--tag-authority", tag_authority or "")):
        illegal = find_illegal_text(value)
        if illegal is not None:
            raise CommandFailed(f"{name}: contains the control character U+{ord(illegal[1]):04X}")
    try:
        site = SiteSettings(
            title=title,
            author=title,
            base_url=base_url,
            tag_authority=tag_authority or (urlsplit(base_url).hostname or ""),
            tag_date=datetime.now(UTC).date(),
        )
        DatabaseSettings(url=database_url)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        option = "--database-url" if key == "url" else "--" + key.replace("_", "-")
        raise CommandFailed(
            one_line(f"{option}: {first['msg'].removeprefix('Value error, ')}")
        ) from None
    return site


def _create(path: Path, content: bytes, force: bool, report: list[str]) -> None:
    try:
        with path.open("xb") as handle:
            handle.write(content)
    except FileExistsError:
        if not force:  # pragma: no cover - a file appearing between the emptiness check and now
            raise CommandFailed(f"{path}: exists; not overwritten") from None
        report.append(f"kept {path} (exists; not overwritten)")
        return
    report.append(f"wrote {path}")


def _prepare(directory: Path, force: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise CommandFailed(f"{directory}: exists and is not a folder")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise CommandFailed(
            f"{directory}: the folder is not empty; use --force to add the missing files "
            "to it (existing files are never overwritten)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    if not os.access(directory, os.W_OK | os.X_OK):  # pragma: no cover - root may write anywhere
        raise CommandFailed(f"{directory}: the folder is not writable")


@click.command("new-site")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path, file_okay=True))
@click.option(
    "--base-url",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="Absolute URL the site is reached at.",
)
@click.option("--title", default="我的订阅站", show_default=True, help="Site and feed title.")
@click.option(
    "--tag-authority",
    help="Domain of the guids' tag: URIs (default: base URL's host). Never change it later.",
)
@click.option(
    "--database-url",
    default="sqlite:///feedsvc.db",
    show_default=True,
    help="Relative SQLite paths are relative to DIR.",
)
@click.option("--samples", is_flag=True, help="Add the sample posts and their categories.")
@click.option("--force", is_flag=True, help="Allow a folder that is not empty (never overwrites).")
def new_site_command(
    directory: Path,
    base_url: str,
    title: str,
    tag_authority: str | None,
    database_url: str,
    samples: bool,
    force: bool,
) -> None:
    """Write a starter site in DIR: feedsvc.toml, categories.toml (and posts/ with --samples).

    Then: cd DIR && feedsvc init && feedsvc serve.
    """
    site = _validated(title, base_url, tag_authority, database_url)
    directory = Path(os.path.abspath(directory))
    config = directory / CONFIG_NAME
    text = _CONFIG_TEMPLATE.format(
        today=datetime.now(UTC).date().isoformat(),
        config=_toml_string(str(config)).strip('"'),
        title=_toml_string(site.title),
        base_url=_toml_string(site.base_url),
        tag_authority=_toml_string(site.tag_authority),
        tag_date=site.tag_date.isoformat(),
        secret_key=_toml_string(secrets.token_urlsafe(32)),
        database_url=_toml_string(database_url),
    )
    written = tomllib.loads(text)  # the file must say exactly what was asked
    assert written["site"]["title"] == site.title and written["database"]["url"] == database_url
    report: list[str] = []
    try:
        _prepare(directory, force)
        _create(config, text.encode("utf-8"), force, report)
        categories = SAMPLE_CATEGORIES.read_bytes() if samples else _CATEGORIES_TEMPLATE.encode()
        _create(directory / "categories.toml", categories, force, report)
        if samples:
            posts = directory / "posts"
            posts.mkdir(exist_ok=True)
            for sample in sample_files(SAMPLE_POSTS):
                _create(posts / sample.name, sample.read_bytes(), force, report)
    except OSError as exc:
        where = exc.filename or directory
        raise CommandFailed(f"{where}: cannot write the site: {exc.strerror or exc}") from None
    for line in report:
        click.echo(line)
    click.echo(f"next: cd {directory} && feedsvc init && feedsvc serve")
    click.echo("admin: feedsvc user create NAME (then sign in at /admin)")
