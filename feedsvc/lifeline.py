"""The scheduler's lifeline to the `feedsvc serve` master that started it.

When the master dies — even by SIGKILL, when no ``finally`` runs to stop its children — the
scheduler it started must not run on as an orphan (the next `serve` would start a second
one). Two ways to notice, because each has a gap:

- Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)``: the kernel sends SIGTERM when the parent dies,
  which stops the scheduler between batches like any SIGTERM. It is set by the child itself,
  so the parent may already be gone by then: the parent pid is checked right after setting
  it (prctl(2)).
- A watcher thread comparing ``os.getppid()`` to the pid the master passed in
  (``FEEDSVC_PARENT_PID``) every second: portable, and it also enforces a deadline. A run
  stuck in a slow fetch could keep the orphan alive for minutes; after ``GRACE_SECONDS`` the
  process exits hard. That is safe for the same reason a SIGKILL is: every batch is its own
  transaction and the lease expires by itself.

A scheduler started by hand (`feedsvc scheduler`, no ``FEEDSVC_PARENT_PID``) has no lifeline.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger("feedsvc.jobs")

PARENT_PID_ENV = "FEEDSVC_PARENT_PID"
POLL_SECONDS = 1.0
GRACE_SECONDS = 5.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def expected_parent(environ: Mapping[str, str] = os.environ) -> int | None:
    """The pid of the master that started us, or None when started by hand."""
    text = environ.get(PARENT_PID_ENV, "")
    return int(text) if text.isascii() and text.isdigit() and int(text) > 1 else None


def _ask_kernel_for_sigterm() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)) == 0
    except (OSError, AttributeError):  # no libc prctl (musl oddities): the thread still works
        return False


def hold(parent: int, on_gone: Callable[[], None]) -> bool:
    """Watch ``parent``; call ``on_gone`` when it dies. False if it is already gone."""
    if not _ask_kernel_for_sigterm():
        log.info("scheduler: no PR_SET_PDEATHSIG here; watching the parent pid only")
    if os.getppid() != parent:  # died before prctl took effect: no signal will come
        return False
    threading.Thread(
        target=_watch, args=(parent, on_gone), name="feedsvc-lifeline", daemon=True
    ).start()
    return True


def _watch(parent: int, on_gone: Callable[[], None]) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    log.warning("scheduler: parent %d is gone, stopping", parent)
    on_gone()
    time.sleep(GRACE_SECONDS)
    log.error("scheduler: still running %.0f s after the parent died: exiting", GRACE_SECONDS)
    logging.shutdown()
    os._exit(1)
