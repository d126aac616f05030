"""Writes run on their own thread per process, at a lower CPU priority: readers keep the CPU.

Every request that may write (any method but GET, HEAD and OPTIONS: the API's POST, PATCH,
PUT and DELETE, the admin forms to come) is handed to a small pool of write threads of its
process (``http.write_threads``, default 1) and answered from there, while the request
thread waits for it. Reads never wait for this queue.

- **Priority.** On Linux the write threads run at a higher nice value than the rest of the
  process (``http.write_nice`` added, default 10). The kernel then gives a write thread about
  a tenth of a reader thread's share of a busy CPU: feed polls get the CPU first while
  publishers write flat out, and writes go on at the pace the spare CPU allows. On an idle
  CPU a write runs as fast as before. (Not a guarantee: a write thread preempted while it
  holds the interpreter lock stalls its process until its next time slice; the README's
  figures show how wide runs spread.) (A thread's nice value can only go up without
  privileges, which is why writes get threads of their own instead of lowering the request
  thread's priority for a while.)
- **One at a time.** With one write thread, a process runs its writes one after another in
  arrival order, where four concurrent writes used to take turns on the interpreter lock
  with every reader of that process. SQLite commits one writer at a time anyway.
- **The interpreter lock.** A low-priority thread that holds the lock still stops every
  reader of its process, so the process switches threads every 0.5 ms (SWITCH_INTERVAL)
  instead of Python's 5 ms, and readers get the lock back sooner.

Measured by bench/writes.py (b): see the README's figures. ``http.write_threads = 0`` turns
the queue off: writes then run on the request thread, at the process's priority.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from flask import Flask

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("feedsvc.web")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
THREAD_NAME = "feedsvc-write"
# Seconds a running thread may keep the interpreter lock while another waits for it (Python's
# default: 0.005). A write holds it for whole milliseconds of Markdown, sanitizing and ORM
# work; at 5 ms each reader of the process that wants it back waits that long.
SWITCH_INTERVAL = 0.0005


def init_app(app: Flask, threads: int, nice: int) -> None:
    """Queue the app's writes (call it last: the queue wraps every other middleware)."""
    if threads > 0:
        app.wsgi_app = WriteQueue(app.wsgi_app, threads, nice)  # type: ignore[method-assign]
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)


def lower_priority(increment: int) -> int | None:
    """Raise the calling thread's nice value by ``increment`` (capped at 19); the new value,
    or None where a thread's priority cannot be set apart from its process's (not Linux)."""
    if increment <= 0 or not sys.platform.startswith("linux"):
        return None
    thread = threading.get_native_id()
    try:
        # On Linux, PRIO_PROCESS with a thread id is that thread alone (setpriority(2)).
        wanted = min(19, os.getpriority(os.PRIO_PROCESS, thread) + increment)
        os.setpriority(os.PRIO_PROCESS, thread, wanted)
    except OSError as error:  # pragma: no cover - a seccomp profile that forbids it
        log.warning("write threads keep the process's priority: %s", error)
        return None
    return wanted


class WriteQueue:
    """WSGI middleware: requests that may write run on the write threads (the docstring)."""

    def __init__(self, wsgi: WSGIApplication, threads: int, nice: int) -> None:
        self._wsgi = wsgi
        # Threads start on the first write, so after a fork (gunicorn workers build the app
        # after forking; a --preload master has written nothing yet).
        self._pool = ThreadPoolExecutor(
            max_workers=threads,
            thread_name_prefix=THREAD_NAME,
            initializer=lower_priority,
            initargs=(nice,),
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") in READ_METHODS:
            return self._wsgi(environ, start_response)
        return self._pool.submit(self._run, environ, start_response).result()

    def _run(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        # The whole answer is made here, body and close() included (PEP 3333): a write's
        # answer is a small JSON document, and nothing of it runs on the request thread.
        answer = self._wsgi(environ, start_response)
        try:
            return list(answer)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()
