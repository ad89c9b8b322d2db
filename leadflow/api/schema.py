"""The API's schema class: the error answers of every operation, documented in one place.

drf-spectacular documents only the successes each view declares. Every operation also
answers in the one error shape of leadflow.api.errors:

- 401/403: authentication and permissions (any operation with security);
- 404: an addressed object (a path parameter) or a page past the end (?page=);
- 400: malformed input, which the schema itself calls invalid (any operation with input);
- 422: input the schema calls valid that a business rule refuses (a DomainError from a
  service: rejection_incomplete, bant_too_few, handoff_closed, invalid_transition…).
  Every operation with a request body passes it to a service, so those document 422;
  a read that refuses by rule (the metrics' range) says so in `error_statuses`.

A view adds statuses the rules above cannot see with `error_statuses`, keyed by action
(viewsets) or lower-case method: {"get": (404, 422)}. Describing errors lets clients,
and the schemathesis run in CI, check error bodies and statuses too.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "example": "validation_error"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "description": "Problems per input field (or JSON pointer).",
                    "additionalProperties": True,
                },
            },
        }
    },
}
_DESCRIPTIONS = {
    400: "Malformed input: not what the schema allows (fields say which).",
    401: "Not authenticated (no, a wrong or a revoked token).",
    403: "Authenticated, but not allowed to do this.",
    404: "No such object, or not one the caller may see.",
    422: "Valid input refused by a business rule (the code says which, fields where).",
}
_PAGE_NOT_FOUND = "No such page (?page= past the end, or not a page number)."


class AutoSchema(openapi.AutoSchema):
    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        result = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and not field.allow_blank
            and result.get("type") == "string"
            and not {"pattern", "enum", "format"} & result.keys()
        ):
            # DRF refuses "" (and, trimming, "   ") where blanks are not allowed: say so,
            # or the schema calls a 400 valid.
            if field.trim_whitespace:
                result["pattern"] = r"\S"
            else:
                result["minLength"] = max(result.get("minLength", 0), 1)
        return result

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        component = ResolvedComponent(
            name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=ERROR_SCHEMA
        )
        registry.register_on_missing(component)
        responses = operation.setdefault("responses", {})
        for status in sorted(self.error_statuses(path, operation)):
            description = _DESCRIPTIONS[status]
            if status == 404 and "{" not in path:
                description = _PAGE_NOT_FOUND
            responses.setdefault(
                str(status),
                {
                    "description": description,
                    "content": {"application/json": {"schema": component.ref}},
                },
            )
        return operation

    def error_statuses(self, path: str, operation: dict) -> set[int]:
        statuses: set[int] = set()
        parameters = operation.get("parameters", [])
        if operation.get("security"):
            statuses |= {401, 403}
        if "{" in path or any(p.get("name") == "page" for p in parameters):
            statuses.add(404)
        if operation.get("requestBody") or parameters:
            statuses.add(400)
        if operation.get("requestBody"):
            statuses.add(422)
        declared = getattr(self.view, "error_statuses", {})
        key = getattr(self.view, "action", None) or self.method.lower()
        statuses.update(declared.get(key, ()))
        return statuses
