"""The validation gate against the model zoo: good models pass, every static bad model is refused by
the right rule naming the right node or tensor, runtime-only bad models pass (the sandbox's job)."""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import onnx
import psutil
import pytest
from onnx import numpy_helper

from evaluator import onnx_facts
from evaluator.runtime import make_session
from evaluator.tasks import get_task
from evaluator.validation import MAX_MODEL_BYTES, Problem, ValidationReport, validate
from tests.evaluator import model_zoo as zoo

# bad model -> (rule, a fragment of ``where`` naming the offending node or tensor)
EXPECTED_REJECTIONS: dict[str, tuple[str, str | None]] = {
    "external_data_traversal": ("external-data", "initializer 'b'"),
    "external_data_absolute": ("external-data", "initializer 'b'"),
    "external_data_beside_model": ("external-data", "initializer 'b'"),
    "external_data_in_constant": ("external-data", "node 'leaky_constant' (Constant)"),
    "external_data_in_subgraph": ("external-data", "node 'leaky_if' (If) > then_branch"),
    "external_data_in_function": ("external-data", "function 'local.AddBias'"),
    "external_data_sparse_initializer": ("external-data", "sparse initializer 'sparse_bias'"),
    "custom_domain_op": ("custom-domain", "node 'leak_node' (Leak)"),
    "microsoft_op_not_allowed": ("custom-domain", "node 'fused_gemm' (FusedGemm)"),
    "custom_op_in_subgraph": ("custom-domain", "then_branch > node 'hidden_leak' (Leak)"),
    "model_local_function": ("model-local-function", "function 'local.AddBias'"),
    "opset_too_new": ("opset", "opset_import"),
    "opset_too_old": ("opset", "opset_import"),
    "truncated_bytes": ("parse", None),
    "garbage_bytes": ("parse", None),
    "wrong_input_dtype": ("signature", "input 'image'"),
    "wrong_input_rank": ("signature", "input 'image'"),
    "wrong_input_dims": ("signature", "input 'image'"),
    "fixed_batch": ("signature", "input 'image'"),
    "wrong_output_shape": ("signature", "output 'scores'"),
    "wrong_output_dtype": ("signature", "output 'scores'"),
    "two_outputs": ("signature", "graph outputs"),
    "tinygpt_context_too_long": ("signature", "input 'ids'"),
    "tinygpt_wrong_vocabulary": ("signature", "output 'logits'"),
    "tinygpt_int32_input": ("signature", "input 'ids'"),
    "tinygpt_output_context_mismatch": ("signature", "output 'logits'"),
    "giant_constant_of_shape": ("memory", "node 'make_giant' (ConstantOfShape)"),
    "giant_expand": ("memory", "node 'expand_giant' (Expand)"),
    "huge_intermediate": ("memory", "value 'wide'"),
    "huge_declared_tensor": ("memory", "node 'phantom_const' (Constant)"),
    "giant_sparse_initializer": ("memory", "sparse initializer 'sparse_giant'"),
    # Sizes only shape inference can work out (from constant inputs):
    "giant_resize": ("memory", "value 'huge'"),
    "giant_pad": ("memory", "value 'huge'"),
    "giant_range": ("memory", "value 'huge'"),
    "giant_one_hot": ("memory", "value 'huge'"),
    "giant_conv_transpose": ("memory", "value 'huge'"),
    "giant_in_subgraph": ("memory", "node 'branch' (If) > then_branch > value 'huge'"),
}
GIANT_MODELS = sorted(name for name, (rule, _) in EXPECTED_REJECTIONS.items() if rule == "memory")


def _feed(task: str, batch: int = 3) -> np.ndarray:
    rng = np.random.default_rng(5)
    if task == "tinygpt":
        return rng.integers(0, len(get_task(task).vocabulary), (batch, 32)).astype(np.int64)
    channels, side = get_task(task).input_shape[1:3]
    return rng.random((batch, channels, side, side), dtype=np.float32)


# --- the corpus is complete and split explicitly ------------------------------------------------

def test_every_bad_model_is_either_statically_rejected_or_left_to_the_sandbox():
    assert set(EXPECTED_REJECTIONS) | zoo.RUNTIME_BAD_MODELS == set(zoo.BAD_MODELS)
    assert not set(EXPECTED_REJECTIONS) & zoo.RUNTIME_BAD_MODELS


# --- good models --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(zoo.GOOD_MODELS))
def test_good_model_passes_with_sensible_info(name):
    data = zoo.GOOD_MODELS[name]()
    task = zoo.GOOD_MODEL_TASKS[name]
    report = validate(data, task)
    assert report.ok, report.summary()
    assert report.problems == []
    assert report.summary().startswith(f"OK: the model is valid for task '{task}'")
    model = onnx.load_from_string(data)
    info = report.info
    assert info["raw_bytes"] == len(data)
    assert info["ir_version"] == model.ir_version
    assert info["opsets"][""] == zoo.OPSET
    assert info["node_count"] == len(model.graph.node)
    assert info["parameters"] == sum(
        numpy_helper.to_array(t).size for t in model.graph.initializer
    )
    [inp], [out] = info["inputs"], info["outputs"]
    assert inp["dtype"] == get_task(task).input_dtype
    assert out["dtype"] == "float32"
    assert len(out["shape"]) == len(get_task(task).output_shape)
    json.dumps(report.to_dict())


def test_tinygpt_context_length_is_reported_fixed_or_dynamic():
    assert validate(zoo.tinygpt_fixed_context(), "tinygpt").info["context_length"] == 32
    assert validate(zoo.tinygpt_dynamic_context(), "tinygpt").info["context_length"] is None


@pytest.mark.parametrize("name", sorted(zoo.GOOD_MODELS))
def test_checked_bytes_run_in_onnxruntime_like_the_original(name):
    task = zoo.GOOD_MODEL_TASKS[name]
    original = zoo.GOOD_MODELS[name]()
    report = validate(original, task)
    checked = make_session(report.model_bytes)
    reference = make_session(original)
    feed = _feed(task)
    got = checked.run(None, {checked.get_inputs()[0].name: feed})[0]
    want = reference.run(None, {reference.get_inputs()[0].name: feed})[0]
    assert got.shape == ((3, 32, 65) if task == "tinygpt" else (3, 10))
    np.testing.assert_array_equal(got, want)


def test_the_supported_range_ends_are_accepted_and_load_in_onnxruntime():
    for ir_version, opset in ((onnx_facts.MIN_IR_VERSION, onnx_facts.MIN_OPSET),
                              (onnx_facts.MAX_IR_VERSION, onnx_facts.MAX_OPSET)):
        model = zoo._mnist_linear_model(opset=opset, ir_version=ir_version)
        report = validate(model.SerializeToString(), "mnist")
        assert report.ok, report.summary()
        session = make_session(report.model_bytes)
        assert session.run(None, {"image": _feed("mnist")})[0].shape == (3, 10)


def test_one_past_each_end_of_the_range_is_refused():
    for ir_version, opset, rule in ((onnx_facts.MAX_IR_VERSION + 1, onnx_facts.MAX_OPSET, "ir-version"),
                                    (onnx_facts.MAX_IR_VERSION, onnx_facts.MAX_OPSET + 1, "opset"),
                                    (onnx_facts.MIN_IR_VERSION, onnx_facts.MIN_OPSET - 1, "opset")):
        model = zoo._mnist_linear_model(opset=opset, ir_version=ir_version)
        report = validate(model.SerializeToString(), "mnist")
        assert [p.rule for p in report.problems] == [rule]
        assert f"opset {onnx_facts.RECOMMENDED_OPSET}" in report.problems[0].fix


def test_models_from_onnxruntime_quantization_tools_pass(tmp_path):
    """Static INT8 (QOperator with com.microsoft QGemm, and QDQ) and dynamic INT8, made by the
    real onnxruntime.quantization tools, which also add unused opset imports."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    class Images(CalibrationDataReader):
        def __init__(self):
            self.batches = iter({"image": _feed("mnist", 1)} for _ in range(4))

        def get_next(self):
            return next(self.batches, None)

    source = tmp_path / "float.onnx"
    source.write_bytes(zoo.mnist_cnn())
    outputs = {}
    for fmt in (QuantFormat.QOperator, QuantFormat.QDQ):
        outputs[str(fmt)] = tmp_path / f"{fmt}.onnx"
        quantize_static(source, outputs[str(fmt)], Images(), quant_format=fmt,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    outputs["dynamic"] = tmp_path / "dynamic.onnx"
    quantize_dynamic(source, outputs["dynamic"])
    domains = set()
    for path in outputs.values():
        report = validate(path, "mnist")
        assert report.ok, report.summary()
        domains.update(report.info["domains_used"])
        make_session(report.model_bytes).run(None, {"image": _feed("mnist")})
    assert "com.microsoft" in domains  # the QOperator model really used the allow-list


# --- bad models rejected statically ---------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EXPECTED_REJECTIONS))
def test_bad_model_is_rejected_with_rule_and_offending_name(name):
    rule, where = EXPECTED_REJECTIONS[name]
    report = validate(zoo.BAD_MODELS[name](), zoo.BAD_MODEL_TASKS[name])
    assert not report.ok
    assert report.model_bytes is None
    matching = [p for p in report.problems if p.rule == rule]
    assert matching, report.summary()
    if where is not None:
        assert any(where in (p.where or "") for p in matching), report.summary()
    for problem in report.problems:
        assert problem.message and problem.fix
    summary = report.summary()
    assert summary.startswith(f"REJECTED for task '{zoo.BAD_MODEL_TASKS[name]}'")
    assert f"[{rule}]" in summary
    assert json.loads(json.dumps(report.to_dict()))["problems"][0]["rule"] == report.problems[0].rule


def test_messages_say_what_is_wrong_in_words():
    traversal = validate(zoo.external_data_traversal(), "mnist").problems[0]
    assert "'../labels.bin'" in traversal.message and "save_as_external_data=False" in traversal.fix
    giant = validate(zoo.giant_constant_of_shape(), "mnist").problems[0]
    assert "50.0 GiB" in giant.message and "'giant'" in giant.message
    batch = validate(zoo.fixed_batch(), "mnist").problems[0]
    assert "batch dimension is fixed to 1" in batch.message and "dynamic" in batch.fix
    dims = validate(zoo.wrong_input_dims(), "mnist").problems[0]
    assert "dimension 2 is 32, not 28" in dims.message and "float32[N, 1, 28, 28]" in dims.message
    vocab = validate(zoo.tinygpt_wrong_vocabulary(), "tinygpt").problems[0]
    assert "not 65" in vocab.message


def test_external_data_is_refused_even_when_the_named_file_exists(tmp_path, monkeypatch):
    """Planted beside the model / in the working directory, the file would be read by onnxruntime."""
    (tmp_path / "labels.bin").write_bytes(np.arange(10, dtype=np.float32).tobytes())
    monkeypatch.chdir(tmp_path)
    model_path = tmp_path / "model.onnx"
    model_path.write_bytes(zoo.external_data_beside_model())
    for source in (model_path, model_path.read_bytes()):
        report = validate(source, "mnist")
        assert [p.rule for p in report.problems] == ["external-data"]


def test_a_model_calling_a_com_microsoft_op_outside_the_list_names_the_list():
    problem = validate(zoo.microsoft_op_not_allowed(), "mnist").problems[0]
    assert "QGemm" in problem.message and "FusedGemm" in problem.message


def test_com_microsoft_ops_need_the_version_onnxruntime_has():
    model = onnx.load_from_string(zoo.mnist_qgemm_int8())
    next(e for e in model.opset_import if e.domain == "com.microsoft").version = 2
    report = validate(model.SerializeToString(), "mnist")
    assert [p.rule for p in report.problems] == ["opset"]
    assert "com.microsoft version 2" in report.problems[0].message


def test_an_onnxruntime_ort_file_is_refused(tmp_path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.optimized_model_filepath = str(tmp_path / "model.ort")
    options.add_session_config_entry("session.save_model_format", "ORT")
    ort.InferenceSession(zoo.mnist_cnn(), options, providers=["CPUExecutionProvider"])
    report = validate(tmp_path / "model.ort", "mnist")
    assert [p.rule for p in report.problems] == ["parse"]
    assert ".ort" in report.problems[0].message


def test_unknown_protobuf_fields_are_dropped_from_the_checked_bytes():
    data = zoo.mnist_linear()
    # Field 999, wire type 2 (length-delimited), 5 bytes: unknown to ONNX, kept by protobuf parsing.
    smuggled = data + bytes([0xBA, 0x3E, 5]) + b"extra"
    report = validate(smuggled, "mnist")
    assert report.ok, report.summary()
    assert b"extra" not in report.model_bytes
    assert report.model_bytes == onnx.load_from_string(data).SerializeToString()


def test_a_hostile_model_cannot_flood_the_report():
    """Names are the model's own strings: a report stays short and printable whatever they are."""
    model = zoo._mnist_linear_model()
    for index in range(40):
        model.graph.node.append(onnx.helper.make_node(
            "Leak", [], [f"leak{index}"], domain="evil.ops", name=f"n{index}\n" + "x" * 20_000))
    model.opset_import.append(onnx.helper.make_opsetid("evil.ops", 1))
    report = validate(model.SerializeToString(), "mnist")
    rules = [p.rule for p in report.problems]
    assert rules == ["custom-domain"] * 11  # ten shown, one counting the other thirty
    assert "30 more" in report.problems[-1].message
    assert all(len(p.where or "") <= 300 and len(p.message) <= 1000 for p in report.problems)
    assert "\n" not in report.problems[0].where
    assert len(report.summary()) < 30_000


# --- size cap and file handling -----------------------------------------------------------------

def test_a_file_over_the_size_cap_is_refused_before_parsing(tmp_path):
    data = zoo.mnist_cnn()
    assert validate(data, "mnist", max_bytes=len(data)).ok
    for source in (data, _written(tmp_path, data)):
        report = validate(source, "mnist", max_bytes=len(data) - 1)
        assert [p.rule for p in report.problems] == ["size"]
    garbage = zoo.garbage_bytes()  # would be a parse error if it were parsed
    assert [p.rule for p in validate(garbage, "mnist", max_bytes=100).problems] == ["size"]
    assert MAX_MODEL_BYTES == onnx_facts.MAX_MODEL_BYTES >= 10 * 2**20


def _written(tmp_path, data: bytes):
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    return path


def test_paths_as_str_and_pathlike_are_read(tmp_path):
    path = _written(tmp_path, zoo.mnist_linear())
    assert validate(path, "mnist").ok
    assert validate(str(path), "mnist").ok


@pytest.mark.parametrize("kind", ["missing", "directory", "device"])
def test_a_path_that_is_not_a_model_file_is_refused(tmp_path, kind):
    path = {"missing": tmp_path / "nope.onnx", "directory": tmp_path, "device": "/dev/zero"}[kind]
    report = validate(path, "mnist")
    assert [p.rule for p in report.problems] == ["file"]


def test_empty_bytes_and_bytes_without_a_graph_are_parse_errors():
    assert [p.rule for p in validate(b"", "mnist").problems] == ["parse"]
    no_graph = onnx.ModelProto(ir_version=10).SerializeToString()
    assert [p.rule for p in validate(no_graph, "mnist").problems] == ["parse"]


def test_unknown_task_is_a_value_error():
    with pytest.raises(ValueError, match="unknown task"):
        validate(zoo.mnist_linear(), "imagenet")


def test_weights_listed_as_graph_inputs_do_not_count_as_inputs():
    """Old exporters (keep_initializers_as_inputs) list every weight among the graph inputs."""
    model = zoo._mnist_linear_model()
    for tensor in model.graph.initializer:
        model.graph.input.append(onnx.helper.make_tensor_value_info(
            tensor.name, tensor.data_type, list(tensor.dims)))
    report = validate(model.SerializeToString(), "mnist")
    assert report.ok, report.summary()
    assert [value["name"] for value in report.info["inputs"]] == ["image"]
    session = make_session(report.model_bytes)
    assert session.run(None, {"image": _feed("mnist")})[0].shape == (3, 10)


def test_a_model_for_another_task_is_refused_by_signature():
    report = validate(zoo.cifar10_cnn(), "mnist")
    assert [p.rule for p in report.problems] == ["signature"]
    assert validate(zoo.mnist_linear(), "tinygpt").problems[0].rule == "signature"


# --- memory cap ---------------------------------------------------------------------------------

def test_memory_cap_is_a_parameter():
    assert validate(zoo.huge_intermediate(), "mnist", memory_cap_bytes=2 * 2**30).ok
    small = validate(zoo.mnist_linear(), "mnist", memory_cap_bytes=1000)
    assert {p.rule for p in small.problems} == {"memory"}
    assert any("'W'" in p.message for p in small.problems)  # the 784x10 weights, 31 KB


def test_giant_models_are_refused_fast_without_allocating():
    process = psutil.Process(os.getpid())
    before = process.memory_info().rss
    started = time.perf_counter()
    for name in GIANT_MODELS:
        assert validate(zoo.BAD_MODELS[name](), "mnist").problems[0].rule == "memory"
    elapsed = time.perf_counter() - started
    grown = process.memory_info().rss - before
    # The tensors named are 1.2 GiB to 4 TiB; building any of them would blow both bounds.
    assert grown < 200 * 2**20, f"RSS grew by {grown / 2**20:.0f} MiB"
    assert elapsed < 20, f"took {elapsed:.1f} s"


def test_runtime_bad_models_pass_validation_for_the_sandbox_to_catch():
    """Valid ONNX with a correct signature: only running them shows the problem. The locked-down
    scoring child must fail them (hard kill, NaN check, output-shape check)."""
    for name in sorted(zoo.RUNTIME_BAD_MODELS):
        report = validate(zoo.BAD_MODELS[name](), zoo.BAD_MODEL_TASKS[name])
        assert report.ok, f"{name}: {report.summary()}"


def test_runtime_wrong_shape_really_is_wrong_only_at_batch_above_one():
    report = validate(zoo.runtime_wrong_shape(), "mnist")
    session = make_session(report.model_bytes)
    assert session.run(None, {"image": _feed("mnist", 1)})[0].shape == (1, 10)
    assert session.run(None, {"image": _feed("mnist", 3)})[0].shape == (9, 10)


def test_nan_model_really_returns_nan():
    session = make_session(validate(zoo.nan_outputs(), "mnist").model_bytes)
    assert np.isnan(session.run(None, {"image": _feed("mnist")})[0]).all()


# --- report -------------------------------------------------------------------------------------

def test_report_lines_and_dict_shape():
    problem = Problem("opset", "too new", "opset_import", "export with opset 17")
    report = ValidationReport(False, "mnist", [problem], {"ir_version": 14})
    assert report.summary() == (
        "REJECTED for task 'mnist': 1 problem.\n"
        "  - [opset] at opset_import: too new\n"
        "    fix: export with opset 17"
    )
    assert report.to_dict() == {
        "ok": False, "task": "mnist",
        "problems": [{"rule": "opset", "message": "too new", "where": "opset_import",
                      "fix": "export with opset 17"}],
        "info": {"ir_version": 14},
    }


def test_parameter_count_includes_sparse_initializers():
    model = zoo._mnist_linear_model()
    values = numpy_helper.from_array(np.ones(2, np.float32), "sparse")
    sparse = onnx.helper.make_sparse_tensor(
        values, numpy_helper.from_array(np.array([0, 3], np.int64)), [10])
    model.graph.sparse_initializer.append(sparse)
    info = validate(model.SerializeToString(), "mnist").info
    assert info["parameters"] == 784 * 10 + 10 + math.prod([10])


def test_a_function_operator_onnx_cannot_infer_is_explained_in_words():
    # MeanVarianceNormalization is defined by a function body; onnx's inference fails inside it
    # and names nodes (Constant) the student's graph does not have.
    from onnx import TensorProto, helper

    nodes = [helper.make_node("MeanVarianceNormalization", ["input"], ["m"]),
             helper.make_node("Flatten", ["m"], ["f"]),
             helper.make_node("MatMul", ["f", "w"], ["output"])]
    graph = helper.make_graph(
        nodes, "mvn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(np.zeros((784, 10), np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    report = validate(model.SerializeToString(), "mnist")
    assert not report.ok
    problem = next(p for p in report.problems if p.rule == "shape-inference")
    assert "inside MeanVarianceNormalization" in problem.message
    assert "basic operators" in problem.fix and "ReduceMean" in problem.fix
    assert not problem.message.startswith("the model's shapes")
