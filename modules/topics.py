"""Live topics: what each module offers over the WebSocket (docs/websocket.md, docs/adding-a-model.md).

An app declares its topics in its `modules.py` as a list `TOPICS`, next to its `MODULES`; the registry
collects them at startup. A topic says who may read it (staff: `view_permission`; a customer: its own
objects, when its plan has `live_updates`), how a subscription's params become filters, and how to read
a snapshot. Its changes are announced with `topic_publish` from `transaction.on_commit`, so only
committed work is sent.
"""

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from core.safe_input import BIGINT_MAX
from modules.topics_sender import LiveEvent, live_event_publish

logger = logging.getLogger(__name__)

# The channel-layer message type every topic's event travels as; consumers route it by its "topic".
LIVE_EVENT = "live.event"
SNAPSHOT_DEFAULT_LIMIT = 50
SNAPSHOT_MAX_LIMIT = 100
EVENT_KINDS = ("created", "updated", "deleted")


class TopicParamsInvalid(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class TopicFilters:
    """A subscription's filters: for each filtered field, the values it accepts (absent: any). The
    snapshot applies them in SQL; events are matched in memory against the fields their broadcast
    carries, so delivering an event costs no query."""

    values: Mapping[str, frozenset] = field(default_factory=dict)

    def matches(self, fields: dict) -> bool:
        return all(fields.get(name) in accepted for name, accepted in self.values.items())


@dataclass(frozen=True)
class TopicQuery:
    # None for staff (every customer unless they filtered one); a customer's id otherwise.
    customer_id: int | None
    filters: TopicFilters
    limit: int


@dataclass(frozen=True)
class Topic:
    name: str
    # The module that owns it: while that module (or `live`) is disabled, subscribing is refused.
    module: str
    # What staff need to subscribe ("app_label.view_model").
    view_permission: str
    # Params a subscription may filter on: name -> the values accepted (choices), or int for an id.
    filters: Mapping[str, tuple[str, ...] | type[int]]
    # (query) -> (items as dicts, newest first, at most query.limit; how many match). Runs in a
    # database thread.
    snapshot: Callable[[TopicQuery], tuple[list[dict], int]]
    # What a customer's plan must include to subscribe (None: any customer, for its own objects).
    customer_feature: str | None = "live_updates"


def group_staff(topic: str) -> str:
    return f"{topic}.staff"


def group_customer(topic: str, customer_id: int) -> str:
    return f"{topic}.customer.{customer_id}"


def _accepted(kind: tuple[str, ...] | type[int], name: str, value) -> frozenset:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise TopicParamsInvalid(_("%(name)s must not be an empty list.") % {"name": name})
    if kind is int:
        if any(isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= BIGINT_MAX for v in values):
            raise TopicParamsInvalid(_("%(name)s must be a positive integer id, or a list of them.") % {"name": name})
    elif any(v not in kind for v in values):
        raise TopicParamsInvalid(_("%(name)s must be one of %(choices)s, or a list of them.")
                                 % {"name": name, "choices": ", ".join(kind)})
    return frozenset(values)


def topic_params_parse(*, topic: Topic, params, customer_id: int | None) -> TopicQuery:
    """A subscribe message's params checked against the topic's filters. A customer's subscription is
    always limited to its own objects; `customer` is a staff filter, refused to customers whatever its
    value (so the answer says nothing about other customers' ids)."""
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise TopicParamsInvalid(_("params must be an object."))
    unknown = sorted(set(params) - {*topic.filters, "customer", "limit"})
    if unknown:
        raise TopicParamsInvalid(_("Unknown params: %(params)s.") % {"params": ", ".join(unknown)})
    values = {name: _accepted(kind, name, params[name]) for name, kind in topic.filters.items() if name in params}
    if customer_id is not None:
        if "customer" in params:
            raise TopicParamsInvalid(_("customer is a staff filter."))
        values["customer"] = frozenset([customer_id])
    elif "customer" in params:
        values["customer"] = _accepted(int, "customer", params["customer"])
    limit = params.get("limit", SNAPSHOT_DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= SNAPSHOT_MAX_LIMIT:
        raise TopicParamsInvalid(_("limit must be an integer from 0 to %(maximum)s.") % {"maximum": SNAPSHOT_MAX_LIMIT})
    return TopicQuery(customer_id=customer_id, filters=TopicFilters(values=values), limit=limit)


def topic_event_message(*, topic: str, kind: str, data: dict, match: dict) -> dict:
    """A channel-layer message: the client's text, encoded once, and the fields filters look at
    (`match` must carry "customer")."""
    return {"type": LIVE_EVENT, "topic": topic, "match": match,
            "text": json.dumps({"type": kind, "topic": topic, "data": data})}


def topic_send(*, topic: str, message: dict, customer_id: int) -> None:
    """Send one event to the topic's staff group and the customer's group, through the process's live
    sender (modules/topics_sender.py): queued at once, sent by its thread, so a failure or a slow Redis
    never reaches the user whose change is already committed."""
    live_event_publish(LiveEvent(groups=(group_customer(topic, customer_id), group_staff(topic)), message=message))


def topic_publish(*, topic: str, kind: str, read: Callable[[], tuple[dict, dict] | None]) -> None:
    """Announce a committed change: `read()` gives the object's (data, match) as committed now, or None
    when there is nothing to say. Call it from `transaction.on_commit`."""
    try:
        found = read()
    except Exception:
        logger.exception("Reading the %s event for %s failed; clients missed it", kind, topic)
        return
    if found is not None:
        data, match = found
        topic_send(topic=topic, message=topic_event_message(topic=topic, kind=kind, data=data, match=match),
                   customer_id=match["customer"])


def topic_filters_apply(queryset, *, query: TopicQuery, fields: Mapping[str, str]):
    """`queryset` narrowed by the subscription's filters; `fields` maps each filter name (and
    "customer") to its ORM lookup."""
    for name, accepted in query.filters.values.items():
        queryset = queryset.filter(**{f"{fields[name]}__in": accepted})
    return queryset
