"""Loader benchmark: augmented 3-D patches per second, brainfoundry against its peers.

Headline, the training path: the loader `Trainer.fit` iterates (the pretrain preset's
PatchDataset over a real store made by `prepare`, augmented per sample inside the DataLoader
workers) at num_workers 0, 1 and 2, against the same loader augmenting whole batches in the main
process, the preset's training step (patches it consumes per second) and the peers at the same
patch size; the issue's target is >= 2x both. Then the peer table below (main process only).

Every library gets the same padded crops (nnU-Net's `get_patch_size` for +-30 deg rotations)
of a real 1 mm T1 (nilearn's MNI152 template, offline) with a voxel label map, and must return a
`patch`^3 image and label. Two settings: "nnunet" (nnU-Net v2's default training transforms
and probabilities: batchgeneratorsv2 via `nnUNetTrainer.get_training_transforms`, the closest
MONAI/TorchIO equivalents at the same probabilities, brainfoundry's "nnunet" preset) and
"always" (each library's versions of the issue's transforms, every one applied every time).
Libraries alternate within each repeat so machine noise hits all alike; medians are reported.

    pip install -e ".[bench]"
    BENCH_THREADS=2 python -m benchmarks.bench_loader --out benchmarks/results/loader.md
    python -m benchmarks.bench_loader --quick   # smoke test: a few batches, one repeat
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


def peer_rows(image, label, patch: int, setting: str, n: int, repeats: int, libraries) -> list:
    """One (patch, setting) cell of the peer table: each library's patches/s over `repeats`
    repeats of `n` padded crops, libraries alternating within a repeat."""
    size = padded_size(patch)
    images, labels = crops(image, label, size, n * (repeats + 1))
    runners = {name: make(setting, patch) for name, make in LIBRARIES.items() if name in libraries}
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for run in runners.values():  # warm-up (allocators, caches, lazy imports)
        run(images[:2], labels[:2])
    for r in range(repeats):
        chunk = slice(n * (r + 1), n * (r + 2))
        order = list(runners)[r % len(runners) :] + list(runners)[: r % len(runners)]
        for name in order:
            t0 = time.perf_counter()
            runners[name](images[chunk], labels[chunk])
            rates[name].append(n / (time.perf_counter() - t0))
    rows = []
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


def measure(args, image, label) -> list[dict]:
    rows = []
    for patch in args.sizes:
        for setting in args.settings:
            n = args.patches if setting == "nnunet" else args.always_patches
            rows += peer_rows(image, label, patch, setting, n, args.repeats, args.libraries)
    return rows


# ---------------------------------------------------------------- the training path

# name: (pretrain preset, store spacing in mm, overrides of the preset). cpu-small is the
# headline; nnunet-96 is nnU-Net's setting (96³ × 2, its transforms) on the same code path
TRAIN_CASES = {
    "cpu-small": ("cpu-small", 2.0, []),
    "nnunet-96": (
        "cpu-small",
        1.0,
        ["data.patch_size=[96,96,96]", "train.batch_size=2", "data.augment=nnunet"],
    ),
}
_AUGMENTED = ("image", "present", "label")  # the keys a batched augmentation reads


def make_store(work, spacing: float, scans: int = 4):
    """A real store made by the project's own `prepare`: `scans` MNI152 1 mm T1s (intensity
    varied) in FOMO60K layout, resampled to `spacing` mm. Kept in `work` for reruns."""
    import nibabel as nib
    from nilearn.datasets import load_mni152_template

    from brainfoundry.data.prepare import PrepareConfig, prepare
    from brainfoundry.data.preprocess import PreprocessConfig
    from brainfoundry.data.store import Store

    out = work / f"store-{spacing:g}mm"
    if not (out / "manifest.parquet").exists():
        img = load_mni152_template(resolution=1)
        data = np.asarray(img.dataobj, dtype=np.float32)
        for i in range(scans):
            path = work / "raw" / f"sub_{i}" / "ses_1" / "t1.nii.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(data * (1 + 0.1 * i), img.affine), str(path))
        cfg = PrepareConfig(preprocess=PreprocessConfig(spacing=(spacing,) * 3))
        prepare(work / "raw", out, cfg, progress=False, log=lambda *a, **k: None)
    return Store(out)


def train_config(case: str, store_root, steps: int, workers: int | None = None):
    """The preset's PretrainConfig as `pretrain --preset` loads it, on CPU; `workers` replaces
    its num_workers (None: the preset's)."""
    from brainfoundry.config import load_config
    from brainfoundry.presets import preset_path
    from brainfoundry.ssl.pretrain import PretrainConfig

    preset, _, overrides = TRAIN_CASES[case]
    more = [f"store={store_root}", f"train.steps={steps}", "train.device=cpu"]
    more += [] if workers is None else [f"train.num_workers={workers}"]
    return load_config(PretrainConfig, preset_path("pretrain", preset), overrides + more)


def n_views(cfg) -> int:
    return 2 if cfg.objective.method in ("contrastive", "hybrid") else 1  # as `pretrain` does


def training_batches(cfg, store, batched: bool):
    """The batches `Trainer.fit` iterates: the preset's PatchDataset (`ssl.pretrain.
    build_dataset`) through `Trainer._micro_batches` (EpochIndexed, the step plan as batch
    sampler, the preset's num_workers). `batched`: the dataset reads only and the same
    augmentation runs once per collated batch in the main process instead."""
    from torch import nn

    from brainfoundry.engine import Trainer
    from brainfoundry.ssl.pretrain import build_dataset

    ds = build_dataset(cfg, store, n_views(cfg))
    aug, gen = (ds.transform, torch.Generator().manual_seed(0)) if batched else (None, None)
    if batched:
        ds.transform = None
    trainer = Trainer(nn.Linear(1, 1), ds, cfg.train, cfg.optim, store.root / "unused-run")
    for _, _, batch in trainer._micro_batches(0):  # the loop's own loader (private on purpose)
        if aug is not None:
            batch = {**batch, **aug({k: batch[k] for k in _AUGMENTED if k in batch}, gen)}
        yield batch


def loader_rate(case: str, store, workers: int, warmup: int, batches: int, batched: bool):
    """Patches/s of the training loader alone, over `batches` batches after `warmup` (worker
    start-up and the prefetched backlog: the consumer here does nothing, so it drains)."""
    cfg = train_config(case, store.root, warmup + batches, workers)
    it = training_batches(cfg, store, batched)
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    rate = batches * cfg.train.batch_size / (time.perf_counter() - t0)
    it.close()  # shuts the workers down
    return rate


def make_step(cfg):
    """One optimizer step of the preset's model and objective (forward, backward, AdamW), as
    `pretrain` builds them, as a function of a batch."""
    from brainfoundry.engine.loop import build_optimizer
    from brainfoundry.models.backbones import create_backbone
    from brainfoundry.ssl import create_objective
    from brainfoundry.ssl.pretrain import objective_kwargs

    torch.manual_seed(cfg.train.seed)
    m = cfg.model
    bb = create_backbone(m.backbone, in_channels=1, out_channels=1, size=m.size, **m.kwargs)
    obj = create_objective(cfg.objective.method, bb, **objective_kwargs(cfg.objective))
    opt = build_optimizer(obj, cfg.optim)

    def step(batch):
        opt.zero_grad(set_to_none=True)
        loss, _ = obj(batch)
        loss.backward()
        opt.step()

    return step


def step_seconds(case: str, store, steps: int, warmup: int = 2) -> dict:
    """Seconds per training step of the preset: on one fixed loaded batch (the model alone:
    what the step consumes) and fed by the preset's own loader (its num_workers, sharing the
    CPUs with the step as in training), the two alternating so machine noise hits both."""
    cfg = train_config(case, store.root, warmup + steps + 1)
    step = make_step(cfg)
    it = training_batches(cfg, store, batched=False)
    batch = next(it)
    for _ in range(warmup):
        step(next(it))
    alone, fed = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        step(batch)
        t1 = time.perf_counter()
        step(next(it))
        alone.append(t1 - t0)
        fed.append(time.perf_counter() - t1)
    it.close()
    return {"alone": median(alone), "fed": median(fed), "batch": cfg.train.batch_size}


def measure_training(args, image, label, work) -> list[dict]:
    """Every training case: the loader per sample in workers (the training path) and batched
    in the main process, at each num_workers; the step it feeds; the peers at its patch."""
    recs = []
    for case in args.train_cases:
        store = make_store(work, TRAIN_CASES[case][1])
        cfg = train_config(case, store.root, 1)
        rec = {"case": case, "patch": cfg.data.patch_size[0], "batch": cfg.train.batch_size,
               "augment": cfg.data.augment, "spacing": TRAIN_CASES[case][1],
               "preset_workers": cfg.train.num_workers}  # fmt: skip
        runs: dict = {(b, w): [] for b in (False, True) for w in args.workers}
        for _ in range(args.repeats):
            for batched, w in runs:
                rate = loader_rate(case, store, w, 2 * w + 2, args.batches, batched)
                runs[(batched, w)].append(rate)
        for (batched, w), values in runs.items():
            rec.setdefault("batched" if batched else "per_sample", {})[w] = median(values)
            print(f"train {case} {'batched' if batched else 'per-sample'} num_workers={w}: "
                  f"{median(values):.1f} patches/s", flush=True)  # fmt: skip
        rec["step"] = step_seconds(case, store, args.steps)
        print(f"train {case} step: {rec['step']}", flush=True)
        peers = [n for n in args.libraries if n != "brainfoundry"]
        rows = peer_rows(image, label, rec["patch"], "nnunet", args.patches, args.repeats, peers)
        rec["peers"] = {r["library"]: r["median"] for r in rows}
        recs.append(rec)
    return recs


def median(values: list[float]) -> float:
    return statistics.median(values)


def training_table(recs: list[dict], workers: list[int]) -> str:
    head = "| case | path | " + " | ".join(f"num_workers {w}" for w in workers) + " |"
    lines = [head, "|" + "---|" * (len(workers) + 2)]
    for r in recs:
        what = f"{r['case']}: {r['patch']}³ × {r['batch']}, '{r['augment']}', {r['spacing']:g} mm"
        for key, path in (("per_sample", "per sample in workers (training)"),
                          ("batched", "batched in the main process")):  # fmt: skip
            cells = [f"{r[key][w]:.1f}" for w in workers]
            lines.append(f"| {what} | {path} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def consumption_table(recs: list[dict]) -> str:
    lines = ["| case | step s (fixed batch) | step consumes patches/s | step s fed by the loader "
             "| loader patches/s (preset's workers) | loader / step | fastest peer | "
             "loader / fastest peer |", "|" + "---|" * 8]  # fmt: skip
    for r in recs:
        v = ratios(r)
        lines.append(
            f"| {r['case']} | {r['step']['alone']:.3f} | {v['consumed']:.1f} | "
            f"{r['step']['fed']:.3f} | {v['loader']:.1f} (num_workers {r['preset_workers']}) | "
            f"**{v['vs_step']:.2f}×** | {v['peer']} {v['peer_rate']:.1f} | "
            f"**{v['vs_peer']:.2f}×** |"
        )
    return "\n".join(lines)


def ratios(r: dict) -> dict:
    """The issue's two ratios at the preset's num_workers: loader / step consumption and
    loader / fastest peer (at the same patch size)."""
    loader = r["per_sample"].get(r["preset_workers"], float("nan"))
    consumed = r["batch"] / r["step"]["alone"]
    peer = max(r["peers"], key=r["peers"].get) if r["peers"] else "-"
    peer_rate = r["peers"].get(peer, float("nan"))
    return {"loader": loader, "consumed": consumed, "vs_step": loader / consumed,
            "peer": peer, "peer_rate": peer_rate, "vs_peer": loader / peer_rate}  # fmt: skip


def findings(r: dict) -> list[str]:
    """The case's generated notes: the two targets, whether training waits on the loader,
    the best num_workers, and per-sample against batched augmentation."""
    v, s = ratios(r), r["step"]
    missed = [n for n, x in (("step", v["vs_step"]), ("peer", v["vs_peer"])) if not x >= 2]
    verdict = "met" if not missed else "NOT met (" + ", ".join(missed) + ")"
    notes = [
        f"{r['case']}, the training path (the preset's PatchDataset over a {r['spacing']:g} mm "
        f"store, '{r['augment']}' augmentation per sample inside {r['preset_workers']} "
        f"DataLoader worker(s), {r['patch']}³ × {r['batch']}) loads {v['loader']:.1f} "
        f"patches/s: {v['vs_step']:.2f}× what the step consumes ({v['consumed']:.1f} patches/s "
        f"= {r['batch']} / {s['alone']:.3f} s) and {v['vs_peer']:.2f}× the fastest peer "
        f"({v['peer']}, {v['peer_rate']:.1f} patches/s: nnU-Net's transforms, one in-memory "
        f"crop at a time in the main process, no store reads). Target ≥ 2× both: {verdict}."
    ]
    slower = s["fed"] / s["alone"] - 1
    waits = "waits on the loader" if slower > 0.1 else "does not wait on the loader"
    notes.append(
        f"{r['case']}: fed by that loader a step takes {s['fed']:.3f} s against "
        f"{s['alone']:.3f} s on a fixed batch (medians, alternating; {100 * slower:+.0f}%): "
        f"training {waits} here (workers and step share the CPUs)."
    )
    best = max(r["per_sample"], key=r["per_sample"].get)
    notes.append(
        f"{r['case']}: the most patches/s per sample is at num_workers {best} "
        f"({r['per_sample'][best]:.1f}); the preset uses {r['preset_workers']}."
    )
    return notes + [batched_note(r)]


def batched_note(r: dict) -> str:
    """Per-sample in workers against the same augmentation on whole batches in the main
    process: the issue asks for the faster one to be the training path."""
    gain = {w: r["batched"][w] / r["per_sample"][w] for w in r["per_sample"]}
    w = max(gain, key=gain.get)
    cells = ", ".join(f"{g:.2f}× at num_workers {k}" for k, g in gain.items())
    if gain[w] >= 1.2:
        return (f"{r['case']}: augmenting whole batches is faster than per sample in workers "
                f"({cells}; batched / per sample); in training it would run in the step's own "
                "process unless moved into the workers.")  # fmt: skip
    return (f"{r['case']}: per-sample augmentation in workers is not clearly slower than "
            f"batched in the main process ({cells}; batched / per sample).")  # fmt: skip


def training_text(recs: list[dict], workers: list[int]) -> str:
    return (
        "## The training path (headline)\n\nPatches/s of the loader `Trainer.fit` iterates "
        "(`ssl.pretrain.build_dataset` through the Trainer's own DataLoader: EpochIndexed, the "
        "step plan as batch sampler, default collate), median over repeats, consumer idle; "
        "'batched' is the same loader reading only, with the same augmentation applied once "
        "per collated batch in the main process:\n\n"
        + training_table(recs, workers)
        + "\n\nWhat the cpu-small step consumes (resenc/small MAE, forward + backward + AdamW, "
        "this process's torch threads) against the loader and the fastest peer at the same "
        "patch size:\n\n"
        + consumption_table(recs)
        + "\n\n"
        + "\n".join(f"- {n}" for r in recs for n in findings(r))
    )


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


QUICK = {"sizes": [96], "settings": ["nnunet"], "repeats": 1, "patches": 2, "always_patches": 1,
         "batches": 3, "steps": 2, "train_cases": ["cpu-small"]}  # fmt: skip


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 128])
    parser.add_argument("--settings", nargs="+", default=["nnunet", "always"])
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--patches", type=int, default=12, help="patches per timed repeat")
    parser.add_argument("--always-patches", type=int, default=4, help="same, 'always' setting")
    parser.add_argument("--train-cases", nargs="+", default=list(TRAIN_CASES))
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batches", type=int, default=20, help="timed batches per loader run")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps")
    parser.add_argument("--work", default=None, help="folder for the stores (default: temporary)")
    parser.add_argument("--quick", action="store_true", help="smoke test: " + str(QUICK))
    parser.add_argument("--out", default=None, help="write the markdown table here")
    args = parser.parse_args(argv)
    if args.quick:
        vars(args).update(QUICK)
    return args


TITLE = "# Loader: augmented 3-D patches per second, the training path and the peers"
REPRODUCE = "BENCH_THREADS=2 python -m benchmarks.bench_loader --out benchmarks/results/loader.md"


def main(argv: list[str] | None = None) -> None:
    import tempfile
    from pathlib import Path

    args = parse(argv)
    torch.set_num_threads(THREADS)
    load_before = os.getloadavg()[0]
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_loader-"))
    work.mkdir(parents=True, exist_ok=True)
    image, label = load_volume()
    recs = measure_training(args, image, label, work)
    rows = measure(args, image, label)
    load = f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    text = (
        f"{TITLE}\n\nReproduce: `{REPRODUCE}`\n\n"
        f"Machine: {machine()}\n{load}\nPeers: {versions()}\n\n"
        + training_text(recs, args.workers)
        + "\n\n## Peers (not the training path)\n\nbrainfoundry's batched augmentation "
        "(batches of 2, nnU-Net's batch size) in the main process, each peer one sample at a "
        "time, all from the same in-memory padded crops of the MNI152 1 mm T1; augmented "
        "patches per second, median (min-max) over repeats:\n\n" + table(rows)
    )
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
