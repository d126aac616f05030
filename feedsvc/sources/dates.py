"""Read the dates Chinese blogs put in their feeds as timezone-aware datetimes.

Pure functions with the site timezone passed in: no globals, so safe from any
thread. ``parse.py`` feeds these the raw date strings feedparser keeps.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_tz

# China Standard Time. In feeds from Chinese sites "CST" means this, never
# US Central (which is what email.utils and feedparser assume).
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")

# 2024-03-15 09:04:05, 2024/03/15 09:04, 2024-03-15T09:04:05.123+08:00,
# 2024-03-15: ISO 8601 / RFC 3339 and the slash form many CMSs print. The
# separator must repeat (no 2024/03-15) and the offset is optional.
_NUMERIC = re.compile(
    r"""^(?P<y>\d{4})(?P<sep>[-/])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})
    (?:[ T]+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<f>\d+))?)?)?
    \s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?$""",
    re.VERBOSE | re.ASCII | re.IGNORECASE,
)

# 2024年3月15日, 2024年3月15日 09:04, 2024年03月15日 09:04:05 (ASCII or
# full-width colons).
_CHINESE = re.compile(
    r"""^(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日
    (?:\s*(?P<H>\d{1,2})[:：](?P<M>\d{2})(?:[:：](?P<S>\d{2}))?)?$""",
    re.VERBOSE,
)

# The zone token at the end of an RFC 822 / RFC 5322 date, if any.
_RFC822_ZONE = re.compile(r"\s(?P<zone>[+-]\d{4}|[A-Za-z]{1,5})\s*$")
_TRAILING_COMMENT = re.compile(r"\s*\([^)]*\)\s*$")

# A string that starts with a four-digit year is in one of the forms above.
# If it does not parse, it has no usable date: feedparser's own guess for
# such strings keeps the year and fills in the *current* month (see
# LIBRARIES.md), which is worse than no date.
YEAR_FIRST = re.compile(r"^\s*\d{4}\D")


# The longest date any form above writes, with room for a zone comment ("... +0800 (China
# Standard Time)") is far below this. Anything longer is not a date, and is not handed to
# the patterns at all: the RFC 822 comment pattern backtracks quadratically over long runs
# of "(" or spaces (0.5 s for 20,000 characters), and a hostile feed's <pubDate> can be
# megabytes long.
MAX_DATE_LENGTH = 200


def parse_date(raw: str, site_tz: tzinfo) -> datetime | None:
    """Return ``raw`` as an aware datetime, or None if it is not a date.

    A date without an offset is the site's local time (``site_tz``). Never raises: any
    string at all gives a datetime that converts to UTC, or None.
    """
    text = raw.strip()
    if not text or len(text) > MAX_DATE_LENGTH:
        return None
    try:
        value = _read(text, site_tz)
        if value is not None:
            # Every caller converts to UTC next (storage keeps UTC, feedparser's handler
            # wants a UTC struct_time): 9999-12-31T23:59:59-12:00 is in year 10000 there,
            # and 0001-01-01 00:00 in Beijing in year 0. Neither is a date we can keep.
            value.astimezone(UTC)
        return value
    except (ValueError, OverflowError):  # 2024-02-30, hour 25, offset +99:00, year 10000
        return None


def _read(text: str, site_tz: tzinfo) -> datetime | None:
    if match := _NUMERIC.match(text):
        return _from_fields(match, site_tz, offset=match["tz"])
    if match := _CHINESE.match(text):
        return _from_fields(match, site_tz, offset=None)
    if YEAR_FIRST.match(text):
        return None
    return _parse_rfc822(text, site_tz)


def _from_fields(match: re.Match[str], site_tz: tzinfo, offset: str | None) -> datetime:
    fraction = (match.groupdict().get("f") or "0")[:6].ljust(6, "0")
    local = datetime(
        int(match["y"]),
        int(match["m"]),
        int(match["d"]),
        int(match["H"] or 0),
        int(match["M"] or 0),
        int(match["S"] or 0),
        int(fraction),
    )
    return local.replace(tzinfo=_offset_zone(offset) if offset else site_tz)


def _offset_zone(offset: str) -> tzinfo:
    if offset.upper() == "Z":
        return UTC
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _parse_rfc822(text: str, site_tz: tzinfo) -> datetime | None:
    # RFC 822 §5 / RFC 5322 §3.3, as RSS 2.0 pubDate uses them.
    # email.utils reads "CST" as US Central and a missing zone as +0000, so
    # find the zone token ourselves first.
    text = _TRAILING_COMMENT.sub("", text)  # "... +0800 (CST)"
    zone_match = _RFC822_ZONE.search(text)
    zone = zone_match["zone"] if zone_match else None
    if zone_match and zone_match["zone"].upper() == "CST":
        text = text[: zone_match.start("zone")] + "+0800"
    parts = parsedate_tz(text)
    if parts is None:
        return None
    local = datetime(*parts[:6])
    if zone is None or parts[9] is None:
        # No zone at all: the publisher wrote local time, which for us is the
        # site's timezone. (An unknown zone name comes back as +0000, which
        # is what RFC 5322 §4.3 asks for.)
        return local.replace(tzinfo=site_tz)
    return local.replace(tzinfo=timezone(timedelta(seconds=parts[9])))
