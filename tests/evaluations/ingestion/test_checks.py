"""Each check fires on a constructed bad batch and passes a clean one; the poisoned SMS batch is flagged."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from evaluations.ingestion.checks import FAIL, PASS, ChecksConfig, run_checks
from evaluations.ingestion.checks.tabular import psi
from evaluations.ingestion.parsing import Records
from tests.evaluations.ingestion.conftest import clean_batch, poisoned_batch

TEXT = {"format": "tsv", "class_names": ["ham", "spam"]}
NO_SCAN = ChecksConfig(poison_scan=False)


@pytest.fixture(scope="module")
def clean_report(sms_split, sms):
    base, pool = sms_split
    return run_checks(base, clean_batch(sms, pool, 300, seed=3), schema=TEXT, seed=0)


def _verdicts(report) -> dict[str, str]:
    return {check.name: check.verdict for check in report.checks}


def test_a_clean_text_batch_passes_every_check_and_each_check_reports_statistic_and_threshold(clean_report):
    assert _verdicts(clean_report) == {
        "schema": PASS,
        "label_shift": PASS,
        "duplicates": PASS,
        "label_conflicts": PASS,
        "text_length": PASS,
        "token_distribution": PASS,
        "rare_token_bursts": PASS,
        "embedding_outliers": PASS,
        "poison_scan": PASS,
    }
    assert clean_report.passed and clean_report.flagged == {}
    for check in clean_report.checks:
        assert check.statistic is not None and check.threshold is not None and check.rule and check.detail


def _text(labels, texts) -> Records:
    return Records(format="tsv", labels=tuple(labels), texts=tuple(texts))


def test_a_batch_copied_from_the_accepted_data_fails_the_duplicate_check(sms_split):
    base, _ = sms_split
    copied = base.subset(range(300))
    report = run_checks(base, copied, schema=TEXT, config=NO_SCAN)
    check = report.check("duplicates")
    assert check.verdict == FAIL and len(check.flagged) == 300


def test_copies_of_accepted_records_with_flipped_labels_fail_the_label_conflict_check(sms_split, sms):
    base, pool = sms_split
    batch = clean_batch(sms, pool, 290, seed=4)
    flipped = base.subset(range(10))
    swapped = ["spam" if label == "ham" else "ham" for label in flipped.labels]
    report = run_checks(
        base, _text([*batch.labels, *swapped], [*batch.texts, *flipped.texts]), schema=TEXT, config=NO_SCAN
    )
    check = report.check("label_conflicts")
    assert check.verdict == FAIL and set(range(290, 300)) <= set(check.flagged)


def test_a_batch_of_only_spam_fails_the_label_shift_check(sms_split, sms):
    base, pool = sms_split
    spam = [i for i in pool if sms.labels[i] == "spam"][:200]
    report = run_checks(base, sms.subset(spam), schema=TEXT, config=NO_SCAN)
    assert report.check("label_shift").verdict == FAIL
    assert report.check("label_shift").data["batch_fraction"] == [0.0, 1.0]


def test_long_messages_fail_the_length_and_token_checks(sms_split, sms):
    base, pool = sms_split
    batch = clean_batch(sms, pool, 300, seed=5)
    padded = [
        f"{t} " + " ".join(["the quarterly report is attached please review the figures"] * 6) for t in batch.texts
    ]
    report = run_checks(base, _text(batch.labels, padded), schema=TEXT, config=NO_SCAN)
    assert report.check("text_length").verdict == FAIL
    assert report.check("token_distribution").verdict == FAIL


def test_a_phrase_repeated_across_a_batch_fails_the_rare_token_burst_check(sms_split, sms):
    base, pool = sms_split
    batch = clean_batch(sms, pool, 300, seed=6)
    texts = [f"{t} zq7vortex" if i % 30 == 0 else t for i, t in enumerate(batch.texts)]
    check = run_checks(base, _text(batch.labels, texts), schema=TEXT, config=NO_SCAN).check("rare_token_bursts")
    assert check.verdict == FAIL and "zq7vortex" in check.data["bursting"]
    assert set(check.flagged) == set(range(0, 300, 30))


def test_off_topic_records_fail_the_embedding_outlier_check(sms_split, sms):
    base, pool = sms_split
    batch = clean_batch(sms, pool, 300, seed=8)
    rng = np.random.default_rng(0)
    words = ["mitochondria", "photosynthesis", "enzyme", "chlorophyll", "ribosome", "membrane", "protein", "cell"]
    texts = list(batch.texts)
    for i in range(0, 300, 5):
        texts[i] = " ".join(rng.choice(words, 8))
    check = run_checks(base, _text(batch.labels, texts), schema=TEXT, config=NO_SCAN).check("embedding_outliers")
    assert check.verdict == FAIL and len(set(check.flagged) & set(range(0, 300, 5))) >= 50


def test_a_poisoned_sms_batch_fails_and_its_poison_is_flagged_while_few_clean_records_are(sms_split, sms):
    base, pool = sms_split
    batch, poison = poisoned_batch(sms, pool, 300, 30, seed=11)
    report = run_checks(base, batch, schema=TEXT, seed=0)
    assert not report.passed
    flagged = set(report.flagged)
    assert len(flagged & poison) / len(poison) >= 0.95
    assert len(flagged - poison) <= 0.05 * (300 - len(poison))


def _table(x, y) -> Records:
    return Records(format="csv", labels=tuple(str(v) for v in y), features=x)


@pytest.fixture(scope="module")
def cancer():
    data = load_breast_cancer()
    order = np.random.default_rng(0).permutation(len(data.target))
    names = [f"f{i}" for i in range(data.data.shape[1])]
    schema = {"format": "csv", "columns": [*names, "label"], "label_column": "label", "class_names": ["0", "1"]}
    x, y = data.data[order], data.target[order]
    return schema, _table(x[:400], y[:400]), x[400:], y[400:]


def test_a_clean_tabular_batch_passes_and_a_shifted_feature_fails_ks_and_psi(cancer):
    schema, base, x, y = cancer
    clean = run_checks(base, _table(x, y), schema=schema, config=NO_SCAN)
    assert clean.passed, [c.detail for c in clean.checks if c.verdict == FAIL]
    shifted = x.copy()
    shifted[:, 3] *= 1.8
    report = run_checks(base, _table(shifted, y), schema=schema, config=NO_SCAN)
    assert report.check("feature_ks").verdict == FAIL and "f3" in report.check("feature_ks").detail
    assert report.check("feature_psi").verdict == FAIL and report.check("feature_psi").statistic >= 0.25


def test_copied_tabular_rows_fail_the_duplicate_check(cancer):
    schema, base, _, _ = cancer
    report = run_checks(base, base.subset(range(100)), schema=schema, config=NO_SCAN)
    assert report.check("duplicates").verdict == FAIL


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    base = rng.normal(size=5000)
    assert psi(base, rng.normal(size=5000)) < 0.02
    assert psi(base, rng.normal(loc=1.0, size=5000)) > 0.25


def test_the_tabular_poison_scan_runs_on_mlp_features_and_passes_a_clean_batch(cancer):
    schema, base, x, y = cancer
    check = run_checks(base, _table(x, y), schema=schema, seed=0).check("poison_scan")
    assert check.verdict == PASS and check.statistic == 0.0
    assert "MLP" in check.detail and check.data["classes"]
