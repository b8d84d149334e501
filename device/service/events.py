"""Server-Sent Events for changes of the stable reading: every client gets every change, and no
client can hold anyone else up.

Each client has its own bounded queue. The watch loop only ever puts into queues without
waiting; a client that stops reading (its socket buffers full, its queue full) loses its oldest
queued events, never the newest, so when it reads again it catches up to the current reading.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager

from device.service.schemas import StableReading
from device.service.shutdown import on_exit_signal

# A change of the stable reading takes at least K frames at the watch rate: a client that is
# 16 changes behind has stopped reading, and older changes are no use to it any more.
CLIENT_QUEUE = 16
# How long an EventSource waits before it reconnects after the stream broke (ms).
RECONNECT_MS = 2000


def sse_event(reading: StableReading) -> bytes:
    """One `reading` event; its id is the reading's seq, its data the reading's JSON."""
    return f"id: {reading.seq}\nevent: reading\ndata: {reading.model_dump_json()}\n\n".encode()


HEARTBEAT = b": heartbeat\n\n"  # a comment: keeps proxies and idle timers from closing it


class ReadingEvents:
    def __init__(
        self,
        queue_size: int = CLIENT_QUEUE,
        on_drop: Callable[[], None] | None = None,
        on_clients: Callable[[int], None] | None = None,
    ) -> None:
        self.queue_size = queue_size
        # None in a queue means "the service is stopping".
        self._queues: set[asyncio.Queue[StableReading | None]] = set()
        self._on_drop = on_drop or (lambda: None)
        self._on_clients = on_clients or (lambda count: None)
        self._closed = False
        self._signals_hooked = False
        self.dropped = 0

    @property
    def clients(self) -> int:
        return len(self._queues)

    def publish(self, reading: StableReading) -> None:
        """Queue `reading` for every client; never waits (called from the watch loop)."""
        for queue in self._queues:
            self._put(queue, reading)

    def close(self) -> None:
        """End every stream: an endless response would otherwise hold up a graceful shutdown."""
        self._closed = True
        for queue in self._queues:
            self._put(queue, None)

    def _put(self, queue: asyncio.Queue[StableReading | None], item: StableReading | None) -> None:
        if queue.full():
            queue.get_nowait()  # the oldest goes: the newest is what a client needs
            self.dropped += 1
            self._on_drop()
        queue.put_nowait(item)

    @contextmanager
    def subscription(self) -> Iterator[asyncio.Queue[StableReading | None]]:
        """A queue that receives every reading published while the block runs."""
        queue: asyncio.Queue[StableReading | None] = asyncio.Queue(self.queue_size)
        if self._closed:
            queue.put_nowait(None)
        self._queues.add(queue)
        self._on_clients(self.clients)
        try:
            yield queue
        finally:
            self._queues.discard(queue)
            self._on_clients(self.clients)

    async def stream(
        self, current: StableReading | None, heartbeat_s: float
    ) -> AsyncIterator[bytes]:
        """The bytes of one client's text/event-stream: the current reading, then each change,
        and a heartbeat comment whenever nothing happened for `heartbeat_s`."""
        if not self._signals_hooked:  # SIGTERM ends the streams, so a stop is not held up
            self._signals_hooked = on_exit_signal(self.close)
        with self.subscription() as queue:
            yield f"retry: {RECONNECT_MS}\n\n".encode()
            if current is not None:
                yield sse_event(current)
            while True:
                try:
                    reading = await asyncio.wait_for(queue.get(), heartbeat_s)
                except TimeoutError:
                    yield HEARTBEAT
                    continue
                if reading is None:
                    return
                yield sse_event(reading)
