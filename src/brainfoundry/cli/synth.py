"""`brainfoundry synth`: generate the bundled benchmark data (FOMO layouts, NIfTI, QC PNGs)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from . import app

synth_app = typer.Typer(
    help="Generate realistic synthetic brain-MRI datasets from real anatomy (MNI152): a FOMO60K-"
    "style pretraining corpus or a FOMO25/FOMO26-style task with a clinically shifted test split.",
    no_args_is_help=True,
)


class Task(str, Enum):
    infarct = "infarct"
    meningioma = "meningioma"
    brainage = "brainage"
    brain_profile = "brain-profile"
    trigeminal = "trigeminal"
    polymicrogyria = "polymicrogyria"
    probe = "probe"


_OUT = typer.Option(..., "-o", "--output", help="Folder to create (must be new or empty).")
_RES = typer.Option(
    "2",
    "--resolution",
    help="Isotropic spacing in mm (1-8) or a preset: realistic=1, cpu=2, fast=3, tiny=5.",
)
_TASK_RES = typer.Option(
    None,
    "--resolution",
    help="Isotropic spacing in mm or a preset (realistic=1, cpu=2, fast=3, tiny=5); default 2, "
    "trigeminal 0.5 (its cropped slab allows 0.3-2 mm).",
)
_SEED = typer.Option(0, "--seed", help="Everything follows from this seed.")
_DIFF = typer.Option(
    0.5,
    "--difficulty",
    help="0 easy .. 1 hard: lesion size and contrast, distractors, individual ageing noise.",
)
_WORKERS = typer.Option(
    1, "--workers", "-j", help="Parallel processes (output does not depend on it)."
)
_QC = typer.Option(True, "--qc/--no-qc", help="Write QC montages (PNG) under OUTPUT/qc.")
_FORCE = typer.Option(False, "--force", help="Write into a non-empty output folder.")
_HEAD = typer.Option(
    False,
    "--head",
    help="Raw scans: keep a modelled head around the brain (skull, scalp, the tissue in front), "
    "not skull-stripped; the same seed gives the same brains and labels without it. Task "
    "cases get labels/.../brain_mask.nii.gz, the skull strip's reference.",
)
_DEFACE = typer.Option(False, "--deface", help="As --head, with the face cut off (defaced).")


def _run(
    kind: str,
    output: Path,
    n: int,
    n_test: int | None,
    resolution: str | None,
    seed: int,
    shift: float,
    difficulty: float,
    workers: int,
    qc: bool,
    force: bool,
    shift_parts: str | None = None,
    head: bool = False,
    deface: bool = False,
) -> None:
    from ..synth.config import DEFAULT_RESOLUTION, SHIFT_PARTS, SynthConfig, parse_resolution
    from ..synth.writers import generate

    res = DEFAULT_RESOLUTION.get(kind, 2.0) if resolution is None else parse_resolution(resolution)
    cfg = SynthConfig(
        kind=kind,
        n=n,
        n_test=n_test,
        resolution=res,
        seed=seed,
        shift=shift,
        shift_parts=tuple(
            p.strip() for p in (shift_parts or ",".join(SHIFT_PARTS)).split(",") if p.strip()
        ),
        difficulty=difficulty,
        workers=workers,
        qc=qc,
        head=head,
        deface=deface,
    )
    info = generate(cfg, output, progress=True, force=force)
    if kind == "pretrain":
        typer.echo(
            f"wrote {info['scans']} scans in {info['sessions']} sessions of "
            f"{info['subjects']} subjects to {output}"
        )
    else:
        counts = ", ".join(f"{k} {v['n']} ({v['domain']})" for k, v in info["splits"].items())
        typer.echo(f"wrote {kind}: {counts} to {output}")


@synth_app.command("pretrain")
def pretrain(
    output: Path = _OUT,
    n: int = typer.Option(40, "--n", help="Subjects (about 1.2 sessions and 3 scans each)."),
    resolution: str = _RES,
    seed: int = _SEED,
    shift: float = typer.Option(
        1.0,
        "--shift",
        help="Scanner variation in the corpus: sessions "
        "are shifted towards clinical by up to 0.4 x this (0..1).",
    ),
    difficulty: float = _DIFF,
    workers: int = _WORKERS,
    qc: bool = _QC,
    force: bool = _FORCE,
    head: bool = _HEAD,
    deface: bool = _DEFACE,
) -> None:
    """Unlabelled pretraining corpus in FOMO60K layout (sub_N/ses_M/<sequence>.nii.gz)."""
    _run("pretrain", output, n, None, resolution, seed, shift, difficulty, workers, qc, force,
         None, head, deface)  # fmt: skip


@synth_app.command("task")
def task(
    name: Task = typer.Argument(
        ...,
        help="infarct, meningioma, brainage, or brain-profile (brainage's cases with "
        "label.json: age and gm_ml, wm_ml, csf_ml, wmh_ml tissue volumes); FOMO26: trigeminal "
        "(T2 slab around the brainstem, seg {0,1 nerves,2 vessels}), polymicrogyria (T1, "
        "label 0/1; test scans keep a modelled head, defaced), probe (one t1/t2/flair per "
        "case, 4 classes, participants.csv with sex, age, site).",
    ),
    output: Path = _OUT,
    n: int = typer.Option(20, "--n", help="Fine-tuning cases (source domain)."),
    n_test: int = typer.Option(
        None, "--n-test", help="Test cases (clinical domain); default 2 x n."
    ),
    resolution: str = _TASK_RES,
    seed: int = _SEED,
    shift: float = typer.Option(
        1.0,
        "--shift",
        help="Clinical shift strength of the test split: "
        "0 = same domain as fine-tuning, 1 = full (thick slices, lower "
        "SNR, vendor contrast, bias, ghosting, partial coverage).",
    ),
    shift_parts: str = typer.Option(
        None,
        "--shift-parts",
        help="Shift only these parts, comma-separated, for robustness ablations: pose, "
        "contrast, coverage, acquisition (default: all).",
    ),
    difficulty: float = _DIFF,
    workers: int = _WORKERS,
    qc: bool = _QC,
    force: bool = _FORCE,
    head: bool = _HEAD,
    deface: bool = _DEFACE,
) -> None:
    """A FOMO25/FOMO26-style task: OUTPUT/{finetune,test}/{preprocessed,labels}/sub_N/ses_1/…

    brain-profile writes labels/sub_N/ses_1/label.json ({"age": 61.3, "gm_ml": 612.4, ...}):
    several regression targets per case, read and stored by `prepare --task brain-profile`.
    probe writes label.txt (the class index) and OUTPUT/{finetune,test}/participants.csv."""
    _run(
        name.value, output, n, n_test, resolution, seed, shift, difficulty, workers, qc, force,
        shift_parts, head, deface,
    )  # fmt: skip


app.add_typer(synth_app, name="synth")
