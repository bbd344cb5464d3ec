"""benchmarks/bench_loader: the training-path section runs the real loader over a real store
(a few batches) and its prose follows the numbers (the timings themselves are for an idle
machine)."""

from __future__ import annotations

from benchmarks import bench_loader as bl


def test_training_path_loads_real_batches(tmp_path):
    store = bl.make_store(tmp_path, 5.0)  # 4 scans: one batch of cpu-small
    cfg = bl.train_config("cpu-small", store.root, 3, workers=0)
    batch = next(bl.training_batches(cfg, store, batched=True))
    assert tuple(batch["image"].shape) == (4, 1, 32, 32, 32)
    assert bl.loader_rate("cpu-small", store, 0, 1, 1, batched=False) > 0


def _rec(loader: float, peer: float, step_s: float) -> dict:
    return {"case": "cpu-small", "patch": 32, "batch": 4, "augment": "ssl", "spacing": 2.0,
            "preset_workers": 1, "per_sample": {0: loader / 2, 1: loader},
            "batched": {0: loader, 1: loader}, "peers": {"MONAI": peer, "TorchIO": peer / 2},
            "step": {"alone": step_s, "fed": step_s, "batch": 4}}  # fmt: skip


def test_prose_states_the_targets_from_the_numbers():
    met = bl.findings(_rec(loader=100.0, peer=40.0, step_s=0.4))  # 10x step, 2.5x MONAI
    assert "10.00× what the step consumes" in met[0] and "2.50× the fastest peer (MONAI" in met[0]
    assert met[0].endswith("Target ≥ 2× both: met.")
    missed = bl.findings(_rec(loader=60.0, peer=40.0, step_s=0.4))
    assert "NOT met (peer)" in missed[0]
    assert "augmenting whole batches is faster" in missed[-1]  # 2x at num_workers 0
    assert "| **6.00×** | MONAI 40.0 | **1.50×** |" in bl.consumption_table([_rec(60, 40, 0.4)])
