"""One live-event sender per process: a committed change's event is put on a bounded queue that one
background thread drains onto the channel layer, so the request that made the change never waits for
Redis, nor starts a thread and an event loop per event as `async_to_sync` did (a quarter of a credit
debit's time, docs/decisions.md "One live-event sender per process").

Only committed work reaches it: `topic_publish` runs from `transaction.on_commit`. The thread sends what
has queued up since its last pass in one batch, each event to its groups in the order events were queued (a
client sees a customer's ledger entries in order). With the Redis layer (modules/live_layer.py) a batch is
one pipeline of PUBLISHes per Redis host, sent from the thread without an event loop; a failed pipeline
counts the whole batch as failed. Any other layer is awaited event by event on one event loop the thread
keeps for its life, so that layer keeps its connections. When the queue is full (Redis slow or down) a new
event is dropped, counted and logged (the first drop and every DROP_LOG_EVERY-th after); while the breaker
is open (Redis down) events are dropped without trying, as before. An event that finds the queue otherwise
empty waits LIVE_SENDER_LINGER_SECONDS (3 ms) for others to share its pass. At process exit the queue is
flushed for up to LIVE_SENDER_EXIT_FLUSH_SECONDS. A layer kept in this process's memory (the embedded
default) is sent to at once: there is no network to wait for, and its queues belong to the caller's event
loop."""

import asyncio
import atexit
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from core.resilience import REDIS_UNAVAILABLE, channel_layer_breaker
from modules.live_layer import PipelinedPubSubChannelLayer

logger = logging.getLogger(__name__)

# Events sent per pass of the thread: enough to amortize a pass, few enough that a failed pass loses little.
BATCH_SIZE = 500
# After the first, one warning per this many events dropped because the queue was full.
DROP_LOG_EVERY = 1000


@dataclass(frozen=True)
class LiveEvent:
    # The groups that get a copy (the customer's and staff's); each copy names its group.
    groups: tuple[str, ...]
    message: dict


@dataclass
class LiveSenderCounts:
    """Since the process started: what was sent, dropped because the queue was full or the breaker open,
    and lost to a failed send."""

    sent: int = 0
    dropped: int = 0
    failed: int = 0


@dataclass
class _BatchProgress:
    # Events of the batch sent so far: the rest count as failed when a send raises.
    sent: int = 0


async def live_event_send(event: LiveEvent) -> None:
    layer = get_channel_layer()
    for group in event.groups:
        # Each copy names its group: a process's hub subscribed to both hands each to its own members.
        await layer.group_send(group, {**event.message, "group": group})


async def _send_each(batch: list[LiveEvent], progress: _BatchProgress) -> None:
    for event in batch:
        await live_event_send(event)
        progress.sent += 1


class LiveSender:
    """The process's queue and the thread draining it; started on first use, again after a fork."""

    def __init__(self) -> None:
        self.counts = LiveSenderCounts()
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._queue: queue.Queue[LiveEvent] = queue.Queue()
        self._thread: threading.Thread | None = None
        # Created by the thread only for a layer other than the pipelined Redis one.
        self._loop: asyncio.AbstractEventLoop | None = None

    def submit(self, event: LiveEvent) -> bool:
        """Queue the event without waiting; False when it was dropped. The breaker is asked by the thread,
        per batch: asking it here would spend the outage's probe on an event the thread then drops."""
        self._ensure_running()
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._dropped_because_full()
            return False
        return True

    def flush(self, *, timeout: float) -> bool:
        """Wait until every event queued so far was sent or given up; False if `timeout` passed first."""
        with self._queue.all_tasks_done:
            return self._queue.all_tasks_done.wait_for(lambda: self._queue.unfinished_tasks == 0, timeout)

    def _ensure_running(self) -> None:
        if self._pid == os.getpid() and self._thread is not None:
            return
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None:
                return
            # A forked child (gunicorn --preload) inherits neither the thread nor the parent's queued events.
            self._queue = queue.Queue(maxsize=settings.LIVE_SENDER_QUEUE_SIZE)
            self._thread = threading.Thread(target=self._run, name="live-event-sender", daemon=True)
            self._thread.start()
            if self._pid is None:
                atexit.register(self._flush_at_exit)
            self._pid = os.getpid()

    def _run(self) -> None:
        self._loop = None
        events = self._queue
        while True:
            batch = [events.get()]
            if events.empty():
                # A lone event waits a moment for company: at a few hundred events a second a pass costs
                # about as much for several events as for one (docs/decisions.md has the measured figures). A
                # sleep, not a timed get, which every put would wake. A backlog is sent at once.
                time.sleep(settings.LIVE_SENDER_LINGER_SECONDS)
            while len(batch) < BATCH_SIZE:
                try:
                    batch.append(events.get_nowait())
                except queue.Empty:
                    break
            try:
                self._send(batch)
            finally:
                for _ in batch:
                    events.task_done()

    def _send(self, batch: list[LiveEvent]) -> None:
        breaker = channel_layer_breaker()
        if not breaker.allows_call():
            self._count(dropped=len(batch))
            return
        progress = _BatchProgress()
        try:
            self._publish(batch, progress)
        except REDIS_UNAVAILABLE as error:
            breaker.record_failure(error)
        except Exception:
            logger.exception("Live broadcast failed; the changes are saved but clients missed %s event(s)",
                             len(batch) - progress.sent)
        else:
            breaker.record_success()
        self._count(sent=progress.sent, failed=len(batch) - progress.sent)

    def _publish(self, batch: list[LiveEvent], progress: _BatchProgress) -> None:
        layer = get_channel_layer()
        # An isinstance check, not getattr: the library's pub/sub layer forwards unknown attributes to its
        # per-loop layer, which raises RuntimeError outside an event loop.
        if isinstance(layer, PipelinedPubSubChannelLayer):
            # One pipeline per Redis host: a failed execute is counted as the whole batch failed.
            layer.group_send_many([(group, {**event.message, "group": group})
                                   for event in batch for group in event.groups])
            progress.sent = len(batch)
            return
        if self._loop is None:
            # Any other layer is awaited, on one loop kept for the thread's life (it keeps its connections).
            self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(_send_each(batch, progress))

    def _count(self, *, sent: int = 0, dropped: int = 0, failed: int = 0) -> None:
        with self._lock:
            self.counts.sent += sent
            self.counts.dropped += dropped
            self.counts.failed += failed

    def _dropped_because_full(self) -> None:
        self._count(dropped=1)
        dropped = self.counts.dropped
        if dropped == 1 or dropped % DROP_LOG_EVERY == 0:
            logger.warning("Live event queue full (%s events): the change is saved but its event was dropped "
                           "(%s dropped in this process so far)", settings.LIVE_SENDER_QUEUE_SIZE, dropped)

    def _flush_at_exit(self) -> None:
        if self._pid == os.getpid() and not self.flush(timeout=settings.LIVE_SENDER_EXIT_FLUSH_SECONDS):
            logger.warning("Process exiting with %s live event(s) unsent", self._queue.unfinished_tasks)


_sender = LiveSender()


def live_sender() -> LiveSender:
    return _sender


def live_event_publish(event: LiveEvent) -> None:
    """Send a committed change's event: through the process's sender, or at once to an in-memory layer."""
    if isinstance(get_channel_layer(), InMemoryChannelLayer):
        try:
            async_to_sync(live_event_send)(event)
        except Exception:
            logger.exception("Live broadcast failed; the change is saved but clients missed it")
        return
    live_sender().submit(event)
