"""Safe loaders: round trips, scan-first refusal of malicious files, strict weights, clear errors."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import skops.io as sio
import torch
from safetensors.torch import save_file
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from evaluations.engine.common import sha256_file
from evaluations.engine.models import (
    ModelLoadError,
    StateDictMismatchError,
    TorchClassifier,
    UnsupportedFormatError,
    UntrustedTypesError,
    build,
    load_model,
    load_safetensors,
    load_skops,
    load_torchscript,
    loaders,
)
from evaluations.engine.scanning import UnsafeModelFile

DIGITS = {"input_shape": (1, 8, 8), "bounds": (0.0, 1.0), "num_classes": 10}
CNN = {"architecture": "small_cnn", "hyperparams": {"in_channels": 1, "input_size": 8}, **DIGITS}


class _Payload:
    """Pickles to a call that writes the canary file when unpickled."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self):
        return (exec, (f"open({str(self.canary)!r}, 'w').write('pwned')",))


class CustomLogisticRegression(LogisticRegression):
    """A user-defined estimator type that skops does not trust."""


@pytest.fixture
def cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return build("small_cnn", in_channels=1, input_size=8, num_classes=10).eval()


@pytest.fixture
def digits_batch() -> torch.Tensor:
    return torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def _estimator_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((80, 4))
    return x, (x[:, 0] + x[:, 1] > 1).astype(np.int64)


def _pass_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the scanner with one that passes everything, to test the loaders' own defences."""
    monkeypatch.setattr(
        loaders, "ensure_clean", lambda path, config=None: SimpleNamespace(sha256=sha256_file(path), verdict="clean")
    )


def test_safetensors_round_trip_of_small_cnn_gives_identical_logits(tmp_path, cnn, digits_batch) -> None:
    path = tmp_path / "model.safetensors"
    save_file(cnn.state_dict(), path)

    classifier = load_safetensors(path, **CNN)

    assert isinstance(classifier, TorchClassifier) and classifier.differentiable
    assert classifier.sha256 == sha256_file(path)
    with torch.no_grad():
        assert torch.equal(classifier.logits(digits_batch), cnn(digits_batch))
        assert torch.equal(classifier.features(digits_batch), cnn.features(digits_batch))


def test_safetensors_round_trip_of_a_text_model_takes_token_ids(tmp_path) -> None:
    model = build("text_embeddingbag", vocab_size=30, embed_dim=4, num_classes=2).eval()
    path = tmp_path / "text.safetensors"
    save_file(model.state_dict(), path)
    classifier = load_safetensors(
        path,
        architecture="text_embeddingbag",
        hyperparams={"vocab_size": 30, "embed_dim": 4},
        input_shape=(5,),
        bounds=(0, 29),
        num_classes=2,
    )
    tokens = torch.tensor([[1, 2, 3, 0, 0], [4, 0, 0, 0, 0]])
    assert classifier.input_dtype == torch.int64 and not classifier.differentiable
    with torch.no_grad():
        assert torch.equal(classifier.logits(tokens), model(tokens))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch 2.13 deprecates TorchScript export
def test_torchscript_round_trip_gives_identical_logits_and_features(tmp_path, cnn, digits_batch) -> None:
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(cnn), path)

    classifier = load_torchscript(path, **DIGITS)

    assert classifier.sha256 == sha256_file(path)
    with torch.no_grad():
        assert torch.equal(classifier.logits(digits_batch), cnn(digits_batch))
        assert torch.equal(classifier.features(digits_batch), cnn.features(digits_batch))


def test_skops_round_trip_of_a_logistic_regression(tmp_path) -> None:
    x, y = _estimator_data()
    estimator = LogisticRegression().fit(x, y)
    path = tmp_path / "model.skops"
    sio.dump(estimator, path)

    classifier = load_skops(path, input_shape=(4,), bounds=(0.0, 1.0), num_classes=2)

    assert classifier.framework == "sklearn" and classifier.sha256 == sha256_file(path)
    expected = torch.as_tensor(estimator.predict_proba(x), dtype=torch.float32)
    assert torch.allclose(classifier.logits(torch.as_tensor(x, dtype=torch.float32)).exp(), expected)


def test_load_model_dispatches_on_the_format(tmp_path, cnn) -> None:
    path = tmp_path / "model.safetensors"
    save_file(cnn.state_dict(), path)
    assert isinstance(load_model(path, format="safetensors", **CNN), TorchClassifier)


def test_a_state_dict_with_a_missing_key_names_the_key(tmp_path, cnn) -> None:
    state = cnn.state_dict()
    del state["head.bias"]
    path = tmp_path / "model.safetensors"
    save_file(state, path)
    with pytest.raises(StateDictMismatchError, match="missing keys: head.bias") as caught:
        load_safetensors(path, **CNN)
    assert caught.value.missing == ["head.bias"] and caught.value.unexpected == []


def test_weights_for_other_hyperparameters_name_the_unexpected_and_mis_shaped_tensors(tmp_path) -> None:
    state = build("small_cnn", in_channels=1, input_size=8, num_classes=5).state_dict()
    state["extra.weight"] = torch.zeros(2)
    path = tmp_path / "model.safetensors"
    save_file(state, path)
    with pytest.raises(
        StateDictMismatchError, match=r"head.weight is \(5, 64\) but the model needs \(10, 64\)"
    ) as caught:
        load_safetensors(path, **CNN)
    assert caught.value.unexpected == ["extra.weight"]
    assert set(caught.value.shape_mismatches) == {"head.weight", "head.bias"}


@pytest.mark.parametrize("loader", ["torchscript", "safetensors", "skops"])
@pytest.mark.parametrize("container", ["raw_pickle", "torch_save_zip"])
def test_a_malicious_pickle_is_refused_before_loading_and_the_canary_never_appears(
    tmp_path, monkeypatch, loader: str, container: str
) -> None:
    canary = tmp_path / "canary"
    path = tmp_path / "model.bin"
    if container == "raw_pickle":
        path.write_bytes(pickle.dumps(_Payload(canary)))
    else:
        torch.save({"weights": _Payload(canary)}, path)
    scanned: list[Path] = []
    real_ensure_clean = loaders.ensure_clean
    monkeypatch.setattr(loaders, "ensure_clean", lambda p, config=None: scanned.append(p) or real_ensure_clean(p))
    options = {"skops": DIGITS, "torchscript": DIGITS, "safetensors": CNN}[loader]

    with pytest.raises(UnsafeModelFile) as caught:
        load_model(path, format=loader, **options)

    assert caught.value.report.verdict == "malicious"
    assert scanned == [path]
    assert not canary.exists()


def test_a_torch_save_file_is_not_accepted_by_the_safetensors_loader(tmp_path, cnn) -> None:
    path = tmp_path / "model.pt"
    torch.save(cnn.state_dict(), path)
    with pytest.raises(UnsupportedFormatError, match=r"not a safetensors file.*safetensors.torch.save_file"):
        load_safetensors(path, **CNN)


def test_a_torch_save_file_is_not_accepted_as_torchscript(tmp_path, cnn) -> None:
    path = tmp_path / "model.pt"
    torch.save(cnn.state_dict(), path)
    with pytest.raises(UnsupportedFormatError, match="torch.jit.save"):
        load_torchscript(path, **DIGITS)


def test_the_skops_loader_refuses_untrusted_types_even_when_the_scan_passes(tmp_path, monkeypatch) -> None:
    x, y = _estimator_data()
    path = tmp_path / "model.skops"
    sio.dump(CustomLogisticRegression().fit(x, y), path)
    _pass_scan(monkeypatch)
    with pytest.raises(UntrustedTypesError, match="CustomLogisticRegression") as caught:
        load_skops(path, input_shape=(4,), bounds=(0.0, 1.0), num_classes=2)
    assert caught.value.types == [f"{__name__}.CustomLogisticRegression"]


def test_the_skops_loader_trusts_allow_listed_tree_state(tmp_path, monkeypatch) -> None:
    x, y = _estimator_data()
    estimator = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y)
    path = tmp_path / "forest.skops"
    sio.dump(estimator, path)
    assert sio.get_untrusted_types(file=path) == ["sklearn.tree._tree.Tree"]
    _pass_scan(monkeypatch)
    classifier = load_skops(path, input_shape=(4,), bounds=(0.0, 1.0), num_classes=2)
    assert torch.equal(
        classifier.predict(torch.as_tensor(x, dtype=torch.float32)), torch.as_tensor(estimator.predict(x))
    )


def test_a_file_swapped_between_scan_and_load_is_refused(tmp_path, monkeypatch, cnn) -> None:
    path = tmp_path / "model.safetensors"
    save_file(cnn.state_dict(), path)
    monkeypatch.setattr(loaders, "ensure_clean", lambda p, config=None: SimpleNamespace(sha256="0" * 64))
    with pytest.raises(ModelLoadError, match="changed between the safety scan and loading"):
        load_safetensors(path, **CNN)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_declared_class_count_that_the_model_does_not_output_is_refused(tmp_path, cnn) -> None:
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(cnn), path)
    with pytest.raises(ModelLoadError, match=r"returns \(1, 10\).*\(1, 3\)"):
        load_torchscript(path, input_shape=(1, 8, 8), bounds=(0.0, 1.0), num_classes=3)
    with pytest.raises(ModelLoadError, match="does not accept inputs of shape"):
        load_torchscript(path, input_shape=(3, 32, 32), bounds=(0.0, 1.0), num_classes=10)


def test_a_missing_file_and_an_unknown_format_say_what_to_fix(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="No model file"):
        load_torchscript(tmp_path / "nope.pt", **DIGITS)
    with pytest.raises(UnsupportedFormatError, match="torchscript, safetensors, skops"):
        load_model(tmp_path / "model.onnx", format="onnx")
    with pytest.raises(ModelLoadError, match="Wrong options for the skops loader"):
        load_model(tmp_path / "model.skops", format="skops", architecture="mlp", **DIGITS)
