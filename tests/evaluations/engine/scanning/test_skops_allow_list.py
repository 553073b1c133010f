"""skops archives: types in ScanConfig.extra_safe_globals are vetted (INFO), every other untrusted type stays HIGH."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skops.io as sio
from sklearn.ensemble import RandomForestClassifier

from evaluations.engine.scanning import Code, ScanConfig, Severity, Verdict, scan_path

TREE = "sklearn.tree._tree.Tree"


class Custom:
    """A class skops does not trust by default."""

    def __init__(self) -> None:
        self.value = 1


def _forest(path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.random((40, 3))
    sio.dump(RandomForestClassifier(n_estimators=2, random_state=0).fit(x, x[:, 0] > 0.5), path)
    return path


def test_tree_state_outside_skops_defaults_is_high_without_an_allow_list(tmp_path: Path) -> None:
    report = scan_path(_forest(tmp_path / "forest.skops"))
    [finding] = [f for f in report.findings if f.code is Code.UNTRUSTED_TYPE]
    assert finding.global_name == TREE and finding.severity is Severity.HIGH
    assert report.verdict is Verdict.SUSPICIOUS


def test_a_type_in_extra_safe_globals_is_info_and_the_file_is_clean(tmp_path: Path) -> None:
    report = scan_path(_forest(tmp_path / "forest.skops"), config=ScanConfig(extra_safe_globals={TREE}))
    assert report.verdict is Verdict.CLEAN
    [finding] = report.findings
    assert finding.code is Code.TRUSTED_GLOBAL and finding.severity is Severity.INFO
    assert finding.global_name == TREE and "extra_safe_globals" in finding.message


def test_an_unlisted_type_stays_high_when_other_types_are_allowed(tmp_path: Path) -> None:
    path = tmp_path / "custom.skops"
    sio.dump(Custom(), path)
    report = scan_path(path, config=ScanConfig(extra_safe_globals={TREE}))
    [finding] = [f for f in report.findings if f.code is Code.UNTRUSTED_TYPE]
    assert finding.severity is Severity.HIGH and finding.name == "Custom"
    assert report.verdict is Verdict.SUSPICIOUS
