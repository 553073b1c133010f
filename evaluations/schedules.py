"""Recurring and on-new-model evaluations: schedule services and what beat triggers.

A schedule with a crontab owns one django-celery-beat ``PeriodicTask`` (``evaluations.tasks.run_schedule``
with the schedule id), kept in step with it here and nowhere else.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from evaluations.configs import validate_config
from evaluations.models import EvaluationSchedule, ModelArtifact, ScanStatus
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability
from garrison.audit.services import diff, record, snapshot
from threatmodel.models import System

_AUDITED = ("name", "kind", "dataset", "config", "crontab", "run_on_new_model", "enabled")


def _sync_periodic_task(schedule: EvaluationSchedule) -> None:
    """Create, update or remove the beat entry that fires the schedule."""
    if not schedule.crontab:
        if schedule.periodic_task_id:
            task = schedule.periodic_task
            schedule.periodic_task = None
            schedule.save(update_fields=["periodic_task"])
            task.delete()
        return
    minute, hour, day_of_month, month, day_of_week = schedule.crontab.split()
    try:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month, day_of_week=day_of_week
        )
        crontab.full_clean()
    except (ValidationError, ValueError) as exc:
        raise ValidationError({"crontab": f"Invalid crontab '{schedule.crontab}': {exc}"}) from exc
    fields = {
        "name": f"evaluation schedule {schedule.pk}",
        "task": "evaluations.tasks.run_schedule",
        "args": json.dumps([schedule.pk]),
        "crontab": crontab,
        "interval": None,
        "enabled": schedule.enabled,
        "queue": "default",
    }
    if schedule.periodic_task_id:
        PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(**fields)
        task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
        task.save()  # bumps PeriodicTasks.changed so beat reloads
    else:
        task = PeriodicTask.objects.create(**fields)
        schedule.periodic_task = task
        schedule.save(update_fields=["periodic_task"])


@transaction.atomic
def evaluation_schedule_save(
    *, actor: Any, system: System, schedule: EvaluationSchedule | None = None, **fields: Any
) -> EvaluationSchedule:
    """Create or change a system's evaluation schedule (editors with submit rights)."""
    require_capability(user=actor, team_id=system.team_id, capability=Capability.SUBMIT_EVALUATIONS)
    if schedule is None:
        schedule = EvaluationSchedule(system=system, created_by=actor if getattr(actor, "pk", None) else None)
        before: dict[str, Any] = {}
    else:
        schedule = EvaluationSchedule.objects.select_for_update().get(pk=schedule.pk, system=system)
        before = snapshot(schedule, _AUDITED)
    for name, value in fields.items():
        if name not in _AUDITED:
            raise TypeError(f"evaluation_schedule_save got an unknown field: {name}")
        setattr(schedule, name, value)
    schedule.crontab = " ".join((schedule.crontab or "").split())
    schedule.config = validate_config(schedule.kind, schedule.config)
    if schedule.dataset_id and schedule.dataset.system_id != system.pk:
        raise ValidationError({"dataset": "That dataset belongs to another system."})
    schedule.full_clean()
    schedule.save()
    _sync_periodic_task(schedule)
    changes = diff(before, snapshot(schedule, _AUDITED))
    record(
        actor=actor,
        verb="evaluation_schedule.create" if not before else "evaluation_schedule.update",
        obj=schedule,
        team_id=system.team_id,
        changes=changes,
    )
    return schedule


@transaction.atomic
def evaluation_schedule_delete(*, actor: Any, schedule: EvaluationSchedule) -> None:
    """Delete a schedule and its beat entry; past runs stay."""
    require_capability(user=actor, team_id=schedule.system.team_id, capability=Capability.SUBMIT_EVALUATIONS)
    record(
        actor=actor,
        verb="evaluation_schedule.delete",
        obj=schedule,
        team_id=schedule.system.team_id,
        changes=diff(snapshot(schedule, _AUDITED), {}),
    )
    if schedule.periodic_task_id:
        schedule.periodic_task.delete()
    schedule.delete()


def _latest_clean_model(system_id: int) -> ModelArtifact | None:
    return ModelArtifact.objects.filter(system_id=system_id, scan_status=ScanStatus.CLEAN).order_by("-version").first()


def _fire(schedule: EvaluationSchedule, artifact: ModelArtifact) -> int | None:
    """Queue the schedule's run on ``artifact`` as the schedule's creator (or the system when gone)."""
    from evaluations.services import evaluation_run_queue

    actor = schedule.created_by
    if actor is None:
        return None
    try:
        run = evaluation_run_queue(
            actor=actor,
            system=schedule.system,
            kind=schedule.kind,
            model_artifact=artifact,
            dataset=schedule.dataset,
            config=schedule.config,
            schedule=schedule,
        )
    except (ValidationError, PermissionError) as exc:
        import logging

        logging.getLogger(__name__).warning("schedule %s could not queue a run: %s", schedule.pk, exc)
        return None
    return run.pk


def schedule_fire(*, schedule_id: int) -> int | None:
    """Beat's entry point: queue one run of the schedule on the latest clean model version."""
    schedule = (
        EvaluationSchedule.objects.select_related("system", "dataset", "created_by").filter(pk=schedule_id).first()
    )
    if schedule is None or not schedule.enabled:
        return None
    artifact = _latest_clean_model(schedule.system_id)
    return _fire(schedule, artifact) if artifact else None


def schedules_fire_for_new_model(*, artifact_id: int) -> list[int]:
    """Queue every 'run on new model version' schedule of the artifact's system."""
    artifact = ModelArtifact.objects.select_related("system").get(pk=artifact_id)
    schedules = EvaluationSchedule.objects.filter(
        system_id=artifact.system_id, run_on_new_model=True, enabled=True
    ).select_related("system", "dataset", "created_by")
    return [run_id for schedule in schedules if (run_id := _fire(schedule, artifact)) is not None]
