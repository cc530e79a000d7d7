"""The `rl4pix serve` command: the REST gateway, plus a worker process in embedded mode."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import socket
import subprocess
import sys

logger = logging.getLogger(__name__)


def _start_worker(queues: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.app",
        "worker",
        f"--queues={queues}",
        "--concurrency=1",
        "--pool=solo",
        "--loglevel=INFO",
    ]
    process = subprocess.Popen(command, env=os.environ.copy())
    logger.info("worker process started", extra={"pid": process.pid, "queues": queues})
    return process


def _stop_worker(process: subprocess.Popen) -> None:
    # NOTE: a worker outlives a gateway killed with SIGKILL; stop it by its pid (logged at start).
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            logger.warning("worker did not stop within 30 s; killing it", extra={"pid": process.pid})
            process.kill()
    logger.info("worker process stopped", extra={"pid": process.pid})


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # uvicorn re-raises the SIGTERM it caught once it has shut down. Turning it into SystemExit
    # lets the `finally` below stop the worker before the process exits.
    raise SystemExit(128 + signum)


def _bind(host: str, port: int) -> socket.socket | None:
    """Bind the gateway's socket, or print why it cannot be bound and return None.

    The socket is bound before anything is printed or started, and uvicorn serves on this same
    socket, so no other process can take the port in between.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        print(f"error: cannot resolve --host {host}: {error.strerror}", file=sys.stderr)
        return None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            print(f"error: port {port} is in use: pass --port N", file=sys.stderr)
        else:
            print(f"error: cannot listen on {host}:{port}: {error.strerror}", file=sys.stderr)
        return None
    return sock


def _handle(args: argparse.Namespace) -> int:
    import uvicorn

    from service import embedded, migrate
    from service.app import create_app
    from service.logging_setup import configure_logging
    from service.settings import get_settings

    sock = _bind(args.host, args.port)
    if sock is None:
        return 2
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    embedded.prepare_directories(settings)
    is_sqlite = settings.resolved_database_url.startswith("sqlite")
    if args.migrate or (args.migrate is None and is_sqlite):
        migrate.upgrade(settings.resolved_database_url)
    key = embedded.ensure_api_key(settings) if is_sqlite else None

    run_worker = args.worker if args.worker is not None else settings.is_embedded_broker
    worker = _start_worker(args.queues) if run_worker else None
    url = f"http://{args.host}:{args.port}"
    print(f"rl4pix gateway on {url} (OpenAPI docs at {url}/docs)", flush=True)
    if key:
        print(f"API key: {key}\n  curl -H 'Authorization: Bearer {key}' {url}/readyz", flush=True)
    elif is_sqlite:
        print("create an API key with: rl4pix keys create --tenant NAME", flush=True)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        config = uvicorn.Config(
            create_app(settings), host=args.host, port=args.port, log_config=None, access_log=False
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        if worker is not None:
            _stop_worker(worker)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the REST gateway (with SQLite, a local broker and a worker when no RL4PIX_* variables are set)",
        description="Start the HTTP gateway. With no RL4PIX_DATABASE_URL and RL4PIX_BROKER_URL it runs in "
        "embedded mode: data under ./.rl4pix, migrations applied, an API key printed and a worker started.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument(
        "--worker",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also start a worker process (default: only in embedded mode)",
    )
    parser.add_argument(
        "--migrate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply database migrations first (default: only for SQLite)",
    )
    parser.add_argument("--queues", default="edits,training,eval", help="queues of the embedded worker")
    parser.set_defaults(handler=_handle)
