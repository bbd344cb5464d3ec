"""`model.pool=attention`: gated attention-MIL pooling of the deepest stage (tasks/heads.py)."""

import json

import pytest
import torch

from brainfoundry.cli import main
from brainfoundry.models.backbones import create_backbone
from brainfoundry.models.backbones.views import slice_axis
from brainfoundry.models.channelwise import Channelwise
from brainfoundry.tasks.heads import AttentionPool, create_task_model


def test_attention_pool_matches_the_written_out_formula():
    torch.manual_seed(0)
    pool = AttentionPool(6, hidden=5)
    torch.nn.init.normal_(pool.w.weight)  # away from the uniform start
    h = torch.randn(3, 7, 6)
    v, u, w = pool.v, pool.u, pool.w.weight[0]
    for n in range(3):
        gate = [torch.tanh(v.weight @ h[n, t] + v.bias) * torch.sigmoid(u.weight @ h[n, t] + u.bias)
                for t in range(7)]  # fmt: skip
        scores = torch.stack([w @ g for g in gate])
        a = torch.exp(scores) / torch.exp(scores).sum()
        assert torch.allclose(pool(h)[n], (a[:, None] * h[n]).sum(0), atol=1e-5)
    assert torch.allclose(pool.weights(h).sum(1), torch.ones(3))
    perm = torch.randperm(7)
    assert torch.allclose(pool(h[:, perm]), pool(h), atol=1e-6)  # a bag: order does not matter


def test_attention_pool_starts_as_the_mean():
    h = torch.randn(2, 9, 4)
    assert torch.allclose(AttentionPool(4)(h), h.mean(1), atol=1e-6)


@pytest.mark.parametrize("family", ["resenc", "cnn2d"])
def test_attention_head_starts_equal_to_meanmax_and_then_learns(family):
    """At step 0 the features are the meanmax head's, so the closed-form probe fitted then is
    exact; gradient steps move the attention weights off uniform."""
    torch.manual_seed(0)
    shared = create_backbone(family, in_channels=1, out_channels=1, size="mini")
    att = create_task_model("classification", Channelwise(shared, 2), pool="attention")
    plain = create_task_model("classification", Channelwise(shared, 2))
    plain.head.load_state_dict(att.head.state_dict())
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 2, 32, 32, 32, generator=g)
    assert torch.equal(att.features(x, None), plain.features(x, None))
    opt = torch.optim.Adam(att.attention.parameters(), lr=0.05)
    for _ in range(3):
        loss, _ = att({"image": x, "label": torch.tensor([0, 1])})
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not torch.allclose(att.features(x, None), plain.features(x, None))


def test_a_one_plane_slice_model_attends_over_its_slices():
    torch.manual_seed(0)
    net = create_backbone("cnn2d", in_channels=1, out_channels=1, size="mini", plane="coronal")
    model = create_task_model("classification", net, pool="attention")
    assert slice_axis(net) == 3 and slice_axis(Channelwise(net, 2)) == 3
    deepest = net.encode(torch.randn(1, 1, 32, 24, 16))[-1]
    tokens = model._tokens(deepest.flatten(2), tuple(deepest.shape[2:]))
    assert tokens.shape == (1, 24, deepest.shape[1])  # one token per coronal slice
    assert torch.allclose(tokens[0, 5], deepest[0, :, :, 5].mean(dim=(1, 2)), atol=1e-6)
    three = create_backbone("cnn2d", in_channels=1, out_channels=1, size="mini", plane="all")
    assert slice_axis(three) is None  # the fused planes share no slice axis: positions
    assert slice_axis(create_backbone("resenc", in_channels=1, out_channels=1, size="mini")) is None


def test_unknown_pool_is_a_clear_error():
    net = create_backbone("resenc", in_channels=1, out_channels=1, size="mini")
    with pytest.raises(Exception, match="model.pool 'topk'"):
        create_task_model("classification", net, pool="topk")


@pytest.mark.slow
def test_attention_pool_finetunes_evaluates_and_is_refused_for_segmentation(
    task_data, tmp_path, capsys
):
    data, out = task_data["infarct"], tmp_path / "run"
    rc = main([
        "finetune", "--task", "infarct", "--data", str(data / "finetune"), "-o", str(out),
        "--shots", "4", "--preset", "cpu-tiny", "model.pool=attention", "train.steps=2",
        "train.checkpoint_every=1",
    ])  # fmt: skip
    assert rc == 0
    card = json.loads((out / "seed_0" / "card.json").read_text())
    assert card["extra"]["head"]["pool"] == "attention"  # evaluate and predict rebuild it
    assert main(["evaluate", str(out), "--data", str(data / "test"), "--n-boot", "50"]) == 0
    assert json.loads((out / "seed_0" / "metrics.json").read_text())["metrics"]["auroc"]

    probe = tmp_path / "probe"
    rc = main([
        "finetune", "--task", "infarct", "--data", str(data / "finetune"), "-o", str(probe),
        "--shots", "4", "--preset", "cpu-tiny", "model.pool=attention", "train.steps=0",
    ])  # fmt: skip
    assert rc == 0
    warnings = json.loads((probe / "finetune.json").read_text())["warnings"]
    assert any("stays the plain mean" in w for w in warnings)

    capsys.readouterr()
    rc = main([
        "finetune", "--task", "meningioma", "--data", str(task_data["meningioma"] / "finetune"),
        "-o", str(tmp_path / "seg"), "--shots", "2", "--preset", "cpu-tiny",
        "model.pool=attention", "train.steps=1",
    ])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "model.pool=attention pools a case-level head" in err and "Traceback" not in err
