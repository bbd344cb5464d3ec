"""Issue 16: bad inputs a hidden corpus found, each refused by `read_volume` with one line naming
the file and the problem, without a numpy warning reaching the console; a batch `prepare` keeps
the good scans and names the bad one."""

import gzip
import struct
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest

from brainfoundry.cli import main
from brainfoundry.errors import InputError
from brainfoundry.io.checks import Limits
from brainfoundry.io.volume import read_volume
from tests.conftest import save

from .dicom_writer import write_series

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
RGB24 = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])
RGBA32 = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1"), ("A", "u1")])


def _scan(shape=(9, 10, 11), dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(0).uniform(1, 100, shape).astype(dtype)


def _colour(dtype: np.dtype) -> np.ndarray:
    out = np.zeros((9, 10, 11), dtype)
    out["R"] = _scan(dtype=np.uint8)
    return out


def _huge_header(path, gz: bool):
    """A small valid file whose header is then rewritten to claim 4096³ int16 voxels."""
    raw = bytearray(nib.Nifti1Image(_scan(dtype=np.int16), AFFINE).to_bytes())
    struct.pack_into("<8h", raw, 40, 3, 4096, 4096, 4096, 1, 1, 1, 1)  # NIfTI-1 dim[8]
    path.write_bytes(gzip.compress(bytes(raw)) if gz else bytes(raw))
    return path


def _write(path, data, slope=None):
    img = nib.Nifti1Image(data, AFFINE)
    if slope is not None:
        img.header.set_slope_inter(slope, 0)
    nib.save(img, str(path))
    return path


BAD = {
    "complex": (lambda p: _write(p, _scan() + 1j * _scan()), r"complex-valued voxels \(complex"),
    "values-1e30": (lambda p: _write(p, _scan() * 1e28), r"reach 1e\+30 .* over the limit"),
    "float64-1e300": (lambda p: _write(p, _scan(dtype=np.float64) * 1e298), "reach 1e\\+300"),
    "scaling-overflow": (lambda p: _write(p, _scan(dtype=np.int16), 1e38), "reach .*e\\+39"),
    "inf": (lambda p: _write(p, np.where(_scan() > 50, np.inf, _scan())), "voxels are NaN or Inf"),
    "single-slice": (lambda p: _write(p, _scan((91, 109, 1))), "91×109×1 has 1 voxel along axis 3"),
    "three-slices": (lambda p: _write(p, _scan((91, 109, 3))), "3 voxels along axis 3: a slice"),
    "2d": (lambda p: _write(p, _scan((91, 109))), "2D image of shape 91×109"),
    "rgb24": (lambda p: _write(p, _colour(RGB24)), r"colour \(RGB\) voxels \(R,G,B, 3 bytes"),
    "rgba32": (lambda p: _write(p, _colour(RGBA32)), r"colour \(RGB\) voxels \(R,G,B,A,"),
    "4d": (lambda p: _write(p, _scan((9, 10, 11, 2))), "4D image with 2 volumes"),
    "zero-size": (lambda p: _write(p, _scan((9, 10, 0))), "zero-size dimension"),
    "huge-header": (
        lambda p: _huge_header(p.with_suffix(""), gz=False),
        r"header claims 4096×4096×4096 voxels of int16 \(128.0 GiB\) but the file has",
    ),
    "huge-header-gz": (
        lambda p: _huge_header(p, gz=True),
        r"claims 4096×4096×4096 .* at deflate's maximum ratio: a truncated file or a corrupt",
    ),
}


@pytest.mark.parametrize("kind", BAD)
def test_bad_file_is_refused_in_one_line_naming_it_without_numpy_warnings(tmp_path, kind):
    make, message = BAD[kind]
    path = make(tmp_path / f"{kind}.nii.gz")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match=message) as e:
            read_volume(path)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)
    assert e.value.path == str(path)
    assert not caught, [str(w.message) for w in caught]


def test_voxel_cap_applies_to_gzip_and_is_configurable(tmp_path):
    path = _write(tmp_path / "a.nii.gz", _scan())
    assert read_volume(path).shape == (9, 10, 11)
    with pytest.raises(InputError, match=r"claims 9×10×11 = 990 voxels, over the limit of 500"):
        read_volume(path, limits=Limits(max_voxels=500))
    with pytest.raises(InputError, match="over the limit of 1e\\+01"):
        read_volume(path, limits=Limits(max_abs=10))
    assert read_volume(path, limits=Limits(min_axis=9)).shape == (9, 10, 11)


def test_what_real_scans_hold_is_accepted(tmp_path):
    big = _write(tmp_path / "float64.nii.gz", _scan(dtype=np.float64) * 1e7)  # e.g. PET, Bq/mL
    v = read_volume(big)
    assert v.data.dtype == np.float32 and v.data.flags.c_contiguous
    assert float(v.data.max()) == pytest.approx(1e9, rel=0.02)
    ints = _write(tmp_path / "uint16.nii", _scan(dtype=np.uint16) * 600)
    np.testing.assert_array_equal(read_volume(ints).data, _scan(dtype=np.uint16) * 600)
    edge = _write(tmp_path / "edge.nii.gz", _scan((4, 4, 4)))
    assert read_volume(edge).shape == (4, 4, 4)


def test_a_label_map_may_be_thin_but_holds_int16_class_indices(tmp_path):
    """A label's grid is checked against its scan's, which gives the better message."""
    lab = _write(tmp_path / "seg.nii.gz", np.zeros((91, 109, 1), np.uint8))
    assert read_volume(lab, label=True).shape == (91, 109, 1)
    with pytest.raises(InputError, match="1 voxel along axis 3"):
        read_volume(lab)
    wide = _write(tmp_path / "wide.nii.gz", np.full((9, 10, 11), 40000, np.int32))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match="label values reach 4e\\+04 .* limit of 32767"):
            read_volume(wide, label=True)
    assert not caught


def test_rgb_dicom_series_is_refused_before_reading(tmp_path):
    folder = tmp_path / "rgb"
    write_series(folder, _scan((6, 6, 6)), AFFINE, "T1")
    for f in sorted(folder.iterdir()):
        ds = pydicom.dcmread(f)
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = np.zeros((6, 6, 3), np.uint8).tobytes()
        ds.save_as(f)
    with pytest.raises(InputError, match=r"colour \(RGB\) pixels \(3 components per voxel\)"):
        read_volume(folder)


@pytest.mark.parametrize(
    "kind, problem", [("values-1e30", "voxel values reach"), ("huge-header-gz", "header claims")]
)
def test_prepare_keeps_the_good_scan_and_names_the_bad_one(tmp_path, mni, capsys, kind, problem):
    raw = tmp_path / "raw"
    save(raw / "sub_1" / "ses_1" / "t1.nii.gz", *mni)
    (raw / "sub_2" / "ses_1").mkdir(parents=True)
    bad = BAD[kind][0](raw / "sub_2" / "ses_1" / "t1.nii.gz")
    store = tmp_path / "store"
    rc = main(["prepare", str(raw), str(store), "--spacing", "8", "-q"])
    err = capsys.readouterr().err
    assert rc == 1
    [line] = [ln for ln in err.splitlines() if str(bad) in ln]
    assert line.startswith(f"error: {bad}: {problem}")
    m = pd.read_parquet(store / "manifest.parquet")
    assert list(m["subject"]) == ["sub_1"]
    assert str(bad) in (store / "errors.jsonl").read_text()
