"""Ingestion pages: quarantine per system, batch review and decision, dataset provenance."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from evaluations import selectors as evaluation_selectors
from evaluations.ingestion import selectors, services
from evaluations.ingestion.forms import (
    BatchFilterForm,
    BatchUploadForm,
    DecisionForm,
    PolicyCreateForm,
    PolicyForm,
)
from evaluations.ingestion.models import BatchStatus, DatasetVersionRecord
from evaluations.ingestion.presentation import batch_chart, flagged_records, provenance_svg
from evaluations.models import DatasetKind
from garrison.accounts.roles import Capability
from garrison.accounts.selectors import capabilities_in
from garrison.core.forms import add_service_errors, form_errors_to_messages, run_service
from threatmodel.selectors import system_get_by_id, system_list


@login_required
def batch_list(request: HttpRequest) -> HttpResponse:
    """Every batch the user can see; held batches first is the quarantine queue."""
    form = BatchFilterForm(request.GET or None)
    status = form.cleaned_data.get("status", "") if form.is_bound and form.is_valid() else ""
    batches = selectors.batch_list(user=request.user, status=status)
    page = Paginator(batches, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "ingestion/batch_list.html",
        {
            "form": form,
            "page": page,
            "systems": system_list(user=request.user),
            "policies": selectors.policy_list(user=request.user),
            "held": selectors.batch_list(user=request.user, status=BatchStatus.HELD).count(),
        },
    )


@login_required
def system_ingestion(request: HttpRequest, system_id: int) -> HttpResponse:
    """A system's governed datasets, their quarantine and the form to govern another dataset."""
    system = system_get_by_id(user=request.user, id=system_id)
    caps = capabilities_in(request.user, system.team_id)
    policies = list(selectors.policy_list(user=request.user, system_id=system.pk))
    governed = {p.dataset_name for p in policies}
    candidates = [
        d
        for d in evaluation_selectors.dataset_list(user=request.user, system_id=system.pk)
        if d.kind in (DatasetKind.TSV, DatasetKind.CSV, DatasetKind.NPZ) and d.name not in governed
    ]
    create_form = PolicyCreateForm(request.POST or None, datasets=candidates)
    if request.method == "POST":
        system_get_by_id(user=request.user, id=system_id, capability=Capability.APPROVE_DATA)
        if create_form.is_valid():
            data = create_form.cleaned_data
            dataset = evaluation_selectors.dataset_get(user=request.user, id=data.pop("dataset"))
            try:
                services.policy_create(actor=request.user, dataset=dataset, **data)
            except ValidationError as error:
                add_service_errors(create_form, error)
            else:
                messages.success(
                    request, f"{dataset} is now the accepted base; new data reaches it only through quarantine."
                )
                return redirect("ingestion:system", system_id=system.pk)
    heads = {p.pk: services.policy_head(p) for p in policies}
    return render(
        request,
        "ingestion/system.html",
        {
            "system": system,
            "policies": [(p, heads[p.pk], PolicyForm(instance=p, prefix=f"p{p.pk}")) for p in policies],
            "batches": selectors.batch_list(user=request.user, system_id=system.pk)[:50],
            "create_form": create_form,
            "has_candidates": bool(candidates),
            "can_approve": Capability.APPROVE_DATA in caps,
            "can_push": Capability.PUSH_DATA in caps,
            "upload_form": BatchUploadForm(),
        },
        status=400 if create_form.errors else 200,
    )


@login_required
@require_POST
def policy_update(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a governed dataset's decision policy."""
    policy = selectors.policy_get(user=request.user, id=pk, capability=Capability.APPROVE_DATA)
    form = PolicyForm(request.POST, instance=policy, prefix=f"p{policy.pk}")
    if form.is_valid():
        data = form.cleaned_data
        run_service(
            request,
            lambda: services.policy_update(actor=request.user, policy=policy, **data),
            f"Policy of {policy.dataset_name} saved.",
        )
    else:
        form_errors_to_messages(request, form)
    return redirect("ingestion:system", system_id=policy.system_id)


@login_required
@require_POST
def batch_upload(request: HttpRequest, pk: int) -> HttpResponse:
    """Push a batch file into quarantine from the browser."""
    policy = selectors.policy_get(user=request.user, id=pk, capability=Capability.PUSH_DATA)
    form = BatchUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        form_errors_to_messages(request, form)
        return redirect("ingestion:system", system_id=policy.system_id)
    upload = form.cleaned_data["file"]
    from django.conf import settings

    try:
        if upload.size > settings.GARRISON_INGESTION_MAX_BATCH_BYTES:
            batch = services.batch_push(
                actor=request.user, policy=policy, size=upload.size, filename=upload.name, source="upload"
            )
        else:
            batch = services.batch_push(
                actor=request.user, policy=policy, data=upload.read(), filename=upload.name, source="upload"
            )
    except services.BatchRefused as error:
        messages.error(request, " ".join(error.messages))
        return redirect(error.batch)
    messages.success(request, f"Batch #{batch.pk} is in quarantine; its checks are queued.")
    return redirect(batch)


@login_required
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A batch's check report, flagged records, label chart and the decision form."""
    batch = selectors.batch_get(user=request.user, id=pk)
    caps = capabilities_in(request.user, batch.system.team_id)
    form = DecisionForm(request.POST or None)
    if request.method == "POST":
        batch = selectors.batch_get(user=request.user, id=pk, capability=Capability.APPROVE_DATA)
        if form.is_valid() and run_service(
            request,
            lambda: services.batch_decide(actor=request.user, batch=batch, **form.cleaned_data),
            "Decision recorded.",
            form,
        ):
            return redirect(batch)
    head = services.policy_head(batch.policy)
    return render(
        request,
        "ingestion/batch_detail.html",
        {
            "batch": batch,
            "checks": (batch.report or {}).get("checks", []),
            "chart": batch_chart(batch),
            "flagged": flagged_records(batch),
            "form": form,
            "can_approve": Capability.APPROVE_DATA in caps,
            "can_push": Capability.PUSH_DATA in caps,
            "stale": batch.decidable and batch.base_id != head.pk,
            "head": head,
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def batch_recheck(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a held or failed batch's checks again (against the current accepted version)."""
    batch = selectors.batch_get(user=request.user, id=pk, capability=Capability.PUSH_DATA)
    run_service(request, lambda: services.batch_recheck(actor=request.user, batch=batch), "Checks queued again.")
    return redirect(batch)


@login_required
def provenance(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """The provenance graph and version table of a governed dataset."""
    dataset, policy, records = selectors.provenance_get(user=request.user, dataset_id=dataset_id)
    batches = (
        list(selectors.batches_of_datasets(dataset_ids=[r.dataset_id for r in records]).select_related("system"))
        if records
        else []
    )
    svg, error = provenance_svg(records, batches) if records else ("", "")
    return render(
        request,
        "ingestion/provenance.html",
        {
            "dataset": dataset,
            "policy": policy,
            "records": records,
            "batches": batches,
            "svg": svg,
            "error": error,
            "accepted": DatasetVersionRecord.objects.filter(dataset=dataset).exists(),
        },
    )
