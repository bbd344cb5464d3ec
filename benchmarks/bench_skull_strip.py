"""skull-strip benchmark: brain extraction against the generator's own brain masks, `auto`'s
verdict, and the seconds to preprocess one raw 1 mm head session.

Synthetic sessions (MNI152 anatomy, `synth` with a modelled head, as `synth --head/--deface`
writes them) at 1 and 2 mm, source and fully shifted (clinical) domain. For each, deepbet
(`data.skull_strip`) strips T1, T2 and FLAIR on their own; Dice is against the brain the same
session shows without the head. `auto`'s verdict is checked on the head, the defaced head and
the skull-stripped brain of every session. Then one raw session end to end
(`preprocess_group` at 1 mm, skull_strip=auto, coregister=auto): T1, T2 and FLAIR with a
defaced head, every scan turned to another axis order, the FLAIR on a 1 x 1 x 3 mm grid moved
by 5 mm and 5°; the median of three runs, and its parts. The target is ≤ 20 s on two cores
(FOMO's budget is 120 s per case).

    python -m benchmarks.bench_skull_strip --out benchmarks/results/skull_strip.md
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine, table

SEQS = ("t1", "t2", "flair")


def _sessions(res: float, seeds: list[int]):
    from brainfoundry.synth.anatomy import build_anatomy
    from brainfoundry.synth.cases import SessionSpec, make_session

    anat = build_anatomy(res)
    for seed in seeds:
        for shift in (0.0, 1.0):
            made = {}
            for kind, head, deface in (("brain", False, True), ("head", True, False),
                                       ("defaced", True, True)):  # fmt: skip
                spec = SessionSpec(seed, 1000 + seed, 30.0 + 15 * seed, SEQS, shift=shift,
                                   head=head, deface=deface)  # fmt: skip
                made[kind] = make_session(spec, anat)
            yield seed, shift, made, anat.affine


def accuracy(resolutions: list[float], seeds: list[int]) -> tuple[list[list], list[list]]:
    from brainfoundry.data.skull_strip import auto_verdict, brain_mask
    from brainfoundry.io.volume import Volume

    rows, verdicts = [], {k: [0, 0] for k in ("brain", "head", "defaced")}
    for res in resolutions:
        per: dict[tuple, list] = {}
        for _seed, shift, made, affine in _sessions(res, seeds):
            for kind, s in made.items():
                v = Volume(s.images["t1"].astype(np.float32), affine, "t1.nii.gz")
                want = "stripped" if kind == "brain" else None
                verdicts[kind][0] += auto_verdict(v) == want
                verdicts[kind][1] += 1
            for kind in ("head", "defaced"):
                s = made[kind]
                for seq in SEQS:
                    v = Volume(s.images[seq].astype(np.float32), affine, f"{seq}.nii.gz")
                    t = time.perf_counter()
                    m = brain_mask(v)
                    dt = time.perf_counter() - t
                    ref = s.brain_mask
                    dice = 2 * (m & ref).sum() / (m.sum() + ref.sum())
                    per.setdefault((kind, seq, shift), []).append((dice, dt))
        for (kind, seq, shift), vals in sorted(per.items()):
            d = [x for x, _ in vals]
            rows.append([f"{res:g} mm", kind, seq, "clinical" if shift else "source", len(d),
                         round(min(d), 3), round(statistics.mean(d), 3),
                         round(statistics.median([t for _, t in vals]), 2)])  # fmt: skip
    vrows = [[k, f"{a} of {n}"] for k, (a, n) in verdicts.items()]
    return rows, vrows


COLIN = Path("/usr/share/mricron/templates")  # Debian's mricron-data (scripts/install.sh)


def colin27() -> list[list]:
    """deepbet on Colin27's 1 mm head against its BET brain, and `auto` on both."""
    import nibabel as nib

    from brainfoundry.data.skull_strip import auto_verdict, brain_mask
    from brainfoundry.io.volume import Volume

    if not (COLIN / "ch2.nii.gz").exists():
        return []
    head, bet = nib.load(COLIN / "ch2.nii.gz"), nib.load(COLIN / "ch2bet.nii.gz")
    h = Volume(np.asarray(head.dataobj, np.float32), head.affine, "ch2.nii.gz")
    b = Volume(np.asarray(bet.dataobj, np.float32), bet.affine, "ch2bet.nii.gz")
    brain_mask(h)  # the model's first call loads it
    t = time.perf_counter()
    m = brain_mask(h)
    dt = time.perf_counter() - t
    ref = b.data > 0
    dice = 2 * (m & ref).sum() / (m.sum() + ref.sum())
    ml = 1e-3 * float(np.prod(head.header.get_zooms()[:3]))
    return [["Colin27 T1 head (ch2)", round(float(dice), 3), round(m.sum() * ml, 0),
             round(ref.sum() * ml, 0), round(dt, 2), str(auto_verdict(h)),
             str(auto_verdict(b))]]  # fmt: skip


def _turned(img: np.ndarray, affine: np.ndarray):
    import nibabel.orientations as nio

    turn = np.array([[2, -1], [0, 1], [1, -1]], float)
    return nio.apply_orientation(img, turn), affine @ nio.inv_ornt_aff(turn, img.shape)


def _moved_thick(img: np.ndarray, affine: np.ndarray):
    """The FLAIR on a 1 x 1 x 3 mm grid (every third slice), moved 5 mm and 5° about z."""
    c, s = math.cos(math.radians(5)), math.sin(math.radians(5))
    centre = affine @ np.array([*(np.array(img.shape) - 1) / 2, 1.0])
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot, centre[:3] - rot @ centre[:3] + [5.0, 0, 0]
    thick = np.eye(4)
    thick[2, 2] = 3.0
    return img[:, :, ::3], m @ affine @ thick


def raw_session_seconds(repeats: int) -> tuple[list[list], dict]:
    from brainfoundry.data import coregister, skull_strip
    from brainfoundry.data.preprocess import PreprocessConfig, preprocess_group
    from brainfoundry.io.volume import Volume
    from brainfoundry.synth.anatomy import build_anatomy
    from brainfoundry.synth.cases import SessionSpec, make_session

    anat = build_anatomy(1.0)
    s = make_session(SessionSpec(7, 1007, 64.0, SEQS, shift=1.0, head=True), anat)
    vols = []
    for seq in SEQS:
        img, aff = _turned(s.images[seq].astype(np.float32), anat.affine)
        if seq == "flair":
            img, aff = _moved_thick(img, aff)
        vols.append(Volume(np.ascontiguousarray(img), aff, f"{seq}.nii.gz"))
    parts: dict[str, list[float]] = {"co-registration": [], "brain extraction": []}

    def timed(module, name, key):
        fn = getattr(module, name)

        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                parts[key][-1] += time.perf_counter() - t

        return fn, wrapper

    from brainfoundry.data import preprocess as pp

    totals, shape = [], None
    orig = {"align_session": pp.align_session, "skull_strip": pp.skull_strip}
    try:
        pp.align_session = timed(coregister, "align_session", "co-registration")[1]
        pp.skull_strip = timed(skull_strip, "skull_strip", "brain extraction")[1]
        for _ in range(repeats):
            for v in parts.values():
                v.append(0.0)
            t = time.perf_counter()
            out = preprocess_group(vols, PreprocessConfig())
            totals.append(time.perf_counter() - t)
            shape = out.images[0].shape
    finally:
        pp.align_session, pp.skull_strip = orig["align_session"], orig["skull_strip"]
    total = statistics.median(totals)
    rows = [[k, round(statistics.median(v), 2)] for k, v in parts.items()]
    rest = total - sum(r[1] for r in rows)
    rows += [["reorientation, resampling, crop, normalisation", round(rest, 2)],
             ["total", round(total, 2)]]  # fmt: skip
    return rows, {"shape": shape, "runs": [round(t, 2) for t in totals], "warnings": out.warnings}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--seeds", type=int, default=2, help="subjects per resolution and domain")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    seeds = list(range(args.seeds))
    real = colin27()
    acc, verdicts = accuracy([1.0, 2.0], seeds)
    timing, info = raw_session_seconds(args.repeats)
    total = timing[-1][1]
    lines = [
        "# Brain extraction and raw-session preprocessing",
        "",
        f"Machine: {machine()}.",
        "Command: `python -m benchmarks.bench_skull_strip"
        + (f" --seeds {args.seeds}" if args.seeds != 2 else "")
        + (f" --repeats {args.repeats}" if args.repeats != 3 else "")
        + " --out benchmarks/results/skull_strip.md`",
        "",
        "## deepbet against the generator's brain mask (synthetic heads)",
        "",
        "Dice of each scan's mask on its own, against the brain the same session shows without "
        "a head; seconds per scan (median).",
        "",
        table(
            [
                "resolution",
                "head",
                "sequence",
                "domain",
                "scans",
                "min Dice",
                "mean Dice",
                "s/scan",
            ],
            acc,
        ),  # fmt: skip
        "",
        "## Real anatomy: Colin27 against its BET brain (Debian's mricron-data)",
        "",
        "`auto` on the head should be None (strip it), on the BET brain `stripped`.",
        "",
        table(
            ["scan", "Dice", "deepbet mL", "BET mL", "s", "auto (head)", "auto (BET brain)"], real
        )
        if real
        else "mricron-data is not installed: not measured.",  # fmt: skip
        "",
        "## `auto`'s verdict (the T1 of every session above)",
        "",
        "Right when it leaves the skull-stripped brain as it is and strips both heads.",
        "",
        table(["scan", "right"], verdicts),
        "",
        "## One raw 1 mm session, preprocessed (`preprocess_group`, default settings)",
        "",
        f"T1, T2, FLAIR with a defaced head, turned to another axis order, the FLAIR on a "
        f"1 x 1 x 3 mm grid moved by 5 mm / 5°; median of {args.repeats} runs "
        f"({', '.join(map(str, info['runs']))} s); stored arrays {list(info['shape'])}.",
        "",
        table(["step", "seconds"], timing),
        "",
        f"Total {total:.1f} s against the 20 s target: " + ("met." if total <= 20 else "not met."),
        "",
        "What preprocessing said: " + "; ".join(info["warnings"]),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
