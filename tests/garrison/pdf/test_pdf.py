"""PDF rendering: real PDFs, static files served locally, nothing ever fetched from elsewhere."""

from __future__ import annotations

import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.template import engines

from garrison.pdf import LocalOnlyFetcher, render_pdf


def pdf_text(content: bytes, tmp_path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(content)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def template(settings, tmp_path):
    folder = tmp_path / "templates"
    (folder / "reports").mkdir(parents=True)
    (folder / "reports" / "probe.html").write_text(
        '{% extends "reports/_base.html" %}{% block content %}<h1>Probe report</h1><p>{{ user_text }}</p>'
        '<div style="{{ user_style }}">styled</div>{% endblock %}'
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [folder, *settings.TEMPLATES[0]["DIRS"]]}]
    engines._engines = {}
    engines.__dict__.pop("templates", None)
    yield "reports/probe.html"
    engines.__dict__.pop("templates", None)


@pytest.fixture
def tripwire():
    """A local HTTP server that counts requests: a fetch attempt would show up here."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils is installed by `make test`")
def test_render_pdf_makes_a_pdf_with_the_text_and_a_footer(template, tmp_path):
    rendered = render_pdf(template, {"title": "Probe", "user_text": "Hello auditors"})
    assert rendered.content.startswith(b"%PDF-")
    text = pdf_text(rendered.content, tmp_path)
    assert "Probe report" in text and "Hello auditors" in text
    assert f"document {rendered.document_id}" in text and "Page 1 of 1" in text
    assert len(rendered.sha256) == 64


def test_user_markup_and_css_urls_fetch_nothing(template, tripwire, tmp_path):
    url, hits = tripwire
    rendered = render_pdf(
        template,
        {
            "title": "Probe",
            "document_id": "x",
            "user_text": f'<img src="{url}/img.png"><link rel="stylesheet" href="{url}/evil.css">',
            "user_style": f"background: url({url}/bg.png); background-image: url(file:///etc/passwd)",
        },
    )
    assert hits == []
    assert rendered.content.startswith(b"%PDF-")


def test_the_fetcher_refuses_every_url_but_static_files_and_data():
    fetcher = LocalOnlyFetcher()
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "ftp://example.com/x",
        "https://garrison.internal/static/../../settings.py",
        "https://garrison.internal/media/x",
    ):
        with pytest.raises(ValueError, match="never fetch"):
            fetcher.fetch(url)
    assert len(fetcher.refused) == 5
    css = fetcher.fetch("https://garrison.internal/static/css/report.css")
    assert b"@page" in css._file_obj.read()


def test_pdfs_are_styled_with_hashed_static_files_in_production(settings, tmp_path, template):
    from django.contrib.staticfiles.storage import staticfiles_storage
    from django.core.management import call_command

    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    # Django resets the lazy static storage when STORAGES changes.
    call_command("collectstatic", interactive=False, verbosity=0)
    fetcher = LocalOnlyFetcher()
    hashed = staticfiles_storage.url("css/report.css")
    assert hashed != "/static/css/report.css"  # a hashed name, as in production
    css = fetcher.fetch("https://garrison.internal" + hashed)
    assert b"@page" in css._file_obj.read()
    rendered = render_pdf(template, {"title": "Probe", "user_text": "styled"})
    assert rendered.refused_urls == []
