"""Settings: defaults → data/feedsvc.toml (or $FEEDSVC_CONFIG) → FEEDSVC_* environment.

Read and validated once, at start-up, into a typed, frozen ``Settings``. Anything wrong stops
start-up with a ``ConfigError`` whose one-line message names the bad key.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from feedsvc import datafiles

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
DEFAULT_CONFIG = DATA_DIR / "feedsvc.toml"


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line naming the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteSettings(_Section):
    title: str = Field("feedsvc", min_length=1, max_length=200)
    description: str = Field("", max_length=1000)
    base_url: str = "http://127.0.0.1:8000"
    language: str = Field("zh-CN", pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    timezone: str = "Asia/Shanghai"
    author: str = Field("feedsvc", min_length=1, max_length=200)
    # RFC 4151 tagging entity (authority and date) of guids and feed ids; fixed forever once
    # feeds have been published. The authority defaults to base_url's host.
    tag_authority: str = ""
    tag_date: date = date(2026, 1, 1)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return value.rstrip("/")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def authority(self) -> str:
        return self.tag_authority or (urlsplit(self.base_url).hostname or "localhost")


class DatabaseSettings(_Section):
    url: str = "sqlite:///data/feedsvc.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parse_database_url(value)
        return value


def parse_database_url(value: str) -> URL:
    """A database URL SQLAlchemy can open: parsed, a known dialect, and a driver that imports.

    Checked here, once, so a bad URL stops start-up with a message naming the key instead of
    failing later inside create_engine() or the first query. Nothing connects here.
    """
    illegal = datafiles.find_illegal_text(value)
    if illegal is not None:
        raise ValueError(f"contains the control character U+{ord(illegal[1]):04X}")
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ValueError(
            "cannot be read as a database URL; use e.g. sqlite:///data/feedsvc.db or "
            "postgresql+psycopg://user@host/dbname"
        ) from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(
            f"unsupported database {url.get_backend_name()!r}; use sqlite or postgresql+psycopg"
        )
    try:
        dialect_class = url.get_dialect()
        dialect_class.import_dbapi()
        # The dialect's own reading of the URL: SQLite refuses a host, psycopg odd options.
        dialect_class().create_connect_args(url)
    except NoSuchModuleError:
        raise ValueError(
            f"unknown database dialect or driver {url.drivername!r}; "
            "use sqlite or postgresql+psycopg"
        ) from None
    except ImportError as exc:
        raise ValueError(
            f"the driver of {url.drivername!r} is not installed ({exc.name or exc})"
        ) from None
    except (ArgumentError, ValueError, TypeError) as exc:
        raise ValueError(datafiles.one_line(str(exc))[:200]) from None
    return url


def _sqlite_folder_problem(url: str) -> str | None:
    """Why the folder of an SQLite file cannot be created or used, or None.

    db.Database creates the folder on start; a path under a regular file, or under a folder
    the process may not write, would fail there with a bare OSError.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database.startswith(":") or parsed.database.startswith("file:"):
        return None
    folder = Path(parsed.database).parent
    existing = folder
    while not existing.exists():
        if existing.parent == existing:  # pragma: no cover - "/" always exists; no endless loop
            break
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder, so {folder} cannot be created"
    if existing != folder and not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot create the folder {folder}: {existing} is not writable"
    return None


class FeedSettings(_Section):
    default_length: int = Field(20, ge=1, le=1000)
    max_length: int = Field(100, ge=1, le=1000)
    cache_max_age: int = Field(300, ge=0, le=86400)
    cache_entries: int = Field(512, ge=1, le=100_000)

    @model_validator(mode="after")
    def _lengths(self) -> FeedSettings:
        if self.default_length > self.max_length:
            raise ValueError("default_length must not exceed max_length")
        return self


class HttpSettings(_Section):
    max_request_bytes: int = Field(1_048_576, ge=1024, le=100 * 1_048_576)


class SchedulerSettings(_Section):
    enabled: bool = True
    related_interval_minutes: int = Field(10, ge=1, le=24 * 60)
    related_rebuild_cron: str = "30 3 * * *"
    # How often the poll job looks for sources whose own interval has come round.
    sources_interval_minutes: int = Field(1, ge=1, le=24 * 60)
    lease_seconds: int = Field(600, ge=10, le=86400)
    # How often the scheduler process asks the database what is due.
    tick_seconds: int = Field(15, ge=1, le=3600)

    @field_validator("related_rebuild_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"not a crontab expression: {exc}") from exc
        return value


class RelatedSettings(_Section):
    top_k: int = Field(5, ge=1, le=50)
    # Measured on the test corpus: cross-topic pairs mostly score under 0.04, same-topic
    # pairs mostly over 0.12 (see feedsvc/related/tokenize.py and tests/related).
    min_score: float = Field(0.05, ge=0.0, le=1.0)


class SourceSettings(_Section):
    default_interval_minutes: int = Field(30, ge=1, le=7 * 24 * 60)
    min_interval_minutes: int = Field(5, ge=1, le=24 * 60)
    # Hosts (names or IP literals) allowed although they resolve to private or loopback
    # addresses; everything else private is refused (SSRF guard).
    allow_hosts: tuple[str, ...] = ()
    connect_timeout: float = Field(10.0, gt=0, le=120)
    read_timeout: float = Field(30.0, gt=0, le=600)
    total_timeout: float = Field(120.0, gt=0, le=3600)
    max_bytes: int = Field(10 * 1_048_576, ge=1024, le=1024 * 1_048_576)
    max_decompressed_bytes: int = Field(10 * 1_048_576, ge=1024, le=1024 * 1_048_576)
    max_redirects: int = Field(5, ge=0, le=20)
    concurrency: int = Field(8, ge=1, le=64)
    # External items (related mode) are pruned by age and by count per source.
    external_max_age_days: int = Field(90, ge=1, le=3650)
    external_max_per_source: int = Field(200, ge=1, le=100_000)

    @model_validator(mode="after")
    def _intervals(self) -> SourceSettings:
        if self.default_interval_minutes < self.min_interval_minutes:
            raise ValueError("default_interval_minutes must not be below min_interval_minutes")
        return self


class MetricsSettings(_Section):
    """`/metrics` (Prometheus): off by default; with a token, scrapes need `Bearer <token>`."""

    enabled: bool = False
    token: str | None = None

    @field_validator("token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        # RFC 6750 §2.1: what a Bearer credential may hold (b64token), so it travels as is.
        if value is not None and not re.fullmatch(r"[A-Za-z0-9\-._~+/]{16,200}=*", value):
            raise ValueError(
                "must be 16 to 200 characters from A-Z a-z 0-9 - . _ ~ + / (e.g. from "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return value


class Settings(_Section):
    site: SiteSettings = SiteSettings()
    database: DatabaseSettings = DatabaseSettings()
    feeds: FeedSettings = FeedSettings()
    http: HttpSettings = HttpSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    related: RelatedSettings = RelatedSettings()
    sources: SourceSettings = SourceSettings()
    # Where relative paths (sample posts, categories file, SQLite files) are resolved.
    data_dir: Path = DATA_DIR
    metrics: MetricsSettings = MetricsSettings()


_ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "FEEDSVC_DATABASE_URL": ("database", "url"),
    "FEEDSVC_BASE_URL": ("site", "base_url"),
    "FEEDSVC_SCHEDULER": ("scheduler", "enabled"),
}


def _describe(error: ValidationError, origin: str, from_env: dict[str, str]) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(root)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    if key in from_env:  # the value came from the environment, not the file
        origin = f"environment: {from_env[key]}"
    return datafiles.one_line(f"{origin}: {key}: {message}")


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"config: {path}: file not found")
    try:
        return datafiles.read_toml(path)
    except datafiles.DataFileError as exc:
        raise ConfigError(f"config: {exc}") from None


def _sqlite_relative_to(url: str, base: Path) -> str:
    """Resolve a relative SQLite path against ``base`` so the working directory never matters."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite://" or url.startswith("sqlite:////"):
        return url
    path = url[len(prefix) :]
    # ":memory:", and "file:...?mode=ro&uri=true" URIs, which name their file themselves.
    if path in ("", ":memory:") or path.startswith((":", "file:")):
        return url
    return prefix + str((base / path).resolve())


def load_settings(
    overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Build ``Settings`` from the config file, the environment and ``overrides`` (tests)."""
    env = os.environ if environ is None else environ
    config_path = Path(env.get("FEEDSVC_CONFIG") or DEFAULT_CONFIG)
    if "FEEDSVC_CONFIG" in env or config_path.exists():
        raw = _read_toml(config_path)
        origin = f"config: {config_path}"
    else:
        raw, origin = {}, "config"
    from_env: dict[str, str] = {}
    for var, (section, key) in _ENV_OVERRIDES.items():
        if var in env:
            from_env[f"{section}.{key}"] = var
            value: Any = env[var]
            if var == "FEEDSVC_SCHEDULER":
                if value not in ("0", "1", "true", "false"):
                    raise ConfigError(f"environment: {var}: must be 0 or 1")
                value = value in ("1", "true")
            table = raw.setdefault(section, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{origin}: {section}: must be a table ([{section}])")
            table[key] = value
    for section, values in (overrides or {}).items():
        if isinstance(values, dict):
            raw.setdefault(section, {}).update(values)
        else:
            raw[section] = values
    raw.setdefault("data_dir", str(config_path.resolve().parent))
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin, from_env)) from None
    url = settings.database.url
    try:
        url = _sqlite_relative_to(url, ROOT)
        problem = _sqlite_folder_problem(url)
    except OSError as exc:  # a name too long, a loop of symlinks
        problem = f"the SQLite path cannot be used: {exc.strerror or exc}"
    if problem is not None:
        where = from_env.get("database.url")
        raise ConfigError(
            f"{'environment: ' + where if where else origin}: database.url: {problem}"
        )
    if url != settings.database.url:
        settings = settings.model_copy(
            update={"database": settings.database.model_copy(update={"url": url})}
        )
    return settings
