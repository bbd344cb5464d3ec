"""Task models: a backbone plus a small head, each `forward(batch) -> (loss, logs)` for the
Trainer and `predict(image, present) -> outputs` for validation and evaluation.

- classification: every encoder stage mean- and max-pooled (+ the `present` mask, so the head
  knows which sequences were missing) → linear → one logit; binary cross-entropy. Mean pooling
  of the deepest map alone carries almost nothing: the backbones instance-normalise every
  feature map, so its spatial mean is nearly the same for every scan (measured: such a brain-age
  head predicted one constant age); the max keeps where a feature fires strongly (a small
  lesion), the shallow stages keep tissue-level statistics (CSF fraction, contrast).
- multiclass: the same pooling → linear → K class logits; cross-entropy; softmax probabilities.
- regression: the same pooling → (mean, log-variance) of a Gaussian, trained with its negative
  log-likelihood (mean-variance estimation, Nix & Weigend 1994) on standardised targets.
- multitarget: K regression targets at once (age plus tissue volumes, the UK Biobank engine's
  setting): a (mean, log-variance) per target, the NLL averaged over the targets a case has.
- segmentation: the backbone's encoder + decoder → per-voxel logits; cross-entropy + soft Dice.

`pool=attention` (case-level heads) replaces the deepest stage's mean by a learned weighted mean
(`AttentionPool`): over the positions of a 3-D map, over the slices of a one-plane 2-D slice
model. It starts as the plain mean, so the closed-form probe fitted at step 0 stays exact, and
only gradient steps (`train.steps > 0`) teach it where to look.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..models.backbones.views import PROJECTIONS_ONLY, slice_axis
from ..registry import Registry
from .calibration import jackknife_plus

if TYPE_CHECKING:
    from ..models.backbones import Backbone
    from ..models.channelwise import Channelwise

HEADS: Registry[nn.Module] = Registry("head")
LOGVAR_RANGE = (-9.0, 9.0)
JACKKNIFE_COVERAGE = 0.95  # the nominal level of the regression head's interval


def gaussian_nll(mean: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of 0.5 (log σ² + (y - μ)² / σ²): torch's GaussianNLLLoss(full=False) in log-variance.
    A NaN target is a missing one: left out of the mean (and of the gradient), so a case with
    some targets unknown still teaches the others; none known at all gives 0."""
    known = torch.isfinite(target)
    if bool(known.all()):
        return 0.5 * (log_var + (target - mean) ** 2 * torch.exp(-log_var)).mean()
    y = torch.where(known, target, mean.detach())
    per = 0.5 * (log_var + (y - mean) ** 2 * torch.exp(-log_var))
    return (per * known).sum() / known.sum().clamp(min=1)


def soft_dice_loss(probs: torch.Tensor, onehot: torch.Tensor, smooth: float = 1e-5) -> torch.Tensor:
    """1 - mean over foreground classes of 2|P∩T| / (|P| + |T|), summed over the whole batch
    (nnU-Net's batch Dice: stable when a patch holds no lesion). probs/onehot: [B, K, *S]."""
    dims = (0, *range(2, probs.ndim))
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + smooth) / (denom + smooth)
    return 1 - dice[1:].mean()


POOLS = ("meanmax", "attention")


class AttentionPool(nn.Module):
    """Gated attention-MIL pooling (Ilse et al., ICML 2018) of tokens [N, T, F] → [N, F]:
    a_t = softmax_t(wᵀ(tanh(V h_t) ⊙ σ(U h_t))), out = Σ_t a_t h_t. Why: a small lesion moves
    a spatial mean by little; learned weights let the few tokens that hold it dominate. w starts
    at zero, so the weights start uniform and the pool is exactly the mean."""

    def __init__(self, dim: int, hidden: int = 64):
        super().__init__()
        self.v, self.u = nn.Linear(dim, hidden), nn.Linear(dim, hidden)
        self.w = nn.Linear(hidden, 1, bias=False)
        nn.init.zeros_(self.w.weight)

    def weights(self, tokens: torch.Tensor) -> torch.Tensor:
        """[N, T] attention weights, each row summing to 1."""
        gate = torch.tanh(self.v(tokens)) * torch.sigmoid(self.u(tokens))
        return torch.softmax(self.w(gate)[..., 0].float(), dim=1).to(tokens.dtype)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return (self.weights(tokens)[..., None] * tokens).sum(1)


class _Pooled(nn.Module):
    """Backbone + global mean and max pool of every encoder stage + linear head."""

    def __init__(self, backbone: Backbone | Channelwise, n_out: int, pool: str = "meanmax"):
        super().__init__()
        if pool not in POOLS:
            raise ConfigError(f"model.pool {pool!r}: use one of {', '.join(POOLS)}")
        self.backbone = backbone
        per = 2 * sum(backbone.feature_channels or [backbone.embed_dim])
        n_ch = backbone.in_channels
        self.channelwise = hasattr(backbone, "encode_channels")  # sequences kept apart
        n_in = (n_ch * per if self.channelwise else per) + n_ch
        self.head = nn.Linear(n_in, n_out)
        nn.init.zeros_(self.head.bias)
        nn.init.normal_(self.head.weight, std=0.01)
        self.pool = pool
        if pool == "attention":
            deepest = (backbone.feature_channels or [backbone.embed_dim])[-1]
            self.attention = AttentionPool(deepest)

    def _tokens(self, flat: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """[N, F, P] flattened deepest map of spatial `shape` → the tokens [N, T, F] attention
        weighs: every position, or every slice (in-plane mean) of a one-plane slice model."""
        axis = slice_axis(self.backbone)
        if axis is None:
            return flat.transpose(1, 2)
        grid = flat.reshape(*flat.shape[:2], *shape)
        in_plane = [d for d in (2, 3, 4) if d != axis]
        return grid.mean(dim=in_plane).transpose(1, 2)

    def _mean(self, f: torch.Tensor, deepest: bool) -> torch.Tensor:
        """[N, F, *S] → [N, F]: the spatial mean, or for the deepest stage the attention pool."""
        flat = f.flatten(2)
        if deepest and self.pool == "attention":
            return self.attention(self._tokens(flat, tuple(f.shape[2:])))
        return flat.mean(dim=2)

    def features(self, image: torch.Tensor, present: torch.Tensor | None) -> torch.Tensor:
        parts = []
        if self.channelwise:
            feats = cast("Channelwise", self.backbone).encode_channels(image)  # [B, C, F, *S]
            for i, f in enumerate(feats):
                per_seq = f.flatten(0, 1)  # [B·C, F, *S]
                mean = self._mean(per_seq, i == len(feats) - 1).reshape(f.shape[0], -1)
                parts += [mean, f.flatten(3).amax(dim=3).flatten(1)]
        else:
            feats = self.backbone.encode(image)
            for i, f in enumerate(feats):
                parts += [self._mean(f, i == len(feats) - 1), f.flatten(2).amax(dim=2)]
        pooled = torch.cat(parts, dim=1)
        if present is None:
            present = torch.ones(image.shape[:2], dtype=torch.bool, device=image.device)
        return torch.cat([pooled, present.to(pooled.dtype)], dim=1)

    def raw(self, batch: dict) -> torch.Tensor:
        return self.head(self.features(batch["image"], batch.get("present")))


@HEADS.register("classification")
class ClassificationModel(_Pooled):
    def __init__(self, backbone: Backbone | Channelwise, pool: str = "meanmax", **_: object):
        super().__init__(backbone, 1, pool)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        logit = self.raw(batch)[:, 0]
        y = batch["label"].float()
        loss = F.binary_cross_entropy_with_logits(logit, y)
        acc = ((logit > 0).float() == y).float().mean()
        return loss, {"loss": float(loss.detach()), "acc": float(acc)}

    @torch.no_grad()
    def predict(self, image: torch.Tensor, present: torch.Tensor | None = None) -> dict:
        logit = self.head(self.features(image, present))[:, 0]
        return {"prob": torch.sigmoid(logit)}


@HEADS.register("multiclass")
class MulticlassModel(_Pooled):
    """K mutually exclusive classes (FOMO26's linear-probe task): softmax over K logits."""

    def __init__(
        self, backbone: Backbone | Channelwise, n_classes: int = 3, pool: str = "meanmax",
        **_: object,
    ):  # fmt: skip
        if int(n_classes) < 2:
            raise ValueError(f"a multiclass head needs at least 2 classes, got {n_classes}")
        super().__init__(backbone, int(n_classes), pool)
        self.n_classes = int(n_classes)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        logits = self.raw(batch)
        y = batch["label"].long()
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
        return loss, {"loss": float(loss.detach()), "acc": float(acc)}

    @torch.no_grad()
    def predict(self, image: torch.Tensor, present: torch.Tensor | None = None) -> dict:
        return {"probs": torch.softmax(self.head(self.features(image, present)), 1)}


class _Gaussian(_Pooled):
    """What the regression heads share: per target a mean and a log-variance in standardised
    units (`_moments`), turned back into label units by the `y_mean` / `y_std` buffers."""

    y_mean: torch.Tensor  # buffers, registered by the subclasses
    y_std: torch.Tensor

    def _moments(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _outputs(self, image, present) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pooled features, predictions, sigmas), the last two in label units."""
        feats = self.features(image, present)
        mean, log_var = self._moments(self.head(feats))
        return feats, mean * self.y_std + self.y_mean, torch.exp(0.5 * log_var) * self.y_std


@HEADS.register("regression")
class RegressionModel(_Gaussian):
    """Targets are standardised with the training labels' mean/sd (buffers saved with the
    weights); `interval_scale` multiplies σ to give the calibrated 95% interval."""

    y_mean: torch.Tensor  # buffers, registered in __init__
    y_std: torch.Tensor
    interval_scale: torch.Tensor
    jk_weight: torch.Tensor
    jk_bias: torch.Tensor
    jk_resid: torch.Tensor

    def __init__(
        self,
        backbone: Backbone | Channelwise,
        y_mean: float = 0.0,
        y_std: float = 1.0,
        jackknife_n: int = 0,
        pool: str = "meanmax",
        **_: object,
    ):
        super().__init__(backbone, 2, pool)
        self.register_buffer("y_mean", torch.tensor(float(y_mean)))
        self.register_buffer("y_std", torch.tensor(max(float(y_std), 1e-6)))
        self.register_buffer("interval_scale", torch.tensor(1.959964))
        # jackknife+ interval (tasks/calibration.py): the probe refitted without each of n cases;
        # saved only when there are some, so checkpoints from before jackknife+ still load
        n, n_in, keep = int(jackknife_n), self.head.in_features, jackknife_n > 0
        self.register_buffer("jk_weight", torch.zeros(n, n_in), persistent=keep)
        self.register_buffer("jk_bias", torch.zeros(n), persistent=keep)
        self.register_buffer("jk_resid", torch.zeros(n), persistent=keep)

    def set_jackknife(self, w, b, resid) -> None:
        """Install n leave-one-out heads (standardised units); the interval becomes jackknife+."""
        ref = self.head.weight
        for name, v in (("jk_weight", w), ("jk_bias", b), ("jk_resid", resid)):
            t = torch.as_tensor(v, dtype=ref.dtype, device=ref.device)
            self.register_buffer(name, t, persistent=True)

    def _jackknife(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(lo, hi) in label units from the leave-one-out heads (`calibration.jackknife_plus`)."""
        mu = feats @ self.jk_weight.T + self.jk_bias  # [B, n], standardised units
        lo, hi = jackknife_plus(mu.cpu().double().numpy(), self.jk_resid.cpu().double().numpy(),
                                JACKKNIFE_COVERAGE)  # fmt: skip

        def back(v) -> torch.Tensor:
            t = torch.as_tensor(v, dtype=feats.dtype, device=feats.device)
            return t * self.y_std + self.y_mean

        return back(lo), back(hi)

    def _moments(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return out[:, 0], out[:, 1].clamp(*LOGVAR_RANGE)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        mean, log_var = self._moments(self.raw(batch))
        y = (batch["label"].float() - self.y_mean) / self.y_std
        loss = gaussian_nll(mean, log_var, y)
        mae = ((mean - y).abs().mean() * self.y_std).detach()
        return loss, {"loss": float(loss.detach()), "mae": float(mae)}

    @torch.no_grad()
    def predict(self, image: torch.Tensor, present: torch.Tensor | None = None) -> dict:
        feats, pred, sigma = self._outputs(image, present)
        if self.jk_resid.numel():
            lo, hi = self._jackknife(feats.to(self.jk_weight.dtype))
            return {"pred": pred, "sigma": sigma, "lo": lo, "hi": hi}
        half = self.interval_scale * sigma
        return {"pred": pred, "sigma": sigma, "lo": pred - half, "hi": pred + half}


@HEADS.register("multitarget")
class MultiTargetModel(_Gaussian):
    """K named targets, each standardised by its training labels' mean/sd (buffers [K]), each
    with a (mean, log-variance) output and its own interval: per-target jackknife+ heads when
    the probe was kept, else a per-target conformal `interval_scale` (`selection.calibrate`).
    Outputs are named per target: pred:<name>, sigma:<name>, lo:<name>, hi:<name>."""

    y_mean: torch.Tensor
    y_std: torch.Tensor
    interval_scale: torch.Tensor
    jk_weight: torch.Tensor  # [K, n, F]: target k's leave-one-out heads (NaN-padded rows unused)
    jk_bias: torch.Tensor  # [K, n]
    jk_resid: torch.Tensor  # [K, n]: NaN where the case lacks target k

    def __init__(
        self,
        backbone: Backbone | Channelwise,
        targets: list[str] | None = None,
        y_mean: list[float] | None = None,
        y_std: list[float] | None = None,
        jackknife_n: int = 0,
        pool: str = "meanmax",
        **_: object,
    ):
        self.targets = list(targets or ["target"])
        k = len(self.targets)
        super().__init__(backbone, 2 * k, pool)
        mean = torch.tensor([float(v) for v in (y_mean or [0.0] * k)])
        std = torch.tensor([max(float(v), 1e-6) for v in (y_std or [1.0] * k)])
        if mean.numel() != k or std.numel() != k:
            raise ValueError(f"multitarget head: {k} targets but {mean.numel()} means and "
                             f"{std.numel()} sds")  # fmt: skip
        self.register_buffer("y_mean", mean)
        self.register_buffer("y_std", std)
        self.register_buffer("interval_scale", torch.full((k,), 1.959964))
        n, n_in, keep = int(jackknife_n), self.head.in_features, jackknife_n > 0
        self.register_buffer("jk_weight", torch.zeros(k, n, n_in), persistent=keep)
        self.register_buffer("jk_bias", torch.zeros(k, n), persistent=keep)
        self.register_buffer("jk_resid", torch.zeros(k, n), persistent=keep)

    set_jackknife = RegressionModel.set_jackknife

    def _moments(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = len(self.targets)
        return out[:, :k], out[:, k:].clamp(*LOGVAR_RANGE)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        mean, log_var = self._moments(self.raw(batch))
        y = (batch["label"].float().reshape(mean.shape) - self.y_mean) / self.y_std
        loss = gaussian_nll(mean, log_var, y)
        known = torch.isfinite(y)
        err = torch.where(known, (mean - y).abs(), torch.zeros_like(mean)) * self.y_std
        mae = (err.sum(0) / known.sum(0).clamp(min=1)).detach()
        logs = {f"mae:{t}": float(v) for t, v in zip(self.targets, mae)}
        return loss, {"loss": float(loss.detach()), **logs}

    def _jackknife(self, feats: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(lo, hi) of target k in label units from its leave-one-out heads."""
        resid = self.jk_resid[k].cpu().double().numpy()
        ok = np.isfinite(resid)
        sel = torch.as_tensor(ok, device=self.jk_weight.device)
        w, b = self.jk_weight[k][sel], self.jk_bias[k][sel]
        mu = (feats @ w.T + b).cpu().double().numpy()
        lo, hi = jackknife_plus(mu, resid[ok], JACKKNIFE_COVERAGE)
        scale, shift = float(self.y_std[k]), float(self.y_mean[k])
        return (torch.as_tensor(lo, dtype=feats.dtype) * scale + shift,
                torch.as_tensor(hi, dtype=feats.dtype) * scale + shift)  # fmt: skip

    @torch.no_grad()
    def predict(self, image: torch.Tensor, present: torch.Tensor | None = None) -> dict:
        feats, pred, sigma = self._outputs(image, present)
        out = {}
        for k, t in enumerate(self.targets):
            if self.jk_resid.shape[1]:
                lo, hi = self._jackknife(feats.to(self.jk_weight.dtype), k)
            else:
                half = self.interval_scale[k] * sigma[:, k]
                lo, hi = pred[:, k] - half, pred[:, k] + half
            out.update({f"pred:{t}": pred[:, k], f"sigma:{t}": sigma[:, k],
                        f"lo:{t}": lo.to(pred.device), f"hi:{t}": hi.to(pred.device)})  # fmt: skip
        return out


@HEADS.register("segmentation")
class SegmentationModel(nn.Module):
    """Encoder + decoder; the backbone is built with 2 output channels (background, lesion)."""

    def __init__(self, backbone: Backbone | Channelwise, dice_weight: float = 1.0, **_: object):
        super().__init__()
        if not getattr(backbone, "dense", True):  # e.g. a 2-D backbone on projections
            raise ConfigError(PROJECTIONS_ONLY)
        self.backbone = backbone
        self.dice_weight = dice_weight

    def logits(self, image: torch.Tensor) -> torch.Tensor:
        return self.backbone.decode(self.backbone.encode(image))

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        logits = self.logits(batch["image"])
        # no clamp: label values were checked against the classes once, when the cases were
        # listed (`tasks.data.case_table`); one that slipped through fails here, loudly
        target = batch["label"][:, 0].long()
        ce = F.cross_entropy(logits, target)
        onehot = F.one_hot(target, logits.shape[1]).movedim(-1, 1).to(logits.dtype)
        dice = soft_dice_loss(torch.softmax(logits, 1), onehot)
        loss = ce + self.dice_weight * dice
        return loss, {
            "loss": float(loss.detach()),
            "ce": float(ce.detach()),
            "dice_loss": float(dice.detach()),
        }

    @torch.no_grad()
    def predict(self, image: torch.Tensor, present: torch.Tensor | None = None) -> dict:
        return {"probs": torch.softmax(self.logits(image), 1)}


def create_task_model(task_type: str, backbone: nn.Module, **kwargs: object) -> nn.Module:
    return HEADS.create(task_type, backbone, **kwargs)
