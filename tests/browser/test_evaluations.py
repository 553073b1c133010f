"""Journey 3 in a real browser, with a real worker: upload a model, start a robustness run, watch it finish."""

from __future__ import annotations

import json

import pytest

from tests.evaluations.conftest import TINY_HYPERPARAMS, Worker, _reset_producers
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(settings, tmp_path, monkeypatch):
    """A worker on a private filesystem broker, sharing the test database and media root."""
    from garrison.celery import app, broker_transport_options

    # Celery lets the CELERY_BROKER_URL variable override the configured URL, so set both.
    monkeypatch.setenv("CELERY_BROKER_URL", "filesystem://")
    settings.MEDIA_ROOT = tmp_path / "media"
    broker_dir = tmp_path / "broker"
    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    app.conf.broker_url = "filesystem://"
    app.conf.broker_transport_options = broker_transport_options("filesystem://", broker_dir)
    _reset_producers(app)
    process = Worker("filesystem://", broker_dir, settings.MEDIA_ROOT).start()
    yield process
    process.stop()
    app.conf.broker_url, app.conf.broker_transport_options = saved
    _reset_producers(app)


def test_ml_engineer_uploads_a_model_runs_robustness_and_sees_the_curve(page, teammate, system, worker, tmp_path):
    import evaluations.demo as demo
    from evaluations.demo import train_digits_small_cnn
    from tests.evaluations.conftest import DIGITS

    demo.DEMO_HYPERPARAMS, original = TINY_HYPERPARAMS, demo.DEMO_HYPERPARAMS
    try:
        weights = tmp_path / "digits.safetensors"
        weights.write_bytes(train_digits_small_cnn(epochs=2))
    finally:
        demo.DEMO_HYPERPARAMS = original

    page.goto("/login/")
    page.fill("#id_username", "teammate")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"/evaluations/systems/{system.pk}/")
    form = page.locator("#model-upload")
    form.locator("input[name=file]").set_input_files(str(weights))
    form.locator("select[name=format]").select_option("safetensors")
    form.locator("input[name=architecture]").fill("small_cnn")
    form.locator("input[name=hyperparams]").fill(json.dumps(TINY_HYPERPARAMS))
    form.locator("input[name=input_shape]").fill("[1, 8, 8]")
    form.locator("input[name=input_bounds]").fill("[0, 1]")
    form.locator("input[name=class_names]").fill(json.dumps(DIGITS))
    form.locator("button[type=submit]").click()
    page.wait_for_selector("text=it is being scanned")
    for _ in range(120):  # the worker scans it
        if page.locator("#scan-status").inner_text() == "Clean":
            break
        page.wait_for_timeout(500)
        page.reload()
    assert page.locator("#scan-status").inner_text() == "Clean", worker.output()

    page.click("text=Evaluate this version")
    page.select_option("select[name=kind]", "robustness")
    page.select_option("select[name=dataset]", "ref:digits")
    page.fill(
        "textarea[name=config]",
        json.dumps(
            {
                "attack": "pgd",
                "steps": 5,
                "epsilons": [0, 0.1, 0.2],
                "max_samples": 120,
                "batch_size": 8,
                "sanity": "off",
            }
        ),
    )
    page.click("#run-form button[type=submit]")
    page.wait_for_selector("#run-bar")
    seen = set()
    for _ in range(240):
        value = page.locator("#run-bar").get_attribute("value") if page.locator("#run-bar").count() else "100"
        seen.add(value)
        if page.locator("#robustness-chart").count():
            break
        page.wait_for_timeout(500)
    assert page.locator("#robustness-chart svg").count() == 1, worker.output()
    assert page.locator("#run-bar").get_attribute("value") == "100"
    assert page.locator("#run-status").inner_text() == "Succeeded"
    assert len(seen) >= 2, seen  # the bar moved while the page polled
