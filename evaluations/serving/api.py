"""The guarded prediction endpoint: ``POST /api/serve/<system>/<deployment>/predict``.

It speaks exactly the schema of :mod:`evaluations.engine.extraction.victim` (what ``HttpVictim`` sends
and expects). Every refusal comes before the model is called, in the house error shape:

* 401 no or unknown key, 403 revoked or blocked key, 404 unknown deployment, 405 not POST,
  409 disabled deployment or unservable model, 413 body over the size limit, 400 malformed JSON,
  wrong shapes, types, NaN/inf, out-of-bounds values or a batch over the limit, 429 rate limited
  (with ``Retry-After``).

A request costs one query to find the key, its deployment and model (plus, at most once a minute, a
last-used update, and a telemetry row when sampled) and one round trip to the cache, the rate-limit check,
which on a monitored deployment also carries the extraction monitor's log (:mod:`.monitor`). Torch is
imported only when a prediction is made.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from evaluations.serving import monitor, ratelimit, telemetry
from evaluations.serving.keys import hash_key_secret
from evaluations.serving.models import ConsumerKey, DeploymentStatus, MonitorAction, OutputPolicy
from evaluations.serving.validation import RequestError, parse_inputs
from garrison.core.api.errors import error_response

logger = logging.getLogger(__name__)

LAST_USED_PRECISION = 60.0


def _error(status: int, code: str, message: str, *, retry_after: int | None = None) -> JsonResponse:
    response = error_response(status_code=status, code=code, message=message)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="garrison-serving"'
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _secret(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


def _limits(key: ConsumerKey) -> ratelimit.Limits:
    deployment = key.deployment
    if key.enforced_action == MonitorAction.THROTTLE:
        per_minute = min(deployment.throttle_per_minute, deployment.rate_per_minute)
        return ratelimit.Limits(
            per_second=min(deployment.burst, per_minute), per_minute=per_minute, per_day=deployment.daily_quota
        )
    return ratelimit.Limits(
        per_second=deployment.burst, per_minute=deployment.rate_per_minute, per_day=deployment.daily_quota
    )


@csrf_exempt
def predict(request: HttpRequest, system: str, deployment: str) -> HttpResponse:
    """Answer a batch of inputs under the deployment's key checks, limits, output policy and monitor."""
    started = time.perf_counter()
    if request.method != "POST":
        response = _error(405, "method_not_allowed", 'Send predictions as POST with a JSON body {"inputs": [...]}.')
        response["Allow"] = "POST"
        return response
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.GARRISON_SERVING_MAX_BODY_BYTES:
        return _error(
            413,
            "payload_too_large",
            f"The body ({length:,} bytes) is over the server's {settings.GARRISON_SERVING_MAX_BODY_BYTES:,}-byte "
            "limit; split the batch.",
        )
    secret = _secret(request)
    if secret is None:
        return _error(401, "not_authenticated", "Send the deployment's consumer key as 'Authorization: Bearer <key>'.")
    # key_hash is unique: no ORDER BY (compiling the models' default orderings costs more than the query).
    found = (
        ConsumerKey.objects.select_related("deployment__system", "deployment__model_artifact")
        .filter(key_hash=hash_key_secret(secret))
        .order_by()[:1]
    )
    key = next(iter(found), None)
    if key is None:
        return _error(401, "authentication_failed", "Unknown consumer key: check the value, or ask for a new key.")
    dep = key.deployment
    if dep.system.slug != system or dep.slug != deployment:
        return _error(
            404,
            "not_found",
            f"No deployment '{system}/{deployment}' for this key; check the URL (the key belongs to another "
            "deployment).",
        )
    if key.revoked_at is not None:
        return _error(
            403, "key_revoked", f"This key was revoked on {key.revoked_at:%Y-%m-%d}; ask the deployment owner."
        )
    if key.enforced_action == MonitorAction.BLOCK:
        return _error(
            403,
            "key_blocked",
            "The extraction monitor blocked this key; ask the deployment owner to review the alert and lift it.",
        )
    if dep.status != DeploymentStatus.ACTIVE:
        return _error(409, "deployment_disabled", "This deployment is disabled; ask its owner to enable it.")
    artifact = dep.model_artifact
    if artifact.scan_status != "clean":
        return _error(409, "model_not_servable", "The deployed model version is not scanned clean; it is not served.")

    body = request.read(dep.max_body_bytes + 1)
    if len(body) > dep.max_body_bytes:
        return _error(
            413, "payload_too_large", f"The body is over this deployment's {dep.max_body_bytes:,}-byte limit; split it."
        )
    try:
        x = parse_inputs(body, artifact=artifact, max_batch=dep.max_batch)
    except RequestError as exc:
        return _error(400, "invalid", str(exc))

    # On a monitored deployment the rate-limit check also catches this process up on the key's monitor log
    # (one round trip), and the answer is judged without another.
    ticket = monitor.begin(dep.pk, key.pk, config=monitor.config_for(dep)) if dep.monitor_enabled else None
    refusal = ratelimit.consume(key.pk, int(x.shape[0]), _limits(key), monitor=ticket)
    if refusal is not None:
        return _error(429, "rate_limited", refusal.message, retry_after=refusal.retry_after)

    policy = dep.policy()
    if key.enforced_action == MonitorAction.LABEL_ONLY:
        policy = {"name": OutputPolicy.LABEL_ONLY, "enforced_by_monitor": True}
    from evaluations.serving.predictor import predict as run_model

    answer, probabilities = run_model(artifact, x, policy)
    from evaluations.serving.policies import answer_json

    payload: dict[str, Any] = {"predictions": answer_json(answer)}
    state = None
    if ticket is not None:
        state = monitor.observe(dep.pk, key.pk, x, probabilities, answer.labels, config=ticket.config, ticket=ticket)
        if state.flagged and key.flagged_at is None:
            from evaluations.serving.services import monitor_alert_raise

            monitor_alert_raise(deployment=dep, key=key, state=state.to_dict())
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() >= LAST_USED_PRECISION:
        ConsumerKey.objects.filter(pk=key.pk).update(last_used_at=now)
    latency_ms = (time.perf_counter() - started) * 1000.0
    telemetry.maybe_log(
        deployment=dep, key=key, x=x, labels=answer.labels, policy=policy, state=state, latency_ms=latency_ms
    )
    return JsonResponse(payload)
