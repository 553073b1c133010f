"""Reads of ingestion policies, batches and provenance, scoped to the principal's teams."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from evaluations.ingestion.models import DatasetVersionRecord, IngestionBatch, IngestionPolicy
from evaluations.models import Dataset
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability, team_ids_for


def policy_list(*, user: Any, system_id: int | None = None) -> QuerySet[IngestionPolicy]:
    """Governed datasets in the principal's teams."""
    policies = IngestionPolicy.objects.filter(system__team_id__in=team_ids_for(user)).select_related("system__team")
    if system_id:
        policies = policies.filter(system_id=system_id)
    return policies.order_by("system__name", "dataset_name")


def policy_get(*, user: Any, id: int, capability: str = Capability.VIEW) -> IngestionPolicy:  # noqa: A002
    """One policy; 404 outside the team, 403 without ``capability``."""
    policy = IngestionPolicy.objects.select_related("system__team").filter(id=id).first()
    if policy is None:
        raise Http404("No such governed dataset.")
    require_capability(user=user, team_id=policy.system.team_id, capability=capability)
    return policy


def policy_get_by_name(*, user: Any, system_id: int, dataset_name: str, capability: str) -> IngestionPolicy:
    """The policy of a system's dataset by name; 404 when the principal cannot see it or it is not governed."""
    policy = (
        IngestionPolicy.objects.select_related("system__team")
        .filter(system_id=system_id, dataset_name=dataset_name)
        .first()
    )
    if policy is None or policy.system.team_id not in team_ids_for(user):
        raise Http404(
            f"No governed dataset '{dataset_name}' in system {system_id} that you can see. An approver must put "
            "the dataset under ingestion first (Ingestion page of the system)."
        )
    require_capability(user=user, team_id=policy.system.team_id, capability=capability)
    return policy


def batch_list(
    *, user: Any, system_id: int | None = None, status: str = "", policy_id: int | None = None
) -> QuerySet[IngestionBatch]:
    """Batches in the principal's teams, newest first."""
    batches = IngestionBatch.objects.filter(system__team_id__in=team_ids_for(user)).select_related(
        "policy", "system__team", "base", "produced"
    )
    if system_id:
        batches = batches.filter(system_id=system_id)
    if policy_id:
        batches = batches.filter(policy_id=policy_id)
    if status:
        batches = batches.filter(status=status)
    return batches.defer("report").order_by("-created_at", "-id")


def batch_get(*, user: Any, id: int, capability: str = Capability.VIEW) -> IngestionBatch:  # noqa: A002
    """One batch with its report; 404 outside the team, 403 without ``capability``."""
    batch = (
        IngestionBatch.objects.select_related("policy", "system__team", "base", "produced", "raw_blob", "records_blob")
        .filter(id=id)
        .first()
    )
    if batch is None:
        raise Http404("No such batch.")
    require_capability(user=user, team_id=batch.system.team_id, capability=capability)
    return batch


def provenance_get(*, user: Any, dataset_id: int) -> tuple[Dataset, IngestionPolicy | None, list[DatasetVersionRecord]]:
    """A dataset version, its policy and the provenance records of every version of that dataset."""
    dataset = Dataset.objects.select_related("system__team", "blob").filter(id=dataset_id).first()
    if dataset is None:
        raise Http404("No such dataset.")
    require_capability(user=user, team_id=dataset.system.team_id, capability=Capability.VIEW)
    policy = IngestionPolicy.objects.filter(system_id=dataset.system_id, dataset_name=dataset.name).first()
    records = list(
        DatasetVersionRecord.objects.filter(dataset__system_id=dataset.system_id, dataset__name=dataset.name)
        .select_related("dataset__blob", "batch")
        .prefetch_related("parents")
        .order_by("dataset__version")
    )
    return dataset, policy, records


def batches_of_datasets(*, dataset_ids: list[int]) -> QuerySet[IngestionBatch]:
    """Batches checked against any of these versions (for the provenance graph; scoped by the caller)."""
    return IngestionBatch.objects.filter(base_id__in=dataset_ids).order_by("created_at")
