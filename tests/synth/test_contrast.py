from __future__ import annotations

import numpy as np
import pytest

from brainfoundry.synth.cases import SessionSpec, make_session
from brainfoundry.synth.contrast import BASE, CHANNELS, ORDER, VENDORS, draw_contrast

SEQS = ("t1", "t2", "flair", "pd", "t1c", "dwi_b1000", "adc", "t2s", "swi")
# expected orderings of the mean signal in pure tissue: (brighter, darker) pairs
EXPECTED = {
    "t1": [("wm", "cgm"), ("cgm", "csf")],
    "t1c": [("wm", "cgm"), ("cgm", "csf")],
    "t2": [("csf", "cgm"), ("cgm", "wm")],
    "flair": [("cgm", "wm"), ("wm", "csf")],  # CSF suppressed
    "pd": [("csf", "wm"), ("cgm", "wm")],
    "dwi_b1000": [("cgm", "csf"), ("wm", "csf")],  # free water dark at b=1000; GM ~ WM
    "adc": [("csf", "cgm"), ("cgm", "wm")],  # free water diffuses fastest
    "t2s": [("csf", "cgm"), ("cgm", "wm")],
    "swi": [("csf", "wm"), ("cgm", "wm")],
}


@pytest.mark.parametrize("vendor", [None, *VENDORS])
def test_drawn_means_keep_physical_orderings(vendor):
    rng = np.random.default_rng(0)
    for _ in range(30):
        c = draw_contrast(rng, shift=1.0, vendor=vendor)
        for seq, order in ORDER.items():
            m = c.means[seq]
            assert all(m[a] > m[b] for a, b in zip(order[:-1], order[1:])), (seq, m)
    assert set(BASE) == set(c.means)


@pytest.mark.parametrize("shift,vendor", [(0.0, None), (1.0, "clinical_a"), (1.0, "clinical_c")])
def test_tissue_contrast_orderings_in_generated_images(anat, shift, vendor):
    """Median signal of pure-tissue voxels, pooled over three subjects (bias fields average)."""
    pooled: dict = {}
    for seed in range(3):
        spec = SessionSpec(11 + seed, 12, 40.0, SEQS, shift=shift, vendor=vendor, distractors=False)
        s = make_session(spec, anat, keep_tissues=True)
        t = s.tissues.numpy()
        pure = {n: (t[i] > 0.8) & s.brain for i, n in enumerate(CHANNELS) if n != "tumour"}
        pure["csf"] = ((t[3] + t[4]) > 0.8) & s.brain
        for seq in EXPECTED:
            img = s.images[seq].astype(np.float64)
            ref = np.median(img[s.brain])  # scanner gain differs per subject
            for name, m in pure.items():
                pooled.setdefault((seq, name), []).append(img[m] / ref)
    for seq, pairs in EXPECTED.items():
        for bright, dark in pairs:
            hi = np.median(np.concatenate(pooled[seq, bright]))
            lo = np.median(np.concatenate(pooled[seq, dark]))
            assert hi > lo, (seq, bright, hi, dark, lo)
