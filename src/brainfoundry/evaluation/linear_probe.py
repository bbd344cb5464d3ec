"""The FOMO26 linear-probe protocol (tasks 6 and 7) on frozen embeddings, as the organisers run
it (fomo26/fomo-lp with asparagus' LinearProbeModule, read, not copied):

- split: per class, seeded (42), 50% test, 10% validation, the rest (40%) training; at least
  one validation and one training case per class (so a class needs 3 cases);
- 13 linear heads trained at once, one per learning rate (1e-5, 2e-5, 5e-5, ..., 0.05, 0.1);
  weights N(0, 0.01²), biases 0; cross-entropy; SGD, momentum 0.9, no weight decay; a cosine
  schedule to 0 over every step; 20 epochs of shuffled batches of 64; the embeddings as
  they are (no standardisation);
- the head kept is the one with the best validation macro one-vs-rest AUROC after the 20
  epochs (a tie: the smaller rate; a head whose outputs are not finite is never kept);
- test: macro OvR AUROC and macro F1 with percentile-bootstrap 95% CIs (`report.summarize`);
  a test case without an embedding scores worst, as fomo-metrics substitutes it: probability
  0 for its class and 1/(K-1) for every other (AUROC), and the class after its own,
  (label + 1) mod K, as its prediction (F1);
- fairness on the test cases (`evaluation.fairness`).

A training or validation case without an embedding is an error (the organisers' too): those
cannot be scored worst, only left out, which would change the protocol.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..errors import BrainFoundryError, InputError
from ..io.atomic import atomic_write_text
from .probe_inputs import Labels, _few

LEARNING_RATES = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1)


@dataclass(frozen=True)
class Protocol:
    learning_rates: tuple[float, ...] = LEARNING_RATES
    epochs: int = 20
    batch_size: int = 64
    momentum: float = 0.9
    fractions: tuple[float, float, float] = (0.4, 0.1, 0.5)  # train, validation, test
    seed: int = 42
    n_boot: int = 2000


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread: the heads are tiny (thread start-up costs 100x the arithmetic on
    a busy machine, measured 7 ms against 24 us per call) and the results then do not depend on
    the machine's thread count."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def split(ids: list[str], y: np.ndarray, protocol: Protocol) -> dict[str, list[str]]:
    """{"train", "val", "test"}: ids drawn per class (see the module docstring), seeded."""
    rng = np.random.default_rng(protocol.seed)
    _, f_val, f_test = protocol.fractions
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for c in sorted(set(y.tolist())):
        members = sorted(i for i, yi in zip(ids, y) if yi == c)
        n = len(members)
        if n < 3:
            raise BrainFoundryError(
                f"class {c} has {n} case(s); the protocol's split needs "
                "at least 3 per class (training, validation, test)"
            )
        n_test = min(math.floor(n * f_test + 0.5), n - 2)
        n_val = max(1, min(math.floor(n * f_val + 0.5), n - n_test - 1))
        perm = [members[i] for i in rng.permutation(n)]
        out["test"] += perm[:n_test]
        out["val"] += perm[n_test : n_test + n_val]
        out["train"] += perm[n_test + n_val :]
    return {k: sorted(v) for k, v in out.items()}


def train_heads(x: np.ndarray, y: np.ndarray, k: int, protocol: Protocol) -> list[torch.nn.Linear]:
    """One linear head per learning rate, trained together on the same shuffled batches."""
    g = torch.Generator().manual_seed(protocol.seed)
    xt, yt = torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(y, np.int64))
    heads = []
    for _ in protocol.learning_rates:
        head = torch.nn.Linear(xt.shape[1], k)
        torch.nn.init.normal_(head.weight, 0.0, 0.01, generator=g)
        torch.nn.init.zeros_(head.bias)
        heads.append(head)
    groups = [{"params": h.parameters(), "lr": lr} for h, lr in zip(heads, protocol.learning_rates)]
    opt = torch.optim.SGD(groups, momentum=protocol.momentum, weight_decay=0.0)
    steps = protocol.epochs * math.ceil(len(xt) / protocol.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    for _ in range(protocol.epochs):
        order = torch.randperm(len(xt), generator=g)
        for start in range(0, len(xt), protocol.batch_size):
            idx = order[start : start + protocol.batch_size]
            loss = sum(F.cross_entropy(h(xt[idx]), yt[idx]) for h in heads)
            opt.zero_grad()
            loss.backward()  # type: ignore[union-attr]
            opt.step()
            sched.step()
    return heads


@torch.no_grad()
def probabilities(head: torch.nn.Linear, x: np.ndarray) -> np.ndarray:
    return torch.softmax(head(torch.from_numpy(np.asarray(x, np.float32))), 1).double().numpy()


def select(heads, x_val, y_val, protocol: Protocol) -> tuple[int, dict[str, float | None]]:
    """(index of the kept head, validation AUROC per learning rate)."""
    from .fairness import metric

    scores: dict[str, float | None] = {}
    best, best_auc = -1, -math.inf
    for i, (h, lr) in enumerate(zip(heads, protocol.learning_rates)):
        p = probabilities(h, x_val)
        auc = metric("auroc_ovr", y_val, p, p.argmax(1)) if np.isfinite(p).all() else None
        scores[f"{lr:g}"] = auc
        if auc is not None and auc > best_auc:
            best, best_auc = i, auc
    if best < 0:
        raise BrainFoundryError(
            "no head gave a defined validation AUROC (every head diverged, "
            "or the validation cases hold one class)"
        )
    return best, scores


def worst(y: int, k: int) -> tuple[np.ndarray, int]:
    """fomo-metrics' stand-in for a missing output: (probabilities, predicted class)."""
    p = np.full(k, 1.0 / (k - 1))
    p[y] = 0.0
    return p, (y + 1) % k


def check_ids(source: Path, emb_ids: list[str], labels_path: Path, labels: Labels) -> None:
    """Every embedding must belong to a labelled case: an unknown id is a mismatch of names."""
    known = set(labels.ids)
    unknown = [k for k in emb_ids if k not in known]
    if unknown:
        raise InputError(
            source,
            f"{len(unknown)} embedding id(s) are not in {labels_path}: "
            f"{_few(unknown)} (the ids must match its id column)",
        )


def run_probe(
    source: Path,
    emb_ids: list[str],
    x: np.ndarray,
    labels: Labels,
    groups: dict[str, list[str | None]],
    protocol: Protocol = Protocol(),
) -> tuple[dict, pd.DataFrame, dict]:
    """(probe.json's report, the test predictions table, the split) of the protocol on the
    embeddings `x` [n, D] of `emb_ids` (read from `source`); `groups` holds each grouping
    variable's group per labelled case, in `labels.ids` order."""
    from .fairness import fairness

    parts = split(labels.ids, labels.y, protocol)
    row = {k: i for i, k in enumerate(emb_ids)}
    y_of = dict(zip(labels.ids, labels.y.tolist()))
    lacking = [k for k in parts["train"] + parts["val"] if k not in row]
    if lacking:
        raise InputError(
            source,
            f"no embedding for {len(lacking)} training/validation case(s): "
            f"{_few(lacking)}; only a test case may lack one (it scores worst)",
        )

    def xy(keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return x[[row[i] for i in keys]], np.array([y_of[i] for i in keys], dtype=int)

    k = len(labels.classes)
    at = {c: i for i, c in enumerate(labels.ids)}
    test_groups = {v: [gs[at[c]] for c in parts["test"]] for v, gs in groups.items()}
    with one_thread():
        heads = train_heads(*xy(parts["train"]), k, protocol)
        best, val_auc = select(heads, *xy(parts["val"]), protocol)
        preds = _test_table(heads[best], parts["test"], row, x, y_of, k, test_groups)
    probs = preds[[f"prob_{j}" for j in range(k)]].to_numpy(float)
    label, pred = preds["label"].to_numpy(int), preds["pred"].to_numpy(int)
    report = {
        "protocol": _protocol_record(protocol),
        "classes": labels.classes,
        "embedding_dim": int(x.shape[1]),
        "n": {
            "train": len(parts["train"]),
            "val": len(parts["val"]),
            "test": len(parts["test"]),
            "test_missing": int(preds["missing"].sum()),
        },
        "test_missing": preds.loc[preds["missing"], "case"].tolist(),
        "validation_auroc": val_auc,
        "chosen_lr": protocol.learning_rates[best],
        "test": _test_metrics(preds, k, protocol),
        "fairness": fairness(label, probs, pred, test_groups) if test_groups else None,
    }
    return report, preds, parts


def _test_table(head, keys, row, x, y_of, k: int, groups: dict[str, list]) -> pd.DataFrame:
    """case, label, prob_0..prob_K-1, pred, missing, then each grouping variable's group."""
    have = [c for c in keys if c in row]
    p_have = dict(zip(have, probabilities(head, x[[row[c] for c in have]]))) if have else {}
    recs = []
    for c in keys:
        y = int(y_of[c])
        p, pred = (p_have[c], int(np.argmax(p_have[c]))) if c in p_have else worst(y, k)
        rec = {"case": c, "label": y, **{f"prob_{j}": float(p[j]) for j in range(k)}}
        recs.append({**rec, "pred": pred, "missing": c not in p_have})
    df = pd.DataFrame(recs)
    for v, gs in groups.items():
        df[f"group:{v}"] = gs
    return df


def _test_metrics(preds: pd.DataFrame, k: int, protocol: Protocol) -> dict:
    """AUROC on the probabilities and F1 on `pred`, each with its bootstrap CI (same draws)."""
    from .report import summarize

    cols = ["case", "label", *(f"prob_{j}" for j in range(k))]
    kw = {"n_boot": protocol.n_boot, "seed": protocol.seed}
    out = summarize("multiclass", preds[cols], metrics=["auroc_ovr"], **kw)
    onehot = preds[cols].copy()
    onehot[cols[2:]] = np.eye(k)[preds["pred"].to_numpy(int)]
    out["metrics"].update(summarize("multiclass", onehot, metrics=["f1_macro"], **kw)["metrics"])
    out["f1_of"] = "pred: the likeliest class, or a missing case's stand-in (label + 1) mod K"
    return out


def _protocol_record(protocol: Protocol) -> dict:
    rec = asdict(protocol)
    rec.update(
        optimizer="SGD",
        weight_decay=0.0,
        schedule="cosine to 0 over every step",
        init="weights N(0, 0.01^2), biases 0",
        loss="cross-entropy",
        standardised=False,
        selection="best validation macro one-vs-rest AUROC after the last epoch",
        missing_test="probability 0 for its class, 1/(K-1) for the others; prediction (y+1) mod K",
    )
    return rec


def write_probe(out: str | Path, report: dict, preds: pd.DataFrame, parts: dict) -> Path:
    """DIR/probe.json, DIR/predictions.csv and DIR/splits.json, each atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "splits.json", json.dumps(parts, indent=2) + "\n")
    atomic_write_text(out / "predictions.csv", preds.to_csv(index=False))
    atomic_write_text(out / "probe.json", json.dumps(report, indent=2, allow_nan=False) + "\n")
    return out / "probe.json"
