"""Property tests load the shared Hypothesis profile ("ci" unless HYPOTHESIS_PROFILE says)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hypothesis_profiles import FUZZ, load_profile

PROFILE = load_profile()
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A fuzz run is meant to take long: the suite's 120 s per-test timeout would cut it short
    # (and report a timeout inside Hypothesis' shrinker as the failure).
    if PROFILE == FUZZ:
        for item in items:
            if HERE in item.path.parents:
                item.add_marker(pytest.mark.timeout(0))
