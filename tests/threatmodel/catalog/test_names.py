"""Comparing ATLAS releases by ID, so names stay versioned labels."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from threatmodel.catalog import AtlasMitigation, AtlasRelease, diff_releases, shipped_atlas


def _older_release() -> AtlasRelease:
    """The shipped release as it looked before 'AI' replaced 'ML', minus a mitigation, plus a made-up one."""
    new = shipped_atlas()
    techniques = dict(new.techniques)
    techniques["AML.T0024"] = dataclasses.replace(techniques["AML.T0024"], name="Exfiltration via ML Inference API")
    mitigations = dict(new.mitigations)
    del mitigations["AML.M0034"]
    mitigations["AML.M0099"] = AtlasMitigation(
        id="AML.M0099", name="Retired Mitigation", technique_ids=(), description=""
    )
    return dataclasses.replace(
        new,
        version="4.8.0",
        techniques=MappingProxyType(techniques),
        mitigations=MappingProxyType(mitigations),
    )


def test_diff_releases_reports_a_renamed_technique_under_its_stable_id() -> None:
    diff = diff_releases(_older_release(), shipped_atlas())

    assert diff.renamed == (("AML.T0024", "Exfiltration via ML Inference API", "Exfiltration via AI Inference API"),)
    assert diff.renamed[0].id == "AML.T0024"
    assert diff.renamed[0].new_name == "Exfiltration via AI Inference API"
    assert (diff.old_version, diff.new_version) == ("4.8.0", shipped_atlas().version)


def test_diff_releases_reports_added_and_removed_ids() -> None:
    diff = diff_releases(_older_release(), shipped_atlas())

    assert diff.added_ids == ("AML.M0034",)
    assert diff.removed_ids == ("AML.M0099",)
    assert not diff.is_empty


def test_diff_of_a_release_with_itself_is_empty() -> None:
    diff = diff_releases(shipped_atlas(), shipped_atlas())

    assert diff.is_empty
    assert diff.renamed == diff.added_ids == diff.removed_ids == ()
