from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from brainfoundry.synth.ageing import atrophy_curve, draw_ageing
from brainfoundry.synth.cases import SessionSpec, make_session


def test_atrophy_accelerates_with_age():
    a = [atrophy_curve(x) for x in (20, 40, 60, 80, 90)]
    assert all(b > a_ for a_, b in zip(a[:-1], a[1:]))
    assert a[4] - a[3] > a[1] - a[0]


def test_brain_age_gap_grows_with_difficulty():
    rng = np.random.default_rng(0)
    easy = [draw_ageing(rng, 50.0, 0.0).brain_age - 50.0 for _ in range(400)]
    hard = [draw_ageing(rng, 50.0, 1.0).brain_age - 50.0 for _ in range(400)]
    assert np.std(hard) > 1.5 * np.std(easy)


def test_ventricles_and_csf_grow_with_age_across_a_cohort(anat):
    ages = np.linspace(20.0, 88.0, 20)
    vent, csf, wmh = [], [], []
    for i, age in enumerate(ages):
        s = make_session(
            SessionSpec(1000 + i, 2000 + i, float(age), ("t1",), distractors=False),
            anat,
            keep_tissues=True,
        )
        t = s.tissues.numpy()
        vent.append(t[4].sum() / t[:5].sum())  # relative to head size, as a radiologist reads it
        csf.append(t[3].sum() / t[:5].sum())
        wmh.append(s.meta["ageing"]["wmh_count"])
    assert spearmanr(ages, vent)[0] > 0.6
    assert np.mean(vent[-5:]) > 1.4 * np.mean(vent[:5])
    assert spearmanr(ages, csf)[0] > 0.6
    assert spearmanr(ages, wmh)[0] > 0.3
    # but not exactly: individual variation leaves residual scatter
    resid = np.asarray(vent) - np.poly1d(np.polyfit(ages, vent, 2))(ages)
    assert np.std(resid) > 0.03 * np.mean(vent)
