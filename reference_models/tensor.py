"""``Tensor``: a numpy array plus the record of the op that made it, for reverse-mode autograd.

Every op builds its result with ``record_op(data, parents, op, backward, **attrs)``. ``backward`` is
a closure that maps the gradient of the result to one gradient per parent (``None`` where a parent
needs none). ``Tensor.backward`` sorts the graph topologically with an explicit stack (no recursion
limit) and walks it once in reverse. ``op`` and ``attrs`` are what ONNX export reads back.

Values stay float32 unless you ask for another dtype: numpy would silently promote to float64 and
halve the speed, so constants are cast to the tensor's dtype before they meet it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from reference_models.autograd import is_grad_enabled, is_tracing
from reference_models.parallel import map_chunks, split_rows

Backward = Callable[[np.ndarray], Sequence["np.ndarray | None"]]
ArrayLike = Any


def _default_array(data: ArrayLike, dtype: Any = None) -> np.ndarray:
    """Floats become float32, integers int64, booleans stay bool; ``dtype`` overrides."""
    if isinstance(data, Tensor):
        data = data.data
    array = np.asarray(data)
    if dtype is not None:
        return array.astype(dtype, copy=False)
    if array.dtype == np.bool_:
        return array
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64, copy=False)
    return array.astype(np.float32, copy=False)


class Tensor:
    """An n-dimensional array that remembers how it was computed, so it can be differentiated."""

    __array_priority__ = 1000  # numpy array <op> Tensor defers to Tensor's reflected operators

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data: np.ndarray = _default_array(data, dtype)
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        if self.requires_grad and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError("only floating point tensors can require gradients")
        self._prev: tuple[Tensor, ...] = ()
        self._op: str | None = None
        self._attrs: dict[str, Any] = {}
        self._backward: Backward | None = None

    @classmethod
    def _wrap(cls, data: np.ndarray) -> Tensor:
        """A result tensor around an array an op just computed (skips ``__init__`` conversions)."""
        out = object.__new__(Tensor)
        out.data, out.grad, out.requires_grad = data, None, False
        out._prev, out._op, out._attrs, out._backward = (), None, {}, None
        return out

    # ----------------------------------------------------------------- plain array facts
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float | int | bool:
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def detach(self) -> Tensor:
        """The same values, cut off from the gradient graph (still part of an exported graph)."""
        return _no_grad_op(self.data, (self,), "detach")

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    def zero_(self) -> Tensor:
        self.data[...] = 0
        return self

    def float(self) -> Tensor:
        return cast(self, np.float32)

    def long(self) -> Tensor:
        return cast(self, np.int64)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({np.array2string(self.data, separator=', ', prefix='tensor(')}{grad})"

    def __hash__(self) -> int:  # tensors are graph nodes: identity, not value, matters
        return id(self)

    # ----------------------------------------------------------------- backward pass
    def backward(self, gradient: ArrayLike | None = None) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
        if not self.requires_grad:
            raise RuntimeError(
                "this tensor does not require grad: nothing it depends on has requires_grad=True, "
                "or it was computed under no_grad()"
            )
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError("backward() without a gradient needs a single-element tensor")
            gradient = np.ones_like(self.data)
        grads: dict[int, np.ndarray] = {id(self): np.asarray(gradient, dtype=self.data.dtype)}
        for node in reversed(topological_order(self, only_requiring_grad=True)):
            grad = grads.pop(id(node), None)
            if grad is None:
                continue
            if node._backward is None:  # a leaf: keep its gradient (a copy, so it owns it)
                grad = np.array(grad, dtype=node.data.dtype).reshape(node.data.shape)
                node.grad = grad if node.grad is None else node.grad + grad
                continue
            for parent, parent_grad in zip(node._prev, node._backward(grad), strict=True):
                if parent_grad is None or not parent.requires_grad:
                    continue
                key = id(parent)
                grads[key] = parent_grad if key not in grads else grads[key] + parent_grad

    # ----------------------------------------------------------------- arithmetic
    def _constant(self, other: ArrayLike) -> Tensor:
        if isinstance(other, Tensor):
            return other
        dtype = self.dtype if np.issubdtype(self.dtype, np.floating) else None
        return Tensor(other, dtype=dtype)

    def __add__(self, other: ArrayLike) -> Tensor:
        return add(self, self._constant(other))

    def __radd__(self, other: ArrayLike) -> Tensor:
        return add(self._constant(other), self)

    def __sub__(self, other: ArrayLike) -> Tensor:
        return sub(self, self._constant(other))

    def __rsub__(self, other: ArrayLike) -> Tensor:
        return sub(self._constant(other), self)

    def __mul__(self, other: ArrayLike) -> Tensor:
        return mul(self, self._constant(other))

    def __rmul__(self, other: ArrayLike) -> Tensor:
        return mul(self._constant(other), self)

    def __truediv__(self, other: ArrayLike) -> Tensor:
        return div(self, self._constant(other))

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        return div(self._constant(other), self)

    def __neg__(self) -> Tensor:
        return neg(self)

    def __pow__(self, exponent: float) -> Tensor:
        return pow(self, exponent)

    def __matmul__(self, other: ArrayLike) -> Tensor:
        return matmul(self, self._constant(other))

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return matmul(self._constant(other), self)

    # Comparisons give boolean tensors without gradients (masks, accuracy).
    def __lt__(self, other: ArrayLike) -> Tensor:
        return _no_grad_op(np.less(self.data, _raw(other)), (self, self._constant(other)), "lt")

    def __le__(self, other: ArrayLike) -> Tensor:
        return _no_grad_op(np.less_equal(self.data, _raw(other)), (self, self._constant(other)),
                           "le")

    def __gt__(self, other: ArrayLike) -> Tensor:
        return _no_grad_op(np.greater(self.data, _raw(other)), (self, self._constant(other)),
                           "gt")

    def __ge__(self, other: ArrayLike) -> Tensor:
        return _no_grad_op(np.greater_equal(self.data, _raw(other)),
                           (self, self._constant(other)), "ge")

    def eq(self, other: ArrayLike) -> Tensor:
        return _no_grad_op(np.equal(self.data, _raw(other)), (self, self._constant(other)), "eq")

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        out = np.argmax(self.data, axis=dim, keepdims=keepdim)
        return _no_grad_op(np.asarray(out), (self,), "argmax", axis=dim, keepdim=keepdim)

    # ----------------------------------------------------------------- methods mirroring torch
    def exp(self) -> Tensor:
        return exp(self)

    def log(self) -> Tensor:
        return log(self)

    def sqrt(self) -> Tensor:
        return sqrt(self)

    def abs(self) -> Tensor:
        return abs(self)

    def relu(self) -> Tensor:
        return relu(self)

    def sigmoid(self) -> Tensor:
        return sigmoid(self)

    def tanh(self) -> Tensor:
        return tanh(self)

    def sum(self, dim: int | Sequence[int] | None = None, keepdim: bool = False, *,
            axis: int | Sequence[int] | None = None, keepdims: bool | None = None) -> Tensor:
        return sum(self, _pick(dim, axis), _pick(keepdim, keepdims))

    def mean(self, dim: int | Sequence[int] | None = None, keepdim: bool = False, *,
             axis: int | Sequence[int] | None = None, keepdims: bool | None = None) -> Tensor:
        return mean(self, _pick(dim, axis), _pick(keepdim, keepdims))

    def max(self, dim: int | Sequence[int] | None = None, keepdim: bool = False, *,
            axis: int | Sequence[int] | None = None, keepdims: bool | None = None) -> Tensor:
        """The largest values along ``dim`` (a tensor, like ``torch.amax``; no indices)."""
        return amax(self, _pick(dim, axis), _pick(keepdim, keepdims))

    amax = max

    def var(self, dim: int | Sequence[int] | None = None, keepdim: bool = False, *,
            unbiased: bool = True, correction: int | None = None,
            axis: int | Sequence[int] | None = None, keepdims: bool | None = None) -> Tensor:
        return var(self, _pick(dim, axis), _pick(keepdim, keepdims),
                   correction=(1 if unbiased else 0) if correction is None else correction)

    def softmax(self, dim: int = -1) -> Tensor:
        return softmax(self, dim)

    def log_softmax(self, dim: int = -1) -> Tensor:
        return log_softmax(self, dim)

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        return reshape(self, _shape_args(shape))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return flatten(self, start_dim, end_dim)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        perm = list(range(self.ndim))
        perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
        return permute(self, perm)

    def permute(self, *dims: int | Sequence[int]) -> Tensor:
        return permute(self, _shape_args(dims))

    @property
    def T(self) -> Tensor:  # noqa: N802 - numpy/torch name
        return permute(self, tuple(reversed(range(self.ndim))))

    def unsqueeze(self, dim: int) -> Tensor:
        return unsqueeze(self, dim)

    def squeeze(self, dim: int | None = None) -> Tensor:
        return squeeze(self, dim)

    def gather(self, dim: int, index: ArrayLike) -> Tensor:
        return gather(self, dim, index)

    def masked_fill(self, mask: ArrayLike, value: float) -> Tensor:
        return where(mask, self._constant(value), self)

    def __getitem__(self, index: Any) -> Tensor:
        return getitem(self, index)


def _raw(x: ArrayLike) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _pick(torch_style: Any, numpy_style: Any) -> Any:
    """Accept PyTorch's ``dim``/``keepdim`` and numpy's ``axis``/``keepdims`` spellings."""
    return torch_style if numpy_style is None else numpy_style


def _shape_args(args: tuple) -> tuple[int, ...]:
    """``x.reshape(2, 3)`` and ``x.reshape((2, 3))`` both work, as in PyTorch."""
    if len(args) == 1 and isinstance(args[0], list | tuple):
        return tuple(args[0])
    return tuple(args)


def _axes(dim: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return tuple(sorted(d % ndim for d in dims))


def as_tensor(x: ArrayLike) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


# ===================================================================== the graph
def record_op(data: np.ndarray, parents: Sequence[Tensor], op: str, backward: Backward,
              **attrs: Any) -> Tensor:
    """Wrap an op's result; remember its parents and backward when a gradient or export needs it."""
    out = Tensor._wrap(data)
    if is_grad_enabled() and any(p.requires_grad for p in parents):
        out.requires_grad = True
        out._backward = backward
    elif not is_tracing():
        return out
    out._prev, out._op, out._attrs = tuple(parents), op, attrs
    return out


def _no_grad_op(data: np.ndarray, parents: Sequence[Tensor], op: str, **attrs: Any) -> Tensor:
    """A result no gradient flows through (masks, indices), still recorded for export, so a
    comparison on the input is not frozen into a constant."""
    out = Tensor._wrap(data)
    if is_tracing():
        out._prev, out._op, out._attrs = tuple(parents), op, attrs
    return out


def cast(a: Tensor, dtype: Any) -> Tensor:
    """``a`` converted to ``dtype``; the gradient flows back between floating point types."""
    data = a.data.astype(dtype)
    if not np.issubdtype(data.dtype, np.floating):
        return _no_grad_op(data, (a,), "cast", dtype=data.dtype)
    return record_op(data, (a,), "cast", lambda g: (g.astype(a.dtype),), dtype=data.dtype)


def topological_order(root: Tensor, only_requiring_grad: bool = False) -> list[Tensor]:
    """Every tensor ``root`` depends on, each after all of its parents (iterative DFS)."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node._prev:
            if id(parent) not in visited and (parent.requires_grad or not only_requiring_grad):
                stack.append((parent, False))
    return order


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes numpy broadcast, giving it back the operand's ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


# ===================================================================== elementwise arithmetic
def add(a: Tensor, b: Tensor) -> Tensor:
    return record_op(a.data + b.data, (a, b), "add",
                     lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)))


def sub(a: Tensor, b: Tensor) -> Tensor:
    return record_op(a.data - b.data, (a, b), "sub",
                     lambda g: (unbroadcast(g, a.shape), unbroadcast(-g, b.shape)))


def mul(a: Tensor, b: Tensor) -> Tensor:
    def backward(g: np.ndarray) -> tuple:
        return (unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
                unbroadcast(g * a.data, b.shape) if b.requires_grad else None)

    return record_op(a.data * b.data, (a, b), "mul", backward)


def div(a: Tensor, b: Tensor) -> Tensor:
    def backward(g: np.ndarray) -> tuple:
        ga = g / b.data
        return (unbroadcast(ga, a.shape) if a.requires_grad else None,
                unbroadcast(-ga * a.data / b.data, b.shape) if b.requires_grad else None)

    return record_op(a.data / b.data, (a, b), "div", backward)


def neg(a: Tensor) -> Tensor:
    return record_op(-a.data, (a,), "neg", lambda g: (-g,))


def pow(a: Tensor, exponent: float) -> Tensor:  # noqa: A001 - mirrors torch.pow
    if isinstance(exponent, Tensor):
        raise TypeError("pow supports a number as exponent; use exp(b * log(a)) for a tensor")
    exponent = float(exponent)
    return record_op(a.data ** exponent, (a,), "pow",
                     lambda g: (g * exponent * a.data ** (exponent - 1),), exponent=exponent)


def exp(a: Tensor) -> Tensor:
    out = np.exp(a.data)
    return record_op(out, (a,), "exp", lambda g: (g * out,))


def log(a: Tensor) -> Tensor:
    return record_op(np.log(a.data), (a,), "log", lambda g: (g / a.data,))


def sqrt(a: Tensor) -> Tensor:
    out = np.sqrt(a.data)
    return record_op(out, (a,), "sqrt", lambda g: (g / (2 * out),))


def abs(a: Tensor) -> Tensor:  # noqa: A001 - mirrors torch.abs
    return record_op(np.abs(a.data), (a,), "abs", lambda g: (g * np.sign(a.data),))


def relu(a: Tensor) -> Tensor:
    x = a.data
    out = np.empty_like(x)  # same memory layout as x (channels-last stays channels-last)
    blocks = split_rows(len(x), x.nbytes) if x.ndim else [...]
    map_chunks(lambda rows: np.maximum(x[rows], 0, out=out[rows]), blocks)

    def backward(g: np.ndarray) -> tuple:
        grad = np.empty_like(g)
        map_chunks(lambda rows: np.multiply(g[rows], out[rows] > 0, out=grad[rows]), blocks)
        return (grad,)

    return record_op(out, (a,), "relu", backward)


def sigmoid(a: Tensor) -> Tensor:
    # exp of a non-positive number never overflows, whatever the sign of a
    e = np.exp(-np.abs(a.data))
    out = np.where(a.data >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
    return record_op(out, (a,), "sigmoid", lambda g: (g * out * (1 - out),))


def tanh(a: Tensor) -> Tensor:
    out = np.tanh(a.data)
    return record_op(out, (a,), "tanh", lambda g: (g * (1 - out * out),))


def erf(x: np.ndarray) -> np.ndarray:
    """Error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7); numpy has none."""
    sign = np.sign(x)
    x = np.abs(x)
    t = 1 / (1 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                          + t * 1.061405429))))
    return (sign * (1 - poly * np.exp(-x * x))).astype(x.dtype, copy=False)


def gelu(a: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) with the exact Gaussian CDF (PyTorch's default) or its tanh approximation."""
    x = a.data
    if approximate == "tanh":
        c = np.sqrt(2 / np.pi).astype(x.dtype)
        inner = c * (x + 0.044715 * (x * x * x))  # x ** 3 is ~500x slower in float32
        t = np.tanh(inner)
        out = 0.5 * x * (1 + t)

        def backward(g: np.ndarray) -> tuple:
            d_inner = c * (1 + 3 * 0.044715 * x * x)
            return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner),)
    elif approximate == "none":
        cdf = 0.5 * (1 + erf(x / np.sqrt(2).astype(x.dtype)))
        out = x * cdf

        def backward(g: np.ndarray) -> tuple:
            pdf = np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi).astype(x.dtype)
            return (g * (cdf + x * pdf),)
    else:
        raise ValueError(f"gelu approximate must be 'none' or 'tanh', not {approximate!r}")
    return record_op(out.astype(x.dtype, copy=False), (a,), "gelu", backward,
                     approximate=approximate)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with numpy's batching rules (leading dims broadcast)."""
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError("matmul needs tensors with at least 2 dimensions; unsqueeze vectors first")

    def backward(g: np.ndarray) -> tuple:
        ga = unbroadcast(g @ np.swapaxes(b.data, -1, -2), a.shape) if a.requires_grad else None
        gb = unbroadcast(np.swapaxes(a.data, -1, -2) @ g, b.shape) if b.requires_grad else None
        return ga, gb

    return record_op(a.data @ b.data, (a, b), "matmul", backward)


# ===================================================================== reductions
def _expand_back(g: np.ndarray, shape: tuple[int, ...], axes: tuple[int, ...],
                 keepdim: bool) -> np.ndarray:
    """Give a reduced gradient its reduced axes back and broadcast it to ``shape``."""
    if not keepdim:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


def sum(a: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    axes = _axes(dim, a.ndim)
    out = np.sum(a.data, axis=axes, keepdims=keepdim)
    return record_op(np.asarray(out), (a,), "sum",
                     lambda g: (_expand_back(g, a.shape, axes, keepdim),),
                     axes=axes, keepdim=keepdim)


def mean(a: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
    axes = _axes(dim, a.ndim)
    count = int(np.prod([a.shape[i] for i in axes]))
    out = np.mean(a.data, axis=axes, keepdims=keepdim)
    return record_op(np.asarray(out), (a,), "mean",
                     lambda g: (_expand_back(g / count, a.shape, axes, keepdim),),
                     axes=axes, keepdim=keepdim)


def amax(a: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
    axes = _axes(dim, a.ndim)
    out = np.amax(a.data, axis=axes, keepdims=True)

    def backward(g: np.ndarray) -> tuple:
        # ties share the gradient equally, like torch.amax
        is_max = a.data == out
        share = is_max / is_max.sum(axis=axes, keepdims=True)
        return (_expand_back(g, a.shape, axes, keepdim) * share.astype(a.dtype),)

    result = out if keepdim else np.squeeze(out, axis=axes)
    return record_op(np.asarray(result), (a,), "amax", backward, axes=axes, keepdim=keepdim)


def var(a: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False,
        correction: int = 1) -> Tensor:
    """Variance, built from primitive ops (so export needs nothing new)."""
    axes = _axes(dim, a.ndim)
    count = int(np.prod([a.shape[i] for i in axes]))
    centered = a - mean(a, axes, keepdim=True)
    return sum(centered * centered, axes, keepdim) / float(max(count - correction, 1))


def softmax(a: Tensor, dim: int = -1) -> Tensor:
    shifted = a.data - a.data.max(axis=dim, keepdims=True)  # no overflow in exp
    e = np.exp(shifted)
    out = e / e.sum(axis=dim, keepdims=True)

    def backward(g: np.ndarray) -> tuple:
        return (out * (g - (g * out).sum(axis=dim, keepdims=True)),)

    return record_op(out, (a,), "softmax", backward, axis=dim % a.ndim)


def log_softmax(a: Tensor, dim: int = -1) -> Tensor:
    shifted = a.data - a.data.max(axis=dim, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))

    def backward(g: np.ndarray) -> tuple:
        return (g - np.exp(out) * g.sum(axis=dim, keepdims=True),)

    return record_op(out, (a,), "log_softmax", backward, axis=dim % a.ndim)


# ===================================================================== shapes
def reshape(a: Tensor, shape: Sequence[int]) -> Tensor:
    out = a.data.reshape(shape)
    return record_op(out, (a,), "reshape", lambda g: (g.reshape(a.shape),), shape=out.shape)


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    start, end = start_dim % max(a.ndim, 1), end_dim % max(a.ndim, 1)
    shape = a.shape[:start] + (int(np.prod(a.shape[start:end + 1])),) + a.shape[end + 1:]
    out = a.data.reshape(shape)
    return record_op(out, (a,), "flatten", lambda g: (g.reshape(a.shape),),
                     start_dim=start, end_dim=end)


def permute(a: Tensor, dims: Sequence[int]) -> Tensor:
    dims = tuple(d % a.ndim for d in dims)
    inverse = tuple(np.argsort(dims))
    return record_op(a.data.transpose(dims), (a,), "permute",
                     lambda g: (g.transpose(inverse),), perm=dims)


def unsqueeze(a: Tensor, dim: int) -> Tensor:
    dim = dim % (a.ndim + 1)
    return record_op(np.expand_dims(a.data, dim), (a,), "unsqueeze",
                     lambda g: (g.reshape(a.shape),), axes=(dim,))


def squeeze(a: Tensor, dim: int | None = None) -> Tensor:
    if dim is None:
        axes = tuple(i for i, n in enumerate(a.shape) if n == 1)
    else:
        axes = (dim % a.ndim,) if a.shape[dim] == 1 else ()
    return record_op(np.squeeze(a.data, axis=axes), (a,), "squeeze",
                     lambda g: (g.reshape(a.shape),), axes=axes)


def _is_basic_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, int | slice | type(None)) or i is Ellipsis for i in items)


def getitem(a: Tensor, index: Any) -> Tensor:
    """``a[index]``: slices, ints, and integer/boolean arrays (gradients scatter back)."""
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    basic = _is_basic_index(index)

    def backward(g: np.ndarray) -> tuple:
        full = np.zeros(a.shape, dtype=g.dtype)
        if basic:
            full[index] = g  # basic indexing never picks an element twice
        else:
            np.add.at(full, index, g)  # repeated indices must accumulate
        return (full,)

    return record_op(a.data[index], (a,), "getitem", backward, index=index)


def gather(a: Tensor, dim: int, index: ArrayLike) -> Tensor:
    """``out[i][j] = a[i][index[i][j]]`` along ``dim`` (torch.gather)."""
    idx = np.asarray(index.data if isinstance(index, Tensor) else index, dtype=np.int64)
    dim = dim % a.ndim

    def backward(g: np.ndarray) -> tuple:
        full = np.zeros(a.shape, dtype=g.dtype)
        grid = list(np.indices(idx.shape, sparse=True))
        grid[dim] = idx
        np.add.at(full, tuple(grid), g)
        return (full, None)

    out = np.take_along_axis(a.data, idx, axis=dim)
    return record_op(out, (a, Tensor(idx)), "gather", backward, axis=dim)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    tensors = [as_tensor(t) for t in tensors]
    dim = dim % tensors[0].ndim
    bounds = np.cumsum([t.shape[dim] for t in tensors])[:-1]
    out = np.concatenate([t.data for t in tensors], axis=dim)
    return record_op(out, tensors, "cat", lambda g: tuple(np.split(g, bounds, axis=dim)), axis=dim)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    tensors = [as_tensor(t) for t in tensors]
    dim = dim % (tensors[0].ndim + 1)
    out = np.stack([t.data for t in tensors], axis=dim)
    return record_op(out, tensors, "stack",
                     lambda g: tuple(np.moveaxis(g, dim, 0)), axis=dim)


def where(condition: ArrayLike, a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elements of ``a`` where ``condition`` holds, of ``b`` elsewhere (no gradient to the mask)."""
    cond = as_tensor(condition)
    if cond.dtype != np.bool_:
        cond = Tensor(cond.data.astype(bool))
    ref = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    a = ref._constant(a) if ref is not None else as_tensor(a)
    b = ref._constant(b) if ref is not None else as_tensor(b)
    mask = cond.data

    def backward(g: np.ndarray) -> tuple:
        return (None, unbroadcast(np.where(mask, g, 0), a.shape),
                unbroadcast(np.where(mask, 0, g), b.shape))

    return record_op(np.where(mask, a.data, b.data), (cond, a, b), "where", backward)


# ===================================================================== constructors
def tensor(data: ArrayLike, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    return Tensor(np.array(data.data if isinstance(data, Tensor) else data), requires_grad, dtype)


def zeros(*shape: int | Sequence[int], requires_grad: bool = False, dtype: Any = np.float32) -> Tensor:
    return Tensor(np.zeros(_shape_args(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape: int | Sequence[int], requires_grad: bool = False, dtype: Any = np.float32) -> Tensor:
    return Tensor(np.ones(_shape_args(shape), dtype=dtype), requires_grad=requires_grad)


def randn(*shape: int | Sequence[int], requires_grad: bool = False,
          generator: np.random.Generator | None = None) -> Tensor:
    from reference_models.random import get_generator

    data = get_generator(generator).standard_normal(_shape_args(shape), dtype=np.float32)
    return Tensor(data, requires_grad=requires_grad)


def rand(*shape: int | Sequence[int], requires_grad: bool = False,
         generator: np.random.Generator | None = None) -> Tensor:
    from reference_models.random import get_generator

    data = get_generator(generator).random(_shape_args(shape), dtype=np.float32)
    return Tensor(data, requires_grad=requires_grad)


def arange(*args: int, dtype: Any = np.int64) -> Tensor:
    return Tensor(np.arange(*args), dtype=dtype)


def zeros_like(t: Tensor) -> Tensor:
    return Tensor(np.zeros_like(t.data))


def ones_like(t: Tensor) -> Tensor:
    return Tensor(np.ones_like(t.data))


