"""The BERT-style encoder: pooling, tagging head, ONNX export, and the Tiny Shakespeare
play-classifier recipe scaled down on the real text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import reference_models as rm
from reference_models.bert import (
    AttentionPooling,
    EncoderClassifier,
    EncoderConfig,
    TokenClassifier,
)
from reference_models.export import export_onnx
from reference_models.nn import functional as F
from reference_models.recipes import encoder_classifier as recipe
from tests.reference_models.gradcheck import check_gradients

IDS = np.array([[2, 7, 8, 9, 3, 0, 0], [2, 5, 3, 0, 0, 0, 0]], dtype=np.int64)


def config(**changes) -> EncoderConfig:
    base = dict(vocab_size=12, num_classes=3, max_length=8, d_model=16, nhead=2, num_layers=2,
                dim_feedforward=32)
    return EncoderConfig(**{**base, **changes})


@pytest.mark.parametrize("pooling", ["cls", "mean", "attention"])
def test_padding_never_changes_a_prediction(pooling: str) -> None:
    rm.manual_seed(0)
    model = EncoderClassifier(config(pooling=pooling)).eval()
    short = model(IDS[:, :5]).data
    padded = model(IDS).data
    assert padded.shape == (2, 3)
    np.testing.assert_allclose(padded, short, rtol=1e-5, atol=1e-5)


def test_attention_pooling_is_a_softmax_over_real_tokens_with_exact_gradients() -> None:
    rm.manual_seed(1)
    pool = AttentionPooling(4).double()
    padding = rm.Tensor(np.array([[False, False, True], [False, True, True]]))
    features = np.random.default_rng(0).standard_normal((2, 3, 4))
    out = pool(rm.Tensor(features, dtype=np.float64), padding).data
    np.testing.assert_allclose(out[1], features[1, 0], rtol=1e-10)  # one real token: itself
    check_gradients(lambda x: pool(x, padding), features)


def test_token_classifier_labels_every_position_and_trains() -> None:
    rm.manual_seed(2)
    model = TokenClassifier(config(num_classes=4))
    labels = np.where(IDS == 0, -100, IDS % 4)  # padding ignored by the loss
    optimizer = rm.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(IDS).reshape(-1, 4), labels.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.data))
    assert model(IDS).shape == (2, 7, 4) and losses[-1] < 0.5 * losses[0]


def test_an_encoder_classifier_exports_with_its_padding_mask(tmp_path) -> None:
    import onnxruntime as ort

    rm.manual_seed(3)
    model = EncoderClassifier(config(pooling="attention"))
    export_onnx(model, IDS, tmp_path / "bert.onnx")
    session = ort.InferenceSession(str(tmp_path / "bert.onnx"), providers=["CPUExecutionProvider"])
    other = np.array([[2, 4, 3, 0, 0, 0, 0]] * 3, dtype=np.int64)
    with rm.no_grad():
        expected = model.eval()(other).data
    np.testing.assert_allclose(session.run(None, {"input": other})[0], expected, rtol=1e-4,
                               atol=1e-4)


def test_too_long_inputs_are_refused_in_words() -> None:
    with pytest.raises(ValueError, match="exceed max_length"):
        EncoderClassifier(config())(np.ones((1, 9), dtype=np.int64))
    with pytest.raises(ValueError, match="pooling"):
        EncoderClassifier(config(pooling="max"))


def test_speeches_are_parsed_and_labelled_by_play() -> None:
    text = ("ROMEO:\nBut soft, what light\nthrough yonder window breaks?\n\nMENENIUS:\nWhat work's,"
            " my countrymen?\n\nFirst Citizen:\nBefore we proceed\n\nBRUTUS:\nHe's a lamb.\n")
    assert recipe.speeches(text)[0] == ("ROMEO", "But soft, what light through yonder window "
                                                 "breaks?")
    train, test, names = recipe.make_dataset("\n".join([text] * 5))
    labels = sorted({label for _, label in train + test})
    assert [names[i] for i in labels] == ["Coriolanus", "Romeo and Juliet"]
    assert len(train) + len(test) == 15  # First Citizen belongs to no listed play: dropped


@pytest.fixture(scope="module")
def tinygpt_data_dir(shared_datasets: Path, tmp_path_factory) -> Path:
    from tests.conftest import _prepare_datasets

    return _prepare_datasets(shared_datasets, tmp_path_factory.mktemp("bert-data"), ("tinygpt",))


def test_the_play_classifier_recipe_runs_scaled_down_on_tiny_shakespeare(
        tinygpt_data_dir: Path) -> None:
    result = recipe.train(recipe.CONFIG.replace(steps=25, vocab_size=400,
                                                d_model=32), tinygpt_data_dir, progress=False)
    assert result.speakers == list(recipe.PLAYS)
    assert result.train_examples > 4 * result.test_examples > 0
    assert 0.0 <= result.test_accuracy <= 1.0 and 0.0 < result.majority_accuracy < 1.0
    assert np.isfinite(result.final_loss) and result.final_loss < np.log(5) + 0.3
