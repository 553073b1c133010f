"""API views of the ingestion pipeline (thin: parse, call a service or selector, render)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluations.ingestion import selectors, services
from evaluations.ingestion.api import serializers as s
from garrison.accounts.roles import Capability
from garrison.core.api.errors import PayloadTooLarge
from garrison.core.api.pagination import paginated_response


class BatchListView(APIView):
    """Batches in the caller's teams; push a new one into quarantine."""

    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(parameters=[s.IngestionBatchFilterInput], responses=s.IngestionBatchListOutput(many=True))
    def get(self, request: Request) -> Response:
        """List batches, newest first (``status=held`` is the quarantine waiting for review)."""
        filters = s.IngestionBatchFilterInput(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        batches = selectors.batch_list(user=request.user, system_id=data.get("system"), status=data.get("status", ""))
        return paginated_response(
            request=request, queryset=batches, serializer_class=s.IngestionBatchListOutput, view=self
        )

    @extend_schema(
        request={"application/json": s.IngestionBatchPushInput, "multipart/form-data": s.IngestionBatchPushInput},
        responses={202: s.IngestionBatchOutput, 400: None, 403: None, 404: None, 413: None},
    )
    def post(self, request: Request) -> Response:
        """Push a batch (editors, ci and editor tokens); it is quarantined and checked, never used directly.

        Refused batches (wrong schema, empty, unknown labels, bad encoding, too large) answer 400 or 413
        and are kept as invalid batches for forensics.
        """
        data = s.IngestionBatchPushInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        policy = selectors.policy_get_by_name(
            user=request.user,
            system_id=fields["system"],
            dataset_name=fields["dataset"],
            capability=Capability.PUSH_DATA,
        )
        upload = fields.get("file")
        try:
            if upload is None:
                batch = services.batch_push(actor=request.user, policy=policy, records=fields["records"])
            elif upload.size > settings.GARRISON_INGESTION_MAX_BATCH_BYTES:
                batch = services.batch_push(actor=request.user, policy=policy, size=upload.size, filename=upload.name)
            else:
                batch = services.batch_push(actor=request.user, policy=policy, data=upload.read(), filename=upload.name)
        except services.BatchRefused as exc:
            if exc.code == "too_large":
                raise PayloadTooLarge(exc.messages[0]) from exc
            raise
        return Response(s.IngestionBatchOutput(batch).data, status=status.HTTP_202_ACCEPTED)


class BatchDetailView(APIView):
    """One batch with its check report."""

    @extend_schema(responses=s.IngestionBatchOutput)
    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """Status, check report (statistic, threshold and verdict per check) and flagged records."""
        return Response(s.IngestionBatchOutput(selectors.batch_get(user=request.user, id=id)).data)


class BatchDecisionView(APIView):
    """Decide a held batch."""

    @extend_schema(request=s.IngestionDecisionInput, responses={200: s.IngestionBatchOutput, 409: None})
    def post(self, request: Request, id: int) -> Response:  # noqa: A002
        """Accept, reject, or accept without the flagged records (approvers); 409 unless the batch is held."""
        batch = selectors.batch_get(user=request.user, id=id, capability=Capability.APPROVE_DATA)
        data = s.IngestionDecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        batch = services.batch_decide(actor=request.user, batch=batch, **data.validated_data)
        return Response(s.IngestionBatchOutput(selectors.batch_get(user=request.user, id=batch.pk)).data)


class ProvenanceView(APIView):
    """The provenance chain of a governed dataset."""

    @extend_schema(responses=s.IngestionVersionOutput(many=True))
    def get(self, request: Request, id: int) -> Response:  # noqa: A002
        """Every accepted version of the dataset this version belongs to, oldest first."""
        _, _, records = selectors.provenance_get(user=request.user, dataset_id=id)
        return Response(s.IngestionVersionOutput(records, many=True).data)


class PolicyListView(APIView):
    """Governed datasets in the caller's teams."""

    @extend_schema(parameters=[s.IngestionPolicyFilterInput], responses=s.IngestionPolicyOutput(many=True))
    def get(self, request: Request) -> Response:
        """List governed datasets with their schema and decision policy."""
        filters = s.IngestionPolicyFilterInput(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        policies = selectors.policy_list(user=request.user, system_id=filters.validated_data.get("system"))
        return paginated_response(
            request=request, queryset=policies, serializer_class=s.IngestionPolicyOutput, view=self
        )
