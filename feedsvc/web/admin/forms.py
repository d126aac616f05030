"""Reading admin forms: text and whole numbers from strings, and field messages in Chinese.

The services and schemas speak English to the API and CLI (their ``Invalid(fields=...)``);
the admin shows the same rule in Chinese next to the field, the English kept when a message
has no translation here, so nothing a service says is ever lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from feedsvc.errors import Invalid
from feedsvc.schemas import parse_input, parse_whole_number

M = TypeVar("M", bound=BaseModel)

_FIXED = {
    "is required": "必填",
    "must be a string": "必须是文字",
    "is not a known field": "不是可填写的字段",
    "must not be null": "不能为空",
    "must be lowercase ASCII letters, digits and single hyphens": (
        "只能使用小写英文字母、数字和单个连字符（例如 licai-fangfa）"
    ),
    "is already taken": "已被占用，请换一个",
    "is not a category": "不是已有的分类",
    "is the category being removed": "不能移到正在删除的分类本身",
    "required while the category has posts or sources": (
        "该分类还有文章或订阅源：请选择要把它们移到哪个分类"
    ),
    "1-100 chars": "须为 1 到 100 个字符",
    "is empty once sanitized": "去掉不安全的标签和脚本后内容为空",
    "year must be between 1970 and 9998": "年份须在 1970 到 9998 之间",
    "must be an absolute http:// or https:// URL": "须为以 http:// 或 https:// 开头的完整网址",
    "is already a source": "已经是订阅源",
    "must be one of 'related' or 'posts'": "请选择“相关内容”或“文章”",
    "Input should be a valid boolean": "须为是或否",
    "URL has no host": "网址缺少主机名",
    "URL has no usable port": "网址的端口不可用（须为 1 到 65535）",
    "only http and https URLs are fetched, not": "只能抓取 http:// 或 https:// 网址",
    "Invalid IPv6 URL": "网址中的 IPv6 地址无效",
}
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"String should have at least 1 character"), "不能为空"),
    (re.compile(r"String should have at least (\d+) characters"), "至少 {0} 个字符"),
    (re.compile(r"String should have at most (\d+) characters?"), "最多 {0} 个字符"),
    (re.compile(r"String should match pattern .*"), "格式不正确"),
    (re.compile(r"Input should be greater than or equal to (\d+)"), "不能小于 {0}"),
    (re.compile(r"Input should be less than or equal to (\d+)"), "不能大于 {0}"),
    (
        re.compile(r"must be at most feeds\.max_length \((\d+)\)"),
        "不能大于 {0}（feeds.max_length）",
    ),
    (re.compile(r"'(.*)' is reserved by the URL map"), "“{0}”是网址保留字，不能使用"),
    (
        re.compile(r"must be at least (\d+) minutes"),
        "不能少于 {0} 分钟（sources.min_interval_minutes）",
    ),
    (re.compile(r"invalid URL: (.*)", re.S), "网址无效：{0}"),
    (re.compile(r"unknown category .*", re.S), "不是已有的分类"),
    (re.compile(r"must be one of .*"), "请选择列表中的一项"),
    (re.compile(r"List should have at most (\d+) items.*"), "最多 {0} 个"),
    (re.compile(r"nests elements more than (\d+) deep"), "元素嵌套超过 {0} 层，请简化"),
]
NOT_A_NUMBER = "请填写整数（半角数字 0-9）"
CONTROL = "不能包含控制字符（如 NUL）"


def in_chinese(message: str) -> str:
    if message in _FIXED:
        return _FIXED[message]
    for pattern, chinese in _PATTERNS:
        found = pattern.fullmatch(message)
        if found:
            return chinese.format(*found.groups())
    return f"输入无效：{message}"


def chinese_fields(fields: Mapping[str, str]) -> dict[str, str]:
    return {name: in_chinese(message) for name, message in fields.items()}


def has_control(text: str) -> bool:
    # Tabs and line breaks are text; NUL and the other C0/C1 controls are not.
    return any(not ch.isprintable() and ch not in "\t\r\n" for ch in text)


def shown(text: str) -> str:
    """A typed value as it goes back into the form: control characters dropped (HTML forbids
    NUL), everything else kept."""
    return "".join(ch for ch in text if ch.isprintable() or ch in "\t\r\n")


def validated(model: type[M], data: dict[str, Any], errors: dict[str, str]) -> M | None:
    """``data`` read into the API's ``model``; None when it or the form (``errors``, which
    gains the schema's messages in Chinese) found a problem."""
    try:
        parsed = parse_input(model, data)
    except Invalid as exc:
        for name, message in chinese_fields(exc.fields).items():
            errors.setdefault(name, message)
        return None
    return None if errors else parsed


def whole_number(text: str) -> int | None:
    return parse_whole_number(text.strip())
