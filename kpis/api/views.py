"""API views for KPIs and the CI/CD gate."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from garrison.accounts.roles import Capability
from garrison.accounts.selectors import require_capability, team_get, team_ids_for
from kpis import selectors, services
from kpis.api import serializers as s
from kpis.gate import (
    EXIT_CODES,
    UnknownModelVersion,
    gate_decide,
    gate_model,
    parse_system_reference,
    to_junit,
    to_sarif,
)
from threatmodel.models import System
from threatmodel.selectors import system_get_by_id


def resolve_system(user, reference: str) -> System:  # noqa: ANN001
    """A system by id or 'team/slug', among the principal's teams; 404 otherwise.

    (The gate reads its system with the model in one query, :func:`kpis.gate.gate_model`; this is
    its fallback that tells an unknown system from an unknown model version.)
    """
    pk, team, slug = parse_system_reference(reference)
    visible = System.objects.filter(team_id__in=team_ids_for(user))
    if pk is not None:
        matches = list(visible.filter(pk=pk)[:1]) if pk >= 0 else []
    else:
        matches = list(visible.filter(slug=slug, **({"team__slug": team} if team else {}))[:2])
    if len(matches) != 1:
        raise Http404("No such system: give its id or 'team/system' slugs.")
    return matches[0]


class GateView(APIView):
    """The CI/CD security gate."""

    @extend_schema(
        request=s.GateInput,
        responses={200: s.GateDecisionOutput, 404: OpenApiResponse(description="Unknown system or model")},
    )
    def post(self, request: Request) -> Response | HttpResponse:
        """Decide pass / warn / fail for a model version; `format` junit or sarif returns those documents."""
        data = s.GateInput(data=request.data)
        data.is_valid(raise_exception=True)
        reference, version = data.validated_data["system"], data.validated_data["model_version"]
        # One read for the usual call; when it finds nothing, the system is read on its own to tell an
        # unknown system from an unknown model version.
        model = gate_model(team_ids=team_ids_for(request.user), reference=reference, version=version)
        system = model.system if model is not None else resolve_system(request.user, reference)
        try:
            decision = gate_decide(actor=request.user, system=system, model_version=version, model=model)
        except UnknownModelVersion as error:
            raise Http404(str(error)) from error
        fmt = data.validated_data.get("format", "json")
        if fmt == "junit":
            return HttpResponse(to_junit(decision), content_type="application/xml")
        if fmt == "sarif":
            return HttpResponse(to_sarif(decision), content_type="application/sarif+json")
        decision.exit_code = EXIT_CODES[decision.decision]
        return Response(s.GateDecisionOutput(decision).data)


class SystemKpiView(APIView):
    """Every KPI of a system."""

    @extend_schema(responses=s.CellOutput(many=True))
    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """Current value, bounds and status of each KPI."""
        system = system_get_by_id(user=request.user, id=id)
        return Response(s.CellOutput(selectors.system_cells(user=request.user, system=system), many=True).data)


class SystemMeasurementView(APIView):
    """A system's KPI time series."""

    @extend_schema(responses=s.MeasurementOutput(many=True))
    def get(self, request: Request, id: int, kpi: str) -> Response:  # noqa: A002
        """Every measurement of one KPI, oldest first."""
        if not selectors.known(kpi):
            raise Http404(f"Unknown KPI '{kpi}'.")
        system = system_get_by_id(user=request.user, id=id)
        series = selectors.trends(user=request.user, system=system).get(kpi, [])
        return Response(s.MeasurementOutput(series, many=True).data)


class ThresholdListView(APIView):
    """A team's KPI thresholds."""

    @extend_schema(responses=s.ThresholdOutput(many=True))
    def get(self, request: Request, team: str) -> Response:
        """Thresholds set by the team (tiers and system overrides); unset ones use the catalog defaults."""
        team_obj = team_get(user=request.user, slug=team)
        return Response(
            s.ThresholdOutput(selectors.threshold_list(user=request.user, team_id=team_obj.id), many=True).data
        )

    @extend_schema(request=s.ThresholdInput, responses={201: s.ThresholdOutput})
    def post(self, request: Request, team: str) -> Response:
        """Set a threshold (approvers)."""
        team_obj = team_get(user=request.user, slug=team)
        require_capability(user=request.user, team_id=team_obj.id, capability=Capability.APPROVE)
        data = s.ThresholdInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        system_id = fields.pop("system")
        system = system_get_by_id(user=request.user, id=system_id) if system_id else None
        threshold = services.threshold_set(actor=request.user, team=team_obj, system=system, **fields)
        return Response(s.ThresholdOutput(threshold).data, status=status.HTTP_201_CREATED)
