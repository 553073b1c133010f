"""The shipped STRIDE-for-ML catalog, its validation, and suggestions per element."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from threatmodel.catalog import (
    COMPONENT_TYPES,
    DATA_FLOW,
    FLOW_STRIDE_CATEGORIES,
    OWASP_ML_TOP10,
    STRIDE_CATEGORIES,
    Catalog,
    CatalogError,
    load_catalog,
    parse_catalog,
    shipped_atlas,
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """The shipped catalog, validated against the shipped ATLAS release."""
    return load_catalog()


def _entry(**overrides: Any) -> dict[str, Any]:
    entry = {
        "key": "test-evasion",
        "title": "Evasion",
        "description": "Inputs changed to flip the decision.",
        "stride": "tampering",
        "applies_to": ["serving_api"],
        "atlas_techniques": ["AML.T0015"],
        "owasp_ml": ["ML01"],
        "likelihood": 3,
        "impact": 4,
        "mitigations": ["AML.M0003"],
    }
    entry.update(overrides)
    return entry


def _parse(*entries: dict[str, Any]) -> Catalog:
    return parse_catalog({"version": 1, "threats": list(entries)}, atlas=shipped_atlas())


# ---------------------------------------------------------------- the shipped catalog


def test_shipped_catalog_loads_from_atlas_yaml_with_a_reasonable_number_of_threats(catalog: Catalog) -> None:
    assert 40 <= len(catalog) <= 70
    assert catalog.atlas_version == shipped_atlas().version


def test_every_shipped_threat_references_existing_technique_and_mitigation_ids(catalog: Catalog) -> None:
    atlas = shipped_atlas()

    for threat in catalog:
        assert threat.atlas_techniques, threat.key
        assert threat.mitigations, threat.key
        assert set(threat.atlas_techniques) <= atlas.techniques.keys(), threat.key
        assert set(threat.mitigations) <= atlas.mitigations.keys(), threat.key
        assert all(m.startswith("AML.M00") for m in threat.mitigations), threat.key


def test_every_shipped_threat_has_a_mitigation_that_atlas_links_to_its_techniques(catalog: Catalog) -> None:
    atlas = shipped_atlas()

    for threat in catalog:
        linked = {m.id for t in threat.atlas_techniques for m in atlas.mitigations_for(t)}
        assert linked.intersection(threat.mitigations), f"{threat.key}: no mitigation ATLAS links to its techniques"


def test_every_shipped_threat_uses_known_owasp_ids_and_ranges(catalog: Catalog) -> None:
    for threat in catalog:
        assert set(threat.owasp_ml) <= OWASP_ML_TOP10.keys(), threat.key
        assert 1 <= threat.likelihood <= 5, threat.key
        assert 1 <= threat.impact <= 5, threat.key
        assert threat.stride in STRIDE_CATEGORIES, threat.key
        assert len(threat.description.split(". ")) >= 2, f"{threat.key}: describe the threat in 2-3 sentences"


def test_every_stride_category_has_at_least_three_threats(catalog: Catalog) -> None:
    per_stride = catalog.stats().per_stride

    assert set(per_stride) == set(STRIDE_CATEGORIES)
    assert all(count >= 3 for count in per_stride.values()), per_stride


def test_every_owasp_ml_top_10_item_is_covered_by_some_threat(catalog: Catalog) -> None:
    per_owasp = catalog.stats().per_owasp

    assert all(per_owasp[item] >= 1 for item in OWASP_ML_TOP10), per_owasp


def test_flow_threats_are_only_tampering_disclosure_or_denial_of_service(catalog: Catalog) -> None:
    for threat in catalog:
        if DATA_FLOW in threat.applies_to:
            assert threat.stride in FLOW_STRIDE_CATEGORIES, threat.key


def test_stats_count_threats_per_category_and_element_and_the_atlas_ids_covered(catalog: Catalog) -> None:
    stats = catalog.stats()

    assert stats.threats == len(catalog)
    assert sum(stats.per_stride.values()) == len(catalog)
    assert set(stats.per_element_type) == set(COMPONENT_TYPES) | {DATA_FLOW}
    assert "AML.T0024.002" in stats.atlas_techniques
    assert "AML.M0004" in stats.mitigations


# ---------------------------------------------------------------- suggestions


@pytest.mark.parametrize("component_type", list(COMPONENT_TYPES))
def test_every_component_type_gets_at_least_two_suggestions(catalog: Catalog, component_type: str) -> None:
    suggestions = catalog.suggest(component_type)

    assert len(suggestions) >= 2
    assert all(component_type in t.applies_to for t in suggestions)


def test_serving_api_suggestions_include_evasion_extraction_inversion_and_membership_inference(
    catalog: Catalog,
) -> None:
    keys = {t.key for t in catalog.suggest("serving_api")}
    techniques = {x for t in catalog.suggest("serving_api") for x in t.atlas_techniques}

    assert {"evasion-adversarial-examples", "model-extraction-via-inference-api"} <= keys
    assert {"model-inversion", "membership-inference"} <= keys
    assert {"AML.T0015", "AML.T0024.000", "AML.T0024.001", "AML.T0024.002"} <= techniques


def test_model_artifact_suggestions_include_unsafe_model_files(catalog: Catalog) -> None:
    suggestions = catalog.suggest("model_artifact")

    unsafe = [t for t in suggestions if "AML.T0011.000" in t.atlas_techniques]
    assert [t.key for t in unsafe] == ["unsafe-model-file-code-execution"]
    assert unsafe[0].evaluation_kind == "model_scan"


def test_poisoning_is_suggested_wherever_training_data_enters(catalog: Catalog) -> None:
    for element in ("data_source", "ingestion_pipeline", "training_pipeline", "third_party_asset"):
        assert any(
            "AML.T0020" in t.atlas_techniques or "AML.T0019" in t.atlas_techniques for t in catalog.suggest(element)
        ), element


def test_suggestions_are_grouped_by_stride_category_then_highest_risk(catalog: Catalog) -> None:
    order = list(STRIDE_CATEGORIES)
    suggestions = catalog.suggest("serving_api")

    keys = [(order.index(t.stride), -t.risk) for t in suggestions]
    assert keys == sorted(keys)


def test_unauthenticated_or_boundary_crossing_flows_get_more_threats_than_internal_authenticated_ones(
    catalog: Catalog,
) -> None:
    internal = {t.key for t in catalog.suggest_for_flow(authenticated=True, crosses_trust_boundary=False)}
    crossing = {t.key for t in catalog.suggest_for_flow(authenticated=True, crosses_trust_boundary=True)}
    open_flow = {t.key for t in catalog.suggest_for_flow(authenticated=False, crosses_trust_boundary=False)}
    worst = {t.key for t in catalog.suggest_for_flow(authenticated=False, crosses_trust_boundary=True)}

    assert internal
    assert internal < crossing
    assert internal < open_flow
    assert crossing | open_flow <= worst
    assert "poisoned-data-in-transit" in crossing - internal
    assert "artifact-exfiltration-in-transit" in crossing - internal
    assert "inference-query-flooding" in open_flow - crossing


def test_suggest_refuses_data_flows_and_unknown_component_types(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="suggest_for_flow"):
        catalog.suggest(DATA_FLOW)
    with pytest.raises(ValueError, match="Unknown component type 'database'"):
        catalog.suggest("database")


# ---------------------------------------------------------------- validation


def test_a_valid_entry_parses_into_a_template() -> None:
    template = _parse(_entry()).get("test-evasion")

    assert template.applies_to == ("serving_api",)
    assert template.risk == 12
    assert template.evaluation_kind is None


def test_loader_rejects_an_unknown_technique_id_naming_the_key_and_field() -> None:
    with pytest.raises(CatalogError, match=r"threat 'test-evasion', field 'atlas_techniques': unknown .*AML\.T9999"):
        _parse(_entry(atlas_techniques=["AML.T0015", "AML.T9999"]))


def test_loader_rejects_an_unknown_mitigation_id_naming_the_key_and_field() -> None:
    with pytest.raises(CatalogError, match=r"threat 'test-evasion', field 'mitigations': unknown .*AML\.M0999"):
        _parse(_entry(mitigations=["AML.M0999"]))


@pytest.mark.parametrize("value", [0, 6, "3", True, None])
def test_loader_rejects_an_out_of_range_likelihood_naming_the_key_and_field(value: Any) -> None:
    with pytest.raises(CatalogError, match="threat 'test-evasion', field 'likelihood': must be an integer from 1 to 5"):
        _parse(_entry(likelihood=value))


def test_loader_rejects_an_out_of_range_impact_naming_the_key_and_field() -> None:
    with pytest.raises(CatalogError, match="threat 'test-evasion', field 'impact'"):
        _parse(_entry(impact=9))


def test_loader_rejects_an_unknown_component_type_naming_the_key_and_field() -> None:
    with pytest.raises(CatalogError, match="threat 'test-evasion', field 'applies_to': unknown component type 'gpu'"):
        _parse(_entry(applies_to=["serving_api", "gpu"]))


def test_loader_rejects_an_unknown_flow_condition_naming_the_key_and_field() -> None:
    with pytest.raises(
        CatalogError, match="threat 'test-evasion', field 'applies_to': unknown flow condition 'public'"
    ):
        _parse(_entry(applies_to=[{"data_flow": {"when": ["public"]}}]))


@pytest.mark.parametrize("value", ["ML11", "ML1", "A01", "ml01"])
def test_loader_rejects_a_bad_owasp_id_naming_the_key_and_field(value: str) -> None:
    with pytest.raises(CatalogError, match="threat 'test-evasion', field 'owasp_ml'"):
        _parse(_entry(owasp_ml=[value]))


def test_loader_rejects_a_duplicate_key_naming_the_key_and_field() -> None:
    with pytest.raises(CatalogError, match="threat 'test-evasion', field 'key': duplicate key"):
        _parse(_entry(), _entry(title="Another evasion"))


def test_loader_rejects_an_unknown_stride_category_and_a_misspelt_field() -> None:
    with pytest.raises(CatalogError) as excinfo:
        _parse(_entry(stride="tampering ", impcat=3))

    assert any("field 'stride'" in e for e in excinfo.value.errors)
    assert any("field 'impcat': is not a catalog field" in e for e in excinfo.value.errors)


def test_loader_rejects_a_missing_field_and_an_unknown_evaluation_kind() -> None:
    entry = _entry(evaluation_kind="fuzzing")
    del entry["mitigations"]

    with pytest.raises(CatalogError) as excinfo:
        _parse(entry)

    assert "threat 'test-evasion', field 'mitigations': is missing." in excinfo.value.errors
    assert any("field 'evaluation_kind'" in e for e in excinfo.value.errors)


def test_loader_rejects_a_spoofing_threat_on_a_data_flow() -> None:
    with pytest.raises(CatalogError, match="field 'applies_to': data flows only take"):
        _parse(_entry(stride="spoofing", applies_to=["data_flow"]))


def test_loader_reports_every_problem_at_once() -> None:
    with pytest.raises(CatalogError) as excinfo:
        _parse(_entry(likelihood=0, impact=0), _entry(key="other", owasp_ml=["ML99"]))

    assert len(excinfo.value.errors) == 3


def test_load_catalog_reads_a_catalog_file_against_a_given_atlas_release(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    flow_entry = _entry(
        key="flow-poisoning", applies_to=["ingestion_pipeline", {"data_flow": {"when": "unauthenticated"}}]
    )
    path.write_text(yaml.safe_dump({"version": 1, "threats": [_entry(), flow_entry]}))

    catalog = load_catalog(path, atlas=shipped_atlas())

    assert [t.key for t in catalog.suggest_for_flow(authenticated=False, crosses_trust_boundary=False)] == [
        "flow-poisoning"
    ]
    assert catalog.suggest_for_flow(authenticated=True, crosses_trust_boundary=True) == []


def test_load_catalog_rejects_a_file_that_is_not_a_catalog(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("- just\n- a list\n")

    with pytest.raises(CatalogError, match="'threats' list"):
        load_catalog(path)


def test_loader_reports_wrongly_typed_values_instead_of_crashing() -> None:
    with pytest.raises(CatalogError) as excinfo:
        _parse(
            _entry(
                stride=["tampering"],
                evaluation_kind={"kind": "robustness"},
                applies_to=[{"data_flow": {"when": [["unauthenticated"]]}}],
                atlas_techniques="AML.T0015",
            )
        )

    fields = {e.split("field ")[1].split(":")[0] for e in excinfo.value.errors}
    assert fields == {"'stride'", "'evaluation_kind'", "'applies_to'", "'atlas_techniques'"}
