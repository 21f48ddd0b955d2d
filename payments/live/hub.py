"""Per-process fan-out of live events: each process joins a group once and writes every event it
receives straight to its local connections subscribed to that group.

With a group membership per connection, Channels gives every connection its own copy of each event
(a queue put, a task wake-up and a dispatch per connection, most of the server's CPU per delivered
message in bench/ws_fanout.py). Here one reader task per process and channel layer receives each
event once per group, matches it against each local subscriber's filters in memory and hands the
pre-encoded text to the ASGI server's own `send` of the connection (payments.live.delivery), past
Channels' consumer and session layers.

A write normally completes at once. When a client stops reading and its socket buffer fills, the
server's `send` waits; that connection's events then queue behind it in a backlog of its own (a task
finishes the blocked write and drains the backlog) so that one slow client never holds up the others.
A backlog that reaches LIVE_BACKLOG_LIMIT events closes the connection: the client reconnects and its
snapshot catches it up, which costs less than buffering without bound.
"""

import asyncio
import logging
import weakref
from collections import deque

from payments.live.delivery import direct_send, resumed

logger = logging.getLogger(__name__)

# Events one connection may have waiting behind a write its client is not reading: several minutes of
# a busy topic, far more than a reader that is merely slow needs.
LIVE_BACKLOG_LIMIT = 1000
# Connections written to before the reader lets the loop run other ready work (reads of clients'
# messages, handshakes) during a fan-out to thousands of connections.
SENDS_PER_TURN = 500


class LiveHub:
    def __init__(self, layer):
        self.layer = layer
        # group name -> the local connections subscribed to it (LiveConsumer instances).
        self.members: dict[str, set] = {}
        # connection -> events waiting behind a write its client has not taken yet.
        self.backlogs: dict[object, deque] = {}
        # The tasks finishing blocked writes (a reference, so none is collected while it waits).
        self.drains: set[asyncio.Task] = set()
        # Connections being closed for not reading: they are sent nothing more.
        self.overflowed: weakref.WeakSet = weakref.WeakSet()
        self.channel: str | None = None
        self.reader: asyncio.Task | None = None
        self.lock = asyncio.Lock()

    async def join(self, group: str, consumer) -> None:
        async with self.lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
                self.reader = asyncio.ensure_future(self.read())
            if group not in self.members:
                self.members[group] = set()
                await self.layer.group_add(group, self.channel)
            self.members[group].add(consumer)

    async def leave(self, group: str, consumer) -> None:
        async with self.lock:
            members = self.members.get(group)
            if members is None:
                return
            members.discard(consumer)
            if not members:
                del self.members[group]
                await self.layer.group_discard(group, self.channel)

    def _recipients(self, event: dict):
        group = event.get("group")
        if group is not None:
            return self.members.get(group, ())
        # The previous release's payment events name no group: every local payments subscriber
        # is a candidate, and each one's filters (a customer's include its own id) decide.
        return {c for name, members in self.members.items() if name.startswith("payments.") for c in members}

    async def read(self) -> None:
        while True:
            await self.deliver(await self.layer.receive(self.channel))

    async def deliver(self, event: dict) -> None:
        for count, consumer in enumerate(list(self._recipients(event)), start=1):
            try:
                message = consumer.live_message(event)
                if message is not None:
                    self.write(consumer, message)
            except Exception:  # one broken connection must not stop the others' events
                logger.exception("Delivering a live event to a connection failed")
            if count % SENDS_PER_TURN == 0:
                await asyncio.sleep(0)

    def write(self, consumer, message: dict) -> None:
        """Writes now, or queues behind the connection's blocked write; never waits."""
        backlog = self.backlogs.get(consumer)
        if backlog is not None:
            if consumer in self.overflowed:
                return
            if len(backlog) < LIVE_BACKLOG_LIMIT:
                backlog.append(message)
            else:
                self._overflow(consumer, backlog)
            return
        if consumer in self.overflowed:
            return
        sending = direct_send(consumer)(message)
        try:
            blocked_on = sending.send(None)
        except StopIteration:
            return  # written at once: the usual case
        except OSError:
            return  # the client has gone; its disconnect removes it from the groups
        self.backlogs[consumer] = deque()
        drain = asyncio.ensure_future(self._drain(consumer, resumed(sending, blocked_on)))
        self.drains.add(drain)
        drain.add_done_callback(self.drains.discard)

    async def _drain(self, consumer, blocked_write) -> None:
        backlog = self.backlogs[consumer]
        try:
            await blocked_write
            while backlog:
                await direct_send(consumer)(backlog.popleft())
        except OSError:
            pass  # the client went away while its events waited
        except Exception:
            logger.exception("Delivering a live event to a connection failed")
        finally:
            del self.backlogs[consumer]

    def _overflow(self, consumer, backlog: deque) -> None:
        """The client has not read LIVE_BACKLOG_LIMIT events: drop them, send it nothing more, and close
        the connection so that it reconnects and resubscribes."""
        logger.warning("Closing a live connection whose client stopped reading (%s events waiting)",
                       LIVE_BACKLOG_LIMIT)
        backlog.clear()
        self.overflowed.add(consumer)
        closing = asyncio.ensure_future(consumer.close_too_slow())
        self.drains.add(closing)
        closing.add_done_callback(self.drains.discard)


_hubs: dict[tuple[int, int], LiveHub] = {}


def live_hub(layer) -> LiveHub:
    """This process's hub for `layer` on the running event loop."""
    key = (id(layer), id(asyncio.get_running_loop()))
    hub = _hubs.get(key)
    if hub is None or hub.layer is not layer:
        hub = _hubs[key] = LiveHub(layer)
    return hub
