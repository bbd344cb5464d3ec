"""Health of a batch of embeddings [N, D]: is the representation collapsing while it trains?

Pure functions on tensors, computed in float64:

- `effective_rank` (Roy & Vetterli 2007; RankMe, Garrido et al. 2023): exp of the Shannon
  entropy of the L1-normalised singular values of the (uncentred) embedding matrix; 1 when
  every row points the same way, min(N, D) at most, so read it against the batch size.
- `zero_variance_fraction`: the share of dimensions that do not vary across the batch (dead
  or constant units), relative to the embeddings' overall scale.
- `normalized_std` (Chen & He 2021, SimSiam): the mean per-dimension standard deviation of
  the L2-normalised embeddings; 0 under complete collapse, about 1/sqrt(D) when they spread
  evenly over the sphere.
- `alignment` and `uniformity` (Wang & Isola 2020) of two views' embeddings: the mean squared
  distance of positive pairs on the unit sphere (lower: views agree), and the log of the mean
  Gaussian potential exp(-t·d²) over all pairs of distinct samples (lower: spread out).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ZERO_VARIANCE_TOL = 1e-4  # a dimension's std below this share of the embeddings' RMS is "zero"


def _matrix(z: torch.Tensor, min_rows: int, what: str) -> torch.Tensor:
    if z.dim() != 2:
        raise ValueError(f"{what}: expected embeddings [N, D], got shape {tuple(z.shape)}")
    if z.shape[0] < min_rows:
        raise ValueError(f"{what} needs at least {min_rows} embeddings, got {z.shape[0]}")
    return z.detach().double()


def effective_rank(z: torch.Tensor, eps: float = 1e-12) -> float:
    """exp(H(p)), p_k = σ_k / Σσ over the singular values σ of z [N, D]; 0 when z is all zero."""
    s = torch.linalg.svdvals(_matrix(z, 1, "effective_rank"))
    total = s.sum()
    if total <= eps:
        return 0.0
    p = s / total
    p = p[p > eps]
    return float(torch.exp(-(p * p.log()).sum()))


def zero_variance_fraction(z: torch.Tensor, tol: float = ZERO_VARIANCE_TOL) -> float:
    """Share of the D dimensions whose std across the N rows is at most `tol` × the RMS of z
    (scale-free: a dimension is dead relative to the others); all of them when z is constant."""
    x = _matrix(z, 2, "zero_variance_fraction")
    std = x.std(0, correction=0)
    scale = x.pow(2).mean().sqrt()
    return float((std <= tol * scale).double().mean())


def normalized_std(z: torch.Tensor) -> float:
    """Mean over dimensions of the std across rows of z / ||z|| (SimSiam's collapse check)."""
    x = F.normalize(_matrix(z, 2, "normalized_std"), dim=1)
    return float(x.std(0, correction=0).mean())


def alignment(za: torch.Tensor, zb: torch.Tensor, alpha: float = 2.0) -> float:
    """E ||f(x) - f(y)||^alpha over positive pairs (za[i], zb[i]), on the unit sphere."""
    if za.shape != zb.shape:
        raise ValueError(f"alignment: views differ in shape {tuple(za.shape)}, {tuple(zb.shape)}")
    a = F.normalize(_matrix(za, 1, "alignment"), dim=1)
    b = F.normalize(_matrix(zb, 1, "alignment"), dim=1)
    return float((a - b).norm(dim=1).pow(alpha).mean())


def uniformity(z: torch.Tensor, t: float = 2.0) -> float:
    """log E exp(-t ||f(x) - f(y)||²) over all pairs of distinct rows, on the unit sphere."""
    x = F.normalize(_matrix(z, 2, "uniformity"), dim=1)
    return float(torch.pdist(x).pow(2).mul(-t).exp().mean().log())


def embedding_health(z: torch.Tensor) -> dict[str, float]:
    """The collapse statistics of one batch of embeddings, under their log names."""
    return {
        "health/effective_rank": effective_rank(z),
        "health/zero_var_frac": zero_variance_fraction(z),
        "health/norm_std": normalized_std(z),
    }


def pair_health(za: torch.Tensor, zb: torch.Tensor) -> dict[str, float]:
    """Alignment of the positive pairs and uniformity (Wang & Isola's definition: the mean of
    each view's own), under their log names."""
    return {
        "health/alignment": alignment(za, zb),
        "health/uniformity": 0.5 * (uniformity(za) + uniformity(zb)),
    }
