"""Staff roles as Django groups: the one place that says which permissions each role holds.

`manage.py seed` creates the groups and sets their permissions to exactly these (adding what is
missing and removing what is not listed), so re-running it brings an edited or older group back to
its definition. Staff get a role by joining its group (admin: Users). The same permissions govern the
admin and the API (subscriptions/api/permissions.py), so a role means the same at both doors.
"""

from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from core.exceptions import InvalidOperation

BILLING_APPS = ("subscriptions", "credits", "usage", "payments")


@dataclass(frozen=True)
class RoleSpec:
    name: str
    description: str
    # Every view permission of these apps...
    views_of: tuple[str, ...] = ()
    # ...except these ("app_label.codename").
    views_except: tuple[str, ...] = ()
    # Further permissions ("app_label.codename").
    permissions: tuple[str, ...] = ()
    # Every permission there is, now and after future migrations (re-seed to pick new ones up).
    everything: bool = False


ROLES: tuple[RoleSpec, ...] = (
    RoleSpec(
        name="administrator",
        description="Everything: the catalog (plans, meters, prices), staff accounts and groups, API tokens.",
        everything=True,
    ),
    RoleSpec(
        name="finance",
        description="Money: one-off invoices (create, finalize), void, mark paid and record manual payments "
                    "(admin and API), refund payments, grant and debit credits, credit pack orders, reprocess "
                    "provider webhook events, outbound webhook endpoints and redeliveries, usage alerts and spend "
                    "caps; sees all billing data and the finance reports.",
        views_of=(*BILLING_APPS, "outbound_webhooks"),
        permissions=(
            "payments.void_invoice", "payments.mark_invoice_paid", "payments.record_manual_payment",
            "payments.change_invoice",  # the notes (metadata) on an invoice
            "payments.add_invoice", "payments.finalize_invoice",  # one-off invoices
            "payments.refund_payment",
            "payments.change_payment",  # a manual payment's reference and notes
            "credits.grant_credits",
            "credits.add_creditledgerentry",  # debits (API)
            "credits.change_creditgrant",  # a grant's description
            "payments.add_creditpackorder", "payments.change_creditpackorder",
            "payments.change_providerevent",  # reprocess a failed webhook event
            "reports.view_reports",  # finance reports: close the month
            # The merchant's integrations: register and fix endpoints, send a delivery again.
            "outbound_webhooks.add_webhookendpoint", "outbound_webhooks.change_webhookendpoint",
            "outbound_webhooks.redeliver_webhookdelivery",
            # Usage alerts and spend caps (a cap refuses a customer's usage: a commercial decision, as credits are);
            # deleting one stays the administrators', as every delete does.
            "usage.add_usagethreshold", "usage.change_usagethreshold",
        ),
    ),
    RoleSpec(
        name="support",
        description="Customers and their subscriptions: add and edit customers, start, change, pause, resume and "
                    "cancel subscriptions, grant goodwill credits, order credit packs; sees billing data but not "
                    "raw provider webhook events. No refunds, voids or debits.",
        views_of=BILLING_APPS,
        views_except=("payments.view_providerevent",),
        permissions=(
            "subscriptions.add_customer", "subscriptions.change_customer",
            "subscriptions.add_subscription", "subscriptions.change_subscription",
            "subscriptions.cancel_subscription", "subscriptions.resume_subscription",
            "credits.grant_credits",
            "payments.add_creditpackorder", "payments.change_creditpackorder",
        ),
    ),
    RoleSpec(
        name="auditor",
        description="Reads everything, changes nothing: all billing data and finance reports, staff accounts, groups "
                    "and the admin's change history. Not API tokens or sessions, which are credentials.",
        views_of=(*BILLING_APPS, "outbound_webhooks", "auth", "admin"),
        permissions=("reports.view_reports",),
    ),
)


@dataclass(frozen=True)
class RolesSeeded:
    created: list[str]
    # Existing groups whose permissions were not exactly their role's.
    updated: list[str]


def _permission_q(labels) -> Q:
    query = Q(pk__in=[])
    for label in labels:
        app_label, codename = label.split(".", 1)
        query |= Q(content_type__app_label=app_label, codename=codename)
    return query


def role_permissions(*, role: RoleSpec) -> set[Permission]:
    """The Permission rows `role` holds; a listed permission that does not exist is an error, not a
    silent gap in someone's access."""
    if role.everything:
        return set(Permission.objects.all())
    listed = {*role.permissions, *role.views_except}
    found = Permission.objects.filter(_permission_q(listed)).select_related("content_type")
    missing = listed - {f"{p.content_type.app_label}.{p.codename}" for p in found}
    missing |= {f"{app}.view_*" for app in role.views_of
                if not Permission.objects.filter(content_type__app_label=app, codename__startswith="view_").exists()}
    if missing:
        raise InvalidOperation(_("Role %(role)r names unknown permissions: %(permissions)s.")
                               % {"role": role.name, "permissions": ", ".join(sorted(missing))},
                               code="unknown_permission")
    views = Permission.objects.filter(content_type__app_label__in=role.views_of, codename__startswith="view_")
    excluded = Permission.objects.filter(_permission_q(role.views_except))
    return set(views.exclude(pk__in=excluded)) | set(Permission.objects.filter(_permission_q(role.permissions)))


@transaction.atomic
def seed_role_groups() -> RolesSeeded:
    """Create each role's group if missing and set its permissions to exactly the role's."""
    created, updated = [], []
    for role in ROLES:
        group, was_created = Group.objects.select_for_update().get_or_create(name=role.name)
        wanted = role_permissions(role=role)
        if was_created:
            created.append(role.name)
        elif set(group.permissions.all()) != wanted:
            updated.append(role.name)
        group.permissions.set(wanted)
    return RolesSeeded(created=created, updated=updated)
