"""Run an ASGI app (a sandbox) on 127.0.0.1 in a background thread, optionally over TLS."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BackgroundServer:
    """`with BackgroundServer(app) as server: server.url` — started and ready on enter, stopped on exit."""

    app: Any
    port: int = 0
    certfile: Path | None = None
    keyfile: Path | None = None
    _server: uvicorn.Server | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        scheme = "https" if self.certfile else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> BackgroundServer:
        if not self.port:
            self.port = free_port()
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            ssl_certfile=str(self.certfile) if self.certfile else None,
            ssl_keyfile=str(self.keyfile) if self.keyfile else None,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"sandbox:{self.port}", daemon=True)
        self._thread.start()
        # Readiness poll: uvicorn flips `started` once the socket listens.
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"sandbox server on port {self.port} failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError(f"sandbox server on port {self.port} not ready after {timeout}s")
            self._thread.join(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            # A client holding a keep-alive (TLS) socket would make uvicorn wait it out; a sandbox has nothing to drain.
            self._server.force_exit = True
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
