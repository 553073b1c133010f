"""API views for threat models, versions (content, review transitions, diff) and ATLAS reference data."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from garrison.accounts.roles import Capability
from garrison.core.api.pagination import paginated_response
from threatmodel import selectors, services
from threatmodel.api import version_serializers as s
from threatmodel.diff import diff_versions
from threatmodel.models import AtlasName, ThreatModel, ThreatModelVersion


def _versions() -> QuerySet[ThreatModelVersion]:
    return ThreatModelVersion.objects.select_related("threat_model", "author", "submitted_by", "reviewed_by")


def _threat_model_output(threat_model: ThreatModel) -> dict:
    threat_model = ThreatModel.objects.prefetch_related(Prefetch("versions", queryset=_versions())).get(
        pk=threat_model.pk
    )
    return s.ThreatModelOutput(threat_model).data


class SystemThreatModelListView(APIView):
    """A system's threat models."""

    @extend_schema(responses=s.ThreatModelOutput(many=True))
    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """List the system's threat models with their versions."""
        system = selectors.system_get_by_id(user=request.user, id=id)
        # The selector prefetches versions without ``submitted_by``; swap in one prefetch with every person.
        threat_models = (
            selectors.threat_model_list(user=request.user, system=system)
            .prefetch_related(None)
            .prefetch_related(Prefetch("versions", queryset=_versions()))
        )
        return paginated_response(
            request=request, queryset=threat_models, serializer_class=s.ThreatModelOutput, view=self
        )

    @extend_schema(request=s.ThreatModelCreateInput, responses={201: s.ThreatModelOutput})
    def post(self, request: Request, id: int) -> Response:  # noqa: A002
        """Start a threat model (editors); version 1 is an empty draft."""
        system = selectors.system_get_by_id(user=request.user, id=id, capability=Capability.EDIT)
        data = s.ThreatModelCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        threat_model = services.threat_model_create(actor=request.user, system=system, **data.validated_data)
        return Response(_threat_model_output(threat_model), status=status.HTTP_201_CREATED)


class ThreatModelDetailView(APIView):
    """One threat model."""

    @extend_schema(responses=s.ThreatModelOutput)
    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """Read a threat model and its versions."""
        return Response(_threat_model_output(selectors.threat_model_get(user=request.user, id=id)))

    @extend_schema(request=s.ThreatModelCreateInput, responses=s.ThreatModelOutput)
    def patch(self, request: Request, id: int) -> Response:  # noqa: A002
        """Rename a threat model (editors)."""
        threat_model = selectors.threat_model_get(user=request.user, id=id, capability=Capability.EDIT)
        data = s.ThreatModelCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        threat_model = services.threat_model_update(
            actor=request.user, threat_model=threat_model, title=data.validated_data.get("title") or threat_model.title
        )
        return Response(_threat_model_output(threat_model))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: int) -> Response:  # noqa: A002
        """Delete a threat model that never had an approved version (team admins); 409 otherwise."""
        threat_model = selectors.threat_model_get(user=request.user, id=id, capability=Capability.ADMIN)
        services.threat_model_delete(actor=request.user, threat_model=threat_model)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ThreatModelDraftView(APIView):
    """Start a new draft of a threat model."""

    @extend_schema(request=None, responses={201: s.VersionOutput})
    def post(self, request: Request, id: int) -> Response:  # noqa: A002
        """Open a draft copied from the latest version (editors); 409 while a draft or review is open."""
        threat_model = selectors.threat_model_get(user=request.user, id=id, capability=Capability.EDIT)
        draft = services.version_start_draft(actor=request.user, threat_model=threat_model)
        return Response(s.VersionOutput(draft).data, status=status.HTTP_201_CREATED)


class VersionDetailView(APIView):
    """One version with all its content."""

    @extend_schema(responses=s.VersionContentOutput)
    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """Read a version: boundaries, components, flows, threats with inherent and residual risk, controls."""
        version = selectors.version_get(user=request.user, id=id)
        content = selectors.version_content(user=request.user, version=version)
        return Response(s.VersionContentOutput(content).data)


class VersionSubmitView(APIView):
    """Send a draft for review."""

    @extend_schema(request=s.VersionSubmitInput, responses=s.VersionOutput)
    def post(self, request: Request, id: int) -> Response:  # noqa: A002
        """Submit a draft (editors); 409 unless it is a draft."""
        version = selectors.version_get(user=request.user, id=id, capability=Capability.EDIT)
        data = s.VersionSubmitInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.version_submit(actor=request.user, version=version, **data.validated_data)
        return Response(s.VersionOutput(version).data)


class VersionApproveView(APIView):
    """Approve a version in review."""

    @extend_schema(request=s.VersionApproveInput, responses=s.VersionOutput)
    def post(self, request: Request, id: int) -> Response:  # noqa: A002
        """Approve (approvers, never the author or submitter: 403); 409 unless it is in review."""
        version = selectors.version_get(user=request.user, id=id, capability=Capability.APPROVE)
        data = s.VersionApproveInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.version_approve(actor=request.user, version=version, **data.validated_data)
        return Response(s.VersionOutput(version).data)


class VersionSendBackView(APIView):
    """Return a version in review to its authors."""

    @extend_schema(request=s.VersionSendBackInput, responses=s.VersionOutput)
    def post(self, request: Request, id: int) -> Response:  # noqa: A002
        """Send back to draft with a note (approvers); 409 unless it is in review."""
        version = selectors.version_get(user=request.user, id=id, capability=Capability.APPROVE)
        data = s.VersionSendBackInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.version_send_back(actor=request.user, version=version, **data.validated_data)
        return Response(s.VersionOutput(version).data)


class VersionDiffView(APIView):
    """What changed between two versions of a threat model."""

    @extend_schema(parameters=[s.DiffQueryInput], responses=s.DiffOutput)
    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """Diff this version against ``?against=<id>`` (the older one), element by element."""
        query = s.DiffQueryInput(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        new = selectors.version_get(user=request.user, id=id)
        old = selectors.version_get(user=request.user, id=query.validated_data["against"])
        if old.threat_model_id != new.threat_model_id:
            raise ValidationError(
                {
                    "against": "Pick a version of the same threat model; versions of different "
                    "threat models cannot be compared."
                }
            )
        return Response(diff_versions(old, new).as_dict())


class AtlasEntryListView(APIView):
    """MITRE ATLAS tactics, techniques and mitigations (reference data, the same for every team)."""

    @extend_schema(parameters=[s.AtlasFilterInput], responses=s.AtlasEntryOutput(many=True))
    def get(self, request: Request) -> Response:
        """List current ATLAS entries by kind, or search IDs and names."""
        filters = s.AtlasFilterInput(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        entries = selectors.atlas_entry_list(
            kind=filters.validated_data["kind"], search=filters.validated_data["search"]
        ).prefetch_related(Prefetch("names", queryset=AtlasName.objects.select_related("release")))
        return paginated_response(request=request, queryset=entries, serializer_class=s.AtlasEntryOutput, view=self)
