"""The one training loop (pretraining now, fine-tuning later): AMP, accumulation, clipping,
warm-up + cosine, EMA, CSV/TensorBoard logs, atomic checkpoints, exact resume, DDP."""

from .config import OptimConfig, TrainConfig
from .loop import Trainer

__all__ = ["OptimConfig", "TrainConfig", "Trainer"]
