"""The injectable clock: a frozen clock refuses a naive start, as the database layer would."""

from __future__ import annotations

from datetime import datetime

import pytest

from feedsvc.clock import FrozenClock
from tests.conftest import NOW


def test_frozen_clock_needs_an_aware_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        FrozenClock(datetime(2026, 11, 28, 12, 0))
    clock = FrozenClock(NOW)
    assert clock.advance(minutes=90) == datetime(2026, 11, 28, 13, 30, tzinfo=NOW.tzinfo)
    assert clock.now() == datetime(2026, 11, 28, 13, 30, tzinfo=NOW.tzinfo)
