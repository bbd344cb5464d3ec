"""Which autocast precision a run trains in. `train.amp=auto` measures rather than guesses.

On CUDA, bf16 pays (tensor cores); fp16 is the fallback on GPUs without bf16. On a CPU it
depends on the chip. The resenc:small step was 1.45x slower in bf16 on one AVX-512-BF16 machine
(issue 12) and is 1.5x faster on another (benchmarks/results/step.md). So on a CPU with native
bf16, `auto` times one forward + backward of the run's own model on its first batch in both
precisions (a non-finite gradient norm stops training, `loop.py`; the bf16 fault of tiny
convolutions is kept out by `backbones.resenc.Conv3d`). It
keeps bf16 only if that is at least `MIN_GAIN` times faster. The verdict is cached per machine,
torch build, model and batch shape, so a second run (or a test that compares two runs) gets
the same choice without timing again. The choice is printed and written to RUN/amp.json. A
resumed run keeps the precision its checkpoint was trained in.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..io.atomic import atomic_write_text

DTYPES: dict[str, torch.dtype | None] = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}
MIN_GAIN = 1.1  # bf16 must beat fp32 by 10%: below that, timing noise could flip the choice
REPEATS = 3  # timed steps per precision, interleaved, after one warm-up each
_MEMO: dict[str, dict] = {}  # this process's verdicts (the file cache may be read-only)


@dataclass
class AmpChoice:
    requested: str
    chosen: str  # off | bf16 | fp16
    reason: str
    fp32_s: float | None = None  # median probe step, when measured
    bf16_s: float | None = None

    @property
    def dtype(self) -> torch.dtype | None:
        return DTYPES[self.chosen]

    def line(self) -> str:
        return f"amp={self.requested}: training in {_NAMES[self.chosen]} ({self.reason})"


_NAMES = {"off": "fp32", "bf16": "bf16 autocast", "fp16": "fp16 autocast"}


def cpu_has_bf16() -> bool:
    """Whether oneDNN has native bf16 kernels on this CPU (AVX-512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cache_file() -> Path:
    """$BRAINFOUNDRY_CACHE/amp.json, else the user's cache folder (XDG)."""
    if own := os.environ.get("BRAINFOUNDRY_CACHE"):
        return Path(own) / "amp.json"
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "brainfoundry" / "amp.json"


def probe_key(device: torch.device, model: torch.nn.Module, batch_shape: tuple) -> str:
    """What the verdict depends on: the chip, the torch build and threads, the model, the
    input. Two runs with one key train in one precision."""
    cpu = _cpu_name() if device.type == "cpu" else torch.cuda.get_device_name(device)
    params = sum(p.numel() for p in model.parameters())
    return (
        f"{cpu}|torch {torch.__version__}|threads {torch.get_num_threads()}|"
        f"{type(model).__name__}({params})|{tuple(batch_shape)}"
    )


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolve(
    requested: str,
    device: torch.device,
    step: Callable[[torch.dtype | None], None] | None = None,
    key: str = "",
) -> AmpChoice:
    """The precision to train in. `step(dtype)` runs one forward + backward in `dtype` (None:
    fp32) and leaves no trace; it is called only when `auto` must measure."""
    if requested != "auto":
        return AmpChoice(requested, requested, "as configured")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return AmpChoice(requested, "bf16", "CUDA with bf16")
        return AmpChoice(requested, "fp16", "CUDA without bf16: fp16 with loss scaling")
    if device.type != "cpu" or step is None:
        return AmpChoice(requested, "off", f"no bf16 probe on {device.type}")
    if not cpu_has_bf16():
        return AmpChoice(requested, "off", "this CPU has no native bf16")
    known = _cached(key)
    if known is not None:
        return AmpChoice(**{**known, "requested": requested})
    fp32, bf16 = measure(step)
    gain = fp32 / bf16
    chosen = "bf16" if gain >= MIN_GAIN else "off"
    verdict = "pays" if chosen == "bf16" else f"does not pay (needs {MIN_GAIN}x)"
    reason = f"measured: bf16 step {gain:.2f}x fp32's speed here, {verdict}"
    choice = AmpChoice(requested, chosen, reason, fp32, bf16)
    _store(key, choice)
    return choice


def measure(step: Callable[[torch.dtype | None], None]) -> tuple[float, float]:
    """Median seconds of `step` in fp32 and in bf16, interleaved so that load hits both."""
    step(None)
    step(torch.bfloat16)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(REPEATS):
        for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            t = time.perf_counter()
            step(dtype)
            times[name].append(time.perf_counter() - t)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    return med["fp32"], med["bf16"]


def _cached(key: str) -> dict | None:
    if key in _MEMO:
        return _MEMO[key]
    try:
        found = json.loads(cache_file().read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(found, dict) and found.get("chosen") in DTYPES:
        _MEMO[key] = found
        return found
    return None


def _store(key: str, choice: AmpChoice) -> None:
    entry = {k: v for k, v in asdict(choice).items() if k != "requested"}
    entry["reason"] += " (cached)"
    _MEMO[key] = entry
    path = cache_file()
    try:
        old = json.loads(path.read_text()) if path.is_file() else {}
        old = old if isinstance(old, dict) else {}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({**old, key: entry}, indent=1))
    except (OSError, ValueError) as e:  # e.g. a read-only home: the verdict holds in-process
        print(f"warning: amp verdict not cached ({path}: {e}); the next process measures again",
              file=sys.stderr)  # fmt: skip


def write_choice(run_dir: Path, choice: AmpChoice) -> None:
    """RUN/amp.json: what was asked, what was chosen, and why (with the probe's timings)."""
    atomic_write_text(Path(run_dir) / "amp.json", json.dumps(asdict(choice), indent=2) + "\n")
