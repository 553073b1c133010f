"""Import a threat-model document (OTM or Threat Dragon) into a new draft, all or nothing."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from garrison.audit.services import record
from threatmodel import services
from threatmodel.interchange.otm import parse_otm
from threatmodel.interchange.plan import (
    DocumentTooLarge,
    ImportReport,
    InterchangeError,
    apply_plan,
    clear_version,
)
from threatmodel.interchange.threat_dragon import parse_threat_dragon
from threatmodel.models import System, ThreatModel

MAX_IMPORT_BYTES = 5 * 1024 * 1024

READERS = {"otm": parse_otm, "threat-dragon": parse_threat_dragon}
FORMAT_CHOICES = [("otm", "Open Threat Model (OTM) JSON"), ("threat-dragon", "OWASP Threat Dragon v2 JSON")]


def read_document(raw: bytes, *, name: str = "the file") -> Any:
    """Parse an uploaded JSON document, refusing one over :data:`MAX_IMPORT_BYTES`."""
    if len(raw) > MAX_IMPORT_BYTES:
        raise DocumentTooLarge(
            [
                {
                    "path": "$",
                    "reason": f"{name} is {len(raw):,} bytes, over the {MAX_IMPORT_BYTES:,}-byte import limit; "
                    "split the model or remove diagrams and attachments.",
                }
            ]
        )
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InterchangeError(
            [{"path": "$", "reason": f"{name} is not JSON ({exc}); export the model as JSON."}]
        ) from exc


@transaction.atomic
def import_document(
    *,
    actor: Any,
    format: str,  # noqa: A002 - the API's parameter name
    document: Any,
    threat_model: ThreatModel | None = None,
    system: System | None = None,
    title: str = "",
) -> ImportReport:
    """Import ``document`` as a new draft of ``threat_model``, or as a new threat model of ``system``.

    The document is read completely before anything is written; any problem then
    rolls the whole import back. A new draft of an existing threat model starts as
    a copy of the latest version, so its copied elements are removed first.
    """
    if (threat_model is None) == (system is None):
        raise TypeError("import_document needs exactly one of threat_model or system")
    if format not in READERS:
        raise InterchangeError([{"path": "format", "reason": f"Unknown format '{format}'; use otm or threat-dragon."}])
    report = ImportReport(format=format)
    plan = READERS[format](document, report)
    if threat_model is not None:
        version = services.version_start_draft(actor=actor, threat_model=threat_model)
        clear_version(actor=actor, version=version, report=report)
    else:
        title = (title or plan.title or f"{system.name} threat model (imported)").strip()
        if ThreatModel.objects.filter(system=system, title=title).exists():
            raise ValidationError(
                {"title": f"{system.name} already has a threat model called '{title}'; give the import another title."}
            )
        threat_model = services.threat_model_create(actor=actor, system=system, title=title)
        version = threat_model.versions.get()
    apply_plan(actor=actor, version=version, plan=plan, report=report)
    report.threat_model_id, report.version_id = threat_model.pk, version.pk
    summary = report.as_dict()
    record(
        actor=actor,
        verb="threat_model_version.import",
        obj=version,
        team_id=threat_model.system.team_id,
        changes={
            "format": [None, format],
            "imported": [None, summary["imported"]],
            "unmapped": [None, len(report.unmapped)],
            "guesses": [None, len(report.guesses)],
        },
    )
    return report
