"""Optimizers and learning-rate schedules (``reference_models.optim``), named like ``torch.optim``."""

from reference_models.optim import lr_scheduler
from reference_models.optim.adam import Adam, AdamW
from reference_models.optim.adaptive import Adadelta, Adagrad, RMSprop
from reference_models.optim.optimizer import Optimizer
from reference_models.optim.sgd import SGD

__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
