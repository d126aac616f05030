"""Schema migrations with Alembic, run programmatically on feedsvc's own engine."""

from __future__ import annotations

import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from feedsvc.db import Database
from feedsvc.errors import Invalid

# What alembic accepts as a target: ids, "head", "heads", relative forms like "head-1" or
# "ae10+2", branch@ids. Anything else (an empty string trips an assertion inside alembic) is
# refused here with the same message as an unknown revision.
_REVISION = re.compile(r"[A-Za-z0-9_@.:+-]{1,100}")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision``; safe to run on every start.

    An unknown revision is refused (alembic's CommandError) before the database is touched.
    """
    if not _REVISION.fullmatch(revision):
        raise Invalid(f"migration: Can't locate revision identified by {revision[:40]!r}")
    config = _config()
    ScriptDirectory.from_config(config).get_revisions(revision)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()
