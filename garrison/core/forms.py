"""Helpers every app's page views use to report service errors on forms and as messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import HttpRequest

from garrison.core.exceptions import StateConflict


def add_service_errors(form: Form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form: field errors on their fields, the rest on the form."""
    if not hasattr(error, "error_dict"):
        for message in error.messages:
            form.add_error(None, message)
        return
    for field, field_messages in error.message_dict.items():
        for message in field_messages:
            form.add_error(field if field in form.fields else None, message)


def run_service(request: HttpRequest, action: Callable[[], Any], success: str, form: Form | None = None) -> bool:
    """Call a service; show success, or its validation or state error (on ``form`` too). True on success."""
    try:
        action()
    except ValidationError as error:
        if form is not None:
            add_service_errors(form, error)
        messages.error(request, " ".join(error.messages))
        return False
    except StateConflict as error:
        messages.error(request, str(error))
        return False
    messages.success(request, success)
    return True


def form_errors_to_messages(request: HttpRequest, form: Form) -> None:
    """Show an invalid form's errors as messages (for forms posted from another page)."""
    for field, errors in form.errors.items():
        label = (form.fields[field].label or field.replace("_", " ")) if field in form.fields else ""
        messages.error(request, f"{str(label).capitalize() + ': ' if label else ''}{' '.join(errors)}")
