"""``reference_models.utils``: ``utils.data`` (datasets and loaders named like ``torch.utils.data``)."""

from reference_models.utils import data

__all__ = ["data"]
