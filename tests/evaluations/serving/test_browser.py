"""Journey 7 in a real browser: deploy a model, choose the output policy, issue a key, watch an attacker get flagged."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluations.serving.models import Deployment
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("GARRISON_SCREENSHOTS", "")


def shot(page, name: str) -> None:  # noqa: F811 - the fixture's page object
    """Save a full-page screenshot when GARRISON_SCREENSHOTS names a folder (for looking at the pages)."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def test_model_owner_deploys_with_a_policy_and_watches_the_monitor_flag_an_attacker(
    page,  # noqa: F811
    live_server,
    teammate,
    system,
    model,
    digits_test,
):
    from evaluations.engine.extraction import HttpVictim

    page.goto("/login/")
    page.fill("#id_username", "teammate")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto("/serving/")
    page.goto(f"/serving/systems/{system.pk}/deploy/")
    page.fill("#id_name", "Digits API")
    page.fill("#id_slug", "digits-api")
    page.select_option("#id_output_policy", "reverse_sigmoid")
    page.select_option("#id_monitor_action", "label_only")
    page.fill("#id_log_sample_rate", "1")
    shot(page, "deploy-form")
    page.click("form.stack button[type=submit]")
    page.wait_for_selector("#endpoint")
    deployment = Deployment.objects.get(slug="digits-api")
    assert deployment.output_policy == "reverse_sigmoid"

    page.fill("#id_owner", "partner app")
    page.fill("#id_purpose", "mobile client")
    page.click("form[aria-label='Issue a key'] button")
    secret = page.inner_text("#new-secret .mono").strip()
    assert secret.startswith("gsk_")

    url = live_server.url + deployment.predict_path
    benign = HttpVictim(
        url, input_shape=(1, 8, 8), num_classes=10, bounds=(0.0, 1.0), api_key=secret, batch_size=10, retries=5
    )
    benign.query(torch.tensor(digits_test[0][:100], dtype=torch.float32))
    page.fill("#id_owner", "scraper")
    page.fill("#id_purpose", "")
    page.click("form[aria-label='Issue a key'] button")
    attacker_secret = page.inner_text("#new-secret .mono").strip()
    attacker = HttpVictim(
        url, input_shape=(1, 8, 8), num_classes=10, bounds=(0.0, 1.0), api_key=attacker_secret, batch_size=10, retries=5
    )
    queries = torch.tensor(np.random.default_rng(0).uniform(0, 1, (150, 1, 8, 8)), dtype=torch.float32)
    outputs = [attacker.query(queries[start : start + 10]).output for start in range(0, 150, 10)]
    assert outputs[0] == "probabilities" and outputs[-1] == "label"  # switched to label-only once flagged

    page.goto(deployment.get_absolute_url())
    alerts = page.inner_text("#alerts")
    assert "scraper" in alerts and "partner app" not in alerts
    assert "Switch the key to label-only answers" in alerts
    assert page.locator("#score-chart svg").count() == 1
    shot(page, "monitoring-page")
