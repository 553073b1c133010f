"""Detecting extraction attacks from a client's query stream: PRADA, query volume, output entropy, edits.

:class:`ExtractionDetector` keeps per-client state and is fed one answered query at a time
(``observe(client_id, x, probs)``). Four monitors vote; a client is flagged once at least
``min_votes`` of them flag it in the same query, and stays flagged.

* **PRADA** (Juuti, Szyller, Marchal & Asokan, EuroS&P 2019, "PRADA: Protecting Against DNN Model
  Stealing Attacks"), Algorithm 1: per predicted class ``c`` the client has a growing set ``G_c``.
  For each new query ``x`` of class ``c`` its minimum L2 distance ``d`` to ``G_c`` joins the
  client's distance set ``D``; ``x`` joins ``G_c`` when ``d > T_c``, where ``T_c = max(T_c,
  mean(D_c) - std(D_c))`` over the distances ``D_c`` of the points added to ``G_c`` (the first query
  of a class joins ``G_c`` without a distance). Once ``|D| >= prada_min_distances`` the Shapiro-Wilk
  statistic ``W`` of ``D`` is computed (``scipy.stats.shapiro``, on the latest 5,000 distances);
  ``W < prada_threshold`` (the paper's delta) flags the client. Natural queries give roughly normal
  distances; synthetic ones (random noise, Jacobian steps of a fixed size from earlier queries) do not.
  Each query costs one vectorised distance computation against ``G_c``: O(history).
  Distances are taken in input space for float inputs. Token ids (integer inputs, text models) are not
  points of a metric space (id 17 is no closer to id 18 than to id 3,000, and padding length dominates
  raw L2), so each query is first mapped to its L2-normalised bag of words: token counts hashed into
  ``token_buckets`` buckets (``id mod token_buckets``; exact for smaller vocabularies), padding id 0
  dropped. Token streams have their own threshold ``prada_token_threshold``, off by default: distances
  between natural texts' bags of words are far from normal (see the edit monitor below).
* **Volume**: more than ``volume_max_queries`` queries within the last ``volume_window`` seconds.
* **Output entropy**: the fraction of the client's latest ``entropy_window`` answers whose
  normalised entropy ``H(p) / log(C)`` exceeds ``entropy_threshold``. A trained model is sure about
  natural inputs; synthetic queries near decision boundaries (Jacobian augmentation, active
  learning) or far off the data manifold draw far more uncertain answers. Skipped when the victim
  reveals labels only.
* **Edits**: the fraction of the client's latest ``edit_window`` queries that are a small edit of one
  of its earlier queries: relative change ``0 < change <= edit_max_change`` to the nearest earlier
  query, where ``change`` is the L2 distance over the mean L2 norm of the two inputs for float inputs,
  and for token ids the fraction of words changed (L1 distance of the two hashed word counts over their
  total count: substituting ``k`` of ``n`` words gives ``k / n``). Exact repeats do not count. Synthetic
  attackers that perturb their own earlier queries (Jacobian augmentation, HotFlip-style token
  substitutions) send almost nothing else; clients sending natural data rarely do. It backs PRADA up where
  its premise fails: distances between natural texts' bags of words are far from normal (on the SMS
  Spam Collection, benign 300-query streams reach Shapiro-Wilk ``W`` of 0.52-0.8), so no PRADA threshold
  separates text attackers from benign clients there.

The thresholds are data dependent: calibrate them on benign traffic with :func:`evaluate_detector`.
"""

from __future__ import annotations

import inspect
import math
import numbers
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from scipy.stats import shapiro
from torch import Tensor

from evaluations.engine.common import (
    EngineInputError,
    InvalidConfigError,
    ShapeMismatchError,
    library_versions,
    sha256_arrays,
)
from evaluations.engine.extraction.victim import Victim, VictimAnswer

__all__ = [
    "DetectionReport",
    "DetectionState",
    "DetectorConfig",
    "ExtractionDetector",
    "MonitoredVictim",
    "QueryMeasurement",
    "QueryStream",
    "evaluate_detector",
]

#: scipy's Shapiro-Wilk p-values are inexact beyond 5,000 samples; W stays usable, we keep the latest.
_SHAPIRO_MAX = 5000
try:  # scipy's compiled Shapiro-Wilk routine, which scipy.stats.shapiro calls
    from scipy.stats._ansari_swilk_statistics import swilk as _swilk
except ImportError:  # pragma: no cover - a scipy that moved it: the public function, unwrapped
    _swilk = None
_shapiro = inspect.unwrap(shapiro)
try:  # the per-query arithmetic in C (_kernels.c), built with the package where a C compiler is at hand
    from evaluations.engine.extraction import _kernels
except ImportError:  # pragma: no cover - installed without a compiler: the numpy versions below
    _kernels = None
_MONITORS = ("prada", "volume", "entropy", "edits")
#: The edit monitor's screen (``_History.is_edit``) computes ``|e - q|^2`` as ``|e|^2 + |q|^2 - 2 e.q`` in float32,
#: off by at most about ``dim * eps * (|e| + |q|)^2``; it keeps rows up to ``256 * dim * eps`` (as a fraction of
#: ``((|e| + |q|) / 2)^2``, i.e. 64 times that bound) beyond the threshold, so no row within it is lost.
_SCREEN_SLACK = 256 * float(np.finfo(np.float32).eps)
#: Rows the edit test checks exactly first (the nearest by the screen), before the rest of those it kept.
_EDIT_FIRST_ROWS = 8
_PAD_ID = 0  # the token-id padding convention of evaluations.engine.datasets.text


@dataclass(frozen=True)
class DetectorConfig:
    """Thresholds of the four monitors; the defaults are calibrated on scikit-learn's digits and SMS spam.

    Measured on digits (MLP victims, 2 victim x 2 attacker seeds): random and Jacobian attackers are
    flagged after 50-110 queries, an attacker querying mirrored digits after 50 (entropy), active learning on
    in-distribution data after 85-132, and 0 of 150 benign 300-query streams of held-out digits per setting;
    an attacker sampling in-distribution natural data is never flagged (it looks like a benign client).
    With the edit monitor (``benchmarks/bench_extraction.py``, detection part, 3 attacker seeds): on the
    digits CNN random attackers are flagged after 50 queries (entropy) and Jacobian ones after 76 (edits);
    on the SMS spam filter (token ids) random after 52-54 (entropy) and Jacobian token substitutions after
    76-77 (edits); 0 of 100 benign 300-query streams of held-out data are flagged on either.

    Attributes:
        prada_threshold: delta; flag when the Shapiro-Wilk ``W`` of the distance set falls below it.
        prada_token_threshold: delta for token-id inputs (None: PRADA does not judge token streams).
        prada_min_distances: distances needed before the test runs.
        volume_window: sliding window of the volume monitor, in seconds.
        volume_max_queries: most queries allowed in one window (None disables the monitor).
        entropy_window: latest answers the entropy monitor looks at (it waits for that many).
        entropy_threshold: normalised entropy above which an answer counts as uncertain.
        entropy_max_fraction: flag when a larger fraction of the window is uncertain (None disables).
        min_votes: monitors that must flag in the same query to flag the client (1 = any).
        inputs: ``'dense'`` (distances on the flattened input), ``'tokens'`` (on bags of words of token
            ids) or ``'auto'`` (``'tokens'`` for integer inputs, else ``'dense'``).
        token_buckets: size of the hashed bag-of-words vectors for token inputs.
        edit_max_change: relative change up to which a query counts as an edit of an earlier one (None
            disables the edit monitor).
        edit_window: latest queries the edit monitor looks at (it waits for that many).
        edit_max_fraction: flag when a larger fraction of the window are edits.
    """

    prada_threshold: float | None = 0.92
    prada_min_distances: int = 100
    prada_token_threshold: float | None = None
    volume_window: float = 3600.0
    volume_max_queries: int | None = 10_000
    entropy_window: int = 50
    entropy_threshold: float = 0.3
    entropy_max_fraction: float | None = 0.3
    min_votes: int = 1
    inputs: Literal["auto", "dense", "tokens"] = "auto"
    token_buckets: int = 1024
    edit_max_change: float | None = 0.25
    edit_window: int = 50
    edit_max_fraction: float = 0.5

    def __post_init__(self) -> None:
        _fraction("prada_threshold", self.prada_threshold, allow_none=True)
        _fraction("prada_token_threshold", self.prada_token_threshold, allow_none=True)
        _integer("prada_min_distances", self.prada_min_distances, 3)
        if (
            isinstance(self.volume_window, bool)
            or not isinstance(self.volume_window, numbers.Real)
            or not math.isfinite(self.volume_window)
            or self.volume_window <= 0
        ):
            raise InvalidConfigError(f"volume_window must be a positive number of seconds; got {self.volume_window!r}.")
        if self.volume_max_queries is not None:
            _integer("volume_max_queries", self.volume_max_queries, 1)
        _integer("entropy_window", self.entropy_window, 1)
        _fraction("entropy_threshold", self.entropy_threshold)
        _fraction("entropy_max_fraction", self.entropy_max_fraction, allow_none=True)
        _integer("min_votes", self.min_votes, 1)
        if self.inputs not in ("auto", "dense", "tokens"):
            raise InvalidConfigError(f"inputs must be 'auto', 'dense' or 'tokens'; got {self.inputs!r}.")
        _integer("token_buckets", self.token_buckets, 2)
        _fraction("edit_max_change", self.edit_max_change, allow_none=True)
        _integer("edit_window", self.edit_window, 1)
        _fraction("edit_max_fraction", self.edit_max_fraction)
        if self.min_votes > len(self.enabled):
            raise InvalidConfigError(
                f"min_votes={self.min_votes} but only {len(self.enabled)} monitor(s) are enabled "
                f"({', '.join(self.enabled) or 'none'}); lower min_votes or enable more monitors."
            )

    @property
    def enabled(self) -> tuple[str, ...]:
        """Names of the monitors that are switched on."""
        on = {
            "prada": self.prada_threshold is not None or self.prada_token_threshold is not None,
            "volume": self.volume_max_queries is not None,
            "entropy": self.entropy_max_fraction is not None,
            "edits": self.edit_max_change is not None,
        }
        return tuple(name for name in _MONITORS if on[name])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _integer(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidConfigError(f"{name} must be an integer >= {low}; got {value!r}.")


def _fraction(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        extra = " or None to disable it" if allow_none else ""
        raise InvalidConfigError(f"{name} must be a number in [0, 1]{extra}; got {value!r}.")


@dataclass(frozen=True)
class DetectionState:
    """A client's standing after its latest query.

    ``flagged`` is sticky: once set, it stays, and ``first_flagged_at`` is the 1-based number of the
    query that set it (``flagged_by`` the monitors that voted then). The monitor fields describe the
    latest query: PRADA's ``W`` (None until enough distances), the queries in the volume window, and
    the uncertain fraction of the entropy window (None until the window is full or without probabilities)
    and the fraction of edits in the edit window (None until it is full).
    """

    client_id: str
    queries: int
    flagged: bool
    first_flagged_at: int | None
    flagged_by: tuple[str, ...]
    prada_w: float | None
    prada_distances: int
    prada_flagged: bool
    volume_in_window: int
    volume_flagged: bool
    uncertain_fraction: float | None
    entropy_flagged: bool
    edit_fraction: float | None = None
    edits_flagged: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["flagged_by"] = list(self.flagged_by)
        return data


@dataclass(frozen=True)
class QueryMeasurement:
    """What judging one query measured, so that another detector can take the query in without measuring again.

    Several web processes each keep a detector for the same client and each must take in every query of the
    client's stream; the process that answered a query judges it (:meth:`ExtractionDetector.judge`) and logs
    these values with it, and the others replay it (:meth:`ExtractionDetector.replay`) from them: O(1) instead
    of distances to the whole history, and the same values in every process.

    Attributes:
        distance: PRADA's minimum distance to the growing set of the query's class (None: the class's first
            query, or PRADA off).
        edit: whether the query was a small edit of an earlier one (None: no earlier query, or the edit
            monitor off).
        uncertain: whether the answer's normalised entropy was over the threshold (None: no probabilities, or
            the entropy monitor off).
    """

    distance: float | None
    edit: bool | None
    uncertain: bool | None

    @classmethod
    def of(cls, distance: float | None, edit: bool | None, uncertain: bool | None) -> QueryMeasurement:
        """The same as ``QueryMeasurement(distance, edit, uncertain)``, made by :func:`_filled` (the serving monitor
        makes two of these per request)."""
        return _filled(cls, distance=distance, edit=edit, uncertain=uncertain)


def _filled(cls: type, **fields: Any) -> Any:
    """An instance of the frozen dataclass ``cls`` with ``fields`` (every one of them), as ``cls(**fields)`` makes it
    but without its ``__init__``, which sets each field through ``object.__setattr__``: several times the cost on
    the serving monitor's per-request path. The instance is as frozen as one made by ``cls``."""
    instance = object.__new__(cls)
    instance.__dict__.update(fields)
    return instance


def _appended(buffer: np.ndarray, n: int, value: Any) -> np.ndarray:
    """``buffer`` (its first ``n`` rows in use) with ``value`` as row ``n``: written in place, or into a copy of
    twice the size when full (amortised O(1) appends). Returns the buffer to keep."""
    if n == buffer.shape[0]:
        buffer = np.concatenate([buffer, np.empty_like(buffer)])
    buffer[n] = value
    return buffer


class _GrowingSet:
    """Vectors kept in a preallocated array that doubles when full (amortised O(1) appends)."""

    def __init__(self, dim: int, dtype: type | np.dtype = np.float64) -> None:
        self.data = np.empty((16, dim), dtype=dtype)
        self.size = 0
        self.kept = np.empty(16)  # the distances of the points that joined (after the first), with spare room
        self.n_kept = 0
        self.threshold = 0.0

    def min_distance(self, x: np.ndarray) -> float:
        diff = self.data[: self.size] - x
        return float(np.sqrt(np.einsum("ij,ij->i", diff, diff).min()))

    def keep_distance(self, d: float) -> np.ndarray:
        """Append ``d`` to the distances of the points that joined; returns them all."""
        if not hasattr(self, "kept"):  # a set pickled when they were a list
            old = self.__dict__.pop("distances")
            self.kept, self.n_kept = np.array(old if old else [0.0], dtype=np.float64), len(old)
        self.kept = _appended(self.kept, self.n_kept, d)
        self.n_kept += 1
        return self.kept[: self.n_kept]

    def add(self, x: np.ndarray) -> None:
        self.data = _appended(self.data, self.size, x)
        self.size += 1


class _History(_GrowingSet):
    """Every query of a client for the edit monitor, with each row's scale kept beside it.

    The scale is what the change of a later query is divided by: the row's L2 norm (float inputs, float32
    rows) or its word count (token inputs, uint8 rows). Keeping it saves recomputing it for the whole
    history on every query. Float rows carry it in two extra columns, the squared norm and the norm, so that the
    edit screen of :meth:`is_edit` is one matrix-vector product over the stored rows (``rows`` is the inputs alone).
    """

    def __init__(self, dim: int, dtype: type | np.dtype, *, tokens: bool) -> None:
        super().__init__(dim if tokens else dim + 2, dtype)
        self.tokens = tokens
        self.dim = dim
        self.layout = 2  # float rows with their squared norm and norm (a history pickled before has no layout)
        self.scales = np.empty(16, dtype=np.float32) if tokens else None

    @classmethod
    def of(cls, old: _GrowingSet, *, tokens: bool) -> _History:
        """A history holding the rows of ``old`` (a client state stored before the scales were kept beside them)."""
        rows = old.data[: old.size]
        history = cls(rows.shape[1], rows.dtype, tokens=tokens)
        for row in rows:
            history.add(row)
        return history

    @property
    def rows(self) -> np.ndarray:
        """The stored queries ``(size, dim)``."""
        return self.data[: self.size, : self.dim]

    def row_scales(self) -> np.ndarray:
        """The scale of each stored query ``(size,)``."""
        return self.scales[: self.size] if self.tokens else self.data[: self.size, self.dim + 1]

    def is_edit(self, stored: np.ndarray, max_change: float, norm: np.floating | None = None) -> bool:
        """Whether ``stored`` (a row as the history keeps it) is a small edit of an earlier row: its relative change
        to some earlier row is in ``(0, max_change]`` (exact repeats are not edits).

        Float rows are screened by one matrix-vector product, loose enough to keep every row whose true change is
        within ``max_change`` despite float32 rounding; the exact distances are then computed for the rows kept
        only, nearest first. The answer is the exact test's.
        """
        if self.tokens:  # fraction of words changed: L1 of the word counts over their total
            earlier, scales = self.rows, self.row_scales()
            query = stored.astype(np.float32)
            change = np.abs(earlier.astype(np.float32) - query).sum(axis=1) / np.maximum(scales + query.sum(), 1.0)
            changed = change[change > 0]
            return bool(changed.size) and float(changed.min()) <= max_change
        # L2 distance over the mean L2 norm h = (|e| + |q|) / 2: a row passes the screen when
        # |e - q|^2 = |e|^2 + |q|^2 - 2 e.q <= K h^2 with K = max_change^2 + slack, i.e. when
        # (1 - k)|e|^2 - 2k|q||e| - 2 e.q <= -(1 - k)|q|^2 with k = K / 4: the stored row [e, |e|^2, |e|] times
        # [-2q, 1 - k, -2k|q|]. float32 rounding moves either side by at most about (dim + 3) eps (|e| + |q|)^2,
        # and the slack adds 64 dim eps (|e| + |q|)^2 (_SCREEN_SLACK).
        dim = self.dim
        if norm is None:
            norm = _norm(stored)
        if norm < 2e-12:  # the exact test's mean norm is clamped at 1e-12 for (near) zero pairs: screen as it does
            scales = self.row_scales()
            half = np.maximum((scales + norm) / 2, 1e-12)
            rank = (scales * scales + norm * norm - 2 * (self.rows @ stored)) / (half * half)
            kept = np.flatnonzero(rank <= max_change * max_change + _SCREEN_SLACK * dim)
        else:
            k = (max_change * max_change + _SCREEN_SLACK * dim) / 4
            query = np.empty(dim + 2, dtype=np.float32)
            np.multiply(stored, -2.0, out=query[:dim])
            query[dim] = 1.0 - k
            query[dim + 1] = -2.0 * k * norm
            rank = self.data[: self.size] @ query
            kept = np.flatnonzero(rank <= -(1.0 - k) * norm * norm)
        if not kept.size:
            return False
        if kept.size > _EDIT_FIRST_ROWS:  # nearest first: one of them usually settles it
            kept = kept[np.argsort(rank[kept], kind="stable")]
        for rows in (kept[:_EDIT_FIRST_ROWS], kept[_EDIT_FIRST_ROWS:]):
            if rows.size:
                selected = self.data[rows]  # [e, |e|^2, |e|] of each row kept
                half = (selected[:, dim + 1] + norm) / 2
                if norm < 2e-12:  # elsewhere the mean norm is at least 1e-12 already
                    half = np.maximum(half, 1e-12)
                diff = selected[:, :dim] - stored
                change = np.sqrt(np.einsum("ij,ij->i", diff, diff)) / half
                if change[change <= max_change].any():  # a change within the bound that is not 0 (a repeat)
                    return True
        return False

    def add(self, x: np.ndarray, norm: np.floating | None = None) -> None:
        """Append a row; ``norm``, when known, is :func:`_norm` of its float32 values (float rows)."""
        n = self.size
        if n == self.data.shape[0]:
            self.data = np.concatenate([self.data, np.empty_like(self.data)])
        row = self.data[n]
        if self.tokens:
            row[:] = x
            self.scales = _appended(self.scales, n, np.float32(row.sum(dtype=np.float32)))
        else:
            dim = self.dim
            row[:dim] = x
            if norm is None:
                norm = _norm(row[:dim])
            row[dim] = norm * norm
            row[dim + 1] = norm
        self.size = n + 1


class _Client:
    """Everything the monitors remember about one client."""

    def __init__(self, config: DetectorConfig) -> None:
        self.queries = 0
        self.dim: int | None = None
        self.classes: dict[int, _GrowingSet] = {}
        self.distances = np.empty(64)
        self.n_distances = 0
        self.last_change = 0  # index of the latest distance unlike the one before it (0: all alike so far)
        # the latest distances (up to _SHAPIRO_MAX), sorted, as of the first ``merged`` (see _prada_w)
        self.window = np.empty(64)
        self.merged = 0
        self.times: deque[float] = deque()
        self.uncertain: deque[bool] = deque(maxlen=config.entropy_window)
        self.history: _GrowingSet | None = None  # every query, for the edit monitor
        self.edits: deque[bool] = deque(maxlen=config.edit_window)
        self.first_flagged_at: int | None = None
        self.flagged_by: tuple[str, ...] = ()
        # what the monitors said about the latest query: (prada_w, prada_flag, volume_flag, uncertain fraction,
        # entropy_flag, edit fraction, edits_flag), read into a DetectionState on demand
        self.latest: tuple[Any, ...] = (None, False, False, None, False, None, False)
        # made by this release: every part as the kernels' steps expect it (a client state pickled by an earlier one
        # lacks the flag and takes the numpy steps, which bring its parts up to date as they meet them)
        self.fused = True

    def add_distance(self, d: float) -> None:
        n = self.n_distances
        if "last_change" not in self.__dict__:  # a client state stored before it was kept
            self._find_last_change()
        if n and d != self.distances[n - 1]:
            self.last_change = n
        self.distances = _appended(self.distances, n, d)
        self.n_distances = n + 1

    def distances_alike(self, start: int) -> bool:
        """Whether the distances from index ``start`` to the latest are all equal."""
        if "last_change" not in self.__dict__:
            self._find_last_change()
        return self.last_change <= start

    def _find_last_change(self) -> None:
        n = self.n_distances
        changes = np.flatnonzero(self.distances[1:n] != self.distances[: n - 1]) if n > 1 else ()
        self.last_change = int(changes[-1]) + 1 if len(changes) else 0


class ExtractionDetector:
    """Incremental ensemble of PRADA, query-volume, output-entropy and edit monitors over per-client streams."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self._clients: dict[str, _Client] = {}

    def reset(self, client_id: str | None = None) -> None:
        """Forget one client (or every client when None)."""
        if client_id is None:
            self._clients.clear()
        else:
            self._clients.pop(client_id, None)

    def client_state(self, client_id: str) -> _Client | None:
        """The opaque stream state of one client (picklable), to store between processes; None if unseen."""
        return self._clients.get(str(client_id))

    def restore_client(self, client_id: str, state: _Client) -> None:
        """Continue a client's stream from a state returned by :meth:`client_state` under the same config."""
        self._clients[str(client_id)] = state

    def observe(
        self,
        client_id: str,
        x: Tensor | np.ndarray,
        probs: Tensor | np.ndarray | None = None,
        *,
        label: int | None = None,
        timestamp: float | None = None,
    ) -> DetectionState:
        """Record one answered query of ``client_id`` and return the client's state.

        Arguments:
            client_id: who sent the query (an API token, a user).
            x: the single input that was queried, any shape (flattened for distances).
            probs: the probabilities the victim computed for it ``(C,)``; None when only a label is known.
            label: the victim's label, needed when ``probs`` is None (else their argmax is used).
            timestamp: when the query arrived, in seconds (``time.time()`` when None).
        """
        return self.judge(client_id, x, probs, label=label, timestamp=timestamp)[0]

    def judge(
        self,
        client_id: str,
        x: Tensor | np.ndarray,
        probs: Tensor | np.ndarray | None = None,
        *,
        label: int | None = None,
        timestamp: float | None = None,
    ) -> tuple[DetectionState, QueryMeasurement]:
        """:meth:`observe`, also returning what was measured (for other detectors to :meth:`replay`)."""
        measured = self.take(client_id, x, probs, label=label, timestamp=timestamp)
        return self.state(client_id), measured  # type: ignore[return-value]

    def replay(
        self,
        client_id: str,
        x: Tensor | np.ndarray,
        probs: Tensor | np.ndarray | None,
        measured: QueryMeasurement,
        *,
        label: int | None = None,
        timestamp: float | None = None,
    ) -> DetectionState:
        """Take in a query another detector judged, from its :class:`QueryMeasurement`, without measuring again.

        The client's state moves as the judging detector's did with those measurements: the same distance joins
        PRADA's distance set (and the query joins its class's growing set over the same threshold rule), the same
        edit and uncertainty votes join their windows. Where this detector's view differed (another process's
        query it had not seen yet when it judged its own), the measurement still wins: a query that was the first
        of its class there joins the growing set here without a distance. The volume, entropy and edit monitors
        vote as usual; PRADA's Shapiro-Wilk test, the one costly vote, is left to the queries this detector
        judges itself (the judging detector ran it on this one).
        """
        self.take(client_id, x, probs, measured, label=label, timestamp=timestamp)
        return self.state(client_id)  # type: ignore[return-value]

    def take(
        self,
        client_id: str,
        x: Tensor | np.ndarray,
        probs: Tensor | np.ndarray | None = None,
        measured: QueryMeasurement | None = None,
        *,
        label: int | None = None,
        timestamp: float | None = None,
    ) -> QueryMeasurement:
        """Judge a query (``measured`` None) or replay one (see :meth:`replay`) without building the client's
        :class:`DetectionState`; returns what was measured. For callers that feed many queries and read the state
        (:meth:`state`) once, after the last."""
        client = self._client(client_id)
        vector, raw, tokens = _vector(x, self.config)
        self._check_dim(client, client_id, vector)
        p = None if probs is None else np.ascontiguousarray(_numpy(probs), dtype=np.float64).reshape(-1)
        if p is not None and (p.size < 2 or not _finite(p)):
            raise EngineInputError(f"probs must be a finite probability vector of at least 2 classes; got {p!r}.")
        if p is None and label is None:
            raise EngineInputError("Pass the victim's probabilities or, for label-only victims, its label.")
        predicted = int(p.argmax()) if p is not None else int(label)  # type: ignore[arg-type]
        now = time.time() if timestamp is None else float(timestamp)
        distance, edit, uncertain = self._take(client, vector, raw, tokens, p, predicted, measured, now)
        return QueryMeasurement.of(distance, edit, uncertain)

    def take_checked(
        self,
        client_id: str,
        x: np.ndarray,
        probs: np.ndarray | None,
        predicted: int,
        measured: QueryMeasurement | None = None,
        *,
        timestamp: float,
    ) -> QueryMeasurement:
        """:meth:`take` for a dense query its caller has already checked: ``x`` the flattened, contiguous, finite
        float input (float32 is enough: PRADA measures and keeps it in float64, the edit monitor in float32, both
        exactly as the float64 of the same values), ``probs`` the contiguous probabilities ``(C,)`` (None for labels
        only) and ``predicted`` their argmax (or the label). The same state change and measurement as :meth:`take`,
        without checking and converting the input again: the serving monitor judges each answer, and replays the other
        web processes' answers from their measurement (``measured``), through it. Returns what was measured
        (``measured`` itself when replaying)."""
        client = self._client(client_id)
        self._check_dim(client, client_id, x)
        distance, edit, uncertain = self._take(client, x, x, False, probs, predicted, measured, timestamp)
        if measured is not None:
            return measured
        return QueryMeasurement.of(distance, edit, uncertain)

    def _client(self, client_id: str) -> _Client:
        client = self._clients.get(str(client_id))
        if client is None:
            client = self._clients[str(client_id)] = _Client(self.config)
        return client

    @staticmethod
    def _check_dim(client: _Client, client_id: str, vector: np.ndarray) -> None:
        if client.dim is None:
            client.dim = vector.shape[0]
        elif vector.shape[0] != client.dim:
            raise ShapeMismatchError(
                f"Client {client_id!r} sent inputs of {client.dim} values before and now {vector.shape[0]}; "
                "use one detector per model."
            )

    def _take(
        self,
        client: _Client,
        vector: np.ndarray,
        raw: np.ndarray,
        tokens: bool,
        p: np.ndarray | None,
        predicted: int,
        measured: QueryMeasurement | None,
        now: float,
    ) -> tuple[float | None, bool | None, bool | None]:
        """One query through every monitor and the vote: ``(distance, edit, uncertain)`` as measured or replayed."""
        client.queries += 1
        prada_w, prada_flag, distance = self._prada(client, vector, predicted, tokens=tokens, measured=measured)
        fraction, entropy_flag, uncertain = self._entropy(client, p, measured=measured)
        edit_fraction, edit_flag, edit = self._edits(client, raw, tokens=tokens, measured=measured)
        self._conclude(client, now, prada_w, prada_flag, fraction, entropy_flag, edit_fraction, edit_flag)
        return distance, edit, uncertain

    def _conclude(
        self,
        client: _Client,
        now: float,
        prada_w: float | None,
        prada_flag: bool,
        fraction: float | None,
        entropy_flag: bool,
        edit_fraction: float | None,
        edit_flag: bool,
    ) -> None:
        """The volume monitor's step, the latest votes, and the client's flag when enough monitors voted."""
        config = self.config
        times = client.times
        times.append(now)
        while times and times[0] <= now - config.volume_window:
            times.popleft()
        volume_flag = config.volume_max_queries is not None and len(times) > config.volume_max_queries
        client.latest = (prada_w, prada_flag, volume_flag, fraction, entropy_flag, edit_fraction, edit_flag)
        if client.first_flagged_at is None:
            flags = (("prada", prada_flag), ("volume", volume_flag), ("entropy", entropy_flag), ("edits", edit_flag))
            votes = tuple(name for name, flag in flags if flag)
            if len(votes) >= config.min_votes:
                client.first_flagged_at = client.queries
                client.flagged_by = votes

    def state(self, client_id: str) -> DetectionState | None:
        """The client's standing after its latest query (None for a client never seen)."""
        client = self._clients.get(str(client_id))
        if client is None:
            return None
        prada_w, prada_flag, volume_flag, fraction, entropy_flag, edit_fraction, edit_flag = getattr(
            client, "latest", (None, False, False, None, False, None, False)
        )
        # made by _filled: the serving monitor reads a state on every request
        return _filled(
            DetectionState,
            client_id=str(client_id),
            queries=client.queries,
            flagged=client.first_flagged_at is not None,
            first_flagged_at=client.first_flagged_at,
            flagged_by=client.flagged_by,
            prada_w=prada_w,
            prada_distances=client.n_distances,
            prada_flagged=prada_flag,
            volume_in_window=len(client.times),
            volume_flagged=volume_flag,
            uncertain_fraction=fraction,
            entropy_flagged=entropy_flag,
            edit_fraction=edit_fraction,
            edits_flagged=edit_flag,
        )

    def observe_batch(
        self,
        client_id: str,
        x: Tensor | np.ndarray,
        probs: Tensor | np.ndarray | None = None,
        *,
        labels: Sequence[int] | np.ndarray | None = None,
        timestamps: Sequence[float] | np.ndarray | None = None,
    ) -> DetectionState:
        """:meth:`observe` each row of a batch ``(N, ...)`` in order; returns the state after the last."""
        n = len(x)
        if n == 0:
            raise EngineInputError("observe_batch needs at least one query.")
        state = None
        for i in range(n):
            state = self.observe(
                client_id,
                x[i],
                None if probs is None else probs[i],
                label=None if labels is None else int(labels[i]),
                timestamp=None if timestamps is None else float(timestamps[i]),
            )
        assert state is not None
        return state

    def _prada(
        self, client: _Client, vector: np.ndarray, predicted: int, *, tokens: bool, measured: QueryMeasurement | None
    ) -> tuple[float | None, bool, float | None]:
        """``(W, flag, distance)``; with ``measured``, its distance is used and W is not computed."""
        config = self.config
        threshold = config.prada_token_threshold if tokens else config.prada_threshold
        if threshold is None:
            return None, False, None
        growing = client.classes.get(predicted)
        # replaying, the measurement wins, whatever this detector's growing sets hold
        given = None if measured is None else measured.distance
        if growing is None:  # the class's first query: it joins without a distance, or with the one measured
            growing = client.classes[predicted] = _GrowingSet(vector.shape[0])
            growing.add(vector)
            d = given
            if d is not None:
                client.add_distance(d)
        elif measured is not None and given is None:  # the first query of its class where it was judged
            growing.add(vector)
            d = None
        else:
            d = self._grow(client, growing, vector, given)
        if measured is not None:
            return None, False, d
        if client.n_distances < config.prada_min_distances:
            return None, False, d
        start = max(0, client.n_distances - _SHAPIRO_MAX)
        if client.distances_alike(start):  # all equal (e.g. repeated queries): as far from normal as it gets
            return 0.0, True, d
        # scipy warns only of a zero range and of more than 5,000 values: neither reaches it
        w = _prada_w(client, start)
        return w, w < threshold, d

    @staticmethod
    def _grow(client: _Client, growing: _GrowingSet, vector: np.ndarray, d: float | None) -> float:
        """Record PRADA's distance ``d`` of ``vector`` (measured here when None) and return it; ``vector`` joins the
        growing set when ``d`` is over the set's threshold. With the C kernels, for a client made by this release,
        all of it is one call (``prada_step``), the same arithmetic as the numpy below up to float rounding."""
        if _kernels is not None and getattr(client, "fused", False):
            if growing.size == growing.data.shape[0]:
                growing.data = np.concatenate([growing.data, np.empty_like(growing.data)])
            if growing.n_kept == growing.kept.shape[0]:
                growing.kept = np.concatenate([growing.kept, np.empty_like(growing.kept)])
            n = client.n_distances
            if n == client.distances.shape[0]:
                client.distances = np.concatenate([client.distances, np.empty_like(client.distances)])
            d, joined, threshold, changed = _kernels.prada_step(
                growing.data,
                growing.size,
                growing.kept,
                growing.n_kept,
                growing.threshold,
                client.distances,
                n,
                vector,
                math.nan if d is None else d,
            )
            client.n_distances = n + 1
            if changed:
                client.last_change = n
            if joined:
                growing.size += 1
                growing.n_kept += 1
                growing.threshold = threshold
            return d
        if d is None:
            d = growing.min_distance(vector)
        client.add_distance(d)
        if d > growing.threshold:
            growing.add(vector)
            growing.threshold = max(growing.threshold, _mean_minus_std(growing.keep_distance(d)))
        return d

    def _edits(
        self, client: _Client, raw: np.ndarray, *, tokens: bool, measured: QueryMeasurement | None
    ) -> tuple[float | None, bool, bool | None]:
        """``(fraction, flag, edit)``: the window's fraction of edits, its vote, and whether this query is one."""
        config = self.config
        if config.edit_max_change is None:
            return None, False, None
        if not hasattr(client, "edits"):  # a client state stored (pickled) before the edit monitor existed
            client.history, client.edits = None, deque(maxlen=config.edit_window)
        # word counts fit in uint8 (clipped at 255), float inputs in float32: the history is the largest part
        # of a client's state, O(queries x input size); the query is compared at the stored precision, so an
        # exact repeat has change 0
        if tokens:
            stored = np.clip(raw, 0, 255).astype(np.uint8)
        else:
            stored = raw if raw.dtype == np.float32 else raw.astype(np.float32)
        history = client.history
        if history is None:
            history = client.history = _History(raw.shape[0], stored.dtype, tokens=tokens)
        elif getattr(history, "layout", 1) != 2:  # a client state stored before the history kept its scales in its rows
            history = client.history = _History.of(history, tokens=tokens)
        if not tokens and _kernels is not None and history.data.dtype == np.float32:
            # the edit test and the history row in one call (edit_step), the same test as is_edit up to float rounding
            n = history.size
            if n == history.data.shape[0]:
                history.data = np.concatenate([history.data, np.empty_like(history.data)])
            edit = _kernels.edit_step(history.data, n, stored, config.edit_max_change, measured is None)
            history.size = n + 1
            if measured is not None:  # None: the judging detector had no earlier query, so no vote
                edit = measured.edit
        elif measured is not None:
            edit = measured.edit
            history.add(stored)
        else:
            # a float query's norm serves the edit test and its row (float32, as both compute it)
            norm = None if tokens else _norm(stored)
            edit = history.is_edit(stored, config.edit_max_change, norm) if history.size else None
            history.add(stored, norm)
        if edit is not None:
            client.edits.append(edit)
        if len(client.edits) < config.edit_window:
            return None, False, edit
        fraction = sum(client.edits) / len(client.edits)
        return fraction, fraction > config.edit_max_fraction, edit

    def _entropy(
        self, client: _Client, p: np.ndarray | None, *, measured: QueryMeasurement | None
    ) -> tuple[float | None, bool, bool | None]:
        """``(fraction, flag, uncertain)``: the window's uncertain fraction, its vote, and this answer's."""
        config = self.config
        if config.entropy_max_fraction is None or p is None:
            return None, False, None
        uncertain = measured.uncertain if measured is not None else None
        if uncertain is None:
            uncertain = _normalised_entropy(p) > config.entropy_threshold
        client.uncertain.append(uncertain)
        if len(client.uncertain) < config.entropy_window:
            return None, False, uncertain
        fraction = sum(client.uncertain) / len(client.uncertain)
        return fraction, fraction > config.entropy_max_fraction, uncertain


def _normalised_entropy(p: np.ndarray) -> float:
    """``H(p) / log(C)`` of the probabilities ``p`` ``(C,)`` (negatives clipped at 0, renormalised; uniform when
    nothing is left). Short vectors (the usual handful of classes) in plain floats: numpy's per-call overhead is
    most of the cost there."""
    if _kernels is not None and p.size <= 64:  # the same terms in the same order, in C
        return _kernels.normalised_entropy(p)
    if p.size > 64:
        p = np.maximum(p.astype(np.float64, copy=False), 0.0)
        total = p.sum()
        p = p / total if total > 0 else np.full_like(p, 1.0 / p.size)
        nz = p[p > 0]
        return float(-(nz * np.log(nz)).sum() / math.log(p.size))
    values = p.tolist()
    total = 0.0
    for v in values:  # NaN fails the test too: it counts as 0, as a negative does
        if v > 0.0:
            total += v
    if not total > 0:  # nothing left: uniform
        values, total = [1.0] * len(values), float(len(values))
    h = 0.0
    for v in values:  # the same terms, added in the same order, as -sum(q log q) over q = v / total > 0
        if v > 0.0:
            q = v / total
            if q > 0.0:
                h += q * math.log(q)
    return -h / math.log(len(values))


def _shapiro_w(values: np.ndarray) -> float:
    """The Shapiro-Wilk ``W`` of a finite 1-D float64 array of at least 3 values: what ``scipy.stats.shapiro``
    computes (the same sorted, shifted values through the same compiled routine), without its axis / NaN-policy
    wrapper, its copies and its result object. PRADA runs it on every query it judges, where those cost several times
    the test itself. The routine's coefficients depend on the number of values only: they are computed once per
    count up to ``_SWILK_CACHED`` and passed back in (its ``init`` flag), which halves its cost and changes no bit."""
    if _swilk is None:  # pragma: no cover
        return float(_shapiro(values).statistic)
    n = values.size
    y = np.sort(values)
    y -= values[n // 2]  # scipy shifts by the middle value in input order (its gh-15777)
    return float(_swilk(y, _swilk_coefficients(n), 1)[0])


def _prada_w(client: _Client, start: int) -> float:
    """The Shapiro-Wilk ``W`` of the client's distances from ``start`` (the latest ``_SHAPIRO_MAX`` at most): with the
    C kernels, from the client's running sorted window of them (``_kernels.shapiro_window``: each distance inserted
    once, not the window sorted per query), else :func:`_shapiro_w`. Both are scipy's ``W`` to the bit."""
    n = client.n_distances
    if _kernels is None or _swilk is None:
        return _shapiro_w(client.distances[start:n])
    window = client.__dict__.get("window")
    if window is None:  # a client state stored before the window was kept: it is filled from every distance once
        window, client.merged = np.empty(64), 0
    if window.shape[0] < n - start:
        window = np.concatenate([window, np.empty(max(window.shape[0], n - start - window.shape[0]))])
    client.window = window
    a = _swilk_coefficients(n - start)
    w = _kernels.shapiro_window(client.distances, n, window, client.merged, _SHAPIRO_MAX, a)
    client.merged = n
    return w


def _swilk_coefficients(n: int) -> np.ndarray:
    """scipy's Shapiro-Wilk coefficients for ``n`` values (what its ``swilk`` computes first; cached up to
    ``_SWILK_CACHED`` values)."""
    a = _SWILK_COEFFICIENTS.get(n)
    if a is None:
        a = np.zeros(n // 2)
        _swilk(np.arange(n, dtype=np.float64), a, 0)  # fills a in (they depend on n only)
        if n <= _SWILK_CACHED:
            _SWILK_COEFFICIENTS[n] = a
    return a


#: Shapiro-Wilk coefficients by number of values (``_shapiro_w``), kept up to this count: at most about 8 MB per
#: process for every count up to it (a key's stream holds at most ``HISTORY_LIMIT`` queries on the serving path).
_SWILK_CACHED = 2048
_SWILK_COEFFICIENTS: dict[int, np.ndarray] = {}


def _norm(values: np.ndarray) -> np.floating:
    """The L2 norm of a float32 vector, in float32: what ``np.linalg.norm`` computes for one, without its checks."""
    return np.sqrt(values.dot(values))


def _finite(array: np.ndarray) -> bool:
    """Whether every value is finite: a finite sum says so in one reduction (a NaN or infinity makes the sum NaN or
    infinite); only a sum that overflows needs the elementwise test."""
    return math.isfinite(array.sum()) or bool(np.isfinite(array).all())


def _mean_minus_std(values: np.ndarray) -> float:
    """``values.mean() - values.std()``: numpy's own operations in the same order (so the same value), minus
    the overhead of its generic reductions."""
    mean = values.sum() / values.size
    deviations = values - mean
    return float(mean - math.sqrt((deviations * deviations).sum() / values.size))


def _numpy(x: Tensor | np.ndarray) -> np.ndarray:
    """``x`` as a numpy array (no copy for numpy arrays and CPU tensors)."""
    return x if isinstance(x, np.ndarray) else np.asarray(torch.as_tensor(x).detach().cpu())


def _vector(x: Tensor | np.ndarray, config: DetectorConfig) -> tuple[np.ndarray, np.ndarray, bool]:
    """What PRADA and the edit monitor compare, and whether ``x`` holds token ids: the flattened input
    (twice) for float inputs; the L2-normalised bag of words and the hashed word counts for token ids."""
    raw = _numpy(x).reshape(-1)
    integers = raw.dtype.kind in "iu"  # np.issubdtype(raw.dtype, np.integer), without its overhead
    tokens = config.inputs == "tokens" or (config.inputs == "auto" and integers)
    if raw.size == 0:
        raise EngineInputError("A query must be a non-empty input.")
    if not tokens:
        # contiguous (the C kernels read it as one block); never written to: PRADA and the edit monitor store copies
        array = np.ascontiguousarray(raw, dtype=np.float64)
        if not _finite(array):
            raise EngineInputError("A query must be a non-empty, finite input.")
        return array, array, False
    if not integers and not np.array_equal(raw, np.round(raw)):
        raise EngineInputError("Token queries must hold integer token ids; got fractional values.")
    ids = raw.astype(np.int64)
    if (ids < 0).any():
        raise EngineInputError("Token ids must be >= 0.")
    counts = np.bincount(ids[ids != _PAD_ID] % config.token_buckets, minlength=config.token_buckets)
    bag = counts.astype(np.float64)
    norm = np.linalg.norm(bag)
    return (bag / norm if norm > 0 else bag), counts.astype(np.float32), True


# --- a monitored victim ---------------------------------------------------------------------------


class MonitoredVictim(Victim):
    """Wraps a :class:`Victim` so every answered query of one client is fed to a detector.

    ``state`` is the client's latest :class:`DetectionState`. The detector sees the answer the client
    got: its probabilities when revealed, else its label. ``timestamps`` (a callable) stamps queries;
    by default one second apart, starting at 0, so volume limits read as queries per window of seconds.
    """

    def __init__(self, victim: Victim, detector: ExtractionDetector, client_id: str) -> None:
        super().__init__(
            input_shape=victim.input_shape,
            num_classes=victim.num_classes,
            bounds=victim.bounds,
            max_queries=victim.max_queries,
            input_dtype=victim.input_dtype,
        )
        self.victim = victim
        self.detector = detector
        self.client_id = client_id
        self.state: DetectionState | None = None

    @property
    def remaining(self) -> int | None:
        """The wrapped victim's remaining budget."""
        return self.victim.remaining

    def _answer(self, x: Tensor) -> VictimAnswer:
        answer = self.victim.query(x)
        self.count(int(x.shape[0]))
        probs = answer.soft_targets(self.num_classes) if answer.output != "label" else None
        for i in range(x.shape[0]):
            self.state = self.detector.observe(
                self.client_id,
                x[i],
                None if probs is None else probs[i],
                label=int(answer.labels[i]),
                timestamp=float(self.queries_used - x.shape[0] + i),
            )
        return answer

    def describe(self) -> dict[str, Any]:
        """The wrapped victim's description, marked as monitored."""
        return {**self.victim.describe(), "monitored": True}


# --- benchmarking ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class QueryStream:
    """One client's queries ``x`` ``(N, ...)`` with the victim's probabilities ``(N, C)`` or labels ``(N,)``."""

    x: np.ndarray | Tensor
    probs: np.ndarray | Tensor | None = None
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.x)
        if n == 0:
            raise EngineInputError("A query stream needs at least one query.")
        if self.probs is None and self.labels is None:
            raise EngineInputError("A query stream needs the victim's probabilities or labels.")
        for name in ("probs", "labels"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ShapeMismatchError(f"{name} has {len(value)} rows for {n} queries.")


@dataclass(frozen=True)
class DetectionReport:
    """Queries until detection per attacker (None: never flagged) and the false-positive rate on benign clients.

    ``benign_fpr`` is the fraction of benign streams flagged at any point; ``benign_flagged_by`` counts,
    per monitor, the benign streams in whose flagging query it voted; ``attack_flagged_by`` names the
    monitors that flagged each attacker.
    """

    config: dict[str, Any]
    queries_until_detection: dict[str, int | None]
    attack_lengths: dict[str, int]
    attack_flagged_by: dict[str, list[str]]
    n_benign: int
    benign_flagged: int
    benign_fpr: float
    benign_flagged_by: dict[str, int]
    benign_lengths: list[int]
    streams_sha256: str
    library_versions: dict[str, str] = field(default_factory=library_versions)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def evaluate_detector(
    config: DetectorConfig,
    attacks: Mapping[str, QueryStream],
    benign: Sequence[QueryStream],
) -> DetectionReport:
    """Replay each stream as its own client through a fresh :class:`ExtractionDetector`, one second apart."""
    started = time.perf_counter()
    detector = ExtractionDetector(config)
    until: dict[str, int | None] = {}
    attack_by: dict[str, list[str]] = {}
    hashes: list[np.ndarray] = []

    def replay(client: str, stream: QueryStream) -> DetectionState:
        x = np.asarray(torch.as_tensor(stream.x).detach().cpu())  # its dtype tells token ids from float inputs
        probs = None if stream.probs is None else np.asarray(torch.as_tensor(stream.probs).cpu(), dtype=np.float64)
        hashes.append(x)
        state = None
        for i in range(len(x)):
            state = detector.observe(
                client,
                x[i],
                None if probs is None else probs[i],
                label=None if stream.labels is None else int(stream.labels[i]),
                timestamp=float(i),
            )
            if state.flagged:
                break  # later queries cannot unflag the client
        assert state is not None
        detector.reset(client)  # every stream is its own client: its history is no longer needed
        return state

    for name, stream in attacks.items():
        state = replay(f"attack:{name}", stream)
        until[name] = state.first_flagged_at
        attack_by[name] = list(state.flagged_by)
    by_monitor = dict.fromkeys(_MONITORS, 0)
    flagged = 0
    for i, stream in enumerate(benign):
        state = replay(f"benign:{i}", stream)
        if state.flagged:
            flagged += 1
            for monitor in state.flagged_by:
                by_monitor[monitor] += 1
    return DetectionReport(
        config=config.to_dict(),
        queries_until_detection=until,
        attack_lengths={name: len(stream.x) for name, stream in attacks.items()},
        attack_flagged_by=attack_by,
        n_benign=len(benign),
        benign_flagged=flagged,
        benign_fpr=flagged / len(benign) if benign else 0.0,
        benign_flagged_by=by_monitor,
        benign_lengths=[len(stream.x) for stream in benign],
        streams_sha256=sha256_arrays(*hashes) if hashes else sha256_arrays(np.empty(0)),
        seconds=time.perf_counter() - started,
    )
