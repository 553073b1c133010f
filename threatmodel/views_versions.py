"""The threat-model editor: a version's diagram, components, flows, threats, controls and review."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from garrison.accounts.roles import Capability
from garrison.accounts.selectors import capabilities_in
from garrison.core.forms import form_errors_to_messages, run_service
from threatmodel import selectors, services
from threatmodel.catalog import COMPONENT_TYPES, STRIDE_CATEGORIES
from threatmodel.dfd import DiagramUnavailable, diagram_svg
from threatmodel.diff import diff_versions
from threatmodel.forms_versions import (
    BoundaryForm,
    ComponentForm,
    ControlForm,
    CustomThreatForm,
    FlowForm,
    ReviewForm,
    RiskAcceptanceForm,
    SubmitForm,
    ThreatDecisionForm,
    ThreatEditForm,
)
from threatmodel.models import ThreatModelVersion, ThreatStatus

REGISTER_SORTS = {
    "residual": lambda r: (-r.residual.score, -r.threat.inherent_risk, r.threat.title),
    "inherent": lambda r: (-r.threat.inherent_risk, r.threat.title),
    "title": lambda r: r.threat.title.lower(),
    "stride": lambda r: (r.threat.stride, -r.residual.score),
}


def _back(version: ThreatModelVersion, anchor: str = "") -> HttpResponse:
    return redirect(reverse("threatmodel:version-detail", kwargs={"pk": version.pk}) + (f"#{anchor}" if anchor else ""))


@login_required
@require_POST
def threat_model_create(request: HttpRequest, system_id: int) -> HttpResponse:
    """Start a threat model for a system."""
    system = selectors.system_get_by_id(user=request.user, id=system_id, capability=Capability.EDIT)
    try:
        threat_model = services.threat_model_create(
            actor=request.user, system=system, title=request.POST.get("title", "")
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(system)
    return redirect(threat_model.versions.get())


@login_required
def version_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A version: diagram, elements, threats, controls, heat map, register and review actions."""
    version = selectors.version_get(user=request.user, id=pk)
    content = selectors.version_content(user=request.user, version=version)
    caps = capabilities_in(request.user, version.threat_model.system.team_id)
    try:
        diagram, diagram_error = (
            diagram_svg(boundaries=content.boundaries, components=content.components, flows=content.flows),
            "",
        )
    except DiagramUnavailable as error:
        diagram, diagram_error = "", str(error)
    stride, component, level = (request.GET.get(k, "") for k in ("stride", "component", "level"))
    rows = [
        r
        for r in content.register
        if (not stride or r.threat.stride == stride)
        and (
            not component
            or str(r.threat.component_id) == component
            or (r.threat.flow_id and component in (str(r.threat.flow.source_id), str(r.threat.flow.target_id)))
        )
        and (not level or r.residual.level == level)
    ]
    sort = request.GET.get("sort", "residual")
    rows.sort(key=REGISTER_SORTS.get(sort, REGISTER_SORTS["residual"]))
    versions = list(version.threat_model.versions.order_by("-number"))
    context = {
        "version": version,
        "threat_model": version.threat_model,
        "system": version.threat_model.system,
        "content": content,
        "rows": rows,
        "sort": sort,
        "filters": {"stride": stride, "component": component, "level": level},
        "diagram": diagram,
        "diagram_error": diagram_error,
        "heat_inherent": content.heat_map(),
        "heat_residual": content.heat_map(residual=True),
        "versions": versions,
        "previous": next((v for v in versions if v.number < version.number), None),
        "can_edit": version.is_editable and Capability.EDIT in caps,
        "can_approve": Capability.APPROVE in caps,
        "can_start_draft": Capability.EDIT in caps and not any(v.status in ("draft", "in_review") for v in versions),
        "stride_categories": STRIDE_CATEGORIES,
        "component_types": COMPONENT_TYPES,
        "forms": {
            "boundary": BoundaryForm(),
            "component": ComponentForm(version=version),
            "flow": FlowForm(version=version),
            "threat": CustomThreatForm(version=version),
            "control": ControlForm(version=version),
            "submit": SubmitForm(),
            "review": ReviewForm(),
            "decision": ThreatDecisionForm(),
            "accept_risk": RiskAcceptanceForm(),
        },
    }
    return render(request, "threatmodel/version_detail.html", context)


def _editable_version(request: HttpRequest, pk: int) -> ThreatModelVersion:
    return selectors.version_get(user=request.user, id=pk, capability=Capability.EDIT)


@login_required
@require_POST
def version_start_draft(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a new draft copied from this threat model's latest version."""
    version = _editable_version(request, pk)
    created: list[ThreatModelVersion] = []
    ok = run_service(
        request,
        lambda: created.append(services.version_start_draft(actor=request.user, threat_model=version.threat_model)),
        "New draft started.",
    )
    return redirect(created[0]) if ok else _back(version)


@login_required
@require_POST
def version_submit(request: HttpRequest, pk: int) -> HttpResponse:
    """Send the draft for review."""
    version = _editable_version(request, pk)
    form = SubmitForm(request.POST)
    form.is_valid()
    run_service(
        request,
        lambda: services.version_submit(
            actor=request.user, version=version, summary=form.cleaned_data.get("summary", "")
        ),
        "Submitted for review.",
    )
    return _back(version)


@login_required
@require_POST
def version_review(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve the version or send it back to draft."""
    version = selectors.version_get(user=request.user, id=pk, capability=Capability.APPROVE)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        form_errors_to_messages(request, form)
        return _back(version)
    note = form.cleaned_data["note"]
    if form.cleaned_data["decision"] == "approve":
        run_service(
            request,
            lambda: services.version_approve(actor=request.user, version=version, note=note),
            f"Version {version.number} approved.",
        )
    else:
        run_service(
            request,
            lambda: services.version_send_back(actor=request.user, version=version, note=note),
            f"Version {version.number} sent back to draft.",
        )
    return _back(version)


def _add_element(
    request: HttpRequest, pk: int, form: Any, create: Callable[..., Any], success: Callable[[dict], str]
) -> HttpResponse:
    """Validate a posted element form and create the element in the draft through its service."""
    version = _editable_version(request, pk)
    if form.is_valid():
        run_service(
            request,
            lambda: create(actor=request.user, version=version, **form.cleaned_data),
            success(form.cleaned_data),
        )
    else:
        form_errors_to_messages(request, form)
    return _back(version, "elements")


@login_required
@require_POST
def boundary_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a trust boundary."""
    return _add_element(
        request,
        pk,
        BoundaryForm(request.POST),
        services.boundary_create,
        lambda data: f"Added trust boundary {data['name']}.",
    )


@login_required
@require_POST
def component_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a component; the catalog's threats for its type are suggested."""
    version = _editable_version(request, pk)
    return _add_element(
        request,
        pk,
        ComponentForm(request.POST, version=version),
        services.component_create,
        lambda data: f"Added {data['name']}; review its suggested threats below.",
    )


@login_required
@require_POST
def flow_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a data flow."""
    version = _editable_version(request, pk)
    return _add_element(
        request,
        pk,
        FlowForm(request.POST, version=version),
        services.flow_create,
        lambda data: "Added the data flow; review its suggested threats below.",
    )


@login_required
@require_POST
def element_delete(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Delete a boundary, component, flow, threat or control."""
    element = selectors.element_get(user=request.user, kind=kind, id=pk, capability=Capability.EDIT)
    delete = {
        "boundary": services.boundary_delete,
        "component": services.component_delete,
        "flow": services.flow_delete,
        "threat": services.threat_delete,
        "control": services.control_delete,
    }[kind]
    run_service(request, lambda: delete(actor=request.user, **{kind: element}), f"Deleted {element}.")
    return _back(element.version, "threats" if kind in ("threat", "control") else "elements")


@login_required
@require_POST
def threat_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Accept a threat or mark it not applicable."""
    threat = selectors.element_get(user=request.user, kind="threat", id=pk, capability=Capability.EDIT)
    form = ThreatDecisionForm(request.POST)
    if form.is_valid():
        label = "accepted" if form.cleaned_data["status"] == ThreatStatus.ACCEPTED else "marked not applicable"
        run_service(
            request,
            lambda: services.threat_decide(actor=request.user, threat=threat, **form.cleaned_data),
            f"'{threat.title}' {label}.",
        )
    else:
        form_errors_to_messages(request, form)
    return _back(threat.version, f"threat-{threat.pk}")


@login_required
@require_POST
def threat_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a custom threat."""
    version = _editable_version(request, pk)
    form = CustomThreatForm(request.POST, version=version)
    if form.is_valid():
        data = dict(form.cleaned_data)
        element = data.pop("element")
        run_service(
            request,
            lambda: services.threat_create(actor=request.user, version=version, **data, **element),
            f"Added threat '{data['title']}'.",
        )
    else:
        form_errors_to_messages(request, form)
    return _back(version, "threats")


@login_required
def threat_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit a threat's text, mapping and scores; approvers can also accept its residual risk here."""
    threat = selectors.element_get(user=request.user, kind="threat", id=pk)
    initial = {name: getattr(threat, name) for name in ThreatEditForm.base_fields}
    form = ThreatEditForm(request.POST or None, initial=initial)
    if request.method == "POST":
        selectors.element_get(user=request.user, kind="threat", id=pk, capability=Capability.EDIT)
        if form.is_valid() and run_service(
            request,
            lambda: services.threat_update(actor=request.user, threat=threat, **form.cleaned_data),
            f"Saved '{form.cleaned_data['title']}'.",
            form=form,
        ):
            return _back(threat.version, f"threat-{threat.pk}")
    caps = capabilities_in(request.user, threat.version.threat_model.system.team_id)
    return render(
        request,
        "threatmodel/threat_edit.html",
        {
            "threat": threat,
            "version": threat.version,
            "form": form,
            "accept_form": RiskAcceptanceForm(),
            "can_edit": threat.version.is_editable and Capability.EDIT in caps,
            "can_approve": threat.version.is_editable and Capability.APPROVE in caps,
            "atlas": selectors.atlas_names([*threat.atlas_techniques, *threat.suggested_mitigations]),
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def threat_accept_risk(request: HttpRequest, pk: int) -> HttpResponse:
    """Accept a threat's residual risk (approvers)."""
    threat = selectors.element_get(user=request.user, kind="threat", id=pk, capability=Capability.APPROVE)
    form = RiskAcceptanceForm(request.POST)
    if form.is_valid():
        run_service(
            request,
            lambda: services.threat_accept_risk(actor=request.user, threat=threat, **form.cleaned_data),
            f"Residual risk of '{threat.title}' accepted until {form.cleaned_data['expires']}.",
        )
    else:
        form_errors_to_messages(request, form)
    return _back(threat.version, f"threat-{threat.pk}")


@login_required
def control_form(request: HttpRequest, pk: int, control_id: int | None = None) -> HttpResponse:
    """Add (POST to the version) or edit a control."""
    version = selectors.version_get(user=request.user, id=pk)
    control = (
        selectors.element_get(user=request.user, kind="control", id=control_id) if control_id is not None else None
    )
    if control is not None and control.version_id != version.pk:
        return redirect("threatmodel:control-edit", pk=control.version_id, control_id=control.pk)
    initial = {}
    if control is not None:
        initial = {name: getattr(control, name) for name in ControlForm.base_fields if name != "threats"}
        initial["threats"] = list(control.threats.all())
    form = ControlForm(request.POST or None, version=version, initial=initial)
    if request.method == "POST":
        _editable_version(request, pk)
        if form.is_valid():
            data = dict(form.cleaned_data)
            threats = list(data.pop("threats"))

            def action() -> Any:
                if control is None:
                    return services.control_create(actor=request.user, version=version, threats=threats, **data)
                return services.control_update(actor=request.user, control=control, threats=threats, **data)

            if run_service(request, action, f"Saved control '{data['name']}'.", form=form):
                return _back(version, "controls")
    return render(
        request,
        "threatmodel/control_form.html",
        {"form": form, "version": version, "control": control},
        status=400 if form.errors else 200,
    )


@login_required
def version_diff(request: HttpRequest, pk: int) -> HttpResponse:
    """The structural diff between this version and another of the same threat model."""
    version = selectors.version_get(user=request.user, id=pk)
    versions = list(version.threat_model.versions.order_by("-number"))
    against_id = request.GET.get("against", "")
    default = next((v for v in versions if v.number < version.number), None)
    other = next((v for v in versions if str(v.pk) == against_id), default)
    result = None
    if other is not None:
        old, new = (other, version) if other.number < version.number else (version, other)
        result = diff_versions(old, new)
    return render(
        request,
        "threatmodel/version_diff.html",
        {"version": version, "other": other, "versions": versions, "diff": result},
    )
