"""A webhook receiver on a free port that keeps what it is sent."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import uvicorn
from fastapi import FastAPI, Request

from tests.conftest import free_port


class WebhookSink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.signatures: list[tuple[bytes, str | None]] = []
        self._lock = threading.Lock()
        app = FastAPI()

        @app.post("/events")
        async def receive(request: Request) -> dict[str, str]:
            body = await request.body()
            event = json.loads(body)
            with self._lock:
                self.events.append(event)
                self.signatures.append((body, request.headers.get("x-signature")))
            return {"ok": "yes"}

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/events"
        self._server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "webhook sink did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def clear(self) -> None:
        with self._lock:
            self.events.clear()
            self.signatures.clear()
