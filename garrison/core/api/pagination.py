"""API pagination: page numbers, with a caller-chosen page size up to a cap."""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """``?page=N&page_size=M`` (M at most 200)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def paginated_response(*, request, queryset, serializer_class, view):
    """Paginate ``queryset`` with the project pagination and serialize one page."""
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)
