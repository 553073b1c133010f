"""Pages for model and dataset registries, evaluation runs (with live progress) and schedules."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from evaluations import schedules, selectors, services
from evaluations.configs import available_kinds
from evaluations.forms import DatasetUploadForm, ModelUploadForm, RunFilterForm, RunForm, ScheduleForm
from evaluations.models import Dataset, DatasetKind, EvaluationRun, RunKind, ScanStatus
from evaluations.presentation import run_charts
from evaluations.storage import UploadTooLarge
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import capabilities_in
from threatmodel.selectors import system_get_by_id, system_list


def _form_errors(form: Any, error: ValidationError) -> None:
    for field, field_messages in getattr(error, "message_dict", {"__all__": error.messages}).items():
        for message in field_messages:
            form.add_error(field if field in form.fields else None, message)


def _resolve_dataset(*, user: Any, system: Any, value: str) -> Dataset | None:
    if not value:
        return None
    if value.startswith("ref:"):
        return services.dataset_register_reference(actor=user, system=system, reference_name=value[4:])
    return selectors.dataset_get(user=user, id=int(value))


@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    """All runs the user can see, with filters."""
    systems = system_list(user=request.user)
    form = RunFilterForm(request.GET or None, systems=systems)
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    runs = selectors.evaluation_run_list(
        user=request.user,
        system_id=filters.get("system"),
        kind=filters.get("kind") or "",
        status=filters.get("status") or "",
    )
    page = Paginator(runs, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "evaluations/run_list.html",
        {"form": form, "page": page, "query": query.urlencode(), "systems": systems},
    )


@login_required
def system_registry(request: HttpRequest, system_id: int) -> HttpResponse:
    """A system's model versions, datasets, schedules and recent runs."""
    system = system_get_by_id(user=request.user, id=system_id)
    can_submit = Capability.SUBMIT_EVALUATIONS in capabilities_in(request.user, system.team_id)
    return render(
        request,
        "evaluations/system_registry.html",
        {
            "system": system,
            "models": selectors.model_artifact_list(user=request.user, system_id=system.pk),
            "datasets": selectors.dataset_list(user=request.user, system_id=system.pk),
            "schedules": selectors.evaluation_schedule_list(user=request.user, system_id=system.pk),
            "runs": selectors.evaluation_run_list(user=request.user, system_id=system.pk)[:10],
            "can_submit": can_submit,
            "model_form": ModelUploadForm(),
            "dataset_form": DatasetUploadForm(),
        },
    )


@login_required
def model_upload(request: HttpRequest, system_id: int) -> HttpResponse:
    """Upload a model version to a system."""
    system = system_get_by_id(user=request.user, id=system_id, capability=Capability.SUBMIT_EVALUATIONS)
    form = ModelUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            artifact = services.model_artifact_upload(
                actor=request.user,
                system=system,
                file=data.pop("file"),
                format=data.pop("format"),
                input_shape=data.pop("input_shape"),
                input_bounds=data.pop("input_bounds"),
                class_names=data.pop("class_names"),
                architecture=data.pop("architecture") or "",
                hyperparams=data.pop("hyperparams") or {},
                name=data.pop("name") or "",
            )
        except (ValidationError, UploadTooLarge) as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Uploaded model v{artifact.version}; it is being scanned.")
            return redirect(artifact)
    return render(
        request,
        "evaluations/upload_form.html",
        {"form": form, "system": system, "what": "model version"},
        status=400 if form.errors else 200,
    )


@login_required
def dataset_upload(request: HttpRequest, system_id: int) -> HttpResponse:
    """Upload a dataset to a system."""
    system = system_get_by_id(user=request.user, id=system_id, capability=Capability.SUBMIT_EVALUATIONS)
    form = DatasetUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            dataset = services.dataset_upload(
                actor=request.user,
                system=system,
                file=data["file"],
                name=data["name"],
                kind=data["kind"],
                label_column=data["label_column"],
            )
        except (ValidationError, UploadTooLarge) as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Uploaded {dataset}; a worker is reading it.")
            return redirect("evaluations:system-registry", system_id=system.pk)
    return render(
        request,
        "evaluations/upload_form.html",
        {"form": form, "system": system, "what": "dataset"},
        status=400 if form.errors else 200,
    )


@login_required
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A model version: input spec, scan verdict, lineage and runs."""
    artifact = selectors.model_artifact_get(user=request.user, id=pk)
    return render(
        request,
        "evaluations/model_detail.html",
        {
            "artifact": artifact,
            "runs": selectors.evaluation_run_list(user=request.user, model_id=artifact.pk)[:20],
            "children": artifact.children.all(),
            "scan_json": json.dumps(artifact.scan_report, indent=2),
        },
    )


@login_required
def run_create(request: HttpRequest, system_id: int) -> HttpResponse:
    """Start an evaluation run on one of the system's clean models."""
    system = system_get_by_id(user=request.user, id=system_id, capability=Capability.SUBMIT_EVALUATIONS)
    models = selectors.model_artifact_list(user=request.user, system_id=system.pk)
    datasets = selectors.dataset_list(user=request.user, system_id=system.pk).exclude(kind=DatasetKind.REFERENCE)
    initial = {"kind": RunKind.ROBUSTNESS, "model": request.GET.get("model")}
    form = RunForm(request.POST or None, initial=initial, models=models, datasets=datasets, kinds=available_kinds())
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            model = selectors.model_artifact_get(user=request.user, id=data["model"])
            dataset = _resolve_dataset(user=request.user, system=system, value=data["dataset"])
            run = services.evaluation_run_queue(
                actor=request.user,
                system=system,
                kind=data["kind"],
                model_artifact=model,
                dataset=dataset,
                config=data["config"] or {},
            )
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Queued {run}.")
            return redirect(run)
    return render(
        request, "evaluations/run_form.html", {"form": form, "system": system}, status=400 if form.errors else 200
    )


@login_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A run: live progress while it runs, then charts, flags and provenance."""
    run = selectors.evaluation_run_get(user=request.user, id=pk)
    caps = capabilities_in(request.user, run.system.team_id)
    return render(
        request,
        "evaluations/run_detail.html",
        {
            "run": run,
            "can_submit": Capability.SUBMIT_EVALUATIONS in caps,
            "charts": run_charts(run),
            "config_json": json.dumps(run.config, indent=2),
            "repro_json": json.dumps(run.reproducibility, indent=2),
            "others": selectors.evaluation_run_list(user=request.user, system_id=run.system_id, kind=run.kind).exclude(
                pk=run.pk
            )[:10],
        },
    )


@login_required
def run_status(request: HttpRequest, pk: int) -> JsonResponse:
    """The small JSON the run page polls about once a second."""
    run = selectors.evaluation_run_get(user=request.user, id=pk)
    return JsonResponse(
        {
            "status": run.status,
            "status_label": run.get_status_display(),
            "finished": run.finished,
            "progress": run.progress,
            "stage": run.stage,
            "eta_seconds": run.eta_seconds,
            "cancel_requested": run.cancel_requested,
            "error_message": run.error_message,
        }
    )


@login_required
@require_POST
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel a run from its page."""
    run = selectors.evaluation_run_get(user=request.user, id=pk, capability=Capability.SUBMIT_EVALUATIONS)
    try:
        services.evaluation_run_cancel(actor=request.user, run=run)
    except services.RunConflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Cancellation requested.")
    return redirect(run)


@login_required
def run_artifact(request: HttpRequest, pk: int, artifact_id: int) -> FileResponse:
    """Download a file a run produced."""
    run = selectors.evaluation_run_get(user=request.user, id=pk)
    artifact = run.artifacts.filter(pk=artifact_id).select_related("blob").first()
    if artifact is None:
        raise Http404("No such file for this run.")
    return FileResponse(
        artifact.blob.path.open("rb"), as_attachment=True, filename=artifact.name, content_type=artifact.content_type
    )


@login_required
def run_compare(request: HttpRequest) -> HttpResponse:
    """Two runs side by side (e.g. a model and its hardened version)."""
    try:
        ids = [int(request.GET["a"]), int(request.GET["b"])]
    except (KeyError, ValueError) as exc:
        raise Http404("Pick two runs to compare (?a=ID&b=ID).") from exc
    runs = [selectors.evaluation_run_get(user=request.user, id=run_id) for run_id in ids]
    from evaluations.presentation import comparison_chart

    return render(
        request,
        "evaluations/run_compare.html",
        {"runs": runs, "pairs": [(run, run_charts(run)) for run in runs], "chart": comparison_chart(runs)},
    )


@login_required
def schedule_edit(request: HttpRequest, system_id: int | None = None, pk: int | None = None) -> HttpResponse:
    """Create or edit a recurring evaluation of a system."""
    schedule = None
    if pk is not None:
        schedule = selectors.evaluation_schedule_get(user=request.user, id=pk, capability=Capability.SUBMIT_EVALUATIONS)
        system = schedule.system
    else:
        system = system_get_by_id(user=request.user, id=system_id, capability=Capability.SUBMIT_EVALUATIONS)
    datasets = selectors.dataset_list(user=request.user, system_id=system.pk).exclude(kind=DatasetKind.REFERENCE)
    initial: dict[str, Any] = {"enabled": True}
    if schedule is not None:
        initial = {
            "name": schedule.name,
            "kind": schedule.kind,
            "config": schedule.config,
            "crontab": schedule.crontab,
            "run_on_new_model": schedule.run_on_new_model,
            "enabled": schedule.enabled,
            "dataset": (
                f"ref:{schedule.dataset.reference_name}"
                if schedule.dataset and schedule.dataset.kind == DatasetKind.REFERENCE
                else str(schedule.dataset_id or "")
            ),
        }
    form = ScheduleForm(request.POST or None, initial=initial, datasets=datasets, kinds=available_kinds())
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            data["dataset"] = _resolve_dataset(user=request.user, system=system, value=data["dataset"])
            data["config"] = data["config"] or {}
            schedules.evaluation_schedule_save(actor=request.user, system=system, schedule=schedule, **data)
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, "Schedule saved.")
            return redirect("evaluations:system-registry", system_id=system.pk)
    return render(
        request,
        "evaluations/schedule_form.html",
        {"form": form, "system": system, "schedule": schedule},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def schedule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a schedule."""
    schedule = selectors.evaluation_schedule_get(user=request.user, id=pk, capability=Capability.SUBMIT_EVALUATIONS)
    system_id = schedule.system_id
    schedules.evaluation_schedule_delete(actor=request.user, schedule=schedule)
    messages.success(request, "Schedule deleted.")
    return redirect("evaluations:system-registry", system_id=system_id)


__all__ = ["EvaluationRun", "ScanStatus"]
