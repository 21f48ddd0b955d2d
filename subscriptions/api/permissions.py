"""Who may do what through the API.

Scoping (a customer sees only its own rows) is done by each view's queryset, so another customer's id
is a 404. On top of it, `ActionPermissions` holds staff to the same Django permissions the admin
requires, from one declaration per viewset:

    required_permissions = {
        "list": "payments.view_payment",
        "retrieve": "payments.view_payment",
        "refund": StaffOnly("payments.refund_payment"),
    }

Staff need the named permission(s) for the action; customers pass every action except `StaffOnly`
ones, which they are refused. An action with no entry is refused to everyone, so a new endpoint is
closed until someone decides who may use it (billing_project/tests/test_api_permissions.py walks every
endpoint to keep it so).
"""

from collections.abc import Mapping
from dataclasses import dataclass

from django.utils.translation import gettext as _
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.viewsets import ViewSetMixin

from subscriptions.api.client import api_client_for


@dataclass(frozen=True, init=False)
class StaffOnly:
    """An action only staff may take, and only with these permissions ("app_label.codename")."""

    permissions: tuple[str, ...]

    def __init__(self, *permissions: str):
        object.__setattr__(self, "permissions", permissions)


Requirement = str | tuple[str, ...] | StaffOnly


def staff_permissions_of(requirement: Requirement) -> tuple[str, ...]:
    """The Django permissions a staff member needs to meet `requirement`."""
    if isinstance(requirement, StaffOnly):
        return requirement.permissions
    if isinstance(requirement, str):
        return (requirement,)
    return tuple(requirement)


def view_action(view, request) -> str | None:
    """The key of `required_permissions` this request is checked against: the viewset action, or
    the lower-case HTTP method for a plain APIView."""
    if isinstance(view, ViewSetMixin):
        return view.action
    return request.method.lower()


class ActionPermissions(BasePermission):
    """Staff: the declared Django permissions of the action, checked before the object lookup (staff
    see every row, so a 404 would only tell them which ids exist). Customers: `StaffOnly` actions are
    refused; on a detail route that refusal comes after the object lookup, so another customer's id
    is still a 404 and only the caller's own object answers 403."""

    staff_only_message = "This action is for staff only."

    def has_permission(self, request, view) -> bool:
        action = view_action(view, request)
        is_staff = api_client_for(user=request.user).is_staff
        if isinstance(view, ViewSetMixin) and action is None:
            return True  # the method is not routed here: DRF answers 405
        if action in ("metadata", "options"):
            # OPTIONS describes the endpoint: to staff only if they may use something on it.
            declared = getattr(view, "required_permissions", {}).values()
            if not is_staff or any(request.user.has_perms(staff_permissions_of(r)) for r in declared):
                return True
            self.message = "You hold none of the permissions this endpoint needs."
            return False
        requirement = self._requirement(view, action)
        if requirement is None:
            self.message = f"No permission is declared for the {action!r} action; it is closed."
            return False
        if is_staff:
            needed = staff_permissions_of(requirement)
            if request.user.has_perms(needed):
                return True
            self.message = f"You need the {', '.join(needed)} permission for this action."
            return False
        if isinstance(requirement, StaffOnly) and not getattr(view, "detail", False):
            self.message = self.staff_only_message
            return False
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        action = view_action(view, request)
        requirement = self._requirement(view, action)
        if isinstance(requirement, StaffOnly) and not api_client_for(user=request.user).is_staff:
            self.message = self.staff_only_message
            return False
        return True

    @staticmethod
    def _requirement(view, action: str | None) -> Requirement | None:
        declared: Mapping[str, Requirement] = getattr(view, "required_permissions", {})
        return declared.get(action) if action is not None else None


def HasPlanFeature(feature: str) -> type[BasePermission]:  # noqa: N802 - used like a class: HasPlanFeature("x")
    """Permission: the customer's current plan includes `feature` (staff always pass)."""

    class _HasPlanFeature(BasePermission):
        code = "plan_feature_missing"

        def has_permission(self, request, view) -> bool:
            user = request.user
            if not user or not user.is_authenticated:
                return False
            client = api_client_for(user=user)
            if client.has_feature(feature):
                return True
            if client.customer_id is None:
                self.message = _("This user is not linked to a customer account.")
            elif client.plan_code is None:
                self.message = _("You have no active subscription; subscribe to a plan that includes the "
                                 "%(feature)s feature.") % {"feature": feature}
            else:
                self.message = _("Your plan (%(plan)s) does not include the %(feature)s feature; change to a "
                                 "plan that does.") % {"plan": client.plan_name, "feature": feature}
            return False

    _HasPlanFeature.__name__ = f"HasPlanFeature_{feature}"
    return _HasPlanFeature


# The first permission classes of every API view: signed in, then allowed this action.
SIGNED_IN_AND_ALLOWED = (IsAuthenticated, ActionPermissions)
