from rest_framework import serializers

from core.api.fields import BoundedDateTimeField, MinorUnitsField, ObjectIdField
from core.safe_input import BIGINT_MAX
from credits.models import DEFAULT_GRANT_PRIORITY, CreditGrant, CreditLedgerEntry, CreditSource
from credits.services import CreditWrite


class NextRefillSerializer(serializers.Serializer):
    at = serializers.DateTimeField(help_text="When the current period ends and the plan refills.")
    credits = serializers.IntegerField()


class CreditBalanceSerializer(serializers.Serializer):
    customer = serializers.IntegerField()
    balance = serializers.IntegerField(help_text="Credits available now (sum of the ledger).")
    purchased = serializers.IntegerField(help_text="Credits bought (credit packs), ever.")
    granted = serializers.IntegerField(help_text="Credits granted otherwise (plan refills, promotions, staff).")
    used = serializers.IntegerField(help_text="Credits spent, net of refunded debits.")
    expired = serializers.IntegerField()
    adjusted = serializers.IntegerField(help_text="Ledger adjustments; balance = purchased + granted - used - "
                                                  "expired + adjusted.")
    used_this_period = serializers.IntegerField(help_text="Spent in the current subscription period.")
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    next_refill = NextRefillSerializer(allow_null=True, help_text="The refill the next renewal grants, if any.")


class CustomerQuerySerializer(serializers.Serializer):
    customer = ObjectIdField(required=False, help_text="Staff only: which customer.")


class CreditLedgerEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = CreditLedgerEntry
        fields = ["id", "customer", "kind", "amount", "balance_after", "grant", "reason", "actor_label",
                  "idempotency_key", "created_at"]
        read_only_fields = fields


class CreditGrantSerializer(serializers.ModelSerializer):
    class Meta:
        model = CreditGrant
        fields = ["id", "customer", "amount", "remaining", "priority", "source", "effective_at", "expires_at",
                  "expired_at", "description", "created_at"]
        read_only_fields = fields


class CreditGrantCreateSerializer(serializers.Serializer):
    customer = ObjectIdField()
    amount = MinorUnitsField()
    source = serializers.ChoiceField(choices=CreditSource.choices, default=CreditSource.PROMOTION)
    priority = serializers.IntegerField(min_value=0, max_value=32767, default=DEFAULT_GRANT_PRIORITY,
                                        help_text="Lower is spent first.")
    effective_at = BoundedDateTimeField(required=False, allow_null=True)
    expires_at = BoundedDateTimeField(required=False, allow_null=True)
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class CreditDebitSerializer(serializers.Serializer):
    amount = MinorUnitsField()
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
    idempotency_key = serializers.CharField(
        max_length=200, required=False, allow_null=True, default=None,
        help_text="Repeating a debit with the same key takes the credits once (kept forever, unlike the header).")
    customer = ObjectIdField(required=False, help_text="Staff only: whose credits to take.")


def _plain_text(value, *, max_length: int) -> bool:
    """A string CharField keeps as it is: not blank, ASCII (so no surrogates), no NUL, no surrounding
    whitespace to trim, within the length."""
    return (type(value) is str and 0 < len(value) <= max_length and value.isascii() and "\x00" not in value
            and value.strip() == value)


def _whole_in_range(value) -> bool:
    return type(value) is int and 1 <= value <= BIGINT_MAX


def credit_debit_plain(data) -> dict | None:
    """CreditDebitSerializer's validated_data for a body of the common plain shape (a JSON object whose
    fields are whole numbers in range and ASCII strings with nothing to trim), which the serializer would
    return as it is; None for any other body."""
    if type(data) is not dict:
        return None
    amount, reason = data.get("amount"), data.get("reason", "")
    key, customer = data.get("idempotency_key"), data.get("customer")
    if not (_whole_in_range(amount) and (reason == "" or _plain_text(reason, max_length=500))
            and (key is None or _plain_text(key, max_length=200))
            and ("customer" not in data or _whole_in_range(customer))):
        return None
    validated = {"amount": amount, "reason": reason, "idempotency_key": key}
    if "customer" in data:
        validated["customer"] = customer
    return validated


def credit_debit_validated(data) -> dict:
    """CreditDebitSerializer's validated_data, or its 400. A plain body (`credit_debit_plain`) is taken as it
    is; anything else goes through the serializer, so every error (and every conversion: "5", 5.0, padded
    text) is the serializer's own. Building the serializer's fields cost a tenth of a debit request's CPU;
    credits/tests/test_api.py pins the two equal over many bodies."""
    validated = credit_debit_plain(data)
    if validated is not None:
        return validated
    serializer = CreditDebitSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class CreditWriteSerializer(serializers.Serializer):
    entry = CreditLedgerEntrySerializer()
    balance = serializers.IntegerField()
    replayed = serializers.BooleanField(help_text="True when the idempotency key was used before: nothing was "
                                                  "taken this time.")


# DRF's own datetime rendering (time zone, format setting), shared by every call below.
_DATETIME = serializers.DateTimeField()


def credit_write_data(write: CreditWrite) -> dict:
    """CreditWriteSerializer's output, built directly: the debit answers it on every call, and the nested
    ModelSerializer built its fields anew per response (about a fifth of a debit request's CPU). The
    serializer stays the documented shape; credits/tests/test_api.py pins the two equal."""
    entry = write.entry
    return {
        "entry": {"id": entry.pk, "customer": entry.customer_id, "kind": entry.kind, "amount": entry.amount,
                  "balance_after": entry.balance_after, "grant": entry.grant_id, "reason": entry.reason,
                  "actor_label": entry.actor_label, "idempotency_key": entry.idempotency_key,
                  "created_at": _DATETIME.to_representation(entry.created_at)},
        "balance": write.balance,
        "replayed": write.replayed,
    }
