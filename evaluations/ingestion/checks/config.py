"""Settings of the ingestion checks, validated once."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ChecksConfig", "ChecksConfigError"]


class ChecksConfigError(ValueError):
    """A setting is out of range."""


@dataclass(frozen=True)
class ChecksConfig:
    """How strict the checks are.

    Attributes:
        alpha: family-wise false-alarm rate of the statistical checks on a clean batch; split evenly over
            the checks that run (Bonferroni), and within a check over its features or tokens.
        min_excess_rate: the outlier check also needs the batch's rate to exceed the expected rate by this
            much, so a huge batch does not fail on a negligible difference.
        min_duplicate_excess: the same floor for duplicates; larger, because duplicates come in clusters (SMS
            templates), so a clean batch's duplicate rate varies more than a binomial count.
        min_conflict_rate: the same floor for label conflicts (a near-copy of accepted data with another label).
        min_shift: label shift also needs this total-variation distance between the label distributions.
        min_ks_distance: a KS test also needs this distance (the largest CDF gap).
        near_duplicate_similarity: TF-IDF cosine at or above which two texts are near-duplicates.
        near_duplicate_distance: standardized Euclidean distance (per sqrt of the dimension) below which
            two tabular rows are near-duplicates.
        psi_threshold: population stability index at or above which a feature has shifted (0.25 is the
            customary "major shift").
        burst_min_count: a rare-token burst needs the token in at least this many batch records.
        outlier_quantile: a record is an embedding-space outlier above this quantile of the accepted data's
            own (leave-one-out) outlier scores of its class.
        neighbours: k of the k-nearest-neighbour outlier score.
        embedding_dim: dimension of the text (LSA) and tensor (PCA) embedding.
        min_token_excess: the token-distribution chi-square must also be at least this many times its
            expected value on a clean batch (the calibrated dispersion times the degrees of freedom).
        top_tokens: the token-distribution test compares the counts of this many frequent tokens (plus the rest).
        null_draws: resamples of the accepted data used to calibrate the token-distribution test.
        poison_scan: run the poison detector on accepted data + batch.
    """

    alpha: float = 0.01
    min_excess_rate: float = 0.05
    min_duplicate_excess: float = 0.1
    min_conflict_rate: float = 0.005
    min_shift: float = 0.02
    min_ks_distance: float = 0.05
    near_duplicate_similarity: float = 0.9
    near_duplicate_distance: float = 0.01
    psi_threshold: float = 0.25
    burst_min_count: int = 4
    outlier_quantile: float = 0.99
    neighbours: int = 10
    embedding_dim: int = 64
    min_token_excess: float = 1.6
    top_tokens: int = 200
    null_draws: int = 20
    poison_scan: bool = True

    def __post_init__(self) -> None:
        for name in (
            "alpha",
            "min_excess_rate",
            "min_duplicate_excess",
            "min_conflict_rate",
            "min_shift",
            "min_ks_distance",
        ):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ChecksConfigError(f"{name} must be in [0, 1); got {value!r}.")
        if not 0 < self.near_duplicate_similarity <= 1:
            raise ChecksConfigError("near_duplicate_similarity must be in (0, 1].")
        if not 0.5 < self.outlier_quantile < 1:
            raise ChecksConfigError("outlier_quantile must be in (0.5, 1).")
        for name in ("burst_min_count", "neighbours", "embedding_dim", "top_tokens", "null_draws"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ChecksConfigError(f"{name} must be a positive integer; got {value!r}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)
