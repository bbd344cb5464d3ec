"""The FOMO26 validator's rules for one output file, as the challenge states them.

- `probability` (task 1 infarct, task 5 polymicrogyria): a .txt holding one number written as
  a float (an integer such as `1` is rejected where a probability belongs), finite, in [0, 1];
- `value` (task 3 brain age): a .txt holding one finite number;
- `mask` (task 2 meningioma, max label 1; task 4 trigeminal, max label 2): a NIfTI of exactly
  the input's shape whose every voxel is an integer label in {0, ..., max_label};
- `embedding` (tasks 6 and 7): a .npy array, 1-D, not empty, numeric, every value finite (and,
  when the expected size is given, of that size: it must be the same for every case).

FOMO25's rules (one float in a .txt; a {0,1} mask of the input's shape) are the same ones,
so the container checks every output it writes with these (`check_output`). A broken rule
raises `InvalidOutput`: one line naming the file and the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    from ..tasks.spec import TaskSpec

KINDS = ("probability", "value", "mask", "embedding")
_INTEGER = re.compile(r"[+-]?\d+")


class InvalidOutput(InputError):
    """An output file the challenge's validator would reject."""


@dataclass(frozen=True)
class Rule:
    """What one task's output must be: its kind, a mask's largest label, an embedding's size."""

    kind: str
    max_label: int = 1
    dim: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown output kind {self.kind!r}; one of {', '.join(KINDS)}")


def rule_for(spec: TaskSpec) -> Rule | None:
    """The rule for a task's `predict` output; None for kinds FOMO does not score (several
    classes or several regression targets in a .txt)."""
    if spec.type == "classification":
        return Rule("probability")
    if spec.type == "regression" and not spec.multi_target:
        return Rule("value")
    if spec.type == "segmentation":
        return Rule("mask", max_label=spec.n_classes - 1)
    return None


def check_output(path: str | Path, rule: Rule, shape: tuple[int, ...] | None = None) -> None:
    """Raise InvalidOutput unless `path` follows `rule` (`shape`: the input's, for a mask)."""
    if not Path(path).is_file():
        raise InvalidOutput(path, "no output file was written")
    if rule.kind in ("probability", "value"):
        check_number(path, probability=rule.kind == "probability")
    elif rule.kind == "mask":
        if shape is None:
            raise ValueError("a mask is checked against the input's shape: give shape")
        check_mask(path, shape, rule.max_label)
    else:
        check_embedding(path, rule.dim)


def check_number(path: str | Path, *, probability: bool) -> float:
    """The one number a .txt holds; a probability must be a float literal in [0, 1]."""
    tokens = Path(path).read_text().split()
    if len(tokens) != 1:
        raise InvalidOutput(path, f"must hold exactly one number, holds {len(tokens)} tokens")
    token = tokens[0]
    what = "probability" if probability else "value"
    if probability and _INTEGER.fullmatch(token):
        raise InvalidOutput(path, f"{token!r} is an integer where a probability belongs")
    try:
        value = float(token)
    except ValueError:
        raise InvalidOutput(path, f"{token!r} is not a number") from None
    if not np.isfinite(value):
        raise InvalidOutput(path, f"the {what} {token!r} is not finite")
    if probability and not 0.0 <= value <= 1.0:
        raise InvalidOutput(path, f"the probability {token} is outside [0, 1]")
    return value


def check_mask(path: str | Path, shape: tuple[int, ...], max_label: int) -> None:
    """A NIfTI of exactly `shape` holding only the integer labels 0..max_label."""
    import nibabel as nib

    try:
        data = np.asarray(nib.load(str(path)).dataobj)  # type: ignore[attr-defined]
    except Exception as e:  # noqa: BLE001 - any unreadable file is one rejected output
        raise InvalidOutput(path, f"not a readable NIfTI ({type(e).__name__})") from None
    if tuple(data.shape) != tuple(shape):
        raise InvalidOutput(path, f"mask shape {tuple(data.shape)} != input shape {tuple(shape)}")
    labels = np.unique(data)
    allowed = np.arange(max_label + 1)
    bad = labels[~np.isin(labels, allowed)]
    if bad.size:
        shown = ", ".join(f"{v:g}" for v in bad[:5].tolist())
        raise InvalidOutput(path, f"labels outside {{0..{max_label}}}: {shown}")


def check_embedding(path: str | Path, dim: int | None = None) -> np.ndarray:
    """A .npy array: 1-D, not empty, numeric, finite, of `dim` values when given."""
    try:
        vec = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one rejected output
        raise InvalidOutput(path, f"not a readable .npy array ({type(e).__name__})") from None
    if not isinstance(vec, np.ndarray):
        raise InvalidOutput(path, "holds several arrays (an .npz), not one embedding")
    if vec.ndim != 1 or vec.size == 0:
        raise InvalidOutput(path, f"the embedding must be 1-D and not empty, not {vec.shape}")
    if not (np.issubdtype(vec.dtype, np.integer) or np.issubdtype(vec.dtype, np.floating)):
        raise InvalidOutput(path, f"the embedding is not real numbers (dtype {vec.dtype})")
    bad = int((~np.isfinite(vec)).sum())
    if bad:
        raise InvalidOutput(path, f"the embedding holds {bad} NaN or Inf values")
    if dim is not None and vec.size != dim:
        raise InvalidOutput(path, f"the embedding has {vec.size} values, the model's size is {dim}")
    return vec
