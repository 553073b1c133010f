"""A poisoning-detection run on a text model opens an incident quoting the flagged messages; the pages link."""

from __future__ import annotations

import pytest

from incidents import services
from incidents.demo import incident_from_run

from .text_backdoor import N_POISON, TRIGGER, run_text_poisoning_detection

pytestmark = pytest.mark.django_db


@pytest.fixture
def detection(teammate, system, settings, tmp_path, django_capture_on_commit_callbacks):
    """The toy backdoor's detection run, with the receivers run as at commit."""
    settings.MEDIA_ROOT = tmp_path / "media"
    with django_capture_on_commit_callbacks(execute=True):
        run = run_text_poisoning_detection(actor=teammate, system=system)
    return run


def test_a_text_poisoning_run_opens_an_incident_quoting_the_flagged_messages_and_the_trigger(detection):
    assert detection.status == "succeeded" and 0 < detection.metrics["flagged"] <= N_POISON
    incident = incident_from_run(detection)
    assert incident is not None and incident.status == "open" and incident.detection_source == "evaluation_run"
    samples = incident.evidence.get(kind="flagged_samples")
    assert samples.metrics["flagged"] == detection.metrics["flagged"] and samples.metrics["labelled"] == "ham"
    assert samples.metrics["trigger_phrases"].startswith(f"'{TRIGGER}'") and TRIGGER in samples.description
    assert len(samples.metrics["messages"]) == detection.metrics["flagged"]
    assert all(message.endswith(TRIGGER) for message in samples.metrics["messages"])


def test_the_run_page_links_to_the_incident_it_opened_and_the_incident_page_quotes_the_messages(
    client, teammate, detection
):
    incident = incident_from_run(detection)
    client.force_login(teammate)
    page = client.get(detection.get_absolute_url()).content.decode()
    assert f'href="{incident.get_absolute_url()}"' in page and f"INC-{incident.number}" in page
    assert TRIGGER in page
    quoted = incident.evidence.get(kind="flagged_samples").metrics["messages"]
    assert 'id="run-flagged-messages"' in page and all(f"<q>{m}</q>" in page for m in quoted)
    incident_page = client.get(incident.get_absolute_url()).content.decode()
    message = incident.evidence.get(kind="flagged_samples").metrics["messages"][0]
    assert message in incident_page and f'href="{detection.get_absolute_url()}"' in incident_page


def test_the_run_page_names_the_remediation_action_the_run_verifies(client, teammate, detection):
    incident = incident_from_run(detection)
    services.action_add(actor=teammate, incident=incident, title="Retrain without the flagged records", run=detection)
    client.force_login(teammate)
    page = client.get(detection.get_absolute_url()).content.decode()
    assert "verifies the remediation action" in page and "Retrain without the flagged records" in page


def test_an_outsider_sees_neither_the_run_nor_the_incident(client, outsider, detection):
    client.force_login(outsider)
    assert client.get(detection.get_absolute_url()).status_code == 404
    assert client.get(incident_from_run(detection).get_absolute_url()).status_code == 404


def test_a_run_that_opened_no_incident_shows_no_incident_box(client, teammate, detection):
    incident_from_run(detection).evidence.all().delete()
    client.force_login(teammate)
    assert 'id="run-incidents"' not in client.get(detection.get_absolute_url()).content.decode()


def test_a_remediation_action_added_on_the_page_can_be_completed_by_a_chosen_run(client, teammate, detection):
    incident = incident_from_run(detection)
    client.force_login(teammate)
    response = client.post(
        f"/incidents/{incident.pk}/actions/", {"title": "Retrain without the flagged records", "run": detection.pk}
    )
    assert response.status_code == 302
    action = incident.actions.get()
    assert action.run == detection
    page = client.get(incident.get_absolute_url()).content.decode()
    assert f'href="{detection.get_absolute_url()}">run #{detection.pk}</a>' in page
