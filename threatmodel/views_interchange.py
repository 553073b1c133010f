"""Pages for threat-model interchange: download a version as OTM, import an OTM or Threat Dragon file."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from garrison.accounts.roles import Capability
from garrison.core.exceptions import StateConflict
from threatmodel import selectors
from threatmodel.interchange import (
    FORMAT_CHOICES,
    MAX_IMPORT_BYTES,
    DocumentTooLarge,
    InterchangeError,
    export_otm,
    import_document,
    otm_filename,
    read_document,
)
from threatmodel.models import ThreatModelVersion


class ImportForm(forms.Form):
    """Upload a threat model file."""

    format = forms.ChoiceField(choices=FORMAT_CHOICES, initial="otm")
    file = forms.FileField(help_text=f"A JSON file of at most {MAX_IMPORT_BYTES // (1024 * 1024)} MB.")
    title = forms.CharField(
        max_length=160, required=False, help_text="Title of the new threat model; default: the file's own title."
    )

    def __init__(self, *args: Any, new_threat_model: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not new_threat_model:
            del self.fields["title"]


@login_required
def version_export_otm(request: HttpRequest, pk: int) -> HttpResponse:
    """Download a version as an Open Threat Model (OTM 0.2.0) JSON file."""
    version = selectors.version_get(user=request.user, id=pk)
    response = HttpResponse(json.dumps(export_otm(version), indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{otm_filename(version)}"'
    return response


@login_required
def import_form(request: HttpRequest, threat_model_id: int | None = None, system_id: int | None = None) -> HttpResponse:
    """Upload an OTM or Threat Dragon file as a new draft (or a new threat model) and show the import report."""
    if threat_model_id is not None:
        threat_model = selectors.threat_model_get(user=request.user, id=threat_model_id, capability=Capability.EDIT)
        system, target = threat_model.system, {"threat_model": threat_model}
    else:
        threat_model = None
        system = selectors.system_get_by_id(user=request.user, id=system_id, capability=Capability.EDIT)
        target = {"system": system}
    form = ImportForm(request.POST or None, request.FILES or None, new_threat_model=threat_model is None)
    report, version = None, None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if upload.size > MAX_IMPORT_BYTES:
                raise DocumentTooLarge(
                    [
                        {
                            "path": "$",
                            "reason": f"The file is {upload.size:,} bytes, over the {MAX_IMPORT_BYTES:,}-byte limit.",
                        }
                    ]
                )
            document = read_document(upload.read(), name=f"'{upload.name}'")
            extra = {"title": form.cleaned_data.get("title") or ""} if threat_model is None else {}
            result = import_document(
                actor=request.user, format=form.cleaned_data["format"], document=document, **target, **extra
            )
        except InterchangeError as error:
            for message in error.messages:
                form.add_error("file", message)
        except ValidationError as error:
            for message in error.messages:
                form.add_error(None, message)
        except StateConflict as error:
            form.add_error(None, str(error))
        else:
            report = result.as_dict()
            version = ThreatModelVersion.objects.select_related("threat_model").get(pk=result.version_id)
    return render(
        request,
        "threatmodel/interchange/import_form.html",
        {"form": form, "system": system, "threat_model": threat_model, "report": report, "version": version},
        status=400 if form.errors else 200,
    )
