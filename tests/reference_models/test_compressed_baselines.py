"""The committed compressed baselines: each file is what its JSON record says (same bytes and
size as scored, made from the float file it names), stores integer weights (7 bits: the portable
scheme), runs on integer kernels, passes the validation gate, and stays within 0.3 points of its
float model; and ``load_from_onnx`` recovers a framework model."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

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


@pytest.mark.parametrize("record_path", RECORDS, ids=[p.stem for p in RECORDS])
def test_int8_baseline_is_portable_and_within_0_3_points_of_its_float_model(record_path):
    """The issue's done-criterion, from the records (re-measured by the evaluator below and, for
    the AVX2 kernels, in test_int8_portability.py). The pruned model's float model is the pruned,
    fine-tuned float model it was quantized from; its drop against the unpruned float stays near
    the -0.92 points it was before the rebuild."""
    record = json.loads(record_path.read_text())
    assert record["method"]["scheme"] == "u8s7"
    assert {"cpu_features", "cpu_model", "load_average_1_5_15"} <= set(record["machine"])
    weights = [numpy_helper.to_array(t) for t in onnx.load(str(record_path.with_suffix(".onnx")))
               .graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) >= 2]
    assert weights and max(int(np.abs(w).max()) for w in weights) <= 63  # 7-bit weights
    accuracy = record["scorecard"]["accuracy"]
    own_float = record.get("pruned_float_scorecard", record["float_scorecard"])["accuracy"]
    assert abs(accuracy - own_float) <= 0.003, (accuracy, own_float)
    if "pruned_float_scorecard" in record:
        assert record["compared_with_float"]["accuracy_delta_points"] >= -1.5


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


# How far this machine's score may be from the record's (made on AVX-512 VNNI). The 7-bit
# baselines' optimized outputs match their exact semantics to 0.017 logits on VNNI (all 10,000
# images, same predictions) and to 0.006 on emulated AVX2 (same predictions on every sampled
# image), so only an image whose two best logits tie within that can change: 5 of 10,000 is a
# generous bound. The old 8-bit weights scored 135 images lower on AMD Zen 3 (74.40 vs 75.75%).
SCORE_TOLERANCE = 0.0005


@pytest.mark.integration
@pytest.mark.parametrize("name", ["cifar10_cnn_int8", "cifar10_cnn_pruned_int8",
                                  "mnist_mlp_int8"])
def test_compressed_baseline_scores_what_its_record_says(name, prepared_data_dir):
    from evaluator.scoring import LatencyProtocol, score

    record = json.loads((BASELINES / f"{name}.json").read_text())
    card = score(BASELINES / f"{name}.onnx", record["task"], data_dir=prepared_data_dir,
                 protocol=LatencyProtocol.quick())
    assert card["valid"], card["error"]
    assert card["accuracy"] == pytest.approx(record["scorecard"]["accuracy"],
                                             abs=SCORE_TOLERANCE)
    assert card["nonzero_params"] == record["scorecard"]["nonzero_params"]
