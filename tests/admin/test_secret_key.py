"""The admin's secret key when the config names none: `feedsvc init` writes it beside the
config (mode 0600, never printed), every later process reads it, and a config's own key wins.
This is how `make run`'s site (data/feedsvc.toml, in git) gets a key that git never sees."""

from __future__ import annotations

import stat
from pathlib import Path

from feedsvc.config import SECRET_KEY_FILE, load_settings
from tests.processes import ROOT
from tests.test_site import feedsvc


def write_config(folder: Path, **site: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "feedsvc.toml"
    extra = "".join(f'{key} = "{value}"\n' for key, value in site.items())
    config.write_text(
        f'[site]\ntitle = "密钥站"\n{extra}\n[scheduler]\nenabled = false\n', encoding="utf-8"
    )
    return config


def settings_of(config: Path):  # type: ignore[no-untyped-def]
    return load_settings(environ={"FEEDSVC_CONFIG": str(config)})


def test_init_generates_the_key_once_and_every_process_reads_it(tmp_path: Path) -> None:
    config = write_config(tmp_path / "站点")
    key_file = config.parent / SECRET_KEY_FILE
    assert settings_of(config).site.secret_key == ""
    first = feedsvc("--config", str(config), "init", "--no-samples", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"admin secret key: generated {key_file}" in first.stdout
    key = key_file.read_text(encoding="utf-8").strip()
    assert len(key) >= 32 and key not in first.stdout + first.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert settings_of(config).site.secret_key == key
    again = feedsvc("--config", str(config), "init", "--no-samples", cwd=tmp_path)
    assert "admin secret key: set" in again.stdout
    assert key_file.read_text(encoding="utf-8").strip() == key  # never replaced


def test_a_key_in_the_config_wins_and_no_file_is_written(tmp_path: Path) -> None:
    config = write_config(tmp_path, secret_key="c" * 40)
    answer = feedsvc("--config", str(config), "init", "--no-samples", cwd=tmp_path)
    assert answer.returncode == 0, answer.stderr
    assert "admin secret key: set" in answer.stdout
    assert not (tmp_path / SECRET_KEY_FILE).exists()
    (tmp_path / SECRET_KEY_FILE).write_text("f" * 40, encoding="utf-8")
    assert settings_of(config).site.secret_key == "c" * 40


def test_an_empty_or_short_key_is_said_not_replaced(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    key_file = tmp_path / SECRET_KEY_FILE
    key_file.write_text("", encoding="utf-8")
    empty = feedsvc("--config", str(config), "init", "--no-samples", cwd=tmp_path)
    assert f"admin secret key: {key_file} is empty; /admin signs nobody in" in empty.stdout
    key_file.write_text("short\n", encoding="utf-8")
    short = feedsvc("--config", str(config), "init", "--no-samples", cwd=tmp_path)
    assert "admin secret key: shorter than 32 characters" in short.stdout
    assert key_file.read_text(encoding="utf-8") == "short\n"


def test_a_key_file_that_is_not_text_is_one_error_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / SECRET_KEY_FILE).write_bytes(b"\xff\xfe\x00 not a key")
    answer = feedsvc("--config", str(config), "category", "list", cwd=tmp_path)
    assert answer.returncode != 0 and answer.stdout == ""
    lines = answer.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("feedsvc: error: "), answer.stderr
    assert "secret_key" in lines[0] and "Traceback" not in answer.stderr


def test_the_checkout_never_commits_the_key() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert f"data/{SECRET_KEY_FILE}" in ignored
