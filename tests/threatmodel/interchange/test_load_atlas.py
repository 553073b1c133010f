"""``manage.py load_atlas``: the shipped release, a release with a rename, and a bad file."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from threatmodel.catalog import SHIPPED_ATLAS_PATH, shipped_atlas
from threatmodel.models import AtlasEntry, AtlasName, AtlasRelease

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("load_atlas", *args, stdout=out)
    return out.getvalue()


def test_loading_the_shipped_release_again_changes_nothing():
    names = AtlasName.objects.count()
    output = _run()
    assert f"ATLAS {shipped_atlas().version} is already the current release" in output
    assert AtlasName.objects.count() == names and AtlasRelease.objects.count() == 1


def test_a_release_with_a_rename_keeps_the_old_name(tmp_path):
    release = shipped_atlas()
    technique = release.techniques["AML.T0043"]
    text = SHIPPED_ATLAS_PATH.read_text(encoding="utf-8")
    assert text.count(f"name: {technique.name}\n") >= 1
    modified = text.replace(f"name: {technique.name}\n", "name: Craft Adversarial AI Data\n", 1)
    modified = modified.replace(f"version: {release.version}\n", "version: 99.0.0\n", 1)
    path = tmp_path / "ATLAS.yaml"
    path.write_text(modified, encoding="utf-8")

    output = _run(str(path))
    assert "Loaded ATLAS 99.0.0" in output and "Renamed: 1" in output and "Added: 0" in output
    assert f"AML.T0043: '{technique.name}' -> 'Craft Adversarial AI Data'" in output
    entry = AtlasEntry.objects.get(atlas_id="AML.T0043")
    assert entry.name == "Craft Adversarial AI Data"
    assert [n.name for n in entry.names.order_by("release__loaded_at")] == [technique.name, "Craft Adversarial AI Data"]
    assert AtlasRelease.objects.get(is_current=True).version == "99.0.0"


def test_a_bad_file_is_a_command_error_with_the_reason(tmp_path):
    path = tmp_path / "ATLAS.yaml"
    path.write_text("just: a mapping\n", encoding="utf-8")
    with pytest.raises(CommandError, match="not an ATLAS release"):
        _run(str(path))
    with pytest.raises(CommandError, match="Cannot read"):
        _run(str(tmp_path / "missing.yaml"))
