"""Deployment and consumer-key forms."""

from __future__ import annotations

from typing import Any

from django import forms

from evaluations.serving.models import Deployment


class DeploymentForm(forms.ModelForm):
    """Create or edit a deployment: model version, output policy, limits, monitor and telemetry."""

    class Meta:
        model = Deployment
        fields = list(Deployment.AUDITED_FIELDS)  # every setting a person edits is audited, and only those
        labels = {"model_artifact": "Model version", "log_sample_rate": "Query-log sample rate (0 to 1)"}

    def __init__(self, *args: Any, models: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model_artifact"].queryset = models
        self.fields["model_artifact"].label_from_instance = lambda m: f"v{m.version} {m.name} ({m.scan_status})"

    def _post_clean(self) -> None:
        """Leave model validation to the service (which knows the system)."""


class ConsumerKeyForm(forms.Form):
    """Issue a consumer key."""

    owner = forms.CharField(max_length=120, help_text="Who uses the key.")
    purpose = forms.CharField(max_length=255, required=False)
