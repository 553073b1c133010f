"""PDF rendering with WeasyPrint that never touches the network.

``render_pdf(template, context)`` renders an autoescaped Django template and turns it
into PDF bytes. The URL fetcher serves only the app's own static files (addressed as
``/static/...``) and ``data:`` URIs; every other URL (http, https, file, ftp, ...) is
refused and recorded, so user text such as ``<img src="http://...">`` or
``url(file:///etc/passwd)`` can never make the server fetch anything (the WeasyPrint
SSRF class of bug). User text is autoescaped by the templates in any case, so such
markup normally arrives as plain text; the fetcher is the second line of defence.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.exceptions import SuspiciousFileOperation
from django.template.loader import render_to_string
from django.utils import timezone
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

logger = logging.getLogger(__name__)

# A base URL that resolves relative and /static/ links without naming any real host.
BASE_URL = "https://garrison.internal/"
STATIC_PREFIX = BASE_URL + "static/"


@dataclass
class RenderedPdf:
    """A rendered PDF with its hash, its document id and what the fetcher refused."""

    content: bytes
    sha256: str
    document_id: str
    generated_at: Any
    refused_urls: list[str] = field(default_factory=list)


def _static_path(relative: str) -> str | None:
    """The file behind a static URL path: the collected (possibly hashed) file, else the source file."""
    try:
        if staticfiles_storage.exists(relative):
            return staticfiles_storage.path(relative)
    except (NotImplementedError, SuspiciousFileOperation):
        pass
    found = finders.find(relative)
    return found if isinstance(found, str) else None


class LocalOnlyFetcher(URLFetcher):
    """A WeasyPrint URL fetcher that serves static files and data: URIs, nothing else."""

    def __init__(self) -> None:
        super().__init__(timeout=1, allowed_protocols={"data"}, allow_redirects=False)
        self.refused: list[str] = []
        self.served: list[str] = []

    def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:
        """Serve ``/static/...`` from the app's static files and ``data:`` URIs; refuse the rest."""
        if url.startswith("data:"):
            return super().fetch(url, headers)
        if url.startswith(STATIC_PREFIX):
            relative = url[len(STATIC_PREFIX) :].split("?")[0].split("#")[0]
            path = _static_path(relative) if relative and ".." not in Path(relative).parts else None
            if path:
                self.served.append(relative)
                mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
                return URLFetcherResponse(url, Path(path).read_bytes(), {"Content-Type": mime})
        self.refused.append(url)
        logger.warning("PDF rendering refused to fetch %s", url[:200])
        raise ValueError(f"Garrison PDFs never fetch external resources: {url[:200]}")


_DOCUMENT_ID_SLOT = "GARRISON-DOCUMENT-ID-SLOT"


def render_pdf(template: str, context: dict[str, Any]) -> RenderedPdf:
    """Render ``template`` with ``context`` to PDF bytes.

    The template receives ``generated_at`` and ``document_id``: the first 16 hex digits of
    the SHA-256 of the rendered document, printed in every page footer, so a printed page
    can be matched to its source document (a PDF cannot contain its own hash).
    """
    generated_at = timezone.now()
    html = render_to_string(template, {**context, "generated_at": generated_at, "document_id": _DOCUMENT_ID_SLOT})
    document_id = hashlib.sha256(html.encode("utf-8")).hexdigest()[:16]
    html = html.replace(_DOCUMENT_ID_SLOT, document_id)
    fetcher = LocalOnlyFetcher()
    content = HTML(string=html, base_url=BASE_URL, url_fetcher=fetcher).write_pdf()
    return RenderedPdf(
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        document_id=document_id,
        generated_at=generated_at,
        refused_urls=fetcher.refused,
    )
