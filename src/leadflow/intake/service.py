"""Starting the intake service for `leadflow intake serve`: config, secrets, state store and socket are checked up
front, each failure a one-line `LeadflowError` (a bad config names its YAML path; a missing secret where it should
come from; a busy port the address), then uvicorn serves the app on the bound socket until SIGINT/SIGTERM, with the
inbox's micro-batch processor (`leadflow.intake.processor`) in a background thread unless accept-only."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

from leadflow.intake.app import build_app
from leadflow.intake.config import IntakeConfig, Processing, default_config_path, load_intake_config, resolve_secrets
from leadflow.intake.processor import Handler, Processor
from leadflow.pipeline.errors import ConfigError, LeadflowError

log = logging.getLogger("leadflow.intake")


def find_config(path: Path | None) -> Path:
    """`path`, or `intake.yaml` in the current folder."""
    if path is not None:
        return path
    default = default_config_path()
    if not default.is_file():
        raise ConfigError(str(default), "no intake config: pass --config PATH (a YAML file with an `intake:` "
                          "section) or create intake.yaml here")
    return default


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port; a busy port or an address this host lacks is a one-line error."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise LeadflowError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        # a restart may bind while the last run's connections linger in TIME_WAIT; a live listener still refuses
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        why = "the port is in use (another intake service?)" if exc.errno == 98 else exc.strerror
        raise LeadflowError(f"cannot listen on {host}:{port}: {why}") from None
    sock.set_inheritable(True)
    return sock


def check_tls(config: IntakeConfig) -> None:
    if config.tls is None:
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(config.tls.certfile, config.tls.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(config.origin, f"cannot load the TLS certificate and key ({type(exc).__name__}: "
                          f"{getattr(exc, 'reason', None) or exc.strerror or 'unreadable'})",
                          yaml_path=config.yaml_path("tls")) from None


def serve(config_path: Path | None = None, *, host: str | None = None, port: int | None = None,
          handler_for: Callable[[Processing], Handler] | None = None) -> None:
    """Run the intake service in the foreground until stopped. With `handler_for` (the processing settings → the
    batch handler, the `intake_batch` flow), the micro-batch processor runs beside it in a background thread, woken
    by every request that records something; without, the service only accepts (`--no-process`)."""
    import uvicorn

    from leadflow.store import StateStore

    path = find_config(config_path)
    config = load_intake_config(path)
    secrets = resolve_secrets(config)
    check_tls(config)
    host = host or config.host
    port = port or config.port
    with StateStore.open() as store:
        sock = bind(host, port)
        processor = Processor(store, handler_for(config.processing), config.processing) if handler_for else None
        app = build_app(config, secrets, store, on_recorded=processor.notify if processor else None)
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        log.setLevel(logging.INFO)
        scheme = "https" if config.tls else "http"
        log.info("leadflow intake on %s://%s:%d (sources: %s; inbox: %s)", scheme, host, port,
                 ", ".join(config.sources.configured()), store.url)
        server = uvicorn.Server(uvicorn.Config(
            app, log_level="info", access_log=False, lifespan="off", server_header=False,
            ssl_certfile=str(config.tls.certfile) if config.tls else None,
            ssl_keyfile=str(config.tls.keyfile) if config.tls else None,
        ))
        if processor is not None:
            batch = config.processing.batch
            log.info("processing the inbox in batches of up to %d or %d ms (worker %s)", batch.max_notifications,
                     batch.max_wait_ms, processor.worker)
            processor.start()
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
            if processor is not None:
                processor.stop()
