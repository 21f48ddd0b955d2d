"""payments.live.delivery: the server's own `send` kept for the hub, and finishing a write started by hand."""

import asyncio

import pytest

from payments.live.delivery import DIRECT_SEND, DirectSendMiddleware, resumed


async def test_resumed_finishes_a_coroutine_started_by_hand_and_passes_cancellation_in():
    gate = asyncio.Event()
    steps = []

    async def write():
        steps.append("started")
        try:
            await gate.wait()
        except asyncio.CancelledError:
            steps.append("cancelled")
            raise
        steps.append("finished")
        return "done"

    finished = write()
    blocked_on = finished.send(None)
    task = asyncio.ensure_future(_await(resumed(finished, blocked_on)))
    gate.set()
    assert await task == "done"
    assert steps == ["started", "finished"]

    steps.clear()
    gate.clear()
    cancelled = write()
    task = asyncio.ensure_future(_await(resumed(cancelled, cancelled.send(None))))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert steps == ["started", "cancelled"]


async def _await(awaitable):
    return await awaitable


async def test_the_middleware_hands_the_servers_own_send_to_the_stack():
    seen = {}

    async def inner(scope, receive, send):
        seen.update(scope=scope, send=send)

    async def server_send(message):
        pass

    scope = {"type": "websocket", "path": "/ws/"}
    await DirectSendMiddleware(inner)(scope, None, server_send)

    assert seen["scope"][DIRECT_SEND] is server_send
    assert seen["send"] is server_send
    assert DIRECT_SEND not in scope, "the server's scope is left as it was"
