"""API views for the audit log (read-only: audit events are append-only)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from garrison.accounts.selectors import team_get
from garrison.audit.api.serializers import AuditEventFilterInput, AuditEventOutput
from garrison.audit.selectors import audit_event_list
from garrison.core.api.pagination import paginated_response


class AuditEventListView(APIView):
    """A team's audit events, newest first."""

    @extend_schema(parameters=[AuditEventFilterInput], responses=AuditEventOutput(many=True))
    def get(self, request: Request, team: str) -> Response:
        """List audit events with filters and paging."""
        team_obj = team_get(user=request.user, slug=team)
        filters = AuditEventFilterInput(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        events = audit_event_list(user=request.user, team=team_obj, **filters.validated_data)
        return paginated_response(request=request, queryset=events, serializer_class=AuditEventOutput, view=self)
