"""Settings: defaults → TOML file → environment; bad values name their key."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedsvc.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "feedsvc.toml"
    path.write_text(text, encoding="utf-8")
    return {"FEEDSVC_CONFIG": str(path)}


def test_shipped_config_is_valid() -> None:
    settings = load_settings(environ={})
    assert settings.site.language == "zh-CN" and settings.site.timezone == "Asia/Shanghai"
    assert settings.database.url.startswith("sqlite:////") and settings.database.url.endswith(
        "data/feedsvc.db"
    )


def test_file_and_environment(tmp_path: Path) -> None:
    env = write(tmp_path, '[site]\ntitle = "我的站"\n[feeds]\ncache_max_age = 60\n')
    env |= {
        "FEEDSVC_BASE_URL": "https://example.org/",
        "FEEDSVC_SCHEDULER": "0",
        "FEEDSVC_DATABASE_URL": "postgresql+psycopg://u@h/db",
    }
    settings = load_settings(environ=env)
    assert settings.site.title == "我的站" and settings.feeds.cache_max_age == 60
    assert settings.site.base_url == "https://example.org"
    assert settings.scheduler.enabled is False
    assert settings.database.url == "postgresql+psycopg://u@h/db"
    assert settings.data_dir == tmp_path


@pytest.mark.parametrize(
    ("text", "env", "key"),
    [
        ('[feeds]\nmax_length = "many"\n', {}, "feeds.max_length"),
        ("[feeds]\ndefault_length = 500\nmax_length = 100\n", {}, "feeds"),
        ('[site]\ntimezone = "Mars/Base"\n', {}, "site.timezone"),
        ('[site]\nbase_url = "ftp://x"\n', {}, "site.base_url"),
        ('[site]\nlanguage = "中文"\n', {}, "site.language"),
        ('[site]\ncolour = "red"\n', {}, "site.colour"),
        ('[scheduler]\nrelated_rebuild_cron = "every day"\n', {}, "scheduler.related_rebuild_cron"),
        ("[http]\nmax_request_bytes = 1\n", {}, "http.max_request_bytes"),
        ("[feeds\n", {}, "invalid TOML"),
        ("", {"FEEDSVC_SCHEDULER": "maybe"}, "FEEDSVC_SCHEDULER"),
        ("", {"FEEDSVC_BASE_URL": "not a url"}, "site.base_url"),
    ],
)
def test_bad_configuration_names_the_key(tmp_path: Path, text: str, env: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ=write(tmp_path, text) | env)
    message = str(info.value)
    assert key in message and "\n" not in message


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(environ={"FEEDSVC_CONFIG": str(tmp_path / "nope.toml")})
