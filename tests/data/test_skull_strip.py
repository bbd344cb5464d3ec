"""Brain extraction (`preprocess.skull_strip`): `auto` leaves skull-stripped scans and slabs as
they are and strips heads (defaced or not) with deepbet, whose mask agrees with the generator's
own brain; a scan without a brain is one clear line; the mask zeroes every scan of a session;
a store or card from before the setting existed reads as "off"."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brainfoundry.data.preprocess import PreprocessConfig, preprocess_group, recipe
from brainfoundry.data.skull_strip import auto_verdict, skull_strip, strip_reference
from brainfoundry.errors import ConfigError, InputError
from brainfoundry.io.volume import Volume


@pytest.fixture(scope="module")
def heads():
    """One subject at 4 mm, as stripped, with a head and defaced: {name: Session}, affine."""
    from brainfoundry.synth.anatomy import build_anatomy
    from brainfoundry.synth.cases import SessionSpec, make_session

    anat = build_anatomy(4.0)
    out = {}
    for name, head, deface in (("brain", False, True), ("head", True, False),
                               ("defaced", True, True)):  # fmt: skip
        spec = SessionSpec(3, 103, 55.0, ("t2", "t1"), shift=1.0, head=head, deface=deface)
        out[name] = make_session(spec, anat)
    return out, anat.affine


def _vols(session, affine):
    return [
        Volume(v.astype(np.float32), affine, f"in/{k}.nii.gz") for k, v in session.images.items()
    ]


def _dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_auto_tells_a_stripped_brain_from_a_head_and_a_slab(heads):
    s, affine = heads
    assert auto_verdict(_vols(s["brain"], affine)[0]) == "stripped"
    assert auto_verdict(_vols(s["head"], affine)[0]) is None
    assert auto_verdict(_vols(s["defaced"], affine)[0]) is None
    slab = Volume(s["head"].images["t2"][:, :, 8:16].astype(np.float32), affine, "slab.nii.gz")
    assert auto_verdict(slab) == "slab"  # 32 mm: a field of view smaller than any brain


def test_the_session_is_stripped_on_its_t1_and_the_mask_matches_the_brain(heads):
    s, affine = heads
    for name in ("head", "defaced"):
        vols = _vols(s[name], affine)
        assert strip_reference(vols) == 1  # the T1, listed second
        out = skull_strip(vols, "auto")
        assert out.record["method"] == "deepbet" and out.record["sequence"] == "t1.nii.gz"
        assert "skull-stripped (deepbet" in (out.note or "")
        kept = [v.data > 0 for v in out.vols]
        assert (kept[0] == kept[1]).all()  # one mask for every scan
        # measured 0.97 (head and defaced) at 4 mm; at 1-2 mm see skull_strip.md
        assert _dice(kept[1], s[name].brain_mask) > 0.9, name
        want = s[name].brain_mask.sum() * 0.064  # mL of 4 mm voxels
        assert abs(out.record["brain_ml"] - want) < 0.1 * want


def test_auto_leaves_a_stripped_session_bit_for_bit(heads):
    s, affine = heads
    vols = _vols(s["brain"], affine)
    out = skull_strip(vols, "auto")
    assert out.note is None and out.record == {"method": "auto", "left": "stripped"}
    assert all(a is b for a, b in zip(out.vols, vols))
    cfg = PreprocessConfig(spacing=(4.0, 4.0, 4.0))
    a = preprocess_group(vols, cfg)
    b = preprocess_group(vols, PreprocessConfig(spacing=(4.0, 4.0, 4.0), skull_strip="off"))
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))
    assert a.qc["skull_strip"]["left"] == "stripped"


def test_a_stripped_head_preprocesses_like_the_brain_alone(heads):
    """The head, stripped, crops to the brain's box and keeps about the brain's voxels."""
    s, affine = heads
    cfg = PreprocessConfig(spacing=(4.0, 4.0, 4.0))
    head = preprocess_group(_vols(s["defaced"], affine), cfg)
    brain = preprocess_group(_vols(s["brain"], affine), cfg)
    assert any("skull-stripped (deepbet" in w for w in head.warnings)
    grow = np.array(head.images[0].shape) - np.array(brain.images[0].shape)
    assert (np.abs(grow) <= 3).all(), (head.images[0].shape, brain.images[0].shape)
    unstripped = preprocess_group(_vols(s["defaced"], affine), PreprocessConfig(
        spacing=(4.0, 4.0, 4.0), skull_strip="off"))  # fmt: skip
    assert unstripped.fg_mask.sum() > 1.3 * head.fg_mask.sum()  # the skull and scalp
    assert abs(int(head.fg_mask.sum()) - int(brain.fg_mask.sum())) < 0.1 * brain.fg_mask.sum()


def test_a_scan_without_a_brain_is_refused_in_one_line(heads):
    _, affine = heads
    rng = np.random.default_rng(0)
    empty = Volume(np.zeros((40, 48, 40), np.float32), affine, "in/t1.nii.gz")
    noise = Volume(rng.uniform(0, 1, (40, 48, 40)).astype(np.float32), affine, "in/t1.nii.gz")
    for vol in (empty, noise):
        with pytest.raises(InputError) as e:
            skull_strip([vol], "deepbet")
        assert str(e.value).startswith("in/t1.nii.gz: brain extraction ")
        assert "\n" not in str(e.value)


def test_the_setting_is_checked_and_old_recipes_read_as_off():
    with pytest.raises(ConfigError, match="skull_strip 'bet'"):
        PreprocessConfig(skull_strip="bet")  # type: ignore[arg-type]
    assert recipe({"normalization": "zscore"})["skull_strip"] == "off"
    assert recipe({"normalization": "zscore", "skull_strip": "auto"})["skull_strip"] == "auto"


def test_a_store_from_before_skull_strip_refuses_auto_and_says_which_setting(tmp_path, fomo60k):
    from brainfoundry.config import to_dict
    from brainfoundry.data.prepare import PrepareConfig, prepare
    from brainfoundry.errors import BrainFoundryError

    cfg = PrepareConfig()
    cfg.preprocess.spacing = (6.0, 6.0, 6.0)
    old = to_dict(cfg.preprocess)
    del old["skull_strip"]
    store = tmp_path / "store"
    store.mkdir()
    (store / "plan.json").write_text(json.dumps({"preprocess": old, "array": to_dict(cfg.array)}))
    want = "preprocess.skull_strip: store 'off', asked 'auto'"
    with pytest.raises(BrainFoundryError, match=want):
        prepare(fomo60k, store, cfg, progress=False)
    cfg.preprocess.skull_strip = "off"
    assert prepare(fomo60k, store, cfg, progress=False).n_done == 4  # what it did then
