"""The committed compressed baselines: each file is what its JSON record says (same bytes and
size as scored, made from the float file it names), stores integer weights, runs on integer
kernels, and passes the validation gate; and ``load_from_onnx`` recovers a framework model."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest

from evaluator.metrics import deflate_size
from evaluator.validation import validate
from reference_models import Tensor, manual_seed, no_grad
from reference_models.compress.make_baselines import load_from_onnx
from reference_models.compress.quantize import integer_kernel_count
from reference_models.export import export_onnx
from reference_models.recipes import cifar10_cnn
from tests.conftest import REPO_ROOT

BASELINES = REPO_ROOT / "reference_models" / "baselines"
RECORDS = sorted(p for p in BASELINES.glob("*_int8.json"))


@pytest.mark.parametrize("record_path", RECORDS, ids=[p.stem for p in RECORDS])
def test_compressed_baseline_matches_its_record(record_path):
    record = json.loads(record_path.read_text())
    model = record_path.with_suffix(".onnx").read_bytes()
    source = BASELINES / record["source"]["file"]
    assert hashlib.sha256(source.read_bytes()).hexdigest() == record["source"]["sha256"]
    assert record["scorecard"]["raw_bytes"] == len(model)
    assert record["scorecard"]["size_bytes"] == deflate_size(model)
    assert validate(model, record["task"]).ok
    assert integer_kernel_count(model) == record["integer_kernels"] != {}
    integer_bytes = sum(len(t.raw_data) for t in onnx.load_from_string(model).graph.initializer
                        if t.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8))
    assert integer_bytes > 0.5 * record["scorecard"]["size_bytes"]  # weights really are bytes


def test_load_from_onnx_recovers_the_framework_model(tmp_path):
    manual_seed(0)
    model = cifar10_cnn.build_model().eval()
    state = model.state_dict()
    for name, value in state.items():  # non-trivial batch-norm statistics
        if name.endswith("running_var"):
            value[...] = 2.0
    model.load_state_dict(state)
    x = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    export_onnx(model, x[:1], tmp_path / "m.onnx", task="cifar10")
    manual_seed(1)
    copy = load_from_onnx(cifar10_cnn.build_model(), tmp_path / "m.onnx")
    with no_grad():
        assert np.allclose(copy(Tensor(x)).data, model(Tensor(x)).data, atol=1e-5)


# The targets, read from the records (latency is measured in benchmarks, not asserted).
TARGETS = {"cifar10_cnn_int8": (-1.0, 3.5), "cifar10_cnn_pruned_int8": (-2.0, 8.0),
           "mnist_mlp_int8": (-1.0, 3.5)}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_compressed_baselines_meet_the_targets(name):
    record = json.loads((BASELINES / f"{name}.json").read_text())
    lowest_delta, smallest_ratio = TARGETS[name]
    assert record["compared_with_float"]["accuracy_delta_points"] >= lowest_delta
    float_size = record["float_scorecard"]["size_bytes"]
    assert float_size / record["scorecard"]["size_bytes"] >= smallest_ratio


@pytest.mark.integration
@pytest.mark.parametrize("name", ["cifar10_cnn_int8", "cifar10_cnn_pruned_int8"])
def test_compressed_baseline_scores_what_its_record_says(name, prepared_data_dir):
    from evaluator.scoring import LatencyProtocol, score

    record = json.loads((BASELINES / f"{name}.json").read_text())
    card = score(BASELINES / f"{name}.onnx", record["task"], data_dir=prepared_data_dir,
                 protocol=LatencyProtocol.quick())
    assert card["valid"], card["error"]
    assert card["accuracy"] == pytest.approx(record["scorecard"]["accuracy"], abs=1e-9)
    assert card["nonzero_params"] == record["scorecard"]["nonzero_params"]
