"""One settings object for the whole project, read from ``TAPAS_*`` variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tapas.core.errors import Invalid


def _default_home() -> Path:
    return Path.home() / ".local" / "share" / "tapas"


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. a container's or
    ``taskset``'s limit), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


#: torch's threads for tapas's small models (ProbeNet, the stacked-LSTM predictor), within
#: the budget. Measured on 2 cores (``tapas bench first-prediction``, load average ~2.5):
#: 1 thread 47.3 s to the first prediction and 52 s of CPU; 2 threads 51.0 s and 88 s of
#: CPU (the second thread mostly waits on the first, spinning).
SMALL_MODEL_THREADS = 1


class Settings(BaseSettings):
    """Defaults work with no configuration; every field maps to ``TAPAS_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="TAPAS_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="Root of local state.")
    db_path: Path | None = Field(None, description="LDE DuckDB file (default: HOME/lde.duckdb).")
    model_dir: Path | None = Field(None, description="Saved predictors (default: HOME/models).")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    probe_max_samples: int = Field(10_000, ge=100, description="Cap on images a probe trains on.")
    probe_epochs: int = Field(8, ge=1)
    probe_max_steps: int = Field(400, ge=0, description="The probe budget: optimizer steps "
                                 "(of 64 images) per probe, so a DCN's cost stops growing "
                                 "with the dataset (~9 s of CPU for 10,000 images of "
                                 "3x32x32 on 2 cores); counted, not timed, so the DCN is "
                                 "the same on any machine. Bites above ~6,500 images; 0: "
                                 "no cap.")
    api_token: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_upload_mb: float = Field(64.0, gt=0)
    max_archs_per_request: int = Field(10_000, ge=1)
    max_body_mb: float = Field(16.0, gt=0, description="Largest JSON request body; a larger "
                               "Content-Length is refused (413) before the body is read. "
                               "Bounds the memory and the time one request takes to parse "
                               "(16 MiB: ~0.7 GB and ~1 s); tapas.app.client batches below it.")
    max_dataset_mb: float = Field(512.0, gt=0, description="Largest dataset once decoded "
                                  "(float32 pixels), checked from the .npy headers of an .npz "
                                  "before anything is decompressed.")
    max_dataset_samples: int = Field(1_000_000, ge=1)
    max_image_values: int = Field(3 * 512 * 512, ge=1, description="Largest C x H x W.")
    max_queued_jobs: int = Field(16, ge=1, description="Jobs waiting for the worker; more is "
                                 "429 with Retry-After.")
    threads: int = Field(0, ge=0, le=4096, description="CPU threads one tapas process uses: "
                         "DuckDB's threads, the experiment runner's default local workers "
                         "(one torch thread each), and the most torch threads a small model "
                         "gets (it gets SMALL_MODEL_THREADS within it). 0: the CPUs this "
                         "process may use.")
    cache_mb: float = Field(512.0, gt=0, description="Memory budget of every cache that "
                            "can grow, one LRU pool (parsed IR networks, NAS-Bench-201 and "
                            "DARTS expansions, networks rebuilt from the LDE, loaded "
                            "predictors, request maps; docs/architecture.md, \"Caches\").")

    @field_validator("api_token", mode="before")
    @classmethod
    def _blank_token_is_none(cls, v: object) -> object:
        """A blank token is no token: it must not pass the non-loopback check."""
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        if isinstance(v, SecretStr) and not v.get_secret_value().strip():
            return None
        return v

    @property
    def cpu_threads(self) -> int:
        """The thread budget: ``threads``, or the CPUs this process may use when 0."""
        return self.threads or available_cpus()

    @property
    def torch_threads(self) -> int:
        """torch's intra-op threads for the small models: :data:`SMALL_MODEL_THREADS`
        within the budget."""
        return min(self.cpu_threads, SMALL_MODEL_THREADS)

    @property
    def database(self) -> Path:
        return self.db_path or self.home / "lde.duckdb"

    @property
    def models(self) -> Path:
        return self.model_dir or self.home / "models"


class SettingsError(Invalid):
    """A ``TAPAS_*`` variable holds a value the settings refuse; the message names it."""


#: Limits of an experiment record's numeric fields (the LDE's column types and sane sizes);
#: ingest and the HTTP schema both enforce them.
MAX_EPOCHS = 1_000_000
SEED_RANGE = (-(2**63), 2**63 - 1)
MAX_CURVE_LEN = 100_000
MAX_HPARAMS_BYTES = 65_536


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests call ``get_settings.cache_clear()`` after env changes).

    A bad value raises :class:`SettingsError` with one line per variable, e.g.
    ``TAPAS_DEVICE='gpu': Input should be 'auto', 'cpu' or 'cuda'``.
    """
    try:
        return Settings()
    except ValidationError as e:
        parts = [f"TAPAS_{'_'.join(str(x) for x in err['loc']).upper()}={err.get('input')!r}: "
                 f"{err['msg']}" for err in e.errors()]
        raise SettingsError("bad setting " + "; ".join(parts)) from None


def thread_budget() -> int:
    """``TAPAS_THREADS`` as a count (:attr:`Settings.cpu_threads`): DuckDB's threads, the
    local process pools' default size. Where the settings are unreadable (the CLI reports
    that before anything runs) the CPUs this process may use."""
    try:
        return get_settings().cpu_threads
    except SettingsError:
        return available_cpus()
