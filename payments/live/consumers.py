"""The live WebSocket: one connection multiplexes every topic of the registry (modules.topics):
authentication, subscribe/unsubscribe/ping, per-topic authorization, snapshots and the delivery of
committed changes. `/ws/` is the endpoint; `/ws/payments/` serves existing clients with the same
protocol. Documented in docs/websocket.md."""

import asyncio
import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils.translation import gettext as _

from core.channels_auth import TOKEN_INVALID, TOKEN_SUBPROTOCOL, token_user
from core.safe_input import UnsafeInput, json_loads_checked
from modules.registry import live_topics
from modules.topics import LIVE_EVENT, Topic, TopicFilters, TopicParamsInvalid, group_customer, group_staff
from payments.live.access import TopicRefused, live_audience, topic_authorize, topic_snapshot
from payments.live.hub import live_hub
from payments.selectors import LiveAudience

# What processes of the previous release send for a payment (no "topic"): still delivered during a rolling
# deploy instead of closing the connection on an unknown message type.
LEGACY_PAYMENT_EVENT = "payment.event"


class CloseCode:
    # No credentials, a bad token, or no `auth` message within WEBSOCKET_AUTH_TIMEOUT seconds.
    UNAUTHENTICATED = 4401
    # A valid user who is neither staff (allowed in) nor a customer's user.
    FORBIDDEN = 4403
    # The client stopped reading: payments.live.hub.LIVE_BACKLOG_LIMIT events waited for it. Reconnect
    # and subscribe again (the snapshots catch up).
    TOO_SLOW = 4408


class BadRequest(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class LiveConsumer(AsyncWebsocketConsumer):
    # Staff must hold this permission to connect at all (None: any staff member; each topic checks its own).
    connect_permission: str | None = None
    audience: LiveAudience | None = None
    user = None
    # topic name -> the connection's filters for it; events are matched against them in memory.
    subscriptions: dict[str, TopicFilters]
    # topic name -> its events that arrived while its snapshot was being read and sent: written after it.
    held: dict[str, list[dict]]
    auth_timer: asyncio.Task | None = None

    async def dispatch(self, message):
        # Channels closes stale database connections before every handler, which costs a thread hop
        # per message. Events never touch the database (every query here goes through
        # database_sync_to_async, which closes stale connections itself), so they skip it.
        if message["type"] in (LIVE_EVENT, LEGACY_PAYMENT_EVENT):
            await self.live_event(message)
        else:
            await super().dispatch(message)

    async def connect(self):
        self.subscriptions, self.held = {}, {}
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
        audience = await database_sync_to_async(live_audience)(user=user, staff_permission=self.connect_permission)
        if audience is None:
            await self.close(code=CloseCode.FORBIDDEN)
            return False
        self.audience, self.user = audience, user
        if self.auth_timer is not None:
            self.auth_timer.cancel()
        return True

    async def disconnect(self, code):
        if self.auth_timer is not None:
            self.auth_timer.cancel()
        for topic in list(getattr(self, "subscriptions", {})):
            await self.leave(topic)

    async def send_json(self, content: dict):
        await self.send(text_data=json.dumps(content))

    async def send_error(self, code: str, message: str):
        await self.send_json({"type": "error", "code": code, "message": message})

    def _parsed(self, text_data) -> dict:
        if text_data is None:
            raise BadRequest("bad_message", _("Send JSON text frames."))
        try:
            # Checked as API bodies are: no NUL or lone surrogate, no NaN, no nesting deep enough to
            # exhaust the stack.
            message = json_loads_checked(text_data)
        except UnsafeInput as error:
            raise BadRequest("malformed_json", error.message) from error
        except ValueError as error:
            raise BadRequest("malformed_json", _("The message is not valid JSON.")) from error
        if not isinstance(message, dict) or not isinstance(message.get("action"), str):
            raise BadRequest("bad_message", _('A message is a JSON object with an "action".'))
        return message

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = self._parsed(text_data)
            handler = {"auth": self.action_auth, "subscribe": self.action_subscribe,
                       "unsubscribe": self.action_unsubscribe, "ping": self.action_ping}.get(message["action"])
            if handler is None:
                raise BadRequest("unknown_action", _("Actions are auth, subscribe, unsubscribe and ping."))
            if handler not in (self.action_auth, self.action_ping) and self.audience is None:
                await self.close(code=CloseCode.UNAUTHENTICATED)
                return
            await handler(message)
        except BadRequest as error:
            await self.send_error(error.code, error.message)

    async def action_ping(self, message: dict):
        await self.send_json({"type": "pong"})

    async def action_auth(self, message: dict):
        if self.audience is not None:
            raise BadRequest("already_authenticated", _("This connection is already authenticated."))
        user = await database_sync_to_async(token_user)(key=message.get("token"))
        if user is None:
            await self.close(code=CloseCode.UNAUTHENTICATED)
            return
        if await self.authenticate(user):
            await self.send_json({"type": "authenticated", "role": "staff" if self.audience.is_staff else "customer"})

    def _topic(self, name) -> Topic:
        topics = live_topics()
        if name not in topics:
            raise BadRequest("unknown_topic", _("Topics are %(topics)s.") % {"topics": ", ".join(sorted(topics))})
        return topics[name]

    async def action_subscribe(self, message: dict):
        topic = self._topic(message.get("topic"))
        try:
            query = await database_sync_to_async(topic_authorize)(topic=topic, user=self.user, audience=self.audience,
                                                                   params=message.get("params"))
        except TopicRefused as error:
            raise BadRequest(error.code, error.message) from error
        except TopicParamsInvalid as error:
            raise BadRequest("bad_params", error.message) from error
        # Joined before the snapshot is read, so no change falls between the two; events arriving
        # meanwhile are held and written after the snapshot (they may repeat what it shows).
        held = self.held.setdefault(topic.name, [])
        try:
            if topic.name not in self.subscriptions:
                await live_hub(self.channel_layer).join(self._group(topic.name), self)
            self.subscriptions[topic.name] = query.filters
            items, total = await database_sync_to_async(topic_snapshot)(topic=topic, query=query)
            await self.send_json({"type": "snapshot", "topic": topic.name, "items": items, "total": total})
        finally:
            await self.release_held(topic.name, held)

    async def release_held(self, topic: str, held: list[dict]):
        # Events that arrive while the held ones are written join the end of the list, so order holds;
        # the hub writes directly again only once the list is empty.
        while held:
            await self.base_send(held.pop(0))
        if self.held.get(topic) is held:
            del self.held[topic]

    async def action_unsubscribe(self, message: dict):
        name = message.get("topic")
        if name is None and len(self.subscriptions) == 1:
            name = next(iter(self.subscriptions))
        topic = self._topic(name)
        await self.leave(topic.name)
        await self.send_json({"type": "unsubscribed", "topic": topic.name})

    def _group(self, topic: str) -> str:
        return group_staff(topic) if self.audience.is_staff else group_customer(topic, self.audience.customer_id)

    async def leave(self, topic: str):
        if self.subscriptions.pop(topic, None) is not None:
            await live_hub(self.channel_layer).leave(self._group(topic), self)

    def live_message(self, event: dict) -> dict | None:
        """The ASGI message that writes a committed change to this connection, or None when the
        connection's filters for the event's topic do not take it: the hot path of the hub
        (payments.live.hub), so no query and no encoding here, only the pre-encoded text."""
        topic = event.get("topic", "payments")
        filters = self.subscriptions.get(topic)
        if filters is None or not filters.matches(event["match"]):
            return None
        message = {"type": "websocket.send", "text": event["text"]}
        held = self.held.get(topic)
        if held is not None:  # its snapshot is on its way: written after it (action_subscribe)
            held.append(message)
            return None
        return message

    async def live_event(self, event: dict):
        """A committed change sent to this connection's own channel rather than through the hub."""
        message = self.live_message(event)
        if message is not None:
            await self.base_send(message)

    async def close_too_slow(self):
        """Called by the hub when the client has stopped reading its events (docs/websocket.md)."""
        await self.close(code=CloseCode.TOO_SLOW)


class PaymentsConsumer(LiveConsumer):
    """/ws/payments/, as existing clients know it: staff need `payments.view_payment` to connect."""

    connect_permission = "payments.view_payment"
