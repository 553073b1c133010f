"""Content-addressed blob storage: stream uploads to a temp file while hashing, store each content once.

Files live at ``MEDIA_ROOT/blobs/<sha256[:2]>/<sha256>``; a :class:`~evaluations.models.Blob` row says a
file is referenced. A file this process put in place is removed again when the transaction that would
have referenced it fails, so failed uploads leave nothing behind; :func:`blob_orphans_delete` sweeps
what a crash between the two steps could leave.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from evaluations.models import Blob, blob_path

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


class UploadTooLarge(ValidationError):
    """The upload is over ``GARRISON_MAX_UPLOAD_BYTES`` (the API answers 413)."""


@dataclass
class StagedFile:
    """An upload written to a temp file: its path, digest, size and first bytes."""

    path: Path
    sha256: str
    size: int
    head: bytes

    def discard(self) -> None:
        """Remove the temp file (a no-op once it was moved into the store)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _staging_dir() -> Path:
    folder = Path(settings.MEDIA_ROOT) / "blobs" / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def stage_chunks(chunks: Iterable[bytes], *, max_bytes: int | None = None, field: str = "file") -> StagedFile:
    """Write ``chunks`` to a temp file next to the store, hashing as it goes; refuse more than ``max_bytes``."""
    limit = settings.GARRISON_MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
    digest = hashlib.sha256()
    size = 0
    head = b""
    handle = tempfile.NamedTemporaryFile(dir=_staging_dir(), prefix="upload-", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        with handle:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise UploadTooLarge(
                        {field: f"The file is larger than the {limit:,}-byte upload limit (GARRISON_MAX_UPLOAD_BYTES)."}
                    )
                if len(head) < 64:
                    head += chunk[: 64 - len(head)]
                digest.update(chunk)
                handle.write(chunk)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise
    if size == 0:
        path.unlink()
        raise ValidationError({field: "The file is empty."})
    return StagedFile(path=path, sha256=digest.hexdigest(), size=size, head=head)


def stage_upload(upload: IO[bytes], *, field: str = "file") -> StagedFile:
    """Stage a Django ``UploadedFile`` (or any binary file object)."""
    chunks = upload.chunks(_CHUNK) if hasattr(upload, "chunks") else iter(lambda: upload.read(_CHUNK), b"")
    return stage_chunks(chunks, field=field)


def stage_bytes(data: bytes) -> StagedFile:
    """Stage bytes produced by a worker (a hardened model, a report); no upload limit applies."""
    return stage_chunks([data], max_bytes=max(len(data), 1))


_created: contextvars.ContextVar[list[Path] | None] = contextvars.ContextVar("garrison_created_blobs", default=None)


def blob_store(staged: StagedFile) -> Blob:
    """Store a staged file as a blob (once per content); must run inside the service's transaction.

    A file this call moves into the store is remembered, so :func:`removing_uncommitted_blobs` can
    delete it again when the transaction that references it does not commit.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("blob_store must run inside the calling service's transaction.")
    target = blob_path(staged.sha256)
    blob, _ = Blob.objects.get_or_create(sha256=staged.sha256, defaults={"size": staged.size})
    if target.exists():
        staged.discard()
        return blob
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged.path, target)
    created = _created.get()
    if created is not None:
        created.append(target)
    return blob


@contextlib.contextmanager
def removing_uncommitted_blobs(*staged: StagedFile) -> Iterator[None]:
    """Around a service's transaction: on failure, delete the temp files and the files it stored.

    Used outside ``transaction.atomic`` (the service's own block is the outermost one), so when the block
    raises, its rows are gone and the files it moved into the store would be orphans.
    """
    created: list[Path] = []
    token = _created.set(created)
    try:
        yield
    except BaseException:
        for target in created:
            if not Blob.objects.filter(sha256=target.name).exists():
                target.unlink(missing_ok=True)
                logger.info("removed blob %s of a failed upload", target.name[:12])
        raise
    finally:
        _created.reset(token)
        for item in staged:
            item.discard()


def read_blob(blob: Blob) -> bytes:
    """The bytes of a blob."""
    return blob.path.read_bytes()


def blob_orphans_delete(*, older_than_seconds: int = 3600) -> int:
    """Delete stored files and stale temp files no ``Blob`` row references; returns how many."""
    import time

    root = Path(settings.MEDIA_ROOT) / "blobs"
    if not root.exists():
        return 0
    cutoff = time.time() - older_than_seconds
    removed = 0
    for path in root.glob("*/*"):
        if not path.is_file() or path.stat().st_mtime > cutoff:
            continue
        if path.parent.name == "tmp" or not Blob.objects.filter(sha256=path.name).exists():
            path.unlink(missing_ok=True)
            removed += 1
    return removed
