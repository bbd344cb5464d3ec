"""The nerves and vessels around the brainstem, drawn per subject in template space from the
measured landmarks (`brainstem`): the trigeminal nerves (labelled nerves) from their root
entry zones through the cerebellopontine cistern towards Meckel's cave; the basilar, superior
cerebellar (looping down onto the nerve in a neurovascular conflict), posterior cerebral and
anterior inferior cerebellar arteries and the superior petrosal veins (labelled vessels); and,
as unlabelled look-alikes, the facial/vestibulocochlear, abducens and oculomotor nerves."""

from __future__ import annotations

import numpy as np

from .brainstem import Brainstem
from .tubes import Tube, tube

SIDES = (("r", 1.0), ("l", -1.0))
CONFLICT_P = 0.35  # a superior cerebellar artery loop touching the nerve's root entry zone


def _around(
    stem: Brainstem, thetas: np.ndarray, zs: np.ndarray, gap: np.ndarray, side: float
) -> np.ndarray:
    """Points hugging the brainstem surface at angles `thetas` (0 anterior) and levels `zs`,
    `gap` mm outside it, on one side (+1 right, -1 left)."""
    out = []
    for th, z, g in zip(thetas, zs, gap):
        c = stem.centre_at(z)
        r = min(float(stem.radius(np.array([th]), z)[0]), 21.0) + g
        out.append(c + np.array([side * np.sin(th) * r, np.cos(th) * r, z - c[2]]))
    return np.array(out)


def trigeminal_nerve(rng: np.random.Generator, stem: Brainstem, name: str, side: float) -> Tube:
    """From 1 mm inside the lateral pons anterolaterally (20-50 degrees off the sagittal
    plane) 10-14 mm through the cistern: of 12 tries, the course through the least tissue."""
    best, best_cost = None, np.inf
    start = stem.rez[0 if side > 0 else 1] + np.array(
        [-side * 1.0, rng.normal(0.0, 1.0), rng.normal(0.0, 1.0)]
    )
    for _ in range(12):
        phi, eps = np.deg2rad(rng.uniform(20.0, 50.0)), np.deg2rad(rng.uniform(-15.0, 15.0))
        d = np.array([side * np.sin(phi) * np.cos(eps), np.cos(phi) * np.cos(eps), np.sin(eps)])
        length = rng.uniform(10.0, 14.0)
        mid = start + d * length * 0.5 + rng.normal(0.0, 0.8, size=3)
        ctrl = np.stack([start, mid, start + d * length])
        t = tube(name, "nerve", ctrl, rng.uniform(1.0, 1.35))
        cost = float(stem.tissue_at(t.points[t.points.shape[0] // 4 :]).mean())
        if cost < best_cost:
            best, best_cost = t, cost
        if cost < 0.15:
            break
    assert best is not None
    r0 = float(best.radius[0])
    return Tube(best.name, "nerve", best.points, np.linspace(r0, r0 * rng.uniform(1.1, 1.3),
                                                             len(best.points)))  # fmt: skip


def basilar(rng: np.random.Generator, stem: Brainstem) -> tuple[Tube, np.ndarray]:
    """In the prepontine cistern from below the pons to its tip above the pontomesencephalic
    junction, with some tortuosity: (the artery, its tip)."""
    r = rng.uniform(1.3, 1.8)
    zs = np.linspace(stem.pons[2] - 16.0, stem.top_z + rng.uniform(0.5, 2.5), 9)
    amp, phase = rng.uniform(0.0, 3.5), rng.uniform(0, 2 * np.pi)
    rows = []
    for z in zs:
        front = stem.front[int(np.clip(round(z), min(stem.front), max(stem.front)))]
        x = amp * np.sin(phase + (z - zs[0]) / 14.0)
        rows.append([x, front + rng.uniform(0.3, 1.5) + r, z])
    ctrl = np.array(rows)
    return tube("basilar", "artery", ctrl, r, r * rng.uniform(0.85, 1.0)), ctrl[-1]


def superior_cerebellar(
    rng: np.random.Generator, stem: Brainstem, tip: np.ndarray, name: str, side: float
) -> tuple[Tube, bool]:
    """From just below the basilar tip around the upper pons; in a conflict its loop sags to
    the root entry zone (about 90 degrees round): (the artery, conflict)."""
    conflict = bool(rng.uniform() < CONFLICT_P)
    z0 = stem.top_z - rng.uniform(0.0, 2.5)
    sag = z0 - stem.rez[0, 2] - rng.uniform(0.0, 1.5) if conflict else rng.uniform(0.0, 3.0)
    th = np.linspace(0.25, rng.uniform(1.7, 2.0), 7)
    zs = z0 - sag * np.sin(np.pi * np.clip((th - 0.25) / 1.5, 0.0, 1.0)) ** 2
    r = rng.uniform(0.6, 0.9)
    pts = _around(stem, th, zs, np.full(len(th), r + rng.uniform(0.5, 1.5)), side)
    ctrl = np.vstack([tip + np.array([side * 1.5, 0.0, -1.0]), pts])
    return tube(name, "artery", ctrl, r), conflict


def posterior_cerebral(
    rng: np.random.Generator, stem: Brainstem, tip: np.ndarray, name: str, side: float
) -> Tube:
    """From the basilar tip around the midbrain, above the superior cerebellar artery."""
    r = rng.uniform(0.8, 1.1)
    th = np.linspace(0.3, rng.uniform(1.8, 2.3), 6)
    zs = np.full(len(th), tip[2] + rng.uniform(1.0, 3.0))
    pts = _around(stem, th, zs, np.full(len(th), r + rng.uniform(0.5, 2.0)), side)
    return tube(name, "artery", np.vstack([tip + np.array([side * 1.5, 0.0, 0.5]), pts]), r)


def anterior_inferior_cerebellar(
    rng: np.random.Generator, stem: Brainstem, name: str, side: float
) -> Tube:
    """From the lower basilar round the lower pons, then out into the cerebellopontine angle,
    below the trigeminal nerve."""
    z = stem.pons[2] - rng.uniform(6.0, 10.0)
    r = rng.uniform(0.45, 0.7)
    th = np.linspace(0.1, rng.uniform(1.3, 1.6), 5)
    pts = _around(stem, th, np.full(len(th), z), np.full(len(th), r + 1.0), side)
    out = pts[-1] + np.array([side * rng.uniform(5.0, 8.0), rng.uniform(-1.0, 2.0), 1.0])
    return tube(name, "artery", np.vstack([pts, out]), r)


def petrosal_vein(rng: np.random.Generator, stem: Brainstem, name: str, side: float) -> Tube:
    """From the lateral pons near the nerve up and out to the petrous ridge."""
    rez = stem.rez[0 if side > 0 else 1]
    start = rez + np.array([0.0, rng.uniform(-4.0, 1.0), rng.choice([-1.0, 1.0]) * 3.5])
    end = start + np.array([side * rng.uniform(7.0, 10.0), rng.uniform(-2.0, 3.0), 5.0])
    mid = 0.5 * (start + end) + rng.normal(0.0, 1.0, size=3)
    return tube(name, "vein", np.stack([start, mid, end]), rng.uniform(0.5, 0.9))


def cranial_look_alikes(rng: np.random.Generator, stem: Brainstem, side: float) -> list[Tube]:
    """Unlabelled nerves: facial/vestibulocochlear (to the internal auditory canal), abducens
    (up the clivus), oculomotor (forward from the interpeduncular fossa), each drawn or not."""
    s = "r" if side > 0 else "l"
    out = []
    if rng.uniform() < 0.9:
        z = stem.pons[2] - rng.uniform(10.0, 13.0)
        a = _around(stem, np.array([1.75]), np.array([z]), np.array([0.5]), side)[0]
        b = a + np.array([side * rng.uniform(8.0, 12.0), rng.uniform(0.0, 3.0), rng.normal()])
        out.append(tube(f"facial_vestibulocochlear_{s}", "other_nerve", np.stack([a, b]), 1.0))
    if rng.uniform() < 0.6:
        z = stem.pons[2] - rng.uniform(11.0, 14.0)
        a = np.array([side * rng.uniform(3.0, 6.0), stem.centre_at(z)[1], z])
        a[1] = stem.front[int(np.clip(round(z), min(stem.front), max(stem.front)))] + 0.5
        b = a + np.array([side * rng.uniform(1.0, 3.0), rng.uniform(4.0, 7.0), 15.0])
        out.append(tube(f"abducens_{s}", "other_nerve", np.stack([a, b]), rng.uniform(0.3, 0.4)))
    if rng.uniform() < 0.7:
        z = stem.top_z + rng.uniform(1.0, 2.5)
        a = _around(stem, np.array([0.35]), np.array([z]), np.array([0.3]), side)[0]
        b = a + np.array([side * rng.uniform(4.0, 7.0), rng.uniform(8.0, 12.0), 2.0])
        out.append(tube(f"oculomotor_{s}", "other_nerve", np.stack([a, b]), 0.75))
    return out


def draw_structures(
    rng: np.random.Generator, stem: Brainstem, distractors: bool
) -> tuple[list[Tube], dict]:
    """One subject's nerves and vessels (+ look-alikes when `distractors`): (tubes, summary)."""
    tubes = []
    ba, tip = basilar(rng, stem)
    tubes.append(ba)
    conflicts = {}
    for s, side in SIDES:
        tubes.append(trigeminal_nerve(rng, stem, f"trigeminal_{s}", side))
        sca, conflicts[s] = superior_cerebellar(rng, stem, tip, f"sca_{s}", side)
        tubes += [sca, posterior_cerebral(rng, stem, tip, f"pca_{s}", side)]
        if rng.uniform() < 0.85:
            tubes.append(anterior_inferior_cerebellar(rng, stem, f"aica_{s}", side))
        if rng.uniform() < 0.5:
            tubes.append(petrosal_vein(rng, stem, f"petrosal_vein_{s}", side))
        if distractors:
            tubes += cranial_look_alikes(rng, stem, side)
    return tubes, {
        "conflict": conflicts,
        "look_alikes": sum(t.kind == "other_nerve" for t in tubes),
    }
