import gzip

import nibabel as nib
import numpy as np
import pytest

from brainfoundry.errors import InputError
from brainfoundry.io.nifti import read_nifti_header, write_nifti
from brainfoundry.io.volume import read_volume
from tests.conftest import save


def test_round_trip_keeps_voxels_affine_and_mask_dtype(tmp_path, mni):
    data, affine = mni
    p = write_nifti(tmp_path / "a.nii.gz", data, affine)
    v = read_volume(p)
    np.testing.assert_array_equal(v.data, data)
    np.testing.assert_allclose(v.affine, affine)
    assert v.spacing == pytest.approx((6.0, 6.0, 6.0))
    assert read_nifti_header(p)[0] == data.shape
    mask = write_nifti(tmp_path / "m.nii.gz", (data > 0).astype(np.uint8), affine)
    assert nib.load(mask).get_data_dtype() == np.uint8
    assert not list(tmp_path.glob(".*tmp*")), "atomic write left a temp file"


def test_singleton_fourth_dimension_is_accepted(tmp_path, mni):
    data, affine = mni
    v = read_volume(save(tmp_path / "a.nii.gz", data[..., None], affine))
    assert v.shape == data.shape


def _bad(tmp_path, mni, kind):
    data, affine = (x.copy() for x in mni)
    p = tmp_path / f"{kind}.nii.gz"
    if kind == "nan":
        data[3, 3, 3] = np.nan
    elif kind == "empty":
        data[:] = 0
    elif kind == "4d":
        data = np.stack([data, data], -1)
    elif kind == "zero-size":
        data = np.zeros((0, 4, 4), np.float32)
    elif kind == "singular":
        affine[:, 2] = 0
    elif kind == "sheared":
        affine[0, 1] = 3.0
    if kind == "truncated":
        save(p, data, affine)
        raw = gzip.decompress(p.read_bytes())
        p.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    elif kind == "not-gzip":
        p.write_bytes(b"this is not an image")
    else:
        save(p, data, affine)
    return p


@pytest.mark.parametrize(
    "kind, message",
    [
        ("nan", "NaN or Inf"),
        ("empty", "empty"),
        ("4d", "4D image with 2 volumes"),
        ("zero-size", "zero-size"),
        ("singular", "singular"),
        ("sheared", "not orthogonal"),
        ("truncated", "cannot read NIfTI"),
        ("not-gzip", "cannot read NIfTI"),
    ],
)
def test_bad_inputs_give_one_line_naming_the_file(tmp_path, mni, kind, message):
    p = _bad(tmp_path, mni, kind)
    with pytest.raises(InputError, match=message) as e:
        read_volume(p)
    assert str(e.value).startswith(str(p)) and "\n" not in str(e.value)


def test_missing_and_wrong_kind_of_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_volume(tmp_path / "nope.nii.gz")
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(InputError, match="not a NIfTI"):
        read_volume(tmp_path / "x.txt")
