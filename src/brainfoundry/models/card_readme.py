"""The README.md model card of an exported model, written from its `card.json` (and its test
metrics when it was evaluated), so what a reader sees is what the weights carry.

Sections follow the usual model-card outline (Mitchell et al., "Model Cards for Model
Reporting", FAT* 2019): what the model is, its input contract, its training data, its
measured performance, intended use and limits, and how to load it.
"""

from __future__ import annotations

import json
from typing import Any

from .. import __version__
from .card import ModelCard


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return f"`{json.dumps(value, sort_keys=True)}`"
    return "—" if value is None else str(value)


def _table(rows: list[tuple[str, Any]]) -> list[str]:
    return ["| | |", "|---|---|", *[f"| {k} | {_fmt(v)} |" for k, v in rows]]


def _what(card: ModelCard) -> str:
    task = card.extra.get("task")
    if task:
        return f"a `{task.get('type', 'task')}` model for the task `{task.get('name')}`"
    how = f"pretrained with `{card.ssl_method}`" if card.ssl_method else "pretrained"
    if "imported_from" in card.extra:
        how = f"imported from `{card.data_summary.get('imported_from', 'foreign weights')}`"
    return f"a backbone {how}"


def architecture(card: ModelCard, n_params: int) -> list[str]:
    kw = card.arch["kwargs"]
    shape = {k: v for k, v in kw.items() if k not in ("in_channels", "out_channels")}
    return ["## Architecture", "", *_table([
        ("family", card.arch["name"]), ("size", card.arch.get("size")),
        ("parameters", f"{n_params / 1e6:.2f} M"), ("input channels", card.in_channels),
        ("output channels (decoder)", kw.get("out_channels")), ("options", shape),
    ]), ""]  # fmt: skip


def input_contract(card: ModelCard) -> list[str]:
    mods = ", ".join(card.modalities) or "any one sequence (a one-channel model)"
    return ["## Input", "", *_table([
        ("modalities (channel order)", mods), ("voxel spacing (mm)", card.spacing),
        ("normalisation", card.normalization), ("patch size", card.patch_size),
    ]), "", "`brainfoundry prepare` / `predict` apply this contract from card.json; other "
        "pipelines must reproduce it.", ""]  # fmt: skip


def training_data(card: ModelCard) -> list[str]:
    rows = [(k, v) for k, v in card.data_summary.items() if v is not None]
    rows.append(("self-supervised method", card.ssl_method))
    if card.extra.get("init"):
        rows.append(("initialised from", card.extra["init"]))
    if card.extra.get("step") is not None:
        rows.append(("training step kept", card.extra["step"]))
    return ["## Training data", "", *_table(rows), ""]


def metrics(card: ModelCard, test: dict | None) -> list[str]:
    val = card.extra.get("val_metrics")
    if not val and not test:
        return ["## Metrics", "", "Not fine-tuned or not evaluated: no task metrics.", ""]
    lines = ["## Metrics", ""]
    if val:
        lines += ["Validation (the split that chose this checkpoint):", "",
                  *_table(sorted(val.items())), ""]  # fmt: skip
    if test:
        level = round(100 * (1 - float(test.get("alpha", 0.05))))
        lines += [f"Test ({test.get('n_cases')} cases; {level}% bootstrap CI over cases):", "",
                  "| metric | estimate | CI |", "|---|---|---|"]  # fmt: skip
        for name, m in (test.get("metrics") or {}).items():
            lines.append(f"| {name} | {_fmt(m.get('estimate'))} | "
                         f"[{_fmt(m.get('lo'))}, {_fmt(m.get('hi'))}] |")  # fmt: skip
        lines.append("")
    return lines


def use_and_limits(card: ModelCard) -> list[str]:
    task = bool(card.extra.get("task"))
    use = ("prediction on brain MRI for the task above (`brainfoundry predict --model DIR`)"
           if task else "initialising fine-tuning (`brainfoundry finetune --init DIR`) and "
           "as a feature extractor (`model.encode(x)`) on brain MRI")  # fmt: skip
    return [
        "## Intended use", "", f"Research use: {use}.", "",
        "## Limitations", "",
        "- Not a medical device and not validated for clinical decisions.",
        "- Measured only on the data summarised above: scanners, field strengths, populations, "
        "pathologies and preprocessing beyond it are untested until measured.",
        "- Inputs that break the input contract (spacing, normalisation, channel order) give "
        "unreliable outputs without any error.",
        "",
    ]  # fmt: skip


def how_to_load(card: ModelCard, sha256: str) -> list[str]:
    if card.extra.get("task"):
        code = "from brainfoundry.tasks.model_io import load_task_model\n" \
               "model, card, spec = load_task_model(\"DIR\")"  # fmt: skip
    else:
        code = "from brainfoundry.models.checkpoint import load_model\n" \
               "model, card, report = load_model(\"DIR\", strict=True)"  # fmt: skip
    return ["## How to load", "", "Offline, no pickles (safetensors + JSON):", "", "```python",
            code, "```", "", f"`model.safetensors` sha256: `{sha256}`", ""]  # fmt: skip


def render(card: ModelCard, n_params: int, sha256: str, test: dict | None = None) -> str:
    """The whole README.md (Hugging Face-style front matter, then the sections)."""
    tags = ["brainfoundry", "brain-mri", "3d", card.arch["name"]]
    tags += [card.ssl_method] if card.ssl_method else []
    head = ["---", "library_name: brainfoundry", f"tags: [{', '.join(tags)}]", "---", ""]
    title = f"# {card.arch['name']} ({card.arch.get('size')}): {_what(card)}"
    body = [
        title,
        "",
        f"Exported by brainfoundry {__version__} (card written by {card.version}).",
        "",
    ]
    body += architecture(card, n_params) + input_contract(card) + training_data(card)
    body += metrics(card, test) + use_and_limits(card) + how_to_load(card, sha256)
    return "\n".join(head + body)
