"""Progress where stderr is not a terminal (issue 36): a log, CI or a notebook gets plain
lines (phase, done/total, elapsed, eta) from the CLI's one progress display, instead of a
live bar that prints nothing; the probe's and the predictor's epochs report."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import Progress

from tapas.app.cli.common import PlainProgress, progress_bar

ROOT = Path(__file__).resolve().parents[4]


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=terminal, width=80), buf


def test_the_one_display_goes_plain_off_a_terminal() -> None:
    con, _ = _console(True)
    bar = progress_bar(console=con)
    assert type(bar) is Progress and not bar.disable
    con, _ = _console(False)
    assert isinstance(progress_bar(console=con), PlainProgress)
    assert progress_bar(True, console=con).disable  # stdout carries data: nothing at all


def test_plain_lines_at_phase_changes_and_the_end() -> None:
    con, buf = _console(False)
    with progress_bar(console=con, every=3600) as bar:  # no periodic line in this test
        task = bar.add_task("loading", total=None)
        bar.update(task, description="training the predictor (epochs)", completed=0,
                   total=40)
        bar.update(task, completed=12)  # same phase, within the interval: no line
        bar.console.print("a log line", markup=False)
        bar.update(task, completed=40)
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("loading, 0:00 elapsed")
    assert re.fullmatch(r"training the predictor \(epochs\): 0/40 \(0%\), \d+:\d\d elapsed, "
                        r"eta \S+", lines[1])
    assert lines[2] == "a log line"
    assert re.fullmatch(r"training the predictor \(epochs\): 40/40 \(100%\), \d+:\d\d "
                        r"elapsed", lines[3])
    assert len(lines) == 4


def test_every_update_reports_when_the_interval_is_zero() -> None:
    con, buf = _console(False)
    with progress_bar(console=con, every=0, info=True) as bar:
        task = bar.add_task("experiments", total=3, info="")
        for i in range(1, 4):
            bar.update(task, completed=i, info=f"last acc 0.{i}")
    lines = buf.getvalue().splitlines()
    assert [ln.split(",")[0] for ln in lines] == [
        "experiments: 0/3 (0%)", "experiments: 1/3 (33%) last acc 0.1",
        "experiments: 2/3 (67%) last acc 0.2", "experiments: 3/3 (100%) last acc 0.3"]


def _tapas(home: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI in its own process with stderr a pipe (as in a log or CI)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPAS_")}
    env.update({"TAPAS_HOME": str(home), "TAPAS_DEVICE": "cpu",
                "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    return subprocess.run([sys.executable, "-c", "from tapas.app.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=600)


def test_probe_and_training_epochs_reach_a_log(tmp_path: Path) -> None:
    from tests.tapas.app.cli.test_predictor import _table

    r = _tapas(tmp_path / "home", "dcn", "digits?per_class=20", "--no-store", "--epochs", "1",
               "--max-samples", "100")
    assert r.returncode == 0, r.stderr
    assert re.search(r"\(probe epochs, all folds\): (\d+)/\1 \(100%\)", r.stderr), r.stderr
    _table(tmp_path / "t.csv")
    r = _tapas(tmp_path / "home", "train", str(tmp_path / "t.csv"), "--out",
               str(tmp_path / "m.tap"), "--epochs", "2", "--members", "2")
    assert r.returncode == 0, r.stderr
    assert re.search(r"\(epochs\): (\d+)/\1 \(100%\)", r.stderr), r.stderr


@pytest.mark.slow
def test_the_main_job_reports_each_step_to_a_log(tmp_path: Path) -> None:
    """The README's main job, small: a fresh home (seeded), a dataset characterised, its
    predictor found (shipped) and a search, each step on stderr as lines."""
    r = _tapas(tmp_path / "home", "search", "--dataset", "digits?per_class=20", "--space",
               "chain", "--budget", "20")
    assert r.returncode == 0, r.stderr
    err = r.stderr
    assert "creating the experiment database" in err
    assert re.search(r"\(ProbeNet epochs\): (\d+)/\1 \(100%\)", err), err
    # a fresh home's selection for this DCN is shipped: a lookup, said as such (the
    # training's epochs reach a log in test_probe_and_training_epochs_reach_a_log)
    assert re.search(r"predictor p_[0-9a-f]{16}: shipped with tapas .*nothing trained", err), err
    assert re.search(r"rea: best \S+: 20/20 \(100%\)", err), err
