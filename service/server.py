"""Running the app under uvicorn: in the foreground (``tapas serve``) or on a background
thread bound to a free loopback port (tests and ``tapas bench service``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn

from service.app import create_app
from service.security import check_bind
from tapas.core.config import Settings


def serve(settings: Settings, host: str | None = None, port: int | None = None,
          log_level: str = "info", **app_kwargs: Any) -> None:
    """Serve until interrupted. Refuses a non-loopback ``host`` without an API token."""
    host = host or settings.host
    port = settings.port if port is None else port
    check_bind(host, settings.api_token is not None)
    uvicorn.run(create_app(settings, **app_kwargs), host=host, port=port, log_level=log_level,
                access_log=False)


class BackgroundServer:
    """A real uvicorn server on ``host:port`` (port 0: a free one) in a daemon thread.

    ``with BackgroundServer(app) as srv: httpx.get(srv.url + "/health/live")``.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0,
                 log_level: str = "warning", token_set: bool = False) -> None:
        check_bind(host, token_set)
        self.host = host
        config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="tapas-uvicorn",
                                        daemon=True)
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server exited during startup (see the log above)")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the server did not start within {timeout:g} s")
            time.sleep(0.01)
        sock = self.server.servers[0].sockets[0]
        self.port = int(sock.getsockname()[1])
        return self

    def stop(self, timeout: float = 60.0) -> None:
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
