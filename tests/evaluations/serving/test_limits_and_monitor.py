"""Rate limits and quotas per key, and the extraction monitor: alerts, actions, incidents."""

from __future__ import annotations

import numpy as np
import pytest

from evaluations.serving import ratelimit
from evaluations.serving.models import ConsumerKey, MonitorAction, MonitorAlert, OutputPolicy
from incidents.models import Incident

pytestmark = pytest.mark.django_db

ONE = np.full((1, 1, 8, 8), 0.5).tolist()


@pytest.fixture
def clock(monkeypatch):
    """A frozen clock for the rate-limit windows; ``clock.now`` can be moved."""

    class Clock:
        now = 1_800_000_000.0 + 10.25  # 10.25 s into a minute

    monkeypatch.setattr(ratelimit, "clock", lambda: Clock.now)
    return Clock


@pytest.mark.parametrize("monitored", [False, True], ids=["unmonitored", "monitored"])
def test_the_burst_limit_answers_429_at_the_right_count_with_retry_after(deploy, issue, post, clock, monitored):
    deployment = deploy(burst=5, rate_per_minute=100, max_batch=5, monitor_enabled=monitored)
    _, secret = issue(deployment)
    codes = [post(deployment, secret, {"inputs": ONE}).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    refused = post(deployment, secret, {"inputs": ONE})
    assert refused["Retry-After"] == "1"
    assert "burst limit" in refused.json()["error"]["message"]
    clock.now += 1.0
    assert post(deployment, secret, {"inputs": ONE}).status_code == 200


@pytest.mark.parametrize("monitored", [False, True], ids=["unmonitored", "monitored"])
def test_the_per_minute_limit_counts_inputs_and_says_when_the_window_reopens(deploy, issue, post, clock, monitored):
    deployment = deploy(burst=4, rate_per_minute=10, max_batch=4, monitor_enabled=monitored)
    _, secret = issue(deployment)
    four = np.full((4, 1, 8, 8), 0.5).tolist()
    assert post(deployment, secret, {"inputs": four}).status_code == 200
    clock.now += 1
    assert post(deployment, secret, {"inputs": four}).status_code == 200
    clock.now += 1
    refused = post(deployment, secret, {"inputs": four})  # 12 > 10: refused whole, nothing charged
    assert refused.status_code == 429 and refused["Retry-After"] == str(60 - 12)
    assert post(deployment, secret, {"inputs": np.full((2, 1, 8, 8), 0.5).tolist()}).status_code == 200
    assert post(deployment, secret, {"inputs": ONE}).status_code == 429
    clock.now += 60
    assert post(deployment, secret, {"inputs": ONE}).status_code == 200


@pytest.mark.parametrize("monitored", [False, True], ids=["unmonitored", "monitored"])
def test_the_daily_quota_refuses_until_midnight_utc(deploy, issue, post, clock, monitored):
    deployment = deploy(burst=2, rate_per_minute=2, max_batch=2, daily_quota=3, monitor_enabled=monitored)
    _, secret = issue(deployment)
    assert post(deployment, secret, {"inputs": ONE}).status_code == 200
    assert post(deployment, secret, {"inputs": ONE}).status_code == 200
    clock.now += 60
    assert post(deployment, secret, {"inputs": ONE}).status_code == 200
    clock.now += 60
    refused = post(deployment, secret, {"inputs": ONE})
    assert refused.status_code == 429 and "daily quota" in refused.json()["error"]["message"]
    assert int(refused["Retry-After"]) == int(86400 - (clock.now % 86400)) + 1


@pytest.mark.parametrize("monitored", [False, True], ids=["unmonitored", "monitored"])
def test_limits_are_per_key(deploy, issue, post, clock, monitored):
    deployment = deploy(burst=1, rate_per_minute=1, max_batch=1, daily_quota=1, monitor_enabled=monitored)
    _, first = issue(deployment, owner="a")
    _, second = issue(deployment, owner="b")
    assert post(deployment, first, {"inputs": ONE}).status_code == 200
    assert post(deployment, first, {"inputs": ONE}).status_code == 429
    assert post(deployment, second, {"inputs": ONE}).status_code == 200


def test_a_deployment_whose_batch_does_not_fit_its_burst_is_refused(deploy):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as excinfo:
        deploy(burst=4, max_batch=8)
    assert "full batch" in str(excinfo.value)


def random_queries(n, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 1.0, size=(n, 1, 8, 8))


def attack(deployment, secret, post, n=300, batch=10):
    """Uniform random queries (the query-synthesis attacker) until ``n`` or a refusal."""
    x = random_queries(n)
    last = None
    for start in range(0, n, batch):
        last = post(deployment, secret, {"inputs": x[start : start + batch].tolist()})
        if last.status_code != 200:
            break
    return last


def test_a_random_query_attacker_is_flagged_and_an_alert_recorded(
    deploy, issue, post, django_capture_on_commit_callbacks
):
    deployment = deploy(monitor_action=MonitorAction.LOG)
    key, secret = issue(deployment, owner="scraper")
    with django_capture_on_commit_callbacks(execute=True):
        attack(deployment, secret, post)
    alert = MonitorAlert.objects.get(deployment=deployment)
    assert alert.key == key and 1 <= alert.queries <= 200
    assert alert.monitors and all(isinstance(name, str) for name in alert.monitors)
    key.refresh_from_db()
    assert key.flagged_at is not None and key.enforced_action == ""
    assert not Incident.objects.exists()  # open_incident is off


@pytest.mark.parametrize("policy", [OutputPolicy.FULL, OutputPolicy.REVERSE_SIGMOID, OutputPolicy.LABEL_ONLY])
def test_a_benign_client_replaying_test_digits_is_not_flagged_under_any_policy(
    deploy, issue, post, digits_test, policy
):
    # The monitor reads the model's own confidence, not the perturbed answer the policy sends.
    deployment = deploy(monitor_action=MonitorAction.BLOCK, output_policy=policy)
    key, secret = issue(deployment, owner="benign")
    x = digits_test[0][:300]
    for start in range(0, 300, 10):
        assert post(deployment, secret, {"inputs": x[start : start + 10].tolist()}).status_code == 200
    key.refresh_from_db()
    assert key.flagged_at is None and not MonitorAlert.objects.exists()


def test_label_only_action_switches_only_the_flagged_key_to_labels(deploy, issue, post, digits_test):
    deployment = deploy(monitor_action=MonitorAction.LABEL_ONLY, output_policy=OutputPolicy.FULL)
    _, attacker = issue(deployment, owner="scraper")
    _, other = issue(deployment, owner="app")
    attack(deployment, attacker, post)
    answer = post(deployment, attacker, {"inputs": ONE}).json()["predictions"][0]
    assert answer["probabilities"] is None and answer["top_k"] is None and isinstance(answer["label"], int)
    assert post(deployment, other, {"inputs": ONE}).json()["predictions"][0]["probabilities"] is not None


def test_block_action_refuses_the_flagged_key_with_403(deploy, issue, post):
    deployment = deploy(monitor_action=MonitorAction.BLOCK)
    _, secret = issue(deployment, owner="scraper")
    last = attack(deployment, secret, post)
    assert last.status_code == 403 and last.json()["error"]["code"] == "key_blocked"


def test_throttle_action_lowers_the_flagged_keys_rate(deploy, issue, post, clock):
    # Limits the attack never reaches, and a frozen clock: only the throttle can refuse, whatever the timing.
    deployment = deploy(
        monitor_action=MonitorAction.THROTTLE, throttle_per_minute=10, burst=1000, rate_per_minute=100_000, max_batch=10
    )
    key, secret = issue(deployment, owner="scraper")
    last = attack(deployment, secret, post, n=300, batch=10)
    key.refresh_from_db()
    assert key.enforced_action == MonitorAction.THROTTLE
    assert last.status_code == 429  # in the minute it was flagged, the throttle (10 a minute) stopped the attack
    clock.now += 60  # a fresh minute: the flagged key gets throttle_per_minute inputs in it, then 429
    codes = [post(deployment, secret, {"inputs": ONE}).status_code for _ in range(12)]
    assert codes == [200] * 10 + [429] * 2


def test_lifting_the_action_lets_the_key_through_again(deploy, issue, post, teammate):
    from evaluations.serving.services import consumer_key_clear_action

    deployment = deploy(monitor_action=MonitorAction.BLOCK)
    key, secret = issue(deployment, owner="scraper")
    attack(deployment, secret, post)
    key.refresh_from_db()
    consumer_key_clear_action(actor=teammate, key=key)
    assert post(deployment, secret, {"inputs": ONE}).status_code == 200


def test_an_alert_opens_an_incident_when_the_deployment_asks(
    deploy, issue, post, system, django_capture_on_commit_callbacks
):
    deployment = deploy(open_incident=True)
    key, secret = issue(deployment, owner="scraper")
    with django_capture_on_commit_callbacks(execute=True):
        attack(deployment, secret, post)
    incident = Incident.objects.get()
    assert list(incident.systems.all()) == [system]
    assert incident.detection_source == "monitor_alert" and key.prefix in incident.title
    evidence = incident.evidence.get()
    assert evidence.reference == f"serving alert {MonitorAlert.objects.get().pk}"


def test_the_monitor_state_is_kept_in_the_cache_per_key(deploy, issue, post):
    from evaluations.serving import monitor

    deployment = deploy()
    key, secret = issue(deployment)
    post(deployment, secret, {"inputs": np.full((3, 1, 8, 8), 0.5).tolist()})
    client = monitor.stored_state(deployment, key.pk)
    assert client is not None and client.queries == 3
    assert ConsumerKey.objects.get(pk=key.pk).last_used_at is not None


def test_a_less_sensitive_entropy_threshold_still_flags_random_queries(deploy, issue, post):
    deployment = deploy(monitor_entropy_max_fraction=0.5)
    key, secret = issue(deployment, owner="scraper")
    attack(deployment, secret, post)
    alert = MonitorAlert.objects.get(key=key)
    assert alert.queries <= 200 and alert.state["uncertain_fraction"] > 0.5


def test_lifting_the_action_on_a_key_the_monitor_never_flagged_is_a_conflict(deploy, issue, teammate):
    from evaluations.serving.services import consumer_key_clear_action
    from garrison.core.exceptions import StateConflict

    key, _ = issue(deploy())
    with pytest.raises(StateConflict):
        consumer_key_clear_action(actor=teammate, key=key)
