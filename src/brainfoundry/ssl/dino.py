"""`dino`: self-distillation from an EMA teacher, the DINOv2 recipe (Oquab et al. 2024).

Why: no negatives and no pixel target. The student learns to predict, on another augmented
view, a teacher's soft assignment to learned prototypes; such features transfer to
classification where reconstruction (`mae`) is weakest, and they do not depend on batch size
the way InfoNCE does. Three terms, on the dataset's `n_views` global views of a patch:

- DINO (Caron et al. 2021): the student's pooled embedding of view j, through a prototype
  head, matches the teacher's centred, sharpened distribution of every other view i:
  CE(softmax((t_i − c) / τ_t), log_softmax(s_j / τ_s)), τ_s = 0.1. τ_t (`teacher_temp`
  None = by family, `TEACHER_TEMPS`): a ViT's is DINOv2's, warmed up 0.04 → 0.07; a CNN's is
  0.01 throughout. Measured on the demo's corpus (resenc:mini, batch 4, 4096 prototypes, 300
  steps): at 0.04 the teacher went uniform (entropy 8.17 of log K 8.32, the student's DINO
  loss stuck at log K); 0.02 gave 5.5, 0.01 gave 1.2 with the marginal at 3.1 (samples kept
  apart) and the DINO loss falling to 4.4. A CNN's pooled features differ little between
  samples, so its cosines to the prototypes spread less and need a sharper teacher.
- iBOT (Zhou et al. 2022): the student sees each view with `mask_ratio` of its tokens masked
  and predicts, through a patch head with its own centre, the teacher's distribution of the
  unmasked view at the masked positions. Transformers: a learned mask token replaces the patch
  embedding. CNNs have no tokens: the positions of the deepest feature map are the tokens; the
  input cell each one covers (its stride³ voxels) is zeroed, as `mae` masks, and the loss is
  taken there. A CNN's receptive field crosses cells, so its task is easier than a ViT's. A 2-D
  slice model (cnn2d, vit2d) is masked the same way: its tokens are the deepest map's
  positions, one row per slice for a one-plane model (a cell is 1 slice × stride²).
- CNNs (measured to collapse without both): the image-level embedding is the deepest map's
  mean and max over positions (`pool=meanmax`; a ViT's is its tokens' mean), and the heads
  have BatchNorm in their MLP (`head_norm=auto`), DINO's ResNet recipe.
- KoLeo (Sablayrolles et al. 2019): −mean log nearest-neighbour distance of the student's
  normalised pooled embeddings, within each view's micro-batch (so it alone sees the batch).

The teacher (backbone + both heads) is an EMA of the student: momentum m0 → 1 on a cosine,
applied once per optimizer step by the Trainer's `after_optimizer_step` hook, never by
gradients. The centres are EMAs (0.9) of the teacher's outputs, averaged over that step's
micro-batches and every rank. Teacher, centres and step count are module state: they are in
the training checkpoint (an exact resume) and not in the exported backbone (`model.backbone`).
No local crops: a patch dataset yields one patch size.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from torch import nn

from .. import distributed as dist
from ..errors import ConfigError
from ..models.backbones.views import View2D, slice_axis
from .base import OBJECTIVES, Objective, family, sample_generators
from .losses import distillation_ce, koleo
from .masking import token_keep, tokens_to_voxels

if TYPE_CHECKING:
    from ..models.backbones import Backbone
    from ..models.backbones.primus import Primus


class DinoHead(nn.Module):
    """DINO's head: 3-layer MLP → L2-normalised bottleneck → unit-norm prototypes (weight
    norm with the gain fixed at 1), so the logits are cosines in [−1, 1]. `batch_norm` puts
    BatchNorm after the two hidden layers, DINO's recipe for ResNets: a CNN's pooled features
    differ little between samples (its stages end in instance normalisation), and without it
    the teacher's outputs were alike for every sample, so centring left them uniform."""

    def __init__(self, dim: int, hidden: int, bottleneck: int, out_dim: int,
                 batch_norm: bool = False):  # fmt: skip
        super().__init__()

        def norm() -> nn.Module:
            return nn.BatchNorm1d(hidden) if batch_norm else nn.Identity()

        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), norm(), nn.GELU(), nn.Linear(hidden, hidden), norm(),
            nn.GELU(), nn.Linear(hidden, bottleneck),
        )  # fmt: skip
        self.prototypes = nn.Parameter(torch.empty(out_dim, bottleneck))
        for w in (*(m.weight for m in self.mlp if isinstance(m, nn.Linear)), self.prototypes):
            nn.init.trunc_normal_(w, std=0.02)
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(x), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.embed(x), F.normalize(self.prototypes, dim=-1))


# the teacher's temperature by backbone family: (at step 0, after the warm-up)
TEACHER_TEMPS = {"transformer": (0.04, 0.07), "cnn": (0.01, 0.01)}


def teacher_temperature(step: int, warmup_steps: int, start: float, end: float) -> float:
    """Linear from `start` at step 0 to `end` at `warmup_steps`, then `end`."""
    if warmup_steps <= 0:
        return end
    return start + (end - start) * min(1.0, step / warmup_steps)


def teacher_momentum(step: int, total: int, base: float, final: float = 1.0) -> float:
    """DINO's cosine schedule: `base` at step 0, → `final` at `total` (step = 0-indexed)."""
    return final - (final - base) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


def centred_softmax(logits: torch.Tensor, center: torch.Tensor, temp: float) -> torch.Tensor:
    return F.softmax((logits.float() - center) / temp, dim=-1)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of distributions along the last axis."""
    return -(p * p.clamp_min(1e-12).log()).sum(-1)


@OBJECTIVES.register("dino")
class Dino(Objective):
    center: torch.Tensor  # [K] the DINO head's centre
    patch_center: torch.Tensor  # [K] the iBOT head's centre
    center_acc: torch.Tensor  # [2, K + 1] this step's sums of teacher outputs, and their count
    steps_done: torch.Tensor  # [] optimizer steps taken (the temperature warm-up's clock)

    def __init__(
        self,
        backbone: Backbone,
        n_views: int = 2,
        out_dim: int = 4096,
        hidden: int = 1024,
        bottleneck: int = 256,
        student_temp: float = 0.1,
        teacher_temp: float | None = None,
        warmup_teacher_temp: float | None = None,
        teacher_temp_warmup_steps: int = 1000,
        center_momentum: float = 0.9,
        momentum: float = 0.996,
        mask_ratio: float = 0.3,
        w_dino: float = 1.0,
        w_ibot: float = 1.0,
        w_koleo: float = 0.1,
        head_norm: str = "auto",
        pool: str = "meanmax",
    ):
        super().__init__(backbone)
        if n_views < 2:
            raise ValueError(f"dino compares two or more views, got n_views={n_views}")
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"dino mask_ratio must be in (0, 1), got {mask_ratio}")
        self.n_views, self.student_temp = n_views, student_temp
        start, end = TEACHER_TEMPS[family(backbone)]
        start = start if warmup_teacher_temp is None else warmup_teacher_temp
        end = end if teacher_temp is None else teacher_temp
        if min(start, end) <= 0:
            raise ValueError(f"dino teacher temperatures must be > 0, got {start} and {end}")
        self.temps = (start, end, teacher_temp_warmup_steps)
        self.center_momentum, self.momentum, self.mask_ratio = center_momentum, momentum, mask_ratio
        self.w_dino, self.w_ibot, self.w_koleo = w_dino, w_ibot, w_koleo
        if pool not in ("mean", "meanmax"):
            raise ValueError(f"dino pool must be mean or meanmax, got {pool!r}")
        if head_norm not in ("auto", "batch", "none"):
            raise ValueError(f"dino head_norm must be auto, batch or none, got {head_norm!r}")
        bn = head_norm == "batch" or (head_norm == "auto" and family(backbone) == "cnn")
        dim = backbone.embed_dim
        self.meanmax = family(backbone) == "cnn" and pool == "meanmax"
        # Primus takes iBOT's mask token before its blocks; every other backbone (CNNs, and
        # vit2d, whose slices' tokens do not line up with a cube mask) has its cells zeroed
        self.primus = family(backbone) == "transformer" and not isinstance(backbone, View2D)
        self.head = DinoHead(dim * (2 if self.meanmax else 1), hidden, bottleneck, out_dim, bn)
        self.patch_head = DinoHead(dim, hidden, bottleneck, out_dim, bn)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))  # transformers; unused by CNNs
        self.teacher = nn.ModuleDict(
            {k: copy.deepcopy(getattr(self, k)) for k in ("backbone", "head", "patch_head")}
        )
        self.teacher.requires_grad_(False)
        self.register_buffer("center", torch.zeros(out_dim))
        self.register_buffer("patch_center", torch.zeros(out_dim))
        # this step's teacher-output sums and counts so far (persistent: the Trainer's AMP
        # probe restores them with the weights), folded into the centres after the step
        self.register_buffer("center_acc", torch.zeros(2, out_dim + 1))
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self._cells()  # a backbone without tokens to mask is refused here, not at step 1

    # -- the teacher --------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Dino:
        super().train(mode)
        self.teacher.eval()  # never a drop-path draw in the teacher
        for m in self.teacher.modules():  # but its head's BatchNorm normalises over the batch
            if isinstance(m, nn.BatchNorm1d):  # (the EMA copies weights, not running stats)
                m.train(mode)
        return self

    def student_teacher_pairs(self):
        for k in ("backbone", "head", "patch_head"):
            yield from zip(getattr(self, k).parameters(), self.teacher[k].parameters())

    @torch.no_grad()
    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        """EMA teacher ← student at this step's momentum; centres ← their EMA toward the mean
        teacher output of the step's micro-batches."""
        m = teacher_momentum(step - 1, total_steps, self.momentum)
        for s, t in self.student_teacher_pairs():
            t.lerp_(s.detach(), 1.0 - m)
        for i, c in enumerate((self.center, self.patch_center)):
            n = self.center_acc[i, -1]
            if n > 0:
                c.lerp_(self.center_acc[i, :-1] / n, 1.0 - self.center_momentum)
        self.center_acc.zero_()
        self.steps_done.fill_(step)

    def teacher_temp(self) -> float:
        start, end, warmup = self.temps
        return teacher_temperature(int(self.steps_done), warmup, start, end)

    @torch.no_grad()
    def _accumulate(self, i: int, logits: torch.Tensor) -> None:
        """Add this micro-batch's teacher outputs [M, K] (summed over every rank) to centre i."""
        s = logits.float().sum(0) * dist.world_size()
        n = torch.tensor([float(logits.shape[0] * dist.world_size())], device=logits.device)
        self.center_acc[i] += dist.all_reduce_mean(torch.cat([s, n]))

    # -- tokens and masks ---------------------------------------------------------------------
    def _cells(self) -> tuple[int, int, int]:
        """Input voxels per token along each axis: Primus' patch; a 3-D CNN's deepest stride;
        a 2-D slice model's deepest in-plane stride (its ViT patch or CNN stride), and 1 along
        the slice axis of a one-plane model, whose every slice is a row of tokens."""
        bb = self.backbone
        if isinstance(bb, View2D):
            if not bb.dense:
                raise ConfigError(
                    "dino masks tokens of slices; a projection model has none: use "
                    "model.kwargs={view: slices} or the contrastive objective"
                )
            cells = [bb.cum_strides[-1]] * 3
            axis = slice_axis(bb)
            if axis is not None:
                cells[axis - 2] = 1
            return cast(tuple[int, int, int], tuple(cells))
        if self.primus:
            p = cast("Primus", bb).patch_size
            return cast(tuple[int, int, int], (p, p, p) if isinstance(p, int) else tuple(p))
        m = bb.min_input_multiple
        return (m, m, m)

    def _grid(self, spatial: tuple[int, ...]) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """The token grid of an input and the voxels each token covers along each axis."""
        cells = self._cells()
        grid = cast(tuple[int, int, int], tuple(s // c for s, c in zip(spatial, cells)))
        return grid, cells

    def masks(self, batch: dict, n_views: int) -> torch.Tensor:
        """Bool [V·B, N] (view-major), True = masked: exactly round(ratio·N) tokens per view,
        drawn from each sample's own generator (a second stream, salt 1)."""
        grid, _ = self._grid(tuple(batch["views"].shape[3:]))
        n = math.prod(grid)
        gens = sample_generators(batch, salt=1)
        per_view = [[~token_keep(n, self.mask_ratio, g) for g in gens] for _ in range(n_views)]
        return torch.stack([m for view in per_view for m in view])

    def tokens(
        self, backbone: Backbone, x: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """[B, N, C] deepest-stage tokens of `x` with the `mask`ed [B, N] positions hidden."""
        if not self.primus:  # the deepest map's positions, their input cells zeroed
            if mask is not None:
                grid, cells = self._grid(tuple(x.shape[2:]))
                hidden = tokens_to_voxels(mask, grid, cells)
                x = x * (~hidden)[:, None].to(x.dtype)
            return backbone.encode(x)[-1].flatten(2).transpose(1, 2)
        if mask is None:
            return backbone.encode(x)[-1].flatten(2).transpose(1, 2)
        vit = cast("Primus", backbone)  # Primus.encode, with iBOT's mask token before the blocks
        vit.check_input(x)
        t = vit.down_projection(x)
        grid = tuple(t.shape[2:])
        t = t.flatten(2).transpose(1, 2)
        t = torch.where(mask[..., None], self.mask_token.to(t.dtype), t)
        t = t + vit.eva.pos_embed_for(grid)
        rope = vit.eva.rope_for(grid, x.device)
        for blk in vit.eva.blocks:
            t = blk(t, rope)
        return vit.eva.norm(t)

    def pool(self, tok: torch.Tensor) -> torch.Tensor:
        """[B, N, C] tokens → the image-level embedding the DINO head reads."""
        if self.meanmax:
            return torch.cat([tok.mean(1), tok.amax(1)], -1)
        return tok.mean(1)

    # -- loss ---------------------------------------------------------------------------------
    def views(self, batch: dict) -> torch.Tensor:
        v = batch.get("views")
        if v is None or v.shape[1] < 2:
            raise ValueError("dino needs two or more views per sample (dataset n_views >= 2)")
        return v

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        v = self.views(batch)
        b, nv = v.shape[:2]
        if self.w_koleo and b < 2:
            raise ValueError(
                "dino's KoLeo term compares the samples of a micro-batch and this one has 1: "
                "raise train.batch_size or set objective.kwargs.w_koleo=0"
            )
        x = v.transpose(0, 1).reshape(nv * b, *v.shape[2:])  # view-major [V·B, C, D, H, W]
        mask = self.masks(batch, nv).to(x.device)
        temp = self.teacher_temp()
        with torch.no_grad():
            t_tok = self.tokens(cast("Backbone", self.teacher["backbone"]), x, None)
            t_cls = self.teacher["head"](self.pool(t_tok)).float()
            t_patch = self.teacher["patch_head"](t_tok[mask]).float()
            p_cls = centred_softmax(t_cls, self.center, temp)
            p_patch = centred_softmax(t_patch, self.patch_center, temp)
        s_tok = self.tokens(self.backbone, x, mask)
        s_pool = self.pool(s_tok)
        k = p_cls.shape[-1]
        dino = distillation_ce(p_cls.view(nv, b, k), self.head(s_pool).float().view(nv, b, k),
                               self.student_temp)  # fmt: skip
        # every view masks the same number of tokens: the mean over masked tokens is iBOT's
        # per-sample mean, averaged over samples
        s_logp = F.log_softmax(self.patch_head(s_tok[mask]).float() / self.student_temp, -1)
        ibot = -(p_patch * s_logp).sum(-1).mean()
        reg = torch.stack([koleo(z) for z in s_pool.view(nv, b, -1)]).mean() if self.w_koleo else 0
        loss = self.w_dino * dino + self.w_ibot * ibot + self.w_koleo * reg
        if self.training:
            self._accumulate(0, t_cls)
            self._accumulate(1, t_patch)
        logs = {
            "loss": float(loss.detach()),
            "dino": float(dino.detach()),
            "ibot": float(ibot.detach()),
            "koleo": float(reg.detach()) if torch.is_tensor(reg) else 0.0,
            "teacher_temp": temp,
            "teacher_entropy": float(entropy(p_cls).mean()),  # 0: one-hot; log K: uniform
            "teacher_marginal_entropy": float(entropy(p_cls.mean(0))),  # 0: all alike
        }
        return loss, logs

    # -- health -------------------------------------------------------------------------------
    def health_views(self, batch: dict) -> list[torch.Tensor]:
        v = self.views(batch)
        return [v[:, 0], v[:, 1]]

    def health_embeddings(
        self, batch: dict
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """Pooled features of the first (unmasked) view; both views' normalised head
        bottlenecks, the space the prototypes score."""
        va, vb = self.health_views(batch)
        b = va.shape[0]
        tok = self.tokens(self.backbone, torch.cat([va, vb]), None)
        z = self.head.embed(self.pool(tok))
        return tok[:b].mean(1), (z[:b], z[b:])
