"""Fixtures of the experiment-runner tests (local and Ray backends)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def small_probe(tapas_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Cheap DCNs for tests (one probe epoch on at most 100 images)."""
    from tapas.core.config import get_settings

    monkeypatch.setenv("TAPAS_PROBE_EPOCHS", "1")
    monkeypatch.setenv("TAPAS_PROBE_MAX_SAMPLES", "100")
    get_settings.cache_clear()
    return tapas_home
