"""One table from domain errors to HTTP answers: the statuses and codes the API has
always answered, whichever layer raised the error."""

from __future__ import annotations

import pytest

from service.errors import to_api_error
from service.jobs import QueueFull
from tapas.core import errors


def _cases() -> list[tuple[BaseException, int, str]]:
    from lde.errors import DatasetConflict
    from predictor.persist import ModelFileError
    from probenet.datasets import DatasetError, DatasetTooLarge
    from tapas.core.types import ArchListError, DcnPendingError, PredictorIdError, TargetError

    return [
        (errors.DatasetNotFound("no dataset 'x'"), 404, "dataset_not_found"),
        (errors.PredictorNotFound("no predictor"), 404, "predictor_not_found"),
        (PredictorIdError("'../x' is not a predictor id"), 404, "predictor_not_found"),
        (errors.JobNotFound("no job"), 404, "job_not_found"),
        (DatasetConflict("d", ["other data"]), 409, "dataset_exists"),
        (DcnPendingError("no DCN yet", "dataset"), 409, "dcn_pending"),
        (errors.NoExperiments("empty"), 409, "no_experiments"),
        (errors.NoPredictor("none", dcn=0.5), 409, "no_predictor"),
        (ModelFileError("checksum"), 409, "unreadable_predictor"),
        (DatasetTooLarge("too many samples"), 413, "dataset_too_large"),
        (DatasetError("no array y"), 422, "invalid_dataset"),
        (ArchListError("bad", "body.archs[1]", []), 422, "invalid_architecture"),
        (TargetError("give one", "dcn", "dcn_or_dataset"), 422, "dcn_or_dataset"),
        (errors.Unscorable("too deep"), 422, "unscorable_architecture"),
        (QueueFull(4, 9), 429, "queue_full"),
    ]


@pytest.mark.parametrize("err, status, code", _cases(), ids=lambda v: str(v)[:30])
def test_the_table_answers_each_meaning(err: BaseException, status: int, code: str) -> None:
    api = to_api_error(err)
    assert api is not None and (api.status, api.code) == (status, code)


def test_http_words_where_the_in_process_ones_would_mislead() -> None:
    api = to_api_error(errors.NoPredictor("train one with tapas predictor train", dcn=0.25))
    assert api is not None and api.path == "body.dcn"
    assert 'POST /v1/predictors {"dcn": 0.2500}' in api.message
    api = to_api_error(QueueFull(4, 9))
    assert api is not None and api.headers == {"Retry-After": "9"}


def test_errors_without_an_http_meaning_are_unexpected() -> None:
    from lde.errors import LockedError

    assert to_api_error(LockedError("/x.duckdb")) is None  # a 500, as before
    assert to_api_error(KeyError("x")) is None
