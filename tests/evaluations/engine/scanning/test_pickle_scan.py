"""Pickle opcode analysis: dangerous imports, obfuscation and malformed streams."""

from __future__ import annotations

import fractions
import functools
import os
import pickle
import struct
from pathlib import Path

import pytest

from evaluations.engine.scanning import (
    ATLAS_UNSAFE_ARTIFACT,
    Code,
    ScanConfig,
    Severity,
    Verdict,
    scan_bytes,
    scan_path,
)
from tests.evaluations.engine.scanning.payloads import (
    MEMOIZE,
    POP,
    PROTO4,
    REDUCE,
    STACK_GLOBAL,
    STOP,
    TUPLE1,
    TUPLE2,
    binget,
    malicious_pickle,
    sbu,
    touch_command,
)


def codes(report) -> set[str]:
    return {str(f.code) for f in report.findings}


@pytest.mark.parametrize("protocol", range(6))
def test_reduce_to_os_system_is_critical(protocol: int, canary: Path) -> None:
    report = scan_bytes(malicious_pickle(canary, protocol), name="model.pkl")

    assert report.verdict is Verdict.MALICIOUS
    [finding] = [f for f in report.findings if f.code is Code.DANGEROUS_GLOBAL]
    assert finding.severity is Severity.CRITICAL
    assert finding.module in {"posix", "nt", "os"} and finding.name == "system"
    assert finding.technique == ATLAS_UNSAFE_ARTIFACT
    assert finding.offset is not None
    assert "shell" in finding.message


def test_scanning_a_malicious_file_never_creates_the_canary(tmp_path: Path, canary: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(malicious_pickle(canary))

    report = scan_path(path)

    assert report.verdict is Verdict.MALICIOUS
    assert not canary.exists()


def test_stack_global_names_fetched_from_the_memo_are_resolved() -> None:
    payload = (
        PROTO4
        + sbu("os")
        + MEMOIZE
        + POP
        + sbu("system")
        + MEMOIZE
        + POP
        + binget(0)
        + binget(1)
        + STACK_GLOBAL
        + sbu("id")
        + TUPLE1
        + REDUCE
        + STOP
    )

    report = scan_bytes(payload, name="memo.pkl")

    assert report.verdict is Verdict.MALICIOUS
    assert any(f.global_name == "os.system" and f.severity is Severity.CRITICAL for f in report.findings)


def test_stack_global_with_computed_module_name_is_flagged_as_obfuscation() -> None:
    # module = str("o" "s") built by a call at load time, so no string constant names it.
    payload = (
        PROTO4
        + sbu("builtins")
        + sbu("str")
        + STACK_GLOBAL
        + sbu("os")
        + TUPLE1
        + REDUCE
        + sbu("system")
        + STACK_GLOBAL
        + sbu("id")
        + TUPLE1
        + REDUCE
        + STOP
    )

    report = scan_bytes(payload, name="obfuscated.pkl")

    [finding] = [f for f in report.findings if f.code is Code.UNRESOLVED_GLOBAL]
    assert finding.severity is Severity.HIGH
    assert report.verdict is not Verdict.CLEAN


def test_getattr_and_import_chain_is_critical() -> None:
    # getattr(__import__("os"), "system")("id")
    payload = (
        PROTO4
        + sbu("builtins")
        + sbu("getattr")
        + STACK_GLOBAL
        + sbu("builtins")
        + sbu("__import__")
        + STACK_GLOBAL
        + sbu("os")
        + TUPLE1
        + REDUCE
        + sbu("system")
        + TUPLE2
        + REDUCE
        + sbu("id")
        + TUPLE1
        + REDUCE
        + STOP
    )

    report = scan_bytes(payload, name="chain.pkl")

    flagged = {f.global_name for f in report.findings if f.severity is Severity.CRITICAL}
    assert {"builtins.getattr", "builtins.__import__"} <= flagged
    assert Code.DYNAMIC_CALL in {f.code for f in report.findings}
    assert report.verdict is Verdict.MALICIOUS


def test_python2_builtin_eval_is_normalised_and_critical() -> None:
    payload = b"c__builtin__\neval\n(S'1+1'\ntR."

    report = scan_bytes(payload, name="py2.pkl")

    assert any(f.global_name == "builtins.eval" and f.severity is Severity.CRITICAL for f in report.findings)


def test_inst_opcode_importing_os_system_is_critical() -> None:
    report = scan_bytes(b"(S'id'\nios\nsystem\n.", name="inst.pkl")

    assert report.verdict is Verdict.MALICIOUS
    assert report.findings[0].message.startswith("INST imports os.system")


def test_obj_opcode_calling_subprocess_is_critical() -> None:
    report = scan_bytes(b"(csubprocess\ncheck_output\nS'id'\no.", name="obj.pkl")

    assert report.verdict is Verdict.MALICIOUS
    assert report.findings[0].global_name == "subprocess.check_output"


@pytest.mark.parametrize("ext", [b"\x82\x01", b"\x83\x01\x00", b"\x84\x01\x00\x00\x00"])
def test_ext_opcodes_are_flagged_because_their_target_depends_on_the_environment(ext: bytes) -> None:
    report = scan_bytes(b"\x80\x02" + ext + b")R.", name="ext.pkl")

    assert Code.EXTENSION_OPCODE in {f.code for f in report.findings}
    assert report.max_severity is Severity.HIGH
    assert report.verdict is Verdict.SUSPICIOUS


def test_functools_partial_wrapping_os_system_is_a_critical_chain(canary: Path) -> None:
    class Wrapped:
        def __reduce__(self):
            return (functools.partial(os.system, touch_command(canary)), ())

    report = scan_bytes(pickle.dumps(Wrapped(), protocol=4), name="partial.pkl")

    assert Code.CALL_CHAIN in {f.code for f in report.findings}
    assert report.verdict is Verdict.MALICIOUS


def test_dotted_name_through_dunder_attribute_is_critical() -> None:
    payload = PROTO4 + sbu("builtins") + sbu("object.__subclasses__") + STACK_GLOBAL + b")R" + STOP

    report = scan_bytes(payload, name="dunder.pkl")

    assert report.verdict is Verdict.MALICIOUS


def test_build_on_an_imported_global_is_flagged_as_monkey_patching() -> None:
    payload = PROTO4 + sbu("collections") + sbu("OrderedDict") + STACK_GLOBAL + b"}" + b"b" + STOP

    report = scan_bytes(payload, name="patch.pkl")

    assert Code.BUILD_ON_GLOBAL in {f.code for f in report.findings}
    assert report.verdict is Verdict.SUSPICIOUS


def test_unknown_global_is_medium_and_asks_for_review() -> None:
    report = scan_bytes(pickle.dumps(fractions.Fraction(1, 3), protocol=2), name="fraction.pkl")

    assert report.verdict is Verdict.SUSPICIOUS
    assert all(f.severity is Severity.MEDIUM for f in report.findings)
    assert "review" in report.findings[0].message


def test_plain_containers_of_numbers_are_clean() -> None:
    data = {"weights": [1.0, 2.5], "name": "tiny", "shape": (2,), "flags": {True, False}, "raw": b"\x00\x01"}

    for protocol in range(6):
        assert scan_bytes(pickle.dumps(data, protocol=protocol), name="plain.pkl").is_clean


def test_truncated_pickle_gives_a_finding_not_an_exception(canary: Path) -> None:
    payload = malicious_pickle(canary, protocol=4)[:-3]

    report = scan_bytes(payload, name="truncated.pkl")

    assert Code.MALFORMED_PICKLE in {f.code for f in report.findings}
    # The import seen before the truncation still counts.
    assert report.verdict is Verdict.MALICIOUS


def test_garbage_after_a_pickle_header_is_rejected_as_malformed() -> None:
    report = scan_bytes(b"\x80\x04\xff\xfe\xfd garbage", name="garbage.pkl")

    assert report.verdict is Verdict.REJECTED
    assert Code.MALFORMED_PICKLE in {f.code for f in report.findings}


def test_forged_huge_bytes_length_does_not_allocate_it() -> None:
    payload = b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"tiny"

    report = scan_bytes(payload, name="forged.pkl")

    assert report.verdict is Verdict.REJECTED


def test_opcode_cap_rejects_oversized_pickles() -> None:
    payload = pickle.dumps(list(range(1000)), protocol=0)

    report = scan_bytes(payload, name="long.pkl", config=ScanConfig(max_pickle_opcodes=100))

    assert report.verdict is Verdict.REJECTED
    assert "max_pickle_opcodes" in report.findings[0].message


def test_detection_is_by_content_not_extension(canary: Path) -> None:
    report = scan_bytes(malicious_pickle(canary), name="model.safetensors")

    assert report.format == "pickle"
    assert report.verdict is Verdict.MALICIOUS
