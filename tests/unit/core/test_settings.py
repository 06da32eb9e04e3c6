"""Settings come from POMBOLT_* environment variables; the data dir is checked before anything uses it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.errors import DataDirUnwritable
from core.settings import Limits, Settings, get_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """No POMBOLT_* variable of the machine leaks in; defaults land in tmp_path."""
    for name in list(os.environ):
        if name.startswith("POMBOLT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_data_dir_defaults_to_xdg_data_home(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.data_dir == (tmp_path / "xdg" / "pombolt").resolve()
    assert settings.db_url == f"sqlite:///{settings.data_dir / 'pombolt.db'}"
    assert settings.storage_dir == settings.data_dir / "storage"


def test_pombolt_data_dir_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POMBOLT_DATA_DIR", str(tmp_path / "elsewhere"))
    settings = Settings()
    assert settings.data_dir == (tmp_path / "elsewhere").resolve()
    assert settings.db_url == f"sqlite:///{(tmp_path / 'elsewhere').resolve() / 'pombolt.db'}"
    assert settings.storage_dir == (tmp_path / "elsewhere").resolve() / "storage"


def test_relative_and_home_data_dirs_become_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("POMBOLT_DATA_DIR", "rel/dir")
    assert Settings().data_dir == (tmp_path / "rel" / "dir").resolve()

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("POMBOLT_DATA_DIR", "~/pb")
    assert Settings().data_dir == (tmp_path / "home" / "pb").resolve()


def test_database_url_overrides_the_sqlite_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POMBOLT_DATABASE_URL", "postgresql+psycopg://pb@db/pombolt")
    assert Settings().db_url == "postgresql+psycopg://pb@db/pombolt"


def test_nested_limits_and_timeouts_come_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().limits.max_files == 500
    monkeypatch.setenv("POMBOLT_LIMIT_MAX_FILES", "7")
    monkeypatch.setenv("POMBOLT_LIMIT_MAX_FILE_BYTES", "1024")
    monkeypatch.setenv("POMBOLT_TIMEOUT_HTTP_ATTEMPTS", "2")
    settings = Settings()
    assert settings.limits.max_files == 7
    assert settings.limits.max_file_bytes == 1024
    assert settings.limits.max_total_bytes == Limits.model_fields["max_total_bytes"].default
    assert settings.timeouts.http_attempts == 2
    assert Limits().max_files == 7


def test_a_malformed_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POMBOLT_LIMIT_MAX_FILES", "lots")
    with pytest.raises(ValidationError, match="max_files"):
        Settings()


def test_get_settings_is_cached_until_cleared(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POMBOLT_DATA_DIR", str(tmp_path / "one"))
    first = get_settings()
    monkeypatch.setenv("POMBOLT_DATA_DIR", str(tmp_path / "two"))
    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().data_dir == (tmp_path / "two").resolve()


def test_ensure_data_dir_creates_the_folder_and_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "a" / "b" / "data"
    monkeypatch.setenv("POMBOLT_DATA_DIR", str(target))
    assert Settings().ensure_data_dir() == target.resolve()
    assert target.is_dir()
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("where", ["under-a-file", "is-a-file"])
def test_ensure_data_dir_on_an_unwritable_place_raises_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    # Tests run as root, where chmod does not stop writes; a regular file in the way does.
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a folder")
    data_dir = blocker / "data" if where == "under-a-file" else blocker
    monkeypatch.setenv("POMBOLT_DATA_DIR", str(data_dir))

    with pytest.raises(DataDirUnwritable) as info:
        Settings().ensure_data_dir()

    err = info.value
    assert err.code == "config.data_dir_unwritable"
    assert err.retryable is False
    assert str(data_dir) in err.message
    assert "POMBOLT_DATA_DIR" in err.message
    assert "\n" not in err.message
    assert isinstance(err.__cause__, OSError)
    assert blocker.read_text() == "not a folder"
