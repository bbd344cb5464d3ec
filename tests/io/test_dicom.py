import numpy as np
import pytest

from brainfoundry.data.preprocess import to_ras
from brainfoundry.errors import InputError
from brainfoundry.io.dicom import has_dicom, list_series
from brainfoundry.io.layouts import detect_layout, discover
from brainfoundry.io.volume import Volume, read_volume

from .dicom_writer import write_series


def _oblique_lpi(mni):
    """The MNI volume stored L-P-I with a small rotation: a geometry that catches sign slips."""
    data, affine = mni
    data = np.rint(data[::-1, :, ::-1] * 1000).astype(np.float32)
    flip = np.diag([-1.0, 1.0, -1.0, 1.0])
    flip[0, 3], flip[2, 3] = data.shape[0] - 1, data.shape[2] - 1
    a = affine @ flip
    t = np.deg2rad(7)
    rot = np.eye(4)
    rot[:3, :3] = [[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]]
    return data, rot @ a


def test_dicom_series_round_trip_voxels_and_geometry(tmp_path, mni):
    data, affine = _oblique_lpi(mni)
    write_series(tmp_path / "s1", data, affine, "FLAIR")
    assert has_dicom(tmp_path)
    v = read_volume(tmp_path / "s1")
    got, got_aff, _ = to_ras(v)
    want, want_aff, _ = to_ras(Volume(data, affine))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got_aff, want_aff, atol=1e-3)


def test_folder_with_two_series_needs_a_choice(tmp_path, mni):
    data, affine = mni
    d = np.rint(data * 100)
    uid1 = write_series(tmp_path / "sub-01" / "dicom", d, affine, "T1_MPRAGE")
    write_series(tmp_path / "sub-01" / "dicom", d[::-1], affine, "FLAIR")
    with pytest.raises(InputError, match="2 DICOM series"):
        read_volume(tmp_path / "sub-01" / "dicom")
    v = read_volume(tmp_path / "sub-01" / "dicom", series_uid=uid1)
    assert v.shape == data.shape
    [(folder, series)] = list_series(tmp_path)
    assert sorted(desc for _, desc in series) == ["FLAIR", "T1_MPRAGE"]
    assert detect_layout(tmp_path) == "dicom"
    _, entries = discover(tmp_path)
    assert sorted(e.modality for e in entries) == ["flair", "t1"]
    assert {e.subject for e in entries} == {"sub-01"}


def test_folder_without_dicom(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.txt").write_text("no")
    with pytest.raises(InputError, match="no DICOM series"):
        read_volume(tmp_path / "x")
