"""Canonical modality names and the file-name aliases that map onto them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TypeVar

from ..errors import ConfigError

T = TypeVar("T")

CANONICAL = (
    "t1",
    "t2",
    "flair",
    "pd",
    "t1c",
    "dwi_b1000",
    "adc",
    "t2s",
    "swi",
    "dwi",
    "t2star_map",
    "mra",
    "pet",
    "ct",
)

# lower-case alias -> canonical; FOMO/OpenMind/BIDS spellings
_ALIASES = {
    "t1w": "t1",
    "t1": "t1",
    "mprage": "t1",
    "t1_mprage": "t1",
    "spgr": "t1",
    "t1map": "t1",
    "t2w": "t2",
    "t2": "t2",
    "t2_tse": "t2",
    "flair": "flair",
    "t2flair": "flair",
    "t2_flair": "flair",
    "flair3d": "flair",
    "pd": "pd",
    "pdw": "pd",
    "pdmap": "pd",
    "t1c": "t1c",
    "t1ce": "t1c",
    "t1gd": "t1c",
    "t1_gd": "t1c",
    "t1post": "t1c",
    "ce_t1w": "t1c",
    "dwi_b1000": "dwi_b1000",
    "dwi": "dwi_b1000",
    "b1000": "dwi_b1000",
    "trace": "dwi_b1000",
    "adc": "adc",
    "adc_map": "adc",
    "t2s": "t2s",
    "t2star": "t2s",
    "t2starw": "t2s",
    "gre": "t2s",
    "t2_star": "t2s",
    "swi": "swi",
    "swan": "swi",
    "mra": "mra",
    "angio": "mra",
    "tof": "mra",
}


def canonical_modality(name: str) -> str | None:
    """Canonical modality for a sequence name or file stem, or None if unknown.

    Accepts FOMO names with a repeat suffix (`flair_2`), BIDS suffixes (`sub-1_ses-1_T1w`) and
    common vendor spellings, case-insensitively.
    """
    stem = name.lower()
    for ext in (".nii.gz", ".nii", ".b2nd", ".npy"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    stem = re.sub(r"_\d+$", "", stem)  # FOMO repeats: flair_2
    if stem in _ALIASES:
        return _ALIASES[stem]
    # BIDS: the suffix after the last underscore, ignoring key-value entities
    parts = [p for p in stem.split("_") if "-" not in p]
    if parts and parts[-1] in _ALIASES:
        return _ALIASES[parts[-1]]
    return None


def alternatives(entry: str) -> list[str]:
    """A task channel's modalities in preference order: "t2s|swi" -> ["t2s", "swi"]."""
    alts = [a.strip() for a in entry.split("|") if a.strip()]
    if not alts:
        raise ConfigError(f"empty modality entry {entry!r}")
    return alts


def resolve_channels(channels: Sequence[str], available: Mapping[str, T]) -> list[T | None]:
    """The one place a session's scans become a task's channels: for each channel entry, the
    value (scan id, path, ...) of its first alternative in `available`, else None."""
    return [next((available[a] for a in alternatives(c) if a in available), None) for c in channels]
