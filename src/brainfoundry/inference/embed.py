"""Frozen embeddings of one volume, for FOMO26 tasks 6 and 7 (a linear probe, no fine-tuning).

The model folder is a pretraining run (`model.safetensors` + `card.json`), a fine-tuned seed
folder, or a `finetune` output (its first seed, said in a note). The volume gets the card's own
preprocessing, exactly as `predict` gives it (`inference.predict.preprocess_session`: RAS,
the card's spacing, foreground crop, the card's normalisation), whatever its sequence.

Pooling (`POOLING`): every encoder stage of the backbone mean- and max-pooled over space and
concatenated, shallow to deep, mean before max within a stage: the features a case-level head
sees (`tasks.heads`), without its present-sequence flags. The size is 2 x the sum of the stage
widths, the same for every input, since every stage is pooled over all of its voxels.

What the network sees (`view`):
- a case-level task model: its training box (`card.extra.input_size`), the brain centred in it,
  zero-padded or centre-cropped (a warning says so), as evaluation and `predict` do;
- a pretraining run or a segmentation model: the whole preprocessed volume, zero-padded
  (centred) to a multiple of the network's total stride.

Channels: a one-channel network (a pretraining run, or a task model whose sequences share one
one-channel encoder, `model.channels=shared`) sees the volume as it is; a network whose first
convolution takes C channels (`model.channels=stem`, or a C-channel pretraining run) sees the
volume in every channel.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import torch

from ..errors import ConfigError, InputError
from ..io.atomic import atomic_path

if TYPE_CHECKING:
    from ..models.backbones import Backbone
    from ..models.card import ModelCard

POOLING = "every encoder stage, spatial mean and max, concatenated shallow to deep"


def model_folder(model_dir: str | Path) -> tuple[Path, list[str]]:
    """(the folder holding card.json, notes): `model_dir` itself, or its first `seed_*/`."""
    root = Path(model_dir)
    if not root.is_dir():
        raise InputError(root, "model folder does not exist")
    if (root / "card.json").is_file():
        return root, []

    def order(p: Path) -> tuple[int, str]:
        tail = p.name.split("_", 1)[-1]
        return (int(tail) if tail.isdigit() else 1 << 30, p.name)

    seeds = sorted((p.parent for p in root.glob("seed_*/card.json")), key=order)
    if not seeds:
        raise InputError(root, "not a model folder (no card.json or seed_*/card.json)")
    notes = []
    if len(seeds) > 1:
        notes.append(
            f"{root} holds {len(seeds)} seeds; embedding with {seeds[0].name} "
            "(give a seed_*/ folder to choose another)"
        )
    return seeds[0], notes


def load_encoder(folder: Path) -> tuple[Backbone, ModelCard, list[int] | None, str]:
    """(one encoder, its card, the case box or None for the whole volume, what it is)."""
    from ..models.card import ModelCard
    from ..models.channelwise import Channelwise
    from ..models.checkpoint import CARD, load_model
    from ..tasks.model_io import load_task_model
    from .core import input_size

    card = ModelCard.load(folder / CARD)
    if "task" not in card.extra:
        encoder, card, _ = load_model(folder, strict=True)
        return encoder, card, None, "pretrained run"
    model, card, spec = load_task_model(folder)
    inner = model.backbone
    encoder = cast("Backbone", inner.shared if isinstance(inner, Channelwise) else inner)
    box = None if spec.type == "segmentation" else list(input_size(card))
    return encoder, card, box, f"{spec.type} task model ({spec.name})"


def weights_sha256(folder: Path) -> str:
    h = hashlib.sha256()
    with open(folder / "model.safetensors", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Embedder:
    """A loaded model folder that turns one volume into one 1-D float32 embedding."""

    def __init__(self, model_dir: str | Path, device: str | None = "auto"):
        from ..engine.device import pick_device
        from ..tasks.heads import ClassificationModel

        self.folder, self.notes = model_folder(model_dir)
        self.encoder, self.card, self.box, self.kind = load_encoder(self.folder)
        if self.card.spacing is None:
            raise ConfigError(
                f"{self.folder}: the card names no voxel spacing, so the scans "
                "cannot be preprocessed as in training (import with --spacing)"
            )
        self.device = pick_device(device or "auto")
        # the pooling of a case-level head (its linear layer is not used)
        self.pool = ClassificationModel(self.encoder).to(self.device).eval()
        widths = self.encoder.feature_channels or [self.encoder.embed_dim]
        self.dim = 2 * int(sum(widths))

    def describe(self) -> dict:
        """What the embeddings are: the model, its weights' hash, the size, pooling and view."""
        m = self.encoder.min_input_multiple
        view = (
            f"the model's {' x '.join(map(str, self.box))} box"
            if self.box
            else f"the whole preprocessed volume, zero-padded to a multiple of {m}"
        )
        return {
            "model": str(self.folder.resolve()),
            "kind": self.kind,
            "weights_sha256": weights_sha256(self.folder),
            "dim": self.dim,
            "pooling": POOLING,
            "view": view,
            "channels": self.encoder.in_channels,
            "spacing": self.card.spacing,
            "normalization": self.card.normalization,
        }

    @torch.no_grad()
    def embed(self, path: str | Path) -> tuple[np.ndarray, list[str]]:
        """(embedding [dim] float32, warnings) of one volume (NIfTI file or DICOM folder)."""
        from ..data.dataset import crop_warning
        from .core import centre_box
        from .predict import preprocess_session

        session = preprocess_session([Path(path)], self.card.spacing, self.card.normalization)
        image = np.repeat(session.image, self.encoder.in_channels, axis=0)
        shape = image.shape[1:]
        m = self.encoder.min_input_multiple
        size = self.box or [-(-int(s) // m) * m for s in shape]
        warning = crop_warning(shape, size) if self.box else None
        x = torch.from_numpy(centre_box(image, size)[None]).to(self.device)
        vec = self.pool.features(x, None)[0, : self.dim].float().cpu().numpy()
        if vec.shape != (self.dim,) or not np.all(np.isfinite(vec)):
            raise InputError(path, "the embedding is not finite (the network gave NaN or Inf)")
        return vec.astype(np.float32), [warning] if warning else []


def write_embedding(path: str | Path, vec: np.ndarray) -> Path:
    """`vec` as a .npy file at exactly `path`, atomically (no half-written file)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(vec, dtype=np.float32))
    return path
