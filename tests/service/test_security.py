"""Binding rules and the bearer token, without a running server."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.security import BindRefused, check_bind, is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, token_set=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org", ""])
def test_non_loopback_needs_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(BindRefused, match="TAPAS_API_TOKEN"):
        check_bind(host, token_set=False)
    check_bind(host, token_set=True)


def test_background_server_refuses_0000_without_token(tapas_home: Path) -> None:
    from service import create_app
    from service.server import BackgroundServer

    with pytest.raises(BindRefused):
        BackgroundServer(create_app(train_default=False), host="0.0.0.0")


@pytest.mark.parametrize("token", [None, "", "   "])
def test_tapas_serve_refuses_0000_without_token(tapas_home: Path, token: str | None,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """No token, and an empty or blank one (issue 15: it passed the check), are refused."""
    from tapas.app.cli.main import app
    from tapas.core.config import get_settings

    if token is None:
        monkeypatch.delenv("TAPAS_API_TOKEN", raising=False)
    else:
        monkeypatch.setenv("TAPAS_API_TOKEN", token)
    get_settings.cache_clear()
    res = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert res.exit_code == 1
    assert "refusing to listen on '0.0.0.0' without an API token" in res.output
    assert not (tapas_home / "lde.duckdb").exists()  # refused before touching the database


def test_tapas_serve_reports_a_locked_database(tapas_home: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A second writer process is refused with DuckDB's lock explained, not a traceback."""
    import subprocess
    import sys

    from tapas.app.cli.main import app

    db = tapas_home / "held.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('ok', flush=True); time.sleep(60)", str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        res = CliRunner().invoke(app, ["serve", "--db", str(db), "--port", "0"])
    finally:
        holder.kill()
        holder.wait()
    assert res.exit_code == 1
    assert "locked" in res.output and "Traceback" not in res.output
