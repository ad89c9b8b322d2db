"""The API's page-number pagination, documented as it behaves."""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import PageNumberPagination


class PagePagination(PageNumberPagination):
    """DRF's page numbers: ?page=0, a page past the end or not a number answer 404
    ("Invalid page."), as DRF clients expect. The schema says pages start at 1, and
    leadflow.api.schema documents the 404 on every paginated list."""

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters
