"""The device vocabulary of a CPU-only PyTorch: ``device("cpu")``, ``cuda.is_available()``.

Programs written for PyTorch pick a device at the top (``"cuda" if cuda.is_available() else
"cpu"``) and move tensors and models with ``.to(device)``. Here everything lives on the CPU, so
those lines run unchanged; asking for a GPU is a clear error instead of silently staying on the
CPU.
"""

from __future__ import annotations


class device:  # noqa: N801 - PyTorch's name
    """``device("cpu")`` (or ``"cpu:0"``); any other device type is an error."""

    def __init__(self, type: str | device = "cpu", index: int | None = None) -> None:  # noqa: A002
        name = str(type)
        kind, _, number = name.partition(":")
        if kind != "cpu":
            raise RuntimeError(f"device {name!r}: reference_models runs on the CPU only "
                               "(cuda.is_available() is False); use 'cpu'")
        self.type = "cpu"
        self.index = int(number) if number else index

    def __str__(self) -> str:
        return "cpu" if self.index is None else f"cpu:{self.index}"

    def __repr__(self) -> str:
        if self.index is None:
            return "device(type='cpu')"
        return f"device(type='cpu', index={self.index})"

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other) or isinstance(other, device) and other.type == self.type

    def __hash__(self) -> int:
        return hash(str(self))


class cuda:  # noqa: N801 - PyTorch's module name
    """``cuda.is_available()`` is False and ``cuda.device_count()`` is 0: no GPU here."""

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def device_count() -> int:
        return 0

    @staticmethod
    def manual_seed(seed: int) -> None:  # seeding a GPU that is not there changes nothing
        return None

    manual_seed_all = manual_seed
