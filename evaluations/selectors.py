"""Reads of models, datasets, runs and schedules, scoped to the principal's teams."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from evaluations.models import Dataset, EvaluationRun, EvaluationSchedule, ModelArtifact
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability, team_ids_for


def model_artifact_list(*, user: Any, system_id: int | None = None, scan_status: str = "") -> QuerySet[ModelArtifact]:
    """Model versions in the principal's teams."""
    models = ModelArtifact.objects.filter(system__team_id__in=team_ids_for(user)).select_related(
        "system__team", "blob", "parent", "uploaded_by"
    )
    if system_id:
        models = models.filter(system_id=system_id)
    if scan_status:
        models = models.filter(scan_status=scan_status)
    return models.order_by("system__name", "-version")


def model_artifact_get(*, user: Any, id: int, capability: str = Capability.VIEW) -> ModelArtifact:  # noqa: A002
    """One model version; 404 outside the team, 403 without ``capability``."""
    artifact = ModelArtifact.objects.select_related("system__team", "blob", "parent", "produced_by_run").filter(id=id)
    found = artifact.first()
    if found is None:
        raise Http404("No such model version.")
    require_capability(user=user, team_id=found.system.team_id, capability=capability)
    return found


def dataset_list(*, user: Any, system_id: int | None = None) -> QuerySet[Dataset]:
    """Datasets in the principal's teams."""
    datasets = Dataset.objects.filter(system__team_id__in=team_ids_for(user)).select_related("system__team", "blob")
    if system_id:
        datasets = datasets.filter(system_id=system_id)
    return datasets.order_by("system__name", "name", "-version")


def dataset_get(*, user: Any, id: int, capability: str = Capability.VIEW) -> Dataset:  # noqa: A002
    """One dataset; 404 outside the team, 403 without ``capability``."""
    dataset = Dataset.objects.select_related("system__team", "blob").filter(id=id).first()
    if dataset is None:
        raise Http404("No such dataset.")
    require_capability(user=user, team_id=dataset.system.team_id, capability=capability)
    return dataset


def evaluation_run_list(
    *,
    user: Any,
    system_id: int | None = None,
    kind: str = "",
    status: str = "",
    model_id: int | None = None,
) -> QuerySet[EvaluationRun]:
    """Runs in the principal's teams, newest first, filtered."""
    runs = EvaluationRun.objects.filter(system__team_id__in=team_ids_for(user)).select_related(
        "system__team", "model_artifact", "dataset"
    )
    if system_id:
        runs = runs.filter(system_id=system_id)
    if kind:
        runs = runs.filter(kind=kind)
    if status:
        runs = runs.filter(status=status)
    if model_id:
        runs = runs.filter(model_artifact_id=model_id)
    return runs.defer("metrics", "reproducibility", "error_traceback").order_by("-queued_at", "-id")


def evaluation_run_get(*, user: Any, id: int, capability: str = Capability.VIEW) -> EvaluationRun:  # noqa: A002
    """One run; 404 outside the team, 403 without ``capability``."""
    run = (
        EvaluationRun.objects.select_related("system__team", "model_artifact__blob", "dataset", "created_by")
        .prefetch_related("artifacts__blob", "produced_models")
        .filter(id=id)
        .first()
    )
    if run is None:
        raise Http404("No such evaluation run.")
    require_capability(user=user, team_id=run.system.team_id, capability=capability)
    return run


def evaluation_schedule_list(*, user: Any, system_id: int) -> QuerySet[EvaluationSchedule]:
    """A system's schedules."""
    return EvaluationSchedule.objects.filter(
        system__team_id__in=team_ids_for(user), system_id=system_id
    ).select_related("dataset", "periodic_task")


def evaluation_schedule_get(*, user: Any, id: int, capability: str = Capability.VIEW) -> EvaluationSchedule:  # noqa: A002
    """One schedule; 404 outside the team, 403 without ``capability``."""
    schedule = EvaluationSchedule.objects.select_related("system__team", "dataset").filter(id=id).first()
    if schedule is None:
        raise Http404("No such schedule.")
    require_capability(user=user, team_id=schedule.system.team_id, capability=capability)
    return schedule
