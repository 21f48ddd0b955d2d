"""The payments WebSocket (/ws/payments/): authentication, subscribe/unsubscribe/ping, and delivery of
the events `payments.live.broadcast` sends. The protocol is documented in docs/websocket.md."""

import asyncio
import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from core.channels_auth import TOKEN_INVALID, TOKEN_SUBPROTOCOL, token_user
from core.safe_input import BIGINT_MAX, UnsafeInput, json_loads_checked
from payments.live.broadcast import LAYER_MESSAGE_TYPE, STAFF_GROUP, customer_group, payment_event_data
from payments.models import PaymentMethod, PaymentStatus
from payments.selectors import LiveAudience, PaymentLiveFilters, payment_live_audience, payment_live_snapshot

TOPIC = "payments"
SNAPSHOT_DEFAULT_LIMIT = 50
SNAPSHOT_MAX_LIMIT = 100


class CloseCode:
    # No credentials, a bad token, or no `auth` message within WEBSOCKET_AUTH_TIMEOUT seconds.
    UNAUTHENTICATED = 4401
    # A valid user who is neither staff allowed to view payments nor a customer's user.
    FORBIDDEN = 4403


class BadRequest(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _id_param(params: dict, name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= BIGINT_MAX:
        raise BadRequest("bad_params", f"{name} must be a positive integer id.")
    return value


def _choice_param(params: dict, name: str, choices: list[str]) -> frozenset[str]:
    value = params.get(name)
    if value is None:
        return frozenset()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or any(v not in choices for v in values):
        raise BadRequest("bad_params", f"{name} must be one of {', '.join(choices)}, or a list of them.")
    return frozenset(values)


def parse_subscription(params, audience: LiveAudience) -> tuple[PaymentLiveFilters, int]:
    """Validate a subscribe message's params into filters and a snapshot size."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise BadRequest("bad_params", "params must be an object.")
    unknown = sorted(set(params) - {"status", "method", "invoice", "customer", "limit"})
    if unknown:
        raise BadRequest("bad_params", f"Unknown params: {', '.join(unknown)}.")
    customer_id = _id_param(params, "customer")
    if not audience.is_staff:
        if customer_id is not None:
            # Refused whatever the value, so the answer says nothing about other customers' ids.
            raise BadRequest("bad_params", "customer is a staff filter.")
        customer_id = audience.customer_id
    limit = params.get("limit", SNAPSHOT_DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= SNAPSHOT_MAX_LIMIT:
        raise BadRequest("bad_params", f"limit must be an integer from 0 to {SNAPSHOT_MAX_LIMIT}.")
    filters = PaymentLiveFilters(
        customer_id=customer_id,
        invoice_id=_id_param(params, "invoice"),
        statuses=_choice_param(params, "status", PaymentStatus.values),
        methods=_choice_param(params, "method", PaymentMethod.values),
    )
    return filters, limit


def _snapshot(audience: LiveAudience, filters: PaymentLiveFilters, limit: int) -> dict:
    payments, total = payment_live_snapshot(audience=audience, filters=filters, limit=limit)
    return {"type": "snapshot", "topic": TOPIC, "items": [payment_event_data(p) for p in payments], "total": total}


class PaymentsConsumer(AsyncWebsocketConsumer):
    audience: LiveAudience | None = None
    # Set while subscribed; events are matched against it in memory.
    filters: PaymentLiveFilters | None = None
    group: str | None = None
    auth_timer: asyncio.Task | None = None

    async def dispatch(self, message):
        # Channels closes stale database connections before every handler, which costs a thread hop
        # per message. Events never touch the database (and every query here goes through
        # database_sync_to_async, which closes stale connections itself), so they skip it.
        if message["type"] == LAYER_MESSAGE_TYPE:
            await self.payment_event(message)
        else:
            await super().dispatch(message)

    async def connect(self):
        offered = list(self.scope.get("subprotocols") or [])
        await self.accept(subprotocol=TOKEN_SUBPROTOCOL if TOKEN_SUBPROTOCOL in offered else None)
        if self.scope.get("token_auth") == TOKEN_INVALID:
            await self.close(code=CloseCode.UNAUTHENTICATED)
            return
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            await self.authenticate(user)
        else:
            self.auth_timer = asyncio.ensure_future(self.close_unless_authenticated())

    async def close_unless_authenticated(self):
        await asyncio.sleep(settings.WEBSOCKET_AUTH_TIMEOUT)
        if self.audience is None:
            await self.close(code=CloseCode.UNAUTHENTICATED)

    async def authenticate(self, user) -> bool:
        audience = await database_sync_to_async(payment_live_audience)(user=user)
        if audience is None:
            await self.close(code=CloseCode.FORBIDDEN)
            return False
        self.audience = audience
        if self.auth_timer is not None:
            self.auth_timer.cancel()
        return True

    async def disconnect(self, code):
        if self.auth_timer is not None:
            self.auth_timer.cancel()
        await self.leave_group()

    async def send_json(self, content: dict):
        await self.send(text_data=json.dumps(content))

    async def send_error(self, code: str, message: str):
        await self.send_json({"type": "error", "code": code, "message": message})

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            await self.send_error("bad_message", "Send JSON text frames.")
            return
        try:
            # Checked as API bodies are: no NUL or lone surrogate (a token or filter the database cannot
            # take), no NaN, no nesting deep enough to exhaust the stack.
            message = json_loads_checked(text_data)
        except UnsafeInput as error:
            await self.send_error("malformed_json", error.message)
            return
        except ValueError:
            await self.send_error("malformed_json", "The message is not valid JSON.")
            return
        if not isinstance(message, dict) or not isinstance(message.get("action"), str):
            await self.send_error("bad_message", 'A message is a JSON object with an "action".')
            return
        handler = {
            "auth": self.action_auth,
            "subscribe": self.action_subscribe,
            "unsubscribe": self.action_unsubscribe,
            "ping": self.action_ping,
        }.get(message["action"])
        if handler is None:
            await self.send_error("unknown_action", "Actions are auth, subscribe, unsubscribe and ping.")
            return
        if handler not in (self.action_auth, self.action_ping) and self.audience is None:
            await self.close(code=CloseCode.UNAUTHENTICATED)
            return
        try:
            await handler(message)
        except BadRequest as error:
            await self.send_error(error.code, error.message)

    async def action_ping(self, message: dict):
        await self.send_json({"type": "pong"})

    async def action_auth(self, message: dict):
        if self.audience is not None:
            raise BadRequest("already_authenticated", "This connection is already authenticated.")
        user = await database_sync_to_async(token_user)(key=message.get("token"))
        if user is None:
            await self.close(code=CloseCode.UNAUTHENTICATED)
            return
        if await self.authenticate(user):
            await self.send_json({"type": "authenticated", "role": "staff" if self.audience.is_staff else "customer"})

    async def action_subscribe(self, message: dict):
        if message.get("topic") != TOPIC:
            raise BadRequest("unknown_topic", f'The only topic is "{TOPIC}".')
        filters, limit = parse_subscription(message.get("params"), self.audience)
        group = STAFF_GROUP if self.audience.is_staff else customer_group(self.audience.customer_id)
        if self.group != group:
            await self.channel_layer.group_add(group, self.channel_name)
            self.group = group
        # Joined before the snapshot is read, so no change falls between the two; events queued
        # meanwhile are delivered after the snapshot and may repeat what it shows.
        self.filters = filters
        await self.send_json(await database_sync_to_async(_snapshot)(self.audience, filters, limit))

    async def action_unsubscribe(self, message: dict):
        if message.get("topic", TOPIC) != TOPIC:
            raise BadRequest("unknown_topic", f'The only topic is "{TOPIC}".')
        self.filters = None
        await self.leave_group()
        await self.send_json({"type": "unsubscribed", "topic": TOPIC})

    async def leave_group(self):
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    async def payment_event(self, event: dict):
        """A broadcast from payments.live.broadcast: the hot path, so no query and no encoding here."""
        if self.filters is not None and self.filters.matches(event["match"]):
            await self.send(text_data=event["text"])
