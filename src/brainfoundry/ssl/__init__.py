"""Self-supervised objectives, one small module each, registered in `OBJECTIVES`.

An objective wraps a backbone and returns `(loss, logs)` from a batch; see `base.Objective`.
"""

from .base import OBJECTIVES, Objective, create_objective
from .contrastive import Contrastive
from .cross_modal import CrossModal
from .dino import Dino
from .hybrid import Hybrid
from .mae import MAE

__all__ = [
    "MAE",
    "OBJECTIVES",
    "Contrastive",
    "CrossModal",
    "Dino",
    "Hybrid",
    "Objective",
    "create_objective",
]
