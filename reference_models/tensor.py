"""``Tensor``: a numpy array plus the record of the op that made it, for reverse-mode autograd.

Every op builds its result with ``record_op(data, parents, op, backward, **attrs)``. ``backward`` is
a closure that maps the gradient of the result to one gradient per parent (``None`` where a parent
needs none). ``Tensor.backward`` sorts the graph topologically with an explicit stack (no recursion
limit) and walks it once in reverse. ``op`` and ``attrs`` are what ONNX export reads back.

Values stay float32 unless you ask for another dtype: numpy would silently promote to float64 and
halve the speed, so constants are cast to the tensor's dtype before they meet it.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from reference_models.grad_mode import is_grad_enabled, is_tracing
from reference_models.parallel import map_chunks, split_rows
from reference_models.random import get_generator

Backward = Callable[[np.ndarray], Sequence["np.ndarray | None"]]
ArrayLike = Any


def _default_array(data: ArrayLike, dtype: Any = None) -> np.ndarray:
    """Floats become float32, integers int64, booleans stay bool; ``dtype`` overrides."""
    if isinstance(data, Tensor):
        data = data.data
    array = np.asarray(data)
    if dtype is not None:
        return array.astype(dtype, copy=False)
    kind = array.dtype.kind
    if kind == "b":
        return array
    if kind in "iu":
        return array.astype(np.int64, copy=False)
    return array.astype(np.float32, copy=False)


class _Version:
    """How often a tensor's memory was changed in place (PyTorch's version counter).

    Every op remembers its parents' versions; ``backward`` refuses to use a tensor that was changed
    in place afterwards, because its saved values are gone. Views share their base's counter.
    """

    __slots__ = ("value", "shared")

    def __init__(self, value: int = 0) -> None:
        self.value, self.shared = value, False


class TensorData(np.ndarray):
    """The numpy array behind a parameter or a gradient (``p.data``, ``p.grad.data``).

    A plain numpy array in every respect, plus PyTorch's in-place methods, so the classic
    ``m.weight.data.normal_(0, 0.02)`` and ``p.grad.data.zero_()`` work. Arithmetic on it gives
    plain arrays (``__array_wrap__``), so the subclass never spreads through a model's ops.
    """

    def __array_wrap__(self, arr: np.ndarray, context: Any = None,
                       return_scalar: bool = False) -> Any:
        if arr is self:  # an in-place ufunc (p.data -= step) keeps the parameter's array
            return self
        arr = arr.view(np.ndarray)
        return arr[()] if return_scalar else arr

    def zero_(self) -> TensorData:
        self[...] = 0
        return self

    def fill_(self, value: float) -> TensorData:
        self[...] = _raw(value)
        return self

    def copy_(self, src: ArrayLike) -> TensorData:
        np.copyto(self, np.asarray(_raw(src)), casting="unsafe")
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0, *,
                generator: np.random.Generator | None = None) -> TensorData:
        self[...] = _random_like(self.shape, "normal", mean, std, generator)
        return self

    def uniform_(self, a: float = 0.0, b: float = 1.0, *,
                 generator: np.random.Generator | None = None, **bounds: float) -> TensorData:
        a, b = bounds.get("from", a), bounds.get("to", b)  # PyTorch's keywords are from= / to=
        self[...] = _random_like(self.shape, "uniform", a, b, generator)
        return self

    def add_(self, other: ArrayLike, *, alpha: float = 1) -> TensorData:
        np.add(self, np.multiply(_raw(other), alpha) if alpha != 1 else _raw(other), out=self,
               casting="same_kind")
        return self

    def mul_(self, other: ArrayLike) -> TensorData:
        np.multiply(self, _raw(other), out=self, casting="same_kind")
        return self

    def clamp_(self, min: float | None = None, max: float | None = None) -> TensorData:  # noqa: A002
        np.clip(self, min, max, out=self)
        return self

    def clone(self) -> Tensor:
        return Tensor(np.array(self))


def _random_like(shape: tuple[int, ...], kind: str, a: float, b: float,
                 generator: np.random.Generator | None) -> np.ndarray:
    rng = get_generator(generator)
    return rng.normal(a, b, shape) if kind == "normal" else rng.uniform(a, b, shape)


class ValuesIndices(NamedTuple):
    """What ``max(dim)``, ``min(dim)``, ``sort`` and ``topk`` return, like ``torch.return_types``:
    unpack it (``values, indices = x.max(1)``) or read ``.values`` / ``.indices``."""

    values: Tensor
    indices: Tensor


_LEAF_IN_PLACE = ("a leaf Variable that requires grad is being used in an in-place operation "
                  "(as in PyTorch): update parameters inside `with no_grad():`, or use "
                  "`p.data`")


class Tensor:
    """An n-dimensional array that remembers how it was computed, so it can be differentiated."""

    __array_priority__ = 1000  # numpy array <op> Tensor defers to Tensor's reflected operators

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data: np.ndarray = _default_array(data, dtype)
        self._grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        if self.requires_grad and self.data.dtype.kind != "f":
            raise TypeError("only floating point tensors can require gradients")
        self._prev: tuple[Tensor, ...] = ()
        self._op: str | None = None
        self._attrs: dict[str, Any] = {}
        self._backward: Backward | None = None
        self._version = _Version()
        self._saved: tuple[int, ...] | None = None

    @classmethod
    def _wrap(cls, data: np.ndarray) -> Tensor:
        """A result tensor around an array an op just computed (skips ``__init__`` conversions)."""
        out = object.__new__(Tensor)
        out.data, out._grad, out.requires_grad = data, None, False
        out._prev, out._op, out._attrs, out._backward = (), None, {}, None
        out._version, out._saved = _Version(), None
        return out

    # ----------------------------------------------------------------- the gradient
    @property
    def grad(self) -> Tensor | None:
        """d(loss)/d(self) after ``backward()``: a tensor (``p.grad.zero_()`` works), or None."""
        return self._grad

    @grad.setter
    def grad(self, value: ArrayLike | None) -> None:
        if value is None:
            self._grad = None
            return
        array = np.asarray(_raw(value), dtype=self.data.dtype)
        if array.shape != self.data.shape:
            raise RuntimeError(f"assigned grad has shape {list(array.shape)}, the tensor has "
                               f"{list(self.data.shape)}")
        self._grad = value if isinstance(value, Tensor) and value.dtype == self.dtype else (
            _gradient_tensor(array))

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
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __contains__(self, element: ArrayLike) -> bool:
        return bool(np.any(self.data == _raw(element)))

    def numpy(self) -> np.ndarray:
        """The tensor's memory as a numpy array (shared, not copied)."""
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        return self.data if type(self.data) is np.ndarray else self.data.view(np.ndarray)

    def new_zeros(self, *size: int | Sequence[int], dtype: Any = None) -> Tensor:
        return Tensor(np.zeros(_shape_args(size), dtype=dtype or self.dtype))

    def new_ones(self, *size: int | Sequence[int], dtype: Any = None) -> Tensor:
        return Tensor(np.ones(_shape_args(size), dtype=dtype or self.dtype))

    def new_full(self, size: Sequence[int], fill_value: float, *, dtype: Any = None) -> Tensor:
        return Tensor(np.full(tuple(size), fill_value, dtype=dtype or self.dtype))

    def new_tensor(self, data: ArrayLike, *, dtype: Any = None) -> Tensor:
        return Tensor(np.array(_raw(data)), dtype=dtype or self.dtype)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(t)`` is the tensor's array (numpy functions accept tensors)."""
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def _one_value(self, what: str) -> Any:
        if self.data.size != 1:
            raise RuntimeError(f"{what} of a tensor with {self.data.size} elements is ambiguous "
                               "(as in PyTorch): use .any(), .all() or index one element")
        return self.data.item()

    def item(self) -> float | int | bool:
        if self.data.size != 1:
            raise RuntimeError(f"a Tensor with {self.data.size} elements cannot be converted to "
                               "a Python scalar (item() needs exactly one element)")
        return self.data.item()

    def __bool__(self) -> bool:
        return bool(self._one_value("Boolean value"))

    def __int__(self) -> int:
        return int(self._one_value("int()"))

    def __float__(self) -> float:
        return float(self._one_value("float()"))

    def __index__(self) -> int:
        if not (np.issubdtype(self.dtype, np.integer) and self.data.size == 1):
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        return int(self.data.item())

    def __format__(self, spec: str) -> str:
        if self.data.ndim == 0:  # f"{loss:.3f}" formats the number, as in PyTorch
            return format(self.data.item(), spec)
        return object.__format__(self, spec)

    def tolist(self) -> Any:
        return self.data.tolist()

    def detach(self) -> Tensor:
        """The same values, cut off from the gradient graph (still part of an exported graph)."""
        return _share_version(_no_grad_op(self.data, (self,), "detach"), self)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    def float(self) -> Tensor:
        return cast(self, np.float32)

    def double(self) -> Tensor:
        return cast(self, np.float64)

    def long(self) -> Tensor:
        return cast(self, np.int64)

    def int(self) -> Tensor:
        return cast(self, np.int32)

    def bool(self) -> Tensor:
        return cast(self, np.bool_)

    def type(self, dtype: Any = None) -> Any:
        return str(self.dtype) if dtype is None else cast(self, dtype)

    def clone(self) -> Tensor:
        """A copy with its own memory; the gradient flows back to the original."""
        # recorded as "detach" because it exports the same way (Identity); unlike detach it has a
        # backward, so gradients reach the original
        return record_op(self.data.copy(), (self,), "detach", lambda g: (g,))

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({np.array2string(self.data, separator=', ', prefix='tensor(')}{grad})"

    def __hash__(self) -> int:  # tensors are graph nodes: sets and dicts use identity, as torch
        return id(self)

    # ----------------------------------------------------------------- backward pass
    def backward(self, gradient: ArrayLike | None = None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs: Sequence[Tensor] | None = None) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        The graph is kept after a backward (``retain_graph`` is accepted and changes nothing).
        """
        if create_graph:
            raise NotImplementedError("backward(create_graph=True) (gradients of gradients) is "
                                      "not supported")
        grads = run_backward(self, gradient, inputs)
        for leaf, grad in grads.values():
            if leaf._grad is None:
                leaf._grad = _gradient_tensor(np.array(grad))  # a copy: the leaf owns it
            else:
                leaf._grad.data += grad

    # ----------------------------------------------------------------- arithmetic
    def _constant(self, other: ArrayLike) -> Tensor:
        """A Python number or array meeting this tensor, with PyTorch's dtype for the pair: it takes
        a float tensor's dtype, an int tensor keeps its dtype with a Python int, and a Python
        float makes float32 (numpy would make float64 and halve the speed)."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, list | tuple):  # PyTorch accepts tensors and numbers only
            raise TypeError(f"unsupported operand type for a Tensor op: {type(other).__name__} "
                            "(wrap it in tensor(...) first)")
        kind = self.data.dtype.kind  # dtype.kind: much cheaper than np.issubdtype per op
        dtype = None
        if kind == "f" or kind in "iu" and isinstance(other, builtins.int) and (
                not isinstance(other, builtins.bool)):
            dtype = self.data.dtype
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

    def __floordiv__(self, other: ArrayLike) -> Tensor:
        return floor_divide(self, self._constant(other))

    def __rfloordiv__(self, other: ArrayLike) -> Tensor:
        return floor_divide(self._constant(other), self)

    def __mod__(self, other: ArrayLike) -> Tensor:
        return remainder(self, self._constant(other))

    def __rmod__(self, other: ArrayLike) -> Tensor:
        return remainder(self._constant(other), self)

    def __neg__(self) -> Tensor:
        if self.dtype == np.bool_:
            raise TypeError("negation, the `-` operator, on a bool tensor is not supported "
                            "(as in PyTorch): use `~` or logical_not()")
        return neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return abs(self)

    def __pow__(self, exponent: ArrayLike) -> Tensor:
        return pow(self, exponent)

    def __rpow__(self, base: ArrayLike) -> Tensor:
        return pow(self._constant(base), self)

    def __matmul__(self, other: ArrayLike) -> Tensor:
        return matmul(self, self._constant(other))

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return matmul(self._constant(other), self)

    # Logical and bitwise operators: no gradients (masks).
    def __and__(self, other: ArrayLike) -> Tensor:
        return _bitwise(np.bitwise_and, self, self._constant(other), "and")

    __rand__ = __and__

    def __or__(self, other: ArrayLike) -> Tensor:
        return _bitwise(np.bitwise_or, self, self._constant(other), "or")

    __ror__ = __or__

    def __xor__(self, other: ArrayLike) -> Tensor:
        return _bitwise(np.bitwise_xor, self, self._constant(other), "xor")

    __rxor__ = __xor__

    def __invert__(self) -> Tensor:
        if np.issubdtype(self.dtype, np.floating):
            raise TypeError("~ (bitwise_not) is only for bool and integer tensors, as in PyTorch")
        return _no_grad_op(np.invert(self.data), (self,), "not")

    def logical_not(self) -> Tensor:
        return _no_grad_op(np.logical_not(self.data), (self,), "not")

    # Comparisons give boolean tensors without gradients (masks, accuracy), elementwise as in
    # PyTorch: ``a == b`` is a tensor, never one Python bool. Use ``torch.equal`` semantics via
    # ``equal(a, b)``; tensors stay hashable by identity (``__hash__`` above).
    def _compare(self, fn: Callable, other: ArrayLike, op: str) -> Tensor:
        try:
            other_t = self._constant(other)
        except (TypeError, ValueError):  # not array-like: let the other side try (pytest.approx)
            return NotImplemented
        return _no_grad_op(fn(self.data, other_t.data), (self, other_t), op)

    def __eq__(self, other: ArrayLike) -> Tensor:  # type: ignore[override]
        return self._compare(np.equal, other, "eq")

    def __ne__(self, other: ArrayLike) -> Tensor:  # type: ignore[override]
        return self._compare(np.not_equal, other, "ne")

    def __lt__(self, other: ArrayLike) -> Tensor:
        return self._compare(np.less, other, "lt")

    def __le__(self, other: ArrayLike) -> Tensor:
        return self._compare(np.less_equal, other, "le")

    def __gt__(self, other: ArrayLike) -> Tensor:
        return self._compare(np.greater, other, "gt")

    def __ge__(self, other: ArrayLike) -> Tensor:
        return self._compare(np.greater_equal, other, "ge")

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def equal(self, other: Tensor) -> bool:
        return equal(self, other)

    def allclose(self, other: ArrayLike, rtol: float = 1e-05, atol: float = 1e-08) -> bool:
        return bool(np.allclose(self.data, _raw(other), rtol=rtol, atol=atol))

    def isnan(self) -> Tensor:
        return _no_grad_op(np.isnan(self.data), (self,), "isnan")

    # ``axis``/``keepdims``/``out=None`` below let numpy's np.sum(t), np.all(t)... call these
    def any(self, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None,
            keepdims: bool | None = None, out: None = None) -> Tensor:
        result = np.any(self.data, axis=_pick(dim, axis), keepdims=_pick(keepdim, keepdims))
        return _no_grad_op(np.asarray(result), (self,), "any")

    def all(self, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None,
            keepdims: bool | None = None, out: None = None) -> Tensor:
        result = np.all(self.data, axis=_pick(dim, axis), keepdims=_pick(keepdim, keepdims))
        return _no_grad_op(np.asarray(result), (self,), "all")

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        out = np.argmax(self.data, axis=dim, keepdims=keepdim)
        return _no_grad_op(np.asarray(out), (self,), "argmax", axis=dim, keepdim=keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        out = np.argmin(self.data, axis=dim, keepdims=keepdim)
        return _no_grad_op(np.asarray(out), (self,), "argmin", axis=dim, keepdim=keepdim)

    # ----------------------------------------------------------------- in place
    # PyTorch's rules: an in-place op changes the tensor itself (and so every view of it and
    # every module holding it); on a leaf that requires grad it is an error unless gradients are
    # off (``with no_grad(): w -= lr * w.grad`` updates the parameter); inside a graph the tensor
    # becomes the op's result, and ops that used its old value refuse to backward.
    def _in_place(self, others: Sequence[Tensor], fn: Callable[[Tensor], Tensor],
                  kernel: Callable[[np.ndarray], Any] | None = None) -> Tensor:
        grad_on = is_grad_enabled()
        if grad_on and self.requires_grad and self._backward is None:
            raise RuntimeError(_LEAF_IN_PLACE)
        if is_tracing() or grad_on and (self.requires_grad or builtins.any(
                t.requires_grad for t in others)):
            return self._become(fn, others)
        if kernel is not None:
            kernel(self.data)
        else:
            result = fn(self).data
            if result.shape != self.shape and np.broadcast_shapes(result.shape, self.shape) \
                    != self.shape:
                raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the "
                                   f"broadcast shape {list(result.shape)}")
            np.copyto(self.data, result, casting="same_kind")
        self._version.value += 1
        return self

    def _become(self, fn: Callable[[Tensor], Tensor], others: Sequence[Tensor] = ()) -> Tensor:
        """In-place inside a graph: the tensor object becomes a new node computed from its old
        value (kept in a new node), as PyTorch rebases history."""
        if self._version.shared:
            raise NotImplementedError(
                "in-place operations on a view (or a viewed tensor) inside an autograd graph "
                "are not supported: write y = y + x instead of y += x")
        old = Tensor._wrap(self.data)
        old.requires_grad, old._prev, old._op = self.requires_grad, self._prev, self._op
        old._attrs, old._backward = self._attrs, self._backward
        old._version, old._saved = self._version, self._saved
        _rebase_references(others, self, old)
        result = fn(old)
        if result.shape != self.shape:
            raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the "
                               f"broadcast shape {list(result.shape)}")
        if result.dtype != self.dtype:
            if not np.can_cast(result.dtype, self.dtype, "same_kind"):
                raise RuntimeError(f"result type {result.dtype} can't be cast to the desired "
                                   f"output type {self.dtype}")
            result = cast(result, self.dtype)
        self.data, self.requires_grad = result.data, result.requires_grad
        self._prev, self._op, self._attrs = result._prev, result._op, result._attrs
        self._backward, self._saved = result._backward, result._saved
        # a new counter one ahead: ops that saved the old value see a change and refuse
        self._version = _Version(old._version.value + 1)
        if self._saved is not None:
            self._saved = (*self._saved[:-1], self._version.value)
        return self

    def __iadd__(self, other: ArrayLike) -> Tensor:
        return self.add_(other)

    def __isub__(self, other: ArrayLike) -> Tensor:
        return self.sub_(other)

    def __imul__(self, other: ArrayLike) -> Tensor:
        return self.mul_(other)

    def __itruediv__(self, other: ArrayLike) -> Tensor:
        return self.div_(other)

    def add_(self, other: ArrayLike, *, alpha: float = 1) -> Tensor:
        b = self._constant(other)
        b = b if alpha == 1 else b * alpha
        return self._in_place((b,), lambda a: add(a, b),
                              lambda x: np.add(x, b.data, out=x, casting="same_kind"))

    def sub_(self, other: ArrayLike, *, alpha: float = 1) -> Tensor:
        b = self._constant(other)
        b = b if alpha == 1 else b * alpha
        return self._in_place((b,), lambda a: sub(a, b),
                              lambda x: np.subtract(x, b.data, out=x, casting="same_kind"))

    def mul_(self, other: ArrayLike) -> Tensor:
        b = self._constant(other)
        return self._in_place((b,), lambda a: mul(a, b),
                              lambda x: np.multiply(x, b.data, out=x, casting="same_kind"))

    def div_(self, other: ArrayLike) -> Tensor:
        b = self._constant(other)
        return self._in_place((b,), lambda a: div(a, b))

    def pow_(self, exponent: ArrayLike) -> Tensor:
        return self._in_place((), lambda a: pow(a, exponent))

    def clamp_(self, min: ArrayLike | None = None, max: ArrayLike | None = None) -> Tensor:  # noqa: A002
        return self._in_place((), lambda a: clamp(a, min, max))

    def masked_fill_(self, mask: ArrayLike, value: ArrayLike) -> Tensor:
        return self._in_place((), lambda a: a.masked_fill(mask, value))

    def _filled(self, values: ArrayLike) -> Tensor:
        """``self`` with every element replaced (the gradient to the old values is zero)."""
        return self._in_place((), lambda a: where(np.ones(a.shape, dtype=bool),
                                                  a._constant(values), a))

    def fill_(self, value: ArrayLike) -> Tensor:
        if isinstance(value, Tensor) and value.data.size != 1:
            raise RuntimeError("fill_ only supports 0-dimension value tensor")
        return self._filled(_raw(value))

    def zero_(self) -> Tensor:
        return self._filled(0)

    def copy_(self, src: ArrayLike) -> Tensor:
        src = as_tensor(src)
        values = src if src.dtype == self.dtype else cast(src, self.dtype)
        return self._in_place((src,), lambda a: where(np.ones(a.shape, dtype=bool), values, a))

    def normal_(self, mean: float = 0.0, std: float = 1.0, *,
                generator: np.random.Generator | None = None) -> Tensor:
        return self._filled(_random_like(self.shape, "normal", mean, std, generator)
                            .astype(self.dtype))

    def uniform_(self, a: float = 0.0, b: float = 1.0, *,
                 generator: np.random.Generator | None = None, **bounds: float) -> Tensor:
        a, b = bounds.get("from", a), bounds.get("to", b)  # PyTorch's keywords are from= / to=
        return self._filled(_random_like(self.shape, "uniform", a, b, generator)
                            .astype(self.dtype))

    def __setitem__(self, index: Any, value: ArrayLike) -> None:
        """``x[mask] = 0``, ``x[:, 0] = y``: assignment into the tensor (in place)."""
        b = self._constant(value)
        idx = _index_data(index)

        def kernel(x: np.ndarray) -> None:
            x[idx] = b.data

        mask = (index,) if isinstance(index, Tensor) else ()
        self._in_place((b, *mask), lambda a: setitem(a, index, b), kernel)

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
            axis: int | Sequence[int] | None = None, keepdims: bool | None = None,
            dtype: Any = None, out: None = None) -> Tensor:
        result = sum(self, _pick(dim, axis), _pick(keepdim, keepdims))
        return result if dtype is None else cast(result, dtype)

    def mean(self, dim: int | Sequence[int] | None = None, keepdim: bool = False, *,
             axis: int | Sequence[int] | None = None, keepdims: bool | None = None,
             dtype: Any = None, out: None = None) -> Tensor:
        source = self if dtype is None else cast(self, dtype)
        if not np.issubdtype(source.dtype, np.floating):
            raise RuntimeError(f"mean() needs a floating point tensor, got {self.dtype} (as in "
                               "PyTorch): call .float() first")
        return mean(source, _pick(dim, axis), _pick(keepdim, keepdims))

    def max(self, dim: int | Tensor | None = None, keepdim: bool = False, *,
            axis: int | None = None, keepdims: bool | None = None,
            out: None = None) -> Tensor | ValuesIndices:
        """``x.max()``: the largest value; ``x.max(dim)``: ``(values, indices)`` along ``dim``;
        ``x.max(other)``: the elementwise maximum. As ``torch.max``."""
        return _max_min(self, _pick(dim, axis), _pick(keepdim, keepdims), largest=True)

    def min(self, dim: int | Tensor | None = None, keepdim: bool = False, *,
            axis: int | None = None, keepdims: bool | None = None,
            out: None = None) -> Tensor | ValuesIndices:
        """As ``max``, for the smallest values."""
        return _max_min(self, _pick(dim, axis), _pick(keepdim, keepdims), largest=False)

    def amax(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        """The largest values over ``dim`` (one or several dims), no indices; ties share the
        gradient."""
        return amax(self, dim, keepdim)

    def amin(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        return neg(amax(neg(self), dim, keepdim))

    def sort(self, dim: int = -1, descending: bool = False,
             stable: bool = False) -> ValuesIndices:
        return sort(self, dim, descending)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
        return sort(self, dim, descending).indices

    def topk(self, k: int, dim: int = -1, largest: bool = True,
             sorted: bool = True) -> ValuesIndices:  # noqa: A002 - torch's name
        return topk(self, k, dim, largest, sorted)

    def maximum(self, other: ArrayLike) -> Tensor:
        return maximum(self, self._constant(other))

    def minimum(self, other: ArrayLike) -> Tensor:
        return minimum(self, self._constant(other))

    def clamp(self, min: ArrayLike | None = None, max: ArrayLike | None = None) -> Tensor:  # noqa: A002
        return clamp(self, min, max)

    clip = clamp

    def pow(self, exponent: ArrayLike) -> Tensor:
        return pow(self, exponent)

    def t(self) -> Tensor:
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                               f"{self.ndim}D")
        return self if self.ndim < 2 else self.transpose(0, 1)

    def view_as(self, other: Tensor) -> Tensor:
        return self.reshape(other.shape)

    def reshape_as(self, other: Tensor) -> Tensor:
        return self.reshape(other.shape)

    def type_as(self, other: Tensor) -> Tensor:
        return self if self.dtype == other.dtype else cast(self, other.dtype)

    def contiguous(self) -> Tensor:
        """A no-op: numpy computes on any memory layout."""
        return self

    def std(self, dim: int | Sequence[int] | None = None, keepdim: bool = False, *,
            unbiased: bool = True, correction: int | None = None) -> Tensor:
        return sqrt(self.var(dim, keepdim, unbiased=unbiased, correction=correction))

    def prod(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return prod(self, dim, keepdim)

    def cumsum(self, dim: int) -> Tensor:
        return cumsum(self, dim)

    def norm(self, p: float = 2, dim: int | Sequence[int] | None = None,
             keepdim: bool = False) -> Tensor:
        return norm(self, p, dim, keepdim)

    def logsumexp(self, dim: int | Sequence[int], keepdim: bool = False) -> Tensor:
        return logsumexp(self, dim, keepdim)

    def sin(self) -> Tensor:
        return sin(self)

    def cos(self) -> Tensor:
        return cos(self)

    def floor(self) -> Tensor:
        return _no_grad_op(np.floor(self.data), (self,), "floor")

    def ceil(self) -> Tensor:
        return _no_grad_op(np.ceil(self.data), (self,), "ceil")

    def round(self) -> Tensor:  # numpy and PyTorch both round half to even
        return _no_grad_op(np.round(self.data), (self,), "round")

    def sign(self) -> Tensor:
        return _no_grad_op(np.sign(self.data), (self,), "sign")

    def rsqrt(self) -> Tensor:
        return div(self._constant(1.0), sqrt(self))

    def reciprocal(self) -> Tensor:
        return div(self._constant(1.0), self)

    def square(self) -> Tensor:
        return mul(self, self)

    def neg(self) -> Tensor:
        return -self

    def add(self, other: ArrayLike, *, alpha: float = 1) -> Tensor:
        return self + (other if alpha == 1 else self._constant(other) * alpha)

    def sub(self, other: ArrayLike, *, alpha: float = 1) -> Tensor:
        return self - (other if alpha == 1 else self._constant(other) * alpha)

    def mul(self, other: ArrayLike) -> Tensor:
        return self * other

    def div(self, other: ArrayLike) -> Tensor:
        return self / other

    def matmul(self, other: ArrayLike) -> Tensor:
        return self @ other

    def mm(self, other: Tensor) -> Tensor:
        if self.ndim != 2 or other.ndim != 2:
            raise RuntimeError("mm: both arguments must be 2-D matrices (use matmul for batches)")
        return matmul(self, other)

    def dot(self, other: Tensor) -> Tensor:
        if self.ndim != 1 or other.ndim != 1:
            raise RuntimeError("1D tensors expected, but got "
                               f"{self.ndim}D and {other.ndim}D tensors")
        return sum(mul(self, other))

    def expand(self, *sizes: int | Sequence[int]) -> Tensor:
        return expand(self, _shape_args(sizes))

    def expand_as(self, other: Tensor) -> Tensor:
        return expand(self, other.shape)

    def repeat(self, *sizes: int | Sequence[int]) -> Tensor:
        return repeat(self, _shape_args(sizes))

    def split(self, split_size: int | Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:
        return split(self, split_size, dim)

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        size = -(-self.shape[dim] // chunks)  # ceil, as torch.chunk
        return split(self, size, dim)

    def unbind(self, dim: int = 0) -> tuple[Tensor, ...]:
        index = [slice(None)] * self.ndim
        out = []
        for i in range(self.shape[dim]):
            index[dim] = i
            out.append(self[tuple(index)])
        return tuple(out)

    def flip(self, *dims: int | Sequence[int]) -> Tensor:
        axes = _shape_args(dims)
        return record_op(np.flip(self.data, axes), (self,), "flip",
                         lambda g: (np.flip(g, axes),), axes=axes)

    def tril(self, diagonal: int = 0) -> Tensor:
        return tril(self, diagonal)

    def triu(self, diagonal: int = 0) -> Tensor:
        return triu(self, diagonal)

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """``to(dtype)``, ``to("cpu")``, ``to(device)``, ``to(other)``: this framework runs on
        the CPU only, so a device is checked and a dtype is applied."""
        dtype = target_dtype(args, kwargs)
        return self if dtype is None or np.dtype(dtype) == self.dtype else cast(self, dtype)

    def cpu(self) -> Tensor:
        return self

    def cuda(self, *args: Any, **kwargs: Any) -> Tensor:
        _check_cpu("cuda")
        return self

    @property
    def device(self) -> Any:
        from reference_models.device import device

        return device("cpu")

    @property
    def is_cuda(self) -> bool:
        return False

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

    def swapaxes(self, dim0: int, dim1: int) -> Tensor:
        return self.transpose(dim0, dim1)

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


def run_backward(root: Tensor, gradient: ArrayLike | None = None,
                 inputs: Sequence[Tensor] | None = None) -> dict[int, tuple[Tensor, np.ndarray]]:
    """d(root)/d(t) for the leaves that require grad (or for ``inputs``, leaves or not), by id.

    The graph is sorted topologically with an explicit stack (no recursion limit) and walked once
    in reverse; each node's backward maps its output's gradient to its parents'.
    """
    if not root.requires_grad:
        raise RuntimeError(
            "this tensor does not require grad: nothing it depends on has requires_grad=True, "
            "or it was computed under no_grad()"
        )
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs: pass a "
                               "gradient to backward() for a tensor with several elements")
        gradient = np.ones_like(root.data)
    gradient = np.asarray(_raw(gradient), dtype=root.data.dtype)
    if gradient.shape != root.data.shape:
        raise RuntimeError(f"backward(gradient) needs a gradient of shape "
                           f"{list(root.data.shape)}, got {list(gradient.shape)}")
    wanted = None if inputs is None else {id(t) for t in inputs}
    found: dict[int, tuple[Tensor, np.ndarray]] = {}
    grads: dict[int, np.ndarray] = {id(root): gradient}
    for node in reversed(topological_order(root, only_requiring_grad=True)):
        grad = grads.pop(id(node), None)
        if grad is None:
            continue
        if wanted is None and node._backward is None or wanted is not None and id(node) in wanted:
            found[id(node)] = (node, np.asarray(grad, dtype=node.data.dtype).reshape(node.shape))
        if node._backward is None:
            continue
        _check_versions(node)
        for parent, parent_grad in zip(node._prev, node._backward(grad), strict=True):
            if parent_grad is None or not parent.requires_grad:
                continue
            parent_grad = _raw(parent_grad)
            key = id(parent)
            grads[key] = parent_grad if key not in grads else grads[key] + parent_grad
    return found


def _gradient_tensor(array: np.ndarray) -> Tensor:
    """A ``.grad``: a plain tensor whose ``.data`` has the in-place methods (``.data.zero_()``)."""
    return Tensor._wrap(array.view(TensorData))


def _check_versions(node: Tensor) -> None:
    """Refuse a backward whose saved inputs (or output) were changed in place since (PyTorch's
    rule): their old values are gone, so the gradient would silently be wrong."""
    saved = node._saved
    if saved is None:
        return
    now = (*[p._version.value for p in node._prev], node._version.value)
    if now != saved:
        raise RuntimeError(
            "one of the variables needed for gradient computation has been modified by an "
            f"inplace operation (op {node._op!r}): write x = x + y instead of x += y, or clone() "
            "the tensor before changing it")


def _share_version(view: Tensor, base: Tensor) -> Tensor:
    """``view`` shares ``base``'s memory: one version counter for both, as in PyTorch."""
    base._version.shared = True
    view._version = base._version
    if view._saved is not None:
        view._saved = (*view._saved[:-1], base._version.value)
    return view


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
def _rebase_references(roots: Sequence[Any], target: Tensor, old: Tensor) -> None:
    """Ops that read ``target`` before it changed in place (``mask = y < 0; y[mask] = 0``) point
    to its old value ``old``, so the graph after the change has no circle through ``target``."""
    stack, seen = [t for t in roots if isinstance(t, Tensor) and t is not target], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if builtins.any(p is target for p in node._prev):
            node._prev = tuple(old if p is target else p for p in node._prev)
        stack.extend(p for p in node._prev if p is not old)


def record_op(data: np.ndarray, parents: Sequence[Tensor], op: str, backward: Backward,
              **attrs: Any) -> Tensor:
    """Wrap an op's result; remember its parents and backward when a gradient or export needs it."""
    out = Tensor._wrap(data)
    if is_grad_enabled() and any(p.requires_grad for p in parents):
        out.requires_grad = True
        out._backward = backward
        out._saved = (*[p._version.value for p in parents], 0)
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


def target_dtype(args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """The dtype asked for by ``.to(...)`` arguments (None: keep it); devices must be the CPU."""
    dtype = kwargs.get("dtype")
    for arg in (*args, kwargs.get("device")):
        if arg is None:
            continue
        if isinstance(arg, Tensor):
            dtype = arg.dtype
        elif isinstance(arg, str) or type(arg).__name__ == "device":
            _check_cpu(arg)
        else:
            dtype = arg
    return dtype


def _check_cpu(where: Any) -> None:
    if str(where).split(":")[0] != "cpu":
        raise RuntimeError(f"device {str(where)!r}: reference_models runs on the CPU only "
                           "(cuda.is_available() is False); use 'cpu'")


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
def _promoted(a: Tensor, b: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The two arrays in PyTorch's result dtype: an int tensor meeting a float tensor takes the
    float's dtype (numpy would go to float64), and a 0-d float tensor defers to a tensor with
    dimensions (float32 tensor * float64 scalar tensor stays float32)."""
    x, y = a.data, b.data
    if x.dtype == y.dtype:
        return x, y
    fx, fy = np.issubdtype(x.dtype, np.floating), np.issubdtype(y.dtype, np.floating)
    if fx and not fy or fx and fy and y.ndim == 0 < x.ndim:
        return x, y.astype(x.dtype)
    if fy and not fx or fx and fy and x.ndim == 0 < y.ndim:
        return x.astype(y.dtype), y
    return x, y


def add(a: Tensor, b: Tensor) -> Tensor:
    x, y = _promoted(a, b)
    return record_op(x + y, (a, b), "add",
                     lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)))


def sub(a: Tensor, b: Tensor) -> Tensor:
    x, y = _promoted(a, b)
    if x.dtype == np.bool_ and y.dtype == np.bool_:
        raise TypeError("subtraction, the `-` operator, with two bool tensors is not supported "
                        "(as in PyTorch): use `^` or logical_xor()")
    return record_op(x - y, (a, b), "sub",
                     lambda g: (unbroadcast(g, a.shape), unbroadcast(-g, b.shape)))


def mul(a: Tensor, b: Tensor) -> Tensor:
    x, y = _promoted(a, b)

    def backward(g: np.ndarray) -> tuple:
        return (unbroadcast(g * y, a.shape) if a.requires_grad else None,
                unbroadcast(g * x, b.shape) if b.requires_grad else None)

    return record_op(x * y, (a, b), "mul", backward)


def div(a: Tensor, b: Tensor) -> Tensor:
    x, y = _promoted(a, b)
    out = x / y
    if out.dtype == np.float64 and x.dtype != np.float64 and y.dtype != np.float64:
        out = out.astype(np.float32)  # int / int is float32 in PyTorch

    def backward(g: np.ndarray) -> tuple:
        ga = g / y
        return (unbroadcast(ga, a.shape) if a.requires_grad else None,
                unbroadcast(-ga * x / y, b.shape) if b.requires_grad else None)

    return record_op(out, (a, b), "div", backward)


def floor_divide(a: Tensor, b: Tensor) -> Tensor:
    """``a // b`` rounded toward minus infinity (Python's and PyTorch's rule); no gradient."""
    x, y = _promoted(a, b)
    return _no_grad_op(np.floor_divide(x, y), (a, b), "floor_divide")


def remainder(a: Tensor, b: Tensor) -> Tensor:
    """``a % b`` with the sign of ``b`` (Python's rule, ``torch.remainder``)."""
    x, y = _promoted(a, b)

    def backward(g: np.ndarray) -> tuple:
        return (unbroadcast(g, a.shape),
                unbroadcast(-g * np.floor_divide(x, y), b.shape) if b.requires_grad else None)

    return record_op(np.remainder(x, y), (a, b), "remainder", backward)


def _bitwise(fn: Callable, a: Tensor, b: Tensor, op: str) -> Tensor:
    for t in (a, b):
        if np.issubdtype(t.dtype, np.floating):
            raise TypeError(f"`{ {'and': '&', 'or': '|', 'xor': '^'}[op]}` is only for bool and "
                            "integer tensors, as in PyTorch")
    return _no_grad_op(fn(a.data, b.data), (a, b), op)


def neg(a: Tensor) -> Tensor:
    return record_op(-a.data, (a,), "neg", lambda g: (-g,))


def pow(a: Tensor, exponent: ArrayLike) -> Tensor:  # noqa: A001 - mirrors torch.pow
    """``a ** exponent``; the exponent may be a number or a tensor (then both get gradients)."""
    if isinstance(exponent, Tensor) or isinstance(a, Tensor) and not isinstance(
            exponent, builtins.int | builtins.float | np.number):
        return _pow_tensor(as_tensor(a), as_tensor(exponent) if isinstance(exponent, Tensor)
                           else a._constant(exponent))
    if np.issubdtype(a.dtype, np.integer) and isinstance(exponent, builtins.int | np.integer):
        if exponent < 0:
            raise RuntimeError("Integers to negative integer powers are not allowed.")
        return _no_grad_op(a.data ** int(exponent), (a,), "pow", exponent=float(exponent))
    exponent = float(exponent)
    data = a.data if np.issubdtype(a.dtype, np.floating) else a.data.astype(np.float32)
    return record_op((data ** exponent).astype(data.dtype, copy=False), (a,), "pow",
                     lambda g: (g * exponent * data ** (exponent - 1),), exponent=exponent)


def _pow_tensor(a: Tensor, b: Tensor) -> Tensor:
    x, y = _promoted(a, b)
    out = np.power(x, y)

    def backward(g: np.ndarray) -> tuple:
        ga = unbroadcast(g * y * np.power(x, y - 1), a.shape) if a.requires_grad else None
        gb = None
        if b.requires_grad:
            with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** y: PyTorch gives 0
                gb = unbroadcast(np.where(x == 0, 0, g * out * np.log(x)), b.shape)
        return ga, gb

    return record_op(out, (a, b), "pow_tensor", backward)


def maximum(a: Tensor, b: Tensor) -> Tensor:
    """Elementwise maximum; on ties the gradient is split in half, as in PyTorch."""
    return _pick_larger(a, b, np.maximum, "maximum")


def minimum(a: Tensor, b: Tensor) -> Tensor:
    return _pick_larger(a, b, np.minimum, "minimum")


def _pick_larger(a: Tensor, b: Tensor, fn: Callable, op: str) -> Tensor:
    x, y = _promoted(a, b)
    out = fn(x, y)

    def backward(g: np.ndarray) -> tuple:
        share_a = np.where(x == y, 0.5, (out == x)).astype(g.dtype)
        return (unbroadcast(g * share_a, a.shape) if a.requires_grad else None,
                unbroadcast(g * (1 - share_a), b.shape) if b.requires_grad else None)

    return record_op(out, (a, b), op, backward)


def clamp(a: Tensor, min: ArrayLike | None = None, max: ArrayLike | None = None) -> Tensor:  # noqa: A002
    """Values limited to [min, max]; the gradient passes where min <= a <= max (PyTorch's)."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    low = None if min is None else a._constant(min).data
    high = None if max is None else a._constant(max).data
    out = np.clip(a.data, low, high)
    if low is not None and high is not None:
        out = np.where(low > high, high, out)  # PyTorch: min > max gives max everywhere

    def backward(g: np.ndarray) -> tuple:
        inside = np.ones(a.shape, dtype=bool)
        if low is not None:
            inside &= a.data >= low
        if high is not None:
            inside &= a.data <= high
        return (g * inside,)

    return record_op(out, (a,), "clamp", backward, low=low, high=high)


def equal(a: Tensor, b: Tensor) -> bool:
    """True when both have the same shape and elements (``torch.equal``)."""
    return a.shape == b.shape and bool(np.array_equal(a.data, b.data))


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


def _max_min(a: Tensor, dim: int | Tensor | None, keepdim: bool,
             largest: bool) -> Tensor | ValuesIndices:
    if isinstance(dim, Tensor):  # torch.max(a, b): elementwise
        return maximum(a, dim) if largest else minimum(a, dim)
    if dim is None:
        return amax(a) if largest else neg(amax(neg(a)))
    if not isinstance(dim, builtins.int | np.integer):
        raise TypeError("max(dim)/min(dim) take one int dim and return (values, indices), as "
                        "in PyTorch; use amax(dims)/amin(dims) for several dims")
    pick = np.argmax if largest else np.argmin
    # recorded (for export) like Tensor.argmax: the indices depend on the input
    indices = _no_grad_op(np.asarray(pick(a.data, axis=dim, keepdims=True)), (a,),
                          "argmax" if largest else "argmin", axis=dim, keepdim=True)
    values = gather(a, dim, indices)  # the gradient goes to the chosen element, as in PyTorch
    if not keepdim:
        values, indices = squeeze(values, dim), squeeze(indices, dim)
    return ValuesIndices(values, indices)


def sort(a: Tensor, dim: int = -1, descending: bool = False) -> ValuesIndices:
    """Sorted values and where they came from; ties keep their order (stable)."""
    order = np.argsort(-a.data if descending and a.dtype != np.bool_ else a.data, axis=dim,
                       kind="stable")
    if descending and a.dtype == np.bool_:
        order = np.argsort(~a.data, axis=dim, kind="stable")
    indices = _no_grad_op(order, (a,), "argsort", axis=dim, descending=descending)
    return ValuesIndices(gather(a, dim, indices), indices)


def topk(a: Tensor, k: int, dim: int = -1, largest: bool = True,
         sorted: bool = True) -> ValuesIndices:  # noqa: A002 - torch's name
    if not 0 <= k <= a.shape[dim]:
        raise RuntimeError(f"selected index k={k} out of range for a dimension of size "
                           f"{a.shape[dim]}")
    order = np.argsort(-a.data if largest else a.data, axis=dim, kind="stable")
    indices = _no_grad_op(np.take(order, np.arange(k), axis=dim), (a,), "topk", k=k, axis=dim,
                          largest=largest)
    return ValuesIndices(gather(a, dim, indices), indices)


def prod(a: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Product over ``dim`` (all elements when None); exact gradients even with zeros."""
    x = a.data.reshape(-1) if dim is None else a.data
    axis = 0 if dim is None else dim % a.ndim
    out = np.prod(x, axis=axis, keepdims=keepdim and dim is not None)

    def backward(g: np.ndarray) -> tuple:
        # d prod / d x_i = product of all the others: exclusive cumulative products from both ends
        ones = np.ones_like(np.take(x, [0], axis=axis))
        left = np.concatenate([ones, np.cumprod(x, axis=axis)], axis=axis)
        right = np.flip(np.concatenate([ones, np.cumprod(np.flip(x, axis), axis=axis)],
                                       axis=axis), axis)
        n = x.shape[axis]
        others = np.take(left, np.arange(n), axis=axis) * np.take(right, np.arange(1, n + 1),
                                                                   axis=axis)
        gg = g if keepdim and dim is not None else np.expand_dims(g, axis)
        return ((gg * others).reshape(a.shape),)

    return record_op(np.asarray(out), (a,), "prod", backward, axis=None if dim is None else axis,
                     keepdim=keepdim and dim is not None)


def cumsum(a: Tensor, dim: int) -> Tensor:
    axis = dim % a.ndim
    return record_op(np.cumsum(a.data, axis=axis), (a,), "cumsum",
                     lambda g: (np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis),),
                     axis=axis)


def norm(a: Tensor, p: float = 2, dim: int | Sequence[int] | None = None,
         keepdim: bool = False) -> Tensor:
    """The ``p``-norm (2 or 1; ``"fro"`` is 2); the gradient at zero is zero, as in PyTorch."""
    if p == 1:
        return sum(abs(a), dim, keepdim)
    if p not in (2, "fro"):
        raise NotImplementedError(f"norm with p={p!r}: only p=1 and p=2 are supported")
    axes = _axes(dim, a.ndim)
    out = np.sqrt(np.sum(a.data * a.data, axis=axes, keepdims=True))

    def backward(g: np.ndarray) -> tuple:
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(out == 0, 0, a.data / out)
        return (_expand_back(g, a.shape, axes, keepdim) * scale,)

    result = out if keepdim else np.squeeze(out, axis=axes)
    return record_op(np.asarray(result), (a,), "norm", backward, axes=axes, keepdim=keepdim)


def logsumexp(a: Tensor, dim: int | Sequence[int], keepdim: bool = False) -> Tensor:
    axes = _axes(dim, a.ndim)
    top = np.amax(a.data, axis=axes, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    e = np.exp(a.data - top)
    total = e.sum(axis=axes, keepdims=True)
    out = np.log(total) + top

    def backward(g: np.ndarray) -> tuple:
        return (_expand_back(g, a.shape, axes, keepdim) * (e / total),)

    result = out if keepdim else np.squeeze(out, axis=axes)
    return record_op(np.asarray(result), (a,), "logsumexp", backward, axes=axes, keepdim=keepdim)


def sin(a: Tensor) -> Tensor:
    return record_op(np.sin(a.data), (a,), "sin", lambda g: (g * np.cos(a.data),))


def cos(a: Tensor) -> Tensor:
    return record_op(np.cos(a.data), (a,), "cos", lambda g: (-g * np.sin(a.data),))


def tril(a: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dimensions, zeros above ``diagonal``."""
    return record_op(np.tril(a.data, diagonal), (a,), "tril",
                     lambda g: (np.tril(g, diagonal),), diagonal=diagonal)


def triu(a: Tensor, diagonal: int = 0) -> Tensor:
    return record_op(np.triu(a.data, diagonal), (a,), "triu",
                     lambda g: (np.triu(g, diagonal),), diagonal=diagonal)


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
    result = record_op(out, (a,), "reshape", lambda g: (g.reshape(a.shape),), shape=out.shape)
    return _share_version(result, a) if np.may_share_memory(out, a.data) else result


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    start, end = start_dim % max(a.ndim, 1), end_dim % max(a.ndim, 1)
    shape = a.shape[:start] + (int(np.prod(a.shape[start:end + 1])),) + a.shape[end + 1:]
    out = a.data.reshape(shape)
    result = record_op(out, (a,), "flatten", lambda g: (g.reshape(a.shape),),
                       start_dim=start, end_dim=end)
    return _share_version(result, a) if np.may_share_memory(out, a.data) else result


def permute(a: Tensor, dims: Sequence[int]) -> Tensor:
    dims = tuple(d % a.ndim for d in dims)
    inverse = tuple(np.argsort(dims))
    return _share_version(record_op(a.data.transpose(dims), (a,), "permute",
                                    lambda g: (g.transpose(inverse),), perm=dims), a)


def unsqueeze(a: Tensor, dim: int) -> Tensor:
    dim = dim % (a.ndim + 1)
    return _share_version(record_op(np.expand_dims(a.data, dim), (a,), "unsqueeze",
                                    lambda g: (g.reshape(a.shape),), axes=(dim,)), a)


def squeeze(a: Tensor, dim: int | None = None) -> Tensor:
    if dim is None:
        axes = tuple(i for i, n in enumerate(a.shape) if n == 1)
    else:
        axes = (dim % a.ndim,) if a.shape[dim] == 1 else ()
    return _share_version(record_op(np.squeeze(a.data, axis=axes), (a,), "squeeze",
                                    lambda g: (g.reshape(a.shape),), axes=axes), a)


def expand(a: Tensor, sizes: Sequence[int]) -> Tensor:
    """A read-only broadcast view; ``-1`` keeps a dimension (``torch.Tensor.expand``)."""
    lead = len(sizes) - a.ndim
    if lead < 0:
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater "
                           f"or equal to the number of dimensions in the tensor ({a.ndim})")
    shape = tuple(a.shape[i - lead] if n == -1 else n for i, n in enumerate(sizes))
    out = np.broadcast_to(a.data, shape)
    return _share_version(record_op(out, (a,), "expand", lambda g: (unbroadcast(g, a.shape),),
                                    shape=shape), a)


def repeat(a: Tensor, sizes: Sequence[int]) -> Tensor:
    """Tile ``a`` ``sizes[i]`` times along each dimension (``torch.Tensor.repeat``)."""
    if len(sizes) < a.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number "
                           "of dimensions of tensor")
    shape = (1,) * (len(sizes) - a.ndim) + a.shape
    out = np.tile(a.data.reshape(shape), sizes)

    def backward(g: np.ndarray) -> tuple:
        split_shape = [n for pair in zip(sizes, shape, strict=True) for n in pair]
        summed = g.reshape(split_shape).sum(axis=tuple(range(0, len(split_shape), 2)))
        return (summed.reshape(a.shape),)

    return record_op(out, (a,), "repeat", backward, repeats=tuple(sizes))


def split(a: Tensor, split_size: int | Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the given sizes."""
    n = a.shape[dim]
    if isinstance(split_size, builtins.int | np.integer):
        sizes = [builtins.min(int(split_size), n - s) for s in range(0, n, int(split_size))]
    else:
        sizes = [int(s) for s in split_size]
        if builtins.sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} "
                               f"(input tensor's size at dimension {dim}), but got {sizes}")
    index, start, out = [slice(None)] * a.ndim, 0, []
    for size in sizes:
        index[dim] = slice(start, start + size)
        out.append(a[tuple(index)])
        start += size
    return tuple(out)


def _is_basic_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, int | slice | type(None)) or i is Ellipsis for i in items)


def _index_data(index: Any) -> Any:
    """An index with tensors replaced by their arrays (a 0-d integer tensor acts as an int)."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list) and builtins.any(isinstance(i, Tensor) for i in index):
        return [i.data if isinstance(i, Tensor) else i for i in index]
    return index


def getitem(a: Tensor, index: Any) -> Tensor:
    """``a[index]``: slices, ints, and integer/boolean arrays (gradients scatter back)."""
    index = _index_data(index)
    basic = _is_basic_index(index)

    def backward(g: np.ndarray) -> tuple:
        full = np.zeros(a.shape, dtype=g.dtype)
        if basic:
            full[index] = g  # basic indexing never picks an element twice
        else:
            np.add.at(full, index, g)  # repeated indices must accumulate
        return (full,)

    out = record_op(a.data[index], (a,), "getitem", backward, index=index)
    return _share_version(out, a) if basic else out  # basic indexing gives a view, as in torch


def setitem(a: Tensor, index: Any, value: Tensor) -> Tensor:
    """``a`` with ``a[index] = value`` (out of place; ``Tensor.__setitem__`` is the in-place
    spelling): the gradient reaches ``value`` from the positions it was written to.

    A boolean mask tensor (``x[x < 0] = 0``) stays a parent, so an exported graph computes it."""
    mask = index if isinstance(index, Tensor) and index.dtype == np.bool_ else None
    index = _index_data(index)
    out = a.data.copy()
    out[index] = value.data

    def backward(g: np.ndarray) -> tuple:
        ga = g.copy()
        ga[index] = 0
        gv = unbroadcast(np.asarray(g[index]), value.shape) if value.requires_grad else None
        return (ga, gv) if mask is None else (ga, gv, None)

    parents = (a, value) if mask is None else (a, value, mask)
    return record_op(out, parents, "setitem", backward, index=index, mask=mask is not None)


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
    # an int64 index tensor stays the parent, so an exported graph computes it (an argmax of the
    # input, say) instead of freezing the example's indices into a constant
    index_t = index if isinstance(index, Tensor) and index.dtype == np.int64 else Tensor(idx)
    return record_op(out, (a, index_t), "gather", backward, axis=dim)


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
    """A new tensor with its own copy of ``data`` (``torch.tensor``)."""
    if isinstance(data, list | tuple) and builtins.any(isinstance(d, Tensor) for d in data):
        data = [d.data if isinstance(d, Tensor) else d for d in data]
    return Tensor(np.array(data.data if isinstance(data, Tensor) else data), requires_grad, dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory and keeping its dtype (``torch.from_numpy``)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    return Tensor(array, dtype=array.dtype)


def _factory(fill: Callable, shape: tuple, dtype: Any, requires_grad: bool) -> Tensor:
    return Tensor(fill(_shape_args(shape), dtype=np.float32 if dtype is None else dtype),
                  requires_grad=requires_grad)


def zeros(*shape: int | Sequence[int], requires_grad: bool = False, dtype: Any = None) -> Tensor:
    return _factory(np.zeros, shape, dtype, requires_grad)


def ones(*shape: int | Sequence[int], requires_grad: bool = False, dtype: Any = None) -> Tensor:
    return _factory(np.ones, shape, dtype, requires_grad)


def empty(*shape: int | Sequence[int], requires_grad: bool = False, dtype: Any = None) -> Tensor:
    return _factory(np.zeros, shape, dtype, requires_grad)  # zeros: uninitialized memory is a trap


def full(size: Sequence[int], fill_value: float | int | bool, *, dtype: Any = None,
         requires_grad: bool = False) -> Tensor:
    """``size`` filled with ``fill_value``; the dtype follows the value (PyTorch's rule)."""
    if dtype is None:
        dtype = (np.bool_ if isinstance(fill_value, builtins.bool) else np.int64
                 if isinstance(fill_value, builtins.int) else np.float32)
    return Tensor(np.full(tuple(size), fill_value, dtype=dtype), requires_grad=requires_grad)


def randn(*shape: int | Sequence[int], requires_grad: bool = False,
          generator: np.random.Generator | None = None, dtype: Any = None) -> Tensor:
    data = get_generator(generator).standard_normal(_shape_args(shape), dtype=np.float32)
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def rand(*shape: int | Sequence[int], requires_grad: bool = False,
         generator: np.random.Generator | None = None, dtype: Any = None) -> Tensor:
    data = get_generator(generator).random(_shape_args(shape), dtype=np.float32)
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def arange(start: float | Tensor, end: float | Tensor | None = None, step: float | Tensor = 1, *,
           dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """``[start, end)`` in steps of ``step``: int64 when every bound is an integer, else float32
    (PyTorch's inference; ``arange(0, 1, 0.25)`` is ``[0, 0.25, 0.5, 0.75]``)."""
    if end is None:
        start, end = 0, start
    bounds = [b.item() if isinstance(b, Tensor) else b for b in (start, end, step)]
    if step == 0:
        raise RuntimeError("step must be nonzero")
    floating = builtins.any(isinstance(b, builtins.float | np.floating) for b in bounds)
    if dtype is None:
        dtype = np.float32 if floating else np.int64
    # values computed in float64 (PyTorch's accumulate type), then rounded once to the dtype
    values = np.arange(*bounds, dtype=np.float64 if floating else np.int64)
    return Tensor(values.astype(dtype), requires_grad=requires_grad)


def linspace(start: float, end: float, steps: int, *, dtype: Any = None) -> Tensor:
    return Tensor(np.linspace(start, end, steps).astype(np.float32 if dtype is None else dtype))


def zeros_like(t: Tensor, *, dtype: Any = None) -> Tensor:
    return Tensor(np.zeros_like(_raw(t), dtype=dtype, subok=False))


def ones_like(t: Tensor, *, dtype: Any = None) -> Tensor:
    return Tensor(np.ones_like(_raw(t), dtype=dtype, subok=False))


def full_like(t: Tensor, fill_value: float, *, dtype: Any = None) -> Tensor:
    return Tensor(np.full_like(_raw(t), fill_value, dtype=dtype, subok=False))


def randn_like(t: Tensor, *, generator: np.random.Generator | None = None) -> Tensor:
    return randn(*t.shape, generator=generator, dtype=t.dtype)


def rand_like(t: Tensor, *, generator: np.random.Generator | None = None) -> Tensor:
    return rand(*t.shape, generator=generator, dtype=t.dtype)


def randint(low: int, high: int | None = None, size: Sequence[int] = (), *,
            generator: np.random.Generator | None = None, dtype: Any = np.int64) -> Tensor:
    """Integers in ``[low, high)`` (``randint(high, size)`` starts at 0), as ``torch.randint``."""
    if high is None:
        low, high = 0, low
    return Tensor(get_generator(generator).integers(low, high, tuple(size)), dtype=dtype)


def randperm(n: int, *, generator: np.random.Generator | None = None) -> Tensor:
    return Tensor(get_generator(generator).permutation(n))


def eye(n: int, m: int | None = None, *, dtype: Any = None) -> Tensor:
    return Tensor(np.eye(n, m, dtype=np.float32 if dtype is None else dtype))


def multinomial(input, num_samples: int, replacement: bool = False, *,
                generator: np.random.Generator | None = None):
    """Indices drawn with probability proportional to the rows of ``input`` (weights need not
    sum to one), as ``torch.multinomial``; one row or a batch of rows."""
    weights = np.asarray(getattr(input, "data", input), dtype=np.float64)
    if weights.ndim not in (1, 2) or (weights < 0).any() or not np.isfinite(weights).all():
        raise RuntimeError("multinomial needs a 1-D or 2-D tensor of finite, non-negative weights")
    rows = weights.reshape(-1, weights.shape[-1])
    if not replacement and num_samples > rows.shape[1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without "
                           "replacement")
    rng = get_generator(generator)
    out = np.empty((len(rows), num_samples), dtype=np.int64)
    for r, row in enumerate(rows):
        total = row.sum()
        if total <= 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        out[r] = rng.choice(len(row), num_samples, replace=replacement, p=row / total)
    return Tensor(out.reshape(*weights.shape[:-1], num_samples))
