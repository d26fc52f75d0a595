"""One process's follower side of the event feed, shared by all its followers.

A follower (an event stream of the control API) must get every event after its resume
point, in order, and each new one within a second of its commit, whichever replica wrote
it. Every follower polling the database would cost a query per follower per interval;
instead one task per process polls (every ``poll_interval``) while anyone follows and
keeps the newest events in memory.

The memory holds every event with an id above ``floor``. A follower behind ``floor``
reads ``(cursor, floor]`` from the database, a page at a time, and then goes on from
memory. That bounded read leaves no gap: the poller saw ``floor`` committed, and events
become visible in id order (``services.events``), so every event up to it is visible too.
When memory is full the oldest events leave it and ``floor`` rises; a slow follower falls
back to the database the same way.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import AsyncIterator, Collection

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskgate import logs
from taskgate.services import events
from taskgate.services.events import EventRecord

log = logs.get_logger("taskgate.events")

# How long a poller that keeps failing stays quiet in the log.
_LOG_EVERY = 5.0


class EventFeed:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        poll_interval: float,
        keep: int = 10_000,
    ) -> None:
        self._sessions = sessions
        self._poll_interval = poll_interval
        self._keep = keep
        self._buffer: list[EventRecord] = []  # ascending ids, all above _floor
        self._ids: list[int] = []  # the buffer's ids, for bisect
        self._floor: int | None = None  # None: the poller has not read the database yet
        self._changed = asyncio.Event()  # set, and replaced, whenever the buffer grows
        self._stopping = False
        self._followers = 0
        self._poller: asyncio.Task[None] | None = None

    def stop(self) -> None:
        """End every stream (the server is stopping: followers resume elsewhere or later)."""
        self._stopping = True
        self._wake()

    async def follow(
        self,
        *,
        after: int | None,
        dag_id: str | None = None,
        teams: Collection[str] = (),
        idle: float = 15.0,
    ) -> AsyncIterator[EventRecord | None]:
        """Every event after ``after`` (None: the oldest kept) that a follower of ``teams``
        filtering on ``dag_id`` may see, then each new one; None after ``idle`` seconds
        without any (time for a keep-alive). Ends when the feed stops."""
        self._followers += 1
        try:
            cursor = after
            while not self._stopping:
                if self._poller is None:
                    self._poller = asyncio.create_task(self._poll())
                changed = self._changed
                floor = self._floor
                if floor is None:  # the poller has not reached the database yet
                    if not await self._wait(changed, idle):
                        yield None
                    continue
                if cursor is None or cursor < floor:
                    async with self._sessions() as session:
                        page = await events.read(
                            session, after=cursor, dag_id=dag_id, teams=teams, through=floor
                        )
                    for record in page:
                        yield record
                    full = len(page) == events.READ_LIMIT
                    cursor = page[-1].id if full else floor
                    continue
                start = bisect.bisect_right(self._ids, cursor)
                fresh = self._buffer[start:]
                if not fresh:
                    if not await self._wait(changed, idle):
                        yield None
                    continue
                for record in fresh:
                    if record.visible_to(teams, dag_id):
                        yield record
                cursor = fresh[-1].id
        finally:
            self._followers -= 1

    async def _wait(self, changed: asyncio.Event, seconds: float) -> bool:
        """Until the buffer changes or the feed stops (True), or ``seconds`` pass (False)."""
        try:
            await asyncio.wait_for(changed.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _poll(self) -> None:
        last_logged = 0.0
        try:
            while self._followers > 0 and not self._stopping:
                fetched = 0
                try:
                    fetched = await self._fetch()
                except Exception as exc:  # noqa: BLE001 - followers wait; the poll goes on
                    if time.monotonic() - last_logged > _LOG_EVERY:
                        last_logged = time.monotonic()
                        log.warning("event feed: polling the database failed", error=str(exc))
                if fetched < events.READ_LIMIT:
                    await asyncio.sleep(self._poll_interval)
        finally:
            self._poller = None
            self._floor = None
            self._buffer, self._ids = [], []

    async def _fetch(self) -> int:
        async with self._sessions() as session:
            if self._floor is None:
                self._floor = await events.latest_id(session)
                self._wake()
                return 0
            newest = self._ids[-1] if self._ids else self._floor
            fresh = await events.read(session, after=newest, check_resume=False)
        if fresh:
            self._buffer += fresh
            self._ids += [record.id for record in fresh]
            if len(self._buffer) > self._keep:
                dropped = len(self._buffer) - self._keep
                self._floor = self._ids[dropped - 1]
                del self._buffer[:dropped], self._ids[:dropped]
            self._wake()
        return len(fresh)
