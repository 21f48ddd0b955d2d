"""How the hub (payments.live.hub) writes an event to a connection: through the ASGI server's own
`send` of the connection, captured before Channels' middleware wraps it, and without waiting when the
connection cannot take it at once.

Channels' session middleware wraps every `send` of a connection to save the session before an HTTP
response starts; on a WebSocket it only costs time (a quarter of the server's CPU per delivered event
under uvicorn, profiled with bench/ws_fanout.py). Events need none of it: the consumer accepted the
connection (and the session middleware did its part) before any event can reach it.
"""

import types

# The scope key under which DirectSendMiddleware leaves the server's `send` of a WebSocket connection.
DIRECT_SEND = "live.direct_send"


class DirectSendMiddleware:
    """The outermost WebSocket middleware (billing_project.asgi): keeps the server's `send` in the scope
    for the hub, then runs the rest of the stack unchanged."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        return await self.inner({**scope, DIRECT_SEND: send}, receive, send)


def direct_send(consumer):
    """The server's `send` of the consumer's connection; Channels' own when the stack lacks the
    middleware (an application assembled without it still delivers, more slowly)."""
    return consumer.scope.get(DIRECT_SEND) or consumer.base_send


@types.coroutine
def resumed(coroutine, blocked_on):
    """Finishes `coroutine`, which was started by hand and is suspended on `blocked_on` (what its first
    step yielded), as if it had been awaited from the start: `await resumed(...)` in a task."""
    pending = blocked_on
    while True:
        try:
            value = yield pending
        except BaseException as error:  # cancellation included: the coroutine handles it as its own await
            try:
                pending = coroutine.throw(error)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                pending = coroutine.send(value)
            except StopIteration as stop:
                return stop.value
