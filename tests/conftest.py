"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip cleanly where it is absent."""
    if not (SHARED_DATA / "nb201.csv").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture()
def tapas_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An isolated TAPAS_HOME so tests never touch the user's database or models."""
    from tapas.config import get_settings

    monkeypatch.setenv("TAPAS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TAPAS_DB_PATH", raising=False)
    monkeypatch.delenv("TAPAS_MODEL_DIR", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()
