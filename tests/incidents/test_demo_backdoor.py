"""The demo's spam-filter backdoor incident comes from a real poisoning-detection run and is worked to closure."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from evaluations import demo as evaluations_demo
from evaluations.models import EvaluationRun, ModelArtifact, RunKind
from garrison.accounts.demo import seed_accounts
from garrison.audit.models import AuditEvent
from garrison.pdf import render_pdf
from incidents.demo import incident_from_run, seed_incidents
from incidents.models import ActionStatus, Incident
from incidents.reports import incident_report_context
from threatmodel.demo import seed_systems, seed_threat_models
from threatmodel.models import ThreatStatus, VersionStatus

pytestmark = pytest.mark.django_db

_TRAINED: dict[str, tuple] = {}


@pytest.fixture
def cached_training(monkeypatch):
    """Train each demo TSV once per test session (the training is deterministic)."""
    train = evaluations_demo.train_text_model_on_tsv

    def cached(content: bytes, **kwargs):
        key = hashlib.sha256(content).hexdigest() + repr(sorted(kwargs.items()))
        if key not in _TRAINED:
            _TRAINED[key] = train(content, **kwargs)
        return _TRAINED[key]

    monkeypatch.setattr(evaluations_demo, "train_text_model_on_tsv", cached)


@pytest.fixture
def demo(settings, tmp_path, cached_training, monkeypatch):
    """The demo team with the spam filter's threat model, its poisoned retrain and the detection run."""
    monkeypatch.delenv("GARRISON_ADMIN_PASSWORD", raising=False)
    settings.VAR_DIR = tmp_path
    settings.MEDIA_ROOT = tmp_path / "media"
    accounts = seed_accounts(username="admin")
    systems = seed_systems(actor=accounts.admin, team=accounts.team)
    seed_threat_models(author=accounts.admin, approver=accounts.approver, systems=systems)
    detection = evaluations_demo.seed_spam_backdoor(actor=accounts.admin, team=accounts.team)
    return accounts, systems, detection


def test_the_demo_backdoor_incident_is_opened_by_the_detection_run_and_worked_to_closure(demo, tmp_path):
    accounts, systems, detection = demo
    trigger = evaluations_demo.BACKDOOR_TRIGGER
    assert detection.kind == RunKind.POISONING_DETECTION and detection.status == "succeeded"
    ham = detection.metrics["classes"][0]
    assert ham["flagged"] and ham["trigger_phrases"][0] == trigger
    assert 0 < detection.metrics["flagged"] <= evaluations_demo.BACKDOOR_N_POISON

    incident = seed_incidents(actor=accounts.admin, systems=systems, detection=detection, approver=accounts.approver)
    assert incident == incident_from_run(detection)
    assert incident.status == "closed" and incident.detection_source == "evaluation_run"
    assert trigger in incident.title and incident.root_cause and incident.lessons_learned

    samples = incident.evidence.get(kind="flagged_samples")
    assert samples.metrics["flagged"] == detection.metrics["flagged"]
    assert f"'{trigger}'" in samples.metrics["trigger_phrases"] and samples.metrics["labelled"] == "ham"
    assert samples.metrics["messages"] and all(m.endswith(trigger) for m in samples.metrics["messages"])

    actions = list(incident.actions.order_by("id"))
    assert [a.status for a in actions] == [ActionStatus.DONE, ActionStatus.DONE]
    verification = actions[1].run
    assert verification is not None and verification.kind == RunKind.POISONING_DETECTION
    assert verification.dataset_id == detection.dataset_id
    assert verification.metrics["flagged"] == 0, verification.metrics["classes"]
    assert f"run {verification.pk} succeeded" in actions[1].verification
    retrained = verification.model_artifact
    assert retrained.name == evaluations_demo.BACKDOOR_RETRAINED_NAME and retrained.scan_status == "clean"
    assert f"less the {detection.metrics['flagged']} records flagged by run #{detection.pk}" in actions[0].verification

    notes = [entry.note for entry in incident.timeline.all()]
    assert len(notes) == 4 and f"run #{verification.pk}" in notes[2] and "flags 0" in notes[2]
    version = incident.threat_model_version
    assert version is not None and version.status == VersionStatus.IN_REVIEW and version.number == 2
    raised = version.threats.filter(uid__in=[t.uid for t in incident.threats.all()])
    assert raised.count() == 2 and all(t.status == ThreatStatus.ACCEPTED and t.likelihood >= 4 for t in raised)
    assert [c.name for c in incident.controls.all()] == ["Quarantine and poison scan of new training batches"]

    counts = (
        Incident.objects.count(),
        EvaluationRun.objects.count(),
        ModelArtifact.objects.count(),
        AuditEvent.objects.count(),
    )
    again = evaluations_demo.seed_spam_backdoor(actor=accounts.admin, team=accounts.team)
    assert again == detection
    assert (
        seed_incidents(actor=accounts.admin, systems=systems, detection=again, approver=accounts.approver) == incident
    )
    assert counts == (
        Incident.objects.count(),
        EvaluationRun.objects.count(),
        ModelArtifact.objects.count(),
        AuditEvent.objects.count(),
    )

    path = tmp_path / "incident.pdf"
    path.write_bytes(render_pdf("reports/incident.html", incident_report_context(incident)).content)
    text = " ".join(
        subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout.split()
    )
    for expected in (trigger, f"#{verification.pk}", "Flagged training samples", "Lessons learned", "Sign-off"):
        assert expected in text, expected


def test_without_models_the_demo_incident_says_it_is_illustrative(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("GARRISON_ADMIN_PASSWORD", raising=False)
    settings.VAR_DIR = tmp_path
    accounts = seed_accounts(username="admin")
    systems = seed_systems(actor=accounts.admin, team=accounts.team)
    seed_threat_models(author=accounts.admin, approver=accounts.approver, systems=systems)
    incident = seed_incidents(actor=accounts.admin, systems=systems)
    assert incident.status == "closed" and "Illustrative" in incident.summary and "(illustrative)" in incident.title
    assert seed_incidents(actor=accounts.admin, systems=systems) is None
