"""payments.live.hub: how an event is written to a process's connections, with connections that stand in
for the ASGI server's `send` (the consumer's own filter code runs)."""

import asyncio
import logging

from modules.topics import TopicFilters
from payments.live import hub as hub_module
from payments.live.consumers import CloseCode, LiveConsumer
from payments.live.delivery import DIRECT_SEND
from payments.live.hub import LiveHub

GROUP = "payments.staff"


class Connection:
    """A subscribed connection whose server `send` records what it writes, and blocks while `gate`
    is closed, as a server's does when the client stops reading and its socket buffer is full."""

    live_message = LiveConsumer.live_message

    def __init__(self, filters: TopicFilters | None = None):
        self.subscriptions = {"payments": filters or TopicFilters()}
        self.held: dict[str, list] = {}
        self.scope = {DIRECT_SEND: self.server_send}
        self.written: list[str] = []
        self.gate: asyncio.Event | None = None
        self.gone = False
        self.closed_with: int | None = None

    async def server_send(self, message: dict):
        if self.gone:
            raise OSError("the client disconnected")
        if self.gate is not None:
            await self.gate.wait()
        self.written.append(message["text"])

    async def close_too_slow(self):
        self.closed_with = CloseCode.TOO_SLOW


def event(text: str, status: str = "succeeded") -> dict:
    return {"type": "live.event", "topic": "payments", "group": GROUP, "text": text,
            "match": {"customer": 1, "invoice": None, "status": status, "method": "cash"}}


def hub_with(*connections: Connection) -> LiveHub:
    hub = LiveHub(layer=None)
    hub.members[GROUP] = set(connections)
    return hub


async def test_an_event_is_written_to_every_matching_connection_before_the_hub_yields():
    everything, failed_only = Connection(), Connection(TopicFilters({"status": frozenset({"failed"})}))
    hub = hub_with(everything, failed_only)

    await hub.deliver(event("one"))

    assert everything.written == ["one"]
    assert failed_only.written == []
    assert hub.backlogs == {}


async def test_a_connection_whose_client_stops_reading_does_not_hold_up_the_others():
    slow, fast = Connection(), Connection()
    slow.gate = asyncio.Event()
    hub = hub_with(slow, fast)

    for text in ("one", "two", "three"):
        await hub.deliver(event(text))

    assert fast.written == ["one", "two", "three"]
    assert slow.written == []
    assert list(hub.backlogs[slow]) == [{"type": "websocket.send", "text": "two"},
                                        {"type": "websocket.send", "text": "three"}]

    slow.gate.set()
    await asyncio.gather(*hub.drains)

    assert slow.written == ["one", "two", "three"], "a slow connection still gets every event, in order"
    assert hub.backlogs == {}


async def test_a_connection_that_never_reads_is_closed_once_its_backlog_is_full(monkeypatch, caplog):
    monkeypatch.setattr(hub_module, "LIVE_BACKLOG_LIMIT", 3)
    stuck, reader = Connection(), Connection()
    stuck.gate = asyncio.Event()
    hub = hub_with(stuck, reader)

    with caplog.at_level(logging.WARNING, logger="payments.live.hub"):
        for n in range(10):
            await hub.deliver(event(f"e{n}"))
        await asyncio.sleep(0)

    assert stuck.closed_with == CloseCode.TOO_SLOW
    assert len(hub.backlogs[stuck]) == 0, "the waiting events are dropped, and nothing more is queued"
    assert reader.written == [f"e{n}" for n in range(10)]
    assert "stopped reading" in caplog.text

    stuck.gate.set()
    await asyncio.gather(*hub.drains)
    assert stuck.written == ["e0"], "only the write already under way completes"


async def test_a_client_gone_during_a_fan_out_is_skipped_without_an_error(caplog):
    gone, present = Connection(), Connection()
    gone.gone = True
    hub = hub_with(gone, present)

    with caplog.at_level(logging.WARNING, logger="payments.live.hub"):
        await hub.deliver(event("one"))

    assert present.written == ["one"]
    assert caplog.records == []
    assert hub.backlogs == {}


async def test_a_client_gone_while_its_events_wait_ends_its_backlog():
    leaving, present = Connection(), Connection()
    leaving.gate = asyncio.Event()
    hub = hub_with(leaving, present)
    await hub.deliver(event("one"))
    await hub.deliver(event("two"))

    leaving.gone = True
    leaving.gate.set()
    await asyncio.gather(*hub.drains)

    assert hub.backlogs == {}
    assert present.written == ["one", "two"]


async def test_a_broken_connection_does_not_stop_the_others_events(caplog):
    class Broken(Connection):
        def live_message(self, event):
            raise RuntimeError("broken")

    broken, present = Broken(), Connection()
    hub = hub_with(broken, present)

    await hub.deliver(event("one"))

    assert present.written == ["one"]
    assert "Delivering a live event to a connection failed" in caplog.text


async def test_a_fan_out_to_thousands_lets_the_loop_run_other_work_meanwhile(monkeypatch):
    monkeypatch.setattr(hub_module, "SENDS_PER_TURN", 10)
    connections = [Connection() for _ in range(50)]
    hub = hub_with(*connections)
    written_when_other_work_ran = []

    async def other_work():
        written_when_other_work_ran.append(sum(len(c.written) for c in connections))

    other = asyncio.ensure_future(other_work())
    await hub.deliver(event("one"))
    await other

    assert all(c.written == ["one"] for c in connections)
    assert 0 < written_when_other_work_ran[0] < 50


async def test_a_waiting_write_that_fails_is_logged_and_ends_its_backlog(caplog):
    failing, present = Connection(), Connection()
    failing.gate = asyncio.Event()
    hub = hub_with(failing, present)
    await hub.deliver(event("one"))
    await hub.deliver(event("two"))

    async def refused(message):
        raise RuntimeError("sent after close")

    failing.scope[DIRECT_SEND] = refused
    failing.gate.set()
    await asyncio.gather(*hub.drains)

    assert failing.written == ["one"], "the write under way completes; the refused one is not retried"
    assert hub.backlogs == {}
    assert "Delivering a live event to a connection failed" in caplog.text
