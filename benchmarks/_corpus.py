"""A model-file corpus for the scanning benchmark: malicious pickles in every wrapper, and benign models.

Building the corpus never runs a payload: pickling an object only calls its ``__reduce__``, and the
hand-assembled pickles are plain bytes. Every payload, if it ever ran, would create ``canary``; the
benchmark checks that file never appears. Nothing here loads or unpickles a malicious file.
"""

from __future__ import annotations

import io
import os
import pickle  # noqa: S403 - used only to *write* payload pickles, never to load them
import pty
import runpy
import shutil
import subprocess  # noqa: S404 - referenced as a payload callable, never called
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Sample", "build_corpus"]


@dataclass(frozen=True)
class Sample:
    """One corpus file: its path, whether it is malicious, and the category it belongs to."""

    path: Path
    malicious: bool
    category: str


class _Reduce:
    """Pickles as ``func(*args)``: unpickling would call it; pickling only records it."""

    def __init__(self, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return self.func, self.args


def _payloads(canary: Path) -> dict[str, _Reduce]:
    """Callables that would run code, spawn processes or write files when unpickled; all target ``canary``."""
    c = str(canary)
    shell = f"touch {c}"
    return {
        "os_system": _Reduce(os.system, (shell,)),
        "os_popen": _Reduce(os.popen, (shell,)),
        "subprocess_popen": _Reduce(subprocess.Popen, (["touch", c],)),
        "subprocess_run": _Reduce(subprocess.run, (["touch", c],)),
        "subprocess_check_output": _Reduce(subprocess.check_output, (["touch", c],)),
        "subprocess_getoutput": _Reduce(subprocess.getoutput, (shell,)),
        "builtins_eval": _Reduce(eval, (f"__import__('os').system({shell!r})",)),
        "builtins_exec": _Reduce(exec, (f"open({c!r}, 'w').close()",)),
        "io_open_write": _Reduce(open, (c, "w")),
        "runpy_run_code": _Reduce(runpy._run_code, (f"open({c!r}, 'w').close()", {})),
        "pty_spawn": _Reduce(pty.spawn, (["touch", c],)),
        "shutil_copyfile": _Reduce(shutil.copyfile, ("/etc/hostname", c)),
    }


# --- hand-assembled pickles (obfuscated call paths) -------------------------------------------------


def _s0(text: str) -> bytes:
    """Protocol-0 unicode string argument line (``V...\\n``)."""
    return b"V" + text.encode("raw_unicode_escape") + b"\n"


def _su(text: str) -> bytes:
    """SHORT_BINUNICODE (protocol 4)."""
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _obfuscated(canary: Path) -> dict[str, bytes]:
    """Pickles whose callable is reached indirectly: memo look-ups, INST/OBJ, getattr chains, wrappers."""
    c = str(canary)
    shell = f"touch {c}"
    code = f"open({c!r}, 'w').close()"
    inner = pickle.dumps(_Reduce(os.system, (shell,)), protocol=0)
    return {
        # STACK_GLOBAL whose module and name come from the memo, not from adjacent string pushes.
        "stack_global_from_memo": b"\x80\x04"
        + _su("os")
        + b"\x940"
        + _su("system")
        + b"\x940"
        + b"h\x00h\x01\x93"
        + _su(shell)
        + b"\x85R.",
        # Decoy memo entries, then LONG_BINGET; names pushed in reverse and swapped into place via the memo.
        "stack_global_long_binget": b"\x80\x04"
        + _su("collections")
        + b"\x94"
        + _su("OrderedDict")
        + b"\x94"
        + _su("system")
        + b"\x94"
        + _su("posix")
        + b"\x94"
        + b"0000"
        + b"j\x03\x00\x00\x00j\x02\x00\x00\x00\x93"
        + _su(shell)
        + b"\x85R.",
        # Protocol 0 INST and protocol 1 OBJ build "instances" by calling the global.
        "inst_opcode": b"(" + _s0(shell) + b"ios\nsystem\n.",
        "obj_opcode": b"(cos\nsystem\n" + _s0(shell) + b"o.",
        # getattr(__import__('os'), 'system')(cmd)
        "getattr_import_chain": b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n("
        + _s0("os")
        + b"tR"
        + _s0("system")
        + b"tR("
        + _s0(shell)
        + b"tR.",
        # getattr(importlib.import_module('subprocess'), 'call')([...])
        "importlib_import_module": b"cbuiltins\ngetattr\n(cimportlib\nimport_module\n("
        + _s0("subprocess")
        + b"tR"
        + _s0("call")
        + b"tR(("
        + _s0("touch")
        + _s0(c)
        + b"ltR.",
        # A pickle inside a pickle.
        "nested_pickle_loads": b"\x80\x03c_pickle\nloads\n(C" + bytes([len(inner)]) + inner + b"tR.",
        # numpy's test helper that exec()s a string.
        "numpy_runstring": b"cnumpy.testing._private.utils\nrunstring\n(" + _s0(code) + b"}tR.",
        # functools.partial(os.system, cmd)() : the dangerous global is only an argument.
        "functools_partial": b"cfunctools\npartial\n(cos\nsystem\n" + _s0(shell) + b"tR)R.",
        # operator.methodcaller('system', cmd)(importlib.import_module('os'))
        "operator_methodcaller": b"coperator\nmethodcaller\n("
        + _s0("system")
        + _s0(shell)
        + b"tR(cimportlib\nimport_module\n("
        + _s0("os")
        + b"tRtR.",
        # Modules that exec() a string: timeit and cProfile.
        "timeit_timeit": b"ctimeit\ntimeit\n(" + _s0(code) + _s0("pass") + b"ctimeit\ndefault_timer\nI1\ntR.",
        "cprofile_run": b"ccProfile\nrun\n(" + _s0(code) + b"tR.",
        # Windows alias of os.
        "nt_system": b"cnt\nsystem\n(" + _s0(shell) + b"tR.",
    }


# --- writers -------------------------------------------------------------------------------------


def _torch_zip(path: Path, payload: Any | None, data_pkl: bytes | None = None) -> None:
    """A ``torch.save`` zip holding a tensor and ``payload``, or with ``archive/data.pkl`` replaced."""
    import torch

    obj: dict[str, Any] = {"weight": torch.arange(6.0).reshape(2, 3)}
    if payload is not None:
        obj["hook"] = payload
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    if data_pkl is None:
        path.write_bytes(buffer.getvalue())
        return
    buffer.seek(0)
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = data_pkl if info.filename.endswith("/data.pkl") else src.read(info)
            dst.writestr(info, data)


def _malicious(root: Path, canary: Path) -> list[Sample]:
    import joblib
    import torch

    samples: list[Sample] = []

    def add(name: str, category: str) -> Path:
        path = root / "malicious" / name
        samples.append(Sample(path, True, category))
        return path

    payloads = _payloads(canary)
    for key, payload in payloads.items():
        for protocol in range(6):
            add(f"{key}.p{protocol}.pkl", f"pickle, protocol {protocol}").write_bytes(
                pickle.dumps(payload, protocol=protocol)
            )
    for key in ("os_system", "subprocess_popen", "builtins_eval", "builtins_exec", "runpy_run_code", "io_open_write"):
        _torch_zip(add(f"{key}.torch.pt", "torch zip (archive/data.pkl)"), payloads[key])
    for key in ("os_system", "builtins_exec"):
        buffer = io.BytesIO()
        torch.save({"weight": torch.ones(2), "hook": payloads[key]}, buffer, _use_new_zipfile_serialization=False)
        add(f"{key}.legacy.pth", "torch legacy (pickle sequence)").write_bytes(buffer.getvalue())
    for key in ("os_system", "subprocess_popen", "builtins_exec", "runpy_run_code"):
        model = {"coef": np.arange(16.0), "intercept": np.zeros(3), "hook": payloads[key]}
        joblib.dump(model, add(f"{key}.joblib", "joblib, plain"))
        joblib.dump(model, add(f"{key}.zlib.joblib", "joblib, zlib"), compress=("zlib", 3))
    for method in ("gzip", "bz2", "lzma"):
        model = {"coef": np.arange(16.0), "hook": payloads["os_system"]}
        joblib.dump(model, add(f"os_system.{method}.joblib", "joblib, gzip/bz2/lzma"), compress=(method, 3))
    for key, data in _obfuscated(canary).items():
        add(f"{key}.pkl", "obfuscated call path (hand-assembled)").write_bytes(data)
    obfuscated = _obfuscated(canary)
    for key in ("stack_global_from_memo", "getattr_import_chain"):
        _torch_zip(add(f"{key}.torch.pt", "obfuscated call path in torch zip"), None, data_pkl=obfuscated[key])
    for key in ("os_system", "subprocess_popen", "builtins_eval"):
        arr = np.array([payloads[key], 1.0], dtype=object)
        buffer = io.BytesIO()
        np.save(buffer, arr, allow_pickle=True)
        add(f"{key}.npy", "object array in .npy").write_bytes(buffer.getvalue())
        buffer = io.BytesIO()
        np.savez(buffer, weights=np.arange(4.0), meta=arr)
        add(f"{key}.npz", "object array in .npz").write_bytes(buffer.getvalue())
    # The right bytes under a misleading name: scanners must look at content, not the extension.
    disguised = pickle.dumps(payloads["os_system"], protocol=4)
    for name in ("model.safetensors", "weights.bin", "model.onnx", "checkpoint.h5"):
        add(f"disguised_{name}", "pickle under a misleading extension").write_bytes(disguised)
    return samples


def _benign(root: Path) -> list[Sample]:
    import joblib
    import skops.io as sio
    import torch
    from safetensors.torch import save_file
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from evaluations.engine.models import build

    samples: list[Sample] = []

    def add(name: str, category: str) -> Path:
        path = root / "benign" / name
        samples.append(Sample(path, False, category))
        return path

    torch.manual_seed(0)
    modules = {
        "small_cnn": build("small_cnn", in_channels=1, input_size=8, num_classes=10),
        "mlp": build("mlp", in_features=64, hidden=[32, 16], num_classes=10),
        "resnet18_w8": build("resnet18_cifar", num_classes=10, width=8),
    }
    for name, module in modules.items():
        torch.save(module.state_dict(), add(f"{name}.state_dict.pt", "torch state_dict (zip)"))
        torch.jit.script(module).save(str(add(f"{name}.torchscript.pt", "TorchScript")))
        save_file(
            {k: v.contiguous() for k, v in module.state_dict().items()}, str(add(f"{name}.safetensors", "safetensors"))
        )
    torch.save(
        modules["small_cnn"].state_dict(),
        add("small_cnn.legacy.pth", "torch state_dict (legacy)"),
        _use_new_zipfile_serialization=False,
    )
    x, y = load_digits(return_X_y=True)
    for c in (0.1, 1.0):
        estimator = LogisticRegression(C=c, max_iter=200).fit(x / 16.0, y)
        sio.dump(estimator, add(f"logreg_C{c}.skops", "skops (LogisticRegression)"))
    rng = np.random.default_rng(0)
    arrays = {"f32": rng.random((64, 8), dtype=np.float32), "i64": np.arange(100), "u8": np.zeros((8, 8), np.uint8)}
    for name, arr in arrays.items():
        np.save(add(f"{name}.npy", "numpy numeric .npy"), arr)
    np.savez(add("arrays.npz", "numpy numeric .npz"), **arrays)
    np.savez_compressed(add("arrays_compressed.npz", "numpy numeric .npz"), **arrays)
    for protocol in range(6):
        data = {"weights": [0.1, 0.2, 0.3], "bias": 0.5, "labels": ("a", "b"), "shape": (3, 1)}
        add(f"plain_data.p{protocol}.pkl", "plain-data pickle (dict of numbers)").write_bytes(
            pickle.dumps(data, protocol=protocol)
        )
    for compress in (0, ("zlib", 3)):
        suffix = "zlib." if compress else ""
        joblib.dump(
            {"coef": rng.random(32), "bias": np.zeros(4)},
            add(f"arrays.{suffix}joblib", "joblib numpy arrays"),
            compress=compress,
        )
    return samples


def build_corpus(root: Path, canary: Path) -> list[Sample]:
    """Write the corpus under ``root`` (``malicious/`` and ``benign/``); payloads all target ``canary``."""
    (root / "malicious").mkdir(parents=True)
    (root / "benign").mkdir(parents=True)
    return _malicious(root, canary) + _benign(root)
