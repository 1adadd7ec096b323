"""The Ray backend on a real local Ray instance (2 CPUs): the same answers as the local
backend, a worker killed mid-job retried with each job written once, and a driver
killed mid-run whose re-run completes the plan without duplicates. Skipped when the
``ray`` extra is not installed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from tapas.app.experiments import Job, ensure_datasets, run_jobs  # noqa: E402
from tapas.app.experiments.plan import STARTER_RECIPE  # noqa: E402
from tapas.core import spaces  # noqa: E402

SMALL = "digits?per_class=20"  # 200 images, 8x8
RECIPE = {**STARTER_RECIPE, "epochs": 1}
REPO = Path(__file__).resolve().parents[4]


def _jobs(n: int) -> list[Job]:
    return [Job(genotype=g, dataset=SMALL, recipe=RECIPE, source="test-ray")
            for g in spaces.sample_unique("chain", n, 5)]


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """One local Ray instance for the module: 2 CPUs, no dashboard, a small object store."""
    import logging

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2,
             log_to_driver=False, logging_level=logging.WARNING)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()



def _rows(db: Path) -> list[tuple[str, float, list[float]]]:
    from lde import Store

    with Store(db) as store:
        t = store.sql("SELECT json_extract_string(hparams, '$.job_key') k, accuracy, curve "
                      "FROM experiments ORDER BY k")
    return list(zip(t.column("k").to_pylist(), t.column("accuracy").to_pylist(),
                    t.column("curve").to_pylist(), strict=True))


@pytest.mark.slow  # a local Ray instance (processes of its own)
def test_ray_backend_gives_the_local_answers(ray_address: str, small_probe: Path) -> None:
    """The CLI on both backends: same DCN, same jobs, same accuracies and curves."""
    from typer.testing import CliRunner

    from lde import Store
    from tapas.app.cli.main import app

    common = ["experiments", "run", "-d", SMALL, "-s", "chain:3", "-k", "1", "--epochs", "1",
              "--json"]
    runner = CliRunner()
    outs = {}
    for backend, workers in (("local", "0"), ("ray", "2")):
        r = runner.invoke(app, [*common, "-w", workers, "--backend", backend,
                                "--db", str(small_probe / f"{backend}.duckdb")])
        assert r.exit_code == 0, r.output
        outs[backend] = json.loads(r.output.strip().splitlines()[-1])
        assert outs[backend]["trained"] == 3 and outs[backend]["backend"] == backend
    local, remote = _rows(small_probe / "local.duckdb"), _rows(small_probe / "ray.duckdb")
    assert len(local) == 3 and local == remote
    dcns = []
    for backend in ("local", "ray"):
        with Store(small_probe / f"{backend}.duckdb") as store:
            dcns.append(store.sql("SELECT dcn FROM datasets").column("dcn").to_pylist())
    assert dcns[0] == dcns[1] and dcns[0][0] is not None
    again = runner.invoke(app, [*common, "-w", "2", "--backend", "ray",
                                "--db", str(small_probe / "ray.duckdb")])
    assert json.loads(again.output.strip().splitlines()[-1])["already_done"] == 3


@pytest.mark.slow  # a local Ray instance (processes of its own)
def test_a_failing_job_fails_alone_with_its_own_error(ray_address: str,
                                                      tmp_path: Path) -> None:
    from lde import Store

    # NAS-Bench-201 needs square inputs
    bad = Job(genotype=spaces.sample_unique("nb201-small", 1, 0)[0],
              dataset="mnist1d?per_class=20", recipe=RECIPE, source="test-ray")
    good = _jobs(1)[0]
    with Store(tmp_path / "fail.duckdb") as store:
        ensure_datasets(store, [bad.dataset, good.dataset], dcn=False, source="test-ray")
        rep = run_jobs([bad, good], store, backend="ray")
    assert (rep.trained, rep.written) == (1, 1)
    assert [k for k, _ in rep.failed] == [bad.key]
    assert "square inputs" in rep.failed[0][1] and "Traceback" not in rep.failed[0][1]


@pytest.mark.slow  # a local Ray instance (processes of its own)
def test_cuda_jobs_on_a_cluster_without_gpus_fail_at_once(ray_address: str,
                                                         small_probe: Path) -> None:
    from typer.testing import CliRunner

    from tapas.app.cli.main import app

    r = CliRunner().invoke(app, ["experiments", "run", "-d", SMALL, "-s", "chain:1", "-k", "1",
                                 "--backend", "ray", "--device", "cuda",
                                 "--db", str(small_probe / "gpu.duckdb")])
    assert r.exit_code == 1 and "no GPU" in r.output and "Traceback" not in r.output


def test_unreachable_cluster_is_one_clear_error(tmp_path: Path) -> None:
    """Ray would wait minutes for a head node that is not there; the CLI says so now."""
    r = subprocess.run([sys.executable, "-m", "tapas.app.cli.main", "experiments", "run",
                        "-d", SMALL, "-s", "chain:1", "-k", "1", "--backend", "ray", "--address",
                        "127.0.0.1:1", "--db", str(tmp_path / "x.duckdb")],
                       capture_output=True, text=True, timeout=120, cwd=REPO,
                       env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 1
    assert "cannot start or reach the Ray cluster at '127.0.0.1:1'" in r.stderr
    assert "Traceback" not in r.stderr


def _descendant(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


def _task_workers(name: str) -> list[int]:
    """PIDs of this test's Ray workers executing a task called ``name`` (``ray::name``)."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            title = (p / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if title.strip() == f"ray::{name}" and _descendant(int(p.name), os.getpid()):
            out.append(int(p.name))
    return out


@pytest.mark.slow
def test_worker_killed_mid_job_is_retried_and_written_once(ray_address: str,
                                                           tmp_path: Path) -> None:
    from lde import Store

    jobs = _jobs(4)
    killed: list[int] = []
    stop = threading.Event()

    def killer() -> None:  # SIGKILL the first worker seen running a job
        while not stop.is_set() and not killed:
            for pid in _task_workers("run_job"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.02)

    th = threading.Thread(target=killer, daemon=True)
    with Store(tmp_path / "kill.duckdb") as store:
        ensure_datasets(store, [SMALL], dcn=False, source="test-ray")
        th.start()
        try:
            rep = run_jobs(jobs, store, backend="ray", batch_size=2)
        finally:
            stop.set()
            th.join()
        assert killed, "no worker was seen running a job"
        assert (rep.trained, rep.written, rep.failed, rep.duplicates) == (4, 4, [], 0)
    rows = _rows(tmp_path / "kill.duckdb")
    assert sorted(k for k, _, _ in rows) == sorted(j.key for j in jobs)


DRIVER = textwrap.dedent("""
    import sys
    from lde import Store
    from tapas.core import spaces
    from tapas.app.experiments import Job, run_jobs
    from tapas.app.experiments.plan import STARTER_RECIPE

    recipe = {**STARTER_RECIPE, "epochs": 1}
    jobs = [Job(genotype=g, dataset=sys.argv[3], recipe=recipe, source="test-ray")
            for g in spaces.sample_unique("chain", int(sys.argv[4]), 5)]
    with Store(sys.argv[2]) as store:
        run_jobs(jobs, store, backend="ray", address=sys.argv[1], batch_size=1,
                 callback=lambda done, total, r: print("done", done, flush=True))
""")


@pytest.mark.slow
def test_killed_driver_rerun_completes_without_duplicates(ray_address: str,
                                                          tmp_path: Path) -> None:
    """SIGKILL the driver once two results are written; the re-run trains the rest."""
    from lde import Store

    n = 6
    db = tmp_path / "driver.duckdb"
    with Store(db) as store:
        ensure_datasets(store, [SMALL], dcn=False, source="test-ray")
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(script), ray_address, str(db), SMALL, str(n)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # batch_size=1: "done 2" is printed after 2 writes
            if line.split() == ["done", "2"]:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(60)
    assert proc.returncode == -signal.SIGKILL
    written = len(_rows(db))
    assert 2 <= written <= n
    jobs = _jobs(n)
    with Store(db) as store:
        rep = run_jobs(jobs, store, backend="ray")
    assert (rep.already_done, rep.trained, rep.failed) == (written, n - written, [])
    rows = _rows(db)
    assert sorted(k for k, _, _ in rows) == sorted(j.key for j in jobs)
