"""Fixtures for the evaluations app: tiny models, uploads, an isolated media root and a real worker."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from evaluations import services
from evaluations.models import ModelArtifact, ScanStatus

ROOT = Path(__file__).resolve().parents[2]
DIGITS = [str(d) for d in range(10)]
TINY_HYPERPARAMS = {"in_channels": 1, "input_size": 8, "num_classes": 10, "channels": [4, 8], "feature_dim": 16}


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    """Every test stores blobs under its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="session")
def tiny_cnn_bytes() -> bytes:
    """safetensors weights of a tiny digits small_cnn, briefly trained (deterministic, ~1 s)."""
    import evaluations.demo as demo
    from evaluations.demo import train_digits_small_cnn

    original = demo.DEMO_HYPERPARAMS
    demo.DEMO_HYPERPARAMS = TINY_HYPERPARAMS
    try:
        return train_digits_small_cnn(epochs=2)
    finally:
        demo.DEMO_HYPERPARAMS = original


@pytest.fixture(scope="session")
def malicious_pickle() -> bytes:
    """A pickle that would run os.system on load (built here, never loaded)."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    return pickle.dumps(Evil(), protocol=2)


@pytest.fixture(scope="session")
def malicious_torch_zip(malicious_pickle) -> bytes:
    """A torch.save-style ZIP whose data.pkl runs code on load: passes the magic check, fails the scan."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", malicious_pickle)
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def model_fields(**overrides) -> dict:
    """Upload fields of the tiny digits model."""
    fields = {
        "format": "safetensors",
        "architecture": "small_cnn",
        "hyperparams": TINY_HYPERPARAMS,
        "input_shape": [1, 8, 8],
        "input_bounds": [0.0, 1.0],
        "class_names": DIGITS,
        "name": "tiny cnn",
    }
    fields.update(overrides)
    return fields


@pytest.fixture
def upload_model(tiny_cnn_bytes) -> Callable[..., ModelArtifact]:
    """``upload_model(actor, system, scan=True, **fields)`` registers the tiny model (scanned in-process)."""

    def upload(actor, system, *, scan: bool = True, data: bytes | None = None, **fields) -> ModelArtifact:
        artifact = services.model_artifact_upload(
            actor=actor,
            system=system,
            file=SimpleUploadedFile("tiny.safetensors", data if data is not None else tiny_cnn_bytes),
            **model_fields(**fields),
        )
        if scan:
            from evaluations.tasks import scan_model_artifact

            scan_model_artifact.run(artifact.pk)
            artifact.refresh_from_db()
            assert artifact.scan_status == ScanStatus.CLEAN, artifact.scan_message
        return artifact

    return upload


def blob_files(media: Path) -> list[Path]:
    """Stored blob files (not temp files)."""
    root = media / "blobs"
    return sorted(p for p in root.glob("*/*") if p.is_file() and p.parent.name != "tmp") if root.exists() else []


def staging_files(media: Path) -> list[Path]:
    """Leftover temp files."""
    folder = media / "blobs" / "tmp"
    return sorted(folder.iterdir()) if folder.exists() else []


def database_url() -> str:
    """A URL for the test database, for a worker process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """A real ``celery worker`` process on an isolated broker, sharing the test database and media root."""

    def __init__(self, broker_url: str, broker_dir: Path, media: Path) -> None:
        self.broker_url, self.broker_dir, self.media = broker_url, broker_dir, media
        self.process: subprocess.Popen | None = None
        self.log = broker_dir.parent / f"worker-{uuid.uuid4().hex[:6]}.log"

    def start(self) -> Worker:
        """Start the process (solo pool: one task at a time, like an ML worker with concurrency 1)."""
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": self.broker_url,
            "CELERY_BROKER_DIR": str(self.broker_dir),
            "MEDIA_ROOT": str(self.media),
            "GARRISON_PROGRESS_INTERVAL_SECONDS": "0.2",
            "GARRISON_RUN_HEARTBEAT_SECONDS": "1",
            "GARRISON_TORCH_THREADS": "1",
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "garrison",
                "worker",
                "--queues",
                "ml,default",
                "--hostname",
                f"eval-{uuid.uuid4().hex[:8]}@test",
                "--pool",
                "solo",
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        return self

    def output(self) -> str:
        """The worker's log so far."""
        return self.log.read_text()[-6000:] if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as the OOM killer would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """Stop it (warm shutdown, then kill)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(params=["filesystem", "external"])
def broker(request, tmp_path, monkeypatch) -> Iterator[tuple[str, Path]]:
    """The broker the test process publishes to and the worker consumes from."""
    from garrison.celery import app, broker_transport_options

    if request.param == "filesystem":
        url = "filesystem://"
    else:
        url = os.environ.get("CELERY_BROKER_URL", "")
        if not url or url.startswith("filesystem://"):
            pytest.skip("CELERY_BROKER_URL is not set to a broker server; set it (e.g. redis://127.0.0.1:6379/0)")
    broker_dir = tmp_path / "broker"
    # Celery lets the CELERY_BROKER_URL variable override the configured URL, so set both.
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    app.conf.broker_url = url
    app.conf.broker_transport_options = broker_transport_options(url, broker_dir)
    _reset_producers(app)
    yield url, broker_dir
    app.conf.broker_url, app.conf.broker_transport_options = saved
    _reset_producers(app)


def _reset_producers(app) -> None:
    """Make the app open new broker connections with its current settings."""
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def worker_factory(broker, media_root) -> Iterator[Callable[[], Worker]]:
    """``worker_factory()`` starts a worker; all are stopped at the end."""
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker(broker[0], broker[1], media_root).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(
    predicate: Callable[[], object], *, timeout: float, worker: Worker | None = None, what: str = ""
) -> object:
    """Poll ``predicate`` until it is truthy; fail with the worker log after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if worker is not None and worker.process is not None and worker.process.poll() is not None:
            break
        time.sleep(0.2)
    log = worker.output() if worker else ""
    pytest.fail(f"timed out waiting for {what or 'condition'}; worker log:\n{log}")
