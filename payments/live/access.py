"""Who may read which live topic (run in Channels' database thread)."""

from django.contrib.auth.models import AbstractBaseUser
from django.utils.translation import gettext as _

from modules.registry import module_definition
from modules.selectors import module_enabled
from modules.topics import Topic, TopicQuery, topic_params_parse
from payments.selectors import LiveAudience
from subscriptions.api.client import api_client_for
from subscriptions.models import Customer

LIVE_MODULE = "live"


class TopicRefused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def live_audience(*, user: AbstractBaseUser, staff_permission: str | None) -> LiveAudience | None:
    """Staff (holding `staff_permission` when one is named) see every customer's objects; a customer's
    user its own; anyone else nothing (None)."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_staff and (staff_permission is None or user.has_perm(staff_permission)):
        return LiveAudience(is_staff=True)
    customer_id = Customer.objects.filter(user=user).values_list("pk", flat=True).first()
    if customer_id is None:
        return None
    return LiveAudience(is_staff=False, customer_id=customer_id)


def topic_authorize(*, topic: Topic, user: AbstractBaseUser, audience: LiveAudience, params) -> TopicQuery:
    """The subscription's query, or TopicRefused: the topic's module (or live updates) is disabled
    (`topic_disabled`), staff lack the topic's view permission or a customer's plan lacks its feature
    (`topic_forbidden`). Params are checked last, so a refused topic says nothing about them."""
    for code in (LIVE_MODULE, topic.module):
        if not module_enabled(code=code):
            raise TopicRefused("topic_disabled", _("The %(topic)s topic is unavailable: the %(module)s module is "
                                                   "disabled.")
                               % {"topic": topic.name, "module": module_definition(code=code).name})
    if audience.is_staff and not user.has_perm(topic.view_permission):
        raise TopicRefused("topic_forbidden", _("You need the %(permission)s permission for %(topic)s.")
                           % {"permission": topic.view_permission, "topic": topic.name})
    if not audience.is_staff and topic.customer_feature is not None \
            and not api_client_for(user=user).has_feature(topic.customer_feature):
        raise TopicRefused("topic_forbidden", _("Your plan does not include the %(feature)s feature (%(topic)s).")
                           % {"feature": topic.customer_feature, "topic": topic.name})
    return topic_params_parse(topic=topic, params=params, customer_id=audience.customer_id)


def topic_snapshot(*, topic: Topic, query: TopicQuery) -> tuple[list[dict], int]:
    return topic.snapshot(query)
