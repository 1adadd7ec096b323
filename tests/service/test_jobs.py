"""The in-process job runner: states, progress, failures, shutdown."""

from __future__ import annotations

import threading

from service.jobs import JobContext, JobRunner


def test_job_succeeds_with_progress() -> None:
    runner = JobRunner()
    seen: list[float] = []

    def work(ctx: JobContext) -> dict:
        for i in range(4):
            ctx.progress(i, 4)
            seen.append(ctx.job.progress)
        return {"answer": 42}

    job = runner.submit("test", "counting", work)
    assert job.done.wait(10)
    assert job.state == "succeeded" and job.result == {"answer": 42} and job.progress == 1.0
    assert seen == [0.0, 0.25, 0.5, 0.75]
    assert runner.get(job.id) is job and runner.list()[0] is job
    runner.shutdown()


def test_failure_is_reported_not_raised() -> None:
    runner = JobRunner(error_mapper=lambda e: {"code": "boom", "message": str(e), "path": None})

    def work(ctx: JobContext) -> dict:
        raise ValueError("bad input")

    job = runner.submit("test", "failing", work)
    assert job.done.wait(10)
    assert job.state == "failed" and job.error == {"code": "boom", "message": "bad input",
                                                   "path": None}
    d = job.to_dict()
    assert d["state"] == "failed" and d["finished"] is not None
    runner.shutdown()


def test_shutdown_cancels_queued_and_stops_running() -> None:
    runner = JobRunner(workers=1)
    started = threading.Event()

    def slow(ctx: JobContext) -> dict:
        started.set()
        for i in range(10_000):
            ctx.progress(i, 10_000)
            threading.Event().wait(0.01)
        return {}

    running = runner.submit("test", "slow", slow)
    queued = runner.submit("test", "never starts", slow)
    assert started.wait(10)
    runner.shutdown(wait=10)
    assert running.state == "cancelled" and queued.state == "cancelled"


def test_training_cancelled_during_selection_ends_cancelled(tmp_path) -> None:  # noqa: ANN001
    """Issue 38: a DELETE that arrives while a predictor job selects its experiments stops
    it before any epoch (the selection phase reports through the pipeline's checkpoints);
    nothing is registered."""
    from lde import Store
    from service.state import ServiceState
    from tapas.core.config import Settings
    from tests.tapas.app.test_pipeline import SMALL, _dataset

    home = tmp_path / "home"
    home.mkdir()
    with Store(home / "lde.duckdb") as store:
        _dataset(store, "a", 0.50, 0.1)
        _dataset(store, "b", 0.55, 0.2)
    state = ServiceState(Settings(home=home), train_default=False, predictor_params=SMALL,
                         min_experiments=10, torch_threads=None)
    state.open()
    try:
        messages: list[str] = []

        class DeleteInSelection(JobContext):
            """Requests the cancel (as DELETE /v1/jobs/{id} does) the moment the
            pipeline reports that it is selecting experiments."""

            def progress(self, done: float, total: float | None = None,
                         message: str | None = None) -> None:
                messages.append(message or "")
                if message == "training the predictor: selecting experiments":
                    state.jobs.cancel(self.job.id)
                super().progress(done, total, message)

        def work(ctx: JobContext) -> dict:
            return {"predictor": state.ensure_predictor(
                0.52, False, DeleteInSelection(ctx.job, ctx.cancelled))}

        job = state.jobs.submit("predictor", "predictor for DCN 0.52", work)
        assert job.done.wait(300)
        assert job.state == "cancelled", (job.state, job.message, messages)
        assert not any("epoch" in m for m in messages), messages
        assert state.pipeline.predictors() == []
    finally:
        state.close()


def test_a_lost_job_keeps_its_last_progress(tmp_path) -> None:  # noqa: ANN001
    """Issue 38: a job a killed server never finished is `lost` at the progress it had
    reported (the journal records progress, not only state changes), not 0.0."""
    journal = tmp_path / "jobs"
    first = JobRunner(journal=journal)
    reported, release = threading.Event(), threading.Event()

    def work(ctx: JobContext) -> dict:
        ctx.progress(0.6, message="training the predictor: epoch 6/10")
        reported.set()
        release.wait(60)
        return {}

    job = first.submit("predictor", "long training", work)
    assert reported.wait(30)
    # the server dies here (kill -9): nothing more is written; a new one reads the journal
    second = JobRunner(journal=journal)
    try:
        lost = second.get(job.id)
        assert lost is not None and lost.state == "lost"
        assert lost.progress == 0.6
        assert lost.to_dict()["progress"] == 0.6
    finally:
        release.set()
        second.shutdown()
        first.shutdown(wait=10)
