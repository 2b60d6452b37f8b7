"""``Optimizer``: parameter groups and per-parameter state, as in ``torch.optim``.

Updates change ``p.data`` in place, so modules keep pointing at the same arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from reference_models.tensor import Tensor


class Optimizer:
    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]],
                 defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: dict[int, dict[str, Any]] = {}  # keyed by id(parameter)
        self.param_groups: list[dict[str, Any]] = []
        params = list(params)
        if not params:
            raise ValueError("the optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        group = dict(group)
        group["params"] = list(group["params"])
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        group.setdefault("initial_lr", group["lr"])
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.update(p, np.asarray(p.grad.data), self.state.setdefault(id(p), {}),
                                group)
                    # the weights changed in place: a graph built before the step must not
                    # backward through them (PyTorch's version counter)
                    p._version.value += 1

    def update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any],
               group: dict[str, Any]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Per-parameter state by position in the groups (arrays and numbers, no pickle needed)."""
        params = [p for group in self.param_groups for p in group["params"]]
        state = {index: {k: (v.copy() if isinstance(v, np.ndarray) else v)
                         for k, v in self.state[id(p)].items()}
                 for index, p in enumerate(params) if id(p) in self.state}
        groups = [{k: v for k, v in group.items() if k != "params"}
                  for group in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        params = [p for group in self.param_groups for p in group["params"]]
        for group, saved in zip(self.param_groups, state_dict["param_groups"], strict=True):
            group.update(saved)
        self.state = {id(params[int(index)]): {k: (np.array(getattr(v, "data", v))
                                                   if isinstance(v, np.ndarray | Tensor)
                                                   else v) for k, v in values.items()}
                      for index, values in state_dict["state"].items()}
