"""hwgen.mixed.sensitivity: Hutchinson traces, Hessian × perturbation sensitivities, measured drops.

* the Hutchinson traces (weights and activations, through ``sensitivity``) match the exact
  Hessian traces of a tiny model (``torch.autograd.functional.hessian``);
* ``Q_b`` is the quantiser the Brevitas model of ``hwgen.mixed.quantize`` uses, bit for bit;
* the perturbation is 0 for weights already on the grid, and the sensitivity decreases with
  the bit width (from 2 bits for weights: 1-bit sign × mean|W| is finer than 2-bit max-abs);
* on the digits MLP: the run time (printed, well under 60 s) and the sensitivities predict
  the measured one-layer accuracy drops (rank correlation);
* errors name the layer.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
from digits import load_digits_split, seed_everything, train
from digits_mlp import float_mlp

pytestmark = pytest.mark.filterwarnings("ignore")


def tiny(seed):
    """A 5-4-3 MLP with BatchNorm and ReLU in eval mode, a batch of 24 inputs and labels."""
    import torch
    import torch.nn as nn
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3)).eval()
    with torch.no_grad():
        model[1].running_mean.normal_(0, 0.3)
        model[1].weight.uniform_(0.5, 1.5)
    return model, torch.randn(24, 5), torch.randint(0, 3, (24,))


def exact_traces(model, x, y):
    """Exact Hessian traces of the mean cross-entropy w.r.t. fc0's and fc1's weights and the ReLU output."""
    import torch
    import torch.nn.functional as F
    from torch.autograd.functional import hessian
    from torch.func import functional_call

    def loss_of(name):
        return lambda w: F.cross_entropy(functional_call(model, {name: w}, (x,)), y)

    traces = {name: float(torch.diagonal(hessian(loss_of(name), p).reshape(p.numel(), p.numel())).sum())
              for name, p in (("0.weight", model[0].weight.detach()), ("3.weight", model[3].weight.detach()))}
    with torch.no_grad():
        a = model[:3](x)
    h = hessian(lambda a: F.cross_entropy(model[3](a), y), a)
    traces["act"] = float(torch.diagonal(h.reshape(a.numel(), a.numel())).sum())
    return traces


def test_hutchinson_matches_exact_hessian():
    import torch

    from hwgen.mixed import hutchinson_trace, sensitivity
    seed = 11
    print(f"seed {seed}")
    model, x, y = tiny(seed)
    exact = exact_traces(model, x, y)
    s = sensitivity(model, x, y, bits=(4,), n_samples=1000, seed=seed)
    est = {"0.weight": (s.weight_trace["fc0"] * 20, s.weight_trace_err["fc0"] * 20),
           "3.weight": (s.weight_trace["fc1"] * 12, s.weight_trace_err["fc1"] * 12),
           "act": (s.act_trace["fc0"] * 96, s.act_trace_err["fc0"] * 96)}
    print("exact", exact, "\nHutchinson (mean, standard error)", est)
    for k, (mean, err) in est.items():
        assert abs(mean - exact[k]) <= min(4 * err, 0.1 * abs(exact[k])), k
    # the standard error it reports covers the deviation
    loss = torch.nn.functional.cross_entropy(model(x), y)
    (mean,), (err,) = hutchinson_trace(loss, [model[0].weight], 400, torch.Generator().manual_seed(seed))
    assert 0 < err < 0.1 * abs(exact["0.weight"]) and abs(mean - exact["0.weight"]) <= 4 * err


def test_seeded_and_restores_mode():
    from hwgen.mixed import sensitivity
    model, x, y = tiny(3)
    model.train()
    a, b = (sensitivity(model, x, y, n_samples=8, seed=5) for _ in range(2))
    c = sensitivity(model, x, y, n_samples=8, seed=6)
    assert model.training and a.table == b.table and a.table != c.table and a.seed == 5


def test_q_is_the_brevitas_quantiser():
    """weight_quant(W, b) = the quantised weights of the Brevitas layer quantize() makes, at every b."""
    import torch

    from hwgen.mixed import quantize
    from hwgen.mixed.sensitivity import weight_quant
    torch.manual_seed(0)
    fmodel = float_mlp().eval()
    for b in range(1, 9):
        q = quantize(fmodel, {"fc0": (b, 4), "fc1": (9 - b, 4), "fc2": (b, None)})
        for f, ql in zip([m for m in fmodel if isinstance(m, torch.nn.Linear)], [q[1], q[4], q[7]]):
            want = ql.quant_weight().value.detach()
            got = weight_quant(f.weight.detach(), int(ql.quant_weight().bit_width))
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)


def test_perturbation_is_zero_on_the_grid():
    import torch

    from hwgen.mixed import sensitivity
    from hwgen.mixed.sensitivity import act_quant
    model, x, y = tiny(2)
    g = torch.Generator().manual_seed(2)
    for b in (1, 2, 3, 5, 8):
        top = 2 ** (b - 1) - 1 if b > 1 else 1
        k = torch.randint(-top, top + 1, (4, 5), generator=g).float()
        k[0, 0] = top
        if b == 1:
            k[k == 0] = 1
        with torch.no_grad():
            model[0].weight.copy_(k * 2.0 ** -4)
        other = 8 if b < 8 else 7
        s = sensitivity(model, x, y, bits=(b, other), n_samples=4)
        assert s.weight["fc0"][b] == 0.0 and s.weight["fc1"][b] > 0
        assert s.weight["fc0"][other] != 0 or b < 3      # ±max (1 bit) and ternary grids lie on every finer grid
        levels = torch.arange(2 ** b).float() * 0.5 ** 3
        torch.testing.assert_close(act_quant(levels, b, True, float(levels.max())), levels, rtol=0, atol=0)


@pytest.fixture(scope="module")
def digits_mlp():
    seed_everything(0)
    xtr, ytr, xte, yte = load_digits_split(0)
    return train(float_mlp(), xtr, ytr, epochs=8, seed=0), xtr, ytr, xte, yte


def test_digits_mlp_sensitivity(digits_mlp):
    """Monotone in the bit width, fast, and predicts the measured one-layer accuracy drops."""
    from scipy.stats import spearmanr

    from hwgen.mixed import measured_drop, sensitivity
    model, xtr, ytr, xte, yte = digits_mlp
    s = sensitivity(model, xtr, ytr, n_samples=64, seed=0)
    print(s.format())
    print(f"digits MLP: sensitivity of {len(xtr)} training images, 3 layers × 7 bit widths, 64 samples: {s.seconds:.2f} s")
    for name, omega in s.weight.items():
        ws = [omega[b] for b in (2, 3, 4, 5, 6, 8)]
        assert all(p > q > 0 for p, q in zip(ws, ws[1:])), name
        assert s.weight_trace[name] > 0
    for name, omega in s.act.items():
        acts = [omega[b] for b in (1, 2, 3, 4, 5, 6, 8)]
        # coarser never less; strictly so where the grid is coarse (the measured floor may tie fine grids)
        assert all(p >= q > 0 for p, q in zip(acts, acts[1:])) and acts[0] > acts[1] > acts[2] > acts[3], name
    assert list(s.act) == ["fc0", "fc1"] and set(s.table["fc2"]) == {(w, None) for w in (1, 2, 3, 4, 5, 6, 8)}
    assert s.table["fc1"][(3, 2)] == s.weight["fc1"][3] + s.act["fc1"][2]

    pred, drop = [], []
    for name in s.weight:
        for b in (1, 2, 3, 4):
            pred.append(s.weight[name][b])
            drop.append(measured_drop(model, xte, yte, name, b, None))
            if name in s.act:
                pred.append(s.act[name][b])
                drop.append(measured_drop(model, xte, yte, name, None, b, calib=xtr))
    rho = spearmanr(pred, drop).statistic
    print("Ω vs measured accuracy drop:", [f"{p:.2g}:{d:.3f}" for p, d in zip(pred, drop)], f"Spearman {rho:.2f}")
    assert rho > 0.6
    assert measured_drop(model, xte, yte, "fc1", 8, 8) == pytest.approx(0.0, abs=0.01)


def test_measured_drop_restores_the_model(digits_mlp):
    import torch

    from hwgen.mixed import measured_drop
    model, _, _, xte, yte = digits_mlp
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        out = model(torch.from_numpy(xte))
    assert measured_drop(model, xte, yte, "fc0", 1, 1) > 0.05
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with torch.no_grad():
        assert torch.equal(model(torch.from_numpy(xte)), out)


@pytest.mark.parametrize("fn, args, kw, message", [
    ("measured_drop", ("fc9", 4, 4), {}, "layer 'fc9' is not in the model; layers are fc0, fc1"),
    ("measured_drop", ("fc1", 4, 4), {}, "layer fc1: activation bits must be None for the last layer"),
    ("measured_drop", ("fc0", 0, 4), {}, "layer fc0: weight bits must be 1..8, not 0"),
    ("sensitivity", (), {"bits": (2, 9)}, "sensitivity: bits must be whole numbers 1..8, not [9]"),
    ("sensitivity", (), {"n_samples": 0}, "sensitivity: n_samples must be a whole number ≥ 1, not 0"),
])
def test_errors(fn, args, kw, message):
    import hwgen.mixed
    from hwgen.errors import HwgenError
    model, x, y = tiny(0)
    with pytest.raises(HwgenError) as e:
        getattr(hwgen.mixed, fn)(model, x, y, *args, **kw)
    assert str(e.value).startswith(message), str(e.value)


def test_cnn_sensitivity():
    """Convolutions, 4-D activations (the ReLU output before max-pooling) and the final Linear."""
    from digits_cnn import float_cnn

    from hwgen.mixed import measured_drop, sensitivity
    seed_everything(1)
    xtr, ytr, _, _ = load_digits_split(0)
    x, y = xtr[:256].reshape(-1, 1, 8, 8), ytr[:256]
    model = float_cnn().eval()
    s = sensitivity(model, x, y, bits=(2, 4, 8), n_samples=16, seed=1)
    print(s.format())
    assert list(s.weight) == ["conv0", "conv1", "fc0"] and list(s.act) == ["conv0", "conv1"]
    assert s.act_trace["conv0"] > 0 and s.weight_trace["conv1"] > 0
    assert all(s.act[n][2] >= s.act[n][4] > s.act[n][8] > 0 for n in s.act)     # untrained: the measured floor may tie
    assert -1 <= measured_drop(model, x, y, "conv1", 2, 2) <= 1


def test_one_bit_activation_is_measured():
    """Ω_a(l, 1) ≥ twice the loss increase of binarising activation l alone, computed here by hand:
    the hidden ReLU output A replaced by c·[A > 0], c its mean positive value (every bit width has
    this floor; 1 bit is where the second-order estimate falls furthest short)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from hwgen.mixed.sensitivity import sensitivity
    torch.manual_seed(5)
    print("seed 5")
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.rand(64, 6)
    y = (x[:, :3] * torch.tensor([1.0, 2.0, 3.0])).argmax(dim=1)         # a task it learns
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        a = torch.relu(model[0](x))
        c = a[a > 0].mean()
        rise = float(F.cross_entropy(model[2]((a > 0).float() * c), y) - F.cross_entropy(model(x), y))
    s = sensitivity(model, x.numpy(), y.numpy(), bits=(1, 2), n_samples=8, seed=0)
    assert rise > 0
    assert s.act["fc0"][1] >= 2 * rise * (1 - 1e-5)
    assert s.table["fc0"][(2, 1)] == s.weight["fc0"][2] + s.act["fc0"][1]
