"""Model files: where a registered predictor's file lies and how one is read.

The registry stores each model file's name relative to the model directory
(:func:`model_path`), so a database and its model folder move together. A model file
name is a name, never a path. A file is verified whole before it is used and never
unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import predictor as tap
from predictor.persist import ModelFileError, read_header
from tapas.core.types import PredictorInfo, is_model_file_name

if TYPE_CHECKING:  # its import loads scikit-learn (1.5 s); a load imports it
    from predictor import TAPRegressor


def load_predictor(path: str | Path) -> TAPRegressor:
    """A saved predictor (verified; never unpickled)."""
    return tap.load(path)


def verify_predictor(path: str | Path) -> None:
    """Raise ``ModelFileError`` (or ``OSError``) unless the file passes its checksum."""
    read_header(path)


def model_path(artifact: str, model_dir: str | Path) -> Path:
    """Where a registered predictor's file lies. New registrations store the file name
    relative to the model directory, so a database and its model folder move together
    (another machine, an export); absolute paths of older databases are read as they are
    (never deleted). A relative name that is not a plain file name (``../x``, ``a/b``)
    would reach outside the model directory: ``ModelFileError``."""
    p = Path(artifact)
    if p.is_absolute():
        return p
    if not is_model_file_name(artifact):
        raise ModelFileError(f"the registry names model file {str(artifact)[:80]!r}, which is "
                             "not a plain file name in the model directory; refusing it")
    return Path(model_dir) / p


def is_shipped(info: PredictorInfo) -> bool:
    """Whether a registry entry is a predictor shipped with tapas (registered when the
    database was seeded, :func:`~tapas.app.pipeline.identity.register_shipped`)."""
    return (info.provenance or {}).get("origin") == "shipped"
