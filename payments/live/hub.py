"""Per-process fan-out of live events: each process joins a group once and writes every event it
receives straight to its local connections subscribed to that group.

With a group membership per connection, Channels gives every connection its own copy of each event
(a queue put, a task wake-up and a dispatch per connection, most of the server's CPU per delivered
message in bench/ws_fanout.py). Here one reader task per process and channel layer receives each
event once per group, matches it against each local subscriber's filters in memory and sends the
pre-encoded text to the socket.
"""

import asyncio
import logging

logger = logging.getLogger(__name__)


class LiveHub:
    def __init__(self, layer):
        self.layer = layer
        # group name -> the local connections subscribed to it (LiveConsumer instances).
        self.members: dict[str, set] = {}
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
            event = await self.layer.receive(self.channel)
            for consumer in list(self._recipients(event)):
                try:
                    await consumer.live_event(event)
                except Exception:  # one broken connection must not stop the others' events
                    logger.exception("Delivering a live event to a connection failed")


_hubs: dict[tuple[int, int], LiveHub] = {}


def live_hub(layer) -> LiveHub:
    """This process's hub for `layer` on the running event loop."""
    key = (id(layer), id(asyncio.get_running_loop()))
    hub = _hubs.get(key)
    if hub is None or hub.layer is not layer:
        hub = _hubs[key] = LiveHub(layer)
    return hub
