"""Loader benchmark: augmented 3-D patches per second, brainfoundry against its peers.

Every library gets the same padded crops (nnU-Net's `get_patch_size` for +-30 deg rotations)
of a real 1 mm T1 (nilearn's MNI152 template, offline) with a voxel label map, and must return a
`patch`^3 image and label. Two settings: "nnunet" (nnU-Net v2's default training transforms
and probabilities: batchgeneratorsv2 via `nnUNetTrainer.get_training_transforms`, the closest
MONAI/TorchIO equivalents at the same probabilities, brainfoundry's "nnunet" preset) and
"always" (each library's versions of the issue's transforms, every one applied every time).
Libraries alternate within each repeat so machine noise hits all alike; medians are reported.

    pip install -e ".[bench]"
    BENCH_THREADS=2 python benchmarks/bench_loader.py   # prints the table in results/loader.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable

THREADS = int(os.environ.get("BENCH_THREADS", "2"))
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROT = np.pi / 6  # nnU-Net's 3-D rotation range: +-30 degrees
NNUNET_P_SPATIAL = 1 - 0.8 * 0.8  # p_rotation 0.2, p_scaling 0.2, independent
Runner = Callable[[list[np.ndarray], list[np.ndarray]], None]


def load_volume() -> tuple[np.ndarray, np.ndarray]:
    """MNI152 1 mm T1, z-scored on the brain, with the brain mask as a label map."""
    from nilearn.datasets import load_mni152_template

    data = np.asarray(load_mni152_template(resolution=1).get_fdata(), dtype=np.float32)
    mask = data > 0
    data = np.where(mask, (data - data[mask].mean()) / data[mask].std(), 0).astype(np.float32)
    return np.ascontiguousarray(data), np.ascontiguousarray(mask, dtype=np.uint8)  # C order


def padded_size(patch: int) -> int:
    from nnunetv2.training.data_augmentation.compute_initial_patch_size import get_patch_size

    return int(get_patch_size((patch,) * 3, (-ROT, ROT), (-ROT, ROT), (-ROT, ROT), (0.85, 1.25))[0])


def crops(image, label, size: int, count: int, seed: int = 0):
    """`count` random padded crops (as a dataset would read them), zero-padding the volume."""
    pad = [(max(0, size + 2 - s) // 2 + 1,) * 2 for s in image.shape]
    image, label = np.pad(image, pad), np.pad(label, pad)
    rng = np.random.default_rng(seed)
    starts = [[rng.integers(0, s - size + 1) for s in image.shape] for _ in range(count)]
    sl = [tuple(slice(a, a + size) for a in st) for st in starts]
    return [image[s] for s in sl], [label[s] for s in sl]


# ---------------------------------------------------------------- brainfoundry


def brainfoundry(setting: str, patch: int) -> Runner:
    import dataclasses

    from brainfoundry.transforms import always_config, augment_preset, build_augmentation

    size = (patch,) * 3
    if setting == "always":
        cfg = always_config(size)
    else:
        cfg = augment_preset("nnunet")
        cfg.spatial = dataclasses.replace(cfg.spatial, patch_size=size)
    aug = build_augmentation(cfg)
    gen = torch.Generator().manual_seed(0)

    def run(images, labels):
        for i in range(0, len(images), 2):  # nnU-Net's default batch size
            image = torch.from_numpy(np.stack(images[i : i + 2]))[:, None]
            label = torch.from_numpy(np.stack(labels[i : i + 2]))[:, None]
            present = torch.ones(image.shape[:2], dtype=torch.bool)
            out = aug({"image": image, "present": present, "label": label}, gen)
            assert out["image"].shape[2:] == size

    return run


# ---------------------------------------------------------------- batchgeneratorsv2 (nnU-Net)


def bgv2(setting: str, patch: int) -> Runner:
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    size = (patch,) * 3
    if setting == "nnunet":
        tr = nnUNetTrainer.get_training_transforms(size, (-ROT, ROT), None, (0, 1, 2), False)
    else:
        tr = _bgv2_always(size)
    np.random.seed(0)

    def run(images, labels):
        for image, label in zip(images, labels):
            out = tr(
                image=torch.from_numpy(image.copy())[None],
                segmentation=torch.from_numpy(label.astype(np.int16))[None],
            )
            assert tuple(out["image"].shape[1:]) == size

    return run


def _bgv2_always(size):
    from batchgeneratorsv2.transforms.intensity.brightness import MultiplicativeBrightnessTransform
    from batchgeneratorsv2.transforms.intensity.contrast import BGContrast, ContrastTransform
    from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform
    from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
    from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform
    from batchgeneratorsv2.transforms.spatial.low_resolution import SimulateLowResolutionTransform
    from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform
    from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
    from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
    from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTansform

    return ComposeTransforms(
        [
            SpatialTransform(
                size,
                0,
                False,
                p_elastic_deform=1,
                p_rotation=1,
                rotation=(-ROT, ROT),
                p_scaling=1,
                scaling=(0.7, 1.4),
                p_synchronize_scaling_across_axes=1,
                border_mode_seg="constant",
                padding_value_seg=-1,
            ),
            GaussianNoiseTransform((0, 0.1), p_per_channel=1, synchronize_channels=True),
            GaussianBlurTransform((0.5, 1.0), False, False, p_per_channel=1, benchmark=True),
            MultiplicativeBrightnessTransform(BGContrast((0.75, 1.25)), False, p_per_channel=1),
            ContrastTransform(BGContrast((0.75, 1.25)), True, False, p_per_channel=1),
            SimulateLowResolutionTransform((0.5, 1), False, True, None, None, p_per_channel=1),
            GammaTransform(BGContrast((0.7, 1.5)), 1, False, p_per_channel=1, p_retain_stats=1),
            GammaTransform(BGContrast((0.7, 1.5)), 0, False, p_per_channel=1, p_retain_stats=1),
            MirrorTransform(allowed_axes=(0, 1, 2)),
            RemoveLabelTansform(-1, 0),
        ]
    )


# ---------------------------------------------------------------- MONAI


def monai(setting: str, patch: int) -> Runner:
    import monai.transforms as mt
    from monai.data import set_track_meta

    set_track_meta(False)  # plain tensors: MONAI's fastest mode
    size = (patch,) * 3
    p = 1.0 if setting == "always" else None
    both, img = ["image", "label"], ["image"]
    if setting == "always":
        spatial = mt.Rand3DElasticd(
            both,
            sigma_range=(5, 7),
            magnitude_range=(50, 150),
            prob=1.0,
            rotate_range=(ROT,) * 3,
            scale_range=(0.35,) * 3,
            spatial_size=size,
            mode=("bilinear", "nearest"),
            padding_mode="zeros",
        )
    else:
        spatial = mt.RandAffined(
            both,
            prob=NNUNET_P_SPATIAL,
            rotate_range=(ROT,) * 3,
            scale_range=(0.35,) * 3,
            spatial_size=size,
            mode=("bilinear", "nearest"),
            padding_mode="zeros",
        )
    chain = [spatial]
    if setting == "always":
        chain += [
            mt.RandBiasFieldd(img, prob=1.0, coeff_range=(0.0, 0.5)),
            mt.RandGibbsNoised(img, prob=1.0, alpha=(0.3, 0.7)),
        ]
    chain += [
        mt.RandGaussianNoised(img, prob=p or 0.1, std=0.316),
        mt.RandGaussianSmoothd(img, (0.5, 1.0), (0.5, 1.0), (0.5, 1.0), prob=p or 0.1),
        mt.RandScaleIntensityd(img, factors=0.25, prob=p or 0.15),
        mt.RandScaleIntensityFixedMeand(img, factors=0.25, preserve_range=True, prob=p or 0.15),
        mt.RandSimulateLowResolutiond(img, prob=p or 0.125, zoom_range=(0.5, 1.0)),
        mt.RandAdjustContrastd(
            img, prob=p or 0.1, gamma=(0.7, 1.5), invert_image=True, retain_stats=True
        ),
        mt.RandAdjustContrastd(img, prob=p or 0.3, gamma=(0.7, 1.5), retain_stats=True),
    ]
    chain += [mt.RandFlipd(both, prob=0.5, spatial_axis=a) for a in range(3)]
    tr = mt.Compose(chain)
    tr.set_random_state(seed=0)

    def run(images, labels):
        for image, label in zip(images, labels):
            out = tr(
                {
                    "image": torch.from_numpy(image.copy())[None],
                    "label": torch.from_numpy(label.copy())[None],
                }
            )
            assert tuple(out["image"].shape[1:]) == size

    return run


# ---------------------------------------------------------------- TorchIO


def torchio(setting: str, patch: int) -> Runner:
    import SimpleITK as sitk
    import torchio as tio

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(THREADS)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    size = (patch,) * 3
    always = setting == "always"
    p = 1.0 if always else None

    def brightness(x):  # TorchIO has no multiplicative brightness/contrast: equal work via Lambda
        return x * float(rng.uniform(0.75, 1.25))

    def contrast(x):
        mean = x.mean()
        return ((x - mean) * float(rng.uniform(0.75, 1.25)) + mean).clamp(x.min(), x.max())

    chain = [
        tio.RandomAffine(scales=(0.7, 1.4), degrees=30, p=p or NNUNET_P_SPATIAL),
        tio.CropOrPad(size),
    ]
    if always:  # elastic after the crop: cheaper for TorchIO than on the padded read
        chain += [
            tio.RandomElasticDeformation(p=1.0),
            tio.RandomBiasField(p=1.0),
            tio.RandomMotion(p=1.0),
            tio.RandomGhosting(p=1.0),
        ]
    chain += [
        tio.RandomNoise(std=(0, 0.316), p=p or 0.1),
        tio.RandomBlur(std=(0.5, 1.0), p=p or 0.1),
        tio.Lambda(brightness, types_to_apply=[tio.INTENSITY], p=p or 0.15),
        tio.Lambda(contrast, types_to_apply=[tio.INTENSITY], p=p or 0.15),
        tio.RandomAnisotropy(downsampling=(1, 2), p=p or 0.125),
        tio.RandomGamma(log_gamma=(-0.36, 0.4), p=p or 0.4),
        tio.RandomFlip(axes=(0, 1, 2), flip_probability=0.5),
    ]
    tr = tio.Compose(chain)

    def run(images, labels):
        for image, label in zip(images, labels):
            subject = tio.Subject(
                image=tio.ScalarImage(tensor=torch.from_numpy(image.copy())[None]),
                label=tio.LabelMap(tensor=torch.from_numpy(label.copy())[None]),
            )
            out = tr(subject)
            assert tuple(out["image"].shape[1:]) == size

    return run


LIBRARIES = {
    "brainfoundry": brainfoundry,
    "batchgeneratorsv2": bgv2,
    "MONAI": monai,
    "TorchIO": torchio,
}


def measure(args) -> list[dict]:
    image, label = load_volume()
    rows = []
    for patch in args.sizes:
        size = padded_size(patch)
        for setting in args.settings:
            n = args.patches if setting == "nnunet" else args.always_patches
            images, labels = crops(image, label, size, n * (args.repeats + 1))
            runners = {
                name: make(setting, patch)
                for name, make in LIBRARIES.items()
                if name in args.libraries
            }
            rates: dict[str, list[float]] = {name: [] for name in runners}
            for run in runners.values():  # warm-up (allocators, caches, lazy imports)
                run(images[:2], labels[:2])
            for r in range(args.repeats):
                chunk = slice(n * (r + 1), n * (r + 2))
                order = list(runners)[r % len(runners) :] + list(runners)[: r % len(runners)]
                for name in order:
                    t0 = time.perf_counter()
                    runners[name](images[chunk], labels[chunk])
                    rates[name].append(n / (time.perf_counter() - t0))
            for name, values in rates.items():
                rows.append(
                    {
                        "setting": setting,
                        "patch": patch,
                        "input": size,
                        "library": name,
                        "median": statistics.median(values),
                        "min": min(values),
                        "max": max(values),
                    }
                )
                print(
                    f"{setting:7s} {patch}^3 (from {size}^3) {name:18s} "
                    f"{statistics.median(values):7.1f} patches/s",
                    flush=True,
                )
    return rows


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            models = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = models[0] if models else cpu
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"{cpu}, nproc={nproc}, torch {torch.__version__}, torch threads={THREADS}"


def versions() -> str:
    from importlib.metadata import version

    names = ["batchgeneratorsv2", "nnunetv2", "monai", "torchio", "SimpleITK"]
    return ", ".join(f"{n} {version(n)}" for n in names)


def table(rows: list[dict]) -> str:
    peers = [n for n in LIBRARIES if n != "brainfoundry"]
    head = (
        "| setting | patch (input) | " + " | ".join(LIBRARIES) + " | brainfoundry / fastest peer |"
    )
    lines = [head, "|" + "---|" * (len(LIBRARIES) + 3)]
    keys = sorted(
        {(r["setting"], r["patch"], r["input"]) for r in rows},
        key=lambda k: (k[0] != "nnunet", k[1]),
    )
    for setting, patch, size in keys:
        got = {r["library"]: r for r in rows if (r["setting"], r["patch"]) == (setting, patch)}
        cells = [
            f"{got[n]['median']:.1f} ({got[n]['min']:.1f}-{got[n]['max']:.1f})" if n in got else "-"
            for n in LIBRARIES
        ]
        best = max((got[n]["median"] for n in peers if n in got), default=float("nan"))
        ratio = got["brainfoundry"]["median"] / best if "brainfoundry" in got else float("nan")
        lines.append(
            f"| {setting} | {patch}³ ({size}³) | " + " | ".join(cells) + f" | **{ratio:.2f}×** |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 128])
    parser.add_argument("--settings", nargs="+", default=["nnunet", "always"])
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--patches", type=int, default=12, help="patches per timed repeat")
    parser.add_argument("--always-patches", type=int, default=4, help="same, 'always' setting")
    parser.add_argument("--out", default=None, help="write the markdown table here")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    load_before = os.getloadavg()[0]
    rows = measure(args)
    load = f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    text = (
        f"Machine: {machine()}\n{load}\nPeers: {versions()}\n\n"
        "Augmented patches per second, median (min-max) over repeats:\n\n" + table(rows)
    )
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
