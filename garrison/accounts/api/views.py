"""API views for the caller, teams, members and tokens."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from garrison.accounts import selectors, services
from garrison.accounts.api import serializers as s
from garrison.accounts.models import Team
from garrison.accounts.principals import TokenPrincipal


class MeView(APIView):
    """The authenticated caller and its roles."""

    @extend_schema(responses=s.MeOutput)
    def get(self, request: Request) -> Response:
        """Who am I, and what may I do in each team."""
        user = request.user
        roles = selectors.team_roles(user)
        teams = Team.objects.filter(id__in=roles).order_by("name")
        data = {
            "kind": "token" if isinstance(user, TokenPrincipal) else "user",
            "username": user.get_username(),
            "teams": [
                {
                    "slug": team.slug,
                    "name": team.name,
                    "role": roles[team.id],
                    "capabilities": sorted(selectors.capabilities_in(user, team.id)),
                }
                for team in teams
            ],
        }
        return Response(s.MeOutput(data).data)


class TeamListView(APIView):
    """Teams the caller belongs to."""

    @extend_schema(responses=s.TeamOutput(many=True))
    def get(self, request: Request) -> Response:
        """List the caller's teams."""
        return Response(s.TeamOutput(selectors.team_list(user=request.user), many=True).data)


class MembershipListView(APIView):
    """A team's members."""

    @extend_schema(responses=s.MembershipOutput(many=True))
    def get(self, request: Request, team: str) -> Response:
        """List members."""
        team_obj = selectors.team_get(user=request.user, slug=team)
        members = selectors.membership_list(user=request.user, team=team_obj)
        return Response(s.MembershipOutput(members, many=True).data)

    @extend_schema(request=s.MembershipCreateInput, responses={201: s.MembershipOutput})
    def post(self, request: Request, team: str) -> Response:
        """Add a member (team admins)."""
        team_obj = selectors.team_get(user=request.user, slug=team)
        data = s.MembershipCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_add(actor=request.user, team=team_obj, **data.validated_data)
        return Response(s.MembershipOutput(membership).data, status=status.HTTP_201_CREATED)


class MembershipDetailView(APIView):
    """One membership."""

    @extend_schema(request=s.MembershipUpdateInput, responses=s.MembershipOutput)
    def patch(self, request: Request, team: str, id: int) -> Response:  # noqa: A002
        """Change a member's role (team admins)."""
        team_obj = selectors.team_get(user=request.user, slug=team)
        membership = selectors.membership_get(user=request.user, team=team_obj, id=id)
        data = s.MembershipUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_change_role(
            actor=request.user, membership=membership, role=data.validated_data["role"]
        )
        return Response(s.MembershipOutput(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, team: str, id: int) -> Response:  # noqa: A002
        """Remove a member (team admins)."""
        team_obj = selectors.team_get(user=request.user, slug=team)
        membership = selectors.membership_get(user=request.user, team=team_obj, id=id)
        services.membership_remove(actor=request.user, membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiTokenListView(APIView):
    """A team's API tokens (team admins)."""

    @extend_schema(responses=s.ApiTokenOutput(many=True))
    def get(self, request: Request, team: str) -> Response:
        """List tokens, without secrets."""
        team_obj = selectors.team_get(user=request.user, slug=team)
        return Response(s.ApiTokenOutput(selectors.api_token_list(user=request.user, team=team_obj), many=True).data)

    @extend_schema(request=s.ApiTokenCreateInput, responses={201: s.ApiTokenCreatedOutput})
    def post(self, request: Request, team: str) -> Response:
        """Create a token; the secret is in this response only."""
        team_obj = selectors.team_get(user=request.user, slug=team)
        data = s.ApiTokenCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        token, secret = services.api_token_create(actor=request.user, team=team_obj, **data.validated_data)
        token.secret = secret
        return Response(s.ApiTokenCreatedOutput(token).data, status=status.HTTP_201_CREATED)


class ApiTokenRevokeView(APIView):
    """Revoke one API token (team admins)."""

    @extend_schema(request=None, responses=s.ApiTokenOutput)
    def post(self, request: Request, team: str, id: int) -> Response:  # noqa: A002
        """Revoke the token; it stops working at once."""
        team_obj = selectors.team_get(user=request.user, slug=team)
        token = selectors.api_token_get(user=request.user, team=team_obj, id=id)
        token = services.api_token_revoke(actor=request.user, token=token)
        return Response(s.ApiTokenOutput(token).data)
