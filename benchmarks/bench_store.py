"""store benchmark: bytes per scan and milliseconds per random crop, blosc2 against alternatives.

One preprocessed 1 mm scan (nilearn's MNI152 T1 through brainfoundry's preprocessing: cropped,
z-scored), in two versions: the template itself (smooth: an average of 152 brains) and with
Rician noise at SNR 25 like a single real scan, which is what decides compressed size. Each
format stores it, then reads random 96³ and 160³ crops, opening the file for every crop as the
patch dataset does. nnU-Net v2.8's format (blosc2 float32, its chunk/block heuristic for a 128³
patch, LZ4HC) is measured in the same run.

    pip install -e ".[bench]"
    python -m benchmarks.bench_store --out benchmarks/results/store.md
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import blosc2
import numpy as np

from benchmarks.common import machine, table
from brainfoundry.data.arrays import ArrayFormat, open_array, write_array


def scans() -> dict[str, np.ndarray]:
    from nilearn.datasets import load_mni152_template

    from brainfoundry.data.preprocess import PreprocessConfig, preprocess_group
    from brainfoundry.io.volume import Volume

    img = load_mni152_template(resolution=1)
    d = np.asarray(img.dataobj, np.float32)
    rng = np.random.default_rng(0)
    sigma = d[d > 0].mean() / 25
    noisy = np.hypot(d + rng.normal(0, sigma, d.shape), rng.normal(0, sigma, d.shape))
    noisy[d == 0] = 0  # skull-stripped: background stays zero
    out = {"_full": d}
    for name, vol in (("template (smooth)", d), ("template + noise, SNR 25", noisy)):
        pre = preprocess_group(
            [Volume(vol.astype(np.float32), img.affine)], PreprocessConfig(dtype="float32")
        )
        out[name] = pre.images[0]
    return out


def fmt_blosc2(fmt: ArrayFormat):
    def write(path: Path, x: np.ndarray) -> Path:
        p = path.with_suffix(".b2nd")
        write_array(p, x.astype(np.float16), fmt)
        return p

    return write, lambda p, box: np.asarray(open_array(p)[box])


def fmt_nnunet():
    from nnunetv2.training.dataloading.nnunet_dataset import comp_blosc2_params

    def write(path: Path, x: np.ndarray) -> Path:
        p = path.with_suffix(".b2nd")
        blocks, chunks = comp_blosc2_params((1, *x.shape), (128, 128, 128), 4)
        cparams = {
            "codec": blosc2.Codec.LZ4HC,
            "clevel": 5,
            "nthreads": 1,
            "filters": [blosc2.Filter.SHUFFLE],
        }
        blosc2.asarray(
            np.ascontiguousarray(x[None]),
            urlpath=str(p),
            chunks=chunks,
            blocks=blocks,
            cparams=cparams,
            mode="w",
        )
        return p

    return write, lambda p, box: np.asarray(blosc2.open(str(p), mode="r")[(0, *box)])


def fmt_npy(dtype):
    def write(path: Path, x: np.ndarray) -> Path:
        p = path.with_suffix(".npy")
        np.save(p, x.astype(dtype))
        return p

    return write, lambda p, box: np.array(np.load(p, mmap_mode="r")[box])


def fmt_npz():
    def write(path: Path, x: np.ndarray) -> Path:
        p = path.with_suffix(".npz")
        np.savez_compressed(p, x=x.astype(np.float16))
        return p

    def read(p, box):
        with np.load(p) as z:
            return z["x"][box]

    return write, read


def formats() -> dict:
    out = {
        "npy float32 (FOMO25 baseline)": fmt_npy(np.float32),
        "npy float16, memory-mapped": fmt_npy(np.float16),
        "npz float16 (zip deflate)": fmt_npz(),
    }
    with contextlib.suppress(ImportError):  # the bench extra is not installed
        out["nnU-Net v2.8 b2nd float32 (LZ4HC)"] = fmt_nnunet()
    for codec, chunk, block in (
        ("LZ4", 64, 16),
        ("LZ4", 64, 32),
        ("LZ4HC", 64, 16),
        ("LZ4HC", 64, 32),
        ("LZ4HC", 128, 16),
        ("ZSTD", 64, 16),
        ("ZSTD", 64, 32),
    ):
        label = f"b2nd float16 {codec} chunk {chunk}³ block {block}³"
        out[label] = fmt_blosc2(ArrayFormat(codec=codec, clevel=5, chunk=chunk, block=block))
    return out


def crop_ms(read, path, shape, size, n, rng) -> float:
    times = []
    for _ in range(n):
        o = [int(rng.integers(0, max(1, s - size + 1))) for s in shape]
        box = tuple(slice(a, a + size) for a in o)
        t = time.perf_counter()
        read(path, box)
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--crops", type=int, default=40)
    args = ap.parse_args()
    sections = []
    default = ArrayFormat()
    all_scans = scans()
    full = all_scans.pop("_full").astype(np.float32).nbytes  # uncropped 1 mm, as FOMO25 stores
    for scan, x in all_scans.items():
        rows = []
        f32 = x.astype(np.float32).nbytes
        with tempfile.TemporaryDirectory() as tmp:
            for name, (write, read) in formats().items():
                p = write(Path(tmp) / name.replace(" ", "_").replace("³", ""), x)
                rng = np.random.default_rng(0)
                size = p.stat().st_size
                c96 = crop_ms(read, p, x.shape, 96, args.crops, rng)
                c160 = crop_ms(read, p, x.shape, 160, args.crops // 2, rng)
                rows.append([name, size / 1e6, f32 / size, full / size, c96, c160])
        sections.append(
            f"### {scan}: {'×'.join(map(str, x.shape))} voxels, "
            f"{f32 / 1e6:.1f} MB as float32\n\n"
            + table(
                [
                    "format",
                    "MB",
                    "× smaller than this crop as float32",
                    f"× smaller than uncropped 1 mm float32 ({full / 1e6:.1f} MB)",
                    "96³ crop ms",
                    "160³ crop ms",
                ],
                rows,
            )
        )
    text = "\n\n".join(
        [
            "# store: bytes per scan and random-crop read time",
            f"Machine: {machine()}. Medians over {args.crops} random crops (160³: half as many), "
            "the file opened for each crop. Measured in one run of "
            "`python -m benchmarks.bench_store --out benchmarks/results/store.md`. brainfoundry's "
            f"default: b2nd float16 {default.codec} chunk {default.chunk}³ block {default.block}³.",
            *sections,
        ]
    )
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
