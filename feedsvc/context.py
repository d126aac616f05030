"""What every service function needs: settings, the database, and the clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from feedsvc.clock import Clock, SystemClock
from feedsvc.config import Settings
from feedsvc.db import Database


@dataclass
class Context:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)
    # Long-lived state a process keeps between job runs (the related index); never shared.
    memory: dict[str, Any] = field(default_factory=dict)
