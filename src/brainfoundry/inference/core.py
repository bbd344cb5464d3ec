"""The one prediction core: a task model on one session's preprocessed arrays.

Both prediction paths feed it the same arrays, so they agree by construction: evaluation and
validation read them from the store (`tasks.predict`), `predict` makes them from raw files with
the store's own preprocessing (`inference.predict`). The arrays are the store's: channels in the
task's order (a missing one is zeros with `present=False`), normalised, foreground-cropped.
Outputs stay in that preprocessed space; mapping back to an input grid is the caller's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..data.dataset import centre_origin, read_padded
from .precision import as_float32, autocast, probs_forward
from .sliding_window import mirrored, sliding_window, stride_divisor, whole_volume

LESION_THRESHOLD = 0.5  # a voxel is foreground where its probability exceeds this


def lesion_mask(prob: np.ndarray) -> np.ndarray:
    """The binary mask every path (validation, evaluation, predict, QC) scores and writes."""
    return prob > LESION_THRESHOLD


def input_size(card) -> list[int]:
    """The box (case-level heads) or tile (segmentation) a card's model was trained on."""
    return card.extra.get("input_size") or card.patch_size


def stack_channels(chans: Sequence[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """(image [C, *S] float32, present [C] bool) from one array per channel, None = missing."""
    shape = next(c for c in chans if c is not None).shape
    image = [np.zeros(shape, np.float32) if c is None else c.astype(np.float32) for c in chans]
    return np.stack(image), np.array([c is not None for c in chans])


def centre_box(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """The `size` box centred on a session [C, *S], zero-padded where the brain is smaller and
    centre-cropped where larger: the whole-brain view `VolumeDataset` trains case heads on.
    Callers say when it crops (`data.dataset.crop_warning`)."""
    origin = centre_origin(image.shape[1:], size)
    return np.stack([read_padded(c, origin, size) for c in image])


@torch.inference_mode()
def case_outputs(
    model,
    images: Sequence[np.ndarray],
    present: Sequence[np.ndarray],
    size: Sequence[int],
    precision: str = "fp32",
) -> dict[str, np.ndarray]:
    """The head's outputs (prob, or pred/sigma/lo/hi), each [B], for B sessions [C, *S_i] seen
    through their centred `size` boxes in one network call; `precision` "bf16" autocasts the
    whole head (its sigmoid/softmax included), outputs back in float32."""
    device = next(model.parameters()).device
    model.eval()
    boxes = torch.from_numpy(np.stack([centre_box(im, size) for im in images])).to(device)
    flags = torch.from_numpy(np.stack(present)).to(device)
    with autocast(device, precision):
        out = model.predict(boxes, flags)
    return {k: as_float32(v).cpu().numpy() for k, v in out.items()}


def class_map(probs: np.ndarray) -> np.ndarray:
    """The label map [*S] (uint8) of class probabilities [K, *S]: with two classes the lesion
    mask (`lesion_mask` of the foreground, exactly as the binary paths), else the likeliest
    class per voxel."""
    if probs.shape[0] == 2:
        return lesion_mask(probs[1]).astype(np.uint8)
    return np.argmax(probs, axis=0).astype(np.uint8)


def segment(model, image: np.ndarray, patch: Sequence[int], **kw) -> np.ndarray:
    """Foreground probability [*S] of one session [C, *S] (a two-class model's lesion class);
    `segment_probs` gives every class."""
    return segment_probs(model, image, patch, **kw)[1]


@torch.inference_mode()
def segment_probs(
    model,
    image: np.ndarray,
    patch: Sequence[int],
    *,
    overlap: float = 0.5,
    mirror: bool = False,
    skip_empty: bool = False,
    batch_size: int = 2,
    whole: bool = False,
    precision: str = "fp32",
) -> np.ndarray:
    """Class probabilities [K, *S] of one session [C, *S]: a Gaussian-weighted sliding window
    of `patch` tiles, or one pass over the `whole` volume (faster, see inference.md).
    precision: "bf16" autocasts the network, softmax and blending stay fp32 (`precision`)."""
    device = next(model.parameters()).device
    model.eval()
    x = torch.from_numpy(image).to(device)
    fn = probs_forward(model, precision, device)
    if whole:
        probs = whole_volume(mirrored(fn) if mirror else fn, x, stride_divisor(patch))
    else:
        probs = sliding_window(
            fn, x, patch, overlap=overlap, batch_size=batch_size, mirror=mirror,
            skip_empty=skip_empty,
        )  # fmt: skip
    return probs.cpu().numpy()
