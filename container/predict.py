"""FOMO25/FOMO26 container entry point: `python /app/predict.py --flair F ... --output OUT`.

Called once per case by the challenge's runner. Which task the image is for comes from its model
folder's card (/app/model; override: --model or BRAINFOUNDRY_MODEL), one image per task:
- FOMO26 task 1 infarct: --flair --dwi --adc and --t2s or --swi -> OUT.txt, P(infarct);
- task 2 meningioma: --flair --dwi and --t2s or --swi -> OUT.nii.gz, {0,1}, the input's shape;
- task 3 brain age: --t1 -> OUT.txt, the age in years;
- task 4 trigeminal: --t2 -> OUT.nii.gz, {0 background, 1 nerve, 2 vessel}, the input's shape;
- task 5 polymicrogyria: --t1 -> OUT.txt, P(polymicrogyria);
- tasks 6 and 7: --input VOLUME -> OUT.npy, a 1-D finite embedding of the same size for every
  volume (the model folder is a pretraining run, or a task model whose encoder is used).
FOMO25's flags (--dwi_b1000; --t1 --t2 for brain age) work the same way. --protocol
fomo25|fomo26 (default auto: fomo26 when --dwi or --input is given or the card's task is a
fomo26-* one) only refuses what the protocol lacks (FOMO25 has no --input).

Reads only its inputs (/input is read-only) and writes only the output (atomically). Every output
is checked against the validator's rule before the process ends (`inference.validator`): an
output that breaks it is removed, one line says why, exit 1. A user mistake (a missing sequence,
an unreadable file) prints one line and exits with 2. BRAINFOUNDRY_EXTRAS=1 adds the
uncertainty JSON and QC PNG beside a prediction.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

FLAGS = ("flair", "adc", "dwi_b1000", "dwi", "t2s", "swi", "t1", "t2")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    for f in FLAGS:
        ap.add_argument(f"--{f}", default=None, help=f"{f} scan (NIfTI or DICOM folder)")
    ap.add_argument("--input", default=None, help="FOMO26 tasks 6/7: one volume to embed")
    ap.add_argument("--output", required=True, help="output file: .txt, .nii.gz or .npy")
    ap.add_argument("--model", default=os.environ.get("BRAINFOUNDRY_MODEL", "/app/model"))
    ap.add_argument("--protocol", choices=("auto", "fomo25", "fomo26"), default="auto")
    return ap


def _task_of(model: str) -> str | None:
    """The task name the model folder's card is for; None for a pretraining run."""
    from brainfoundry.inference.embed import model_folder
    from brainfoundry.models.card import ModelCard

    folder, _ = model_folder(model)
    return ModelCard.load(folder / "card.json").extra.get("task")


def _protocol(args: argparse.Namespace, inputs: dict, task: str | None) -> str:
    from brainfoundry.errors import ConfigError

    if args.protocol != "auto":
        if args.protocol == "fomo25" and args.input:
            raise ConfigError("--input is FOMO26's embedding call (tasks 6/7); FOMO25 has none")
        return str(args.protocol)
    fomo26 = bool(args.input) or "dwi" in inputs or str(task or "").startswith("fomo26-")
    return "fomo26" if fomo26 else "fomo25"


def _checked(written: list[Path], rule, shape: tuple[int, ...] | None = None) -> None:
    """Check the scored file (written[0]); if the validator would reject it, remove it and
    the side files written with it, and raise."""
    from brainfoundry.inference.validator import InvalidOutput, check_output

    try:
        check_output(written[0], rule, shape)
    except InvalidOutput:
        for p in written:
            p.unlink(missing_ok=True)
        raise


def _input_shape(path: str | Path) -> tuple[int, ...]:
    """The input's own voxel grid, as stored (the validator compares the mask with it)."""
    import nibabel as nib

    from brainfoundry.io.volume import read_volume

    if Path(path).is_file():
        return tuple(int(n) for n in nib.load(str(path)).shape[:3])
    return tuple(read_volume(path).data.shape)  # a DICOM series folder


def _embed(args: argparse.Namespace, inputs: dict) -> None:
    from brainfoundry.errors import ConfigError
    from brainfoundry.inference.embed import Embedder, write_embedding
    from brainfoundry.inference.validator import Rule

    if inputs:
        given = ", ".join(f"--{k}" for k in inputs)
        raise ConfigError(f"--input takes one volume alone (tasks 6/7); also given: {given}")
    embedder = Embedder(args.model)
    vec, _ = embedder.embed(args.input)
    out = write_embedding(args.output, vec)
    _checked([out], Rule("embedding", dim=embedder.dim))


def _predict(args: argparse.Namespace, inputs: dict, task: str | None) -> None:
    from brainfoundry.errors import ConfigError
    from brainfoundry.inference.predict import Predictor, output_paths, write_outputs
    from brainfoundry.inference.validator import rule_for

    if task is None:
        raise ConfigError(
            f"{args.model} is a pretrained encoder (FOMO26 tasks 6/7): "
            "call it with --input VOLUME --output OUT.npy"
        )
    predictor = Predictor(args.model)
    result = predictor.predict(inputs)
    extras = os.environ.get("BRAINFOUNDRY_EXTRAS", "0") == "1"
    main_out, js, png = output_paths(args.output, result["kind"])
    write_outputs(result, args.output, qc=extras, side_files=extras)
    rule = rule_for(predictor.spec)
    if rule is not None:
        first = next(iter(result["inputs"].values()))
        shape = _input_shape(first) if rule.kind == "mask" else None
        _checked([main_out, *([js, png] if extras else [])], rule, shape)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from brainfoundry.errors import BrainFoundryError
    from brainfoundry.inference.validator import InvalidOutput

    inputs = {f: getattr(args, f) for f in FLAGS if getattr(args, f)}
    try:
        task = _task_of(args.model)
        _protocol(args, inputs, task)
        _embed(args, inputs) if args.input else _predict(args, inputs, task)
    except InvalidOutput as e:  # removed already: never an output the validator rejects
        print(f"error: invalid output: {e}", file=sys.stderr)
        return 1
    except BrainFoundryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
