"""Settings: defaults → the site's feedsvc.toml → FEEDSVC_* environment.

Read and validated once, at start-up, into a typed, frozen ``Settings``. Anything wrong stops
start-up with a ``ConfigError`` whose one-line message names the bad key.

Which file: ``feedsvc --config PATH``, then ``$FEEDSVC_CONFIG``, then ``./feedsvc.toml``
(``find_config``). The CLI passes its option on as ``FEEDSVC_CONFIG``, so the processes it
starts (gunicorn workers, the scheduler) read the same file. The folder of that file is the
site: every relative path in it (the SQLite file, ``paths.categories``, ``paths.posts``)
resolves against it, never against the package or the working directory. Without a file,
only an absolute database URL from the environment (or a test's overrides) can make a site;
anything else stops with a hint to `feedsvc new-site`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from feedsvc import datafiles

CONFIG_ENV = "FEEDSVC_CONFIG"
CONFIG_NAME = "feedsvc.toml"


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line naming the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Labels may be internationalised (例子.cn): Atom ids are IRIs, and readers compare guids as text.
_DNS_LABEL = r"[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?"
_DNS_NAME = rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*"
_TAG_AUTHORITY = re.compile(rf"(?:[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@)?{_DNS_NAME}")


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
    # Signs the admin's session cookies (feedsvc/web/admin/); `feedsvc new-site` generates
    # one. Empty here: the file SECRET_KEY_FILE beside the config, which `feedsvc init`
    # generates when neither exists. Shorter than ADMIN_MIN_SECRET_CHARS: nobody signs in.
    secret_key: str = Field("", max_length=200)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return value.rstrip("/")

    @field_validator("tag_authority")
    @classmethod
    def _tag_authority(cls, value: str) -> str:
        # RFC 4151 §2.1: authorityName = DNSname / emailAddress (no spaces, no commas).
        if value and not _TAG_AUTHORITY.fullmatch(value):
            raise ValueError("must be a domain name or an e-mail address (RFC 4151)")
        return value

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
    # Relative to the config file's folder (the site).
    url: str = "sqlite:///feedsvc.db"
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
            "cannot be read as a database URL; use e.g. sqlite:///feedsvc.db or "
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
    # Issue 9 (writes): rendered feeds kept per process, in bytes (identity + gzip bodies):
    # the least recently used go first past it (feeds/cache.py).
    cache_max_bytes: int = Field(64 * 1024 * 1024, ge=1024 * 1024, le=64 * 1024**3)
    # PostgreSQL only (SQLite knows cheaply when anything changed): 0 reads a feed's version on
    # every poll; N > 0 lets a worker thread reuse it for N ms (feeds/versions.py).
    version_max_age_ms: int = Field(0, ge=0, le=10_000)

    @model_validator(mode="after")
    def _lengths(self) -> FeedSettings:
        if self.default_length > self.max_length:
            raise ValueError("default_length must not exceed max_length")
        return self


class HttpSettings(_Section):
    max_request_bytes: int = Field(1_048_576, ge=1024, le=100 * 1_048_576)
    # Requests that may write are answered by this many write workers per process (0: on the
    # request thread), at the process's nice value plus write_nice on Linux
    # (feedsvc/web/writes.py).
    write_threads: int = Field(1, ge=0, le=64)
    write_nice: int = Field(10, ge=0, le=19)
    # What a write worker is: "process", a child process of the web worker, whose whole
    # interpreter runs at the lower priority (a nice'd thread can still stall its process's
    # readers while it holds the interpreter lock); "thread", threads of the process; "auto",
    # processes under `feedsvc serve` and threads elsewhere (tests, embedding).
    write_isolation: Literal["auto", "process", "thread"] = "auto"


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


BUILTIN_HUB = "builtin"
HUB_PATH = "/websub"


class WebSubSettings(_Section):
    """WebSub (W3C Recommendation): off, the built-in hub at /websub, or an external hub's URL.

    The lease, retry and drop bounds are the built-in hub's; retries and drops also apply to
    the publish pings sent to an external hub (feedsvc/websub/).
    """

    hub: str = ""  # "" (off), "builtin", or an external hub's http(s) URL
    # hub.lease_seconds a subscriber asks for is clamped into [min, max]; none asked: default.
    default_lease_seconds: int = Field(10 * 86400, ge=60, le=365 * 86400)
    min_lease_seconds: int = Field(3600, ge=60, le=365 * 86400)
    max_lease_seconds: int = Field(30 * 86400, ge=60, le=365 * 86400)
    # How often the scheduler process looks for changed feeds and due deliveries.
    check_seconds: float = Field(1.0, ge=0.1, le=60)
    concurrency: int = Field(16, ge=1, le=256)  # deliveries in flight at once
    timeout: float = Field(10.0, gt=0, le=120)  # seconds, per verification or delivery
    # Exponential backoff after a failed delivery or ping: base · 2^(failures-1), capped.
    retry_base_seconds: int = Field(10, ge=1, le=86400)
    retry_max_seconds: int = Field(3600, ge=1, le=7 * 86400)
    # A subscriber failing every delivery this long is dropped (and a ping given up).
    drop_after_seconds: int = Field(86400, ge=1, le=30 * 86400)
    max_subscriptions: int = Field(100_000, ge=1, le=10_000_000)
    # Callback hosts allowed although private or loopback (sources.allow_hosts count too).
    allow_hosts: tuple[str, ...] = ()

    @field_validator("hub")
    @classmethod
    def _hub(cls, value: str) -> str:
        if value in ("", BUILTIN_HUB):
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError('must be "" (off), "builtin" or an absolute http(s) URL of a hub')
        # It goes into Link headers between <...> (RFC 8288): no character a URI cannot hold.
        if re.search(r'[\x00-\x20\x7f<>"]', value):
            raise ValueError("must be a URL without spaces, control characters, <, > or quotes")
        return value

    @model_validator(mode="after")
    def _leases(self) -> WebSubSettings:
        if not self.min_lease_seconds <= self.default_lease_seconds <= self.max_lease_seconds:
            raise ValueError(
                "min_lease_seconds <= default_lease_seconds <= max_lease_seconds must hold"
            )
        if self.retry_base_seconds > self.retry_max_seconds:
            raise ValueError("retry_base_seconds must not exceed retry_max_seconds")
        return self


class PathSettings(_Section):
    """Files of the site; relative to the config file's folder. After loading, absolute (None:
    no site folder); a path named in the file exists, a default one may not."""

    categories: Path | None = None  # default: categories.toml (used when it exists)
    posts: Path | None = None  # default: posts/ (sample posts for `init`, when it exists)


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


# A key shorter than this could be guessed or is a placeholder ("changeme"): the admin refuses
# to sign anyone in with it (web/admin/session.py). new-site's key has 43 characters.
ADMIN_MIN_SECRET_CHARS = 32
# Beside the config file: the admin's secret key when the config names none (`feedsvc init`
# writes it, mode 0600). A checkout's config is in git; this file never is (.gitignore).
SECRET_KEY_FILE = "secret_key"


class AdminSettings(_Section):
    """The admin web UI at /admin (feedsvc/web/admin/): sessions and the sign-in rate limit."""

    # A session ends this many hours after sign-in, whatever happens meanwhile.
    session_hours: int = Field(12, ge=1, le=24 * 30)
    # This many failed sign-ins of one account from one address within failure_window_minutes
    # lock that pair out for lockout_minutes after the last of them (the table login_failures).
    max_failures: int = Field(5, ge=1, le=1000)
    failure_window_minutes: int = Field(15, ge=1, le=24 * 60)
    lockout_minutes: int = Field(15, ge=1, le=24 * 60)
    # Failures from one address within the window, whatever the account names, that lock the
    # address out of every account (password spraying across names).
    max_failures_per_address: int = Field(50, ge=1, le=100_000)


class Settings(_Section):
    site: SiteSettings = SiteSettings()
    database: DatabaseSettings = DatabaseSettings()
    feeds: FeedSettings = FeedSettings()
    http: HttpSettings = HttpSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    related: RelatedSettings = RelatedSettings()
    sources: SourceSettings = SourceSettings()
    paths: PathSettings = PathSettings()
    # The site folder, where relative paths resolve: the config file's folder (None: no file).
    data_dir: Path | None = None
    # The file these settings were read from (None: environment and defaults only).
    config_file: Path | None = None
    metrics: MetricsSettings = MetricsSettings()
    websub: WebSubSettings = WebSubSettings()
    admin: AdminSettings = AdminSettings()

    @property
    def hub_url(self) -> str | None:
        """The hub every feed advertises (rel="hub"), or None when WebSub is off."""
        if not self.websub.hub:
            return None
        if self.websub.hub == BUILTIN_HUB:
            return self.site.base_url + HUB_PATH
        return self.websub.hub


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


def _read_toml(path: Path, origin: str) -> dict[str, Any]:
    try:
        return datafiles.read_toml(path)
    except datafiles.DataFileError as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def find_config(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path | None:
    """The config file to read: $FEEDSVC_CONFIG (the CLI's --config sets it), else
    ./feedsvc.toml; None when neither names a file. A file that is named but missing, or that
    is a folder, is a ``ConfigError``: a typo must not silently fall back to something else."""
    env = os.environ if environ is None else environ
    named = env.get(CONFIG_ENV, "")
    if named:
        return checked_config_path(named, CONFIG_ENV)
    candidate = (cwd or Path.cwd()) / CONFIG_NAME
    if candidate.exists() or candidate.is_symlink():
        return checked_config_path(str(candidate), f"./{CONFIG_NAME}")
    return None


def checked_config_path(named: str, origin: str) -> Path:
    """An absolute path to an existing regular file, or a one-line ``ConfigError``."""
    if "\x00" in named:  # no file can have it (a shell cannot even pass it)
        raise ConfigError(f"{origin}: the path contains a NUL character")
    path = Path(os.path.abspath(named))
    try:
        if not path.exists():
            raise ConfigError(f"{origin}: {path}: file not found")
        if path.is_dir():
            raise ConfigError(f"{origin}: {path}: is a folder; name the site's feedsvc.toml")
    except (OSError, ValueError) as exc:  # a name too long; NUL (never from a shell)
        raise ConfigError(f"{origin}: {named!r}: cannot be used: {exc}") from None
    return path


NO_SITE_HINT = (
    "create a site with `feedsvc new-site DIR` and run feedsvc in DIR, "
    "or name its file with `feedsvc --config DIR/feedsvc.toml` (or FEEDSVC_CONFIG)"
)


def _sqlite_relative_to(url: str, base: Path | None) -> str:
    """Resolve a relative SQLite path against ``base`` so the working directory never matters.

    Without a base (no config file) a relative path has nothing to be relative to.
    """
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite://" or url.startswith("sqlite:////"):
        return url
    path = url[len(prefix) :]
    # ":memory:", and "file:...?mode=ro&uri=true" URIs, which name their file themselves.
    if path in ("", ":memory:") or path.startswith((":", "file:")):
        return url
    if base is None:
        raise ConfigError(f"no configuration file found, and the SQLite path {path!r} is relative")
    return prefix + os.path.abspath(base / path)


def _site_path(
    value: Path | None, default: str, base: Path | None, key: str, origin: str
) -> Path | None:
    """A named path must exist now (resolved against the site); a default one (in the site
    folder) may not exist: its users look, when they run."""
    if value is None:
        return None if base is None else base / default
    if not value.is_absolute():
        if base is None:
            raise ConfigError(f"{origin}: {key}: {value} is relative, but there is no config file")
        value = base / value
    path = Path(os.path.abspath(value))
    try:
        found = path.exists()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{origin}: {key}: {path}: cannot be used: {exc}") from None
    if not found:
        raise ConfigError(f"{origin}: {key}: {path}: not found")
    return path


def load_settings(
    overrides: dict[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
) -> Settings:
    """Build ``Settings`` from the config file, the environment and ``overrides`` (tests)."""
    env = os.environ if environ is None else environ
    config_path = find_config(env, cwd)
    if config_path is not None:
        origin = f"config: {config_path}"
        raw = _read_toml(config_path, "config")
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
    if config_path is not None:
        raw.setdefault("data_dir", str(config_path.parent))
    raw.pop("config_file", None)  # never from the file: it is the file
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin, from_env)) from None
    base = settings.data_dir
    url = settings.database.url
    where = from_env.get("database.url")
    url_origin = f"{'environment: ' + where if where else origin}: database.url"
    try:
        url = _sqlite_relative_to(url, base)
        problem = _sqlite_folder_problem(url)
    except ConfigError as exc:
        if where is None and "database" not in (overrides or {}) and config_path is None:
            raise ConfigError(
                f"no configuration: no --config, no {CONFIG_ENV} and no {CONFIG_NAME} in "
                f"{cwd or Path.cwd()}; {NO_SITE_HINT}"
            ) from None
        raise ConfigError(f"{url_origin}: {exc}; give an absolute path (sqlite:////…)") from None
    except OSError as exc:  # a name too long, a loop of symlinks
        problem = f"the SQLite path cannot be used: {exc.strerror or exc}"
    if problem is not None:
        raise ConfigError(f"{url_origin}: {problem}")
    paths = PathSettings(
        categories=_site_path(
            settings.paths.categories, "categories.toml", base, "paths.categories", origin
        ),
        posts=_site_path(settings.paths.posts, "posts", base, "paths.posts", origin),
    )
    site = settings.site
    if not site.secret_key and config_path is not None:
        site = site.model_copy(update={"secret_key": _secret_key_file(config_path.parent)})
    return settings.model_copy(
        update={
            "database": settings.database.model_copy(update={"url": url}),
            "paths": paths,
            "config_file": config_path,
            "site": site,
        }
    )


def secret_key_path(settings: Settings) -> Path | None:
    """Where the secret key file of this configuration is (None: no config file)."""
    config = settings.config_file
    return None if config is None else config.parent / SECRET_KEY_FILE


def _secret_key_file(folder: Path) -> str:
    path = folder / SECRET_KEY_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as the admin's secret key: {exc}") from None
