"""Serializer fields that accept only what the database can store (core.safe_input).

Every writable field of the API's serializers is one of these or is bounded by its model column
(ModelSerializer copies the column's range validators): no input reaches PostgreSQL out of range.
"""

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from core.safe_input import BIGINT_MAX, datetime_problem


class BoundedDateTimeField(serializers.DateTimeField):
    """An ISO 8601 instant PostgreSQL stores and Python reads back, normalised to UTC."""

    def to_internal_value(self, value):
        # The offset is checked on the parsed value, before DRF converts it (which overflows for a
        # year-1 date with a positive offset).
        moment = value
        if isinstance(value, str):
            try:
                moment = parse_datetime(value)
            except ValueError:
                moment = None
        if isinstance(moment, datetime) and (problem := datetime_problem(moment)):
            raise serializers.ValidationError(problem, code="out_of_range")
        moment = super().to_internal_value(value)
        return moment.astimezone(UTC) if moment.tzinfo is not None else moment


class ObjectIdField(serializers.IntegerField):
    """The id of a row (a bigint primary key): a positive whole number that fits the column."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(**kwargs)


class MinorUnitsField(serializers.IntegerField):
    """An amount in minor units or credits, stored in a bigint column."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(**kwargs)


class JSONObjectField(serializers.JSONField):
    """A JSON object (metadata): null, lists, strings and numbers are refused, not stored."""

    default_error_messages = {"not_an_object": "A JSON object is required."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_an_object")
        return value
