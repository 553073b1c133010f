"""Threat-model interchange: Open Threat Model (OTM) export and import, Threat Dragon v2 import.

Pure functions over the models and the services; the views live in
``threatmodel.api.interchange_views`` and ``threatmodel.views_interchange``.
"""

from __future__ import annotations

from threatmodel.interchange.importer import FORMAT_CHOICES, MAX_IMPORT_BYTES, import_document, read_document
from threatmodel.interchange.otm import OTM_VERSION, export_otm, otm_filename, parse_otm
from threatmodel.interchange.plan import DocumentTooLarge, ImportReport, InterchangeError
from threatmodel.interchange.threat_dragon import parse_threat_dragon

__all__ = [
    "FORMAT_CHOICES",
    "MAX_IMPORT_BYTES",
    "OTM_VERSION",
    "DocumentTooLarge",
    "ImportReport",
    "InterchangeError",
    "export_otm",
    "import_document",
    "otm_filename",
    "parse_otm",
    "parse_threat_dragon",
    "read_document",
]
