"""The baseline recipes: the architectures the issue describes, small enough to ship, exportable for
their task, and trainable end to end (on a few synthetic images here; real runs are the baselines)."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator.datasets import save_prepared
from evaluator.validation import validate
from reference_models import Tensor, export_onnx, manual_seed, nn
from reference_models.recipes import RECIPES, cifar10_cnn, get_recipe, mnist_mlp
from reference_models.recipes.common import example_input


def parameter_count(model: nn.Module) -> int:
    return sum(p.data.size for p in model.parameters())


def test_recipes_are_registered_by_name():
    assert {"mnist-mlp", "cifar10-cnn"} <= set(RECIPES)
    assert get_recipe("cifar10-cnn") is cifar10_cnn
    with pytest.raises(ValueError, match="mnist-mlp"):
        get_recipe("resnet")


def test_cifar10_cnn_is_the_160k_conv_bn_relu_network():
    model = cifar10_cnn.build_model()
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64, 128]
    assert sum(isinstance(m, nn.MaxPool2d) for m in model) == 3
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model) == 5
    assert sum(isinstance(m, nn.Linear) for m in model) == 1
    assert 155_000 < parameter_count(model) < 165_000
    out = model(Tensor(np.zeros((2, 3, 32, 32), dtype=np.float32)))
    assert out.shape == (2, 10)


def test_mnist_mlp_shape():
    model = mnist_mlp.build_model()
    assert parameter_count(model) < 250_000  # under 1 MB of float32
    assert model(Tensor(np.zeros((3, 1, 28, 28), dtype=np.float32))).shape == (3, 10)


def test_recipe_configs_follow_the_reference_recipe():
    config = cifar10_cnn.CONFIG
    assert config.nesterov and config.momentum == 0.9 and config.weight_decay == 5e-4
    assert config.label_smoothing == 0.1 and 128 <= config.batch_size <= 256
    assert config.replace(epochs=1).epochs == 1 and cifar10_cnn.CONFIG is config  # a copy


@pytest.mark.parametrize("recipe", [mnist_mlp, cifar10_cnn], ids=lambda r: r.NAME)
def test_recipes_export_small_valid_models_for_their_task(recipe, tmp_path):
    manual_seed(0)
    model = recipe.build_model().eval()
    path = tmp_path / "model.onnx"
    export_onnx(model, example_input(recipe.TASK), path, task=recipe.TASK)
    assert path.stat().st_size < 1_000_000
    report = validate(path, recipe.TASK)
    assert report.ok, report.summary()


def test_cifar10_recipe_trains_end_to_end_on_a_few_images(tmp_path):
    rng = np.random.default_rng(0)
    data_dir = tmp_path / "data"
    save_prepared(
        "cifar10", data_dir,
        train_inputs=rng.integers(0, 256, (96, 3, 32, 32), dtype=np.uint8),
        train_labels=rng.integers(0, 10, 96),
        test_inputs=rng.integers(0, 256, (20, 3, 32, 32), dtype=np.uint8),
        test_labels=rng.integers(0, 10, 20),
    )
    config = cifar10_cnn.CONFIG.replace(epochs=1, batch_size=32, validation_size=32)
    result = cifar10_cnn.train(config, data_dir=data_dir, out_dir=tmp_path / "out", progress=False)
    assert set(result.files) == {"checkpoint", "onnx", "record"}
    assert all(path.is_file() for path in result.files.values())
    assert len(result.history.epochs) == 1
    # 96 - 32 held out = 64 examples: two batches of 32
    assert result.history.last.val_accuracy is not None
    assert validate(result.files["onnx"], "cifar10").ok


def test_limit_takes_a_seeded_random_subset_not_the_first_class(tmp_path):
    # Prepared image sets are grouped by class (the CIFAR-10 JPEG copy is): the first N would be
    # one class, and a quick trial would learn nothing.
    from reference_models.recipes.common import TrainingConfig, image_loaders

    labels = np.repeat(np.arange(10), 60)
    save_prepared(
        "mnist", tmp_path,
        train_inputs=np.zeros((600, 1, 28, 28), dtype=np.uint8), train_labels=labels,
        test_inputs=np.zeros((10, 1, 28, 28), dtype=np.uint8), test_labels=np.arange(10),
    )
    config = TrainingConfig(epochs=1, batch_size=16, lr=0.1, limit=64, seed=3)
    train_loader, _ = image_loaders("mnist", config, tmp_path, None)
    seen = np.concatenate([batch[1] for batch in train_loader])
    assert len(seen) == 64 and len(np.unique(seen)) >= 8
    again = np.concatenate([batch[1] for batch in image_loaders("mnist", config, tmp_path, None)[0]])
    assert np.array_equal(np.sort(seen), np.sort(again))
