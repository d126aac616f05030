"""Fixtures of the browser tests: one Chromium for the session (build/e2e/ emptied when it
starts) and a loopback upstream feed per module (the machinery: tests/e2e/browser.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.browser import SHOTS, Upstream, chromium, loopback_feed


@pytest.fixture(scope="session")
def browser() -> Iterator[WebDriver]:
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def upstream_feed() -> Iterator[Upstream]:
    """For a source step: browser.loopback_feed, until the module ends."""
    with loopback_feed() as upstream:
        yield upstream
