"""The errors every layer raises, by meaning: the ground floor of ``tapas``.

Each class says what went wrong in words a caller can branch on (``NotFound``,
``Conflict``, ``Invalid``, ``NoPredictor``, ``Busy``, ``Cancelled``) and carries the
machine-readable ``code`` the HTTP API answers with. Packages subclass these with their
own details (``lde.DatasetConflict`` is a :class:`DatasetExists`, ``tapas.core.arch.ArchError``
an :class:`Invalid`), the service maps them to HTTP statuses in one table
(``service.errors.HTTP_STATUS``), the client turns an answer's ``code`` back into the same
class (:func:`error_class`) and the CLI turns them into one-line exits.

This module imports nothing of the project, so every package (and the torch-free
client) may raise and catch these.
"""

from __future__ import annotations

from typing import Any


class TapasError(Exception):
    """Base of every tapas error: ``message`` says what is wrong and how to go on.

    ``code`` is the machine-readable kind (the class's, unless given); ``path`` the
    offending field (e.g. ``body.archs[3].layers[2].kernel``) when known; ``status`` the
    HTTP status when the error came back from the service (None in-process);
    ``details`` more located errors, when there are several.
    """

    code: str | None = None
    path: str | None = None
    status: int | None = None
    details: list[dict[str, Any]] | None = None
    #: Set on errors the HTTP client raises: ``str()`` then leads with status and code.
    remote: bool = False

    def __init__(self, message: str = "", *, status: int | None = None, code: str | None = None,
                 path: str | None = None, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # only what is given: subclasses may define ``path`` or ``code`` as properties
        for name, value in (("status", status), ("code", code), ("path", path),
                            ("details", details)):
            if value is not None:
                setattr(self, name, value)
        #: For :meth:`tapas.app.client.Client.ingest`: the input index of the first record of
        #: the batch that failed (the batches before it are committed).
        self.batch_start: int | None = None

    def __str__(self) -> str:
        if not (self.remote or self.status is not None):
            return super().__str__()
        head = f"{self.status} {self.code}: " if self.status else (
            f"{self.code}: " if self.code else "")
        where = f" (at {self.path})" if self.path and self.path not in self.message else ""
        return f"{head}{self.message}{where}"

    @classmethod
    def from_service(cls, message: str, *, status: int | None, code: str | None,
                     path: str | None = None,
                     details: list[dict[str, Any]] | None = None) -> TapasError:
        """An error about the service's answer (``code``, ``status``, ``path``), as an
        instance of the class that ``code`` names (this class when none does); its text
        leads with status and code."""
        err = error_class(code, cls)(message, status=status, code=code, path=path,
                                     details=details)
        err.remote = True
        return err


class NotFound(TapasError, LookupError):
    """Nothing is stored under the id or name asked for."""

    code = "not_found"


class DatasetNotFound(NotFound):
    """No stored dataset has this id or name."""

    code = "dataset_not_found"


class PredictorNotFound(NotFound):
    """No registered predictor has this id (or its model file is gone)."""

    code = "predictor_not_found"


class JobNotFound(NotFound):
    """No job has this id."""

    code = "job_not_found"


class Conflict(TapasError):
    """The request contradicts what is stored, or what is stored is not ready for it."""

    code = "conflict"


class DatasetExists(Conflict):
    """A dataset name already stands for other content."""

    code = "dataset_exists"


class DcnPending(Conflict):
    """The dataset is stored but its DCN is not computed yet."""

    code = "dcn_pending"


class NoExperiments(Conflict, LookupError):
    """The database holds no experiments a predictor could train on."""

    code = "no_experiments"


class UnreadablePredictor(Conflict):
    """A registered predictor's model file cannot be used (corrupt, tampered, too new)."""

    code = "unreadable_predictor"


class NoPredictor(TapasError, LookupError):
    """No trained predictor answers the request yet (none covers the DCN ``dcn``, or none
    is trained); the message says how to get one."""

    code = "no_predictor"

    def __init__(self, message: str = "", dcn: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.dcn = dcn


class Invalid(TapasError, ValueError):
    """Input that cannot be used: the message (and ``path``) name what is wrong."""

    code = "invalid_request"


class InvalidArchitecture(Invalid):
    """An architecture that cannot be built."""

    code = "invalid_architecture"


class InvalidDataset(Invalid):
    """Data that cannot be used as a dataset."""

    code = "invalid_dataset"


class DatasetTooLarge(InvalidDataset):
    """Data beyond the configured limits (decoded size, sample count, image size)."""

    code = "dataset_too_large"


class Unscorable(Invalid):
    """A valid architecture the predictor's encoding cannot represent."""

    code = "unscorable_architecture"


class Busy(TapasError):
    """A resource is held by someone else (a locked database, a full job queue); retry
    later."""

    code = "busy"


class QueueFull(Busy):
    """The job queue is full; ``retry_after`` is a guess in seconds."""

    code = "queue_full"

    def __init__(self, message: str = "", retry_after: int = 1, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class Cancelled(TapasError):
    """Work stopped because it was cancelled."""

    code = "cancelled"


def error_class(code: str | None, default: type[TapasError] = TapasError) -> type[TapasError]:
    """The class of this module whose ``code`` is ``code`` (``default`` when none is)."""
    return _BY_CODE.get(code or "", default)


_BY_CODE: dict[str, type[TapasError]] = {
    c.code: c for c in (NotFound, DatasetNotFound, PredictorNotFound, JobNotFound, Conflict,
                        DatasetExists, DcnPending, NoExperiments, UnreadablePredictor,
                        NoPredictor, Invalid, InvalidArchitecture, InvalidDataset,
                        DatasetTooLarge, Unscorable, Busy, QueueFull, Cancelled)
    if c.code is not None}

__all__ = ["Busy", "Cancelled", "Conflict", "DatasetExists", "DatasetNotFound",
           "DatasetTooLarge", "DcnPending", "Invalid", "InvalidArchitecture", "InvalidDataset",
           "JobNotFound", "NoExperiments", "NoPredictor", "NotFound", "PredictorNotFound",
           "QueueFull", "TapasError", "Unscorable", "UnreadablePredictor", "error_class"]
