"""The API's CSV export endpoints (`<list>/export/`): the list's own filters and ordering, every matching
row (no pagination), streamed as `text/csv` (core.exports)."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema

from core.api.errors import error_responses
from core.exports import ExportSpec, csv_export_response


def export_schema(summary: str):
    return extend_schema(
        summary=summary,
        description="Every row the list's filters select (same query parameters as the list, no pagination), "
                    "streamed as CSV in constant memory. Errors are JSON as everywhere.",
        responses={(200, "text/csv"): OpenApiResponse(
            response=OpenApiTypes.STR, description="A CSV file with a header row.",
            examples=[OpenApiExample("CSV", response_only=True, media_type="text/csv",
                                     value="id,status\r\n1,paid\r\n")]),
            **error_responses(400, 401, 403, 429)},
    )


def export_response(*, queryset, spec: ExportSpec):
    return csv_export_response(queryset=queryset, spec=spec, stamp=timezone.now().strftime("%Y%m%dT%H%M%SZ"))
