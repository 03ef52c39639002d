"""optimlab: the optimizers that train neural networks, in small vectorized numpy.

Number for number with ``torch.optim`` (checked in the tests), vectorized across coordinates and across runs.
numpy is the only import-time dependency; plotting and widgets load matplotlib and ipywidgets when imported.
"""

from . import lr_scheduler, schedules
from ._base import Optimizer, as_flat, flat_arrays, flatten_state_dict, unflatten_state_dict
from .clipping import GradientAccumulator, clip_by_norm_, clip_grad_norm_, clip_grad_value_, global_norm
from .matrix import SOAP, Adafactor, Muon, Shampoo
from .optimizers import SGD, Adagrad, Adam, Adamax, AdamW, Lion, NAdam, RAdam, RMSprop, SophiaG
from .schedule_free import AdamWScheduleFree, Prodigy, SGDScheduleFree

__version__ = "0.1.0"

# Friendly aliases: the names the course uses in prose.
AdaGrad = Adagrad
RMSProp = RMSprop
Nadam = NAdam
Sophia = SophiaG

__all__ = [
    "lr_scheduler", "schedules",
    "Optimizer", "flat_arrays", "as_flat", "flatten_state_dict", "unflatten_state_dict",
    "clip_grad_norm_", "clip_grad_value_", "clip_by_norm_", "global_norm", "GradientAccumulator",
    "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Lion", "SophiaG",
    "SGDScheduleFree", "AdamWScheduleFree", "Prodigy",
    "Muon", "Adafactor", "Shampoo", "SOAP",
    "AdaGrad", "RMSProp", "Nadam", "Sophia",
]
