"""Pages: deployments, the monitoring page of one deployment, keys, and telemetry export."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from evaluations import selectors as evaluation_selectors
from evaluations.models import ScanStatus
from evaluations.serving import ratelimit, selectors, services, telemetry
from evaluations.serving.forms import ConsumerKeyForm, DeploymentForm
from evaluations.serving.models import Deployment
from evaluations.serving.presentation import score_chart, volume_chart
from evaluations.serving.validation import describe_schema
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import capabilities_in, team_ids_for
from garrison.core.exceptions import StateConflict
from garrison.core.forms import add_service_errors
from threatmodel.selectors import system_get_by_id, system_list


@login_required
def deployment_list(request: HttpRequest) -> HttpResponse:
    """Every deployment the user can see."""
    deployable = team_ids_for(request.user, Capability.DEPLOY)
    systems = [system for system in system_list(user=request.user) if system.team_id in deployable]
    return render(
        request,
        "serving/deployment_list.html",
        {"deployments": selectors.deployment_list(user=request.user), "systems": systems},
    )


def _form_fields(form: DeploymentForm) -> dict[str, Any]:
    return dict(form.cleaned_data)


@login_required
def deployment_create(request: HttpRequest, system_id: int) -> HttpResponse:
    """Deploy one of a system's clean model versions."""
    system = system_get_by_id(user=request.user, id=system_id, capability=Capability.DEPLOY)
    models = evaluation_selectors.model_artifact_list(
        user=request.user, system_id=system.pk, scan_status=ScanStatus.CLEAN
    )
    initial = {"model_artifact": request.GET.get("model") or (models.first().pk if models.exists() else None)}
    form = DeploymentForm(request.POST or None, initial=initial, models=models)
    if request.method == "POST" and form.is_valid():
        fields = _form_fields(form)
        try:
            deployment = services.deployment_create(
                actor=request.user, system=system, model_artifact=fields.pop("model_artifact"), **fields
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Deployed {deployment}. Issue a key to let a client call it.")
            return redirect(deployment)
    return render(
        request,
        "serving/deployment_form.html",
        {"form": form, "system": system, "deployment": None},
        status=400 if form.errors else 200,
    )


@login_required
def deployment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a deployment's policy, limits, monitor and telemetry."""
    deployment = selectors.deployment_get(user=request.user, id=pk, capability=Capability.DEPLOY)
    models = evaluation_selectors.model_artifact_list(
        user=request.user, system_id=deployment.system_id, scan_status=ScanStatus.CLEAN
    )
    form = DeploymentForm(request.POST or None, instance=deployment, models=models)
    if request.method == "POST" and form.is_valid():
        try:
            services.deployment_update(actor=request.user, deployment=deployment, **_form_fields(form))
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Deployment saved.")
            return redirect(deployment)
    deployment.refresh_from_db()
    return render(
        request,
        "serving/deployment_form.html",
        {"form": form, "system": deployment.system, "deployment": deployment},
        status=400 if form.errors else 200,
    )


def _detail(
    request: HttpRequest, deployment: Deployment, *, new_secret: str = "", key_form: Any = None
) -> HttpResponse:
    keys = list(selectors.consumer_key_list(deployment=deployment))
    for key in keys:
        key.inputs_today = ratelimit.used_today(key.pk)
    logs = list(selectors.score_series(deployment=deployment))
    caps = capabilities_in(request.user, deployment.system.team_id)
    return render(
        request,
        "serving/deployment_detail.html",
        {
            "deployment": deployment,
            "keys": keys,
            "alerts": selectors.alert_list(deployment=deployment)[:50],
            "score_chart": score_chart(
                logs,
                prada_threshold=deployment.monitor_prada_threshold,
                entropy_max_fraction=deployment.monitor_entropy_max_fraction,
            ),
            "volume_chart": volume_chart(keys),
            "can_deploy": Capability.DEPLOY in caps,
            "can_evaluate": Capability.SUBMIT_EVALUATIONS in caps,
            "key_form": key_form or ConsumerKeyForm(),
            "new_secret": new_secret,
            "endpoint": request.build_absolute_uri(deployment.predict_path),
            "schema": describe_schema(deployment.model_artifact),
            "policy_params": ", ".join(f"{k} {v}" for k, v in deployment.policy().items() if k != "name"),
        },
        status=400 if key_form is not None and key_form.errors else 200,
    )


@login_required
def deployment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The monitoring page: clients, volumes, detector scores over time, alerts, keys."""
    return _detail(request, selectors.deployment_get(user=request.user, id=pk))


@login_required
@require_POST
def key_issue(request: HttpRequest, pk: int) -> HttpResponse:
    """Issue a consumer key; its secret is shown once on the page that answers."""
    deployment = selectors.deployment_get(user=request.user, id=pk, capability=Capability.DEPLOY)
    form = ConsumerKeyForm(request.POST)
    if not form.is_valid():
        return _detail(request, deployment, key_form=form)
    key, secret = services.consumer_key_issue(actor=request.user, deployment=deployment, **form.cleaned_data)
    messages.success(request, f"Issued key {key.prefix}… for {key.owner}. Copy the secret now: it is not shown again.")
    response = _detail(request, deployment, new_secret=secret)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def key_revoke(request: HttpRequest, pk: int, key_id: int) -> HttpResponse:
    """Revoke a consumer key."""
    deployment = selectors.deployment_get(user=request.user, id=pk, capability=Capability.DEPLOY)
    key = selectors.consumer_key_get(deployment=deployment, id=key_id)
    try:
        services.consumer_key_revoke(actor=request.user, key=key)
    except StateConflict as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Revoked key {key.prefix}….")
    return redirect(deployment)


@login_required
@require_POST
def key_clear(request: HttpRequest, pk: int, key_id: int) -> HttpResponse:
    """Lift the monitor's action on a key after review."""
    deployment = selectors.deployment_get(user=request.user, id=pk, capability=Capability.DEPLOY)
    key = selectors.consumer_key_get(deployment=deployment, id=key_id)
    try:
        services.consumer_key_clear_action(actor=request.user, key=key)
    except StateConflict as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Lifted the monitor's action on key {key.prefix}….")
    return redirect(deployment)


@login_required
def query_log_export(request: HttpRequest, pk: int) -> HttpResponse:
    """Download the deployment's query logs as CSV or JSON Lines (``?format=csv|jsonl``)."""
    deployment = selectors.deployment_get(user=request.user, id=pk, capability=Capability.DEPLOY)
    fmt = request.GET.get("format", "jsonl")
    if fmt not in ("csv", "jsonl"):
        return HttpResponse("Choose format=csv or format=jsonl.", status=400, content_type="text/plain")
    logs = selectors.query_log_list(deployment=deployment)
    rows = telemetry.export_csv(logs) if fmt == "csv" else telemetry.export_jsonl(logs)
    response = StreamingHttpResponse(rows, content_type="text/csv" if fmt == "csv" else "application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="{deployment.system.slug}-{deployment.slug}-queries.{fmt}"'
    return response
