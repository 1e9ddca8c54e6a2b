"""Predictions on any image: the class map a checkpoint gives, at the image's size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_toy import tiny_config

from rccr.analysis.checkpoints import load_models
from rccr.analysis.prediction import MAX_PIXELS, load_image, predict_labels
from rccr.build import validation_set
from rccr.cli import main
from rccr.data.files import DataError
from rccr.evaluation import predict
from rccr.training import train


@pytest.fixture(scope="module")
def run_dir(toy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("predict") / "run"
    train(tiny_config(toy, "train.iterations=2"), out, progress=False)
    return out


def test_predict_labels__what_evaluation_scores(run_dir: Path, toy: Path) -> None:
    """On a val image the class map is the argmax evaluation computes for it."""
    models = load_models(run_dir)
    path = validation_set(models.config.data).pairs[0].image
    image = load_image(path)
    labels = predict_labels(models.student, image, models.config.data.val_size)
    assert labels.shape == image.shape[:2] and labels.dtype == torch.int64
    sample = validation_set(models.config.data)[0]
    with torch.no_grad():
        expected = predict(models.student, sample.image[None], sample.label.shape).argmax(1)[0]
    assert torch.equal(labels, expected)


def test_load_image__refuses_a_huge_image_from_its_header(tmp_path: Path) -> None:
    side = int(MAX_PIXELS**0.5) + 1
    Image.new("L", (side, side)).save(tmp_path / "huge.png")
    with pytest.raises(DataError, match=r"huge\.png: .* pixels; at most"):
        load_image(tmp_path / "huge.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"bad\.png"):
        load_image(tmp_path / "bad.png")


def test_cli_predict__one_picture_per_image_with_a_second_run(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = np.random.default_rng(0).integers(0, 255, (40, 70, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "street.jpg")
    args = ["predict", str(tmp_path / "street.jpg"), "--run", str(run_dir), "--checkpoint", "2",
            "--compare", str(run_dir), "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(args) == 0
    picture = np.asarray(Image.open(tmp_path / "out" / "street_prediction.png"))
    assert picture.shape[1] == 3 * 70 * 7 + 2 * 8  # three panels enlarged 7x, two gaps
    assert "street_prediction.png" in capsys.readouterr().out
    missing = ["predict", args[1], "--run", str(tmp_path / "nowhere"), "--out", str(tmp_path)]
    assert main(missing) == 2
    assert "nowhere" in capsys.readouterr().err


def test_decode_image__an_upload_as_rgb_with_its_size_checked_first() -> None:
    import io

    from rccr.analysis.prediction import decode_image

    image = np.random.default_rng(1).integers(0, 255, (6, 9, 3), dtype=np.uint8)
    data = io.BytesIO()
    Image.fromarray(image).convert("L").save(data, format="PNG")  # grey: converted to RGB
    decoded = decode_image(data.getvalue(), "grey.png")
    assert decoded.shape == (6, 9, 3) and decoded.dtype == np.uint8
    assert (decoded[..., 0] == decoded[..., 2]).all()
    side = int(MAX_PIXELS**0.5) + 1
    huge = io.BytesIO()
    Image.new("1", (side, side)).save(huge, format="PNG")
    with pytest.raises(DataError, match=rf"^big\.png: {side}x{side} pixels; at most"):
        decode_image(huge.getvalue(), "big.png")
    with pytest.raises(DataError, match=r"^junk\.jpg: cannot read image"):
        decode_image(b"\xff\xd8 not really a jpeg", "junk.jpg")
