"""`brainfoundry embed`: real NIfTI files, a tiny real pretraining run and real fine-tuned task
models (shared and stem channels) from `finetune`; one volume and batch mode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from brainfoundry.cli import main
from brainfoundry.models.backbones import create_backbone
from brainfoundry.models.card import ModelCard
from brainfoundry.models.checkpoint import save_model
from tests.conftest import mni_small, save


def _run(root: Path, seed: int = 0, spacing: float = 6.0) -> Path:
    torch.manual_seed(seed)
    model = create_backbone("resenc", 1, 1, "tiny")
    card = ModelCard.for_model(model, modalities=["t1"], spacing=[spacing] * 3,
                               patch_size=[32, 32, 32], ssl_method="mae")  # fmt: skip
    save_model(root, model, card)
    return root


@pytest.fixture
def run(tmp_path) -> Path:
    return _run(tmp_path / "run")


@pytest.fixture
def scans(tmp_path) -> list[Path]:
    """Three real volumes of different grids: MNI at ~6 mm, a cropped and flipped copy at
    ~4 mm, and a rescaled one in a subfolder."""
    data, affine = mni_small()
    fine, a4 = mni_small(step=2)
    flipped = fine[::-1, 10:-5].copy()
    a_flip = a4.copy()
    a_flip[:3, 0] *= -1
    return [
        save(tmp_path / "scans" / "a.nii.gz", data, affine),
        save(tmp_path / "scans" / "b.nii.gz", flipped, a_flip),
        save(tmp_path / "scans" / "sub" / "c.nii", data * 3.0 + 7.0, affine),
    ]


@pytest.fixture(scope="module")
def task_models(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(shared-channel infarct model with two seeds, stem-channel model, a test FLAIR)."""
    from brainfoundry.tasks.finetune import FinetuneConfig, finetune
    from tests.tasks.conftest import make_task

    root = tmp_path_factory.mktemp("embed_models")
    data = make_task(root / "data", "infarct")
    base = ["task=infarct", "data.spacing=[6,6,6]", "model.size=tiny", "train.steps=0",
            "shots=5"]  # fmt: skip
    out = {}
    for ch, seeds in (("shared", "[0,1]"), ("stem", "[0]")):
        cfg = FinetuneConfig.load(
            "cpu-tiny", None, [*base, f"model.channels={ch}", f"seeds={seeds}"]
        )
        finetune(cfg, data / "finetune", root / ch, log=lambda _: None)
        out[ch] = root / ch
    flair = sorted((data / "test" / "preprocessed").glob("sub_*/ses_1/flair.nii.gz"))[0]
    return out["shared"], out["stem"], flair


def _pooled(encoder, x: torch.Tensor) -> np.ndarray:
    """The documented pooling, written out: every stage's spatial mean, then its max."""
    parts = []
    for f in encoder.encode(x):
        flat = f.flatten(2)
        parts += [flat.mean(2), flat.amax(2)]
    return torch.cat(parts, 1)[0].numpy()


def test_one_volume_gives_a_finite_1d_float32_embedding_of_constant_size(run, scans, tmp_path):
    vecs = []
    for i, scan in enumerate(scans):
        out = tmp_path / f"e{i}.npy"
        assert main(["embed", "--model", str(run), "--input", str(scan), "--output", str(out)]) == 0
        v = np.load(out)
        assert v.ndim == 1 and v.dtype == np.float32 and np.isfinite(v).all()
        vecs.append(v)
    assert {v.size for v in vecs} == {2 * (8 + 16 + 32)}  # resenc tiny: 3 stages, mean + max
    assert not np.allclose(vecs[0], vecs[1])  # another scan, another embedding
    # z-scoring makes a scan and its affine rescaling one and the same input
    np.testing.assert_allclose(vecs[0], vecs[2], rtol=1e-3, atol=1e-4)


def test_the_embedding_is_the_pooled_encoder_on_the_cards_preprocessing(run, scans):
    from brainfoundry.inference.core import centre_box
    from brainfoundry.inference.embed import Embedder
    from brainfoundry.inference.predict import preprocess_session
    from brainfoundry.models.checkpoint import load_model

    emb = Embedder(run, "cpu")
    vec, warnings = emb.embed(scans[1])
    assert warnings == [] and emb.describe()["dim"] == vec.size
    encoder, card, _ = load_model(run, strict=True)
    s = preprocess_session([scans[1]], card.spacing, card.normalization)
    size = [-(-n // encoder.min_input_multiple) * encoder.min_input_multiple
            for n in s.image.shape[1:]]  # fmt: skip
    with torch.no_grad():
        ref = _pooled(encoder.eval(), torch.from_numpy(centre_box(s.image, size)[None]))
    np.testing.assert_allclose(vec, ref, rtol=1e-5, atol=1e-6)


def test_task_models_embed_one_volume_of_any_sequence(task_models, tmp_path, capsys):
    from brainfoundry.inference.core import centre_box
    from brainfoundry.inference.embed import Embedder
    from brainfoundry.inference.predict import preprocess_session

    shared, stem, flair = task_models
    out = tmp_path / "shared.npy"
    assert main(["embed", "-m", str(shared), "-i", str(flair), "-o", str(out)]) == 0
    assert "holds 2 seeds; embedding with seed_0" in capsys.readouterr().err
    v_seed = Embedder(shared / "seed_0", "cpu").embed(flair)[0]
    np.testing.assert_array_equal(np.load(out), v_seed)  # the folder's first seed
    # a stem model: the volume in each of its four channels, in the box it was trained on
    emb = Embedder(stem, "cpu")
    assert emb.encoder.in_channels == 4 and emb.box is not None
    vec = emb.embed(flair)[0]
    s = preprocess_session([flair], emb.card.spacing, emb.card.normalization)
    x = torch.from_numpy(centre_box(np.repeat(s.image, 4, axis=0), emb.box)[None])
    with torch.no_grad():
        np.testing.assert_allclose(vec, _pooled(emb.encoder, x), rtol=1e-5, atol=1e-6)
    assert vec.size == v_seed.size == 2 * sum(emb.encoder.feature_channels)


def test_batch_folder_resumes_and_names_a_bad_file(run, scans, tmp_path, capsys):
    bad = tmp_path / "scans" / "broken.nii.gz"
    bad.write_text("not an image")
    out = tmp_path / "out"
    args = ["embed", "--model", str(run), "--batch", str(tmp_path / "scans"), "-o", str(out)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"{bad}: cannot read NIfTI" in err and "Traceback" not in err and "embed:" in err
    table = pd.read_parquet(out / "embeddings.parquet")
    assert table["id"].tolist() == ["a", "b", "sub/c"]
    assert list(table.columns[:3]) == ["id", "e0", "e1"] and table.shape[1] == 1 + 112
    assert table.drop(columns="id").dtypes.eq(np.float32).all()
    assert json.loads((out / "errors.jsonl").read_text())["id"] == "broken"
    np.testing.assert_array_equal(
        table.iloc[0, 1:].to_numpy(np.float32), _single(run, scans[0], tmp_path)
    )
    bad.unlink()
    assert main([*args, "-q"]) == 0  # a rerun embeds nothing again
    captured = capsys.readouterr()
    assert "embedded 0 of 3 volumes, 3 already there" in captured.out
    assert "embed:" not in captured.err  # -q: no progress bar
    assert (out / "errors.jsonl").read_text() == ""
    pd.testing.assert_frame_equal(pd.read_parquet(out / "embeddings.parquet"), table)


def _single(run: Path, scan: Path, tmp_path: Path) -> np.ndarray:
    out = tmp_path / "single.npy"
    assert main(["embed", "-m", str(run), "-i", str(scan), "-o", str(out)]) == 0
    return np.load(out)


def test_a_killed_batch_keeps_its_chunks_and_finishes_the_rest(run, scans, tmp_path):
    from brainfoundry.inference.embed import Embedder
    from brainfoundry.inference.embed_batch import batch_items, done_ids, embed_batch

    emb, out = Embedder(run, "cpu"), tmp_path / "out"
    items = batch_items(tmp_path / "scans")

    class Killed(Exception):
        pass

    real, calls = emb.embed, []

    def dies_on_the_third(path):
        calls.append(path)
        if len(calls) == 3:
            raise Killed
        return real(path)

    emb.embed = dies_on_the_third  # type: ignore[method-assign]
    with pytest.raises(Killed):
        embed_batch(emb, items, out, progress=False, chunk=1)
    assert done_ids(out) == {"a", "b"} and not (out / "embeddings.parquet").exists()
    emb.embed = real  # type: ignore[method-assign]
    res = embed_batch(emb, items, out, progress=False, chunk=1)
    assert (res["done"], res["skipped"], res["rows"]) == (1, 2, 3)
    assert not (out / "chunks").exists()


def test_batch_csv_with_ids_and_relative_paths(run, scans, tmp_path):
    csv = tmp_path / "list.csv"
    csv.write_text("id,path\np1,scans/a.nii.gz\np2,scans/sub/c.nii\n")
    out = tmp_path / "out"
    assert main(["embed", "-m", str(run), "--batch", str(csv), "-o", str(out), "-q"]) == 0
    assert pd.read_parquet(out / "embeddings.parquet")["id"].tolist() == ["p1", "p2"]


def test_user_mistakes_are_one_line(run, scans, tmp_path, capsys):
    other = _run(tmp_path / "other", seed=1)
    out = tmp_path / "out"
    assert main(["embed", "-m", str(run), "--batch", str(tmp_path / "scans"), "-o", str(out),
                 "-q"]) == 0  # fmt: skip
    capsys.readouterr()
    cases = [
        (["-m", str(other), "--batch", str(tmp_path / "scans"), "-o", str(out)],
         "holds embeddings of another model"),
        (["-m", str(run), "-o", str(out)], "give one volume"),
        (["-m", str(tmp_path / "nope"), "-i", str(scans[0]), "-o", str(out / "x.npy")],
         "model folder does not exist"),
        (["-m", str(run), "-i", str(tmp_path / "missing.nii.gz"), "-o", str(out / "x.npy")],
         "file not found"),
        (["-m", str(run), "--batch", str(tmp_path / "x.csv"), "-o", str(out)], "--batch takes"),
    ]  # fmt: skip
    for args, words in cases:
        assert main(["embed", *args]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err
    csv = tmp_path / "dup.csv"
    csv.write_text("path\nscans/a.nii.gz\nother/a.nii.gz\n")
    assert main(["embed", "-m", str(run), "--batch", str(csv), "-o", str(tmp_path / "o2")]) == 2
    assert "rows 2 and 3 share the id 'a'" in capsys.readouterr().err
