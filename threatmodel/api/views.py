"""API views for ML systems."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from garrison.accounts.roles import Capability
from garrison.accounts.selectors import team_get
from garrison.core.api.pagination import paginated_response
from threatmodel import selectors, services
from threatmodel.api import serializers as s


class SystemListView(APIView):
    """Systems in the caller's teams."""

    @extend_schema(parameters=[s.SystemFilterInput], responses=s.SystemOutput(many=True))
    def get(self, request: Request) -> Response:
        """List systems with search, filters and paging."""
        filters = s.SystemFilterInput(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        data = dict(filters.validated_data)
        data.pop("page", None)
        data.pop("page_size", None)
        systems = selectors.system_list(user=request.user, team_slug=data.pop("team"), **data)
        return paginated_response(request=request, queryset=systems, serializer_class=s.SystemOutput, view=self)

    @extend_schema(request=s.SystemCreateInput, responses={201: s.SystemOutput})
    def post(self, request: Request) -> Response:
        """Register a system (editors)."""
        data = s.SystemCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        team = team_get(user=request.user, slug=fields.pop("team"), capability=Capability.EDIT)
        system = services.system_create(actor=request.user, team=team, **fields)
        return Response(s.SystemOutput(system).data, status=status.HTTP_201_CREATED)


class SystemDetailView(APIView):
    """One system."""

    @extend_schema(responses=s.SystemOutput)
    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """Read a system."""
        return Response(s.SystemOutput(selectors.system_get_by_id(user=request.user, id=id)).data)

    @extend_schema(request=s.SystemUpdateInput, responses=s.SystemOutput)
    def patch(self, request: Request, id: int) -> Response:  # noqa: A002
        """Change a system (editors)."""
        system = selectors.system_get_by_id(user=request.user, id=id, capability=Capability.EDIT)
        data = s.SystemUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        system = services.system_update(actor=request.user, system=system, **data.validated_data)
        return Response(s.SystemOutput(system).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: int) -> Response:  # noqa: A002
        """Delete a system (team admins)."""
        system = selectors.system_get_by_id(user=request.user, id=id, capability=Capability.ADMIN)
        services.system_delete(actor=request.user, system=system)
        return Response(status=status.HTTP_204_NO_CONTENT)
