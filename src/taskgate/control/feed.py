"""Following the event feed (``GET /control/v1/events``, Server-Sent Events) across
dropped connections and server restarts, written once for both clients.

``EventFeed`` holds what a follower must remember between connections (the id of the
last event it handed out, the backoff) and does no I/O: it builds each connection's
request, judges the answer, and turns the stream's lines into events. The clients only
open connections, read lines and sleep.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from taskgate.client.errors import error_from_response
from taskgate.control.models import Event
from taskgate.wire.http import CORRELATION_ID_HEADER

EVENTS = "/events"
FIRST_DELAY = 0.2
MAX_DELAY = 2.0
# The server sends keep-alive comments on a quiet stream far more often than this; a
# connection silent for longer is dead (a peer gone without closing it): reconnect.
STREAM_READ_TIMEOUT = 60.0


class SseParser:
    """The ``text/event-stream`` format, line by line: ``field: value`` lines, ``:``
    comments (keep-alives), and a blank line that ends an event."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._event = "message"
        self._data: list[str] = []

    def line(self, line: str) -> tuple[str | None, str, str] | None:
        """Feed one line (without its end); an ``(id, event, data)`` when it ends one."""
        if not line:
            if not self._data:
                self._event = "message"
                return None
            done = (self._id, self._event, "\n".join(self._data))
            self._event, self._data = "message", []
            return done
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None  # "retry" and unknown fields: the backoff here decides


class EventFeed:
    def __init__(self, key: str, after: int | None, dag_id: str | None) -> None:
        self.key = key
        self.last_id = after  # resume after this one: the last event handed out
        self.dag_id = dag_id
        self._delay = 0.0
        self._parser = SseParser()

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The next connection's request, resuming after the last event handed out."""
        self._parser = SseParser()  # an event cut off by a dropped connection comes again
        params: dict[str, Any] = {}
        headers = {
            "Authorization": f"Bearer {self.key}",
            "Accept": "text/event-stream",
            CORRELATION_ID_HEADER: uuid.uuid4().hex,
        }
        if self.last_id is not None:
            params["after"] = self.last_id
            headers["Last-Event-ID"] = str(self.last_id)
        if self.dag_id is not None:
            params["dag_id"] = self.dag_id
        timeout = httpx.Timeout(http.timeout.connect, read=STREAM_READ_TIMEOUT, write=None,
                                pool=http.timeout.pool)
        return http.build_request("GET", EVENTS, params=params, headers=headers, timeout=timeout)

    def opened(self, response: httpx.Response) -> bool:
        """Whether to read the stream (200), or to reconnect (a 5xx: the server is
        restarting). Any other answer raises: reconnecting would not change it (410
        ``events_expired``, 401, 403, ...). The body of an answer that is not 200 must have
        been read."""
        if response.status_code == 200:
            return True
        if response.status_code >= 500:
            return False
        raise error_from_response(
            response, response.request.headers.get(CORRELATION_ID_HEADER, "")
        )

    def line(self, line: str) -> Event | None:
        """The event this line completes, if any; its id becomes the resume point."""
        done = self._parser.line(line)
        if done is None:
            return None
        ident, kind, data = done
        if ident is None:
            return None  # every event of this feed has an id; anything else is not one
        event = Event.from_json({"id": int(ident), "event": kind, "data": json.loads(data)})
        self.last_id = event.id
        # Only an event proves the stream works: a server that answers 200 and ends the
        # stream at once (stopping, or its database down) is reconnected to with backoff.
        self._delay = 0.0
        return event

    def backoff(self) -> float:
        """Seconds to wait before reconnecting: 0.2, doubling up to 2."""
        self._delay = min(MAX_DELAY, self._delay * 2 if self._delay else FIRST_DELAY)
        return self._delay
