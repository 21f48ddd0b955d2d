"""One pagination everywhere: cursors, because usage events grow to millions of rows and a cursor
page costs the same at row 10 and row 10,000,000 (no COUNT, no OFFSET)."""

from rest_framework.pagination import CursorPagination


class ApiCursorPagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-id"
