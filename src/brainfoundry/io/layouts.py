"""Discover scans in the dataset layouts of the field, as a flat list of `ScanEntry`.

Layouts: `fomo60k` (sub_<N>/ses_<M>/<seq>[_k].nii.gz), `fomo-task` (preprocessed/… + labels/…),
`bids` / `openmind` (sub-*/ses-*/anat/*_<suffix>.nii.gz, + openneuro_metadata.csv), `csv` (a
manifest file) and `dicom` (folders of DICOM series). `detect_layout` picks one from the files.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from ..errors import InputError
from ..registry import Registry
from .modalities import canonical_modality
from .volume import is_nifti

LAYOUTS: Registry[list[ScanEntry]] = Registry("layout")


@dataclass
class ScanEntry:
    """One scan to ingest. `modality` is canonical or None (unknown sequence, reported later)."""

    path: str
    subject: str
    session: str
    sequence: str  # the name as found (file stem, BIDS suffix, series description)
    modality: str | None
    label: float | None = None  # case-level label (class or age), if the layout has one
    # named case-level targets (column / key -> value, NaN: missing), when the data names them
    # (a task's label columns, label.json); `label` is then the first one's value
    targets: dict[str, float] = field(default_factory=dict)
    seg_path: str | None = None  # voxel label map of this session, if any
    quality: float | None = None
    dataset: str = ""
    series_uid: str | None = None  # DICOM series within a folder
    extra: dict = field(default_factory=dict)

    @property
    def session_key(self) -> str:
        return f"{self.dataset}/{self.subject}/{self.session}"


def _stem(p: Path) -> str:
    name = p.name
    for ext in (".nii.gz", ".nii"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return p.stem


def _read_label(path: Path) -> float:
    try:
        text = path.read_text().strip()
        return float(text.split()[0])
    except (ValueError, IndexError, OSError):
        raise InputError(path, "label file must hold one number (0/1 or an age)") from None


LABEL_JSON = "label.json"
_TARGETS_SHAPE = "label.json must be one JSON object {target name: number or null}"


def read_targets(path: Path) -> dict[str, float]:
    """A session's label.json: {target name: number or null} as {name: value} (null: NaN, a
    missing target), in the file's order. Anything else is one error naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(path, f"cannot read the label file ({e.strerror})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(path, f"not valid JSON ({e}); {_TARGETS_SHAPE}") from None
    if not isinstance(data, dict) or not data:
        raise InputError(path, f"holds {type(data).__name__ if data else 'no target'}; "
                         f"{_TARGETS_SHAPE}")  # fmt: skip
    bad = [f"{k!r} is {json.dumps(v)}, not a number or null" for k, v in data.items()
           if not _is_target(v)]  # fmt: skip
    bad += ["a target has an empty name"] if any(not k.strip() for k in data) else []
    if bad:
        raise InputError(path, f"{'; '.join(bad)} ({_TARGETS_SHAPE})")
    return {k: math.nan if v is None else float(v) for k, v in data.items()}


def _is_target(v: object) -> bool:
    """A finite JSON number (true/false are not) or null."""
    if v is None:
        return True
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _scan_sessions(
    root: Path,
    top: Path,
    subject_prefix: str = "",
    session_fields: Callable[[Path, Path], dict] | None = None,
) -> list[ScanEntry]:
    """The NIfTI files of top/<subject>/<session>/, sorted, one entry each: the walk the FOMO
    layouts share. `session_fields(subject, session)` adds fields (label, seg) per session."""
    out = []
    for sub in sorted(p for p in top.iterdir() if p.is_dir() and p.name.startswith(subject_prefix)):
        for ses in sorted(p for p in sub.iterdir() if p.is_dir()):
            fields = session_fields(sub, ses) if session_fields is not None else {}
            for f in sorted(ses.iterdir()):
                if is_nifti(f):
                    seq = _stem(f)
                    out.append(
                        ScanEntry(
                            str(f),
                            sub.name,
                            ses.name,
                            seq,
                            canonical_modality(seq),
                            dataset=root.name,
                            **fields,
                        )
                    )
    return out


@LAYOUTS.register("fomo60k")
def scan_fomo60k(root: Path) -> list[ScanEntry]:
    """FOMO60K: root/sub_<N>/ses_<M>/<seq>[_k].nii.gz, no labels."""
    return _scan_sessions(root, root, subject_prefix="sub_")


def _task_session_fields(labels: Path, sub: Path, ses: Path) -> dict:
    """A fomo-task session's case label, named targets and seg map, if any, from
    labels/<sub>/<ses>/: label.txt (one number), label.json ({target: number or null}, the
    targets; its first one is the label when there is no label.txt) and seg.nii.gz."""
    ldir = labels / sub.name / ses.name
    label = _read_label(ldir / "label.txt") if (ldir / "label.txt").exists() else None
    targets = read_targets(ldir / LABEL_JSON) if (ldir / LABEL_JSON).exists() else {}
    if label is None and targets:
        first = next(iter(targets.values()))
        label = None if math.isnan(first) else first
    seg = ldir / "seg.nii.gz"
    return {"label": label, "targets": targets, "seg_path": str(seg) if seg.exists() else None}


@LAYOUTS.register("fomo-task")
def scan_fomo_task(root: Path) -> list[ScanEntry]:
    """A FOMO fine-tuning task: preprocessed/<sub>/<ses>/*.nii.gz, labels/<sub>/<ses>/{label.txt,
    label.json,seg.nii.gz} (each optional)."""
    pre, lab = root / "preprocessed", root / "labels"
    if not pre.is_dir():
        raise InputError(root, "fomo-task layout needs a 'preprocessed' folder")
    return _scan_sessions(root, pre, session_fields=partial(_task_session_fields, lab))


_BIDS = re.compile(r"(?:^|/)(sub-[^/]+)/(?:(ses-[^/]+)/)?anat/([^/]+)$")


def _openmind_metadata(root: Path) -> dict[str, dict]:
    meta = {}
    for csv_path in list(root.glob("openneuro_metadata.csv")) + list(
        root.glob("*/openneuro_metadata.csv")
    ):
        with open(csv_path, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("image_path"):
                    meta[row["image_path"].strip().lstrip("./")] = row
    return meta


@LAYOUTS.register("bids")
def scan_bids(root: Path) -> list[ScanEntry]:
    """BIDS and OpenMind (BIDS per OpenNeuro dataset, plus a metadata CSV with quality scores)."""
    meta = _openmind_metadata(root)
    out = []
    for f in sorted(root.rglob("*.nii*")):
        rel = f.relative_to(root).as_posix()
        m = _BIDS.search(rel)
        if not m or not is_nifti(f):
            continue
        if "mask" in f.name.lower():  # OpenMind anat/anon masks are not scans
            continue
        parts = rel.split("/")
        dataset = parts[0] if parts[0].startswith("ds") else root.name
        seq = _stem(f).split("_")[-1]
        row = meta.get(rel) or meta.get(f"{root.name}/{rel}") or {}
        quality = _float_or_none(row.get("image_quality_score"))
        label = _float_or_none(row.get("age"))
        out.append(
            ScanEntry(
                str(f),
                m.group(1),
                m.group(2) or "ses-1",
                seq,
                canonical_modality(row.get("modality") or seq),
                label=label,
                quality=quality,
                dataset=dataset,
                extra={k: row[k] for k in ("sex",) if row.get(k)},
            )
        )
    return out


LAYOUTS.register("openmind")(scan_bids)


def _float_or_none(v: object) -> float | None:
    try:
        return float(v) if v not in (None, "", "nan") else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@LAYOUTS.register("csv")
def scan_csv(path: Path) -> list[ScanEntry]:
    """A manifest: one row per session with a path column per modality (`io.manifest`), or
    the older one row per scan: columns path, subject, session, modality; label, seg, quality."""
    from .manifest import is_long_format, scan_manifest

    if not is_long_format(path):
        return scan_manifest(path)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    need = {"path", "subject", "modality"}
    if not rows or not need <= set(rows[0]):
        raise InputError(path, f"CSV manifest needs columns {sorted(need)} (+ session, label, seg)")
    out = []
    for i, r in enumerate(rows, start=2):
        p = Path(r["path"])
        if not p.is_absolute():
            p = path.parent / p
        seg = r.get("seg") or None
        if seg and not Path(seg).is_absolute():
            seg = str(path.parent / seg)
        out.append(
            ScanEntry(
                str(p),
                r["subject"],
                r.get("session") or "ses_1",
                r["modality"],
                canonical_modality(r["modality"]),
                label=_float_or_none(r.get("label")),
                seg_path=seg,
                quality=_float_or_none(r.get("quality")),
                dataset=path.stem,
                extra={"row": i},
            )
        )
    return out


@LAYOUTS.register("dicom")
def scan_dicom(root: Path) -> list[ScanEntry]:
    """root/<subject>/[<session>/]<series files>: one entry per series, modality from its name."""
    from .dicom import list_series

    out = []
    for folder, series in list_series(root):
        rel = folder.relative_to(root).parts
        subject = rel[0] if rel else root.name
        session = rel[1] if len(rel) > 2 else "ses_1"
        for uid, desc in series:
            out.append(
                ScanEntry(
                    str(folder),
                    subject,
                    session,
                    desc,
                    canonical_modality(desc),
                    dataset=root.name,
                    series_uid=uid,
                )
            )
    return out


def detect_layout(root: Path) -> str:
    """Name the layout of `root` from its files, or raise a one-line error."""
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return "csv"
        raise InputError(root, "expected a dataset folder or a .csv manifest")
    if not root.is_dir():
        raise InputError(root, "dataset folder not found")
    if (root / "preprocessed").is_dir():
        return "fomo-task"
    names = [p.name for p in root.iterdir()]
    if any(n.startswith("sub_") for n in names):
        return "fomo60k"
    if "openneuro_metadata.csv" in names or any(re.match(r"ds\d+", n) for n in names):
        return "openmind"
    if any(n.startswith("sub-") for n in names) and next(root.glob("sub-*/**/anat/*.nii*"), None):
        return "bids"
    from .dicom import has_dicom

    if has_dicom(root):
        return "dicom"
    raise InputError(
        root, f"cannot tell the dataset layout; pass --layout ({', '.join(LAYOUTS.list())})"
    )


def discover(root: str | Path, layout: str | None = None) -> tuple[str, list[ScanEntry]]:
    """All scans under `root` in `layout` (auto-detected when None)."""
    root = Path(root)
    name = layout or detect_layout(root)
    entries = LAYOUTS.get(name)(root)
    if not entries:
        raise InputError(root, f"no scans found in {name} layout")
    return name, entries
