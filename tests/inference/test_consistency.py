"""`Predictor` on raw files gives exactly what evaluation gives on the prepared store: the
same preprocessing from the card, the same crop or sliding window, the seeds averaged."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stores(fomo, tmp_path_factory):
    """Each task's test folder prepared with its model's card, as `evaluate` does."""
    from brainfoundry.models.card import ModelCard
    from brainfoundry.tasks.data import prepare_task_data, preprocess_config

    out = {}
    for task, (model, test) in fomo.items():
        card = ModelCard.load(next(model.glob("seed_*/card.json")))
        pre = preprocess_config(card.spacing, card.normalization)
        out[task] = prepare_task_data(test, tmp_path_factory.mktemp(task) / "s", pre)
    return out


def _key(store, subject: str) -> str:
    m = store.manifest
    return str(m[m["subject"] == subject]["group"].iloc[0])


@pytest.mark.parametrize("task", ["infarct", "brainage", "meningioma"])
def test_predict_equals_the_evaluation_path(fomo, stores, task):
    from brainfoundry.inference.core import input_size
    from brainfoundry.inference.predict import Predictor
    from brainfoundry.tasks.predict import predict_cases, predict_segmentation

    from .conftest import case_inputs

    model, test = fomo[task]
    sub, inputs = case_inputs(test)
    pred = Predictor(model, device="cpu")
    res = pred.predict(inputs)
    store, key = stores[task], _key(stores[task], sub)
    size = input_size(pred.card)
    if task == "meningioma":
        probs = predict_segmentation(pred.members[0].model, store, pred.spec.channels, key, size)
        ref = probs[1]  # the lesion class: what the binary paths threshold
        assert res["prob_preprocessed"].shape == ref.shape
        assert np.abs(res["prob_preprocessed"] - ref).max() < 1e-6
        return
    col = "prob" if task == "infarct" else "pred"
    per_seed = [
        float(predict_cases(m.model, store, pred.spec.channels, size, [key])[col].iloc[0])
        for m in pred.members
    ]
    assert len(per_seed) == (2 if task == "infarct" else 1)
    assert res["value"] == pytest.approx(np.mean(per_seed), rel=1e-6)
