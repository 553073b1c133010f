"""The image-folder loader (Pillow; PNG and JPEG only)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from evaluations.engine.datasets import DatasetFormatError, load_image_folder


def _save(path, value: int, size=(6, 4), fmt="PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path, format=fmt)


def test_an_image_folder_round_trips_to_scaled_resized_arrays(tmp_path) -> None:
    _save(tmp_path / "imgs" / "cat" / "a.png", 255)
    _save(tmp_path / "imgs" / "cat" / "b.jpg", 0, fmt="JPEG")
    _save(tmp_path / "imgs" / "dog" / "c.png", 51)
    (tmp_path / "imgs" / "dog" / "notes.txt").write_text("skip me")
    dataset = load_image_folder(tmp_path / "imgs", size=(8, 8))
    assert dataset.x.shape == (3, 1, 8, 8) and dataset.x.dtype == np.float32
    assert dataset.class_names == ("cat", "dog")
    np.testing.assert_array_equal(dataset.y, [0, 0, 1])
    np.testing.assert_allclose(dataset.x[0], 1.0)
    np.testing.assert_allclose(dataset.x[2], 0.2, atol=1e-6)
    assert dataset.bounds == (0.0, 1.0) and dataset.provenance["skipped_files"] == 1
    rgb = load_image_folder(tmp_path / "imgs", size=(4, 4), channels=3)
    assert rgb.input_shape == (3, 4, 4)
    assert rgb.source_sha256 == dataset.source_sha256  # the same files


def test_a_corrupt_image_names_the_file(tmp_path) -> None:
    _save(tmp_path / "imgs" / "cat" / "a.png", 255)
    (tmp_path / "imgs" / "dog").mkdir()
    (tmp_path / "imgs" / "dog" / "b.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DatasetFormatError, match="dog/b.png is not a readable PNG or JPEG"):
        load_image_folder(tmp_path / "imgs", size=(8, 8))


def test_a_folder_needs_two_classes_each_with_images(tmp_path) -> None:
    _save(tmp_path / "imgs" / "cat" / "a.png", 255)
    with pytest.raises(DatasetFormatError, match="at least two"):
        load_image_folder(tmp_path / "imgs", size=(8, 8))
    (tmp_path / "imgs" / "dog").mkdir()
    with pytest.raises(DatasetFormatError, match="'dog' has no PNG or JPEG images"):
        load_image_folder(tmp_path / "imgs", size=(8, 8))
