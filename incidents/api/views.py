"""API views for incidents and audit reports."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from garrison.accounts.roles import Capability
from garrison.core.api.pagination import paginated_response
from incidents import selectors, services
from incidents.api import serializers as s
from incidents.models import ReportStatus
from threatmodel.selectors import system_get_by_id


class IncidentListView(APIView):
    """Incidents of the caller's teams."""

    @extend_schema(responses=s.IncidentOutput(many=True))
    def get(self, request: Request) -> Response:
        """List incidents, newest first (``?status=``, ``?severity=``)."""
        incidents = selectors.incident_list(
            user=request.user,
            status=request.query_params.get("status", ""),
            severity=request.query_params.get("severity", ""),
        )
        return paginated_response(request=request, queryset=incidents, serializer_class=s.IncidentOutput, view=self)

    @extend_schema(request=s.IncidentCreateInput, responses={201: s.IncidentDetailOutput})
    def post(self, request: Request) -> Response:
        """Open an incident on systems of one team (editors)."""
        data = s.IncidentCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        systems = [system_get_by_id(user=request.user, id=i, capability=Capability.EDIT) for i in fields.pop("systems")]
        incident = services.incident_open(actor=request.user, team=systems[0].team, systems=systems, **fields)
        incident = selectors.incident_get(user=request.user, id=incident.pk)
        return Response(s.IncidentDetailOutput(incident).data, status=status.HTTP_201_CREATED)


class IncidentDetailView(APIView):
    """One incident."""

    @extend_schema(responses=s.IncidentDetailOutput)
    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """Read an incident with its timeline, evidence and actions."""
        return Response(s.IncidentDetailOutput(selectors.incident_get(user=request.user, id=id)).data)


class IncidentTransitionView(APIView):
    """Move an incident to its next stage."""

    @extend_schema(request=s.TransitionInput, responses=s.IncidentDetailOutput)
    def post(self, request: Request, id: int) -> Response:  # noqa: A002
        """Guarded: one stage at a time; 409 otherwise; closing needs root cause, lessons and done actions."""
        incident = selectors.incident_get(user=request.user, id=id, capability=Capability.EDIT)
        data = s.TransitionInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.incident_transition(actor=request.user, incident=incident, to=data.validated_data["to"])
        return Response(s.IncidentDetailOutput(selectors.incident_get(user=request.user, id=id)).data)


class IncidentTimelineView(APIView):
    """Add to an incident's timeline."""

    @extend_schema(request=s.TimelineInput, responses={201: s.IncidentDetailOutput})
    def post(self, request: Request, id: int) -> Response:  # noqa: A002
        """Entries cannot be in the future or before the detection."""
        incident = selectors.incident_get(user=request.user, id=id, capability=Capability.EDIT)
        data = s.TimelineInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.timeline_add(actor=request.user, incident=incident, **data.validated_data)
        incident = selectors.incident_get(user=request.user, id=id)
        return Response(s.IncidentDetailOutput(incident).data, status=status.HTTP_201_CREATED)


class ReportListView(APIView):
    """Audit reports."""

    @extend_schema(request=s.ReportInput, responses={202: s.ReportOutput})
    def post(self, request: Request) -> Response:
        """Queue a system or portfolio audit; poll ``GET /api/reports/<id>/`` until it is ready."""
        data = s.ReportInput(data=request.data)
        data.is_valid(raise_exception=True)
        system_id = data.validated_data["system"]
        system = system_get_by_id(user=request.user, id=system_id) if system_id else None
        report = services.report_request(actor=request.user, kind=data.validated_data["kind"], system=system)
        return Response(s.ReportOutput(report).data, status=status.HTTP_202_ACCEPTED)


class ReportDetailView(APIView):
    """One report's status."""

    @extend_schema(responses=s.ReportOutput)
    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """Rendering status, progress, hash."""
        return Response(s.ReportOutput(selectors.report_get(user=request.user, id=id)).data)


class ReportDownloadView(APIView):
    """A ready report's PDF."""

    @extend_schema(responses={(200, "application/pdf"): OpenApiResponse(description="The PDF")})
    def get(self, request: Request, id: int) -> FileResponse:  # noqa: A002
        """Download the PDF (404 until it is ready or after it expired)."""
        report = selectors.report_get(user=request.user, id=id)
        path = Path(settings.MEDIA_ROOT) / report.file_path
        if report.status != ReportStatus.READY or not path.is_file():
            raise Http404("The report is not ready, or it has expired.")
        response = FileResponse(
            path.open("rb"), content_type="application/pdf", as_attachment=True, filename=f"report-{report.pk}.pdf"
        )
        response["X-Document-SHA256"] = report.sha256
        return response
