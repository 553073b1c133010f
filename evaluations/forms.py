"""Forms for the evaluation pages."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from evaluations.models import DatasetKind, ModelFormat, ReferenceDataset, RunKind, RunStatus


class JSONTextField(forms.CharField):
    """A JSON value typed into a text box."""

    def to_python(self, value: Any) -> Any:
        """Parse the text as JSON ('' is None)."""
        text = super().to_python(value)
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}.") from exc

    def prepare_value(self, value: Any) -> Any:
        """Show structured values as JSON."""
        return value if isinstance(value, str) or value is None else json.dumps(value)


class ModelUploadForm(forms.Form):
    """Upload a model version."""

    file = forms.FileField()
    format = forms.ChoiceField(choices=ModelFormat.choices)
    name = forms.CharField(required=False, max_length=120)
    architecture = forms.CharField(required=False, help_text="safetensors only: small_cnn, mlp, resnet18_cifar, ...")
    hyperparams = JSONTextField(required=False, help_text='safetensors only, e.g. {"in_channels": 1}.')
    input_shape = JSONTextField(help_text="Shape of one sample, e.g. [1, 8, 8].")
    input_bounds = JSONTextField(initial="[0, 1]", help_text="Valid input range [low, high].")
    class_names = JSONTextField(help_text='Class names in label order, e.g. ["0", "1", ...].')


class DatasetUploadForm(forms.Form):
    """Upload a dataset file."""

    name = forms.CharField(max_length=120)
    kind = forms.ChoiceField(choices=[c for c in DatasetKind.choices if c[0] != DatasetKind.REFERENCE])
    file = forms.FileField()
    label_column = forms.CharField(required=False, help_text="CSV only.")


class RunForm(forms.Form):
    """Start an evaluation run."""

    kind = forms.ChoiceField(choices=RunKind.choices)
    model = forms.TypedChoiceField(coerce=int, choices=[])
    dataset = forms.ChoiceField(required=False, choices=[])
    config = JSONTextField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono"}),
        help_text='Kind-specific settings as JSON, e.g. {"attack": "pgd", "epsilons": [0, 0.05, 0.1]}.',
    )

    def __init__(self, *args: Any, models: Any, datasets: Any, kinds: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [c for c in RunKind.choices if c[0] in kinds]
        self.fields["model"].choices = [(m.pk, f"v{m.version} {m.name} ({m.get_format_display()})") for m in models]
        self.fields["dataset"].choices = [
            ("", "No dataset"),
            *[(f"ref:{value}", f"Reference: {label}") for value, label in ReferenceDataset.choices],
            *[(str(d.pk), f"{d.name} v{d.version}") for d in datasets],
        ]


class RunFilterForm(forms.Form):
    """Filters on the runs list."""

    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *RunKind.choices])
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *RunStatus.choices])
    system = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, choices=[])

    def __init__(self, *args: Any, systems: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["system"].choices = [("", "Any system"), *[(s.pk, s.name) for s in systems]]


class ScheduleForm(forms.Form):
    """A recurring evaluation."""

    name = forms.CharField(max_length=120)
    kind = forms.ChoiceField(choices=RunKind.choices)
    dataset = forms.ChoiceField(required=False, choices=[])
    config = JSONTextField(required=False, widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}))
    crontab = forms.CharField(required=False, help_text="minute hour day-of-month month day-of-week, e.g. 0 3 * * 1")
    run_on_new_model = forms.BooleanField(required=False, label="Also run on every new clean model version")
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, datasets: Any, kinds: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [c for c in RunKind.choices if c[0] in kinds]
        self.fields["dataset"].choices = [
            ("", "No dataset"),
            *[(f"ref:{value}", f"Reference: {label}") for value, label in ReferenceDataset.choices],
            *[(str(d.pk), f"{d.name} v{d.version}") for d in datasets],
        ]
