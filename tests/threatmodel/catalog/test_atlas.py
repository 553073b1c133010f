"""The MITRE ATLAS loader: the shipped release, and files that are not releases."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from threatmodel.catalog import (
    MAX_ATLAS_BYTES,
    SHIPPED_ATLAS_PATH,
    AtlasFormatError,
    load_atlas,
    parse_atlas,
    shipped_atlas,
)

SHARED_ATLAS_DIR = Path(__file__).resolve().parents[4] / "shared" / "reference" / "mitre-atlas"


@pytest.fixture(scope="module")
def atlas_data() -> dict:
    """The shipped ATLAS.yaml as plain data, for building broken variants in memory."""
    return yaml.safe_load(SHIPPED_ATLAS_PATH.read_bytes())


def test_shipped_atlas_release_loads_with_its_version() -> None:
    release = load_atlas()

    assert release.version == "5.6.0"
    assert release.tactics["AML.TA0010"].name == "Exfiltration"
    assert len(release.tactics) >= 10
    assert len(release.techniques) >= 100
    assert len(release.mitigations) >= 30


def test_shipped_atlas_includes_sub_techniques_with_their_parent_and_inherited_tactics() -> None:
    release = shipped_atlas()

    sub = release.techniques["AML.T0011.000"]
    parent = release.techniques["AML.T0011"]
    assert sub.is_subtechnique
    assert sub.parent_id == "AML.T0011"
    assert sub.tactic_ids == parent.tactic_ids == ("AML.TA0005",)
    assert not parent.is_subtechnique
    assert sub.description


def test_shipped_atlas_mitigations_list_the_techniques_they_address() -> None:
    release = shipped_atlas()

    restrict_queries = release.mitigations["AML.M0004"]
    assert "AML.T0024.002" in restrict_queries.technique_ids
    assert len(set(restrict_queries.technique_ids)) == len(restrict_queries.technique_ids)
    assert "AML.M0004" in {m.id for m in release.mitigations_for("AML.T0024.002")}


def test_release_objects_are_read_only() -> None:
    release = shipped_atlas()

    with pytest.raises(TypeError):
        release.techniques["AML.T9999"] = release.techniques["AML.T0011"]  # type: ignore[index]


def test_name_of_finds_tactics_techniques_and_mitigations() -> None:
    release = shipped_atlas()

    assert release.name_of("AML.T0024") == "Exfiltration via AI Inference API"
    assert release.name_of("AML.M0004") == "Restrict Number of AI Model Queries"
    assert release.name_of("AML.TA0011") == "Impact"
    with pytest.raises(KeyError):
        release.name_of("AML.T9999")


@pytest.mark.skipif(not SHARED_ATLAS_DIR.is_dir(), reason="the shared reference copy is not present")
@pytest.mark.parametrize("name", ["ATLAS.yaml", "LICENSE", "NOTICE.md"])
def test_shipped_atlas_files_are_verbatim_copies_of_the_reference(name: str) -> None:
    assert (SHIPPED_ATLAS_PATH.parent / name).read_bytes() == (SHARED_ATLAS_DIR / name).read_bytes()


def test_load_atlas_rejects_a_yaml_file_that_is_not_an_atlas_release(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  web:\n    image: nginx\n")

    with pytest.raises(AtlasFormatError, match="not an ATLAS release"):
        load_atlas(path)


def test_load_atlas_rejects_a_file_that_is_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "ATLAS.yaml"
    path.write_text("matrices: [unclosed\n")

    with pytest.raises(AtlasFormatError, match="not valid YAML"):
        load_atlas(path)


def test_load_atlas_rejects_an_oversized_file_before_parsing_it(tmp_path: Path) -> None:
    path = tmp_path / "ATLAS.yaml"
    with path.open("wb") as handle:
        handle.truncate(MAX_ATLAS_BYTES + 1)  # sparse: costs no disk space

    with pytest.raises(AtlasFormatError, match="limit"):
        load_atlas(path)


def test_load_atlas_rejects_a_missing_file_with_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(AtlasFormatError, match="Cannot read"):
        load_atlas(tmp_path / "missing.yaml")


def test_load_atlas_never_constructs_python_objects(tmp_path: Path) -> None:
    path = tmp_path / "ATLAS.yaml"
    path.write_text("!!python/object/apply:os.system ['echo pwned']\n")

    with pytest.raises(AtlasFormatError):
        load_atlas(path)


def test_parse_atlas_rejects_a_technique_without_an_id(atlas_data: dict) -> None:
    data = copy.deepcopy(atlas_data)
    del data["matrices"][0]["techniques"][3]["id"]

    with pytest.raises(AtlasFormatError, match=r"techniques\[3\] has a missing or malformed 'id'"):
        parse_atlas(data)


def test_parse_atlas_rejects_a_malformed_mitigation_id(atlas_data: dict) -> None:
    data = copy.deepcopy(atlas_data)
    data["matrices"][0]["mitigations"][0]["id"] = "M0000"

    with pytest.raises(AtlasFormatError, match=r"mitigations\[0\] has a missing or malformed 'id' \('M0000'\)"):
        parse_atlas(data)


def test_parse_atlas_rejects_a_mitigation_that_points_to_an_unknown_technique(atlas_data: dict) -> None:
    data = copy.deepcopy(atlas_data)
    data["matrices"][0]["mitigations"][0]["techniques"].append({"id": "AML.T9999", "use": "nothing"})

    with pytest.raises(AtlasFormatError, match="AML.M0000 refers to unknown techniques AML.T9999"):
        parse_atlas(data)


def test_parse_atlas_rejects_a_sub_technique_with_an_unknown_parent(atlas_data: dict) -> None:
    data = copy.deepcopy(atlas_data)
    sub = next(t for t in data["matrices"][0]["techniques"] if t["id"] == "AML.T0011.000")
    sub["subtechnique-of"] = "AML.T9999"

    with pytest.raises(AtlasFormatError, match="AML.T0011.000 names an unknown parent"):
        parse_atlas(data)


def test_parse_atlas_rejects_a_release_without_a_version(atlas_data: dict) -> None:
    data = copy.deepcopy(atlas_data)
    del data["version"]

    with pytest.raises(AtlasFormatError, match="'version'"):
        parse_atlas(data)
