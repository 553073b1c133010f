"""One error shape for every API failure.

Every 4xx/5xx from the API has this body::

    {"error": {"status": 400, "code": "invalid", "message": "...", "fields": {...}},
     "request_id": "..."}

``fields`` is present only for validation errors and maps field names (or
``non_field_errors``) to lists of messages.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from garrison.core.exceptions import StateConflict
from garrison.core.middleware import current_request_id


class PayloadTooLarge(exceptions.APIException):
    """The request body is larger than the server accepts."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class Conflict(exceptions.APIException):
    """The object's current state does not allow this operation."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object's current state does not allow this operation."
    default_code = "conflict"


def error_body(*, status_code: int, code: str, message: str, fields: dict | None = None) -> dict[str, Any]:
    """Build the one error body."""
    error: dict[str, Any] = {"status": status_code, "code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error, "request_id": current_request_id()}


def error_response(*, status_code: int, code: str, message: str) -> JsonResponse:
    """A plain Django JSON response in the one error shape (for non-DRF handlers)."""
    return JsonResponse(error_body(status_code=status_code, code=code, message=message), status=status_code)


def _flatten(detail: Any) -> Any:
    """Turn DRF ErrorDetail structures into plain strings, lists and dicts."""
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return str(detail)


def _translate(exc: Exception) -> Exception:
    """Map Django's and the services' exceptions onto DRF's so one code path renders them."""
    if isinstance(exc, StateConflict):
        return Conflict(str(exc))
    if isinstance(exc, Http404):
        return exceptions.NotFound("Not found: the object does not exist or you have no access to it.")
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(
            "The request body is larger than the server accepts; send a smaller body or split the batch."
        )
    if isinstance(exc, TooManyFieldsSent):
        return exceptions.ValidationError({"non_field_errors": [str(exc)]})
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            fields = {
                ("non_field_errors" if key == "__all__" else key): messages
                for key, messages in exc.message_dict.items()
            }
            return exceptions.ValidationError(fields)
        return exceptions.ValidationError({"non_field_errors": exc.messages})
    return exc


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF exception handler that renders every error in the one shape."""
    exc = _translate(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handler answers in the same shape
    detail = exc.detail if isinstance(exc, exceptions.APIException) else response.data
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(detail if isinstance(detail, dict) else {"non_field_errors": detail})
        first = next(iter(fields.values()), ["Invalid input."])
        summary = first[0] if isinstance(first, list) and first else str(first)
        message = f"Invalid input: {summary}" if len(fields) == 1 else "Invalid input; see fields for details."
        response.data = error_body(status_code=response.status_code, code="invalid", message=message, fields=fields)
    else:
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        code = codes if isinstance(codes, str) else "error"
        response.data = error_body(status_code=response.status_code, code=code, message=str(_flatten(detail)))
    return response
