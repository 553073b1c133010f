"""API views for the parts of a version: list and add under the version, read, change and remove by id.

The five kinds share two base views; each kind's subclass names its serializers and
services, so the OpenAPI schema documents every kind on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from garrison.accounts.roles import Capability
from garrison.core.api.pagination import paginated_response
from threatmodel import selectors, services
from threatmodel.api import element_serializers as s
from threatmodel.models import ThreatModelVersion

# Input fields that name another element, and the kind of element they name.
REFERENCES = {
    "boundary": "boundary",
    "component": "component",
    "flow": "flow",
    "source": "component",
    "target": "component",
}


def resolve_references(*, user: Any, version: ThreatModelVersion, data: dict[str, Any]) -> dict[str, Any]:
    """Replace element ids and the owner's username in validated input with the objects they name.

    An element outside the caller's teams is a 404 (from the selector); one of another
    version is left for the service, which answers 400 naming the field.
    """
    resolved = dict(data)
    for field, kind in REFERENCES.items():
        if resolved.get(field) is not None:
            resolved[field] = selectors.element_get(user=user, kind=kind, id=resolved[field])
    if "threats" in resolved:
        resolved["threats"] = [
            selectors.element_get(user=user, kind="threat", id=pk) for pk in dict.fromkeys(resolved["threats"])
        ]
    if "owner" in resolved:
        resolved["owner"] = team_member(version=version, username=resolved["owner"])
    return resolved


def team_member(*, version: ThreatModelVersion, username: str | None) -> Any:
    """The member of the version's team with this username (None for no owner); 400 when there is none."""
    if not username:
        return None
    team_id = version.threat_model.system.team_id
    user = get_user_model().objects.filter(username=username, memberships__team_id=team_id).first()
    if user is None:
        raise ValidationError({"owner": f"No member of this team has the username '{username}'; pick a team member."})
    return user


@dataclass(frozen=True)
class ElementKind:
    """How the API handles one kind of element."""

    name: str
    related_name: str
    output: type[serializers.Serializer]
    create: Callable[..., Any]
    update: Callable[..., Any]
    delete: Callable[..., None]
    create_input: type[serializers.Serializer]
    update_input: type[serializers.Serializer]
    select_related: tuple[str, ...] = ()
    prefetch_related: tuple[str, ...] = ()

    def queryset(self, version: ThreatModelVersion) -> QuerySet:
        """The version's elements of this kind, loaded in a fixed number of queries."""
        return (
            getattr(version, self.related_name)
            .select_related(*self.select_related)
            .prefetch_related(*self.prefetch_related)
        )


BOUNDARY = ElementKind(
    "boundary",
    "trustboundarys",
    s.BoundaryOutput,
    services.boundary_create,
    services.boundary_update,
    services.boundary_delete,
    s.BoundaryCreateInput,
    s.BoundaryUpdateInput,
)
COMPONENT = ElementKind(
    "component",
    "components",
    s.ComponentOutput,
    services.component_create,
    services.component_update,
    services.component_delete,
    s.ComponentCreateInput,
    s.ComponentUpdateInput,
)
FLOW = ElementKind(
    "flow",
    "dataflows",
    s.FlowOutput,
    services.flow_create,
    services.flow_update,
    services.flow_delete,
    s.FlowCreateInput,
    s.FlowUpdateInput,
    select_related=("source", "target"),
)
THREAT = ElementKind(
    "threat",
    "threats",
    s.ThreatOutput,
    services.threat_create,
    services.threat_update,
    services.threat_delete,
    s.ThreatCreateInput,
    s.ThreatUpdateInput,
    select_related=("risk_accepted_by",),
    prefetch_related=("controls",),
)
CONTROL = ElementKind(
    "control",
    "controls",
    s.ControlOutput,
    services.control_create,
    services.control_update,
    services.control_delete,
    s.ControlCreateInput,
    s.ControlUpdateInput,
    select_related=("owner",),
    prefetch_related=("threats",),
)


class ElementListView(APIView):
    """A version's elements of one kind."""

    kind: ElementKind

    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """List the version's elements of this kind."""
        version = selectors.version_get(user=request.user, id=id)
        return paginated_response(
            request=request, queryset=self.kind.queryset(version), serializer_class=self.kind.output, view=self
        )

    def post(self, request: Request, id: int) -> Response:  # noqa: A002
        """Add an element to a draft (editors); 409 on a version that is not a draft."""
        version = selectors.version_get(user=request.user, id=id, capability=Capability.EDIT)
        data = self.kind.create_input(data=request.data)
        data.is_valid(raise_exception=True)
        fields = resolve_references(user=request.user, version=version, data=data.validated_data)
        element = self.kind.create(actor=request.user, version=version, **fields)
        return Response(self.kind.output(element).data, status=status.HTTP_201_CREATED)


class ElementDetailView(APIView):
    """One element."""

    kind: ElementKind

    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """Read the element."""
        element = selectors.element_get(user=request.user, kind=self.kind.name, id=id)
        return Response(self.kind.output(element).data)

    def patch(self, request: Request, id: int) -> Response:  # noqa: A002
        """Change the element (editors); 409 on a version that is not a draft."""
        element = selectors.element_get(user=request.user, kind=self.kind.name, id=id, capability=Capability.EDIT)
        data = self.kind.update_input(data=request.data)
        data.is_valid(raise_exception=True)
        fields = resolve_references(user=request.user, version=element.version, data=data.validated_data)
        element = self.kind.update(actor=request.user, **{self.kind.name: element}, **fields)
        return Response(self.kind.output(element).data)

    def delete(self, request: Request, id: int) -> Response:  # noqa: A002
        """Remove the element (editors); 409 on a version that is not a draft."""
        element = selectors.element_get(user=request.user, kind=self.kind.name, id=id, capability=Capability.EDIT)
        self.kind.delete(actor=request.user, **{self.kind.name: element})
        return Response(status=status.HTTP_204_NO_CONTENT)


def _list_schema(kind: ElementKind, label: str) -> Any:
    return extend_schema_view(
        get=extend_schema(summary=f"List {label}", responses=kind.output(many=True)),
        post=extend_schema(summary=f"Add a {label[:-1]}", request=kind.create_input, responses={201: kind.output}),
    )


def _detail_schema(kind: ElementKind, label: str) -> Any:
    return extend_schema_view(
        get=extend_schema(summary=f"Read a {label}", responses=kind.output),
        patch=extend_schema(summary=f"Change a {label}", request=kind.update_input, responses=kind.output),
        delete=extend_schema(summary=f"Remove a {label}", responses={204: None}),
    )


@_list_schema(BOUNDARY, "trust boundaries")
class BoundaryListView(ElementListView):
    """A version's trust boundaries."""

    kind = BOUNDARY


@_detail_schema(BOUNDARY, "trust boundary")
class BoundaryDetailView(ElementDetailView):
    """One trust boundary."""

    kind = BOUNDARY


@_list_schema(COMPONENT, "components")
class ComponentListView(ElementListView):
    """A version's components."""

    kind = COMPONENT


@_detail_schema(COMPONENT, "component")
class ComponentDetailView(ElementDetailView):
    """One component."""

    kind = COMPONENT


@_list_schema(FLOW, "data flows")
class FlowListView(ElementListView):
    """A version's data flows."""

    kind = FLOW


@_detail_schema(FLOW, "data flow")
class FlowDetailView(ElementDetailView):
    """One data flow."""

    kind = FLOW


@_list_schema(THREAT, "threats")
class ThreatListView(ElementListView):
    """A version's threats."""

    kind = THREAT


@_detail_schema(THREAT, "threat")
class ThreatDetailView(ElementDetailView):
    """One threat."""

    kind = THREAT


@_list_schema(CONTROL, "controls")
class ControlListView(ElementListView):
    """A version's controls."""

    kind = CONTROL


@_detail_schema(CONTROL, "control")
class ControlDetailView(ElementDetailView):
    """One control."""

    kind = CONTROL


class ThreatDecideView(APIView):
    """Decide about a threat."""

    @extend_schema(request=s.ThreatDecideInput, responses=s.ThreatOutput)
    def post(self, request: Request, id: int) -> Response:  # noqa: A002
        """Accept a threat, or mark it not applicable with a justification (editors)."""
        threat = selectors.element_get(user=request.user, kind="threat", id=id, capability=Capability.EDIT)
        data = s.ThreatDecideInput(data=request.data)
        data.is_valid(raise_exception=True)
        threat = services.threat_decide(actor=request.user, threat=threat, **data.validated_data)
        return Response(s.ThreatOutput(threat).data)


class ThreatAcceptRiskView(APIView):
    """Accept a threat's residual risk."""

    @extend_schema(request=s.ThreatAcceptRiskInput, responses=s.ThreatOutput)
    def post(self, request: Request, id: int) -> Response:  # noqa: A002
        """Accept the residual risk until a date (approvers)."""
        threat = selectors.element_get(user=request.user, kind="threat", id=id, capability=Capability.APPROVE)
        data = s.ThreatAcceptRiskInput(data=request.data)
        data.is_valid(raise_exception=True)
        threat = services.threat_accept_risk(actor=request.user, threat=threat, **data.validated_data)
        return Response(s.ThreatOutput(threat).data)
