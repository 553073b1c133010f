"""An extraction run that targets a deployment: its key, its URL, and what the deployment's guard did.

Called from the extraction runner in a worker. The run issues itself a consumer key (audited, owned by
Garrison, linked to the run), attacks the deployment's real URL (``GARRISON_SERVING_BASE_URL`` + its
path) with engine II's :class:`HttpVictim`, and revokes the key at the end whatever happened. The
deployment's monitor sees the attack as one client; its alert tells whether and when it was flagged.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from evaluations.models import EvaluationRun, RunKind, RunStatus
from evaluations.serving import services
from evaluations.serving.models import ConsumerKey, Deployment, MonitorAlert


class TargetError(Exception):
    """The deployment cannot be attacked by this run; the message says why."""


@dataclass
class Target:
    """The deployment under attack, the run's key and URL, and what the guard did to the attacker."""

    deployment: Deployment
    key: ConsumerKey
    secret: str
    url: str
    policy: dict[str, Any]
    outcome: dict[str, Any] = field(default_factory=dict)


def _run_for(deployment: Deployment, model_sha256: str) -> EvaluationRun:
    """The running extraction run of the deployment's system that targets it with the same model."""
    run = (
        EvaluationRun.objects.filter(
            status=RunStatus.RUNNING,
            kind=RunKind.EXTRACTION,
            system_id=deployment.system_id,
            model_artifact__blob_id=model_sha256,
            config__target="deployment",
            config__deployment=deployment.pk,
        )
        .order_by("-started_at")
        .first()
    )
    if run is None:
        raise TargetError(
            f"Deployment {deployment.pk} serves {deployment.system.name}; an extraction run can attack it only "
            "from that system, with the model version it serves."
        )
    return run


@contextmanager
def deployment_target(deployment_id: int, *, model_sha256: str) -> Iterator[Target]:
    """Issue the run's key, yield the target, and revoke the key at the end."""
    deployment = Deployment.objects.select_related("system", "model_artifact").filter(pk=deployment_id).first()
    if deployment is None:
        raise TargetError(f"Deployment {deployment_id} no longer exists.")
    if deployment.model_artifact.blob_id != model_sha256:
        raise TargetError(
            f"Deployment {deployment} serves model v{deployment.model_artifact.version}, not the run's model; start "
            "the run on the model version the deployment serves."
        )
    run = _run_for(deployment, model_sha256)
    key, secret = services.consumer_key_issue(
        actor=None,
        deployment=deployment,
        owner=f"extraction run #{run.pk}",
        purpose="Garrison extraction evaluation (revoked when the run ends)",
        run=run,
    )
    url = settings.GARRISON_SERVING_BASE_URL.rstrip("/") + deployment.predict_path
    target = Target(deployment=deployment, key=key, secret=secret, url=url, policy=deployment.policy())
    try:
        yield target
    finally:
        alert = MonitorAlert.objects.filter(key=key).order_by("created_at").first()
        target.outcome = {
            "deployment_id": deployment.pk,
            "deployment": str(deployment),
            "endpoint": url,
            "key_prefix": key.prefix,
            "policy": target.policy,
            "monitor_enabled": deployment.monitor_enabled,
            "monitor_action": deployment.monitor_action,
            "flagged": alert is not None,
            "queries_to_detection": alert.queries if alert else None,
            "detected_by": list(alert.monitors) if alert else [],
            "limits": {
                "burst_per_second": deployment.burst,
                "per_minute": deployment.rate_per_minute,
                "per_day": deployment.daily_quota,
            },
        }
        services.consumer_key_revoke(actor=None, key=key)


class MeteredHttpVictim:
    """Builds an :class:`HttpVictim` that counts 429 answers, the seconds waited on them, and a block."""

    @staticmethod
    def create(url: str, secret: str, *, classifier: Any, batch_size: int, max_wait: float) -> Any:
        """The victim; its ``metering`` dict fills in as it is queried."""
        from evaluations.engine.extraction import HttpVictim, VictimResponseError

        class _Metered(HttpVictim):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.metering: dict[str, Any] = {
                    "rate_limited_responses": 0,
                    "seconds_waited": 0.0,
                    "blocked_after": None,
                    "gave_up_waiting": False,
                }
                self._started = time.monotonic()

            def _http_error(self, exc: Any) -> Any:
                error = super()._http_error(exc)
                if exc.code == 429:
                    self.metering["rate_limited_responses"] += 1
                    wait = getattr(error, "retry_after", None) or 1.0
                    if self.metering["seconds_waited"] + min(wait, self.max_retry_wait) > max_wait:
                        self.metering["gave_up_waiting"] = True  # a response error ends the attack here
                        return VictimResponseError(
                            f"Rate limited beyond the run's max_rate_limit_wait ({max_wait:g} s): {error}", status=429
                        )
                    self.metering["seconds_waited"] += min(wait, self.max_retry_wait)
                elif exc.code == 403:
                    self.metering["blocked_after"] = self.queries_used
                return error

        return _Metered(
            url,
            input_shape=classifier.input_shape,
            num_classes=classifier.num_classes,
            bounds=classifier.bounds,
            api_key=secret,
            batch_size=batch_size,
            timeout=30.0,
            retries=10_000,
            max_retry_wait=60.0,
            input_dtype=getattr(classifier, "input_dtype", None) or __import__("torch").float32,
        )
