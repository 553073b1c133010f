"""Checking a prediction body against the model's input spec without calling the model (numpy only)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from evaluations.models import ModelArtifact


class RequestError(Exception):
    """The request body is not a valid batch; the message says how to fix it."""


def _no_constants(name: str) -> float:
    raise RequestError(f"The body holds {name}; send finite numbers only (JSON has no NaN or Infinity).")


def parse_inputs(body: bytes, *, artifact: ModelArtifact, max_batch: int) -> np.ndarray:
    """The batch ``(N, *input_shape)`` as float64, validated; raises :class:`RequestError`."""
    try:
        data = json.loads(body, parse_constant=_no_constants)
    except RequestError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise RequestError(f'The body is not valid JSON ({exc}); send {{"inputs": [...]}}.') from None
    if not isinstance(data, dict) or "inputs" not in data:
        raise RequestError('Send a JSON object {"inputs": [<input>, ...]} with one input per prediction.')
    extra = sorted(set(data) - {"inputs"})
    if extra:
        raise RequestError(f'Unknown field(s) {", ".join(map(repr, extra))}; the body takes only "inputs".')
    inputs = data["inputs"]
    shape = tuple(int(d) for d in artifact.input_shape)
    spec = f"({', '.join(map(str, shape))})"
    if not isinstance(inputs, list) or not inputs:
        raise RequestError(f'"inputs" must be a non-empty list of inputs of shape {spec}.')
    if len(inputs) > max_batch:
        raise RequestError(
            f"The batch has {len(inputs)} inputs; this deployment takes at most {max_batch} per request."
        )
    try:
        x = np.asarray(inputs)
    except (ValueError, TypeError):
        x = None
    if x is not None and x.dtype != object and x.dtype.kind not in "iuf":
        what = {"b": "true/false", "U": "strings"}.get(x.dtype.kind, str(x.dtype))
        raise RequestError(f"Inputs must be numbers; got {what}.")
    if x is None or x.dtype == object or x.shape[1:] != shape:
        got = "ragged nested lists or non-numbers" if x is None or x.dtype == object else f"shape {x.shape[1:]}"
        raise RequestError(f"Each input must be nested lists of numbers of shape {spec}; got {got}.")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise RequestError("Inputs must be finite numbers; got a value too large to represent.")
    lo, hi = (float(b) for b in artifact.input_bounds)
    if x.min() < lo or x.max() > hi:
        raise RequestError(f"Input values must lie within the model's bounds [{lo:g}, {hi:g}]; scale the inputs.")
    if not _float_model(artifact) and not np.array_equal(x, np.round(x)):
        raise RequestError("This model takes integer token ids; got fractional values.")
    return x


def _float_model(artifact: ModelArtifact) -> bool:
    """Text models (embedding bags) take integer token ids; the rest take floats."""
    return artifact.architecture != "text_embeddingbag"


def describe_schema(artifact: ModelArtifact) -> dict[str, Any]:
    """What the endpoint takes, for docs and the deployment page."""
    return {
        "input_shape": list(artifact.input_shape),
        "bounds": list(artifact.input_bounds),
        "classes": len(artifact.class_names),
        "dtype": "float" if _float_model(artifact) else "integer token ids",
        "example": {"inputs": [_zeros(list(artifact.input_shape), math.floor(float(artifact.input_bounds[0])))]},
    }


def _zeros(shape: list[int], value: float) -> Any:
    if len(shape) == 1:
        return [value] * shape[0]
    return [_zeros(shape[1:], value) for _ in range(shape[0])]
