"""Run the systems as HTTP servers (uvicorn, one thread each) with their webhook senders."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import uvicorn

from sandbox.app import create_app
from sandbox.service import SystemService

logger = logging.getLogger(__name__)


@dataclass
class _Running:
    server: uvicorn.Server
    thread: threading.Thread
    url: str


def _listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port` (port 0: one the kernel picks), handed to uvicorn.
    Binding here rather than choosing a free port for uvicorn to bind later closes the
    window in which another connection's ephemeral port could take it ("address already
    in use", seen in the test suite)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class SandboxServers:
    """Start with `start()`, stop with `stop()` (or use as a context manager). A port of 0
    lets the kernel pick a free one; `urls` tells which after `start()`."""

    def __init__(
        self,
        services: Mapping[str, SystemService],
        ports: Mapping[str, int],
        host: str = "127.0.0.1",
    ) -> None:
        self.services = dict(services)
        self._ports = dict(ports)
        self._host = host
        self._running: dict[str, _Running] = {}
        self._stop_webhooks = threading.Event()
        self._webhook_threads: list[threading.Thread] = []

    @property
    def urls(self) -> dict[str, str]:
        return {system: running.url for system, running in self._running.items()}

    def start(self, timeout_seconds: float = 20.0) -> None:
        # Every config before any server starts: each uvicorn.Config re-applies uvicorn's
        # logging config (INFO) before lowering it to `log_level`, and a server starting in
        # that moment printed its INFO start-up lines into the demo's console.
        servers = {
            system: uvicorn.Server(
                uvicorn.Config(
                    create_app(service),
                    host=self._host,
                    port=self._ports[system],
                    log_level="warning",
                    timeout_graceful_shutdown=2,
                    lifespan="off",
                )
            )
            for system, service in self.services.items()
        }
        sockets: dict[str, socket.socket] = {}
        try:
            for system in servers:
                sockets[system] = _listening_socket(self._host, self._ports[system])
        except OSError as exc:
            for sock in sockets.values():
                sock.close()
            raise RuntimeError(
                f"sandbox {system} cannot listen on {self._host}:{self._ports[system]}: {exc}"
            ) from exc
        for system, server in servers.items():
            sock = sockets[system]
            thread = threading.Thread(
                target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{system}", daemon=True
            )
            thread.start()
            port = sock.getsockname()[1]
            url = (
                f"http://[{self._host}]:{port}"
                if ":" in self._host
                else f"http://{self._host}:{port}"
            )
            self._running[system] = _Running(server, thread, url)
        deadline = time.monotonic() + timeout_seconds
        for system, running in self._running.items():
            while not running.server.started:
                if not running.thread.is_alive():
                    self.stop()
                    raise RuntimeError(f"sandbox {system} did not start on {running.url}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"sandbox {system} not up within {timeout_seconds}s")
                time.sleep(0.01)
        for system, service in self.services.items():
            thread = threading.Thread(
                target=service.webhooks.run_until,
                args=(self._stop_webhooks,),
                name=f"sandbox-{system}-webhooks",
                daemon=True,
            )
            thread.start()
            self._webhook_threads.append(thread)

    def stop(self) -> None:
        self._stop_webhooks.set()
        for running in self._running.values():
            running.server.should_exit = True
        for running in self._running.values():
            running.thread.join(timeout=10)
        for thread in self._webhook_threads:
            thread.join(timeout=10)
        for service in self.services.values():
            service.webhooks.close()
            service.store.close()

    def wait(self) -> None:
        """Block until every server has stopped (Ctrl-C in `sandbox up`)."""
        for running in self._running.values():
            running.thread.join()

    def __enter__(self) -> SandboxServers:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
