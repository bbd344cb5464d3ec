"""prepare benchmark: seconds per scan end to end (NIfTI → store) and resampling fidelity.

Two real scans made from nilearn's MNI152 2009 T1 (1 mm, offline): the 1 mm volume itself, and a
"clinical" thick-slice version (0.9×0.9 mm in-plane, 5 mm slabs averaged through-plane). Both
pipelines restore them to 1 mm: brainfoundry (`process_session`: read, RAS, cubic B-spline as
one matrix product per axis, crop, z-score, blosc2 float16, sample locations, record) and
nnU-Net v2 (`DefaultPreprocessor.run_case_save`: read, crop, z-score, order-3 in-plane /
nearest across slices in scipy/skimage, blosc2 float32). Fidelity: the thick scan restored to the
1 mm grid by each resampler alone, PSNR against the true 1 mm volume inside the brain.

    pip install -e ".[bench]"
    pip install --no-deps nnunetv2==2.8.1 dynamic-network-architectures==0.4.4
    python -m benchmarks.bench_prepare --out benchmarks/results/prepare.md
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("nnUNet_raw", "unused")  # nnU-Net warns at import without these
os.environ.setdefault("nnUNet_preprocessed", "unused")
os.environ.setdefault("nnUNet_results", "unused")

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import ndimage  # noqa: E402

from benchmarks.common import machine, median_time, table  # noqa: E402

torch.set_num_threads(1)  # prepare runs one process per core; both pipelines get one thread


def truth() -> tuple[np.ndarray, np.ndarray]:
    from nilearn.datasets import load_mni152_template

    img = load_mni152_template(resolution=1)
    d = np.asarray(img.dataobj, np.float32)
    d = d[:, :, : d.shape[2] // 5 * 5]  # whole 5 mm slabs
    return np.ascontiguousarray(d), img.affine


def degrade(d: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0.9×0.9 mm in-plane (order-3 zoom), 5 mm slabs (mean of 5 slices: a box slice profile)."""
    slabs = d.reshape(d.shape[0], d.shape[1], -1, 5).mean(-1)
    shape = [round(n / 0.9) for n in d.shape[:2]]
    zoom = [shape[0] / d.shape[0], shape[1] / d.shape[1], 1]
    thick = ndimage.zoom(slabs, zoom, order=3, grid_mode=True, mode="grid-mirror")
    a = affine.copy()
    a[:3, :3] = affine[:3, :3] @ np.diag([d.shape[0] / shape[0], d.shape[1] / shape[1], 5.0])
    a[:3, 3] = (
        affine[:3, :3] @ np.array([0.5 / zoom[0] - 0.5, 0.5 / zoom[1] - 0.5, 2.0]) + affine[:3, 3]
    )
    return np.clip(thick, 0, None).astype(np.float32), a


def psnr(x: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> float:
    mse = float(np.mean((x[mask] - ref[mask]) ** 2))
    return 10 * np.log10(float(ref[mask].max() - ref[mask].min()) ** 2 / mse)


def fidelity(thick, spacing, ref) -> list[list]:
    from nnunetv2.preprocessing.resampling.default_resampling import resample_data_or_seg_to_shape

    from brainfoundry.data.resample import resample

    mask = ref > 0.05 * ref.max()
    shape = ref.shape
    zoom = [a / b for a, b in zip(shape, thick.shape)]
    methods = {
        "brainfoundry default (cubic B-spline, all axes)": lambda: resample(
            thick, spacing, shape=shape
        ),
        "brainfoundry, linear across thick slices": lambda: resample(
            thick, spacing, shape=shape, thick_mode="linear"
        ),
        "nnU-Net v2 default (order 3 in-plane, nearest across)": lambda: (
            resample_data_or_seg_to_shape(
                thick[None],
                shape,
                spacing,
                (1, 1, 1),
                is_seg=False,
                order=3,
                order_z=0,
                force_separate_z=None,
            )[0]
        ),
        "scipy zoom order 3": lambda: ndimage.zoom(
            thick, zoom, order=3, grid_mode=True, mode="grid-mirror"
        ),
        "torch trilinear": lambda: torch.nn.functional.interpolate(
            torch.from_numpy(thick)[None, None], size=shape, mode="trilinear"
        )[0, 0].numpy(),
    }
    rows = []
    for name, fn in methods.items():
        out = fn()
        assert out.shape == shape, (name, out.shape)
        rows.append([name, psnr(out, ref, mask), median_time(fn, 3)])
    return rows


def nnunet_plans(spacing) -> tuple:
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    res = "nnunetv2.preprocessing.resampling.default_resampling.resample_data_or_seg_to_shape"
    conf = {
        "data_identifier": "bench",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": [128, 128, 128],
        "median_image_size_in_voxels": [197, 233, 185],
        "spacing": list(spacing),
        "normalization_schemes": ["ZScoreNormalization"],
        "use_mask_for_norm": [True],
        "resampling_fn_data": res.split(".")[-1],
        "resampling_fn_seg": res.split(".")[-1],
        "resampling_fn_probabilities": res.split(".")[-1],
        "resampling_fn_data_kwargs": {
            "is_seg": False,
            "order": 3,
            "order_z": 0,
            "force_separate_z": None,
        },
        "resampling_fn_seg_kwargs": {
            "is_seg": True,
            "order": 1,
            "order_z": 0,
            "force_separate_z": None,
        },
        "resampling_fn_probabilities_kwargs": {
            "is_seg": False,
            "order": 1,
            "order_z": 0,
            "force_separate_z": None,
        },
        "batch_dice": False,
        "architecture": {
            "network_class_name": "x",
            "arch_kwargs": {"strides": [[1, 1, 1]]},
            "_kw_requires_import": [],
        },
    }
    plans = {
        "dataset_name": "bench",
        "plans_name": "bench",
        "original_median_spacing_after_transp": [1, 1, 1],
        "original_median_shape_after_transp": [197, 233, 185],
        "image_reader_writer": "NibabelIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {"3d_fullres": conf},
        "experiment_planner_used": "bench",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {
            "0": {
                "mean": 0,
                "std": 1,
                "median": 0,
                "min": 0,
                "max": 1,
                "percentile_99_5": 1,
                "percentile_00_5": 0,
            }
        },
    }
    pm = PlansManager(plans)
    return pm, pm.get_configuration("3d_fullres")


def end_to_end(scans: list[tuple[str, Path, float]], tmp: Path, repeats: int) -> list[list]:
    """(label, NIfTI, target spacing) → [label, bf s, nnU-Net s, speed-up, bf MB, nnU-Net MB]."""
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor

    from brainfoundry.data.prepare import PrepareConfig, process_session
    from brainfoundry.data.preprocess import PreprocessConfig
    from brainfoundry.io.layouts import ScanEntry

    dj = {
        "labels": {"background": 0, "brain": 1},
        "channel_names": {"0": "T1"},
        "file_ending": ".nii.gz",
    }
    pre = DefaultPreprocessor(verbose=False)
    rows = []
    for i, (label, path, sp) in enumerate(scans):
        pm, cm = nnunet_plans((sp, sp, sp))
        cfg = PrepareConfig(preprocess=PreprocessConfig(spacing=(sp, sp, sp)))
        out = tmp / f"case{i}"
        out.mkdir()
        entry = ScanEntry(str(path), "sub_1", "ses_1", "t1", "t1", dataset="bench")
        t_bf = median_time(
            lambda e=entry, o=out, c=cfg: process_session([e], str(o / "bf"), c), repeats
        )

        def nn(out=out, path=path, pm=pm, cm=cm):
            for f in out.glob("nn*"):
                f.unlink()  # nnU-Net's blosc2 writer refuses to overwrite
            pre.run_case_save(str(out / "nn"), [str(path)], None, pm, cm, dj)

        t_nn = median_time(nn, repeats)
        bf_bytes = sum(p.stat().st_size for p in (out / "bf" / "arrays").glob("*"))
        nn_bytes = (out / "nn.b2nd").stat().st_size
        rows.append([label, t_bf, t_nn, t_nn / t_bf, bf_bytes / 1e6, nn_bytes / 1e6])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    ref, affine = truth()
    thick, thick_aff = degrade(ref, affine)
    spacing = tuple(float(s) for s in np.linalg.norm(thick_aff[:3, :3], axis=0))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nib.save(nib.Nifti1Image(ref, affine), str(tmp / "iso.nii.gz"))
        nib.save(nib.Nifti1Image(thick, thick_aff), str(tmp / "thick.nii.gz"))
        iso = f"1 mm T1 ({'×'.join(map(str, ref.shape))})"
        thk = (
            f"thick {spacing[0]:.2f}×{spacing[1]:.2f}×{spacing[2]:.0f} mm "
            f"({'×'.join(map(str, thick.shape))})"
        )
        e2e = end_to_end(
            [
                (f"{iso} → 1 mm", tmp / "iso.nii.gz", 1.0),
                (f"{thk} → 1 mm", tmp / "thick.nii.gz", 1.0),
                (f"{iso} → 2 mm (CPU presets)", tmp / "iso.nii.gz", 2.0),
            ],
            tmp,
            args.repeats,
        )
    fid = fidelity(thick, spacing, ref)
    text = "\n\n".join(
        [
            "# prepare: end-to-end seconds per scan and thick-slice fidelity",
            f"Machine: {machine()}; one thread per pipeline (prepare runs one process per core). "
            f"Medians of {args.repeats} runs, measured in one run of "
            "`python -m benchmarks.bench_prepare --out benchmarks/results/prepare.md`.",
            "## End to end (read NIfTI → preprocessed array on disk)",
            table(
                [
                    "scan",
                    "brainfoundry s",
                    "nnU-Net v2 s",
                    "speed-up",
                    "brainfoundry MB",
                    "nnU-Net MB",
                ],
                e2e,
            ),
            "## Fidelity: thick scan restored to the true 1 mm grid (resampling alone)",
            "PSNR in the brain against the real 1 mm volume the thick scan was made from.",
            table(["method", "PSNR dB", "seconds"], fid),
        ]
    )
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
