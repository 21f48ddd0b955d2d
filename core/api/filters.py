"""Filters every list of the API uses: bounded values, and no existence oracle.

- Instants are bounded and normalised to UTC like BoundedDateTimeField; whole numbers fit the
  column (bigint ids and minor units, 20-digit usage quantities).
- A foreign key is filtered by its id, never looked up: django-filter's default (ModelChoiceFilter)
  answers "Select a valid choice" for an id that does not exist but an empty page for another
  customer's, which tells a customer which ids exist. Here both are the same empty page.

`ApiFilterSet` maps model fields to these filters, and `ApiFilterBackend` makes it the base of the
filtersets DRF builds from `filterset_fields`, so a new list is covered without thinking about it.
"""

from datetime import UTC

import django_filters
from django import forms
from django.db import models
from django.db.models import Q
from django_filters.fields import IsoDateTimeField, RangeField
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.widgets import DateRangeWidget

from core.safe_input import BIGINT_MAX, BIGINT_MIN, DATETIME_RANGE_PROBLEM, datetime_problem


class BoundedIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value):
        try:
            moment = super().to_python(value)
        except OverflowError:  # year 1 with a positive offset, made aware in the current time zone
            moment = None
            problem = DATETIME_RANGE_PROBLEM
        else:
            problem = datetime_problem(moment) if moment is not None else None
        if problem:
            raise forms.ValidationError(problem, code="out_of_range")
        return moment.astimezone(UTC) if moment is not None else None


class BoundedIsoDateTimeRangeField(RangeField):
    widget = DateRangeWidget  # `_after` / `_before`

    def __init__(self, *args, **kwargs):
        super().__init__((BoundedIsoDateTimeField(), BoundedIsoDateTimeField()), *args, **kwargs)


class IdField(forms.IntegerField):
    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=BIGINT_MAX, **kwargs)


class WholeNumberField(forms.IntegerField):
    def __init__(self, **kwargs):
        super().__init__(min_value=BIGINT_MIN, max_value=BIGINT_MAX, **kwargs)


class WholeNumberRangeField(RangeField):
    def __init__(self, *args, **kwargs):
        super().__init__((WholeNumberField(), WholeNumberField()), *args, **kwargs)


# DecimalField(max_digits=20, decimal_places=6): usage quantities.
_QUANTITY_DIGITS = {"max_digits": 20, "decimal_places": 6}


class QuantityField(forms.DecimalField):
    def __init__(self, **kwargs):
        super().__init__(**_QUANTITY_DIGITS, **kwargs)


class QuantityRangeField(RangeField):
    def __init__(self, *args, **kwargs):
        super().__init__((QuantityField(), QuantityField()), *args, **kwargs)


class DateTimeRangeFilter(django_filters.IsoDateTimeFromToRangeFilter):
    """`<name>_after` / `<name>_before`, ISO 8601."""

    field_class = BoundedIsoDateTimeRangeField


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = BoundedIsoDateTimeField


class IdFilter(django_filters.NumberFilter):
    """A related row's id: an id that does not exist and another customer's both match nothing."""

    field_class = IdField

    def get_max_validator(self):
        return None


class WholeNumberFilter(django_filters.NumberFilter):
    field_class = WholeNumberField

    def get_max_validator(self):
        return None


class WholeNumberRangeFilter(django_filters.RangeFilter):
    """`<name>_min` / `<name>_max`, whole numbers (minor units, credits)."""

    field_class = WholeNumberRangeField


class QuantityFilter(django_filters.NumberFilter):
    field_class = QuantityField

    def get_max_validator(self):
        return None


class QuantityRangeFilter(django_filters.RangeFilter):
    field_class = QuantityRangeField


_BY_ID = {"filter_class": IdFilter}

API_FILTER_DEFAULTS = {
    **FILTER_FOR_DBFIELD_DEFAULTS,
    models.AutoField: {"filter_class": IdFilter},
    models.BigAutoField: {"filter_class": IdFilter},
    models.IntegerField: {"filter_class": WholeNumberFilter},
    models.BigIntegerField: {"filter_class": WholeNumberFilter},
    models.SmallIntegerField: {"filter_class": WholeNumberFilter},
    models.PositiveIntegerField: {"filter_class": WholeNumberFilter},
    models.PositiveSmallIntegerField: {"filter_class": WholeNumberFilter},
    models.PositiveBigIntegerField: {"filter_class": WholeNumberFilter},
    models.DecimalField: {"filter_class": QuantityFilter},
    models.DateTimeField: {"filter_class": DateTimeFilter},
    models.ForeignKey: _BY_ID,
    models.OneToOneField: _BY_ID,
}


class ApiFilterSet(django_filters.FilterSet):
    FILTER_DEFAULTS = API_FILTER_DEFAULTS


class ApiFilterBackend(DjangoFilterBackend):
    filterset_base = ApiFilterSet


class NameSearchFilter(django_filters.CharFilter):
    """`?search=` over a model's name-like fields (case-insensitive substring of any of them): the
    lists of models with a name or an email answer a person typing part of one."""

    def __init__(self, *, fields: tuple[str, ...], **kwargs):
        kwargs.setdefault("max_length", 200)
        kwargs.setdefault("help_text", f"Part of the {' or '.join(fields)} (case-insensitive).")
        super().__init__(method=self.search, **kwargs)
        self.search_fields = fields

    def search(self, queryset, name, value):
        if not value:
            return queryset
        condition = Q()
        for field in self.search_fields:
            condition |= Q(**{f"{field}__icontains": value})
        return queryset.filter(condition)
