"""One test per FOMO26 validator rule, for every kind of task output: a probability .txt (tasks
1, 5), a value .txt (task 3), a mask (task 2 binary, task 4 labels 0..2) and an embedding
(tasks 6, 7); and the rule each task spec gets."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainfoundry.inference.validator import InvalidOutput, Rule, check_output, rule_for
from brainfoundry.tasks.spec import get_task

PROB, VALUE, EMB = Rule("probability"), Rule("value"), Rule("embedding")
MENINGIOMA, TRIGEMINAL = Rule("mask", max_label=1), Rule("mask", max_label=2)


def _txt(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sub_1.txt"
    p.write_text(text)
    return p


def _mask(tmp_path: Path, data: np.ndarray) -> Path:
    p = tmp_path / "sub_1.nii.gz"
    nib.save(nib.Nifti1Image(data.astype(np.uint8), np.eye(4)), p)
    return p


def _npy(tmp_path: Path, arr: np.ndarray) -> Path:
    p = tmp_path / "sub_1.npy"
    np.save(p, arr)
    return p


# -- probability (tasks 1 and 5) ----------------------------------------------------------------


@pytest.mark.parametrize("text", ["1", "0", "1\n", "+1"])
def test_probability_rejects_an_integer(tmp_path, text):
    with pytest.raises(InvalidOutput, match="integer where a probability belongs"):
        check_output(_txt(tmp_path, text), PROB)


@pytest.mark.parametrize("text", ["1.2", "-0.1", "1e3"])
def test_probability_rejects_a_value_outside_0_1(tmp_path, text):
    with pytest.raises(InvalidOutput, match=r"outside \[0, 1\]"):
        check_output(_txt(tmp_path, text), PROB)


@pytest.mark.parametrize("text", ["nan", "inf", "0.3 0.7", "", "p=0.7"])
def test_probability_rejects_what_is_not_one_finite_number(tmp_path, text):
    with pytest.raises(InvalidOutput):
        check_output(_txt(tmp_path, text), PROB)


@pytest.mark.parametrize("text", ["0.7", "0.7\n", "1.0", "0.0", "7e-1"])
def test_probability_accepts_a_float_in_0_1(tmp_path, text):
    check_output(_txt(tmp_path, text), PROB)


# -- value (task 3, brain age) ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["63.27\n", "63.0", "101.5"])
def test_brain_age_accepts_a_float(tmp_path, text):
    check_output(_txt(tmp_path, text), VALUE)


@pytest.mark.parametrize("text", ["nan", "-inf", "sixty", "63.2 64.1"])
def test_brain_age_rejects_what_is_not_one_finite_number(tmp_path, text):
    with pytest.raises(InvalidOutput):
        check_output(_txt(tmp_path, text), VALUE)


# -- masks (task 2 binary, task 4 labels 0..2) -------------------------------------------------


@pytest.mark.parametrize("rule", [MENINGIOMA, TRIGEMINAL], ids=["meningioma", "trigeminal"])
def test_mask_rejects_the_wrong_shape(tmp_path, rule):
    with pytest.raises(InvalidOutput, match="shape"):
        check_output(_mask(tmp_path, np.zeros((8, 9, 7))), rule, (8, 9, 6))
    with pytest.raises(InvalidOutput, match="shape"):  # the axes permuted: still wrong
        check_output(_mask(tmp_path, np.zeros((9, 8, 6))), rule, (8, 9, 6))


def test_trigeminal_mask_rejects_label_3(tmp_path):
    data = np.zeros((8, 9, 6))
    data[2, 2, 2], data[3, 3, 3], data[4, 4, 4] = 1, 2, 3
    with pytest.raises(InvalidOutput, match=r"outside \{0\.\.2\}: 3"):
        check_output(_mask(tmp_path, data), TRIGEMINAL, (8, 9, 6))


def test_meningioma_mask_rejects_label_2(tmp_path):
    data = np.zeros((8, 9, 6))
    data[2, 2, 2], data[3, 3, 3] = 1, 2
    with pytest.raises(InvalidOutput, match=r"outside \{0\.\.1\}: 2"):
        check_output(_mask(tmp_path, data), MENINGIOMA, (8, 9, 6))


def test_mask_rejects_fractional_labels(tmp_path):
    p = tmp_path / "soft.nii.gz"
    nib.save(nib.Nifti1Image(np.full((4, 4, 4), 0.5, np.float32), np.eye(4)), p)
    with pytest.raises(InvalidOutput, match="labels outside"):
        check_output(p, MENINGIOMA, (4, 4, 4))


def test_masks_of_the_right_shape_and_labels_are_accepted(tmp_path):
    data = np.zeros((8, 9, 6))
    data[2, 2, 2] = 1
    check_output(_mask(tmp_path, data), MENINGIOMA, (8, 9, 6))
    data[3, 3, 3] = 2
    check_output(_mask(tmp_path, data), TRIGEMINAL, (8, 9, 6))
    check_output(_mask(tmp_path, np.zeros((8, 9, 6))), TRIGEMINAL, (8, 9, 6))  # empty: fine


def test_mask_rejects_a_file_that_is_not_nifti(tmp_path):
    p = tmp_path / "sub_1.nii.gz"
    p.write_bytes(b"not an image")
    with pytest.raises(InvalidOutput, match="not a readable NIfTI"):
        check_output(p, MENINGIOMA, (8, 9, 6))


# -- embeddings (tasks 6 and 7) -----------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 28), (1, 112), (112, 1), ()])
def test_embedding_rejects_what_is_not_1d(tmp_path, shape):
    with pytest.raises(InvalidOutput, match="1-D"):
        check_output(_npy(tmp_path, np.ones(shape, np.float32)), EMB)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_embedding_rejects_nan_and_inf(tmp_path, bad):
    vec = np.ones(112, np.float32)
    vec[7] = bad
    with pytest.raises(InvalidOutput, match="NaN or Inf"):
        check_output(_npy(tmp_path, vec), EMB)


def test_embedding_accepts_a_finite_1d_vector(tmp_path):
    vec = np.random.default_rng(0).normal(size=112).astype(np.float32)
    check_output(_npy(tmp_path, vec), EMB)
    check_output(_npy(tmp_path, vec), Rule("embedding", dim=112))


def test_embedding_of_another_size_than_the_models_is_rejected(tmp_path):
    with pytest.raises(InvalidOutput, match="112"):
        check_output(_npy(tmp_path, np.ones(110, np.float32)), Rule("embedding", dim=112))


def test_embedding_rejects_empty_strings_and_pickles(tmp_path):
    with pytest.raises(InvalidOutput):
        check_output(_npy(tmp_path, np.ones(0, np.float32)), EMB)
    with pytest.raises(InvalidOutput):
        check_output(_npy(tmp_path, np.array(["a", "b"])), EMB)
    with pytest.raises(InvalidOutput, match="not a readable"):
        check_output(_npy(tmp_path, np.array([{"a": 1}], dtype=object)), EMB)


def test_a_missing_output_is_rejected(tmp_path):
    with pytest.raises(InvalidOutput, match="no output file"):
        check_output(tmp_path / "none.txt", PROB)


# -- which rule each task's output follows --------------------------------------------------------


@pytest.mark.parametrize(
    "task, rule",
    [
        ("fomo26-infarct", PROB),
        ("fomo26-meningioma", MENINGIOMA),
        ("fomo26-brainage", VALUE),
        ("fomo26-trigeminal", TRIGEMINAL),
        ("fomo26-polymicrogyria", PROB),
        ("infarct", PROB),
        ("meningioma", MENINGIOMA),
        ("brainage", VALUE),
    ],
)
def test_each_task_gets_its_rule(task, rule):
    assert rule_for(get_task(task)) == rule


def test_an_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError):
        Rule("histogram")
