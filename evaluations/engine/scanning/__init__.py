"""Static scanning of model files for unsafe deserialisation, before anything loads them.

Threat: MITRE ATLAS AML.T0011.000, "User Execution: Unsafe ML Artifacts". Pickle-based model
formats (``torch.save``, joblib, ``np.save(allow_pickle=True)``, plain pickle) run code while
loading: an attacker who can upload or swap a model file gets code execution on whatever loads
it. This package decides, without loading, whether a file is safe to hand to a loader.

What is scanned, always by content (magic bytes), never by extension alone:

* pickle streams, protocols 0-5, including several back to back (legacy ``torch.save``), walked
  opcode by opcode with ``pickletools.genops`` and a symbolic stack machine that resolves
  GLOBAL/STACK_GLOBAL (through the memo), INST, OBJ, REDUCE, NEWOBJ(_EX), BUILD and EXT1/2/4;
  imports are rated by :mod:`~evaluations.engine.scanning.policy` (allow-list, deny-list, default);
* joblib files, plain or compressed with zlib, gzip, bz2, xz or lzma (decompressed under a cap),
  stepping over the raw array bytes joblib interleaves with the pickle;
* zip archives: torch (``archive/data.pkl``), TorchScript (``data.pkl``, ``constants.pkl``,
  ``*.debug_pkl``), ``.npz``, skops (``skops.io.get_untrusted_types`` plus a deny-list pass over
  ``schema.json``), with member-count, total-size, compression-ratio and nesting caps checked
  before anything is decompressed;
* ``.npy``: the header is parsed by numpy's header reader; object arrays carry a pickle, which is scanned;
* safetensors: header length, JSON, dtypes, shapes and offsets (contiguous, in bounds, no overlap).

What is not scanned: TorchScript code (compiled by TorchScript, not imported by Python), ONNX,
GGUF, HDF5/Keras and TensorFlow SavedModel files (reported as unsupported, hence rejected),
compressed blobs inside zips that are not named like model files, and the behaviour of
allow-listed callables themselves. Scanning never executes, imports or unpickles the file.

Verdicts: ``malicious`` (any CRITICAL), ``rejected`` (the file could not be fully understood:
empty, unknown format, malformed, or over a resource cap), ``suspicious`` (MEDIUM/HIGH) and
``clean`` (nothing above LOW). Pickled scikit-learn estimators are ``suspicious`` by default:
unpickling them runs library code paths never meant for hostile input; prefer skops, or opt a
prefix in with ``ScanConfig(trusted_module_prefixes=("sklearn.",))``.
"""

from __future__ import annotations

from evaluations.engine.scanning.config import ScanConfig
from evaluations.engine.scanning.findings import (
    ATLAS_UNSAFE_ARTIFACT,
    SCANNER_VERSION,
    Code,
    Finding,
    ScanReport,
    Severity,
    Verdict,
)
from evaluations.engine.scanning.scanner import UnsafeModelFile, ensure_clean, scan_bytes, scan_path

__all__ = [
    "ATLAS_UNSAFE_ARTIFACT",
    "SCANNER_VERSION",
    "Code",
    "Finding",
    "ScanConfig",
    "ScanReport",
    "Severity",
    "UnsafeModelFile",
    "Verdict",
    "ensure_clean",
    "scan_bytes",
    "scan_path",
]
