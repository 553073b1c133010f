"""Deployment pages scoped to teams, key issue/revoke, the monitoring page, and query-log telemetry."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from evaluations.serving.models import ConsumerKey, Deployment, QueryLog
from garrison.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

ONE = np.full((1, 1, 8, 8), 0.25).tolist()


def form_data(model, **overrides):
    data = {
        "name": "Public API",
        "slug": "public-api",
        "model_artifact": model.pk,
        "status": "active",
        "output_policy": "reverse_sigmoid",
        "top_k": 3,
        "decimals": 2,
        "beta": 0.7,
        "gamma": 1.2,
        "noise_std": 0.05,
        "noise_seed": 0,
        "max_batch": 64,
        "max_body_bytes": 1048576,
        "rate_per_minute": 600,
        "burst": 100,
        "daily_quota": 50000,
        "monitor_enabled": "on",
        "monitor_action": "label_only",
        "throttle_per_minute": 10,
        "monitor_prada_threshold": 0.92,
        "monitor_entropy_max_fraction": 0.4,
        "log_sample_rate": 0.5,
        "log_retention_days": 30,
    }
    data.update(overrides)
    return data


def test_an_editor_deploys_a_model_from_the_form_and_it_is_audited(client, teammate, system, model):
    client.force_login(teammate)
    response = client.post(f"/serving/systems/{system.pk}/deploy/", form_data(model))
    deployment = Deployment.objects.get()
    assert response.status_code == 302 and response["Location"] == deployment.get_absolute_url()
    assert deployment.output_policy == "reverse_sigmoid" and deployment.monitor_action == "label_only"
    assert deployment.monitor_entropy_max_fraction == 0.4
    assert AuditEvent.objects.filter(verb="deployment.create", object_id=str(deployment.pk)).exists()


def test_the_deploy_form_reports_inconsistent_limits_on_the_field(client, teammate, system, model):
    client.force_login(teammate)
    response = client.post(f"/serving/systems/{system.pk}/deploy/", form_data(model, burst=10, max_batch=64))
    assert response.status_code == 400 and "full batch" in response.content.decode()
    assert not Deployment.objects.exists()


def test_a_viewer_sees_the_monitoring_page_but_cannot_deploy_or_issue_keys(client, viewer, deploy, system, model):
    deployment = deploy()
    client.force_login(viewer)
    assert client.get(deployment.get_absolute_url()).status_code == 200
    assert client.get(f"/serving/systems/{system.pk}/deploy/").status_code == 403
    assert client.post(f"/serving/deployments/{deployment.pk}/keys/", {"owner": "x"}).status_code == 403
    assert client.get(f"/serving/deployments/{deployment.pk}/queries/?format=csv").status_code == 403


def test_an_outsider_gets_404_for_every_page_of_another_teams_deployment(client, outsider, deploy, issue, system):
    deployment = deploy()
    key, _ = issue(deployment)
    client.force_login(outsider)
    for url in [
        deployment.get_absolute_url(),
        f"/serving/deployments/{deployment.pk}/edit/",
        f"/serving/deployments/{deployment.pk}/queries/?format=jsonl",
        f"/serving/systems/{system.pk}/deploy/",
    ]:
        assert client.get(url).status_code == 404, url
    assert client.post(f"/serving/deployments/{deployment.pk}/keys/", {"owner": "x"}).status_code == 404
    assert client.post(f"/serving/deployments/{deployment.pk}/keys/{key.pk}/revoke/").status_code == 404
    assert deployment.name not in client.get("/serving/").content.decode()
    assert ConsumerKey.objects.get(pk=key.pk).revoked_at is None


def test_a_key_is_shown_once_stored_hashed_and_revocable_from_the_page(client, teammate, deploy, post):
    deployment = deploy()
    client.force_login(teammate)
    response = client.post(f"/serving/deployments/{deployment.pk}/keys/", {"owner": "mobile app", "purpose": "ios"})
    page = response.content.decode()
    key = ConsumerKey.objects.get()
    secret = page.split('id="new-secret"')[1].split('class="mono">')[1].split("<")[0]
    assert secret.startswith("gsk_") and key.prefix == secret[:12] and secret not in key.key_hash
    assert response["Cache-Control"] == "no-store"
    assert post(deployment, secret, {"inputs": ONE}).status_code == 200
    assert secret not in client.get(deployment.get_absolute_url()).content.decode()
    client.post(f"/serving/deployments/{deployment.pk}/keys/{key.pk}/revoke/")
    assert post(deployment, secret, {"inputs": ONE}).status_code == 403
    assert AuditEvent.objects.filter(verb="consumer_key.revoke").exists()


def test_the_monitoring_page_shows_clients_scores_and_alerts(client, teammate, deploy, issue, post):
    deployment = deploy()
    _, attacker = issue(deployment, owner="scraper")
    x = np.random.default_rng(0).uniform(0, 1, size=(120, 1, 8, 8))
    for start in range(0, 120, 10):
        post(deployment, attacker, {"inputs": x[start : start + 10].tolist()})
    client.force_login(teammate)
    page = client.get(deployment.get_absolute_url()).content.decode()
    assert "scraper" in page and 'id="alerts"' in page and "<svg" in page.split('id="score-chart"')[1]
    alert = deployment.alerts.get()
    assert f"<td>{alert.queries} queries</td>" in page
    assert "Inputs answered today per key" in page


def test_sampled_query_logs_keep_input_hashes_and_the_policy_but_not_inputs(deploy, issue, post):
    deployment = deploy(log_sample_rate=1.0, output_policy="rounding", decimals=1, monitor_enabled=False)
    _, secret = issue(deployment)
    post(deployment, secret, {"inputs": np.full((2, 1, 8, 8), 0.25).tolist()})
    log = QueryLog.objects.get()
    assert log.batch_size == 2 and len(log.input_sha256) == 2 and log.inputs is None
    assert log.policy == {"name": "rounding", "decimals": 1}
    assert log.input_sha256[0] == log.input_sha256[1] and len(log.input_sha256[0]) == 64


def test_full_inputs_are_logged_only_when_the_deployment_opts_in(deploy, issue, post):
    deployment = deploy(log_sample_rate=1.0, log_full_inputs=True)
    _, secret = issue(deployment)
    post(deployment, secret, {"inputs": ONE})
    assert QueryLog.objects.get().inputs == ONE


def test_with_sampling_off_only_score_snapshots_are_logged(deploy, issue, post):
    deployment = deploy(log_sample_rate=0.0)
    _, secret = issue(deployment)
    for _ in range(45):
        post(deployment, secret, {"inputs": ONE})
    assert sorted(QueryLog.objects.values_list("key_queries", flat=True)) == [20, 40]


def test_a_snapshot_is_skipped_when_a_sampled_row_came_shortly_before(deploy, issue, post, monkeypatch):
    from evaluations.serving import telemetry

    deployment = deploy(log_sample_rate=0.5)
    _, secret = issue(deployment)
    draws = iter([0.0 if i == 15 else 0.99 for i in range(1, 46)])  # sampled at the key's 15th query only
    monkeypatch.setattr(telemetry, "_random", type("Draws", (), {"random": lambda self: next(draws)})())
    for _ in range(45):
        post(deployment, secret, {"inputs": ONE})
    # 20 is skipped (a row 5 queries before); 40 is 25 past it
    assert sorted(QueryLog.objects.values_list("key_queries", flat=True)) == [15, 40]


def test_a_stream_started_afresh_gets_its_snapshots_again(deploy, issue):
    from types import SimpleNamespace

    from evaluations.serving import telemetry

    deployment = deploy(log_sample_rate=0.0)
    key, _ = issue(deployment)

    def log(queries):
        state = SimpleNamespace(
            queries=queries,
            flagged=False,
            first_flagged_at=None,
            prada_w=None,
            uncertain_fraction=None,
            volume_in_window=1,
        )
        x = np.zeros((1, 64))
        return telemetry.maybe_log(
            deployment=deployment, key=key, x=x, labels=[0], policy={"name": "full"}, state=state, latency_ms=1.0
        )

    assert log(40) is not None
    assert log(20) is not None  # the count went back (the key's action was lifted): a new stream
    assert log(21) is None  # no multiple of 20 passed


def test_query_logs_past_retention_are_pruned(deploy, issue, post):
    deployment = deploy(log_sample_rate=1.0, log_retention_days=7)
    _, secret = issue(deployment)
    post(deployment, secret, {"inputs": ONE})
    post(deployment, secret, {"inputs": ONE})
    old = QueryLog.objects.first()
    QueryLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    out = io.StringIO()
    call_command("prune_query_logs", stdout=out)
    assert "Deleted 1" in out.getvalue() and QueryLog.objects.count() == 1


def test_query_logs_export_as_csv_and_jsonl(client, teammate, deploy, issue, post):
    deployment = deploy(log_sample_rate=1.0)
    key, secret = issue(deployment, owner="exporter")
    post(deployment, secret, {"inputs": ONE})
    post(deployment, secret, {"inputs": ONE})
    client.force_login(teammate)
    jsonl = b"".join(client.get(f"/serving/deployments/{deployment.pk}/queries/?format=jsonl").streaming_content)
    rows = [json.loads(line) for line in jsonl.decode().splitlines()]
    assert len(rows) == 2 and rows[0]["key_prefix"] == key.prefix and rows[0]["policy"]["name"] == "full"
    response = client.get(f"/serving/deployments/{deployment.pk}/queries/?format=csv")
    assert "attachment" in response["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(table) == 2 and table[0]["key_owner"] == "exporter" and json.loads(table[0]["labels"])
    assert client.get(f"/serving/deployments/{deployment.pk}/queries/?format=xml").status_code == 400


def test_the_deployment_list_and_nav_link_show_for_members(client, teammate, deploy):
    deployment = deploy()
    client.force_login(teammate)
    page = client.get("/serving/").content.decode()
    assert deployment.name in page and 'href="/serving/"' in page
    assert f'href="/serving/systems/{deployment.system_id}/deploy/"' in page


def test_a_viewer_gets_no_deploy_links(client, viewer, deploy):
    deploy()
    client.force_login(viewer)
    assert 'id="deploy-links"' not in client.get("/serving/").content.decode()
