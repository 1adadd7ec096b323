"""``tapas serve`` (the HTTP service) and ``tapas bench service``."""

from __future__ import annotations

from pathlib import Path

import typer

from tapas.app.cli.common import (
    console,
    fail,
    open_pipeline,
    phase_progress,
    print_json,
    print_metrics,
)
from tapas.core.lazy import LazyImport

# fastapi, uvicorn, pydantic: loaded when a command runs
security = LazyImport("service.security")
server = LazyImport("service.server")
config = LazyImport("tapas.core.config")
service_bench = LazyImport("tapas.app.bench.service")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add ``serve`` to ``app`` and ``service`` to ``bench``."""

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
        settings = config.get_settings()
        if db is not None:
            settings = settings.model_copy(update={"db_path": db.expanduser()})
        host = host or settings.host
        port = settings.port if port is None else port
        try:
            security.check_bind(host, settings.api_token is not None)
        except security.BindRefused as e:
            fail(str(e))
        # fail cleanly (not with a startup traceback) when another process holds the file
        with open_pipeline(settings.database):
            pass
        console.print(f"tapas service on http://{host}:{port} (database {settings.database}; "
                      f"docs at /docs)", highlight=False)
        server.serve(settings, host, port, log_level=log_level, train_default=default_predictor,
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
        with phase_progress(json_out) as progress:
            try:
                res = service_bench.run_benchmark(
                    requests_1=requests_1, requests_1000=requests_1000, clients=clients,
                    concurrent_requests=concurrent_requests, db=db, progress=progress)
            except RuntimeError as e:
                fail(str(e))
        if json_out:
            print_json(res)
            return
        print_metrics("tapas bench service (HTTP /v1/predict, loopback)", res,
                      {"p50_ms_1": "<= 10", "p50_ms_1000": "<= 500", "errors": "0",
                       "live_max_ms_during_60mb_body": "< 200", "status_60mb_body": "413"},
                      fmt=".2f", name="measure")
