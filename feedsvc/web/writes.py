"""Writes run apart from reads, one at a time, at a lower CPU priority: readers keep the CPU.

Every request that may write (any method but GET, HEAD and OPTIONS: the API's POST, PATCH,
PUT and DELETE, the admin forms to come) is answered by a write worker of its process, while
the request thread waits for it; reads never wait for one. ``http.write_threads`` is the
number of write workers per process (default 1; 0 runs writes on the request thread), and
``http.write_isolation`` says what a write worker is:

- **A process** (``"process"``; ``"auto"`` under ``feedsvc serve``). A child process of the
  web worker with an app of its own, started on the first write and restarted when it dies.
  It runs at the web worker's nice value plus ``http.write_nice`` (default 10): the kernel
  gives it about a tenth of a reader's share of a busy CPU, so feed polls get the CPU first
  while publishers write flat out, and writes go on at the pace the spare CPU allows (on an
  idle CPU a write runs as fast as before). Its interpreter lock is its own: a write that
  the kernel preempts stops nobody else. The request goes over a pipe (the CGI variables and
  the body, read here up to ``http.max_request_bytes``) and the whole answer comes back.
  A child that dies during a write answers 503 (the write may or may not have committed);
  one that cannot start is logged, and the write runs on the request thread instead.
- **A thread** (``"thread"``; ``"auto"`` elsewhere: tests, embedding). A thread of the
  process at the lower priority. Cheaper, but a thread preempted while it holds the
  interpreter lock stalls every reader of its process until its next time slice (the
  README's figures), so the process also switches threads every 0.5 ms (SWITCH_INTERVAL)
  instead of Python's 5 ms. (A thread's nice value can only go up without privileges, which
  is why writes get threads of their own instead of lowering the request thread's.)

With one write worker a process runs its writes in arrival order, where four concurrent
writes used to take turns on the interpreter lock with every reader; SQLite commits one
writer at a time anyway. Measured by bench/writes.py (b): see the README's figures.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from flask import Flask

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from feedsvc.config import Settings

log = logging.getLogger("feedsvc.web")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITE_PROCESS_ENDED = "the write process ended during this write: it may or may not have been saved"
THREAD_NAME = "feedsvc-write"
# Seconds a running thread may keep the interpreter lock while another waits for it (Python's
# default: 0.005). A write holds it for whole milliseconds of Markdown, sanitizing and ORM
# work; at 5 ms each reader of the process that wants it back waits that long.
SWITCH_INTERVAL = 0.0005
# (status, headers, body): a write process's answer.
Answer = tuple[str, list[tuple[str, str]], bytes]
# Seconds a new write process may take to build its app and say so.
START_SECONDS = 60.0
# Request variables set again for the child: the body goes to it read, with its length.
_LOCAL = frozenset({"HTTP_TRANSFER_ENCODING", "CONTENT_LENGTH"})
# What a write process answers when the app itself raised outside Flask's error handlers.
_BROKEN: Answer = (
    "500 INTERNAL SERVER ERROR",
    [("Content-Type", "application/json")],
    b'{"error":{"code":"internal","message":"the write failed; it is logged","fields":{}}}',
)


def serving(settings: Settings) -> Settings:
    """The settings of a `feedsvc serve` web worker: ``write_isolation = "auto"`` → process."""
    if settings.http.write_isolation != "auto":
        return settings
    http = settings.http.model_copy(update={"write_isolation": "process"})
    return settings.model_copy(update={"http": http})


def init_app(app: Flask, settings: Settings) -> None:
    """Queue the app's writes (call it last: the queue wraps every other middleware)."""
    http = settings.http
    if http.write_threads == 0:
        return
    if http.write_isolation == "process":
        app.wsgi_app = WriteProcesses(app, settings)  # type: ignore[method-assign]
        return
    app.wsgi_app = WriteQueue(app.wsgi_app, http.write_threads, http.write_nice)  # type: ignore[method-assign]
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
        # The whole answer is made here, body and close() included: a write's answer is a
        # small JSON document, and nothing of it runs on the request thread.
        return _read_all(self._wsgi(environ, start_response))


def _read_all(answer: Iterable[bytes]) -> list[bytes]:
    """A WSGI answer's chunks, read to the end and closed (PEP 3333)."""
    try:
        return list(answer)
    finally:
        close = getattr(answer, "close", None)
        if close is not None:
            close()


class WriteProcesses:
    """WSGI middleware: requests that may write are answered by child processes (the docstring)."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        self._app = app
        self._wsgi = app.wsgi_app
        # The child's own app writes on its request thread: no queue inside the queue.
        http = settings.http.model_copy(update={"write_threads": 0})
        self._settings = settings.model_copy(update={"http": http})
        self._nice = settings.http.write_nice
        self._max_body = settings.http.max_request_bytes
        # Idle workers; None is a worker not started yet (started on the first write, after
        # gunicorn forked this worker: a --preload master has written nothing).
        self._idle: queue.SimpleQueue[_Child | None] = queue.SimpleQueue()
        self._workers = settings.http.write_threads
        for _ in range(self._workers):
            self._idle.put(None)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") in READ_METHODS:
            return self._wsgi(environ, start_response)
        request = self._portable(environ)
        child = self._idle.get()
        try:
            if child is None or not child.alive():
                child = self._start()
                if child is None:  # logged: this write runs here, on the body read above
                    variables, body = request
                    environ["CONTENT_LENGTH"] = variables["CONTENT_LENGTH"]
                    environ.pop("HTTP_TRANSFER_ENCODING", None)
                    environ["wsgi.input"] = io.BytesIO(body)
                    return self._wsgi(environ, start_response)
            try:
                status, headers, body = child.ask(request)
            except (EOFError, OSError) as error:
                log.error("write process %s ended during a write: %s", child.pid, error)
                child.stop()
                child = None
                return self._unavailable(environ, start_response)
        finally:
            self._idle.put(child)
        start_response(status, headers)
        return [body]

    def close(self) -> None:
        """Stop the write processes (they stop by themselves when this process ends)."""
        for _ in range(self._workers):
            child = self._idle.get()
            if child is not None:
                child.stop()
        for _ in range(self._workers):
            self._idle.put(None)

    def children(self) -> list[int]:
        """The pids of the write processes running now (idle ones: for tests and logs)."""
        found = []
        for _ in range(self._workers):
            found.append(self._idle.get())
        for child in found:
            self._idle.put(child)
        return [child.pid for child in found if child is not None and child.alive()]

    def _portable(self, environ: WSGIEnvironment) -> tuple[dict[str, str], bytes]:
        """The request as plain data: its string variables and its body, read here.

        A body larger than ``http.max_request_bytes`` is not read: its declared length goes
        on, and the child's app answers 413 as it would have here.
        """
        variables = {
            key: value
            for key, value in environ.items()
            if isinstance(value, str)
            and (key.isupper() or key == "wsgi.url_scheme")
            and key not in _LOCAL
        }
        declared = environ.get("CONTENT_LENGTH") or ""
        length = int(declared) if declared.isascii() and declared.isdigit() else None
        if length is not None and length > self._max_body:
            variables["CONTENT_LENGTH"] = str(length)
            return variables, b""
        stream = environ["wsgi.input"]
        body = stream.read(length) if length is not None else stream.read(self._max_body + 1)
        variables["CONTENT_LENGTH"] = str(len(body))
        return variables, body

    def _start(self) -> _Child | None:
        try:
            return _Child.start(self._settings, self._nice)
        except Exception as error:  # any failure to start: write here instead
            log.error("a write process did not start (%s); writing on the request thread", error)
            return None

    def _unavailable(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        from feedsvc.web.errors import error_response

        with self._app.request_context(environ):
            response = error_response(503, WRITE_PROCESS_ENDED)
        return response(environ, start_response)


class _Child:
    """One write process and our end of its pipe."""

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.pid: int = process.pid or 0

    @classmethod
    def start(cls, settings: Settings, nice: int) -> _Child:
        # spawn: a fresh interpreter (forking a threaded web worker copies its locks' state).
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_serve_writes, args=(settings, theirs, nice), name=THREAD_NAME, daemon=True
        )
        process.start()
        theirs.close()
        child = cls(process, ours)
        if not ours.poll(START_SECONDS):
            child.stop()
            raise TimeoutError(f"no answer within {START_SECONDS:.0f} s")
        ready = ours.recv()  # EOFError when it died building its app: its log says why
        if ready != "ready":
            child.stop()
            raise RuntimeError(str(ready))
        log.info("write process %s started (nice +%d)", child.pid, nice)
        return child

    def alive(self) -> bool:
        return self.process.is_alive()

    def ask(self, request: tuple[dict[str, str], bytes]) -> Answer:
        self.conn.send(request)
        answer: Answer = self.conn.recv()
        return answer

    def stop(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(5)


def _serve_writes(settings: Settings, conn: Connection, nice: int) -> None:
    """A write process: build an app, then answer the requests its web worker sends."""
    # Ctrl-C in a terminal reaches the whole process group: the web worker's end of the pipe
    # closing is what ends this process (or the worker's SIGTERM at exit), never a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if nice > 0:
        os.nice(nice)  # the whole process, every thread of it
    try:
        from feedsvc import create_app

        app = create_app(settings=settings)
    except Exception as error:
        log.exception("the write process could not build its app")
        conn.send(f"{type(error).__name__}: {error}")
        return
    conn.send("ready")
    answer_requests(app, conn)


def answer_requests(app: Any, conn: Connection) -> None:
    """Answer each request that comes over ``conn`` with ``app``, until the other end closes."""
    while True:
        try:
            variables, body = conn.recv()
        except EOFError:  # the web worker is gone
            return
        try:
            answer = _answer(app, variables, body)
        except Exception:  # a middleware outside Flask's handlers: this write only
            log.exception("write process: the app raised")
            answer = _BROKEN
        conn.send(answer)


def _answer(app: Any, variables: dict[str, str], body: bytes) -> Answer:
    environ: dict[str, Any] = dict(variables)
    environ.update(
        {
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
    )
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [status, headers]
        return lambda data: None  # pragma: no cover - the app never uses write()

    data = b"".join(_read_all(app(environ, start_response)))
    return started[0], list(started[1]), data
