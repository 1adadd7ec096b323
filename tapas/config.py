"""One settings object for the whole project, read from ``TAPAS_*`` variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".local" / "share" / "tapas"


class Settings(BaseSettings):
    """Defaults work with no configuration; every field maps to ``TAPAS_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="TAPAS_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="Root of local state.")
    db_path: Path | None = Field(None, description="LDE DuckDB file (default: HOME/lde.duckdb).")
    model_dir: Path | None = Field(None, description="Saved predictors (default: HOME/models).")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    probe_max_samples: int = Field(10_000, ge=100, description="Cap on images a probe trains on.")
    probe_epochs: int = Field(8, ge=1)
    api_token: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_upload_mb: float = Field(64.0, gt=0)
    max_archs_per_request: int = Field(10_000, ge=1)

    @property
    def database(self) -> Path:
        return self.db_path or self.home / "lde.duckdb"

    @property
    def models(self) -> Path:
        return self.model_dir or self.home / "models"


class SettingsError(ValueError):
    """A ``TAPAS_*`` variable holds a value the settings refuse; the message names it."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests call ``get_settings.cache_clear()`` after env changes).

    A bad value raises :class:`SettingsError` with one line per variable, e.g.
    ``TAPAS_DEVICE='gpu': Input should be 'auto', 'cpu' or 'cuda'``.
    """
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as e:
        parts = [f"TAPAS_{'_'.join(str(x) for x in err['loc']).upper()}={err.get('input')!r}: "
                 f"{err['msg']}" for err in e.errors()]
        raise SettingsError("bad setting " + "; ".join(parts)) from None
