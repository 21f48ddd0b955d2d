"""The live-updates module's health: one message through the channel layer and back."""

import asyncio
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from core.resilience import channel_layer_breaker
from modules.definitions import HealthReport

# Seconds the round trip may take; the /healthz budget cuts a hung one shorter anyway.
ROUND_TRIP_TIMEOUT = 2.0


async def _round_trip() -> float:
    layer = get_channel_layer()
    started = time.monotonic()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "health.ping"})
    await asyncio.wait_for(layer.receive(channel), timeout=ROUND_TRIP_TIMEOUT)
    return time.monotonic() - started


def live_health(deep: bool) -> HealthReport:
    """Degraded (not down: HTTP and the database do not need it) when a message sent to a channel of
    this process does not come back, which through Redis means Redis is unreachable or hung."""
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    if channel_layer_breaker().is_open:
        return HealthReport(status="degraded", details={"channel_layer": backend},
                            message="the channel layer is unreachable: live broadcasts are dropped")
    try:
        seconds = async_to_sync(_round_trip)()
    except Exception as error:  # unreachable, refused, timed out: the layer cannot carry live events
        return HealthReport(status="degraded", details={"channel_layer": backend},
                            message=f"the channel layer did not carry a message: {type(error).__name__}: {error}"[:300])
    return HealthReport(status="ok", details={"channel_layer": backend, "round_trip_ms": round(seconds * 1000, 1)})
