"""Which imported callables a pickle may reference: allow-list, deny-list and the default.

Unpickling calls ``find_class(module, name)``, which imports ``module`` and fetches ``name``;
opcodes such as REDUCE then call what was fetched. So the set of globals a pickle imports
bounds what it can do. The policy:

* **allow-list** (no finding): containers and tensor/array rebuild helpers that ``torch.load``
  (``weights_only=True``) and numpy need, and nothing that can reach the interpreter, the
  file system or the network.
* **deny-list** (CRITICAL): process execution, code evaluation and import machinery,
  attribute traversal, file and network access, nested deserialisers and code objects.
  A dotted name that walks through a dunder attribute (``object.__subclasses__``) is
  denied too, since protocol 4 resolves dotted names attribute by attribute.
* **libraries** (MEDIUM, ``library-global``): classes from scikit-learn, torch.nn and similar.
  Loading them imports and runs library code paths (``__setstate__``, ``__reduce__``) that
  were never designed against hostile input; we prefer skops or safetensors for those
  models. Teams can opt a prefix in with ``ScanConfig.trusted_module_prefixes`` (then INFO).
* **anything else** (MEDIUM, ``unknown-global``): review before loading.
"""

from __future__ import annotations

import _compat_pickle
import re
from dataclasses import dataclass

from evaluations.engine.scanning.config import ScanConfig
from evaluations.engine.scanning.findings import Code, Severity

_TORCH_STORAGES = (
    "Double Float Half BFloat16 Long Int Short Char Byte Bool ComplexFloat ComplexDouble "
    "QUInt8 QInt8 QInt32 QUInt4x2 QUInt2x4 Untyped Typed"
).split()
_TORCH_DTYPES = (
    "bfloat16 bool complex32 complex64 complex128 float16 float32 float64 half float double "
    "float8_e4m3fn float8_e4m3fnuz float8_e5m2 float8_e5m2fnuz float8_e8m0fnu float4_e2m1fn_x2 "
    "int8 int16 int32 int64 uint8 uint16 uint32 uint64 qint8 qint32 quint8 quint4x2 quint2x4 "
    "bits1x8 bits2x4 bits4x2 bits8 bits16 long int short"
).split()
_TORCH_REBUILDERS = (
    "_rebuild_tensor _rebuild_tensor_v2 _rebuild_tensor_v3 _rebuild_parameter _rebuild_parameter_with_state "
    "_rebuild_qtensor _rebuild_sparse_tensor _rebuild_meta_tensor_no_storage _rebuild_nested_tensor "
    "_rebuild_device_tensor_from_numpy _rebuild_device_tensor_from_cpu_tensor _rebuild_wrapper_subclass"
).split()
_NUMPY_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")

SAFE_GLOBALS: frozenset[str] = frozenset(
    {
        "collections.OrderedDict",
        "collections.Counter",
        "collections.defaultdict",
        "collections.deque",
        "builtins.set",
        "builtins.frozenset",
        "builtins.slice",
        "builtins.complex",
        "builtins.bytearray",
        "builtins.bytes",
        "builtins.range",
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.str",
        # Base class argument of copyreg._reconstructor for plain objects.
        "builtins.object",
        # Protocol 2 encodes bytes as _codecs.encode(text, "latin1").
        "_codecs.encode",
        # copyreg helpers only instantiate the class they are given; that class is itself checked.
        "copyreg._reconstructor",
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
        "torch.serialization._get_layout",
        "torch.device",
        "torch.Size",
        "torch.Tensor",
        "torch.nn.parameter.Parameter",
        "torch._tensor._rebuild_from_type_v2",
        "torch.strided",
        "torch.sparse_coo",
        "torch.sparse_csr",
        "torch.per_tensor_affine",
        "torch.per_tensor_symmetric",
        "torch.per_channel_affine",
        "torch.per_channel_symmetric",
        "torch.per_channel_affine_float_qparams",
        # TorchScript's own list builders (debug_pkl, data.pkl of scripted modules).
        "torch.jit._pickle.build_intlist",
        "torch.jit._pickle.build_floatlist",
        "torch.jit._pickle.build_boollist",
        "torch.jit._pickle.build_tensorlist",
        "torch.jit._pickle.build_doublelist",
        "torch.jit._pickle.restore_type_tag",
        "numpy.ndarray",
        # joblib's placeholder for arrays stored next to the pickle; it only carries shape and dtype.
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "numpy.dtype",
        *(f"{m}.{n}" for m in _NUMPY_CORE for n in ("_reconstruct", "scalar")),
        # Protocol 5 pickles of contiguous arrays: np.frombuffer(buffer, dtype).reshape(shape).
        "numpy.core.numeric._frombuffer",
        "numpy._core.numeric._frombuffer",
        *(f"torch.{s}Storage" for s in _TORCH_STORAGES),
        *(f"torch.storage.{s}Storage" for s in ("Untyped", "Typed")),
        *(f"torch.{d}" for d in _TORCH_DTYPES),
        *(f"torch._utils.{r}" for r in _TORCH_REBUILDERS),
    }
)

#: Module prefixes whose globals are only ever resolved by TorchScript's C++ unpickler against
#: code compiled from the archive itself, never imported by Python.
TORCHSCRIPT_PREFIXES: tuple[str, ...] = ("__torch__.", "__torch__")

#: Every global from these modules (and their submodules) is CRITICAL.
DENIED_MODULES: dict[str, str] = {
    "os": "runs shell commands and touches the file system",
    "posix": "runs shell commands and touches the file system",
    "nt": "runs shell commands and touches the file system",
    "subprocess": "runs shell commands",
    "pty": "spawns processes",
    "commands": "runs shell commands",
    "popen2": "runs shell commands",
    "platform": "runs shell commands",
    "multiprocessing": "spawns processes",
    "signal": "interferes with the worker process",
    "runpy": "executes arbitrary Python modules",
    "importlib": "imports arbitrary code",
    "imp": "imports arbitrary code",
    "pkgutil": "imports arbitrary code",
    "zipimport": "imports arbitrary code",
    "code": "executes arbitrary Python source",
    "codeop": "compiles arbitrary Python source",
    "sys": "reaches the interpreter's modules and hooks",
    "ctypes": "calls native code",
    "_ctypes": "calls native code",
    "cffi": "calls native code",
    "shutil": "copies, moves and deletes files",
    "tempfile": "creates files",
    "pathlib": "reads and writes files",
    "io": "opens files",
    "_io": "opens files",
    "fileinput": "reads files",
    "socket": "opens network connections",
    "_socket": "opens network connections",
    "ssl": "opens network connections",
    "asyncio": "opens network connections and spawns processes",
    "requests": "makes network requests",
    "urllib": "makes network requests",
    "urllib2": "makes network requests",
    "urllib3": "makes network requests",
    "http": "makes network requests",
    "httplib": "makes network requests",
    "httpx": "makes network requests",
    "aiohttp": "makes network requests",
    "ftplib": "makes network requests",
    "smtplib": "sends mail",
    "telnetlib": "makes network requests",
    "xmlrpc": "makes network requests",
    "webbrowser": "opens URLs and runs browsers",
    "pickle": "runs a nested unpickler",
    "_pickle": "runs a nested unpickler",
    "cPickle": "runs a nested unpickler",
    "pickletools": "runs a nested unpickler",
    "dill": "runs a nested unpickler that can rebuild code",
    "cloudpickle": "runs a nested unpickler that can rebuild code",
    "joblib": "runs a nested unpickler",
    "shelve": "runs a nested unpickler",
    "marshal": "rebuilds code objects",
    "pip": "installs packages",
    "setuptools": "runs build scripts",
    "distutils": "runs build scripts",
    "venv": "creates environments and runs commands",
    "timeit": "evaluates arbitrary source",
    "pdb": "evaluates arbitrary source",
    "bdb": "evaluates arbitrary source",
    "trace": "executes arbitrary code",
    "profile": "executes arbitrary source",
    "cProfile": "executes arbitrary source",
    "doctest": "executes arbitrary source",
    "torch.hub": "downloads and runs code",
    "torch.package": "imports code from packages",
}

#: Individual globals that are CRITICAL although their module is otherwise ordinary.
DENIED_GLOBALS: dict[str, str] = {
    **{
        f"builtins.{n}": reason
        for n, reason in {
            "eval": "evaluates arbitrary source",
            "exec": "executes arbitrary source",
            "compile": "compiles arbitrary source",
            "__import__": "imports arbitrary code",
            "open": "opens files",
            "getattr": "reaches any attribute, e.g. os.system",
            "setattr": "monkey-patches objects",
            "delattr": "monkey-patches objects",
            "globals": "reaches the interpreter's globals",
            "locals": "reaches the interpreter's locals",
            "vars": "reaches object namespaces",
            "breakpoint": "starts a debugger",
            "input": "blocks the worker on stdin",
            "help": "runs the pager",
            "exit": "stops the worker",
            "quit": "stops the worker",
            "apply": "calls arbitrary callables",
            "execfile": "executes files",
            "reload": "re-imports modules",
        }.items()
    },
    "types.CodeType": "builds code objects",
    "types.FunctionType": "builds functions from code objects",
    "types.LambdaType": "builds functions from code objects",
    "types.MethodType": "binds arbitrary callables",
    "types.ModuleType": "builds modules",
    "types.SimpleNamespace": "builds namespaces for attribute chains",
    "operator.attrgetter": "reaches any attribute, e.g. os.system",
    "operator.methodcaller": "calls any method by name",
    "_operator.attrgetter": "reaches any attribute, e.g. os.system",
    "_operator.methodcaller": "calls any method by name",
    "functools.reduce": "chains calls",
    "_functools.reduce": "chains calls",
    "numpy.load": "runs a nested loader",
    "numpy.lib.npyio.load": "runs a nested loader",
    "numpy.testing._private.utils.runstring": "executes arbitrary source",
    "torch.load": "runs a nested loader",
    "torch.serialization.load": "runs a nested loader",
    "torch.jit.load": "runs a nested loader",
    "torch.save": "writes files",
    "torch.serialization.save": "writes files",
    "torch._C._jit_pass_lower_all_tuples": "reaches TorchScript internals",
    "torch.ops.load_library": "loads native code",
    "torch._ops.ops.load_library": "loads native code",
}

#: Well-known libraries whose classes legitimately appear in pickled models but still run code on load.
LIBRARY_PREFIXES: tuple[str, ...] = (
    "sklearn.",
    "scipy.",
    "numpy.",
    "torch.",
    "pandas.",
    "xgboost.",
    "lightgbm.",
    "catboost.",
    "transformers.",
)

_DUNDER = re.compile(r"^__\w+__$")


@dataclass(frozen=True)
class GlobalVerdict:
    """How the policy rates one imported ``module.name``; ``severity`` None means allowed silently."""

    module: str
    name: str
    severity: Severity | None
    code: Code | None
    reason: str

    @property
    def qualified(self) -> str:
        """``module.name``."""
        return f"{self.module}.{self.name}"


def normalize_global(module: str, name: str) -> tuple[str, str]:
    """Map Python 2 names (``__builtin__``, ``copy_reg``) to what ``find_class`` imports on Python 3."""
    # The real unpickler only remaps for protocol < 3; remapping always is the conservative choice.
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return module, name


def _module_matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def classify_global(module: str, name: str, config: ScanConfig) -> GlobalVerdict:
    """Rate one ``find_class(module, name)`` lookup against the policy described in the module docstring."""
    module, name = normalize_global(module, name)
    qualified = f"{module}.{name}"
    if qualified in SAFE_GLOBALS or qualified in config.extra_safe_globals:
        return GlobalVerdict(module, name, None, None, "allow-listed")
    if any(_DUNDER.match(part) for part in name.split(".")):
        return GlobalVerdict(
            module,
            name,
            Severity.CRITICAL,
            Code.DANGEROUS_GLOBAL,
            "walks through a dunder attribute, a classic route to os.system or builtins",
        )
    for key in (qualified, *(f"{module}.{p}" for p in _prefixes(name))):
        if key in DENIED_GLOBALS:
            return GlobalVerdict(module, name, Severity.CRITICAL, Code.DANGEROUS_GLOBAL, DENIED_GLOBALS[key])
    for denied, reason in DENIED_MODULES.items():
        if "." not in denied and _module_matches(module, denied):
            return GlobalVerdict(module, name, Severity.CRITICAL, Code.DANGEROUS_GLOBAL, reason)
        if "." in denied and (_module_matches(module, denied) or qualified == denied):
            return GlobalVerdict(module, name, Severity.CRITICAL, Code.DANGEROUS_GLOBAL, reason)
    if module.startswith(TORCHSCRIPT_PREFIXES):
        return GlobalVerdict(module, name, None, None, "TorchScript class compiled from the archive")
    if any(qualified.startswith(p) or module == p.rstrip(".") for p in config.trusted_module_prefixes):
        return GlobalVerdict(module, name, Severity.INFO, Code.TRUSTED_GLOBAL, "module trusted by configuration")
    if any(qualified.startswith(p) for p in LIBRARY_PREFIXES):
        return GlobalVerdict(
            module,
            name,
            Severity.MEDIUM,
            Code.LIBRARY_GLOBAL,
            "imports library code that runs while unpickling; prefer safetensors or skops, "
            "or trust the module with ScanConfig.trusted_module_prefixes",
        )
    return GlobalVerdict(
        module,
        name,
        Severity.MEDIUM,
        Code.UNKNOWN_GLOBAL,
        "is not on the allow-list; review it before loading the file",
    )


def _prefixes(dotted: str) -> list[str]:
    """``a.b.c`` -> ``["a", "a.b"]``: protocol 4 resolves dotted names one attribute at a time."""
    parts = dotted.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]
