"""FOMO25 container entry point: `python /app/predict.py --flair F ... --output /output/sub_X.txt`.

Called once per case by the challenge's runner with flags derived from the input file names
(--flair --adc --dwi_b1000 --t2s --swi --t1 --t2). Reads only its inputs (/input is read-only),
writes only --output (atomically: the file appears complete or not at all). The model folder is
/app/model (override: --model or BRAINFOUNDRY_MODEL). By default only the output the challenge
scores is written; BRAINFOUNDRY_EXTRAS=1 adds the uncertainty JSON and QC PNG beside it.
A user mistake (a missing sequence, an unreadable file) prints one line and exits with 2.
"""

from __future__ import annotations

import argparse
import os
import sys

FLAGS = ("flair", "adc", "dwi_b1000", "t2s", "swi", "t1", "t2")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in FLAGS:
        ap.add_argument(f"--{f}", default=None, help=f"{f} scan (NIfTI or DICOM folder)")
    ap.add_argument("--output", required=True, help="output file: .txt or .nii.gz")
    ap.add_argument("--model", default=os.environ.get("BRAINFOUNDRY_MODEL", "/app/model"))
    args = ap.parse_args(argv)
    from brainfoundry.errors import BrainFoundryError
    from brainfoundry.inference.predict import Predictor, write_outputs

    inputs = {f: getattr(args, f) for f in FLAGS if getattr(args, f)}
    try:
        result = Predictor(args.model).predict(inputs)
        extras = os.environ.get("BRAINFOUNDRY_EXTRAS", "0") == "1"
        write_outputs(result, args.output, qc=extras, side_files=extras)
    except BrainFoundryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
