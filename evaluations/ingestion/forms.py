"""Forms of the ingestion pages."""

from __future__ import annotations

from django import forms

from evaluations.ingestion.models import Decision, IngestionPolicy, PolicyMode


class PolicyCreateForm(forms.Form):
    """Put one of the system's datasets under ingestion."""

    dataset = forms.TypedChoiceField(coerce=int, label="Dataset version to use as the accepted base")
    mode = forms.ChoiceField(choices=PolicyMode.choices, initial=PolicyMode.REQUIRE_APPROVAL)
    max_batch_records = forms.IntegerField(min_value=1, max_value=1_000_000, initial=10_000)
    open_incident_on_poison = forms.BooleanField(
        required=False, initial=True, label="Open an incident when the poison scan flags records"
    )

    def __init__(self, *args, datasets=(), **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.fields["dataset"].choices = [(d.pk, f"{d.name} v{d.version} ({d.get_kind_display()})") for d in datasets]


class PolicyForm(forms.ModelForm):
    """Change a governed dataset's decision policy."""

    class Meta:
        model = IngestionPolicy
        fields = ["mode", "max_batch_records", "open_incident_on_poison"]


class DecisionForm(forms.Form):
    """An approver's decision on a held batch."""

    decision = forms.ChoiceField(
        choices=[c for c in Decision.choices if c[0] != Decision.AUTO_ACCEPT], widget=forms.RadioSelect
    )
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class BatchUploadForm(forms.Form):
    """Push a batch file from the browser (the API is the pipeline's way)."""

    file = forms.FileField(help_text="TSV (label<TAB>text), CSV with the dataset's header, or npz (x, y).")


class BatchFilterForm(forms.Form):
    """Filters of the batch list."""

    status = forms.ChoiceField(required=False)

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        from evaluations.ingestion.models import BatchStatus

        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", "Any status"), *BatchStatus.choices]
