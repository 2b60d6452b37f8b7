"""Small ONNX models built in code for the evaluator's tests: good ones per task and a bad-model corpus.

Every builder is a plain function returning the model's serialized BYTES. They are deterministic
(fixed seeds) and tiny. ``GOOD_MODELS`` and ``BAD_MODELS`` map a short name to a builder;
``RUNTIME_BAD_MODELS`` names the bad models that no static check can catch (they are valid ONNX
with a correct signature) and that the locked-down scoring child must fail cleanly.

Every model stamps ``ir_version`` and the ai.onnx opset explicitly: ``onnx.helper.make_model``
defaults to IR 14 / opset 28, which onnxruntime 1.31 refuses.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 10
OPSET = 17
BATCH = "N"
VOCAB = 65

Builder = Callable[[], bytes]


# --- helpers -----------------------------------------------------------------------------------

def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _weights(name: str, shape: tuple[int, ...], seed: int, scale: float = 0.1) -> TensorProto:
    array = (_rng(seed).standard_normal(shape) * scale).astype(np.float32)
    return numpy_helper.from_array(array, name)


def _const(name: str, values, dtype=np.int64) -> TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: list[TensorProto] = (),
    *,
    opset: int = OPSET,
    ir_version: int = IR_VERSION,
    extra_opsets: dict[str, int] | None = None,
    name: str = "zoo",
    **graph_kwargs,
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, list(initializers), **graph_kwargs)
    imports = [helper.make_opsetid("", opset)]
    imports += [helper.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()]
    model = helper.make_model(graph, opset_imports=imports, producer_name="model_zoo")
    model.ir_version = ir_version
    return model


def _image_input(channels: int, side: int, dtype=TensorProto.FLOAT, batch=BATCH):
    return helper.make_tensor_value_info("image", dtype, [batch, channels, side, side])


def _scores_output(classes: int = 10, batch=BATCH):
    return helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, classes])


def _linear_parts(features: int, seed: int = 1, out: str = "scores"):
    """Flatten -> Gemm(features -> 10): nodes and initializers reading the graph input ``image``."""
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "b"], [out], transB=1),
    ]
    inits = [_weights("W", (10, features), seed, 0.05), _weights("b", (10,), seed + 1)]
    return nodes, inits


def _mnist_linear_model(**kwargs) -> onnx.ModelProto:
    nodes, inits = _linear_parts(784)
    return _model(nodes, [_image_input(1, 28)], [_scores_output()], inits, **kwargs)


def _bytes(model: onnx.ModelProto) -> bytes:
    return model.SerializeToString()


# --- good models -------------------------------------------------------------------------------

def mnist_linear() -> bytes:
    """MNIST: Flatten -> Gemm(784 -> 10)."""
    return _bytes(_mnist_linear_model())


def _tiny_cnn(channels: int, side: int, seed: int) -> onnx.ModelProto:
    """Conv(3x3, 4 filters, stride 2) -> Relu -> MaxPool(2) -> Flatten -> Gemm(-> 10)."""
    conv_side = (side - 3) // 2 + 1
    pooled = conv_side // 2
    features = 4 * pooled * pooled
    nodes = [
        helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["conv"], strides=[2, 2]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("MaxPool", ["relu"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["scores"], transB=1),
    ]
    inits = [
        _weights("conv_w", (4, channels, 3, 3), seed, 0.3),
        _weights("conv_b", (4,), seed + 1),
        _weights("fc_w", (10, features), seed + 2, 0.1),
        _weights("fc_b", (10,), seed + 3),
    ]
    return _model(nodes, [_image_input(channels, side)], [_scores_output()], inits)


def mnist_cnn() -> bytes:
    return _bytes(_tiny_cnn(1, 28, seed=10))


def cifar10_cnn() -> bytes:
    return _bytes(_tiny_cnn(3, 32, seed=20))


def _tinygpt_model(
    context: int | str,
    *,
    input_dtype=TensorProto.INT64,
    vocab_out: int = VOCAB,
    out_context: int | str | None = None,
    dim: int = 16,
) -> onnx.ModelProto:
    """Embedding (Gather) -> MatMul(dim -> vocab) -> Add bias: logits[N, T, V]."""
    nodes = [
        helper.make_node("Gather", ["embedding", "ids"], ["hidden"], axis=0),
        helper.make_node("MatMul", ["hidden", "head_w"], ["projected"]),
        helper.make_node("Add", ["projected", "head_b"], ["logits"]),
    ]
    inits = [
        _weights("embedding", (VOCAB, dim), 30, 1.0),
        _weights("head_w", (dim, vocab_out), 31, 0.3),
        _weights("head_b", (vocab_out,), 32),
    ]
    out_t = context if out_context is None else out_context
    inputs = [helper.make_tensor_value_info("ids", input_dtype, [BATCH, context])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [BATCH, out_t, vocab_out])]
    return _model(nodes, inputs, outputs, inits)


def tinygpt_fixed_context() -> bytes:
    """tinygpt with a fixed context T = 32."""
    return _bytes(_tinygpt_model(32))


def tinygpt_dynamic_context() -> bytes:
    """tinygpt whose context T is a symbolic dimension."""
    return _bytes(_tinygpt_model("T"))


def mnist_unused_opset_imports() -> bytes:
    """Quantization tools add opset imports nobody uses; only the domains nodes use count."""
    return _bytes(_mnist_linear_model(extra_opsets={"com.microsoft": 1, "ai.onnx.ml": 3}))


def mnist_qdq_int8() -> bytes:
    """Static INT8 in QDQ form: only standard ai.onnx QuantizeLinear/DequantizeLinear ops."""
    w = (_rng(40).standard_normal((10, 784)) * 0.05).astype(np.float32)
    w_scale = np.float32(np.abs(w).max() / 127)
    w_q = np.clip(np.round(w / w_scale), -127, 127).astype(np.int8)
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], axis=1),
        helper.make_node("QuantizeLinear", ["flat", "x_scale", "x_zero"], ["flat_q"]),
        helper.make_node("DequantizeLinear", ["flat_q", "x_scale", "x_zero"], ["flat_dq"]),
        helper.make_node("DequantizeLinear", ["W_q", "w_scale", "w_zero"], ["W"]),
        helper.make_node("Gemm", ["flat_dq", "W", "b"], ["scores"], transB=1),
    ]
    inits = [
        numpy_helper.from_array(np.array(1 / 255, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(0, np.uint8), "x_zero"),
        numpy_helper.from_array(w_q, "W_q"),
        numpy_helper.from_array(np.array(w_scale, np.float32), "w_scale"),
        numpy_helper.from_array(np.array(0, np.int8), "w_zero"),
        _weights("b", (10,), 41),
    ]
    return _bytes(_model(nodes, [_image_input(1, 28)], [_scores_output()], inits))


def mnist_qgemm_int8() -> bytes:
    """Static INT8 in QOperator form: a ``com.microsoft`` QGemm (on the validation allow-list)."""
    w = (_rng(50).standard_normal((10, 784)) * 0.05).astype(np.float32)
    w_scale = np.float32(np.abs(w).max() / 127)
    w_q = np.clip(np.round(w / w_scale), -127, 127).astype(np.int8)
    y_scale = np.float32(0.05)
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], axis=1),
        helper.make_node("QuantizeLinear", ["flat", "x_scale", "x_zero"], ["flat_q"]),
        helper.make_node(
            "QGemm",
            ["flat_q", "x_scale", "x_zero", "W_q", "w_scale", "w_zero", "b_q", "y_scale", "y_zero"],
            ["scores_q"],
            domain="com.microsoft",
            transB=1,
        ),
        helper.make_node("DequantizeLinear", ["scores_q", "y_scale", "y_zero"], ["scores"]),
    ]
    b = (_rng(51).standard_normal(10) * 0.1).astype(np.float32)
    inits = [
        numpy_helper.from_array(np.array(1 / 255, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(0, np.uint8), "x_zero"),
        numpy_helper.from_array(w_q, "W_q"),
        numpy_helper.from_array(np.array(w_scale, np.float32), "w_scale"),
        numpy_helper.from_array(np.array(0, np.int8), "w_zero"),
        numpy_helper.from_array(np.round(b / (w_scale / 255)).astype(np.int32), "b_q"),
        numpy_helper.from_array(np.array(y_scale, np.float32), "y_scale"),
        numpy_helper.from_array(np.array(128, np.uint8), "y_zero"),
    ]
    model = _model(
        nodes, [_image_input(1, 28)], [_scores_output()], inits, extra_opsets={"com.microsoft": 1}
    )
    return _bytes(model)


GOOD_MODELS: dict[str, Builder] = {
    "mnist_linear": mnist_linear,
    "mnist_cnn": mnist_cnn,
    "cifar10_cnn": cifar10_cnn,
    "tinygpt_fixed_context": tinygpt_fixed_context,
    "tinygpt_dynamic_context": tinygpt_dynamic_context,
    "mnist_unused_opset_imports": mnist_unused_opset_imports,
    "mnist_qdq_int8": mnist_qdq_int8,
    "mnist_qgemm_int8": mnist_qgemm_int8,
}

# The task each good model is built for.
GOOD_MODEL_TASKS: dict[str, str] = {
    name: ("tinygpt" if name.startswith("tinygpt") else name.split("_")[0]) for name in GOOD_MODELS
}


# --- bad models: external data -----------------------------------------------------------------

def _mark_external(tensor: TensorProto, location: str, length: int | None = None) -> None:
    """Point ``tensor`` at an external file instead of storing its bytes inline."""
    tensor.ClearField("float_data")
    tensor.ClearField("int64_data")
    tensor.ClearField("int32_data")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": "0"}
    if length is not None:
        entries["length"] = str(length)
    for key, value in entries.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value


def _external_initializer_model(location: str) -> bytes:
    model = _mnist_linear_model()
    bias = next(t for t in model.graph.initializer if t.name == "b")
    _mark_external(bias, location, length=40)
    return _bytes(model)


def external_data_traversal() -> bytes:
    """The bias initializer is read from ``../labels.bin``."""
    return _external_initializer_model("../labels.bin")


def external_data_absolute() -> bytes:
    """The bias initializer is read from ``/etc/passwd``."""
    return _external_initializer_model("/etc/passwd")


def external_data_beside_model() -> bytes:
    """The bias initializer is read from ``labels.bin`` beside the model / in the working dir."""
    return _external_initializer_model("labels.bin")


def external_data_in_constant() -> bytes:
    """A Constant node's ``value`` tensor is external data."""
    model = _mnist_linear_model()
    tensor = _weights("leak", (10,), 60)
    _mark_external(tensor, "labels.bin", length=40)
    graph = model.graph
    graph.node.insert(0, helper.make_node("Constant", [], ["leak"], name="leaky_constant",
                                          value=tensor))
    graph.node[-1].output[0] = "pre_scores"
    graph.node.append(helper.make_node("Add", ["pre_scores", "leak"], ["scores"]))
    return _bytes(model)


def external_data_in_subgraph() -> bytes:
    """An If node's branch holds an initializer stored as external data."""
    leak = _weights("leak", (10,), 61)
    _mark_external(leak, "labels.bin", length=40)
    then_graph = helper.make_graph(
        [helper.make_node("Identity", ["leak"], ["branch_out"])], "then_branch", [],
        [helper.make_tensor_value_info("branch_out", TensorProto.FLOAT, [10])], [leak],
    )
    else_graph = helper.make_graph(
        [helper.make_node("Identity", ["zeros"], ["branch_out2"])], "else_branch", [],
        [helper.make_tensor_value_info("branch_out2", TensorProto.FLOAT, [10])],
        [numpy_helper.from_array(np.zeros(10, np.float32), "zeros")],
    )
    nodes, inits = _linear_parts(784, out="pre_scores")
    nodes += [
        helper.make_node("If", ["always"], ["offset"], name="leaky_if",
                         then_branch=then_graph, else_branch=else_graph),
        helper.make_node("Add", ["pre_scores", "offset"], ["scores"]),
    ]
    inits.append(numpy_helper.from_array(np.array(True), "always"))
    return _bytes(_model(nodes, [_image_input(1, 28)], [_scores_output()], inits))


def _function_model(body_constant: TensorProto | None = None) -> onnx.ModelProto:
    """Scores = local.AddBias(Gemm(...)): a model-local function called from the graph."""
    body = []
    if body_constant is not None:
        body.append(helper.make_node("Constant", [], ["bias"], value=body_constant))
    else:
        body.append(helper.make_node("Constant", [], ["bias"],
                                     value=_weights("bias_value", (10,), 62)))
    body.append(helper.make_node("Add", ["x", "bias"], ["y"]))
    function = helper.make_function(
        "local", "AddBias", ["x"], ["y"], body, [helper.make_opsetid("", OPSET)]
    )
    nodes, inits = _linear_parts(784, out="pre_scores")
    nodes.append(helper.make_node("AddBias", ["pre_scores"], ["scores"], domain="local",
                                  name="call_add_bias"))
    model = _model(nodes, [_image_input(1, 28)], [_scores_output()], inits,
                   extra_opsets={"local": 1})
    model.functions.append(function)
    return model


def model_local_function() -> bytes:
    """A model-local function (``local.AddBias``) defined in the model and called by a node."""
    return _bytes(_function_model())


def external_data_in_function() -> bytes:
    """A model-local function's body holds a Constant stored as external data."""
    leak = _weights("leak", (10,), 63)
    _mark_external(leak, "labels.bin", length=40)
    return _bytes(_function_model(leak))


def external_data_sparse_initializer() -> bytes:
    """A sparse_initializer whose values are external data (onnx's own helper does not walk these)."""
    values = _weights("sparse_bias_values", (2,), 64)
    _mark_external(values, "labels.bin", length=8)
    indices = _const("sparse_bias_indices", [0, 3])
    sparse = helper.make_sparse_tensor(values, indices, [10])
    sparse.values.name = "sparse_bias"
    nodes, inits = _linear_parts(784, out="pre_scores")
    nodes.append(helper.make_node("Add", ["pre_scores", "sparse_bias"], ["scores"]))
    model = _model(nodes, [_image_input(1, 28)], [_scores_output()], inits,
                   sparse_initializer=[sparse])
    return _bytes(model)


# --- bad models: operators, functions, versions ------------------------------------------------

def custom_domain_op() -> bytes:
    """A node from a custom domain (``evil.ops.Leak``) that onnx's checker lets through."""
    nodes, inits = _linear_parts(784, out="pre_scores")
    nodes.append(helper.make_node("Leak", ["pre_scores"], ["scores"], domain="evil.ops",
                                  name="leak_node"))
    return _bytes(_model(nodes, [_image_input(1, 28)], [_scores_output()], inits,
                         extra_opsets={"evil.ops": 1}))


def microsoft_op_not_allowed() -> bytes:
    """A ``com.microsoft`` op outside the quantization allow-list (FusedGemm)."""
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], axis=1),
        helper.make_node("FusedGemm", ["flat", "W", "b"], ["scores"], domain="com.microsoft",
                         name="fused_gemm", transB=1, activation="Relu"),
    ]
    inits = [_weights("W", (10, 784), 1, 0.05), _weights("b", (10,), 2)]
    return _bytes(_model(nodes, [_image_input(1, 28)], [_scores_output()], inits,
                         extra_opsets={"com.microsoft": 1}))


def custom_op_in_subgraph() -> bytes:
    """A custom-domain node hidden in an If branch."""
    then_graph = helper.make_graph(
        [helper.make_node("Leak", ["pre_scores"], ["branch_out"], domain="evil.ops",
                          name="hidden_leak")],
        "then_branch", [], [helper.make_tensor_value_info("branch_out", TensorProto.FLOAT,
                                                         [BATCH, 10])],
    )
    else_graph = helper.make_graph(
        [helper.make_node("Identity", ["pre_scores"], ["branch_out2"])], "else_branch", [],
        [helper.make_tensor_value_info("branch_out2", TensorProto.FLOAT, [BATCH, 10])],
    )
    nodes, inits = _linear_parts(784, out="pre_scores")
    nodes.append(helper.make_node("If", ["always"], ["scores"], name="branchy",
                                  then_branch=then_graph, else_branch=else_graph))
    inits.append(numpy_helper.from_array(np.array(True), "always"))
    return _bytes(_model(nodes, [_image_input(1, 28)], [_scores_output()], inits,
                         extra_opsets={"evil.ops": 1}))


def opset_too_new() -> bytes:
    """onnx.helper's defaults (IR 14, opset 28), which onnxruntime 1.31 refuses."""
    return _bytes(_mnist_linear_model(opset=onnx.defs.onnx_opset_version(),
                                      ir_version=onnx.IR_VERSION))


def opset_too_old() -> bytes:
    """ai.onnx opset 9 (before the supported range)."""
    return _bytes(_mnist_linear_model(opset=9, ir_version=4))


# --- bad models: parse -------------------------------------------------------------------------

def truncated_bytes() -> bytes:
    """A good model cut off in the middle of its weights."""
    data = mnist_cnn()
    return data[: len(data) // 2]


def garbage_bytes() -> bytes:
    """Random bytes that are not a protobuf at all."""
    return b"\xff\xfe not an onnx model \x00" + _rng(70).integers(0, 256, 4000, np.uint8).tobytes()


# --- bad models: signature ---------------------------------------------------------------------

def _mnist_with_input(dtype, shape) -> bytes:
    model = _mnist_linear_model()
    model.graph.input[0].CopyFrom(helper.make_tensor_value_info("image", dtype, shape))
    if dtype != TensorProto.FLOAT:
        model.graph.node.insert(0, helper.make_node("Cast", ["image"], ["image_f"],
                                                    to=TensorProto.FLOAT))
        model.graph.node[1].input[0] = "image_f"
    return _bytes(model)


def wrong_input_dtype() -> bytes:
    """MNIST input declared float64 instead of float32."""
    return _mnist_with_input(TensorProto.DOUBLE, [BATCH, 1, 28, 28])


def wrong_input_rank() -> bytes:
    """MNIST input declared [N, 784] instead of [N, 1, 28, 28]."""
    return _mnist_with_input(TensorProto.FLOAT, [BATCH, 784])


def wrong_input_dims() -> bytes:
    """MNIST input declared [N, 1, 32, 32]."""
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "b"], ["scores"], transB=1),
    ]
    inits = [_weights("W", (10, 1024), 1, 0.05), _weights("b", (10,), 2)]
    return _bytes(_model(nodes, [_image_input(1, 32)], [_scores_output()], inits))


def fixed_batch() -> bytes:
    """MNIST input with batch fixed to 1 instead of dynamic."""
    nodes, inits = _linear_parts(784)
    return _bytes(_model(nodes, [_image_input(1, 28, batch=1)], [_scores_output(batch=1)], inits))


def wrong_output_shape() -> bytes:
    """MNIST output [N, 5] instead of [N, 10]."""
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "b"], ["scores"], transB=1),
    ]
    inits = [_weights("W", (5, 784), 1, 0.05), _weights("b", (5,), 2)]
    return _bytes(_model(nodes, [_image_input(1, 28)], [_scores_output(5)], inits))


def wrong_output_dtype() -> bytes:
    """MNIST output float16 instead of float32."""
    model = _mnist_linear_model()
    model.graph.node[-1].output[0] = "scores32"
    model.graph.node.append(helper.make_node("Cast", ["scores32"], ["scores"],
                                             to=TensorProto.FLOAT16))
    model.graph.output[0].CopyFrom(
        helper.make_tensor_value_info("scores", TensorProto.FLOAT16, [BATCH, 10]))
    return _bytes(model)


def two_outputs() -> bytes:
    """MNIST model with a second output."""
    model = _mnist_linear_model()
    model.graph.node.append(helper.make_node("Identity", ["flat"], ["features"]))
    model.graph.output.append(
        helper.make_tensor_value_info("features", TensorProto.FLOAT, [BATCH, 784]))
    return _bytes(model)


def tinygpt_context_too_long() -> bytes:
    """tinygpt with a fixed context of 512 (> 256)."""
    return _bytes(_tinygpt_model(512))


def tinygpt_wrong_vocabulary() -> bytes:
    """tinygpt whose logits have 64 entries instead of 65."""
    return _bytes(_tinygpt_model(32, vocab_out=64))


def tinygpt_int32_input() -> bytes:
    """tinygpt with int32 ids instead of int64."""
    return _bytes(_tinygpt_model(32, input_dtype=TensorProto.INT32))


def tinygpt_output_context_mismatch() -> bytes:
    """tinygpt declaring ids [N, T] (dynamic) but logits [N, 16, 65] (a fixed, different T)."""
    model = _tinygpt_model("T")
    model.graph.output[0].CopyFrom(
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, [BATCH, 16, VOCAB]))
    return _bytes(model)


# --- bad models: memory ------------------------------------------------------------------------

GIANT_ELEMENTS = 50 * 2**30 // 4  # 50 GiB of float32


def _plus_reduced(extra_nodes: list[onnx.NodeProto], huge: str, extra_inits) -> bytes:
    """MNIST linear whose scores get ReduceSum(``huge``) added, so a runtime must build ``huge``."""
    nodes, inits = _linear_parts(784, out="pre_scores")
    nodes += extra_nodes
    nodes += [
        helper.make_node("ReduceSum", [huge], ["huge_sum"], keepdims=0),
        helper.make_node("Add", ["pre_scores", "huge_sum"], ["scores"]),
    ]
    return _bytes(_model(nodes, [_image_input(1, 28)], [_scores_output()],
                         inits + list(extra_inits)))


def giant_constant_of_shape() -> bytes:
    """ConstantOfShape producing a 50 GiB float32 tensor from a constant shape."""
    node = helper.make_node("ConstantOfShape", ["giant_shape"], ["giant"], name="make_giant",
                            value=numpy_helper.from_array(np.array([1.0], np.float32)))
    return _plus_reduced([node], "giant", [_const("giant_shape", [GIANT_ELEMENTS])])


def giant_expand() -> bytes:
    """Expand of a scalar to a 50 GiB float32 tensor."""
    node = helper.make_node("Expand", ["one", "giant_shape"], ["giant"], name="expand_giant")
    inits = [numpy_helper.from_array(np.array([1.0], np.float32), "one"),
             _const("giant_shape", [1024, 1024, GIANT_ELEMENTS // 2**20])]
    return _plus_reduced([node], "giant", inits)


def giant_resize() -> bytes:
    """Resize of the image by 1000x in each spatial direction (constant scales): 2.9 GiB per sample."""
    node = helper.make_node("Resize", ["image", "", "scales"], ["huge"], name="resize_giant",
                            mode="nearest")
    scales = numpy_helper.from_array(np.array([1, 1, 1000, 1000], np.float32), "scales")
    return _plus_reduced([node], "huge", [scales])


def giant_pad() -> bytes:
    """Pad of the image by 30000 pixels on every side: 13 GiB per sample."""
    node = helper.make_node("Pad", ["image", "pads"], ["huge"], name="pad_giant")
    return _plus_reduced([node], "huge", [_const("pads", [0, 0, 30000, 30000, 0, 0, 30000, 30000])])


def giant_range() -> bytes:
    """Range(0, 1e10, 1) from constants: 37 GiB."""
    node = helper.make_node("Range", ["start", "limit", "delta"], ["huge"], name="range_giant")
    inits = [numpy_helper.from_array(np.array(v, np.float32), n)
             for n, v in (("start", 0), ("limit", 1e10), ("delta", 1))]
    return _plus_reduced([node], "huge", inits)


def giant_one_hot() -> bytes:
    """OneHot of 1000 indices with depth 10^7: 37 GiB."""
    node = helper.make_node("OneHot", ["indices", "depth", "values"], ["huge"], name="onehot_giant")
    inits = [_const("indices", np.zeros(1000)), _const("depth", [10**7]),
             numpy_helper.from_array(np.array([0, 1], np.float32), "values")]
    return _plus_reduced([node], "huge", inits)


def giant_conv_transpose() -> bytes:
    """ConvTranspose with stride 2000: a [N, 1, 56000, 56000] output (11.7 GiB per sample)."""
    node = helper.make_node("ConvTranspose", ["image", "kernel"], ["huge"], name="deconv_giant",
                            strides=[2000, 2000])
    return _plus_reduced([node], "huge",
                         [numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "kernel")])


def giant_in_subgraph() -> bytes:
    """A 2.9 GiB Resize hidden in an If branch (inference reaches into subgraphs)."""
    scales = numpy_helper.from_array(np.array([1, 1, 1000, 1000], np.float32), "scales")
    then_graph = helper.make_graph(
        [helper.make_node("Resize", ["image", "", "scales"], ["huge"], mode="nearest",
                          name="hidden_resize"),
         helper.make_node("ReduceSum", ["huge"], ["branch_out"], keepdims=0)],
        "then_branch", [], [helper.make_tensor_value_info("branch_out", TensorProto.FLOAT, [])],
        [scales],
    )
    else_graph = helper.make_graph(
        [helper.make_node("Identity", ["zero"], ["branch_out2"])], "else_branch", [],
        [helper.make_tensor_value_info("branch_out2", TensorProto.FLOAT, [])],
        [numpy_helper.from_array(np.array(0, np.float32), "zero")],
    )
    nodes, inits = _linear_parts(784, out="pre_scores")
    nodes += [
        helper.make_node("If", ["always"], ["offset"], name="branch",
                         then_branch=then_graph, else_branch=else_graph),
        helper.make_node("Add", ["pre_scores", "offset"], ["scores"]),
    ]
    inits.append(numpy_helper.from_array(np.array(True), "always"))
    return _bytes(_model(nodes, [_image_input(1, 28)], [_scores_output()], inits))


def huge_intermediate() -> bytes:
    """Expand of the input image to [N, 400000, 28, 28] (1.2 GB per sample) then averaged back."""
    nodes = [
        helper.make_node("Expand", ["image", "wide_shape"], ["wide"], name="widen"),
        helper.make_node("ReduceMean", ["wide"], ["narrow"], axes=[1], keepdims=1),
        helper.make_node("Flatten", ["narrow"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "b"], ["scores"], transB=1),
    ]
    inits = [_const("wide_shape", [1, 400_000, 28, 28]),
             _weights("W", (10, 784), 1, 0.05), _weights("b", (10,), 2)]
    return _bytes(_model(nodes, [_image_input(1, 28)], [_scores_output()], inits))


def huge_declared_tensor() -> bytes:
    """A Constant whose tensor declares dims of 2^40 elements but holds no data."""
    model = _mnist_linear_model()
    tensor = TensorProto(name="phantom", data_type=TensorProto.FLOAT, dims=[2**20, 2**20])
    model.graph.node.insert(0, helper.make_node("Constant", [], ["phantom"], name="phantom_const",
                                                value=tensor))
    return _bytes(model)


def giant_sparse_initializer() -> bytes:
    """A sparse initializer holding one value but declaring dense dims of 2^40 elements
    (onnxruntime densifies sparse initializers when it loads them)."""
    values = numpy_helper.from_array(np.ones(1, np.float32), "sparse_giant")
    indices = _const("sparse_giant_indices", [0])
    sparse = helper.make_sparse_tensor(values, indices, [2**20, 2**20])
    model = _mnist_linear_model()
    model.graph.sparse_initializer.append(sparse)
    return _bytes(model)


# --- bad models that only fail at run time (the sandbox's job) --------------------------------

def endless_loop() -> bytes:
    """A Loop with trip count 2^62 whose body just carries a value: never ends in practice."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Identity", ["carried_in"], ["carried_out"])],
        "loop_body",
        [helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("carried_in", TensorProto.FLOAT, [BATCH, 10])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("carried_out", TensorProto.FLOAT, [BATCH, 10])],
    )
    nodes, inits = _linear_parts(784, out="pre_scores")
    nodes.append(helper.make_node("Loop", ["trip_count", "keep_going", "pre_scores"], ["scores"],
                                  name="endless", body=body))
    inits += [_const("trip_count", 2**62), numpy_helper.from_array(np.array(True), "keep_going")]
    return _bytes(_model(nodes, [_image_input(1, 28)], [_scores_output()], inits))


def batch_cubed_loop(per_image_cubed: int = 200) -> bytes:
    """A Loop of ``per_image_cubed * N**3`` trips for a batch of N: quick at batch 1 (the probe),
    endless in practice at the accuracy pass's batch of 60 (about 43 million trips)."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Identity", ["carried_in"], ["carried_out"])],
        "loop_body",
        [helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("carried_in", TensorProto.FLOAT, [BATCH, 10])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("carried_out", TensorProto.FLOAT, [BATCH, 10])],
    )
    nodes, inits = _linear_parts(784, out="pre_scores")
    nodes += [
        helper.make_node("Shape", ["image"], ["image_shape"]),
        helper.make_node("Gather", ["image_shape", "zero"], ["batch"]),
        helper.make_node("Mul", ["batch", "batch"], ["batch2"]),
        helper.make_node("Mul", ["batch2", "batch"], ["batch3"]),
        helper.make_node("Mul", ["batch3", "per_image_cubed"], ["trips"]),
        helper.make_node("Loop", ["trips", "keep_going", "pre_scores"], ["scores"],
                         name="cubed", body=body),
    ]
    inits += [_const("zero", 0), _const("per_image_cubed", per_image_cubed),
              numpy_helper.from_array(np.array(True), "keep_going")]
    return _bytes(_model(nodes, [_image_input(1, 28)], [_scores_output()], inits))


def nan_outputs() -> bytes:
    """Scores multiplied by Log(-1): every output is NaN."""
    nodes, inits = _linear_parts(784, out="pre_scores")
    nodes += [
        helper.make_node("Log", ["minus_one"], ["nan"]),
        helper.make_node("Mul", ["pre_scores", "nan"], ["scores"]),
    ]
    inits.append(numpy_helper.from_array(np.array([-1.0], np.float32), "minus_one"))
    return _bytes(_model(nodes, [_image_input(1, 28)], [_scores_output()], inits))


def runtime_wrong_shape() -> bytes:
    """Declares scores [N, 10] but tiles them N times along the batch: [N*N, 10] at run time.

    Right at batch 1 (so a latency run looks fine), wrong at any larger batch.
    """
    nodes, inits = _linear_parts(784, out="pre_scores")
    nodes += [
        helper.make_node("Shape", ["image"], ["image_shape"]),
        helper.make_node("Slice", ["image_shape", "zero", "one"], ["batch"]),
        helper.make_node("Concat", ["batch", "one"], ["repeats"], axis=0),
        helper.make_node("Tile", ["pre_scores", "repeats"], ["scores"], name="tile_by_batch"),
    ]
    inits += [_const("zero", [0]), _const("one", [1])]
    return _bytes(_model(nodes, [_image_input(1, 28)], [_scores_output()], inits))


BAD_MODELS: dict[str, Builder] = {
    "external_data_traversal": external_data_traversal,
    "external_data_absolute": external_data_absolute,
    "external_data_beside_model": external_data_beside_model,
    "external_data_in_constant": external_data_in_constant,
    "external_data_in_subgraph": external_data_in_subgraph,
    "external_data_in_function": external_data_in_function,
    "external_data_sparse_initializer": external_data_sparse_initializer,
    "custom_domain_op": custom_domain_op,
    "microsoft_op_not_allowed": microsoft_op_not_allowed,
    "custom_op_in_subgraph": custom_op_in_subgraph,
    "model_local_function": model_local_function,
    "opset_too_new": opset_too_new,
    "opset_too_old": opset_too_old,
    "truncated_bytes": truncated_bytes,
    "garbage_bytes": garbage_bytes,
    "wrong_input_dtype": wrong_input_dtype,
    "wrong_input_rank": wrong_input_rank,
    "wrong_input_dims": wrong_input_dims,
    "fixed_batch": fixed_batch,
    "wrong_output_shape": wrong_output_shape,
    "wrong_output_dtype": wrong_output_dtype,
    "two_outputs": two_outputs,
    "tinygpt_context_too_long": tinygpt_context_too_long,
    "tinygpt_wrong_vocabulary": tinygpt_wrong_vocabulary,
    "tinygpt_int32_input": tinygpt_int32_input,
    "tinygpt_output_context_mismatch": tinygpt_output_context_mismatch,
    "giant_constant_of_shape": giant_constant_of_shape,
    "giant_expand": giant_expand,
    "huge_intermediate": huge_intermediate,
    "huge_declared_tensor": huge_declared_tensor,
    "giant_sparse_initializer": giant_sparse_initializer,
    "giant_resize": giant_resize,
    "giant_pad": giant_pad,
    "giant_range": giant_range,
    "giant_one_hot": giant_one_hot,
    "giant_conv_transpose": giant_conv_transpose,
    "giant_in_subgraph": giant_in_subgraph,
    "endless_loop": endless_loop,
    "nan_outputs": nan_outputs,
    "runtime_wrong_shape": runtime_wrong_shape,
}

# Bad models that are valid ONNX with a correct signature: validation passes them and the
# locked-down scoring child must fail them cleanly (hard kill, NaN check, output-shape check).
RUNTIME_BAD_MODELS: frozenset[str] = frozenset({"endless_loop", "nan_outputs",
                                                "runtime_wrong_shape"})

# The task each bad model is submitted to.
BAD_MODEL_TASKS: dict[str, str] = {
    name: ("tinygpt" if name.startswith("tinygpt") else "mnist") for name in BAD_MODELS
}
