"""Webhooks out: CloudEvents (structured JSON) for a system's changes, delivered at least
once to the subscribed URL, with the duplicates and late, reordered deliveries that the
fault settings ask for."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections import deque
from typing import Any

import httpx

from sandbox.clock import Clock
from sandbox.faults import FaultInjector

logger = logging.getLogger(__name__)

CloudEvent = dict[str, Any]
# A late event is released at the latest after this many delivery rounds.
MAX_HELD_ROUNDS = 25


class WebhookSender:
    def __init__(
        self,
        source: str,
        injector: FaultInjector,
        clock: Clock,
        client: httpx.Client | None = None,
    ) -> None:
        self.source = source
        self._injector = injector
        self._clock = clock
        self._client = client or httpx.Client(timeout=5.0)
        self._url: str | None = None
        self._secret: bytes | None = None
        self._queue: deque[CloudEvent] = deque()
        self._held: list[tuple[int, CloudEvent]] = []  # (rounds held, event)
        self._counter = 0
        self._lock = threading.Lock()
        self._sending = threading.Lock()
        self.delivered = 0

    @property
    def url(self) -> str | None:
        return self._url

    def subscribe(self, url: str | None, secret: str | None = None) -> None:
        """Send to `url` (None: stop); with a `secret`, each delivery is signed:
        `X-Signature: sha256=<hex HMAC-SHA256 of the body>`."""
        with self._lock:
            self._url = url
            self._secret = secret.encode() if secret else None

    def emit(self, event_type: str, subject: str, data: dict[str, Any]) -> CloudEvent | None:
        """Queue one event; nothing is queued while no one is subscribed."""
        with self._lock:
            if self._url is None:
                return None
            self._counter += 1
            event: CloudEvent = {
                "specversion": "1.0",
                "id": f"{self.source.rsplit('/', 1)[-1]}-{self._counter}",
                "source": self.source,
                "type": event_type,
                "subject": subject,
                "time": self._clock.now().isoformat(),
                "datacontenttype": "application/json",
                "data": data,
            }
            self._queue.append(event)
            return event

    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + len(self._held)

    def deliver_pending(self) -> int:
        """Send what is queued. An event held back as late goes out right after a newer
        event does (or after `MAX_HELD_ROUNDS` rounds), so it arrives out of order. An
        event that fails stays queued (at-least-once). Returns events delivered."""
        with self._sending:
            with self._lock:
                url = self._url
                batch = list(self._queue)
                self._queue.clear()
                held, self._held = self._held, []
            if url is None:
                return 0
            outgoing: list[CloudEvent] = []
            still_held: list[tuple[int, CloudEvent]] = []
            for event in batch:
                if self._injector.roll(self._injector.config.webhook_late_rate):
                    self._injector.record("webhook_late", event_id=event["id"])
                    still_held.append((0, event))
                    continue
                outgoing.append(event)
                if self._injector.roll(self._injector.config.webhook_duplicate_rate):
                    self._injector.record("webhook_duplicate", event_id=event["id"])
                    outgoing.append(event)
            for rounds, event in held:
                if outgoing or rounds >= MAX_HELD_ROUNDS:
                    outgoing.append(event)
                else:
                    still_held.append((rounds + 1, event))
            with self._lock:
                self._held = still_held + self._held
            sent = 0
            failed: list[CloudEvent] = []
            for event in outgoing:
                if self._post(url, event):
                    sent += 1
                else:
                    failed.append(event)
            with self._lock:
                self._queue.extendleft(reversed(failed))
            self.delivered += sent
            return sent

    def _post(self, url: str, event: CloudEvent) -> bool:
        body = json.dumps(event, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/cloudevents+json"}
        if self._secret is not None:
            digest = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
            headers["X-Signature"] = f"sha256={digest}"
        try:
            response = self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            logger.warning("webhook %s to %s failed: %s", event["id"], url, type(exc).__name__)
            return False
        return response.is_success

    def run_until(self, stop: threading.Event, interval_seconds: float = 0.2) -> None:
        while not stop.is_set():
            try:
                self.deliver_pending()
            except Exception:
                logger.exception("webhook delivery round failed")
            stop.wait(interval_seconds)

    def close(self) -> None:
        self._client.close()
