"""The tasks: what a submitted model takes and returns, fixed so every model is scored the same way.

Each model does its own normalization inside the graph (SPEC §2).
"""

from __future__ import annotations

from dataclasses import dataclass

# The sorted distinct characters of the whole Tiny Shakespeare file; a character's id is its
# position here. Published so a student's tokenizer and the scorer agree exactly.
TINYGPT_VOCABULARY = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# Largest context a tinygpt model may declare or be run with.
TINYGPT_MAX_CONTEXT = 256

# The fraction of Tiny Shakespeare used for training; the rest is the hidden set.
TINYGPT_TRAIN_FRACTION = 0.9

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


@dataclass(frozen=True)
class Task:
    """A task's fixed model signature.

    ``input_shape`` and ``output_shape`` use ``None`` for a dynamic dimension. The batch dimension is
    always dynamic. For ``tinygpt`` the context dimension ``T`` may be fixed or dynamic (at most
    ``max_context``); ``V`` is the vocabulary size.
    """

    name: str
    title: str
    input_dtype: str
    input_shape: tuple[int | None, ...]
    output_shape: tuple[int | None, ...]
    num_classes: int
    kind: str  # "image-classification" or "language-model"
    vocabulary: str | None = None
    max_context: int | None = None

    @property
    def is_language_model(self) -> bool:
        return self.kind == "language-model"


TASKS: dict[str, Task] = {
    "mnist": Task(
        name="mnist",
        title="MNIST digits",
        input_dtype="float32",
        input_shape=(None, 1, 28, 28),
        output_shape=(None, 10),
        num_classes=10,
        kind="image-classification",
    ),
    "cifar10": Task(
        name="cifar10",
        title="CIFAR-10 images",
        input_dtype="float32",
        input_shape=(None, 3, 32, 32),
        output_shape=(None, 10),
        num_classes=10,
        kind="image-classification",
    ),
    "tinygpt": Task(
        name="tinygpt",
        title="Tiny Shakespeare next character",
        input_dtype="int64",
        input_shape=(None, None),
        output_shape=(None, None, len(TINYGPT_VOCABULARY)),
        num_classes=len(TINYGPT_VOCABULARY),
        kind="language-model",
        vocabulary=TINYGPT_VOCABULARY,
        max_context=TINYGPT_MAX_CONTEXT,
    ),
}


def get_task(name: str) -> Task:
    """The task called ``name``; a ``ValueError`` naming the known tasks otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        known = ", ".join(sorted(TASKS))
        raise ValueError(f"unknown task {name!r}; the tasks are: {known}") from None
