"""``manage.py seed_demo`` gives a newcomer a team, an admin and a system, idempotently."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from garrison.accounts.models import Membership, Team
from garrison.audit.models import AuditEvent
from threatmodel.models import System

pytestmark = pytest.mark.django_db


def seed(*, models: bool = False) -> str:
    out = StringIO()
    call_command("seed_demo", *([] if models else ["--skip-models"]), stdout=out)
    return out.getvalue()


def test_seed_demo_creates_team_admin_and_system_and_prints_the_password(monkeypatch, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("GARRISON_ADMIN_PASSWORD", raising=False)
    output = seed()
    admin = get_user_model().objects.get(username="admin")
    password = output.split("password:")[1].split()[0]
    assert admin.check_password(password) and admin.is_superuser
    assert (tmp_path / "initial-admin-password").read_text().split() == ["admin", password, "approver", password]
    team = Team.objects.get(slug="demo")
    assert Membership.objects.get(team=team, user=admin).role == "admin"
    assert set(System.objects.filter(team=team).values_list("slug", flat=True)) == {
        "sms-spam-filter",
        "digits-classifier",
    }
    assert AuditEvent.objects.filter(verb="system.create", team=team).count() == 2
    approver = get_user_model().objects.get(username="approver")
    assert approver.check_password(password)
    assert Membership.objects.get(team=team, user=approver).role == "approver"


def test_seed_demo_models_the_spam_filter_with_an_approved_version_and_one_in_review(settings, tmp_path):
    from threatmodel.models import ThreatModelVersion

    settings.VAR_DIR = tmp_path
    seed()
    versions = list(
        ThreatModelVersion.objects.filter(threat_model__system__slug="sms-spam-filter")
        .order_by("number")
        .values_list("status", flat=True)
    )
    assert versions == ["approved", "in_review"]
    approved = ThreatModelVersion.objects.get(status="approved", threat_model__system__slug="sms-spam-filter")
    assert approved.components.count() == 6 and approved.controls.count() == 3
    assert approved.reviewed_by.username == "approver" and approved.author.username == "admin"


def test_seed_demo_takes_the_password_from_the_environment(monkeypatch, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    monkeypatch.setenv("GARRISON_ADMIN_PASSWORD", "chosen-by-the-operator")
    seed()
    assert get_user_model().objects.get(username="admin").check_password("chosen-by-the-operator")


def test_seed_demo_with_models_gives_every_journey_its_data_and_twice_changes_nothing(settings, tmp_path):
    from evaluations.models import EvaluationRun, ModelArtifact
    from incidents.models import Incident
    from kpis.models import Measurement

    settings.VAR_DIR = tmp_path
    settings.MEDIA_ROOT = tmp_path / "media"
    seed(models=True)
    digits = System.objects.get(slug="digits-classifier")
    assert ModelArtifact.objects.filter(system=digits).count() == 2  # v1 and its hardened v2
    # The reference spam model, the poisoned weekly retrain and its retrained fix.
    assert ModelArtifact.objects.filter(system__slug="sms-spam-filter", scan_status="clean").count() == 3
    assert not EvaluationRun.objects.exclude(status="succeeded").exists()
    trend = list(
        Measurement.objects.filter(system=digits, kpi="robust_accuracy")
        .order_by("measured_at")
        .values_list("value", flat=True)
    )
    assert len(trend) == 2 and trend[1] > trend[0]
    backdoor = Incident.objects.get(systems__slug="sms-spam-filter")
    assert backdoor.status == "closed" and backdoor.detection_source == "evaluation_run"
    assert "velvet sunrise" in backdoor.title and backdoor.actions.filter(run__isnull=False).exists()
    counts = (
        get_user_model().objects.count(),
        Team.objects.count(),
        System.objects.count(),
        AuditEvent.objects.count(),
        EvaluationRun.objects.count(),
        Measurement.objects.count(),
    )
    output = seed(models=True)
    assert "already exists" in output and "password:" not in output
    assert counts == (
        get_user_model().objects.count(),
        Team.objects.count(),
        System.objects.count(),
        AuditEvent.objects.count(),
        EvaluationRun.objects.count(),
        Measurement.objects.count(),
    )
