"""API serializers of the ingestion pipeline."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from evaluations.ingestion.models import BatchStatus, DatasetVersionRecord, Decision, IngestionBatch, IngestionPolicy
from garrison.core.api.serializers import InputSerializer


class IngestionBatchPushInput(InputSerializer):
    """Push a batch: JSON ``records`` (application/json), or a ``file`` (multipart: TSV, CSV or npz)."""

    system = serializers.IntegerField(help_text="Id of the system.")
    dataset = serializers.CharField(max_length=120, help_text="Name of the system's governed dataset.")
    records = serializers.JSONField(
        required=False,
        help_text='Text: [{"label": "ham", "text": "..."}]; tabular: one key per column; tensors: {"label", "x"}.',
    )
    file = serializers.FileField(required=False, help_text="A TSV (label<TAB>text), CSV (with header) or npz file.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Exactly one of records and file."""
        if ("records" in attrs) == ("file" in attrs):
            raise serializers.ValidationError(
                {"records": "Send either records (a JSON list) or a file (multipart), not both and not neither."}
            )
        return attrs


class IngestionDecisionInput(InputSerializer):
    """An approver's decision on a held batch."""

    decision = serializers.ChoiceField(choices=[c for c in Decision.choices if c[0] != Decision.AUTO_ACCEPT])
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class IngestionBatchFilterInput(InputSerializer):
    """Filters for the batch list."""

    system = serializers.IntegerField(required=False)
    status = serializers.ChoiceField(choices=BatchStatus.choices, required=False, default="")
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)


class IngestionPolicyFilterInput(InputSerializer):
    """Filters for the governed-dataset list."""

    system = serializers.IntegerField(required=False)
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)


class IngestionBatchListOutput(serializers.ModelSerializer):
    """A batch in a list (no report)."""

    dataset = serializers.CharField(source="policy.dataset_name", read_only=True)
    base = serializers.PrimaryKeyRelatedField(read_only=True)
    produced = serializers.PrimaryKeyRelatedField(read_only=True)
    sha256 = serializers.CharField(source="raw_blob_id", read_only=True, allow_null=True)
    pushed_by = serializers.CharField(source="pushed_by_label", read_only=True)

    class Meta:
        model = IngestionBatch
        fields = [
            "id",
            "system",
            "dataset",
            "status",
            "status_message",
            "error_code",
            "n_records",
            "label_counts",
            "size_bytes",
            "sha256",
            "input_format",
            "base",
            "checks_passed",
            "progress",
            "stage",
            "decision",
            "produced",
            "pushed_by",
            "token_prefix",
            "created_at",
            "checked_at",
            "decided_at",
        ]
        read_only_fields = fields


class IngestionBatchOutput(IngestionBatchListOutput):
    """A batch with its check report and flagged records."""

    decided_by = serializers.CharField(source="decided_by_label", read_only=True)
    flagged = serializers.DictField(read_only=True)

    class Meta(IngestionBatchListOutput.Meta):
        fields = [*IngestionBatchListOutput.Meta.fields, "report", "flagged", "decided_by", "decision_note"]
        read_only_fields = fields


class IngestionPolicyOutput(serializers.ModelSerializer):
    """A governed dataset."""

    class Meta:
        model = IngestionPolicy
        fields = [
            "id",
            "system",
            "dataset_name",
            "format",
            "schema",
            "mode",
            "max_batch_records",
            "open_incident_on_poison",
            "created_at",
        ]
        read_only_fields = fields


class IngestionVersionOutput(serializers.ModelSerializer):
    """Provenance of one accepted version."""

    dataset = serializers.PrimaryKeyRelatedField(read_only=True)
    version = serializers.IntegerField(source="dataset.version", read_only=True)
    sha256 = serializers.CharField(source="dataset.sha256", read_only=True)
    parents = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    batch = serializers.PrimaryKeyRelatedField(read_only=True)
    actor = serializers.CharField(source="actor_label", read_only=True)

    class Meta:
        model = DatasetVersionRecord
        fields = [
            "dataset",
            "version",
            "sha256",
            "parents",
            "batch",
            "source",
            "actor",
            "token_prefix",
            "files",
            "label_counts",
            "n_records",
            "transformation",
            "created_at",
        ]
        read_only_fields = fields
