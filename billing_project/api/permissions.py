"""Who may do what through the API. Scoping (a customer sees only its own rows) is done by each
view's queryset, so another customer's id is a 404; these classes add staff and plan-feature gates."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from billing_project.api.client import api_client_for


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
                self.message = "This user is not linked to a customer account."
            elif client.plan_code is None:
                self.message = (f"You have no active subscription; subscribe to a plan that includes the "
                                f"{feature} feature.")
            else:
                self.message = (f"Your plan ({client.plan_name}) does not include the {feature} feature; "
                                f"change to a plan that does.")
            return False

    _HasPlanFeature.__name__ = f"HasPlanFeature_{feature}"
    return _HasPlanFeature


class IsStaffOrReadOnly(BasePermission):
    message = "Only staff may change this."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or bool(request.user and request.user.is_staff)


class IsStaff(BasePermission):
    message = "This action is for staff only."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_staff)


class IsStaffForObject(BasePermission):
    """Staff-only detail actions: checked after the object lookup, so another customer's id is still
    a 404 (never revealing that it exists) and the caller's own object is a 403."""

    message = "This action is for staff only."

    def has_permission(self, request, view) -> bool:
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        return bool(request.user and request.user.is_staff)
