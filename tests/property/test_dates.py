"""The Chinese date reader (sources/dates.py) on any string: None or a usable aware datetime.

"Usable" means what every caller does next works: it converts to UTC (storage keeps UTC,
feedparser's handler wants a UTC struct_time) and compares with an aware `now`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import example, given
from hypothesis import strategies as st

from feedsvc.sources.dates import parse_date
from tests.property.strategies import hostile_text

SHANGHAI = ZoneInfo("Asia/Shanghai")
zones = st.sampled_from(
    [SHANGHAI, UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]
)

# Date-shaped strings with every field out of range now and then: year 0 and 99999, month
# 0 and 13, day 32, hour 25, minute 60, offsets past ±24:00.
number = st.integers(0, 99_999)
offset = st.one_of(
    st.just(""),
    st.just("Z"),
    st.builds("{}{:02d}:{:02d}".format, st.sampled_from("+-"), st.integers(0, 99), number),
    st.builds("{}{:04d}".format, st.sampled_from("+-"), st.integers(0, 9999)),
)
numeric = st.builds(
    "{:04d}{sep}{:02d}{sep}{:02d}{T}{:02d}:{:02d}:{:02d}{}".format,
    number, number, number, number, number, number, offset,
    sep=st.sampled_from("-/"), T=st.sampled_from(["T", " ", "  "]),
)  # fmt: skip
chinese = st.builds("{}年{}月{}日 {}:{:02d}".format, number, number, number, number, number)
rfc822 = st.builds(
    "{}, {} {} {} {:02d}:{:02d}:{:02d} {}".format,
    st.sampled_from(["Mon", "Fri", "Xyz", ""]),
    number,
    st.sampled_from(["Jan", "Dec", "Foo", "13"]),
    number,
    number,
    number,
    number,
    st.sampled_from(["+0800", "-1200", "+9999", "-9999", "CST", "GMT", "PDT", "ABCDE", "(CST)"]),
)
date_strings = st.one_of(hostile_text(), numeric, chinese, rfc822)


@given(raw=date_strings, site_tz=zones)
@example(raw="9999-12-31T23:59:59-12:00", site_tz=SHANGHAI)  # UTC would be in year 10000
@example(raw="0001-01-01 00:00", site_tz=SHANGHAI)  # local midnight is still year 0 in UTC
@example(raw="0001-01-01T00:00:00+14:00", site_tz=UTC)
@example(raw="Fri, 31 Dec 9999 23:59:59 -1200", site_tz=UTC)
@example(raw="2024-00-15", site_tz=SHANGHAI)
@example(raw="Fri, 15 Mar 2024 09:04:05 +9999", site_tz=SHANGHAI)
@example(raw="2024-03-15T09:04:05+99:99", site_tz=SHANGHAI)
@example(raw="99999年1月1日", site_tz=SHANGHAI)
@example(raw="1" * 5000, site_tz=SHANGHAI)  # past int()'s 4300-digit limit
def test_parse_date_never_raises_and_gives_a_usable_date(raw: str, site_tz: ZoneInfo) -> None:
    value = parse_date(raw, site_tz)
    if value is None:
        return
    assert value.tzinfo is not None and value.utcoffset() is not None
    assert value.astimezone(UTC).tzinfo is UTC
    assert isinstance(min(value, datetime(2026, 1, 1, tzinfo=UTC)), datetime)


@given(day=st.dates(min_value=datetime(1, 1, 2).date(), max_value=datetime(9999, 12, 30).date()))
def test_a_valid_date_reads_as_itself(day: datetime) -> None:
    # The other side of "never raises": it must not get there by reading nothing.
    value = parse_date(f"{day.isoformat()} 12:00:00 +08:00", SHANGHAI)
    assert value is not None and value.date() == day and value.utcoffset() == timedelta(hours=8)


def test_a_huge_string_is_read_in_linear_time() -> None:
    # A hostile feed's <pubDate> can be megabytes; the RFC 822 comment pattern once
    # backtracked quadratically over runs of "(" (0.5 s at 20,000; minutes at 1 MB).
    started = time.perf_counter()
    for raw in ("(" * 200_000, " (" * 100_000, "2024" + " " * 200_000 + "x"):
        assert parse_date(raw, SHANGHAI) is None
    assert time.perf_counter() - started < 1.0
