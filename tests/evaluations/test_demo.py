"""The demo seed: a trained digits CNN and one finished robustness run, idempotent."""

from __future__ import annotations

import pytest

from evaluations.demo import seed_evaluations
from evaluations.models import EvaluationRun, ModelArtifact
from tests.factories import SystemFactory

pytestmark = pytest.mark.django_db


def test_seed_evaluations_records_a_finished_robustness_run_once(owner, team):
    SystemFactory(team=team, name="Digits classifier", slug="digits-classifier")
    run = seed_evaluations(actor=owner, team=team)
    assert run.status == "succeeded", run.error_message
    assert run.metrics["clean_accuracy"] > 0.8
    assert run.reliable is not None
    assert seed_evaluations(actor=owner, team=team).pk == run.pk
    assert ModelArtifact.objects.count() == 1 and EvaluationRun.objects.count() == 1
