"""``tapas serve`` (the HTTP service) and ``tapas bench service``."""

from __future__ import annotations

from pathlib import Path

import typer

from tapas.cli.common import console, fail, open_pipeline, print_json, progress_bar


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add ``serve`` to ``app`` and ``service`` and ``soak`` to ``bench``."""

    @bench.command("soak")
    def bench_soak(
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
        clients: int = typer.Option(16, min=1, max=256, help="Concurrent clients."),
        seconds: float = typer.Option(60.0, min=1.0, max=3600.0, help="How long they run."),
    ) -> None:
        """Good and hostile clients against a real server on 127.0.0.1: unexpected answers,
        latency, server memory and the database's integrity afterwards."""
        from tapas.bench.soak import run_soak

        with progress_bar(json_out) as bar:
            task = bar.add_task("starting", total=None)

            def progress(phase: str, done: int, total: int) -> None:
                bar.update(task, description=phase, completed=done, total=total)

            try:
                res = run_soak(clients=clients, seconds=seconds, progress=progress)
            except RuntimeError as e:
                fail(str(e))
        if json_out:
            print_json(res)
        else:
            from rich.table import Table

            t = Table(title=f"tapas bench soak ({clients} clients, loopback)")
            for col in ("kind", "requests", "statuses", "p50 ms", "p99 ms"):
                t.add_column(col)
            for kind, v in res["per_kind"].items():
                t.add_row(kind, str(v["requests"]), " ".join(f"{s}:{n}" for s, n in
                                                              v["status"].items()),
                          f"{v['p50_ms']:.1f}", f"{v['p99_ms']:.1f}")
            console.print(t)
            for k in ("requests", "unexpected", "server_errors_5xx", "p50_ms", "p99_ms",
                      "rss_ready_mib", "rss_end_mib", "rss_peak_mib", "db_intact", "db_check"):
                v = res[k]
                console.print(f"{k}: {v:.1f}" if isinstance(v, float) else f"{k}: {v}",
                              highlight=False)
        if res["unexpected"] or not res["db_intact"]:
            raise typer.Exit(1)

    @app.command("serve")
    def serve_cmd(
        host: str = typer.Option(None, help="Address to bind (default TAPAS_HOST, 127.0.0.1). "
                                 "Anything but loopback needs TAPAS_API_TOKEN."),
        port: int = typer.Option(None, min=0, max=65535, help="Port (default TAPAS_PORT, 8000)."),
        db: Path = typer.Option(None, help="LDE database file (default TAPAS_DB_PATH or "
                                "TAPAS_HOME/lde.duckdb); created and seeded on first use."),
        default_predictor: bool = typer.Option(True, help="Load or train the default "
                                               "predictor at startup (ready when done)."),
        log_level: str = typer.Option("info", help="uvicorn log level."),
        torch_threads: int = typer.Option(1, min=1, max=256, help="torch intra-op threads "
                                          "(requests already run in parallel)."),
    ) -> None:
        """Run the HTTP scoring service (FastAPI on uvicorn) until interrupted."""
        from service.security import BindRefused, check_bind
        from tapas.config import get_settings

        settings = get_settings()
        if db is not None:
            settings = settings.model_copy(update={"db_path": db.expanduser()})
        host = host or settings.host
        port = settings.port if port is None else port
        try:
            check_bind(host, settings.api_token is not None)
        except BindRefused as e:
            fail(str(e))
        # fail cleanly (not with a startup traceback) when another process holds the file
        with open_pipeline(settings.database):
            pass
        from service.server import serve

        console.print(f"tapas service on http://{host}:{port} (database {settings.database}; "
                      f"docs at /docs)", highlight=False)
        serve(settings, host, port, log_level=log_level, train_default=default_predictor,
              torch_threads=torch_threads)

    @bench.command("service")
    def bench_service(
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
        requests_1: int = typer.Option(300, min=10, max=100_000,
                                       help="Sequential requests of 1 architecture."),
        requests_1000: int = typer.Option(40, min=5, max=10_000,
                                          help="Sequential requests of 1,000 architectures."),
        clients: int = typer.Option(16, min=1, max=256, help="Concurrent clients."),
        concurrent_requests: int = typer.Option(50, min=1, max=10_000,
                                                help="Requests per concurrent client."),
        db: Path = typer.Option(None, help="Serve this database (default: a fresh temporary "
                                "one seeded with the starter data)."),
    ) -> None:
        """Latency and throughput of /v1/predict against a real server on 127.0.0.1."""
        from tapas.bench.service import run_benchmark

        with progress_bar(json_out) as bar:
            task = bar.add_task("starting", total=None)

            def progress(phase: str, done: int, total: int) -> None:
                bar.update(task, description=phase, completed=done, total=total)

            try:
                res = run_benchmark(requests_1=requests_1, requests_1000=requests_1000,
                                    clients=clients, concurrent_requests=concurrent_requests,
                                    db=db, progress=progress)
            except RuntimeError as e:
                fail(str(e))
        if json_out:
            print_json(res)
            return
        from rich.table import Table

        t = Table(title="tapas bench service (HTTP /v1/predict, loopback)")
        t.add_column("measure")
        t.add_column("value", justify="right")
        t.add_column("target", justify="right")
        targets = {"p50_ms_1": "<= 10", "p50_ms_1000": "<= 500", "errors": "0",
                   "live_max_ms_during_60mb_body": "< 200", "status_60mb_body": "413"}
        for k, v in res.items():
            if isinstance(v, dict):
                continue
            t.add_row(k, f"{v:.2f}" if isinstance(v, float) else str(v), targets.get(k, ""))
        console.print(t)
