import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from brainfoundry.data.arrays import ArrayFormat, read_array, write_array
from brainfoundry.data.prepare import PrepareConfig, prepare
from brainfoundry.data.preprocess import PreprocessConfig
from brainfoundry.data.store import Store, merge
from brainfoundry.errors import BrainFoundryError
from tests.conftest import save

CFG = PrepareConfig(preprocess=PreprocessConfig(spacing=(8.0, 8.0, 8.0)))


def _digest(root):
    return {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_array_crop_reads_match_full(tmp_path):
    i, j, k = np.meshgrid(*(np.arange(n) for n in (70, 40, 33)), indexing="ij")
    x = (np.sin(i / 7.0) * np.cos(j / 5.0) + k / 33).astype(np.float16)
    n = write_array(tmp_path / "a.b2nd", x, ArrayFormat(chunk=32, block=8))
    assert 0 < n < x.nbytes
    np.testing.assert_array_equal(read_array(tmp_path / "a.b2nd"), x)
    box = (slice(5, 69), slice(0, 17), slice(30, 33))
    np.testing.assert_array_equal(read_array(tmp_path / "a.b2nd", box), x[box])


def test_prepare_fomo60k_builds_manifest_plan_and_arrays(tmp_path, fomo60k):
    before = _digest(fomo60k)
    store = tmp_path / "store"
    res = prepare(fomo60k, store, CFG, progress=False)
    assert res.errors == [] and res.n_scans == 9 and res.n_sessions == 4
    assert _digest(fomo60k) == before, "inputs must stay untouched"
    s = Store(store)
    m = s.manifest
    assert set(m["modality"]) == {"t1", "flair"} and len(m) == 9
    assert {
        "subject",
        "session",
        "modality",
        "shape",
        "spacing",
        "source",
        "quality",
        "label",
        "geometry",
        "group",
    } <= set(m.columns)
    assert s.plan["n_sessions"] == 4 and s.plan["layout"] == "fomo60k"
    assert s.plan["preprocess"]["spacing"] == [8.0, 8.0, 8.0]
    # co-registered scans of a session share one crop and one group
    g = s.groups()
    assert sorted(len(v) for v in g.values()) == [2, 2, 2, 3]
    for sids in g.values():
        assert len({tuple(s.row(i)["shape"]) for i in sids}) == 1
    x = s.read(m.scan_id[0])
    assert x.dtype == np.float32 and list(x.shape) == list(m["shape"][0])
    assert not list(store.rglob("*.tmp*")), "no temp files left"


def test_resume_skips_finished_and_redoes_lost_work(tmp_path, fomo60k):
    store = tmp_path / "store"
    prepare(fomo60k, store, CFG, progress=False)
    first = pd.read_parquet(store / "manifest.parquet")
    res = prepare(fomo60k, store, CFG, progress=False)
    assert res.n_skipped == 4 and res.n_done == 0
    # a run killed mid-session: its record never got written, a stale temp file lies around
    rec = sorted((store / "records").glob("*sub_1*"))[0]
    rec.unlink()
    (store / "arrays" / ".fake.tmp.b2nd").write_bytes(b"half")
    res = prepare(fomo60k, store, CFG, progress=False)
    assert res.n_done == 1 and res.n_skipped == 3
    again = pd.read_parquet(store / "manifest.parquet")
    pd.testing.assert_frame_equal(first.drop(columns="nbytes"), again.drop(columns="nbytes"))


def test_shards_then_merge_equal_one_run(tmp_path, fomo60k):
    one = tmp_path / "one"
    prepare(fomo60k, one, CFG, progress=False)
    sharded = tmp_path / "sharded"
    for i in range(2):
        prepare(fomo60k, sharded, CFG, progress=False, shard=(i, 2))
    assert not (sharded / "manifest.parquet").exists()
    df = merge(sharded)
    want = pd.read_parquet(one / "manifest.parquet")
    assert list(df["scan_id"]) == list(want["scan_id"])
    for a, b in zip(df["scan_id"], want["scan_id"]):
        np.testing.assert_array_equal(Store(sharded).read(a), Store(one).read(b))


def test_parallel_workers_give_the_same_store(tmp_path, fomo60k):
    import torch

    threads = torch.get_num_threads()
    prepare(fomo60k, tmp_path / "a", CFG, progress=False)
    assert torch.get_num_threads() == threads  # an in-process prepare leaves the caller's BLAS
    prepare(fomo60k, tmp_path / "b", CFG, progress=False, workers=2)
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    for sid in a.manifest["scan_id"]:
        np.testing.assert_array_equal(a.read(sid), b.read(sid))


def test_bad_inputs_are_reported_and_the_rest_is_kept(tmp_path, mni):
    data, affine = mni
    root = tmp_path / "task"
    pre, lab = root / "preprocessed", root / "labels"
    for s in range(1, 9):
        save(pre / f"sub_{s}" / "ses_1" / "flair.nii.gz", data, affine)
        (lab / f"sub_{s}" / "ses_1").mkdir(parents=True)
        (lab / f"sub_{s}" / "ses_1" / "label.txt").write_text(str(s % 2))
    nan = data.copy()
    nan[0, 0, 0] = np.inf
    save(pre / "sub_1" / "ses_1" / "adc.nii.gz", nan, affine)
    save(pre / "sub_2" / "ses_1" / "adc.nii.gz", np.zeros_like(data), affine)
    save(pre / "sub_3" / "ses_1" / "adc.nii.gz", np.stack([data] * 3, -1), affine)
    (pre / "sub_4" / "ses_1" / "adc.nii.gz").write_bytes(b"\x1f\x8b broken")
    save(pre / "sub_5" / "ses_1" / "mystery.nii.gz", data, affine)
    save(lab / "sub_6" / "ses_1" / "seg.nii.gz", np.zeros((3, 3, 3), np.uint8), affine)
    save(pre / "sub_7" / "ses_1" / "dwi_b1000.nii.gz", data, affine * [[1], [1], [0], [1]])
    store = tmp_path / "store"
    logged = []
    res = prepare(root, store, CFG, progress=False, log=logged.append)
    problems = {json.dumps(e) for e in res.errors}
    lines = (store / "errors.jsonl").read_text().splitlines()
    assert len(lines) == len(res.errors) == len(logged) == 7
    for frag in (
        "NaN or Inf",
        "empty",
        "4D image",
        "cannot read NIfTI",
        "unknown sequence",
        "label shape",
        "singular",
    ):
        assert any(frag in p for p in problems), frag
    m = Store(store).manifest
    # sub_6's label mismatches, so its session is dropped; every other flair made it
    assert sorted(m[m.modality == "flair"]["subject"]) == [
        f"sub_{s}" for s in (1, 2, 3, 4, 5, 7, 8)
    ]
    assert set(m["label"]) == {0.0, 1.0}


def test_store_refuses_mixed_settings_and_nesting(tmp_path, fomo60k):
    store = tmp_path / "store"
    prepare(fomo60k, store, CFG, progress=False)
    other = PrepareConfig(preprocess=PreprocessConfig(spacing=(4.0, 4.0, 4.0)))
    with pytest.raises(BrainFoundryError, match="prepared with other settings"):
        prepare(fomo60k, store, other, progress=False)
    with pytest.raises(BrainFoundryError, match="inside the raw data"):
        prepare(fomo60k, fomo60k / "store", CFG, progress=False)
    with pytest.raises(BrainFoundryError, match="not a brainfoundry store"):
        Store(tmp_path)
