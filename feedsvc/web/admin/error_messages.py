"""The admin's error pages in Chinese: the English messages they may carry, translated.

Werkzeug describes its errors in English (404 "The requested URL was not found on the
server…"), and so do feedsvc's layers below the admin (routing, jobs, storage), which the API
and the CLI keep saying in English. Under /admin the page says them in Chinese. Only messages
known here are translated, by exact text or, for those that name a value, by pattern: the
admin views' own messages are Chinese already ("没有编号为 … 的文章") and pass unchanged, and
an English message nobody listed here stays as it was said rather than be lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from werkzeug import exceptions as http

from feedsvc.db import (
    BUSY,
    FAULT_MESSAGES,
    FULL,
    NOT_MIGRATED_KIND,
    READ_ONLY,
    UNREACHABLE_KIND,
)
from feedsvc.web.writes import WRITE_PROCESS_ENDED

# The heading's reason where the site's (feedsvc/web/errors.py) has none.
REASONS = {
    403: "没有权限",
    409: "冲突",
    410: "已删除",
    414: "地址过长",
    415: "不支持的内容类型",
    422: "内容有误",
    429: "请求过于频繁",
    431: "请求头过大",
}

# Werkzeug's default descriptions, by its exception classes (its wording may change).
_WERKZEUG: dict[type[http.HTTPException], str] = {
    http.BadRequest: "请求有误，服务器无法理解。",
    http.Unauthorized: "需要登录后才能访问。",
    http.Forbidden: "没有权限访问这个页面。",
    http.NotFound: "没有这个页面。",
    http.MethodNotAllowed: "这个地址不接受这种请求方法。",
    http.NotAcceptable: "无法按请求的格式（Accept 请求头）提供这个页面。",
    http.RequestTimeout: "请求没有在限定时间内发送完，服务器断开了连接。",
    http.Conflict: "处理请求时发生冲突：内容可能在这期间被修改了。",
    http.Gone: "这个页面已被永久删除。",
    http.LengthRequired: "这种请求方法需要有效的 Content-Length 请求头。",
    http.PreconditionFailed: "请求的前提条件不成立。",
    http.RequestURITooLarge: "请求的地址过长，服务器无法处理。",
    http.UnsupportedMediaType: "服务器不支持请求中的内容类型。",
    http.RequestedRangeNotSatisfiable: "无法提供所请求的范围。",
    http.ExpectationFailed: "无法满足 Expect 请求头的要求。",
    http.UnprocessableEntity: "请求的格式正确，但内容有误，无法处理。",
    http.TooManyRequests: "请求过于频繁，请稍后再试。",
    http.RequestHeaderFieldsTooLarge: "请求头过大。",
    http.InternalServerError: "服务器内部出错。",
    http.NotImplemented: "服务器不支持所请求的操作。",
    http.BadGateway: "上游服务器返回了无效的响应。",
    http.ServiceUnavailable: "服务器暂时无法处理请求，请稍后再试。",
    http.GatewayTimeout: "连接上游服务器超时。",
}

# feedsvc's own English messages (feedsvc/db.py, web/errors.py, web/writes.py, web/routing.py).
_STORAGE = {
    READ_ONLY: "数据库是只读的：暂时不能保存修改。",
    FULL: "数据库所在的磁盘已满：暂时不能保存修改。",
    BUSY: "数据库正忙，请稍后再试。",
    UNREACHABLE_KIND: "暂时连不上数据库，请稍后再试。",
    NOT_MIGRATED_KIND: "数据库还没有建表：请运行 `feedsvc init`（或 `feedsvc db upgrade`）。",
    "cannot-open": "无法打开数据库文件（请检查 database.url 和它所在的文件夹）。",
    "io-error": "数据库文件无法读写（I/O 错误）。",
    "corrupt": "数据库文件已损坏。",
    "not-a-database": "数据库文件不是 SQLite 数据库。",
    "permission-denied": "数据库文件不可写（没有权限）。",
    "out-of-resources": "数据库的资源（磁盘、内存或连接）不足。",
}
_EXACT = {
    **{str(cls.description): chinese for cls, chinese in _WERKZEUG.items()},
    **{FAULT_MESSAGES[kind]: chinese for kind, chinese in _STORAGE.items()},
    "internal error; it has been logged": "服务器内部出错，已记入日志。",
    WRITE_PROCESS_ENDED: (
        "写入进程在这次保存的中途结束了：内容可能已经保存，也可能没有，请查看后再试。"
    ),
    "the query string must not contain NUL characters": "请求中不能包含 NUL 字符。",
}
_PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (  # feedsvc/web/routing.py IdConverter
        re.compile(r"there is nothing at this id: ids are whole numbers from 1 to (\d+)"),
        lambda m: f"没有这个编号：编号是 1 到 {m[1]} 之间的整数。",
    ),
    (  # feedsvc/schedule.py job()
        re.compile(r"no job (.*); jobs are: (.*)", re.DOTALL),
        lambda m: f"没有名为 {m[1]} 的后台任务；现有的任务：{'、'.join(m[2].split(', '))}。",
    ),
]


def too_large(max_request_bytes: int) -> str:
    return (
        f"请求过大：超过了 http.max_request_bytes 的限制（{max_request_bytes} 字节）。"
        "文章正文太长时请分成几篇或调高这个设置。"
    )


def in_chinese(status: int, message: str, *, max_request_bytes: int) -> str:
    """``message`` as the admin reads it: translated when it is one known here."""
    if status == 413 and message == http.RequestEntityTooLarge.description:
        return too_large(max_request_bytes)
    if message in _EXACT:
        return _EXACT[message]
    for pattern, say in _PATTERNS:
        if match := pattern.fullmatch(message):
            return say(match)
    return message
