"""The domain errors: each package's error is one of the meanings in ``tapas.core.errors``
(so one ``except`` covers every layer), and an answer's code comes back as its class."""

from __future__ import annotations

import pytest

from tapas.core import errors
from tapas.core.errors import TapasError, error_class


def test_each_package_error_is_a_domain_meaning_and_keeps_its_old_bases() -> None:
    from lde.errors import DatasetConflict, LDEError, LockedError
    from predictor.persist import ModelFileError
    from probenet.datasets import DatasetError, DatasetTooLarge
    from service.jobs import JobCancelled, QueueFull
    from tapas.core.arch import ArchError
    from tapas.core.types import NoPredictorError, PredictorIdError, TargetError

    cases = [
        (DatasetConflict("d", ["other data"]), errors.DatasetExists, LDEError),
        (LockedError("/x.duckdb"), errors.Busy, LDEError),
        (ModelFileError("corrupt"), errors.UnreadablePredictor, ValueError),
        (DatasetError("bad"), errors.InvalidDataset, ValueError),
        (DatasetTooLarge("big"), errors.DatasetTooLarge, ValueError),
        (ArchError("bad kernel", 2, "kernel"), errors.InvalidArchitecture, ValueError),
        (TargetError("bad dcn", "dcn"), errors.Invalid, ValueError),
        (PredictorIdError("../x"), errors.PredictorNotFound, ValueError),
        (NoPredictorError("none yet", dcn=0.4), errors.NoPredictor, LookupError),
        (QueueFull(3, 7), errors.QueueFull, errors.Busy),
        (JobCancelled("stop"), errors.Cancelled, TapasError),
    ]
    for err, meaning, old in cases:
        assert isinstance(err, meaning) and isinstance(err, old), type(err)
    assert NoPredictorError is errors.NoPredictor  # the former name, the same class


def test_in_process_text_is_the_message_alone() -> None:
    from tapas.core.arch import ArchError

    assert str(errors.DatasetNotFound("no dataset 'x'", path="body.dataset")) == \
        "no dataset 'x'"
    e = ArchError("must be odd", 3, "kernel")
    assert str(e) == "layer 3: field 'kernel': must be odd" and e.path == "layers[3].kernel"
    assert e.code == "invalid_architecture"


@pytest.mark.parametrize("code, cls", [
    ("predictor_not_found", errors.PredictorNotFound),
    ("dataset_not_found", errors.DatasetNotFound),
    ("no_predictor", errors.NoPredictor),
    ("dataset_exists", errors.DatasetExists),
    ("dcn_pending", errors.DcnPending),
    ("no_experiments", errors.NoExperiments),
    ("invalid_architecture", errors.InvalidArchitecture),
    ("queue_full", errors.QueueFull),
    ("not_ready", TapasError),  # HTTP only: no domain meaning
])
def test_an_answer_comes_back_as_the_class_its_code_names(code: str, cls: type) -> None:
    e = TapasError.from_service("m", status=404, code=code, path="body.x")
    assert type(e) is cls and error_class(code) is cls
    assert (e.status, e.code, e.path) == (404, code, "body.x")
    assert str(e) == f"404 {code}: m (at body.x)"
