"""Baseline recipes: a model, a training configuration and a ``train`` function per baseline.

``arena train RECIPE`` runs one. Each recipe module reads top to bottom like the training script you
would write yourself; ``recipes.common`` holds the steps they share (data loaders, saving, export).
"""

from __future__ import annotations

from types import ModuleType

from reference_models.recipes import cifar10_cnn, mnist_mlp, tinygpt

RECIPES: dict[str, ModuleType] = {
    mnist_mlp.NAME: mnist_mlp,
    cifar10_cnn.NAME: cifar10_cnn,
    tinygpt.NAME: tinygpt,
}


def get_recipe(name: str) -> ModuleType:
    """The recipe module called ``name`` (e.g. ``"cifar10-cnn"``); a ``ValueError`` otherwise."""
    try:
        return RECIPES[name]
    except KeyError:
        known = ", ".join(sorted(RECIPES))
        raise ValueError(f"unknown recipe {name!r}; the recipes are: {known}") from None
