"""The demo deploys the digits model behind the guarded API with a working key."""

from __future__ import annotations

import numpy as np
import pytest

from evaluations.demo import seed_deployment
from evaluations.serving.models import ConsumerKey, Deployment

pytestmark = pytest.mark.django_db


def test_the_demo_deploys_the_model_with_a_key_written_once_to_var(settings, tmp_path, owner, system, model, post):
    settings.VAR_DIR = tmp_path
    deployment = seed_deployment(actor=owner, system=system, artifact=model)
    path, secret = (tmp_path / "demo-serving-key").read_text().split()
    assert path == deployment.predict_path and (tmp_path / "demo-serving-key").stat().st_mode & 0o077 == 0
    response = post(deployment, secret, {"inputs": np.zeros((1, 1, 8, 8)).tolist()})
    assert response.status_code == 200 and response.json()["predictions"][0]["probabilities"]
    assert seed_deployment(actor=owner, system=system, artifact=model).pk == deployment.pk
    assert Deployment.objects.count() == 1 and ConsumerKey.objects.count() == 1
