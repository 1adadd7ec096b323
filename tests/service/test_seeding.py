"""An interrupted first start (issue 15): ``tapas serve`` killed with SIGKILL while it
seeds a new database; the next start seeds until the starter data has committed."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.service.proc_server import ProcServer


def _where_the_kill_landed(home: Path, scratch: Path) -> str:
    """The seeding step the killed start had reached, from its marks on disk: the
    database not yet renamed into place, its ``starter`` mark still ``pending`` (read
    from a copy, so the restart finds the files as the kill left them), or ``done`` (the
    kill came too late to test anything)."""
    from lde import Store

    db = home / "lde.duckdb"
    if not db.exists():
        assert (home / "lde.duckdb.new").exists()
        return "building the new database aside"
    scratch.mkdir()
    for f in home.glob("lde.duckdb*"):
        shutil.copy(f, scratch / f.name)
    with Store(scratch / "lde.duckdb") as store:
        state = store.sql("SELECT value FROM meta WHERE key = 'starter'").column(0).to_pylist()
    return {"pending": "seeding (starter = pending)"}.get(state[0], f"starter = {state[0]}")


@pytest.mark.slow  # two `tapas serve` processes per case, the first killed mid-seeding
@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_seeding_survives_a_kill_during_the_first_start(tmp_path: Path, delay: float) -> None:
    from lde.starter import available

    assert available(), "the starter data ships with the repository (lde/starter)"
    home = tmp_path / "home"
    srv = ProcServer(home, seed=True).start(wait=False)
    t0 = time.monotonic()
    while not any(home.glob("lde.duckdb*")):  # the new database is being built
        assert time.monotonic() - t0 < 120 and srv.proc.poll() is None
        time.sleep(0.005)
    time.sleep(delay)
    srv.kill()
    assert srv.proc.returncode == -signal.SIGKILL  # killed while starting, not exited
    assert _where_the_kill_landed(home, tmp_path / "copy") in (
        "building the new database aside", "seeding (starter = pending)")
    srv = ProcServer(home, seed=True).start()
    try:
        with httpx.Client(base_url=srv.url) as c:
            n = c.get("/v1/experiments", params={"limit": 1}).json()["total"]
            assert n > 0  # the starter data is there, not an empty database forever
    finally:
        srv.stop()
    from lde import Store

    with Store(home / "lde.duckdb", read_only=True) as store:
        assert store.sql("SELECT value FROM meta WHERE key = 'starter'").column(
            0).to_pylist() == ["done"]
        assert len(store.datasets()) > 0
