"""API views for threat-model interchange: OTM download, OTM and Threat Dragon import."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from garrison.accounts.roles import Capability
from garrison.core.api.errors import PayloadTooLarge
from garrison.core.api.serializers import InputSerializer
from threatmodel import selectors
from threatmodel.interchange import (
    FORMAT_CHOICES,
    MAX_IMPORT_BYTES,
    DocumentTooLarge,
    ImportReport,
    InterchangeError,
    export_otm,
    import_document,
    otm_filename,
    read_document,
)


class ImportInput(InputSerializer):
    """A document to import: ``document`` in a JSON body, or ``file`` in a multipart upload."""

    format = serializers.ChoiceField(choices=FORMAT_CHOICES)
    document = serializers.JSONField(required=False, help_text="The OTM or Threat Dragon model (JSON body).")
    file = serializers.FileField(
        required=False, help_text=f"The model as a JSON file (up to {MAX_IMPORT_BYTES:,} bytes)."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Exactly one of ``document`` and ``file``."""
        if ("document" in attrs) == ("file" in attrs):
            raise serializers.ValidationError(
                {"document": "Send the model either as 'document' in a JSON body or as 'file' in a multipart upload."}
            )
        return attrs


class SystemImportInput(ImportInput):
    """A document to import as a new threat model of the system."""

    title = serializers.CharField(
        max_length=160, required=False, allow_blank=True, default="", help_text="Default: the model's own title."
    )


class UnmappedOutput(serializers.Serializer):
    """Something the import left out, with where it was in the document."""

    path = serializers.CharField()
    reason = serializers.CharField()


class GuessOutput(serializers.Serializer):
    """A value the import chose because the document did not say."""

    path = serializers.CharField()
    value = serializers.CharField()
    reason = serializers.CharField()


class ImportReportOutput(serializers.Serializer):
    """What an import wrote, guessed and left out."""

    format = serializers.CharField()
    threat_model = serializers.IntegerField()
    version = serializers.IntegerField()
    imported = serializers.DictField(child=serializers.IntegerField())
    removed_from_draft = serializers.DictField(child=serializers.IntegerField())
    unmapped = UnmappedOutput(many=True)
    guesses = GuessOutput(many=True)


def _run_import(request: Request, input_class: type[ImportInput], **target: Any) -> Response:
    data = input_class(data=request.data)
    data.is_valid(raise_exception=True)
    fields = dict(data.validated_data)
    upload = fields.pop("file", None)
    field = "file" if upload is not None else "document"
    try:
        if upload is not None:
            if upload.size > MAX_IMPORT_BYTES:
                raise DocumentTooLarge(
                    [
                        {
                            "path": "$",
                            "reason": f"The file is {upload.size:,} bytes, over the "
                            f"{MAX_IMPORT_BYTES:,}-byte import limit.",
                        }
                    ]
                )
            fields["document"] = read_document(upload.read(), name=f"'{upload.name}'")
        report: ImportReport = import_document(actor=request.user, **target, **fields)
    except DocumentTooLarge as error:
        raise PayloadTooLarge(error.messages[0]) from error
    except InterchangeError as error:
        raise exceptions.ValidationError({field: error.messages}) from error
    return Response(ImportReportOutput(report.as_dict()).data, status=status.HTTP_201_CREATED)


class ThreatModelImportView(APIView):
    """Import a document as a new draft of a threat model."""

    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        request={"application/json": ImportInput, "multipart/form-data": ImportInput},
        responses={201: ImportReportOutput},
    )
    def post(self, request: Request, id: int) -> Response:  # noqa: A002
        """Replace the content of a new draft with an OTM or Threat Dragon model (editors); 409 if one is open."""
        threat_model = selectors.threat_model_get(user=request.user, id=id, capability=Capability.EDIT)
        return _run_import(request, ImportInput, threat_model=threat_model)


class SystemThreatModelImportView(APIView):
    """Import a document as a new threat model of a system."""

    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        request={"application/json": SystemImportInput, "multipart/form-data": SystemImportInput},
        responses={201: ImportReportOutput},
    )
    def post(self, request: Request, id: int) -> Response:  # noqa: A002
        """Create a threat model from an OTM or Threat Dragon model (editors); all or nothing."""
        system = selectors.system_get_by_id(user=request.user, id=id, capability=Capability.EDIT)
        return _run_import(request, SystemImportInput, system=system)


class VersionOtmView(APIView):
    """A version as an Open Threat Model document."""

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT})
    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """Download the version as OTM 0.2.0 JSON."""
        version = selectors.version_get(user=request.user, id=id)
        filename = otm_filename(version)
        return Response(export_otm(version), headers={"Content-Disposition": f'attachment; filename="{filename}"'})
