"""Settings: defaults → TOML file → environment; bad values name their key."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from feedsvc.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "feedsvc.toml"
    path.write_text(text, encoding="utf-8")
    return {"FEEDSVC_CONFIG": str(path)}


ROOT = Path(__file__).resolve().parent.parent


def test_shipped_config_is_valid() -> None:
    """data/feedsvc.toml (`make run`): its relative paths resolve against data/, wherever from."""
    settings = load_settings(environ={"FEEDSVC_CONFIG": "data/feedsvc.toml"}, cwd=ROOT)
    assert settings.site.language == "zh-CN" and settings.site.timezone == "Asia/Shanghai"
    assert settings.database.url == f"sqlite:///{ROOT}/data/feedsvc.db"
    assert settings.config_file == ROOT / "data" / "feedsvc.toml"
    # data/categories.toml and data/posts are links to the packaged samples (one copy in git).
    assert settings.paths.categories == ROOT / "data" / "categories.toml"
    assert settings.paths.posts == ROOT / "data" / "posts"
    assert settings.paths.posts.resolve() == ROOT / "feedsvc" / "samples" / "posts"


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
        ('[site]\nbase_url = "https://x.test/站?a=1"\n', {}, "site.base_url"),
        ("[sources]\ndefault_interval_minutes = 5\nmin_interval_minutes = 10\n", {}, "sources"),
        ("site = 1\n", {"FEEDSVC_BASE_URL": "https://x.test"}, "site: must be a table"),
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


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("garbage", "cannot be read as a database URL"),
        ("foo://127.0.0.1/x", "unsupported database 'foo'"),
        ("postgresql+nodriver://u@127.0.0.1/x", "unknown database dialect or driver"),
        ("postgresql+psycopg://u@127.0.0.1:五四三二/x", "cannot be read as a database URL"),
        ("sqlite://host/x.db", "Invalid SQLite URL"),
        # A dialect SQLAlchemy knows, with a driver feedsvc does not install.
        ("postgresql+pg8000://u@127.0.0.1/x", "'postgresql+pg8000' is not installed (pg8000)"),
        ("sqlite:////tmp/a\x01b.db", "control character U+0001"),
        ("sqlite:////tmp/" + "长" * 2000 + "/x.db", "cannot be used"),
    ],
)
def test_database_url_is_checked_once(tmp_path: Path, url: str, message: str) -> None:
    from_file = write(tmp_path, f"[database]\nurl = {json.dumps(url, ensure_ascii=False)}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(environ=from_file)
    assert str(info.value).startswith(f"config: {tmp_path / 'feedsvc.toml'}: database.url: ")
    assert message in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"FEEDSVC_DATABASE_URL": url})
    assert str(info.value).startswith("environment: FEEDSVC_DATABASE_URL: database.url: ")


def test_sqlite_folder_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "文件").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not a folder"):
        load_settings(environ={"FEEDSVC_DATABASE_URL": f"sqlite:///{tmp_path}/文件/db/x.db"})
    assert not (tmp_path / "db").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[site]\ntitle = "标题"\n'.encode("gbk"), "not UTF-8 text (byte 0xb1 at offset 16)"),
        (b"[site]\ntitle = " + b"[" * 3000 + b"]" * 3000, "nested too deeply"),
        (b"[feeds]\nmax_length = " + b"1" * 4301, "too many digits"),
        (b'[site]\ntitle = "\\u0000"\n', "site.title: contains the control character U+0000"),
        (b'[site]\n"a\\u0007" = 1\n', "contains the control character U+0007"),
        (b"[feeds]\nmax_length = 99999999999999999999999\n", "feeds.max_length"),
    ],
)
def test_hostile_config_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "feedsvc.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"FEEDSVC_CONFIG": str(path)})
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_config_path_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder"):
        load_settings(environ={"FEEDSVC_CONFIG": str(tmp_path)})


def test_sqlite_path_with_spaces_and_chinese(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/我的 数据/feedsvc.db"
    assert load_settings(environ={"FEEDSVC_DATABASE_URL": url}).database.url == url


def test_a_sqlite_uri_is_left_as_written(tmp_path) -> None:
    from feedsvc.config import load_settings

    url = f"sqlite:///file:{tmp_path}/site.db?mode=ro&uri=true"
    settings = load_settings(environ={"FEEDSVC_DATABASE_URL": url, "FEEDSVC_CONFIG": ""})
    assert settings.database.url == url


def test_without_a_config_file_a_site_needs_an_absolute_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --config, no FEEDSVC_CONFIG, no ./feedsvc.toml: never the package folder, never the
    working directory. An absolute database URL from the environment is a site of its own."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"FEEDSVC_BASE_URL": "https://例子.test/"})
    assert "no configuration" in str(info.value) and "feedsvc new-site DIR" in str(info.value)
    assert str(tmp_path) in str(info.value)
    with pytest.raises(ConfigError, match=r"FEEDSVC_DATABASE_URL: database.url: .* is relative"):
        load_settings(environ={"FEEDSVC_DATABASE_URL": "sqlite:///site.db"})
    url = f"sqlite:///{tmp_path}/site.db"
    settings = load_settings(environ={"FEEDSVC_DATABASE_URL": url})
    assert (settings.config_file, settings.data_dir, settings.database.url) == (None, None, url)
    assert (settings.paths.categories, settings.paths.posts) == (None, None)
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"FEEDSVC_SCHEDULER": "2"})
    assert str(info.value) == "environment: FEEDSVC_SCHEDULER: must be 0 or 1"
    assert list(tmp_path.iterdir()) == []  # nothing was created anywhere


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere: os.access grants it")
def test_sqlite_folder_in_a_read_only_folder(tmp_path: Path) -> None:
    locked = tmp_path / "只读"
    locked.mkdir(mode=0o555)
    with pytest.raises(ConfigError, match="is not writable"):
        load_settings(environ={"FEEDSVC_DATABASE_URL": f"sqlite:///{locked}/db/x.db"})
    assert not (locked / "db").exists()


# -- discovery: --config, then FEEDSVC_CONFIG, then ./feedsvc.toml -------------------------------


def site(folder: Path, title: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "feedsvc.toml"
    path.write_text(f'[site]\ntitle = "{title}"\n{extra}', encoding="utf-8")
    return path


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = site(tmp_path / "当前", "当前目录")
    named = site(tmp_path / "环境", "环境变量")
    monkeypatch.chdir(here.parent)
    assert load_settings(environ={}).site.title == "当前目录"
    settings = load_settings(environ={"FEEDSVC_CONFIG": str(named)})
    assert settings.site.title == "环境变量" and settings.config_file == named
    # An empty variable is no variable (`FEEDSVC_CONFIG= feedsvc ...`).
    assert load_settings(environ={"FEEDSVC_CONFIG": ""}).config_file == here
    # A relative name is relative to the working directory, then made absolute.
    monkeypatch.chdir(tmp_path)
    relative = load_settings(environ={"FEEDSVC_CONFIG": "环境/feedsvc.toml"})
    assert relative.config_file == named and relative.config_file.is_absolute()


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "我的 站点"
    (folder / "内容").mkdir(parents=True)
    (folder / "分类.toml").write_text("", encoding="utf-8")
    config = site(
        folder,
        "站",
        '[database]\nurl = "sqlite:///数据/feedsvc.db"\n'
        '[paths]\ncategories = "分类.toml"\nposts = "内容"\n',
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(environ={"FEEDSVC_CONFIG": str(config)})
    assert settings.database.url == f"sqlite:///{folder}/数据/feedsvc.db"
    assert settings.paths.categories == folder / "分类.toml"
    assert settings.paths.posts == folder / "内容"
    assert settings.data_dir == folder
    # FEEDSVC_DATABASE_URL's relative SQLite path is the site's too.
    env = {"FEEDSVC_CONFIG": str(config), "FEEDSVC_DATABASE_URL": "sqlite:///x.db"}
    assert load_settings(environ=env).database.url == f"sqlite:///{folder}/x.db"


def test_default_site_files_need_not_exist(tmp_path: Path) -> None:
    config = site(tmp_path, "站")
    settings = load_settings(environ={"FEEDSVC_CONFIG": str(config)})
    assert settings.database.url == f"sqlite:///{tmp_path}/feedsvc.db"
    assert settings.paths.categories == tmp_path / "categories.toml"
    assert settings.paths.posts == tmp_path / "posts"


@pytest.mark.parametrize("key", ["categories", "posts"])
def test_a_named_site_file_that_is_missing_is_an_error(tmp_path: Path, key: str) -> None:
    config = site(tmp_path, "站", f'[paths]\n{key} = "缺少"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"FEEDSVC_CONFIG": str(config)})
    assert str(info.value) == f"config: {config}: paths.{key}: {tmp_path}/缺少: not found"


def test_config_file_is_never_read_from_the_file(tmp_path: Path) -> None:
    config = site(tmp_path, "站")
    config.write_text('config_file = "/etc/passwd"\n', encoding="utf-8")
    assert load_settings(environ={"FEEDSVC_CONFIG": str(config)}).config_file == config


def test_a_dot_feedsvc_toml_that_is_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "feedsvc.toml").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"\./feedsvc.toml: .* is a folder"):
        load_settings(environ={})


def test_non_utf8_config_path(tmp_path: Path) -> None:
    """A file name that is not UTF-8 (PEP 383 surrogates in the environment) still works."""
    name = os.fsdecode(b"\xff\xfe-site")
    config = site(tmp_path / name, "站")
    settings = load_settings(environ={"FEEDSVC_CONFIG": str(config)})
    assert settings.site.title == "站" and settings.config_file == config
    missing = os.fsdecode(b"/nonexistent/\xff.toml")
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(environ={"FEEDSVC_CONFIG": missing})


def test_nul_in_config_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"FEEDSVC_CONFIG": f"{tmp_path}/a\x00b.toml"})
    assert str(info.value) == "FEEDSVC_CONFIG: the path contains a NUL character"


def test_names_too_long_to_use(tmp_path: Path) -> None:
    long = "长" * 2000
    with pytest.raises(ConfigError, match=r"^FEEDSVC_CONFIG: '.*': cannot be used: "):
        load_settings(environ={"FEEDSVC_CONFIG": f"{tmp_path}/{long}.toml"})
    config = site(tmp_path, "站", f'[paths]\nposts = "{long}"\n')
    with pytest.raises(ConfigError, match=r"paths.posts: .*: cannot be used: "):
        load_settings(environ={"FEEDSVC_CONFIG": str(config)})


def test_a_relative_site_path_without_a_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path}/x.db"
    with pytest.raises(ConfigError) as info:
        load_settings(
            {"paths": {"categories": "categories.toml"}}, environ={"FEEDSVC_DATABASE_URL": url}
        )
    assert str(info.value) == (
        "config: paths.categories: categories.toml is relative, but there is no config file"
    )


@pytest.mark.parametrize(
    "authority", ["a b", "example.com,2026", "-x.com", "x..com", "a_b.com", "x.com/"]
)
def test_tag_authority_must_be_a_dns_name_or_an_email(authority: str) -> None:
    # RFC 4151 §2.1: it becomes part of every guid; a space or a comma would break them all.
    with pytest.raises(ConfigError, match=r"site\.tag_authority: must be a domain name"):
        load_settings(
            {"site": {"tag_authority": authority}}, environ={"FEEDSVC_DATABASE_URL": "sqlite://"}
        )


@pytest.mark.parametrize(
    "authority", ["example.com", "blog.example.cn", "editor@example.com", "127.0.0.1", "例子.中国"]
)
def test_tag_authority_accepts_names_and_emails(authority: str) -> None:
    settings = load_settings(
        {"site": {"tag_authority": authority}}, environ={"FEEDSVC_DATABASE_URL": "sqlite://"}
    )
    assert settings.site.authority == authority
