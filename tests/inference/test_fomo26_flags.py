"""`predict` takes FOMO26's `--dwi` for the DWI (b=1000) scan, as well as FOMO25's
`--dwi_b1000`, and writes a probability the FOMO26 validator accepts (a float in [0, 1])."""

from __future__ import annotations

from brainfoundry.cli import main

from .conftest import case_inputs


def test_predict_takes_fomo26s_dwi_flag(fomo, tmp_path):
    model, test = fomo["infarct"]
    _, inputs = case_inputs(test)
    argv = ["predict", "--model", str(model), "-o", str(tmp_path / "a.txt")]
    flags = [f"--{'dwi' if k == 'dwi_b1000' else k}" for k in inputs]
    args = [x for k, f in zip(inputs, flags) for x in (f, str(inputs[k]))]
    assert "--dwi" in flags and main([*argv, *args]) == 0
    text = (tmp_path / "a.txt").read_text().strip()
    assert "." in text and 0.0 <= float(text) <= 1.0  # a float, never an int
