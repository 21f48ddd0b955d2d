"""One pagination everywhere: cursors, because usage events grow to millions of rows and a cursor
page costs the same at row 10 and row 10,000,000 (no COUNT, no OFFSET)."""

from datetime import datetime

from django.core.exceptions import FieldDoesNotExist, ValidationError
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

from core.safe_input import datetime_problem, text_problem


class ApiCursorPagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-id"

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        # A cursor is the client's to send back, so it may be crafted: its position goes into a WHERE
        # clause against the ordering column and must be a value of that column, or the cursor is
        # invalid (404 like any cursor DRF cannot decode) rather than a database error.
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None and not self._position_valid(cursor.position):
            raise NotFound(self.invalid_cursor_message)
        return cursor

    def _position_valid(self, position: str) -> bool:
        if text_problem(position):
            return False
        try:
            field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
        except FieldDoesNotExist:
            return True
        try:
            # Model validation: the type, and the column's range (integers) or digits (decimals).
            value = field.clean(position, None)
        except (ValidationError, ValueError, TypeError, OverflowError):
            return False
        return not (isinstance(value, datetime) and datetime_problem(value))
