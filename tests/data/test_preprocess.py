import numpy as np
import pytest

from brainfoundry.data.preprocess import PreprocessConfig, preprocess_group, restore, to_ras
from brainfoundry.data.resample import resample, resample_labels
from brainfoundry.errors import InputError
from brainfoundry.io.volume import Volume
from tests.conftest import _mni


def _lpi(data, affine):
    """Same anatomy stored with flipped x and z axes."""
    flip = np.diag([-1.0, 1.0, -1.0, 1.0])
    flip[0, 3], flip[2, 3] = data.shape[0] - 1, data.shape[2] - 1
    return data[::-1, :, ::-1].copy(), affine @ flip


def test_to_ras_only_flips(mni):
    data, affine = mni
    d2, a2 = _lpi(data, affine)
    got, got_aff, _ = to_ras(Volume(d2, a2))
    np.testing.assert_array_equal(got, data)
    np.testing.assert_allclose(got_aff, affine)


def test_thick_slices_keep_measured_slices_exactly():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 10, 6)).astype(np.float32)
    up = resample(x, (1, 1, 5), (1, 1, 1))
    assert up.shape == (12, 10, 30)
    # in-plane untouched, each measured slice lands on the centre of its 5 new slices
    np.testing.assert_allclose(up[:, :, 2::5], x, atol=1e-5)


def test_cubic_within_range_and_identity_when_shape_kept():
    x = np.random.default_rng(1).random((9, 9, 9)).astype(np.float32)
    assert resample(x, (1, 1, 1), (1, 1, 1)) is x
    y = resample(x, (1, 1, 1), (0.5, 0.5, 0.5))
    assert y.shape == (18, 18, 18) and y.min() >= x.min() and y.max() <= x.max()


def test_label_resampling_keeps_classes():
    lab = np.zeros((10, 10, 10), np.uint8)
    lab[2:6, 2:6, 2:6] = 1
    lab[6:9, 6:9, 6:9] = 2
    out = resample_labels(lab, (1, 1, 1), (0.5, 0.5, 0.5))
    assert set(np.unique(out)) == {0, 1, 2}
    assert abs((out == 1).sum() / 8 - 64) < 16


def test_preprocess_then_restore_maps_back_to_exact_grid():
    data, affine = _mni(2)
    d, a = _lpi(data, affine)
    seg = (data > 0.6).astype(np.uint8)[::-1, :, ::-1].copy()
    cfg = PreprocessConfig(spacing=(3.0, 3.0, 3.0))
    pre = preprocess_group([Volume(d, a, "img")], cfg, Volume(seg.astype(np.float32), a, "seg"))
    img = pre.images[0].astype(np.float32)
    assert img.dtype == np.float32 and pre.images[0].dtype == np.float16
    assert img.shape == pre.label.shape
    assert all(
        lo >= 0 and hi <= n for (lo, hi), n in zip(pre.geometry.crop, pre.geometry.resampled_shape)
    )
    back = restore(img, pre.geometry)
    assert back.shape == d.shape
    fg = d > 0.05
    assert np.corrcoef(back[fg], d[fg])[0, 1] > 0.9  # 2 mm -> 3 mm -> 2 mm loses detail
    lab_back = restore(pre.label, pre.geometry, is_label=True)
    dice = 2 * (lab_back & seg).sum() / (lab_back.sum() + seg.sum())
    assert dice > 0.85


def test_restore_without_resampling_is_exact_up_to_zscore():
    data, affine = _mni(2)
    d, a = _lpi(data, affine)
    cfg = PreprocessConfig(spacing=(2.0, 2.0, 2.0), clip_percentiles=None, dtype="float32")
    pre = preprocess_group([Volume(d, a, "x")], cfg)
    back = restore(pre.images[0], pre.geometry)
    fg = restore(pre.fg_mask.astype(np.uint8), pre.geometry, is_label=True).astype(bool)
    st = pre.stats[0]
    np.testing.assert_allclose(back[fg], (d[fg] - st["fg_mean"]) / st["fg_std"], atol=1e-4)


def test_stored_affine_points_at_the_same_anatomy(mni):
    data, affine = mni
    d, a = _lpi(data, affine)
    cfg = PreprocessConfig(spacing=(6.0, 6.0, 6.0), clip_percentiles=None)
    pre = preprocess_group([Volume(d, a, "x")], cfg)
    st = pre.stats[0]
    stored = pre.images[0].astype(np.float32)
    aff = np.array(pre.geometry.affine)
    inv = np.linalg.inv(a)
    for v in np.argwhere(stored != 0)[::97]:
        src = np.rint(inv @ aff @ np.r_[v, 1])[:3].astype(int)
        want = (d[tuple(src)] - st["fg_mean"]) / st["fg_std"]
        assert stored[tuple(v)] == pytest.approx(want, abs=2e-2)


def test_zscore_on_foreground_background_zero(mni):
    data, affine = mni
    pre = preprocess_group(
        [Volume(data, affine)],
        PreprocessConfig(spacing=(6, 6, 6), clip_percentiles=None, dtype="float32"),
    )
    x, m = pre.images[0], pre.fg_mask
    assert abs(x[m].mean()) < 1e-4 and abs(x[m].std() - 1) < 1e-3
    assert np.all(x[~m] == 0)


def test_quantile_normalisation_ignores_monotone_contrast_changes(mni):
    """A vendor-like monotone change of tissue contrast (gamma, scale, offset) leaves the
    quantile-normalised scan unchanged, where the z-scored one moves."""
    from brainfoundry.data.preprocess import foreground_mask, quantile_normal, zscore

    data, _ = mni
    m = foreground_mask(data)
    shifted = np.where(m, 3.0 * np.power(data / data.max(), 0.6) + 0.2, 0.0)
    qa, qb = (quantile_normal(d, m)[0] for d in (data, shifted))
    assert np.all(qa[~m] == 0) and abs(qa[m].mean()) < 0.05 and abs(qa[m].std() - 1) < 0.1
    assert np.abs(qa - qb).max() < 1e-6
    za, zb = (zscore(d, m, None)[0] for d in (data, shifted))
    assert np.abs(za - zb).max() > 0.3
    pre = preprocess_group(
        [Volume(data, _)], PreprocessConfig(spacing=(6, 6, 6), normalization="quantile")
    )
    x = pre.images[0].astype(np.float32)
    assert np.all(x[~pre.fg_mask] == 0) and abs(x[pre.fg_mask].mean()) < 0.05


def test_quantile_refuses_clipping():
    from brainfoundry.errors import ConfigError

    with pytest.raises(ConfigError, match="clip_percentiles"):
        PreprocessConfig(normalization="quantile", clip_percentiles=(0.5, 99.5))
    with pytest.raises(ConfigError, match="use quantile, zscore or none"):
        PreprocessConfig(normalization="rank")  # never a silent "no normalisation"


def test_session_scans_must_share_a_grid_with_coregister_off(mni):
    data, affine = mni
    with pytest.raises(InputError, match="not co-registered"):
        preprocess_group(
            [Volume(data, affine, "a"), Volume(data[1:], affine, "b")],
            PreprocessConfig(coregister="off"),
        )
    with pytest.raises(InputError, match="label shape"):
        preprocess_group(
            [Volume(data, affine, "a")], PreprocessConfig(), Volume(data[1:], affine, "s")
        )


def test_default_keeps_a_small_bright_lesion_above_the_bright_tail(mni):
    # the default z-score does not clip: a lesion of 0.2% of the brain, twice as bright as the
    # brightest tissue, stays brighter than everything else (clipping at 99.5% flattened it)
    data, affine = mni
    spacing = tuple(float(v) for v in np.abs(np.diag(affine))[:3])
    d = data.astype(np.float32).copy()
    fg = np.argwhere(d > 0.05 * d.max())
    pick = np.random.default_rng(0).choice(len(fg), max(3, len(fg) // 500), replace=False)
    d[tuple(fg[pick].T)] = 2.0 * d.max()
    n = len(pick)
    for cfg, on_top in (
        (PreprocessConfig(spacing=spacing, dtype="float32"), True),
        (PreprocessConfig(spacing=spacing, dtype="float32", clip_percentiles=(0.5, 99.5)), False),
    ):
        x = preprocess_group([Volume(d, affine)], cfg).images[0]
        vals = np.sort(x[x != 0])
        assert bool(vals[-n] > vals[-n - 1] + 1.0) is on_top, cfg.clip_percentiles


def test_a_card_normalisation_we_cannot_reproduce_is_an_error():
    """An imported checkpoint whose normalisation brainfoundry does not implement must not be
    fine-tuned on silently unnormalised scans."""
    from brainfoundry.errors import ConfigError
    from brainfoundry.tasks.data import preprocess_config

    assert preprocess_config([4, 4, 4], {"scheme": "none"}).normalization == "none"
    assert preprocess_config([4, 4, 4], {"normalization": "quantile"}).normalization == "quantile"
    with pytest.raises(ConfigError, match="'nnssl'.*not one brainfoundry reproduces"):
        preprocess_config([4, 4, 4], {"scheme": "nnssl", "nnssl_schemes": ["CTNormalization"]})
