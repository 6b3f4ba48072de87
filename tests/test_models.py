"""Every registered model: forward shapes, no NaN, any length; LSTM packing; heads' losses."""

from __future__ import annotations

import pytest
import torch

from musictune.errors import UserError
from musictune.models import create_model, list_models
from musictune.models.heads import MultitaskHead


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("n_features", [12, 128, 140])
@pytest.mark.parametrize("frames", [5, 173])
def test_forward_any_shape(name, n_features, frames):
    model = create_model(name, n_features, head="classifier", n_outputs=10).eval()
    out = model(torch.randn(3, frames, n_features), torch.tensor([frames, frames - 1, 2]))
    assert out.shape == (3, 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
def test_lstm_padded_equals_unpadded(bidirectional, layers):
    torch.manual_seed(0)
    model = create_model(
        "lstm", 16, n_outputs=4, num_layers=layers, bidirectional=bidirectional, dropout=0.3
    ).eval()
    seq = torch.randn(1, 23, 16)
    alone = model(seq, torch.tensor([23]))
    padded = torch.cat([seq, torch.randn(1, 17, 16)], dim=1)  # garbage after the true length
    batch = torch.cat([padded, torch.randn(1, 40, 16)])
    together = model(batch, torch.tensor([23, 40]))[:1]
    assert torch.allclose(alone, together, atol=1e-6)


def test_cnn_blocks_and_dropout_configurable():
    small = create_model("cnn", 128, conv_blocks=2, dropout=0.5)
    assert small.backbone.out_features == 64
    assert len(small.backbone.blocks) == 2
    assert small.spec["conv_blocks"] == 2


def test_heads_shapes_and_multitask_loss_is_weighted_sum():
    reg = create_model("cnn", 12, head="regressor", n_outputs=1).eval()
    assert reg(torch.randn(4, 9, 12), torch.tensor([9] * 4)).shape == (4,)
    head = MultitaskHead(8, 3)
    head.weights = torch.tensor([0.5, 1.0, 2.0])
    out, y = torch.randn(6, 3), torch.rand(6, 3)
    expected = sum(
        w * torch.nn.functional.mse_loss(out[:, i], y[:, i]) for i, w in enumerate(head.weights)
    )
    assert torch.allclose(head.loss(out, y), expected)


def test_unknown_model_lists_known_ones():
    with pytest.raises(UserError, match="choose one of cnn, lstm"):
        create_model("transformer", 128)
    with pytest.raises(UserError, match="model 'lstm'"):
        create_model("lstm", 128, kernel=3)
