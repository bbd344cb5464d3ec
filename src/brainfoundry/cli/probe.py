"""`brainfoundry probe`: the FOMO26 linear-probe protocol, with fairness, on embeddings."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command()
def probe(
    embeddings: Path = typer.Option(
        ...,
        "--embeddings",
        "-e",
        help="embed --batch's folder, its embeddings.parquet, or a folder of <id>.npy files.",
    ),
    labels: Path = typer.Option(
        ...,
        "--labels",
        "-l",
        help="CSV: an id column, a label column (class index or name) and any grouping columns.",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (created)."),
    groups: str = typer.Option(
        "", "--groups", "-g", help="Comma list of LABELS columns to score fairness across."
    ),
    bins: list[str] = typer.Option(
        [],
        "--bin",
        help="Bin a continuous group column: COL=WIDTH (age=10: decades) or "
        "COL=E1,E2,... (inclusive upper edges); repeat for several.",
    ),
    classes: str = typer.Option(
        None,
        "--classes",
        help="Comma list of class names in index order (default: the "
        "sorted names, or the indices 0..K-1 the labels give).",
    ),
    id_column: str = typer.Option("id", "--id-column", help="The LABELS column of ids."),
    label_column: str = typer.Option("label", "--label-column", help="The class column."),
    seed: int = typer.Option(42, "--seed", help="Split, head initialisation and bootstrap."),
    n_boot: int = typer.Option(2000, "--n-boot", min=1, help="Bootstrap resamples for the CIs."),
) -> None:
    """Train the organisers' 13 linear heads (one per learning rate, SGD, cosine, 20 epochs)
    on a 40/10/50 per-class split, keep the best on validation AUROC, and score the test half:
    AUROC and F1 with 95% CIs, and the fairness score across each grouping variable.
    Writes OUTPUT/probe.json, predictions.csv and splits.json."""
    from ..errors import ConfigError
    from ..evaluation.fairness import group_of, parse_bins
    from ..evaluation.linear_probe import Protocol, check_ids, run_probe, write_probe
    from ..evaluation.probe_inputs import read_embeddings, read_labels

    names = [g.strip() for g in groups.split(",") if g.strip()]
    binning = parse_bins(bins)
    stray = sorted(set(binning) - set(names))
    if stray:
        raise ConfigError(f"--bin {stray[0]}: not one of --groups ({', '.join(names) or 'none'})")
    names_cls = [c.strip() for c in classes.split(",")] if classes else None
    table = read_labels(labels, names, names_cls, id_column, label_column)
    emb_ids, x = read_embeddings(embeddings)
    check_ids(embeddings, emb_ids, labels, table)
    by_var = {g: group_of(table.groups[g], g, binning.get(g)) for g in names}
    protocol = Protocol(seed=seed, n_boot=n_boot)
    report, preds, parts = run_probe(embeddings, emb_ids, x, table, by_var, protocol)
    path = write_probe(output, report, preds, parts)
    typer.echo(_summary(report, path))


def _summary(report: dict, path: Path) -> str:
    def ci(m: dict) -> str:
        if m["estimate"] is None:
            return "undefined"
        span = f" [{m['lo']:.3f}, {m['hi']:.3f}]" if m["lo"] is not None else ""
        return f"{m['estimate']:.3f}{span}"

    t = report["test"]["metrics"]
    lr = report["chosen_lr"]
    line = (
        f"lr {lr:g} (validation AUROC {report['validation_auroc'][f'{lr:g}']:.3f}); test "
        f"AUROC {ci(t['auroc_ovr'])}, F1 {ci(t['f1_macro'])}"
    )
    if report["n"]["test_missing"]:
        line += f" ({report['n']['test_missing']} test case(s) without an embedding scored worst)"
    fair = report["fairness"]
    if fair:
        s = fair["score"]
        fmt = [f"{k} {v:.3f}" if v is not None else f"{k} undefined" for k, v in s.items()]
        line += "; fairness " + ", ".join(fmt)
    return f"{line} -> {path}"
