"""API serializers for the model and dataset registry and evaluation runs."""

from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from evaluations.models import (
    Dataset,
    DatasetKind,
    EvaluationRun,
    ModelArtifact,
    ModelFormat,
    ReferenceDataset,
    RunArtifact,
    RunKind,
    RunStatus,
    ScanStatus,
)
from garrison.core.api.serializers import InputSerializer


class JSONValueField(serializers.JSONField):
    """A JSON value given either as JSON (application/json) or as a JSON string (multipart forms)."""

    def to_internal_value(self, data: Any) -> Any:
        """Parse strings as JSON; pass structured values through."""
        if isinstance(data, (str, bytes)):
            try:
                return json.loads(data)
            except ValueError as exc:
                raise serializers.ValidationError(f"Not valid JSON: {exc}.") from exc
        return super().to_internal_value(data)


class ModelArtifactOutput(serializers.ModelSerializer):
    """A registered model version."""

    system = serializers.PrimaryKeyRelatedField(read_only=True)
    sha256 = serializers.CharField(read_only=True)
    size = serializers.IntegerField(read_only=True)
    usable = serializers.BooleanField(read_only=True)
    parent = serializers.PrimaryKeyRelatedField(read_only=True)
    uploaded_by = serializers.CharField(source="uploaded_by_label", read_only=True)

    class Meta:
        model = ModelArtifact
        fields = [
            "id",
            "system",
            "version",
            "name",
            "format",
            "architecture",
            "hyperparams",
            "input_shape",
            "input_bounds",
            "class_names",
            "sha256",
            "size",
            "original_filename",
            "scan_status",
            "scan_message",
            "scan_report",
            "scanned_at",
            "usable",
            "parent",
            "produced_by_run",
            "uploaded_by",
            "created_at",
        ]
        read_only_fields = fields


class ModelUploadInput(InputSerializer):
    """Upload a model version (multipart/form-data; JSON-valued fields as JSON strings)."""

    system = serializers.IntegerField(help_text="Id of the system the model belongs to.")
    file = serializers.FileField(help_text="The model file (TorchScript archive, safetensors or skops).")
    format = serializers.ChoiceField(choices=ModelFormat.choices)
    input_shape = JSONValueField(help_text='Shape of one sample, e.g. "[1, 8, 8]".')
    input_bounds = JSONValueField(help_text='Valid input range, e.g. "[0, 1]".')
    class_names = JSONValueField(help_text='Class names in label order, e.g. "[\\"ham\\", \\"spam\\"]".')
    architecture = serializers.CharField(required=False, allow_blank=True, default="")
    hyperparams = JSONValueField(required=False, default=dict)
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=120)


class ModelFilterInput(InputSerializer):
    """Filters for the model list."""

    system = serializers.IntegerField(required=False)
    scan_status = serializers.ChoiceField(choices=ScanStatus.choices, required=False, default="")
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)


class DatasetOutput(serializers.ModelSerializer):
    """A registered dataset version."""

    system = serializers.PrimaryKeyRelatedField(read_only=True)
    sha256 = serializers.CharField(read_only=True)
    size = serializers.IntegerField(read_only=True)
    uploaded_by = serializers.CharField(source="uploaded_by_label", read_only=True)

    class Meta:
        model = Dataset
        fields = [
            "id",
            "system",
            "name",
            "version",
            "kind",
            "reference_name",
            "label_column",
            "sha256",
            "size",
            "status",
            "status_message",
            "schema",
            "class_balance",
            "source",
            "uploaded_by",
            "created_at",
        ]
        read_only_fields = fields


class DatasetUploadInput(InputSerializer):
    """Upload a dataset file (multipart), or register a reference dataset (no file)."""

    system = serializers.IntegerField()
    name = serializers.CharField(max_length=120, required=False, default="")
    kind = serializers.ChoiceField(choices=DatasetKind.choices)
    file = serializers.FileField(required=False)
    reference_name = serializers.ChoiceField(choices=ReferenceDataset.choices, required=False, default="")
    label_column = serializers.CharField(required=False, allow_blank=True, default="")
    source = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """A reference needs its name; an upload needs a file and a name."""
        if attrs["kind"] == DatasetKind.REFERENCE:
            if not attrs.get("reference_name"):
                raise serializers.ValidationError({"reference_name": "Choose a reference dataset."})
        else:
            if not attrs.get("file"):
                raise serializers.ValidationError({"file": "Upload the dataset file."})
            if not attrs.get("name"):
                raise serializers.ValidationError({"name": "Name the dataset."})
        return attrs


class RunArtifactOutput(serializers.ModelSerializer):
    """A file a run produced."""

    sha256 = serializers.CharField(source="blob_id", read_only=True)
    size = serializers.IntegerField(source="blob.size", read_only=True)

    class Meta:
        model = RunArtifact
        fields = ["id", "kind", "name", "content_type", "sha256", "size", "created_at"]
        read_only_fields = fields


class RunStatusOutput(serializers.ModelSerializer):
    """What a poller needs: status, progress, stage and ETA."""

    finished = serializers.BooleanField(read_only=True)

    class Meta:
        model = EvaluationRun
        fields = [
            "id",
            "kind",
            "status",
            "finished",
            "progress",
            "stage",
            "eta_seconds",
            "attempts",
            "cancel_requested",
            "queued_at",
            "started_at",
            "finished_at",
            "heartbeat_at",
            "error_message",
            "reliable",
        ]
        read_only_fields = fields


class RunOutput(serializers.ModelSerializer):
    """An evaluation run with its results."""

    system = serializers.PrimaryKeyRelatedField(read_only=True)
    model = serializers.PrimaryKeyRelatedField(source="model_artifact", read_only=True)
    dataset = serializers.PrimaryKeyRelatedField(read_only=True)
    finished = serializers.BooleanField(read_only=True)
    artifacts = RunArtifactOutput(many=True, read_only=True)
    produced_models = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    created_by = serializers.CharField(source="created_by_label", read_only=True)

    class Meta:
        model = EvaluationRun
        fields = [
            "id",
            "system",
            "kind",
            "model",
            "dataset",
            "config",
            "status",
            "finished",
            "progress",
            "stage",
            "eta_seconds",
            "queued_at",
            "started_at",
            "finished_at",
            "heartbeat_at",
            "attempts",
            "max_attempts",
            "shards",
            "cancel_requested",
            "metrics",
            "flags",
            "reliable",
            "reproducibility",
            "error_message",
            "error_traceback",
            "engine_seconds",
            "artifacts",
            "produced_models",
            "created_by",
        ]
        read_only_fields = fields


class RunListOutput(serializers.ModelSerializer):
    """A run in a list (results left out)."""

    system = serializers.PrimaryKeyRelatedField(read_only=True)
    model = serializers.PrimaryKeyRelatedField(source="model_artifact", read_only=True)
    dataset = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = EvaluationRun
        fields = [
            "id",
            "system",
            "kind",
            "model",
            "dataset",
            "status",
            "progress",
            "stage",
            "queued_at",
            "started_at",
            "finished_at",
            "reliable",
        ]
        read_only_fields = fields


class RunSubmitInput(InputSerializer):
    """Submit an evaluation run."""

    system = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=RunKind.choices)
    model = serializers.IntegerField(help_text="Id of a clean model version of the system.")
    dataset = serializers.IntegerField(required=False, help_text="Id of a dataset of the system.")
    reference_dataset = serializers.ChoiceField(
        choices=ReferenceDataset.choices, required=False, help_text="A built-in dataset instead of `dataset`."
    )
    config = serializers.DictField(required=False, default=dict, help_text="Kind-specific settings.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """At most one of dataset and reference_dataset."""
        if attrs.get("dataset") and attrs.get("reference_dataset"):
            raise serializers.ValidationError({"reference_dataset": "Give dataset or reference_dataset, not both."})
        return attrs


class RunFilterInput(InputSerializer):
    """Filters for the run list."""

    system = serializers.IntegerField(required=False)
    kind = serializers.ChoiceField(choices=RunKind.choices, required=False, default="")
    status = serializers.ChoiceField(choices=RunStatus.choices, required=False, default="")
    model = serializers.IntegerField(required=False)
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)
