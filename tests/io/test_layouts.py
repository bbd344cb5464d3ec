import numpy as np
import pytest

from brainfoundry.errors import InputError
from brainfoundry.io.layouts import detect_layout, discover
from brainfoundry.io.modalities import canonical_modality
from tests.conftest import save


@pytest.mark.parametrize(
    "name, want",
    [
        ("t1", "t1"),
        ("T1w", "t1"),
        ("flair_2.nii.gz", "flair"),
        ("sub-01_ses-1_FLAIR", "flair"),
        ("dwi_b1000", "dwi_b1000"),
        ("ADC", "adc"),
        ("t2star", "t2s"),
        ("swi", "swi"),
        ("sub-2_acq-x_T2w.nii.gz", "t2"),
        ("localizer", None),
    ],
)
def test_modality_aliases(name, want):
    assert canonical_modality(name) == want


def test_fomo60k(fomo60k):
    layout, entries = discover(fomo60k)
    assert layout == "fomo60k"
    assert len(entries) == 9
    repeat = [e for e in entries if e.sequence == "flair_2"]
    assert repeat[0].modality == "flair" and repeat[0].session == "ses_1"
    assert {e.subject for e in entries} == {"sub_0", "sub_1", "sub_2"}


def test_fomo_task_with_labels_and_masks(tmp_path, mni):
    data, affine = mni
    root = tmp_path / "task2"
    for s, lab in ((1, 1), (2, 0)):
        for m in ("flair", "dwi_b1000", "t2s"):
            save(root / "preprocessed" / f"sub_{s}" / "ses_1" / f"{m}.nii.gz", data, affine)
        (root / "labels" / f"sub_{s}" / "ses_1").mkdir(parents=True)
        (root / "labels" / f"sub_{s}" / "ses_1" / "label.txt").write_text(f"{lab}\n")
    save(root / "labels" / "sub_1" / "ses_1" / "seg.nii.gz", (data > 0.5).astype(np.uint8), affine)
    layout, entries = discover(root)
    assert layout == "fomo-task"
    by = {(e.subject, e.modality): e for e in entries}
    assert by[("sub_1", "flair")].label == 1.0 and by[("sub_2", "t2s")].label == 0.0
    assert by[("sub_1", "dwi_b1000")].seg_path.endswith("seg.nii.gz")
    assert by[("sub_2", "flair")].seg_path is None


def test_bad_label_file(tmp_path, mni):
    root = tmp_path / "t"
    save(root / "preprocessed" / "sub_1" / "ses_1" / "t1.nii.gz", *mni)
    (root / "labels" / "sub_1" / "ses_1").mkdir(parents=True)
    (root / "labels" / "sub_1" / "ses_1" / "label.txt").write_text("old\n")
    with pytest.raises(InputError, match="label.txt: label file must hold one number"):
        discover(root)


def test_openmind_with_metadata(tmp_path, mni):
    root = tmp_path / "OpenMind"
    for ds, sub, suffix in (("ds000001", "sub-01", "T1w"), ("ds000002", "sub-07", "FLAIR")):
        p = root / ds / sub / "ses-1" / "anat" / f"{sub}_ses-1_{suffix}.nii.gz"
        save(p, *mni)
        save(p.with_name(f"{sub}_ses-1_{suffix}_anat_mask.nii.gz"), *mni)
    (root / "openneuro_metadata.csv").write_text(
        "image_path,modality,image_quality_score,age,sex\n"
        "ds000001/sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz,T1w,4.5,33,F\n"
    )
    layout, entries = discover(root)
    assert layout == "openmind"
    assert len(entries) == 2
    t1 = next(e for e in entries if e.modality == "t1")
    assert (t1.dataset, t1.subject, t1.session, t1.quality, t1.label) == (
        "ds000001",
        "sub-01",
        "ses-1",
        4.5,
        33.0,
    )
    assert next(e for e in entries if e.modality == "flair").quality is None


def test_bids_single_dataset(tmp_path, mni):
    root = tmp_path / "bids"
    save(root / "sub-01" / "anat" / "sub-01_T2w.nii.gz", *mni)
    layout, entries = discover(root)
    assert layout == "bids" and entries[0].modality == "t2" and entries[0].session == "ses-1"


def test_csv_manifest(tmp_path, mni):
    save(tmp_path / "img" / "a.nii.gz", *mni)
    (tmp_path / "list.csv").write_text(
        "path,subject,session,modality,label\nimg/a.nii.gz,p1,s1,T1w,71.5\n"
    )
    layout, entries = discover(tmp_path / "list.csv")
    assert layout == "csv"
    assert entries[0].path == str(tmp_path / "img" / "a.nii.gz") and entries[0].label == 71.5
    (tmp_path / "bad.csv").write_text("file,who\nx,y\n")
    with pytest.raises(InputError, match="needs columns"):
        discover(tmp_path / "bad.csv")


def test_unknown_layout_and_empty(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "readme.txt").write_text("x")
    with pytest.raises(InputError, match="cannot tell the dataset layout"):
        detect_layout(tmp_path / "stuff")
    (tmp_path / "e" / "sub_1" / "ses_1").mkdir(parents=True)
    with pytest.raises(InputError, match="no scans found"):
        discover(tmp_path / "e")
