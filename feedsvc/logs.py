"""Log lines: one format for gunicorn (error and access logs), the app and the scheduler.

Every process (`serve`'s master and workers through gunicorn's ``logconfig_dict``, the
scheduler, the CLI) installs the same two formatters with :func:`logging_config`:

- ``text``: ``2026-11-30T04:50:00.123Z INFO [pid] logger: message`` — UTC, ISO 8601, ms.
- ``json``: one object per line: ``ts``, ``level``, ``logger``, ``pid``, ``message`` (and
  ``exc`` for a traceback); access lines add the request's fields.

One line per record is an invariant an operator's grep (and a log shipper) relies on, so no
input can break it: control characters in a message (a request for ``/feeds/%0Afake`` logs a
decoded newline in ``request.path``) are written as ``\\x0a``; only a traceback spans lines
in text, each continuation indented so it cannot pass for a record.

Access lines are built here from gunicorn's atoms (``record.args``), not from gunicorn's
``access_log_format``: the client is the peer address, or the address the front (nginx) put
in ``X-Forwarded-For`` when the peer is one of ``--forwarded-allow-ips`` (or a Unix socket).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import logging.config
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

LOG_FORMAT_ENV = "FEEDSVC_LOG_FORMAT"
FORMATS = ("text", "json")
# Loggers that narrate routine work at INFO: every APScheduler tick ("Running job …",
# "Job … executed successfully"), alembic's plugin loading. The scheduler logs what it ran.
# httpx and httpcore say every request at INFO: a change to a feed with 1,000 WebSub
# subscribers would be 1,000 lines; feedsvc.websub and the poll log outcomes themselves.
QUIET = {
    "apscheduler": logging.WARNING,
    "alembic.runtime.plugins": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
}
# alembic says these two on every connection it opens, migration or not: kept out.
_ALEMBIC_CHATTER = ("Context impl ", "Will assume ")

# C0, DEL, C1, the Unicode line and paragraph separators, lone surrogates (not UTF-8).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def escape(text: str) -> str:
    r"""``text`` on one line: control characters as ``\xNN`` / ``\uNNNN``."""
    return _UNSAFE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def timestamp(created: float) -> str:
    """``2026-11-30T04:50:00.123Z``: the one timestamp format of every log line."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def hide_password(url: str) -> str:
    """A database URL fit for a log line: the password as ``***``."""
    try:
        return escape(make_url(url).render_as_string(hide_password=True))
    except (ArgumentError, ValueError):  # pragma: no cover - Settings only holds valid URLs
        return "(unreadable URL)"


class _Formatter(logging.Formatter):
    def __init__(self, forwarded_allow_ips: Sequence[str] = ("127.0.0.1", "::1")) -> None:
        super().__init__()
        self.trust_all = "*" in forwarded_allow_ips
        self.trusted = [ipaddress.ip_network(a) for a in forwarded_allow_ips if a != "*"]

    def access_fields(self, record: logging.LogRecord) -> dict[str, Any] | None:
        """The request of a gunicorn access record (None for any other record)."""
        atoms = record.args
        if record.name != "gunicorn.access" or not isinstance(atoms, Mapping):
            return None
        status = str(atoms.get("s", ""))
        sent = atoms.get("B")
        micros = atoms.get("D")

        def text(key: str, default: str = "") -> str:
            # gunicorn's SafeAtoms wrote every '"' as '\\"' for its quoted format: undone.
            return str(atoms.get(key) or default).replace('\\"', '"')

        return {
            "client": self.client(atoms),
            "method": text("m", "-"),
            "path": text("U"),
            "query": text("q"),
            "uri": text("{raw_uri}e") or text("U"),
            "protocol": text("H", "-"),
            "status": int(status) if status.isdigit() else status,
            "bytes": sent if isinstance(sent, int) else None,
            "duration_ms": round(micros / 1000, 3) if isinstance(micros, int) else None,
            "referer": text("{referer}i"),
            "user_agent": text("{user-agent}i"),
        }

    def client(self, atoms: Mapping[str, Any]) -> str:
        peer = str(atoms.get("h") or "")
        forwarded = str(atoms.get("{x-forwarded-for}i") or "")
        if not forwarded or not self._trusted(peer):
            return peer or "-"
        # The front appends the address it saw: the last hop not itself a trusted front.
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop
        return hops[0] if hops else peer or "-"

    def _trusted(self, address: str) -> bool:
        if not address or self.trust_all:  # a Unix socket has no peer address: trusted
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def traceback(self, record: logging.LogRecord) -> str:
        parts = []
        if record.exc_info:
            parts.append(self.formatException(record.exc_info))
        elif record.exc_text:  # pragma: no cover - only records pickled from elsewhere
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(self.formatStack(record.stack_info))
        return "\n".join(parts)


def _quoted(value: str) -> str:
    """A field between double quotes in a text access line (as in the combined log format)."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


class TextFormatter(_Formatter):
    def format(self, record: logging.LogRecord) -> str:
        request = self.access_fields(record)
        if request is None:
            message = escape(record.getMessage())
        else:
            quoted = {key: _quoted(request[key]) for key in ("uri", "referer", "user_agent")}
            message = escape(
                f'{request["client"]} "{request["method"]} {quoted["uri"]} '
                f'{request["protocol"]}" {request["status"]} {request["bytes"] or "-"} '
                f'{request["duration_ms"]}ms "{quoted["referer"] or "-"}" '
                f'"{quoted["user_agent"] or "-"}"'
            )
        line = f"{timestamp(record.created)} {record.levelname} [{record.process}] "
        line += f"{record.name}: {message}"
        trace = self.traceback(record)
        if trace:
            # Continuation lines start with spaces: nothing in a traceback looks like a record.
            lines = (escape(part) for part in trace.splitlines())
            line += "\n" + "\n".join("    " + part for part in lines)
        return line


class JsonFormatter(_Formatter):
    def format(self, record: logging.LogRecord) -> str:
        request = self.access_fields(record)
        entry: dict[str, Any] = {
            "ts": timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
        }
        if request is None:
            entry["message"] = record.getMessage()
        else:
            entry["message"] = f"{request['method']} {request['uri']} {request['status']}"
            entry.update(request)
        trace = self.traceback(record)
        if trace:
            entry["exc"] = trace
        text = json.dumps(entry, ensure_ascii=False, default=str)
        # json escapes C0 but not DEL, C1, U+2028/U+2029 or lone surrogates (which would not
        # encode): the same escapes in JSON's own form, so the line still parses.
        return _UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def format_from_env() -> str:
    value = os.environ.get(LOG_FORMAT_ENV, "text")
    return value if value in FORMATS else "text"


def logging_config(
    log_format: str = "text",
    *,
    access_log: bool = True,
    forwarded_allow_ips: Sequence[str] = ("127.0.0.1", "::1"),
) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: gunicorn's ``logconfig_dict`` and ours alike.

    Every record goes to stderr (systemd's journal takes both streams alike), access lines
    included; ``access_log=False`` drops them.
    """
    formatter = TextFormatter if log_format == "text" else JsonFormatter
    access: dict[str, Any] = {"level": "INFO", "handlers": ["feedsvc"], "propagate": False}
    if not access_log:
        access = {"level": "CRITICAL", "handlers": [], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "feedsvc": {"()": formatter, "forwarded_allow_ips": list(forwarded_allow_ips)}
        },
        "handlers": {
            "feedsvc": {
                "class": "logging.StreamHandler",
                "formatter": "feedsvc",
                "stream": "ext://sys.stderr",
            }
        },
        "filters": {"alembic_chatter": {"()": _AlembicChatter}},
        "root": {"level": "INFO", "handlers": ["feedsvc"]},
        "loggers": {
            "alembic.runtime.migration": {"filters": ["alembic_chatter"]},
            "gunicorn.error": {"level": "INFO", "handlers": ["feedsvc"], "propagate": False},
            "gunicorn.access": access,
            **{name: {"level": logging.getLevelName(level)} for name, level in QUIET.items()},
        },
    }


class _AlembicChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_ALEMBIC_CHATTER)


def configure(log_format: str | None = None) -> None:
    """Install the formatter on the root logger of this process (app, scheduler, CLI)."""
    logging.config.dictConfig(logging_config(log_format or format_from_env()))
