"""The allow-list / deny-list policy for imported globals."""

from __future__ import annotations

import collections
import pickle

import numpy as np
import pytest

from evaluations.engine.scanning import Code, ScanConfig, Severity, scan_bytes
from evaluations.engine.scanning.policy import classify_global


@pytest.mark.parametrize("protocol", range(6))
def test_pickled_numpy_arrays_and_ordered_dicts_are_clean(protocol: int) -> None:
    data = collections.OrderedDict(w=np.arange(6.0).reshape(2, 3), n=np.int64(3), s={1, 2}, c=complex(1, 2))

    report = scan_bytes(pickle.dumps(data, protocol=protocol), name="arrays.pkl")

    assert report.is_clean, report.summary()


@pytest.mark.parametrize(
    "qualified",
    [
        "os.system",
        "posix.system",
        "nt.spawnv",
        "subprocess.Popen",
        "builtins.exec",
        "builtins.getattr",
        "runpy.run_path",
        "importlib.import_module",
        "socket.socket",
        "shutil.rmtree",
        "sys.modules",
        "ctypes.CDLL",
        "webbrowser.open",
        "urllib.request.urlopen",
        "requests.get",
        "pickle.loads",
        "marshal.loads",
        "types.CodeType",
        "operator.attrgetter",
        "torch.load",
        "dill.loads",
    ],
)
def test_deny_listed_globals_are_critical(qualified: str) -> None:
    module, _, name = qualified.rpartition(".")

    verdict = classify_global(module, name, ScanConfig())

    assert verdict.severity is Severity.CRITICAL, qualified


def test_trusting_a_prefix_never_overrides_the_deny_list() -> None:
    config = ScanConfig(trusted_module_prefixes=("os",), extra_safe_globals=frozenset({"mylib.Model"}))

    assert classify_global("os", "system", config).severity is Severity.CRITICAL
    assert classify_global("mylib", "Model", config).severity is None


def test_sklearn_classes_are_library_globals_of_medium_severity() -> None:
    verdict = classify_global("sklearn.tree._classes", "DecisionTreeClassifier", ScanConfig())

    assert (verdict.severity, verdict.code) == (Severity.MEDIUM, Code.LIBRARY_GLOBAL)


def test_torchscript_classes_are_allowed_because_python_never_imports_them() -> None:
    assert classify_global("__torch__.torch.nn.modules.linear", "Linear", ScanConfig()).severity is None
