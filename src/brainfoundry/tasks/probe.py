"""Linear-probe initialisation of a case-level head before fine-tuning (LP-FT, Kumar et al.,
ICLR 2022: a random head first drags the features around; fitting it on frozen features first
keeps more of them, which helps most out of domain).

The head is fitted in closed form: ridge regression on standardised pooled features, its
penalty chosen by exact leave-one-out error (from the kernel's eigendecomposition, so a dozen
cases and thousands of features cost milliseconds), then folded back into the linear layer.
Regression: the mean row fits the standardised target and the log-variance bias is the
leave-one-out error, an honest first uncertainty. Classification: ridge on ±1 targets, then a
logistic scale and offset (Platt scaling) fitted on the leave-one-out outputs. Multiclass: one
ridge per class on ±1 one-vs-rest targets, then one softmax temperature and K offsets fitted
the same way (`softmax_calibration`).
"""

from __future__ import annotations

import numpy as np
import torch

ALPHAS = np.logspace(-3, 5, 33)


@torch.no_grad()
def pooled_features(model, dataset) -> np.ndarray:
    """The head's input for every distinct case of a (non-augmenting) VolumeDataset."""
    was = model.training
    model.eval()
    rows = []
    for i in range(len(dataset.items)):
        s = dataset[i]
        rows.append(model.features(s["image"][None], s["present"][None])[0].double().numpy())
    model.train(was)
    return np.stack(rows)


def ridge_loo(x: np.ndarray, y: np.ndarray, alphas=ALPHAS) -> dict:
    """Kernel ridge with intercept on standardised x; the alpha with least leave-one-out MSE.
    Returns the weights in x's own units (w, b), the alpha and the LOO predictions."""
    mu, sd = x.mean(0), x.std(0)
    keep = sd > 1e-8
    z = np.zeros_like(x)
    z[:, keep] = (x[:, keep] - mu[keep]) / sd[keep]
    ybar = float(y.mean())
    yc = y - ybar
    s, u = np.linalg.eigh(z @ z.T)
    s = np.clip(s, 0.0, None)
    uy = u.T @ yc
    best = None
    for a in alphas:
        f = s / (s + a)
        fit = u @ (f * uy)
        # 1 - (the hat matrix's diagonal, intercept included), as a sum of a / (s + a) terms:
        # the form 1 - h cancels to rounding noise once a << s (many features, few cases), and
        # its old floor of 1e-6 then shrank the leave-one-out errors of tiny penalties, so
        # they won by mistake (measured: alpha 1e-3 chosen on 4560 features with a LOO AUROC
        # of 1.0). The constant eigenvector (s = 0, each entry 1/n squared) is the intercept's.
        slack = (u**2) @ (a / (s + a)) - 1.0 / len(y)
        loo = yc - (yc - fit) / np.maximum(slack, 1e-12)
        err = float(np.mean((yc - loo) ** 2))
        if best is None or err < best[0]:
            best = (err, a, loo)
    assert best is not None  # alphas is not empty
    err, alpha, loo = best
    dual = u @ (uy / (s + alpha))
    w_std = z.T @ dual
    w = np.zeros_like(mu)
    w[keep] = w_std[keep] / sd[keep]
    b = ybar - float(w @ mu)
    return {"w": w, "b": b, "alpha": float(alpha), "loo_mse": err, "loo": loo + ybar}


def jackknife_fits(x: np.ndarray, y: np.ndarray) -> dict:
    """The probe refitted without each case in turn (its penalty chosen again each time, so the
    whole procedure is what is left out): weights [n, F], biases [n] and the left-out absolute
    residuals [n], the inputs of a jackknife+ interval (`calibration.jackknife_plus`)."""
    n = len(y)
    w, b, r = np.zeros((n, x.shape[1])), np.zeros(n), np.zeros(n)
    for i in range(n):
        keep = np.arange(n) != i
        fit = ridge_loo(x[keep], y[keep])
        w[i], b[i] = fit["w"], fit["b"]
        r[i] = abs(float(y[i] - (x[i] @ fit["w"] + fit["b"])))
    return {"w": w, "b": b, "resid": r}


SCALES = np.linspace(0.25, 8.0, 32)  # logit change per standard deviation of the outputs


def platt(r: np.ndarray, y: np.ndarray, scales=SCALES) -> tuple[float, float]:
    """(k, c) of P(y=1) = sigmoid(k * r + c), Platt (1999): maximum likelihood on the
    leave-one-out outputs against his smoothed targets (N₊+1)/(N₊+2) and 1/(N₋+2), which keep
    the fit finite on separable few-shot data. The offset matters: a ridge shrunk towards the
    class prior left every case on one side of 0.5 (balanced accuracy 0.5 in the demo). The
    slope is kept on a positive grid: leave-one-out outputs of a near-null ridge anti-correlate
    with the labels (a known artefact), and a free fit then turned the ranking upside down
    (measured: demo infarct AUROC 0.570 became 0.430)."""
    r, y = np.asarray(r, float), np.asarray(y, float)
    n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
    t = np.where(y > 0.5, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    unit = 1.0 / max(float(np.std(r)), 1e-6)
    best = (-np.inf, unit, 0.0)
    for k in np.asarray(scales, float) * unit:
        lo, hi = -k * np.abs(r).max() - 40.0, k * np.abs(r).max() + 40.0
        for _ in range(80):  # the offset solves sum(p - t) = 0, increasing in c: bisection
            c = 0.5 * (lo + hi)
            p = 1 / (1 + np.exp(-np.clip(k * r + c, -30, 30)))
            lo, hi = (lo, c) if np.sum(p - t) > 0 else (c, hi)
        p = np.clip(1 / (1 + np.exp(-np.clip(k * r + c, -30, 30))), 1e-12, 1 - 1e-12)
        ll = float(np.sum(t * np.log(p) + (1 - t) * np.log(1 - p)))
        if ll > best[0]:
            best = (ll, float(k), c)
    return best[1], float(best[2])


def softmax_calibration(r: np.ndarray, y: np.ndarray, scales=SCALES) -> tuple[float, np.ndarray]:
    """(k, c[K]) of P(y=j) = softmax(k r + c)_j on leave-one-out scores r [n, K]: Platt's
    smoothed targets (a case's own class (N_j+1)/(N_j+2), spread evenly over the others), the
    scale on a positive grid (as `platt`, for the same reason), and for each scale the offsets
    that make the mean predicted probability of every class match its target mean, the
    maximum-likelihood condition, by fixed-point steps on log ratios."""
    r, y = np.asarray(r, float), np.asarray(y, int)
    n, k_cls = r.shape
    counts = np.bincount(y, minlength=k_cls).astype(float)
    own = (counts[y] + 1) / (counts[y] + 2)
    t = np.repeat(((1 - own) / (k_cls - 1))[:, None], k_cls, 1)
    t[np.arange(n), y] = own
    unit = 1.0 / max(float(np.std(r)), 1e-6)
    best: tuple[float, float, np.ndarray] = (-np.inf, unit, np.zeros(k_cls))
    for k in np.asarray(scales, float) * unit:
        c = np.zeros(k_cls)
        for _ in range(200):
            p = _softmax(k * r + c)
            step = np.log(t.mean(0)) - np.log(p.mean(0))
            c += step
            if np.abs(step).max() < 1e-9:
                break
        ll = float(np.sum(t * np.log(np.clip(_softmax(k * r + c), 1e-12, 1.0))))
        if ll > best[0]:
            best = (ll, float(k), c - c.mean())
    return best[1], best[2]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@torch.no_grad()
def probe_init(model, dataset, labels: np.ndarray, task_type: str) -> dict:
    """Set `model.head` from a ridge probe on the cases of `dataset` (labels in its order)."""
    x = pooled_features(model, dataset)
    y = np.asarray(labels, dtype=np.float64)
    head = model.head
    dtype = head.weight.dtype
    if task_type == "regression":
        t = (y - float(model.y_mean)) / float(model.y_std)
        fit = ridge_loo(x, t)
        head.weight.zero_()
        head.bias.zero_()
        head.weight[0] = torch.as_tensor(fit["w"], dtype=dtype)
        head.bias[0] = fit["b"]
        head.bias[1] = float(np.log(max(fit["loo_mse"], 1e-4)))
        return {"alpha": fit["alpha"], "loo_mae": float(np.mean(np.abs(fit["loo"] - t))
                                                        * float(model.y_std))}  # fmt: skip
    if task_type == "classification":
        t = 2 * y - 1
        fit = ridge_loo(x, t)
        k, c = platt(fit["loo"], y)
        head.weight[0] = torch.as_tensor(k * fit["w"], dtype=dtype)
        head.bias[0] = k * fit["b"] + c
        return {"alpha": fit["alpha"], "scale": k, "offset": c}
    if task_type == "multitarget":  # one ridge per target, on the cases that have it
        t = (y - model.y_mean.double().numpy()) / model.y_std.double().numpy()
        k_t = t.shape[1]
        head.weight.zero_()
        head.bias.zero_()
        alphas, maes = [], []
        for k in range(k_t):
            ok = np.isfinite(t[:, k])
            fit = ridge_loo(x[ok], t[ok, k])
            head.weight[k] = torch.as_tensor(fit["w"], dtype=dtype)
            head.bias[k] = fit["b"]
            head.bias[k_t + k] = float(np.log(max(fit["loo_mse"], 1e-4)))
            alphas.append(fit["alpha"])
            maes.append(float(np.mean(np.abs(fit["loo"] - t[ok, k])) * float(model.y_std[k])))
        return {"alpha": alphas, "loo_mae": dict(zip(model.targets, maes))}
    if task_type == "multiclass":
        y_int = y.astype(int)
        k_cls = head.weight.shape[0]
        fits = [ridge_loo(x, np.where(y_int == j, 1.0, -1.0)) for j in range(k_cls)]
        scores = np.stack([f["loo"] for f in fits], 1)
        scale, offsets = softmax_calibration(scores, y_int)
        w = np.stack([scale * f["w"] for f in fits])
        b = np.array([scale * f["b"] for f in fits]) + offsets
        head.weight.copy_(torch.as_tensor(w, dtype=dtype))
        head.bias.copy_(torch.as_tensor(b, dtype=dtype))
        return {"alpha": [f["alpha"] for f in fits], "scale": scale, "offsets": offsets.tolist()}
    raise ValueError(f"probe_init: no linear head for task type {task_type!r}")
