"""ONNX export: trace one forward pass, then translate the recorded graph into standard ONNX nodes.

``export_onnx(model, example_input, path)`` runs ``model`` in eval mode on ``example_input`` with
tracing on, so every op records its inputs (``_prev``), its name (``_op``) and the attributes
export needs (``_attrs``). Walking that graph from the output:

- the example input becomes the graph input, with a dynamic batch dimension called ``N``;
- parameters and buffers become initializers under their ``state_dict`` names;
- anything that does not depend on the input (constants, a buffer reshaped in ``forward``) is
  folded into an initializer holding the value it had during the trace;
- each op becomes one or a few standard ONNX operators (opset 17 by default).

Shapes that mention the batch are written so they work for any batch (``Reshape`` copies dim 0),
and ``check=True`` proves it: onnxruntime runs the file at the example's batch size and another,
and the outputs must match the framework's to 1e-4.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from evaluator.tasks import TINYGPT_MAX_CONTEXT
from reference_models.autograd import no_grad, tracing
from reference_models.nn.module import Module
from reference_models.tensor import Tensor, topological_order

DEFAULT_OPSET = 17  # what evaluator.onnx_facts recommends; onnxruntime 1.31 loads 13 to 26
IR_VERSION = 8  # the IR version that goes with opset 17 (onnx.helper would stamp a newer one)
BATCH_DIM = "N"
INT64_MAX = np.iinfo(np.int64).max


class ExportError(ValueError):
    """The model uses something export cannot translate; the message says what and why."""


def export_onnx(model: Module, example_input: Tensor | np.ndarray, path: str | os.PathLike | None,
                *, task: str | None = None, opset: int = DEFAULT_OPSET,
                input_name: str = "input", output_name: str = "logits",
                dynamic_axes: dict[int, str] | None = None, check: bool = True,
                output_index: int | None = None) -> onnx.ModelProto:
    """Write ``model`` as an ONNX file at ``path`` (if given) and return the ``ModelProto``.

    ``example_input`` fixes every input dimension except the batch (axis 0, named ``N``) and any
    others named in ``dynamic_axes`` (e.g. ``{1: "T"}`` for a language model's context). With
    ``task`` (``"mnist"``, ``"cifar10"``, ``"tinygpt"``) the signature is checked against
    ``evaluator.tasks`` and the file must pass ``evaluator.validation.validate``.

    A model whose forward returns a tuple (``logits, loss``; an RNN's ``output, h_n``) exports
    one of its outputs: ``output_index`` (0 when not given, with a warning that says so).
    """
    example = example_input if isinstance(example_input, Tensor) else Tensor(example_input)
    axes = {0: BATCH_DIM, **(dynamic_axes or {})}
    if task is not None:
        _check_task_input(task, example)
    output = _trace(model, example, output_index)
    builder = GraphBuilder(model, example, output, opset, input_name, output_name, axes)
    builder.output_batch_axes = _batch_axes(model, example, output, output_index)
    graph = builder.build()
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="reference_models", ir_version=IR_VERSION)
    onnx.checker.check_model(proto, full_check=True)
    if task is not None:
        _validate_for_task(proto, task)
    if check:
        _check_against_framework(model, example, proto, output_index, dynamic_axes)
    if path is not None:
        Path(path).write_bytes(proto.SerializeToString())
    return proto


def _trace(model: Module, example: Tensor, output_index: int | None) -> Tensor:
    was_training = model.training
    model.eval()  # dropout off, batch norm on running statistics: the inference graph
    try:
        with no_grad(), tracing():
            output = model(example)
    finally:
        model.train(was_training)
    return _pick_output(output, output_index, warn=True)


def _batch_axes(model: Module, example: Tensor, output: Tensor,
                output_index: int | None) -> set[int]:
    """The output axes that follow the batch size (an RNN's ``h_n`` has it at axis 1; a value
    averaged over the batch has none), found by running one more row."""
    if example.ndim == 0 or example.shape[0] == 0:
        return {0} if output.ndim else set()
    bigger = np.concatenate([example.data, example.data[:1]], axis=0)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            probe = _pick_output(model(Tensor(bigger, dtype=bigger.dtype)), output_index)
    except Exception:  # noqa: BLE001 - the framework check below reports a batch that fails
        return {0} if output.ndim else set()
    finally:
        model.train(was_training)
    if probe.ndim != output.ndim:
        return {0} if output.ndim else set()
    return {axis for axis, (a, b) in enumerate(zip(output.shape, probe.shape, strict=True))
            if a != b}


def _pick_output(output: Any, output_index: int | None, *, warn: bool = False) -> Tensor:
    """The one tensor the file computes: the output itself, or one element of a returned tuple."""
    if isinstance(output, tuple | list):
        index = 0 if output_index is None else output_index
        if not -len(output) <= index < len(output):
            raise ExportError(f"output_index={index}, but the model returns {len(output)} outputs")
        if warn and output_index is None and len(output) > 1:
            warnings.warn(f"the model returns a tuple of {len(output)}; export writes its first "
                          f"element (pass output_index= to choose another)", stacklevel=3)
        output = output[index]
    elif output_index not in (None, 0, -1):
        raise ExportError(f"output_index={output_index}, but the model returns one Tensor")
    if not isinstance(output, Tensor):
        raise ExportError(f"the model's forward must return a Tensor (or a tuple of them), not "
                          f"{type(output).__name__}")
    return output


# ===================================================================== input normalization
class Normalize(Module):
    """torchvision's ``transforms.Normalize(mean, std)`` as a layer: ``(x - mean) / std`` per
    channel (dim 1). As the first layer of a model it puts the normalization inside the exported
    graph, which the scorer needs (it feeds pixels / 255 and nothing else)."""

    def __init__(self, mean: Sequence[float] | float, std: Sequence[float] | float) -> None:
        super().__init__()
        mean_array = np.atleast_1d(np.asarray(mean, dtype=np.float32))
        std_array = np.atleast_1d(np.asarray(std, dtype=np.float32))
        if mean_array.ndim != 1 or mean_array.shape != std_array.shape:
            raise ValueError(f"mean and std need one number per channel (or one for all), got "
                             f"{mean_array.shape} and {std_array.shape}")
        if (std_array == 0).any():
            raise ValueError("std evaluated to zero, leading to division by zero")
        self.register_buffer("mean", mean_array)
        self.register_buffer("std", std_array)

    def forward(self, input: Tensor) -> Tensor:
        if self.mean.shape[0] not in (1, input.shape[1]):
            raise ValueError(f"Normalize has {self.mean.shape[0]} channels, the input "
                             f"{input.shape[1]}")
        shape = (1, -1) + (1,) * (input.ndim - 2)
        return (input - self.mean.reshape(shape)) / self.std.reshape(shape)

    def extra_repr(self) -> str:
        return f"mean={self.mean.data.tolist()}, std={self.std.data.tolist()}"


def with_normalization(model: Module, mean: Sequence[float] | float,
                       std: Sequence[float] | float) -> Module:
    """``model`` behind a ``Normalize(mean, std)`` layer, for a model trained on data normalized
    by the loader (``transforms.Normalize``): the result takes raw pixels / 255 and exports with
    the normalization in the graph. The model's parameters are shared, not copied."""
    from reference_models.nn.layers import Sequential

    return Sequential(Normalize(mean, std), model)


# ===================================================================== graph construction
class GraphBuilder:
    """Builds one ONNX graph from a traced forward pass; translations add nodes through it.

    A translation (see ``register_translation``) gets the builder ``b`` and the traced tensor ``t``
    of its op, and writes the nodes that compute ``t`` from ``b.inputs(t)`` into ``b.out(t)``, with
    ``b.node``, ``b.constant`` and ``b.ints``. ``b.memo`` holds what a translation shares across the
    whole graph (one initializer for all layers, say), keyed by names of its own.
    """

    def __init__(self, model: Module, example: Tensor, output: Tensor, opset: int,
                 input_name: str, output_name: str, dynamic_axes: dict[int, str]) -> None:
        self.example, self.output, self.opset = example, output, opset
        self.input_name, self.output_name, self.dynamic_axes = input_name, output_name, dynamic_axes
        self.param_names = {id(t): name for name, t in model.named_parameters()}
        self.param_names.update({id(t): name for name, t in model.named_buffers()})
        self.names: dict[int, str] = {}
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}
        self.counter = 0
        self.memo: dict[Any, Any] = {}
        self.output_batch_axes: set[int] = {0}  # export_onnx measures them

    def build(self) -> onnx.GraphProto:
        order = topological_order(self.output)
        if not any(t is self.example for t in order):
            raise ExportError("the model's output does not depend on its input")
        live = self._input_dependent(order)
        self.names[id(self.example)] = self.input_name
        for tensor in order:
            if id(tensor) in live and tensor is not self.example:
                self.names[id(tensor)] = (self.output_name if tensor is self.output
                                          else self.fresh(tensor._op))
                translate = _TRANSLATIONS.get(tensor._op)
                if translate is None:
                    raise ExportError(
                        f"export does not support the op {tensor._op!r} yet (an op exports once "
                        f"reference_models.export.register_translation has a translation for it)")
                translate(self, tensor)
        if self.output is self.example:
            self.node("Identity", [self.input_name], [self.output_name])
        return helper.make_graph(
            self.nodes, "reference_models", [self._value_info(self.input_name, self.example)],
            [self._value_info(self.output_name, self.output)], list(self.initializers.values()))

    def _input_dependent(self, order: list[Tensor]) -> set[int]:
        live = {id(self.example)}
        for tensor in order:
            if any(id(p) in live for p in tensor._prev):
                live.add(id(tensor))
        return live

    def _leaf_name(self, tensor: Tensor) -> str:
        return self.param_names.get(id(tensor)) or f"const_{tensor._op or 'value'}"

    def _value_info(self, name: str, tensor: Tensor) -> onnx.ValueInfoProto:
        dims: list[int | str] = list(tensor.shape)
        for axis, label in self.dynamic_axes.items():
            if tensor is self.example:
                if axis < len(dims):
                    dims[axis] = label
            elif axis == 0:  # the batch: wherever it ended up in the output
                for batch_axis in self.output_batch_axes:
                    if batch_axis < len(dims):
                        dims[batch_axis] = label
            # another dynamic axis: an output axis of the same size in the trace carries it
            elif axis < len(dims) and dims[axis] == self.example.shape[axis]:
                dims[axis] = label
        elem = helper.np_dtype_to_tensor_dtype(tensor.dtype)
        return helper.make_tensor_value_info(name, elem, dims)

    # -- helpers the emitters use
    def name(self, tensor: Tensor) -> str:
        """The ONNX name of ``tensor``; a constant becomes an initializer on first use."""
        if id(tensor) not in self.names:
            self.names[id(tensor)] = self.constant(tensor.data, self._leaf_name(tensor))
        return self.names[id(tensor)]

    def fresh(self, hint: str | None) -> str:
        self.counter += 1
        return f"{hint or 'value'}_{self.counter}"

    def constant(self, value: Any, hint: str) -> str:
        name = hint if hint not in self.initializers else self.fresh(hint)
        array = np.asarray(value)
        # np.ascontiguousarray turns a 0-d array into shape [1]: a scalar index would keep its axis
        self.initializers[name] = numpy_helper.from_array(
            np.ascontiguousarray(array) if array.ndim else array, name)
        return name

    def ints(self, values: Any, hint: str) -> str:
        return self.constant(np.asarray(values, dtype=np.int64), hint)

    def node(self, op_type: str, inputs: list[str], outputs: list[str] | None = None,
             **attrs: Any) -> str:
        outputs = outputs or [self.fresh(op_type.lower())]
        self.nodes.append(helper.make_node(op_type, inputs, outputs,
                                           name=f"{op_type}_{len(self.nodes)}", **attrs))
        return outputs[0]

    def out(self, tensor: Tensor) -> list[str]:
        return [self.name(tensor)]

    def inputs(self, tensor: Tensor) -> list[str]:
        return [self.name(p) for p in tensor._prev]

    def depends_on_batch(self, tensor: Tensor) -> bool:
        return tensor.ndim > 0 and tensor.shape[0] == self.example.shape[0]


# ===================================================================== op translations
Translation = Callable[[GraphBuilder, Tensor], None]
_TRANSLATIONS: dict[str, Translation] = {}


def register_translation(*ops: str) -> Callable[[Translation], Translation]:
    """Register the decorated function as the ONNX translation of the recorded ops ``ops``.

    The extension point for new ops: an op recorded with ``record_op(out, parents, "my_op", ...)``
    exports once a translation is registered for ``"my_op"``::

        @register_translation("my_op")
        def _my_op(b: GraphBuilder, t: Tensor) -> None:
            b.node("Relu", b.inputs(t), b.out(t))

    Registering an op twice is an error (two translations of one op would depend on import order).
    """
    def register(fn: Translation) -> Translation:
        for op in ops:
            if op in _TRANSLATIONS and _TRANSLATIONS[op] is not fn:
                raise ValueError(f"the op {op!r} already has an ONNX translation "
                                 f"({_TRANSLATIONS[op].__module__}.{_TRANSLATIONS[op].__name__})")
            _TRANSLATIONS[op] = fn
        return fn

    return register


_ONE_TO_ONE = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "neg": "Neg",
               "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "abs": "Abs", "relu": "Relu",
               "sigmoid": "Sigmoid", "tanh": "Tanh", "matmul": "MatMul", "where": "Where",
               "lt": "Less", "le": "LessOrEqual", "gt": "Greater", "ge": "GreaterOrEqual",
               "eq": "Equal", "detach": "Identity", "maximum": "Max", "minimum": "Min",
               "sin": "Sin", "cos": "Cos", "floor": "Floor", "ceil": "Ceil", "round": "Round",
               "sign": "Sign", "isnan": "IsNaN", "pow_tensor": "Pow"}


@register_translation(*_ONE_TO_ONE)
def _one_to_one(b: GraphBuilder, t: Tensor) -> None:
    b.node(_ONE_TO_ONE[t._op], b.inputs(t), b.out(t))


@register_translation("ne")
def _ne(b: GraphBuilder, t: Tensor) -> None:
    b.node("Not", [b.node("Equal", b.inputs(t))], b.out(t))


@register_translation("not")
def _not(b: GraphBuilder, t: Tensor) -> None:
    if t.dtype != np.bool_:
        raise ExportError("export supports ~ on bool tensors only (ONNX's bitwise not needs "
                          "opset 18)")
    b.node("Not", b.inputs(t), b.out(t))


@register_translation("clamp")
def _clamp(b: GraphBuilder, t: Tensor) -> None:
    # min(max(x, low), high): PyTorch's order, so min > max gives max everywhere as it does
    x, low, high = b.name(t._prev[0]), t._attrs["low"], t._attrs["high"]
    if low is not None:
        x = b.node("Max", [x, b.constant(np.asarray(low, t.dtype), "clamp_min")],
                   None if high is not None else b.out(t))
    if high is not None:
        b.node("Min", [x, b.constant(np.asarray(high, t.dtype), "clamp_max")], b.out(t))


@register_translation("cast")
def _cast(b: GraphBuilder, t: Tensor) -> None:
    b.node("Cast", b.inputs(t), b.out(t), to=helper.np_dtype_to_tensor_dtype(t._attrs["dtype"]))


@register_translation("argmax")
def _argmax(b: GraphBuilder, t: Tensor) -> None:
    if t._attrs["axis"] is None:
        raise ExportError("export needs argmax with a dim (argmax over all elements is not "
                          "a per-sample output)")
    b.node("ArgMax", b.inputs(t), b.out(t), axis=t._attrs["axis"],
           keepdims=int(t._attrs["keepdim"]))


@register_translation("argmin")
def _argmin(b: GraphBuilder, t: Tensor) -> None:
    if t._attrs["axis"] is None:
        raise ExportError("export needs argmin with a dim (argmin over all elements is not "
                          "a per-sample output)")
    b.node("ArgMin", b.inputs(t), b.out(t), axis=t._attrs["axis"],
           keepdims=int(t._attrs["keepdim"]))


@register_translation("topk", "argsort")
def _topk(b: GraphBuilder, t: Tensor) -> None:
    """sort/topk record their indices (the values are a gather of them); ONNX's TopK puts equal
    elements in index order, as the framework's stable sort does."""
    source, axis = t._prev[0], t._attrs["axis"] % t._prev[0].ndim
    if t._op == "topk":
        k, largest = b.ints([t._attrs["k"]], "k"), t._attrs["largest"]
    else:  # a whole sort: k is the dim's size, read at run time (it may be the batch)
        shape = b.node("Shape", [b.name(source)])
        k = b.node("Slice", [shape, b.ints([axis], "starts"), b.ints([axis + 1], "ends")])
        largest = t._attrs["descending"]
    b.node("TopK", [b.name(source), k], [b.fresh("topk_values"), *b.out(t)], axis=axis,
           largest=int(largest), sorted=1)


@register_translation("pow")
def _pow(b: GraphBuilder, t: Tensor) -> None:
    exponent = b.constant(np.asarray(t._attrs["exponent"], dtype=t.dtype), "exponent")
    b.node("Pow", [b.name(t._prev[0]), exponent], b.out(t))


@register_translation("gelu")
def _gelu(b: GraphBuilder, t: Tensor) -> None:
    x, dtype = b.name(t._prev[0]), t.dtype

    def scalar(value: float, hint: str) -> str:
        return b.constant(np.asarray(value, dtype=dtype), hint)

    if t._attrs["approximate"] == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = b.node("Mul", [b.node("Mul", [x, x]), x])
        inner = b.node("Add", [x, b.node("Mul", [cube, scalar(0.044715, "gelu_c")])])
        core = b.node("Tanh", [b.node("Mul", [inner, scalar(np.sqrt(2 / np.pi), "gelu_k")])])
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        core = b.node("Erf", [b.node("Div", [x, scalar(np.sqrt(2.0), "sqrt2")])])
    one_plus = b.node("Add", [core, scalar(1.0, "one")])
    b.node("Mul", [b.node("Mul", [x, scalar(0.5, "half")]), one_plus], b.out(t))


def _reduce(b: GraphBuilder, t: Tensor, op_type: str) -> None:
    axes, keepdims = list(t._attrs["axes"]), int(t._attrs["keepdim"])
    x = b.name(t._prev[0])
    # ReduceSum takes axes as an input from opset 13, the others only from opset 18
    if op_type == "ReduceSum" or b.opset >= 18:
        b.node(op_type, [x, b.ints(axes, "axes")], b.out(t), keepdims=keepdims)
    else:
        b.node(op_type, [x], b.out(t), axes=axes, keepdims=keepdims)


@register_translation("logsumexp")
def _logsumexp(b: GraphBuilder, t: Tensor) -> None:
    _reduce(b, t, "ReduceLogSumExp")


@register_translation("norm")
def _norm(b: GraphBuilder, t: Tensor) -> None:
    _reduce(b, t, "ReduceL2")


def _operands_as(b: GraphBuilder, t: Tensor) -> list[str]:
    """The op's inputs cast to its output dtype (an int tensor % a float one computes in float;
    ONNX wants one type)."""
    names = []
    for parent in t._prev:
        name = b.name(parent)
        if parent.dtype != t.dtype:
            name = b.node("Cast", [name], to=helper.np_dtype_to_tensor_dtype(t.dtype))
        names.append(name)
    return names


@register_translation("remainder")
def _remainder(b: GraphBuilder, t: Tensor) -> None:
    """Python's ``%`` (the sign of the divisor): ONNX's Mod for integers; ``x - floor(x/y) * y``
    for floats, whose Mod (``fmod=1``) takes the sign of the dividend."""
    x, y = _operands_as(b, t)
    if np.issubdtype(t.dtype, np.integer):
        b.node("Mod", [x, y], b.out(t), fmod=0)
        return
    quotient = b.node("Floor", [b.node("Div", [x, y])])
    b.node("Sub", [x, b.node("Mul", [quotient, y])], b.out(t))


@register_translation("floor_divide")
def _floor_divide(b: GraphBuilder, t: Tensor) -> None:
    """``//`` rounds toward minus infinity; ONNX's integer Div truncates, so integers divide
    ``x - x % y`` (exact) instead."""
    x, y = _operands_as(b, t)
    if np.issubdtype(t.dtype, np.integer):
        exact = b.node("Sub", [x, b.node("Mod", [x, y], fmod=0)])
        b.node("Div", [exact, y], b.out(t))
        return
    b.node("Floor", [b.node("Div", [x, y])], b.out(t))


@register_translation("sum")
def _sum(b: GraphBuilder, t: Tensor) -> None:
    _reduce(b, t, "ReduceSum")


@register_translation("mean")
def _mean(b: GraphBuilder, t: Tensor) -> None:
    _reduce(b, t, "ReduceMean")


@register_translation("amax")
def _amax(b: GraphBuilder, t: Tensor) -> None:
    _reduce(b, t, "ReduceMax")


@register_translation("prod")
def _prod(b: GraphBuilder, t: Tensor) -> None:
    source, axis = t._prev[0], t._attrs["axis"]
    x = b.name(source)
    if axis is None:  # all elements: flatten first, as the framework does
        x, axis = b.node("Reshape", [x, b.ints([-1], "shape")]), 0
    keepdims = int(t._attrs["keepdim"])
    if b.opset >= 18:
        b.node("ReduceProd", [x, b.ints([axis], "axes")], b.out(t), keepdims=keepdims)
    else:
        b.node("ReduceProd", [x], b.out(t), axes=[axis], keepdims=keepdims)


@register_translation("cumsum")
def _cumsum(b: GraphBuilder, t: Tensor) -> None:
    b.node("CumSum", [b.name(t._prev[0]), b.ints(t._attrs["axis"], "axis")], b.out(t))


@register_translation("tril", "triu")
def _trilu(b: GraphBuilder, t: Tensor) -> None:
    b.node("Trilu", [b.name(t._prev[0]), b.ints(t._attrs["diagonal"], "diagonal")], b.out(t),
           upper=int(t._op == "triu"))


@register_translation("pad")
def _pad(b: GraphBuilder, t: Tensor) -> None:
    widths = t._attrs["pads"]
    pads = [before for before, _ in widths] + [after for _, after in widths]
    value = b.constant(np.asarray(t._attrs["value"], dtype=t.dtype), "pad_value")
    b.node("Pad", [b.name(t._prev[0]), b.ints(pads, "pads"), value], b.out(t), mode="constant")


@register_translation("setitem")
def _setitem(b: GraphBuilder, t: Tensor) -> None:
    """``x[mask] = v`` becomes Where(mask, v, x); ``x[:, i:j] = v`` a ScatterND whose indices are
    constants over the other dims, with the batch moved last so any batch size works."""
    source, value = t._prev[0], t._prev[1]
    x, v = b.name(source), b.name(value)
    if t._attrs["mask"]:
        if value.data.size != 1:
            raise ExportError("export supports x[mask] = <one value> (a tensor of values would "
                              "depend on how many elements the mask picks)")
        v = b.node("Reshape", [v, b.ints([], "scalar")])
        b.node("Where", [b.name(t._prev[2]), v, x], b.out(t))
        return
    index = t._attrs["index"]
    items = list(index) if isinstance(index, tuple) else [index]
    if not all(isinstance(i, int | np.integer | slice) or i is Ellipsis for i in items):
        raise ExportError("export supports assignment with ints, slices and a boolean mask "
                          "(x[:, 0] = v, x[x < 0] = 0), not with integer arrays or None")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at:at + 1] = [slice(None)] * (source.ndim - len(items) + 1)
    items += [slice(None)] * (source.ndim - len(items))
    batch_free = items[0] == slice(None)
    if not batch_free and b.depends_on_batch(source):
        raise ExportError("export cannot assign into part of the batch dimension (x[0] = v): "
                          "the exported graph must work for any batch size")
    dims = range(1, source.ndim) if batch_free else range(source.ndim)
    # positions written, in C order over the selected part of the other dims
    ranges = [np.atleast_1d(np.arange(source.shape[d])[items[d]]) for d in dims]
    grid = np.stack([g.reshape(-1) for g in np.meshgrid(*ranges, indexing="ij")], axis=-1)
    updates = _broadcast_into(b, v, value, items, source)
    if batch_free:  # batch last: data [*rest, N], indices [M, ndim-1], updates [M, N]
        perm = [*range(1, source.ndim), 0]
        data = b.node("Transpose", [x], perm=perm)
        updates = b.node("Transpose", [updates], perm=perm)
        updates = b.node("Reshape", [updates, b.ints([len(grid), -1], "updates_shape")])
        written = b.node("ScatterND", [data, b.ints(grid, "scatter_indices"), updates])
        b.node("Transpose", [written], b.out(t), perm=[source.ndim - 1, *range(source.ndim - 1)])
    else:
        updates = b.node("Reshape", [updates, b.ints([len(grid)], "updates_shape")])
        b.node("ScatterND", [x, b.ints(grid, "scatter_indices"), updates], b.out(t))


def _broadcast_into(b: GraphBuilder, v: str, value: Tensor, items: list, source: Tensor) -> str:
    """``value`` broadcast to the region ``source[items]`` with an int item kept as a dim of size
    one (PyTorch broadcasts it against the region without those dims); the batch is read from
    ``source`` at run time."""
    starts, ends, steps = [], [], []
    for d, item in enumerate(items):
        if isinstance(item, slice):
            start, stop, step = item.indices(source.shape[d])
            if d == 0 and item == slice(None):
                stop = INT64_MAX  # the whole batch, whatever its size
            elif step < 0 and stop < 0:
                stop = -INT64_MAX
        else:
            start, step = int(item) % source.shape[d], 1
            stop = start + 1
        starts.append(start)
        ends.append(stop)
        steps.append(step)
    region = b.node("Slice", [b.name(source), b.ints(starts, "starts"), b.ints(ends, "ends"),
                              b.ints(list(range(len(items))), "axes"), b.ints(steps, "steps")])
    picks = [d for d, item in enumerate(items) if not isinstance(item, slice)]
    selected_rank = len(items) - len(picks)
    if value.ndim > selected_rank:
        raise ExportError(f"export cannot assign a {value.ndim}-d value into a {selected_rank}-d "
                          "region")
    if picks:  # value to the region's rank: leading dims first, then the dims ints dropped
        if value.ndim < selected_rank:
            v = b.node("Unsqueeze", [v, b.ints(list(range(selected_rank - value.ndim)), "axes")])
        v = b.node("Unsqueeze", [v, b.ints(picks, "axes")])
    return b.node("Expand", [v, b.node("Shape", [region])])


@register_translation("expand")
def _expand(b: GraphBuilder, t: Tensor) -> None:
    # Expand broadcasts both ways: a 1 where the source already has the size keeps the source's
    # own (possibly dynamic) size, the batch included
    source = t._prev[0]
    own = (1,) * (t.ndim - source.ndim) + source.shape
    target = [1 if have == want else want for have, want in zip(own, t.shape, strict=True)]
    b.node("Expand", [b.name(source), b.ints(target, "expand_shape")], b.out(t))


@register_translation("repeat")
def _repeat(b: GraphBuilder, t: Tensor) -> None:
    source, repeats = t._prev[0], list(t._attrs["repeats"])
    x = b.name(source)
    if len(repeats) > source.ndim:
        x = b.node("Unsqueeze", [x, b.ints(list(range(len(repeats) - source.ndim)), "axes")])
    b.node("Tile", [x, b.ints(repeats, "repeats")], b.out(t))


@register_translation("flip")
def _flip(b: GraphBuilder, t: Tensor) -> None:
    axes = [a % t.ndim for a in t._attrs["axes"]]
    n = len(axes)
    b.node("Slice", [b.name(t._prev[0]), b.ints([-1] * n, "starts"), b.ints([-INT64_MAX] * n, "ends"),
                     b.ints(axes, "axes"), b.ints([-1] * n, "steps")], b.out(t))


@register_translation("softmax", "log_softmax")
def _softmax(b: GraphBuilder, t: Tensor) -> None:
    op_type = "Softmax" if t._op == "softmax" else "LogSoftmax"
    b.node(op_type, b.inputs(t), b.out(t), axis=t._attrs["axis"])


def _reshape_target(b: GraphBuilder, source: Tensor, shape: tuple[int, ...]) -> list[int]:
    """The target shape, with the batch written so any batch size works.

    If dim 0 keeps the batch, ONNX's 0 ("copy this dim") says so; if the batch was folded into
    dim 0 with other dims (e.g. N*T rows), -1 lets ONNX compute it.
    """
    target = list(shape)
    if b.depends_on_batch(source) and target:
        target[0] = 0 if target[0] == source.shape[0] else -1
    return target


@register_translation("reshape")
def _reshape(b: GraphBuilder, t: Tensor) -> None:
    source = t._prev[0]
    shape = b.ints(_reshape_target(b, source, t._attrs["shape"]), "shape")
    b.node("Reshape", [b.name(source), shape], b.out(t))


@register_translation("flatten")
def _flatten(b: GraphBuilder, t: Tensor) -> None:
    source, start, end = t._prev[0], t._attrs["start_dim"], t._attrs["end_dim"]
    if start == 1 and end == source.ndim - 1:
        b.node("Flatten", [b.name(source)], b.out(t), axis=1)
        return
    target = [0] * start + [-1] + list(source.shape[end + 1:])
    if start == 0:
        target = _reshape_target(b, source, t.shape)
    b.node("Reshape", [b.name(source), b.ints(target, "shape")], b.out(t))


@register_translation("permute")
def _permute(b: GraphBuilder, t: Tensor) -> None:
    b.node("Transpose", b.inputs(t), b.out(t), perm=list(t._attrs["perm"]))


@register_translation("unsqueeze", "squeeze")
def _unsqueeze(b: GraphBuilder, t: Tensor) -> None:
    op_type = "Unsqueeze" if t._op == "unsqueeze" else "Squeeze"
    b.node(op_type, [b.name(t._prev[0]), b.ints(list(t._attrs["axes"]), "axes")], b.out(t))


@register_translation("getitem")
def _getitem(b: GraphBuilder, t: Tensor) -> None:
    source = t._prev[0]
    index = t._attrs["index"]
    items = list(index) if isinstance(index, tuple) else [index]
    if any(item is Ellipsis for item in items):
        at = items.index(Ellipsis)
        fill = source.ndim - (len(items) - 1 - sum(item is None for item in items))
        items[at:at + 1] = [slice(None)] * fill
    if any(item is None for item in items):
        raise ExportError("export does not support indexing with None; use unsqueeze instead")
    x = b.name(source)
    arrays = [(axis, item) for axis, item in enumerate(items) if isinstance(item, np.ndarray | list)]
    if arrays:
        if len(arrays) > 1 or any(item != slice(None) for item in items if not
                                  isinstance(item, np.ndarray | list)):
            raise ExportError("export supports one integer array index on its own (a[:, ids])")
        axis, ids = arrays[0]
        b.node("Gather", [x, b.ints(ids, "indices")], b.out(t), axis=axis)
        return
    starts, ends, axes, steps, picks = [], [], [], [], []
    for axis, item in enumerate(items):
        if isinstance(item, slice):
            if item == slice(None):
                continue
            step = 1 if item.step is None else item.step
            default_start, default_end = (0, INT64_MAX) if step > 0 else (-1, -INT64_MAX)
            starts.append(default_start if item.start is None else item.start)
            ends.append(default_end if item.stop is None else item.stop)
            axes.append(axis)
            steps.append(step)
        else:
            picks.append((axis, int(item)))
    if starts:
        x = b.node("Slice", [x, b.ints(starts, "starts"), b.ints(ends, "ends"),
                             b.ints(axes, "slice_axes"), b.ints(steps, "steps")],
                   None if picks else b.out(t))
    for position, (axis, value) in enumerate(reversed(picks)):  # highest axis first
        last = position == len(picks) - 1
        x = b.node("Gather", [x, b.ints(value, "index")], b.out(t) if last else None, axis=axis)
    if not starts and not picks:
        b.node("Identity", [x], b.out(t))


@register_translation("gather")
def _gather(b: GraphBuilder, t: Tensor) -> None:
    b.node("GatherElements", b.inputs(t), b.out(t), axis=t._attrs["axis"])


@register_translation("embedding")
def _embedding(b: GraphBuilder, t: Tensor) -> None:
    weight, ids = t._prev
    b.node("Gather", [b.name(weight), b.name(ids)], b.out(t), axis=0)


@register_translation("cat")
def _cat(b: GraphBuilder, t: Tensor) -> None:
    b.node("Concat", b.inputs(t), b.out(t), axis=t._attrs["axis"])


@register_translation("stack")
def _stack(b: GraphBuilder, t: Tensor) -> None:
    axis = b.ints([t._attrs["axis"]], "axes")
    parts = [b.node("Unsqueeze", [name, axis]) for name in b.inputs(t)]
    b.node("Concat", parts, b.out(t), axis=t._attrs["axis"])


@register_translation("linear")
def _linear(b: GraphBuilder, t: Tensor) -> None:
    x, weight, *bias = t._prev
    names = b.inputs(t)
    if x.ndim == 2:
        b.node("Gemm", names, b.out(t), transB=1)
        return
    product = b.node("MatMul", [names[0], b.node("Transpose", [names[1]], perm=[1, 0])],
                     None if bias else b.out(t))
    if bias:
        b.node("Add", [product, names[2]], b.out(t))


@register_translation("conv2d")
def _conv2d(b: GraphBuilder, t: Tensor) -> None:
    (ph, pw), attrs = t._attrs["padding"], t._attrs
    b.node("Conv", b.inputs(t), b.out(t), kernel_shape=list(attrs["kernel_shape"]),
           strides=list(attrs["stride"]), pads=[ph, pw, ph, pw], group=attrs["groups"],
           dilations=list(attrs.get("dilation", (1, 1))))


@register_translation("conv_transpose2d")
def _conv_transpose2d(b: GraphBuilder, t: Tensor) -> None:
    (ph, pw), attrs = t._attrs["padding"], t._attrs
    b.node("ConvTranspose", b.inputs(t), b.out(t), kernel_shape=list(t._prev[1].shape[2:]),
           strides=list(attrs["stride"]), pads=[ph, pw, ph, pw],
           output_padding=list(attrs["output_padding"]), dilations=[1, 1], group=1)


@register_translation("max_pool2d", "avg_pool2d")
def _pool(b: GraphBuilder, t: Tensor) -> None:
    (ph, pw), attrs = t._attrs["padding"], t._attrs
    common = dict(kernel_shape=list(attrs["kernel_shape"]), strides=list(attrs["stride"]),
                  pads=[ph, pw, ph, pw])
    if t._op == "max_pool2d":
        b.node("MaxPool", b.inputs(t), b.out(t), **common)
    else:
        b.node("AveragePool", b.inputs(t), b.out(t), count_include_pad=1, **common)


@register_translation("batch_norm")
def _batch_norm(b: GraphBuilder, t: Tensor) -> None:
    attrs = t._attrs
    if attrs["training"] or not attrs["has_running_stats"]:
        raise ExportError("batch norm without running statistics cannot be exported: it would "
                          "normalize each inference batch by itself")
    x, *rest = t._prev
    names = [b.name(p) for p in rest]
    channels = x.shape[1]
    scale = names.pop(0) if attrs["has_weight"] else b.constant(
        np.ones(channels, dtype=x.dtype), "bn_scale")
    shift = names.pop(0) if attrs["has_bias"] else b.constant(
        np.zeros(channels, dtype=x.dtype), "bn_shift")
    mean, var = names
    b.node("BatchNormalization", [b.name(x), scale, shift, mean, var], b.out(t),
           epsilon=float(attrs["eps"]))


# ===================================================================== language-model ops
def _reduce_mean(b: GraphBuilder, x: str, axes: list[int]) -> str:
    if b.opset >= 18:
        return b.node("ReduceMean", [x, b.ints(axes, "axes")], keepdims=1)
    return b.node("ReduceMean", [x], axes=axes, keepdims=1)


@register_translation("layer_norm")
def _layer_norm(b: GraphBuilder, t: Tensor) -> None:
    x, *rest = t._prev
    attrs, names = t._attrs, [b.name(p) for p in rest]
    shape = x.shape[attrs["axis"]:]
    scale = names.pop(0) if attrs["has_weight"] else b.constant(np.ones(shape, x.dtype), "ln_scale")
    inputs = [b.name(x), scale] + ([names.pop(0)] if attrs["has_bias"] else [])
    b.node("LayerNormalization", inputs, b.out(t), axis=attrs["axis"], epsilon=attrs["eps"])


@register_translation("rms_norm")
def _rms_norm(b: GraphBuilder, t: Tensor) -> None:
    x = b.name(t._prev[0])
    mean_square = _reduce_mean(b, b.node("Mul", [x, x]), list(t._attrs["axes"]))
    eps = b.constant(np.asarray(t._attrs["eps"], dtype=t.dtype), "rms_eps")
    normalized = b.node("Div", [x, b.node("Sqrt", [b.node("Add", [mean_square, eps])])],
                        None if t._attrs["has_weight"] else b.out(t))
    if t._attrs["has_weight"]:
        b.node("Mul", [normalized, b.name(t._prev[1])], b.out(t))


@register_translation("rotary")
def _rotary(b: GraphBuilder, t: Tensor) -> None:
    x, half = b.name(t._prev[0]), t.shape[-1] // 2
    axis = b.ints([-1], "last_axis")
    first = b.node("Slice", [x, b.ints([0], "starts"), b.ints([half], "ends"), axis])
    second = b.node("Slice", [x, b.ints([half], "starts"), b.ints([INT64_MAX], "ends"), axis])
    rotated = b.node("Concat", [b.node("Neg", [second]), first], axis=-1)
    cos = b.node("Mul", [x, b.constant(t._attrs["cos"], "rope_cos")])
    sin = b.node("Mul", [rotated, b.constant(t._attrs["sin"], "rope_sin")])
    b.node("Add", [cos, sin], b.out(t))


@register_translation("split_heads", "merge_heads")
def _heads(b: GraphBuilder, t: Tensor) -> None:
    """Reshapes that copy N and T (ONNX's 0), so a dynamic context stays dynamic."""
    x = b.name(t._prev[0])
    if t._op == "split_heads":
        heads = t._attrs["heads"]
        split = b.node("Reshape", [x, b.ints([0, 0, heads, t.shape[-1]], "heads_shape")])
        b.node("Transpose", [split], b.out(t), perm=[0, 2, 1, 3])
    else:
        swapped = b.node("Transpose", [x], perm=[0, 2, 1, 3])
        b.node("Reshape", [swapped, b.ints([0, 0, t._attrs["width"]], "merged_shape")], b.out(t))


@register_translation("scaled_dot_product_attention")
def _attention(b: GraphBuilder, t: Tensor) -> None:
    """MatMul, scale, mask with Where(-inf), Softmax, MatMul: standard ops any runtime has.

    The causal mask is a constant lower triangle sliced to the actual lengths, so a dynamic
    context works. Grouped-query heads are reshaped to ``[N, Hk, G, L, E]`` so that each key/value
    head broadcasts over its ``G`` query heads instead of being copied.
    """
    q, k, v, *mask = t._prev
    attrs, groups = t._attrs, t._attrs["groups"]
    qn, kn, vn = b.name(q), b.name(k), b.name(v)
    if groups > 1:
        if q.ndim != 4 or (mask and mask[0].ndim > 2):
            raise ExportError("grouped-query attention exports for [N, H, T, E] inputs with at "
                              "most a [L, S] mask")
        qn = b.node("Reshape", [qn, b.ints([0, k.shape[1], groups, -1, q.shape[-1]], "gqa")])
        unsqueeze_axes = b.ints([2], "gqa_axes")
        kn = b.node("Unsqueeze", [kn, unsqueeze_axes])
        vn = b.node("Unsqueeze", [vn, unsqueeze_axes])
    rank = q.ndim + (1 if groups > 1 else 0)
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    scores = b.node("MatMul", [qn, b.node("Transpose", [kn], perm=perm)])
    scores = b.node("Mul", [scores, b.constant(np.asarray(attrs["scale"], t.dtype), "scale")])
    minus_inf = None
    if attrs["is_causal"] or attrs["mask_kind"] == "bool":
        minus_inf = b.constant(np.asarray(-np.inf, dtype=t.dtype), "minus_inf")
    if attrs["is_causal"]:
        # A dynamic context may grow to the task's largest, so the triangle is cut from one that big.
        size = max(q.shape[-2], k.shape[-2], TINYGPT_MAX_CONTEXT if len(b.dynamic_axes) > 1 else 0)
        masks = b.memo.setdefault("causal_masks", {})  # one initializer for all layers
        if size not in masks:
            masks[size] = b.constant(np.tri(size, size, dtype=bool), "causal_mask")
        triangle = masks[size]
        shape = b.node("Shape", [scores])
        lengths = b.node("Slice", [shape, b.ints([-2], "starts"), b.ints([INT64_MAX], "ends")])
        allowed = b.node("Slice", [triangle, b.ints([0, 0], "starts"), lengths,
                                   b.ints([0, 1], "mask_axes")])
        scores = b.node("Where", [allowed, scores, minus_inf])
    elif attrs["mask_kind"] == "bool":
        scores = b.node("Where", [b.name(mask[0]), scores, minus_inf])
    elif attrs["mask_kind"] == "float":
        scores = b.node("Add", [scores, b.name(mask[0])])
    weights = b.node("Softmax", [scores], axis=-1)
    if groups == 1:
        b.node("MatMul", [weights, vn], b.out(t))
        return
    out = b.node("MatMul", [weights, vn])
    b.node("Reshape", [out, b.ints([0, q.shape[1], -1, v.shape[-1]], "heads")], b.out(t))


# ===================================================================== checks
def _check_task_input(task: str, example: Tensor) -> None:
    from evaluator.tasks import get_task

    spec = get_task(task)
    if str(example.dtype) != spec.input_dtype:
        raise ExportError(f"task {task!r} takes {spec.input_dtype} input; the example input is "
                          f"{example.dtype} (convert it, e.g. Tensor(x, dtype=np.{spec.input_dtype}))")
    expected = spec.input_shape
    if example.ndim != len(expected) or any(
            want is not None and want != got for want, got in zip(expected, example.shape, strict=False)):
        shape = ", ".join("N" if d is None else str(d) for d in expected)
        raise ExportError(f"task {task!r} takes input of shape [{shape}]; the example input has "
                          f"shape {list(example.shape)}")


def _validate_for_task(proto: onnx.ModelProto, task: str) -> None:
    try:
        from evaluator.validation import validate
    except ImportError:  # an evaluator without the validation gate: the signature check stands
        return
    report = validate(proto.SerializeToString(), task)
    if not report.ok:
        raise ExportError(f"the exported model would be refused for task {task!r}:\n"
                          + report.summary())


_FROZEN_HINT = (
    "The usual cause: part of forward() computed with numpy on .data (or wrapped an intermediate "
    "in a new Tensor), which export can only record as a constant from the example batch; use "
    "Tensor operations for everything that depends on the input.")


def _check_against_framework(model: Module, example: Tensor, proto: onnx.ModelProto,
                             output_index: int | None = None,
                             dynamic_axes: dict[int, str] | None = None) -> None:
    """Run the file in onnxruntime at two batch sizes, and one size shorter along every other
    dynamic axis (a graph unrolled over the example's length, an RNN's, fails there); outputs
    must match the framework's."""
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    data = example.data
    batches = [data, np.concatenate([data, data[:1]], axis=0)]  # a second, different batch size
    for axis in sorted(dynamic_axes or {}):
        if axis != 0 and axis < data.ndim and data.shape[axis] > 1:  # shorter stays in range
            batches.append(np.take(data, np.arange(data.shape[axis] - 1), axis=axis))
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            with no_grad():
                expected = _pick_output(model(Tensor(batch, dtype=batch.dtype)),
                                        output_index).data
            try:
                got = session.run(None, {session.get_inputs()[0].name: batch})[0]
            except Exception as error:  # onnxruntime raises its own exception types
                raise ExportError(f"the exported graph fails in onnxruntime at input shape "
                                  f"{list(batch.shape)}: {error}. {_FROZEN_HINT}") from error
            if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-4, atol=1e-4):
                worst = (f"worst difference {np.abs(got - expected).max():.3g}"
                         if got.shape == expected.shape else f"shape {got.shape} instead of "
                         f"{expected.shape}")
                raise ExportError(f"onnxruntime disagrees with the framework at input shape "
                                  f"{list(batch.shape)} ({worst}). {_FROZEN_HINT}")
    finally:
        model.train(was_training)


__all__ = ["DEFAULT_OPSET", "ExportError", "GraphBuilder", "Normalize", "Translation",
           "export_onnx", "register_translation", "with_normalization"]
