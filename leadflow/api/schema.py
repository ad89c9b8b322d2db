"""OpenAPI post-processing: the error shape every endpoint answers with, documented once.

drf-spectacular documents only the successes each view declares. Every operation also
answers 401/403 (authentication and permissions), 404 when it addresses an object, and
400 when it takes input, all in the one error shape of leadflow.api.errors; describing
them lets clients (and the schemathesis run in CI) check error bodies too.
"""

from __future__ import annotations

from typing import Any

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
_REF = {"$ref": "#/components/schemas/Error"}
_DESCRIPTIONS = {
    "400": "Invalid input (fields say which).",
    "401": "Not authenticated (no, a wrong or a revoked token).",
    "403": "Authenticated, but not allowed to do this.",
    "404": "No such object, or not one the caller may see.",
    "404-page": "No such page (?page= past the end, or not a page number).",
}
_METHODS = {"get", "post", "put", "patch", "delete"}


def add_error_responses(result: dict, generator: Any, request: Any, public: bool) -> dict:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            codes = ["401", "403"]
            paginated = any(p.get("name") == "page" for p in operation.get("parameters", []))
            if "{" in path or paginated:
                codes.append("404")
            if operation.get("requestBody") or operation.get("parameters"):
                codes.append("400")
            if not operation.get("security") and not _secured_by_default(result):
                codes = [code for code in codes if code not in ("401", "403")]
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(
                    code,
                    {
                        "description": _DESCRIPTIONS[
                            "404-page" if code == "404" and "{" not in path else code
                        ],
                        "content": {"application/json": {"schema": _REF}},
                    },
                )
    return result


def _secured_by_default(result: dict) -> bool:
    return bool(result.get("security"))
