"""Helpers for the admin tests of every app: staff users with chosen permissions, posting an action
the way the changelist does, and a small business built through the services."""

from dataclasses import dataclass, field

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse

from core.admin_tools import APPLY_FIELD
from core.audit import Actor
from credits.models import CreditSource
from credits.services import credit_grant
from payments.providers.manual.services import payment_record_manual
from payments.providers.stripe.models import StripeEvent
from payments.services import payment_refund, subscription_start
from payments.services.credit_pack_orders import credit_pack_order_place
from subscriptions.tests.factories import CustomerFactory, PlanFactory, UserFactory
from usage.services import usage_event_record
from usage.tests.factories import MeterFactory

ACTOR = Actor.system("test")


def staff_user(*permissions: str, username: str = "limited-staff"):
    """An active staff member (not a superuser) holding exactly these "app_label.codename" permissions."""
    user = UserFactory(username=username, is_staff=True)
    for perm in permissions:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def view_permissions(*app_labels: str) -> list[str]:
    """Every view permission of these apps: a staff member who can look at everything."""
    return [f"{p.content_type.app_label}.{p.codename}"
            for p in Permission.objects.filter(content_type__app_label__in=app_labels, codename__startswith="view_")
            .select_related("content_type")]


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def changelist_and_change_page(client, model) -> tuple:
    """The model's changelist and the change page of its first row, as `client` gets them."""
    obj = model.objects.first()
    return client.get(changelist_url(model)), client.get(change_url(obj))


def changelist_after_growth(client, assert_max_num_queries, model):
    """The model's changelist over a large business, after the same page over a small one: the
    `assert_max_num_queries` fixture fails the test if the large page runs more queries than the small one."""
    build_business(2, prefix="small")
    with assert_max_num_queries(12) as small:
        client.get(changelist_url(model))
    build_business(12, prefix="large")
    with assert_max_num_queries(len(small.captured_queries)):
        return client.get(changelist_url(model))


def post_action(client, model, action: str, objects, *, apply: bool = False, follow: bool = True, **data):
    """POST an action as the changelist does; `apply` also confirms its intermediate form."""
    payload = {"action": action, ACTION_CHECKBOX_NAME: [str(o.pk) for o in objects], "index": "0", **data}
    if apply:
        payload[APPLY_FIELD] = "1"
        payload.pop("index")
    return client.post(changelist_url(model), payload, follow=follow)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@dataclass
class Business:
    customers: list = field(default_factory=list)
    subscriptions: list = field(default_factory=list)
    invoices: list = field(default_factory=list)
    payments: list = field(default_factory=list)
    refunds: list = field(default_factory=list)
    meter: object = None


def build_business(size: int, *, prefix: str = "acme") -> Business:
    """`size` customers on a paid plan, each with an invoice; every other one paid by bank transfer and
    partly refunded; credits granted and usage recorded for each; one webhook event per customer."""
    business = Business()
    plan = PlanFactory(code=f"{prefix}-pro", name="Pro", amount=2999, credits_per_period=1000)
    business.meter = MeterFactory(code=f"{prefix}-calls")
    for i in range(size):
        # No login user: hashing a password per customer would dominate the tests' run time.
        customer = CustomerFactory(name=f"{prefix.title()} {i}", email=f"{prefix}{i}@example.com", user=None)
        subscription, invoice = subscription_start(customer=customer, plan=plan, actor=ACTOR, with_trial=False)
        business.customers.append(customer)
        business.subscriptions.append(subscription)
        business.invoices.append(invoice)
        credit_grant(customer=customer, amount=50, source=CreditSource.PROMOTION, actor=ACTOR, reason="welcome")
        usage_event_record(customer=customer, meter=business.meter, idempotency_key=f"{prefix}-{i}")
        StripeEvent.objects.create(event_id=f"evt_{prefix}_{i}", type="payment_intent.succeeded",
                                   payload={"id": f"evt_{prefix}_{i}"})
        if i % 2 == 0:
            payment = payment_record_manual(customer=customer, invoice=invoice, amount=invoice.amount_due,
                                            method="bank_transfer", reference=f"REF-{prefix}-{i}", actor=ACTOR)
            business.payments.append(payment)
            business.refunds.append(payment_refund(payment=payment, amount=100, actor=ACTOR, reason="goodwill"))
            # Paid, so the subscription is active and has a renewal to bill a pack ordered on account.
            credit_pack_order_place(customer=customer, pack="credits-100", actor=ACTOR)
    return business


def action_names(response) -> set[str]:
    """The actions a changelist offers to the user who loaded it."""
    action_form = response.context["action_form"]
    return set() if action_form is None else {name for name, _ in action_form.fields["action"].choices if name}


def _field_values(form) -> dict:
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[form.add_prefix(name)] = "on" if value is True else value
    return data


def change_form_data(response, **changes) -> dict:
    """The POST a browser would send from a rendered change page (its form, every inline formset and
    their management forms), with `changes` applied."""
    data = _field_values(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(_field_values(formset.management_form))
        for form in formset.forms:
            data.update(_field_values(form))
    data.update(changes)
    return data
