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
