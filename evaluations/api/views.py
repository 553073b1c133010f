"""API views for the model and dataset registry and evaluation runs (thin: parse, call, render)."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluations import selectors, services
from evaluations.api import serializers as s
from evaluations.models import DatasetKind
from evaluations.storage import UploadTooLarge
from garrison.accounts.roles import Capability
from garrison.core.api.errors import Conflict, PayloadTooLarge
from garrison.core.api.pagination import paginated_response
from threatmodel.selectors import system_get_by_id


def _check_length(request: Request) -> None:
    """Refuse an upload whose declared length is already over the limit, before reading it."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.GARRISON_MAX_UPLOAD_BYTES + 64 * 1024:
        raise PayloadTooLarge(
            f"The upload is larger than the {settings.GARRISON_MAX_UPLOAD_BYTES:,}-byte limit "
            "(GARRISON_MAX_UPLOAD_BYTES)."
        )


def _filters(serializer_class: type, request: Request) -> dict:
    filters = serializer_class(data=request.query_params.dict())
    filters.is_valid(raise_exception=True)
    data = dict(filters.validated_data)
    data.pop("page", None)
    data.pop("page_size", None)
    return data


class ModelListView(APIView):
    """Model versions in the caller's teams; upload a new one."""

    parser_classes = [MultiPartParser, JSONParser]

    @extend_schema(parameters=[s.ModelFilterInput], responses=s.ModelArtifactOutput(many=True))
    def get(self, request: Request) -> Response:
        """List model versions."""
        data = _filters(s.ModelFilterInput, request)
        models = selectors.model_artifact_list(
            user=request.user, system_id=data.get("system"), scan_status=data.get("scan_status", "")
        )
        return paginated_response(request=request, queryset=models, serializer_class=s.ModelArtifactOutput, view=self)

    @extend_schema(request={"multipart/form-data": s.ModelUploadInput}, responses={201: s.ModelArtifactOutput})
    def post(self, request: Request) -> Response:
        """Upload a model version (editors and ci tokens); it is scanned before it can be used."""
        _check_length(request)
        data = s.ModelUploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        system = system_get_by_id(user=request.user, id=fields.pop("system"), capability=Capability.SUBMIT_EVALUATIONS)
        try:
            artifact = services.model_artifact_upload(actor=request.user, system=system, **fields)
        except UploadTooLarge as exc:
            raise PayloadTooLarge(exc.messages[0]) from exc
        return Response(s.ModelArtifactOutput(artifact).data, status=status.HTTP_201_CREATED)


class ModelDetailView(APIView):
    """One model version."""

    @extend_schema(responses=s.ModelArtifactOutput)
    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """Read a model version, with its scan report."""
        return Response(s.ModelArtifactOutput(selectors.model_artifact_get(user=request.user, id=id)).data)


class DatasetListView(APIView):
    """Datasets in the caller's teams; upload one or register a reference dataset."""

    parser_classes = [MultiPartParser, JSONParser]

    @extend_schema(parameters=[s.ModelFilterInput], responses=s.DatasetOutput(many=True))
    def get(self, request: Request) -> Response:
        """List datasets."""
        data = _filters(s.ModelFilterInput, request)
        datasets = selectors.dataset_list(user=request.user, system_id=data.get("system"))
        return paginated_response(request=request, queryset=datasets, serializer_class=s.DatasetOutput, view=self)

    @extend_schema(request={"multipart/form-data": s.DatasetUploadInput}, responses={201: s.DatasetOutput})
    def post(self, request: Request) -> Response:
        """Upload a dataset (npz, csv, tsv) or register a reference dataset."""
        _check_length(request)
        data = s.DatasetUploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        system = system_get_by_id(user=request.user, id=fields["system"], capability=Capability.SUBMIT_EVALUATIONS)
        if fields["kind"] == DatasetKind.REFERENCE:
            dataset = services.dataset_register_reference(
                actor=request.user, system=system, reference_name=fields["reference_name"]
            )
        else:
            try:
                dataset = services.dataset_upload(
                    actor=request.user,
                    system=system,
                    file=fields["file"],
                    name=fields["name"],
                    kind=fields["kind"],
                    label_column=fields["label_column"],
                    source=fields["source"],
                )
            except UploadTooLarge as exc:
                raise PayloadTooLarge(exc.messages[0]) from exc
        return Response(s.DatasetOutput(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailView(APIView):
    """One dataset."""

    @extend_schema(responses=s.DatasetOutput)
    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """Read a dataset with its schema and class balance."""
        return Response(s.DatasetOutput(selectors.dataset_get(user=request.user, id=id)).data)


class RunListView(APIView):
    """Evaluation runs in the caller's teams; submit a new one."""

    @extend_schema(parameters=[s.RunFilterInput], responses=s.RunListOutput(many=True))
    def get(self, request: Request) -> Response:
        """List runs, newest first."""
        data = _filters(s.RunFilterInput, request)
        runs = selectors.evaluation_run_list(
            user=request.user,
            system_id=data.get("system"),
            kind=data.get("kind", ""),
            status=data.get("status", ""),
            model_id=data.get("model"),
        )
        return paginated_response(request=request, queryset=runs, serializer_class=s.RunListOutput, view=self)

    @extend_schema(request=s.RunSubmitInput, responses={201: s.RunOutput})
    def post(self, request: Request) -> Response:
        """Submit a run (editors and ci tokens); poll /runs/{id}/status/ for progress."""
        data = s.RunSubmitInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        system = system_get_by_id(user=request.user, id=fields["system"], capability=Capability.SUBMIT_EVALUATIONS)
        model = selectors.model_artifact_get(user=request.user, id=fields["model"])
        dataset = None
        if fields.get("dataset"):
            dataset = selectors.dataset_get(user=request.user, id=fields["dataset"])
        elif fields.get("reference_dataset"):
            dataset = services.dataset_register_reference(
                actor=request.user, system=system, reference_name=fields["reference_dataset"]
            )
        run = services.evaluation_run_queue(
            actor=request.user,
            system=system,
            kind=fields["kind"],
            model_artifact=model,
            dataset=dataset,
            config=fields.get("config") or {},
        )
        return Response(s.RunOutput(run).data, status=status.HTTP_201_CREATED)


class RunDetailView(APIView):
    """One run with its results."""

    @extend_schema(responses=s.RunOutput)
    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """Read a run: config, status, metrics, reliability flags, provenance and produced files."""
        return Response(s.RunOutput(selectors.evaluation_run_get(user=request.user, id=id)).data)


class RunStatusView(APIView):
    """A run's status, for polling."""

    @extend_schema(responses=s.RunStatusOutput)
    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """Status, progress, stage and ETA (cheap; poll about once a second)."""
        return Response(s.RunStatusOutput(selectors.evaluation_run_get(user=request.user, id=id)).data)


class RunCancelView(APIView):
    """Cancel a run."""

    @extend_schema(request=None, responses={202: s.RunStatusOutput, 409: None})
    def post(self, request: Request, id: int) -> Response:  # noqa: A002
        """Cancel a queued run, or ask a running one to stop; 409 when it already finished."""
        run = selectors.evaluation_run_get(user=request.user, id=id, capability=Capability.SUBMIT_EVALUATIONS)
        try:
            run = services.evaluation_run_cancel(actor=request.user, run=run)
        except services.RunConflict as exc:
            raise Conflict(str(exc)) from exc
        return Response(s.RunStatusOutput(run).data, status=status.HTTP_202_ACCEPTED)


class RunArtifactDownloadView(APIView):
    """Download a file a run produced."""

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, id: int, artifact_id: int) -> FileResponse:  # noqa: A002
        """The file's bytes."""
        run = selectors.evaluation_run_get(user=request.user, id=id)
        artifact = run.artifacts.filter(pk=artifact_id).select_related("blob").first()
        if artifact is None:
            from django.http import Http404

            raise Http404("No such file for this run.")
        return FileResponse(
            artifact.blob.path.open("rb"),
            as_attachment=True,
            filename=artifact.name,
            content_type=artifact.content_type,
        )
