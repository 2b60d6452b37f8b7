"""Recurrent layers ``RNN``, ``LSTM`` and ``GRU`` with PyTorch's signatures, shapes, gate order and
parameter names (``weight_ih_l0``, ``bias_hh_l1_reverse``...), so a PyTorch state_dict loads.

Each step is ordinary tensor ops (``linear``, ``sigmoid``, ``tanh``, slices, ``stack``), so
autograd and export need nothing of their own. The input projection of a whole sequence is one
matrix product; only the hidden-to-hidden product runs step by step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from reference_models.nn import functional as F
from reference_models.nn import init
from reference_models.nn.module import Module, Parameter
from reference_models.tensor import Tensor, as_tensor, cat, sigmoid, stack, tanh

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class RNNBase(Module):
    """What the three layers share: the parameters of every layer and direction, the loop over
    layers and directions, ``batch_first`` and unbatched inputs."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        if proj_size:
            raise NotImplementedError("LSTM(proj_size=...) (projected hidden state) is not "
                                      "supported")
        if not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if num_layers < 1 or hidden_size < 1:
            raise ValueError("num_layers and hidden_size must be positive")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        self.proj_size = 0
        directions = 2 if bidirectional else 1
        gates = _GATES[mode] * hidden_size
        dtype = np.float32 if dtype is None else dtype
        self._flat_weights_names: list[str] = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = {"weight_ih": (gates, layer_input), "weight_hh": (gates, hidden_size)}
                if bias:
                    shapes.update({"bias_ih": (gates,), "bias_hh": (gates,)})
                for kind, shape in shapes.items():
                    setattr(self, kind + suffix, Parameter(np.empty(shape, dtype=dtype)))
                    self._flat_weights_names.append(kind + suffix)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's init: every weight and bias uniform in +-1/sqrt(hidden_size)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name in self._flat_weights_names:
            init.uniform_(getattr(self, name), -bound, bound)

    def flatten_parameters(self) -> None:
        """PyTorch's cuDNN memory layout call; nothing to do on the CPU."""

    @property
    def all_weights(self) -> list[list[Parameter]]:
        per_direction = 4 if self.bias else 2
        names = self._flat_weights_names
        return [[getattr(self, n) for n in names[i:i + per_direction]]
                for i in range(0, len(names), per_direction)]

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            text += ", nonlinearity='relu'"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False)):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text

    # ----------------------------------------------------------------- the forward pass
    def forward(self, input: Tensor, hx: Any = None) -> tuple[Tensor, Any]:
        x = as_tensor(input)
        batched = x.ndim == 3
        if x.ndim not in (2, 3):
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got "
                             f"{x.ndim}D instead")
        if x.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {x.shape[-1]}")
        if not batched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.permute(1, 0, 2)  # steps first inside: (L, N, H_in)
        states = self._initial_states(hx, x, batched)
        directions = 2 if self.bidirectional else 1
        finals: list[list[Tensor]] = [[] for _ in states]
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                start = [None if s is None else s[index] for s in states]
                out, end = self._run_direction(x, start, suffix, reverse=bool(direction))
                outputs.append(out)
                for kept, value in zip(finals, end, strict=True):
                    kept.append(value)
            x = outputs[0] if directions == 1 else cat(outputs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        output = x
        final = [stack(values, 0) for values in finals]
        if not batched:
            output, final = output.squeeze(1), [f.squeeze(1) for f in final]
        elif self.batch_first:
            output = output.permute(1, 0, 2)
        return output, (tuple(final) if self.mode == "LSTM" else final[0])

    def _initial_states(self, hx: Any, x: Tensor, batched: bool) -> list[Tensor | None]:
        """The given states as (layers * directions, N, H) tensors; None for zeros, which the
        first step leaves out (exact, and an exported graph then has no batch-sized constant)."""
        count = self.num_layers * (2 if self.bidirectional else 1)
        shape = (count, x.shape[1], self.hidden_size)
        parts = 2 if self.mode == "LSTM" else 1
        if hx is None:
            return [None] * parts
        given = list(hx) if self.mode == "LSTM" else [hx]
        if len(given) != parts:
            raise TypeError("LSTM expects hx as a tuple (h_0, c_0)")
        states = []
        for state in given:
            state = as_tensor(state)
            if not batched:
                state = state.unsqueeze(1)
            if tuple(state.shape) != shape:
                raise RuntimeError(f"Expected hidden size {list(shape)}, got {list(state.shape)}")
            states.append(state)
        return states

    def _run_direction(self, x: Tensor, start: list[Tensor | None], suffix: str,
                       reverse: bool) -> tuple[Tensor, list[Tensor]]:
        w_ih, w_hh = getattr(self, "weight_ih" + suffix), getattr(self, "weight_hh" + suffix)
        b_ih = getattr(self, "bias_ih" + suffix) if self.bias else None
        b_hh = getattr(self, "bias_hh" + suffix) if self.bias else None
        projected = F.linear(x, w_ih, b_ih)  # every step's input projection at once
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        state = list(start)
        outputs: list[Tensor] = [None] * x.shape[0]  # type: ignore[list-item]
        for t in steps:
            state = self._cell(projected[t], state, w_hh, b_hh)
            outputs[t] = state[0]
        return stack(outputs, 0), state

    def _cell(self, xw: Tensor, state: list[Tensor | None], w_hh: Tensor,
              b_hh: Tensor | None) -> list[Tensor]:
        """One step; a state of None is zero (then h W_hh^T is just the bias)."""
        h = state[0]
        hw = b_hh if h is None else F.linear(h, w_hh, b_hh)
        n = self.hidden_size

        def plus_hidden(part: Tensor, lo: int, hi: int | None) -> Tensor:
            return part if hw is None else part + hw[..., lo:hi]

        if self.mode == "LSTM":  # gates i, f, g, o
            gates = plus_hidden(xw, 0, None)
            i, f = sigmoid(gates[:, :n]), sigmoid(gates[:, n:2 * n])
            g, o = tanh(gates[:, 2 * n:3 * n]), sigmoid(gates[:, 3 * n:])
            c = i * g if state[1] is None else f * state[1] + i * g
            return [o * tanh(c), c]
        if self.mode == "GRU":  # gates r, z, n; the reset gate scales the hidden part only
            r = sigmoid(plus_hidden(xw[:, :n], 0, n))
            z = sigmoid(plus_hidden(xw[:, n:2 * n], n, 2 * n))
            hidden_n = xw[:, 2 * n:] if hw is None else xw[:, 2 * n:] + r * hw[..., 2 * n:]
            candidate = tanh(hidden_n)
            return [(1 - z) * candidate if h is None else (1 - z) * candidate + z * h]
        pre = plus_hidden(xw, 0, None)
        return [tanh(pre) if self.mode == "RNN_TANH" else F.relu(pre)]


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu);
    returns ``(output, h_n)``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device: Any = None,
                 dtype: Any = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             f"'relu'.")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory; returns ``(output, (h_n, c_n))``, gates in PyTorch's order
    (input, forget, cell, output)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device: Any = None, dtype: Any = None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit; returns ``(output, h_n)``, gates in PyTorch's order (reset, update,
    new)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)


__all__ = ["GRU", "LSTM", "RNN", "RNNBase"]
