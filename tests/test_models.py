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
    if name == "course_cnn" and n_features < 16:  # the course's floor pooling: refused, by design
        with pytest.raises(UserError, match="use mel .* or the cnn family"):
            create_model(name, n_features)
        return
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
    with pytest.raises(UserError, match="choose one of cnn, course_cnn, course_lstm, lstm"):
        create_model("transformer", 128)
    with pytest.raises(UserError, match="model 'lstm'"):
        create_model("lstm", 128, kernel=3)


# --------------------------------------------------------------------------- the course's models


def conv_params(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout + cout


def linear_params(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


# The course's conv blocks: (in channels, out channels, kernel, padding).
COURSE_BLOCKS = [
    (1, 32, 5, 2),
    (32, 64, 5, 2),
    (64, 128, 3, 1),
    (128, 256, 3, 1),
]
COURSE_CONV_BN = sum(conv_params(k, cin, cout) + 2 * cout for cin, cout, k, _ in COURSE_BLOCKS)


@pytest.mark.parametrize(
    "frames, time_chain",
    [
        (1293, (1293, 646, 323, 161, 80)),  # full-length clips: 2x2 max-pools floor-halve
        (62, (62, 31, 15, 7, 3)),  # beat-synced clips
    ],
)
def test_course_cnn_layers_and_parameter_counts(frames, time_chain):
    mel_chain = (128, 64, 32, 16, 8)
    model = create_model("course_cnn", 128, n_outputs=10, frames=frames, dropout=0.3)
    backbone = model.backbone
    assert len(backbone.blocks) == 4
    for block, (cin, cout, k, pad) in zip(backbone.blocks, COURSE_BLOCKS):
        conv, bn, relu, pool = block
        assert isinstance(conv, torch.nn.Conv2d) and isinstance(relu, torch.nn.ReLU)
        assert (conv.in_channels, conv.out_channels) == (cin, cout)
        assert (conv.kernel_size, conv.padding, conv.stride) == ((k, k), (pad, pad), (1, 1))
        assert isinstance(bn, torch.nn.BatchNorm2d) and bn.num_features == cout
        assert isinstance(pool, torch.nn.MaxPool2d)
        assert (pool.kernel_size, pool.stride, pool.ceil_mode) == (2, 2, False)
    flat = 256 * time_chain[-1] * mel_chain[-1]
    assert backbone.flat_features == flat
    assert (backbone.linear.in_features, backbone.linear.out_features) == (flat, 1000)
    assert backbone.out_features == 1000 and backbone.dropout.p == 0.3
    assert model.head.net[-1].in_features == 1000

    expected_backbone = COURSE_CONV_BN + linear_params(flat, 1000)
    expected = {1293: 164_263_080, 62: 6_567_080}[frames]  # the same sums, written out
    assert expected_backbone == expected
    assert sum(p.numel() for p in backbone.parameters()) == expected_backbone
    total = sum(p.numel() for p in model.parameters())
    assert total == expected_backbone + linear_params(1000, 10)

    # Each block's output size: convolutions keep it, pools halve it (floor).
    model.eval()
    h = torch.zeros(2, 1, frames, 128)
    with torch.no_grad():
        for i, block in enumerate(backbone.blocks):
            h = block(h)
            assert h.shape == (2, COURSE_BLOCKS[i][1], time_chain[i + 1], mel_chain[i + 1])


def test_course_cnn_fits_any_clip_to_frames():
    torch.manual_seed(0)
    model = create_model("course_cnn", 140, n_outputs=10, frames=62, dropout=0.5).eval()
    clip = torch.randn(1, 62, 140)
    full = model(clip, torch.tensor([62]))
    for t in (5, 61, 62, 63, 200):  # shorter and longer than frames, in a batch of two
        out = model(torch.randn(2, t, 140), torch.tensor([t, max(1, t // 2)]))
        assert out.shape == (2, 10) and torch.isfinite(out).all()
    # Longer: cropped to the first 62 frames.
    longer = torch.cat([clip, torch.randn(1, 50, 140)], dim=1)
    assert torch.allclose(model(longer, torch.tensor([112])), full, atol=1e-5)
    # Shorter: zero-padded at the end; whatever lies past a clip's length is ignored.
    short = clip[:, :40]
    padded = torch.cat([short, torch.zeros(1, 22, 140)], dim=1)
    garbage = torch.cat([short, torch.randn(1, 30, 140)], dim=1)
    alone = model(short, torch.tensor([40]))
    assert torch.allclose(alone, model(padded, torch.tensor([62])), atol=1e-5)
    assert torch.allclose(alone, model(garbage, torch.tensor([40])), atol=1e-5)


def test_course_cnn_refuses_too_small_inputs_naming_the_fix():
    with pytest.raises(UserError, match="at least 16 feature bins, got 12.*cnn family"):
        create_model("course_cnn", 12)
    with pytest.raises(UserError, match="at least 16 frames, got 8.*--frames"):
        create_model("course_cnn", 128, frames=8)
    model = create_model("course_cnn", 16, frames=16).eval()  # the smallest: 1x1 after 4 pools
    assert model.backbone.flat_features == 256
    assert model(torch.randn(1, 3, 16), torch.tensor([3])).shape == (1, 10)


def lstm_params(n_in: int, hidden: int) -> int:
    return 4 * (n_in * hidden + hidden * hidden + 2 * hidden)  # 4 gates; bias_ih and bias_hh


@pytest.mark.parametrize("layers", [1, 2])
def test_course_lstm_layers_dropout_and_parameter_counts(layers):
    model = create_model("course_lstm", 128, n_outputs=10, num_layers=layers, dropout=0.4)
    lstm = model.backbone.lstm
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers) == (128, 128, layers)
    assert not lstm.bidirectional and lstm.batch_first
    assert lstm.dropout == (0.4 if layers == 2 else 0.0)  # between layers only
    assert model.backbone.dropout.p == 0.4 and model.backbone.out_features == 128
    expected = lstm_params(128, 128) * layers  # layer 2 reads layer 1's 128 units
    assert expected == {1: 132_096, 2: 264_192}[layers]
    assert sum(p.numel() for p in model.backbone.parameters()) == expected
    assert sum(p.numel() for p in model.parameters()) == expected + linear_params(128, 10)


@pytest.mark.parametrize("layers", [1, 2])
def test_course_lstm_padded_equals_unpadded(layers):
    torch.manual_seed(0)
    model = create_model("course_lstm", 12, n_outputs=4, num_layers=layers, dropout=0.3).eval()
    seq = torch.randn(1, 23, 12)
    alone = model(seq, torch.tensor([23]))
    padded = torch.cat([seq, torch.randn(1, 17, 12)], dim=1)  # garbage after the true length
    batch = torch.cat([padded, torch.randn(1, 40, 12)])
    assert torch.allclose(alone, model(batch, torch.tensor([23, 40]))[:1], atol=1e-6)


def test_course_families_knobs_and_train_flags():
    from musictune.commands.cli import build_parser
    from musictune.commands.train import train_options
    from musictune.models import get_family

    lstm_family = get_family("course_lstm")
    assert [(k.name, k.flag, k.sweep) for k in lstm_family.knobs] == [
        ("num_layers", "--layers", (1, 2)),
        ("hidden_size", "--hidden", None),
    ]
    assert lstm_family.layers == "num_layers"
    assert lstm_family.defaults == {"num_layers": 1, "hidden_size": 128}
    cnn_family = get_family("course_cnn")
    assert [(k.name, k.flag, k.sweep) for k in cnn_family.knobs] == [("frames", "--frames", None)]
    assert cnn_family.defaults == {"frames": None}  # build_model: the training clips' length

    args = build_parser().parse_args(["train", "--model", "course_lstm", "--layers", "2"])
    assert train_options(args).knobs == {"num_layers": 2}
    args = build_parser().parse_args(["train", "--model", "course_cnn", "--frames", "62"])
    assert train_options(args).knobs == {"frames": 62}


def test_course_cnn_head_width_is_a_setting():
    """`units` (the course's 1000) is a builder argument, so --set/--space can change it."""
    model = create_model("course_cnn", 128, n_outputs=10, frames=62, units=256)
    assert model.backbone.out_features == 256
    flat = 256 * 3 * 8  # 62 frames and 128 bins after four floor-halvings
    assert model.backbone.linear.weight.shape == (256, flat)
