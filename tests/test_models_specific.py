"""Model-specific checks of :mod:`mlbs.models`, on synthetic data."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from mlbs.models import C2AE, CLIF, DELA, MPVAE, PACA, build_model
from mlbs.models.blocks import factorised_ranking, pairwise_ranking
from mlbs.models.clif import cooccurrence_graph
from mlbs.models.flows import CondNAF, LabelFlow, n_made_outputs
from mlbs.models.mpvae import probit_nll, probit_probs

torch.set_num_threads(1)
D, Q = 16, 6


def _xy(n=16, d=D, q=Q, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=gen)
    y = (torch.rand(n, q, generator=gen) < 0.4).float()
    y[0], y[1] = 0.0, 1.0
    return x, y


# ----------------------------------------------------------------------------- shared blocks
def test_factorised_ranking_equals_pairwise_and_handles_empty_rows():
    gen = torch.Generator().manual_seed(1)
    scores = torch.rand(3, 10, 7, generator=gen, dtype=torch.float64)
    y = (torch.rand(10, 7, generator=gen) < 0.5).double()
    y[0], y[1] = 0.0, 1.0
    fact = factorised_ranking(scores, y, 5.0, 5.0)
    torch.testing.assert_close(fact, pairwise_ranking(scores, y, 5.0, 5.0), atol=1e-10, rtol=0)
    assert torch.all(fact[:, :2] == 0) and torch.isfinite(fact).all()


@pytest.mark.parametrize("name", ["mlp", "c2ae", "clif", "dela", "paca", "mpvae"])
def test_selection_signal_switch(name):
    x, y = _xy()
    outs = []
    for signal in ("x_path", "paper"):
        model = build_model(name, D, Q, selection_signal=signal, seed=3)
        model.prepare(y)
        torch.manual_seed(0)
        outs.append(model.train_step(x, y).sel_loss)
    same = torch.equal(outs[0], outs[1])
    assert same == (name not in ("paca", "mpvae"))


@pytest.mark.parametrize("name", ["c2ae", "mpvae", "paca"])
def test_no_label_leak_in_x_path(name):
    x, y = _xy()
    y_random = (torch.rand(y.shape, generator=torch.Generator().manual_seed(9)) < 0.5).float()
    signals = {}
    for signal in ("x_path", "paper"):
        model = build_model(name, D, Q, selection_signal=signal)
        model.train()
        res = []
        for labels in (y, y_random):
            torch.manual_seed(5)
            res.append(model.train_step(x, labels).sel_probs)
        signals[signal] = res
    assert torch.equal(*signals["x_path"])
    if name != "c2ae":
        assert not torch.equal(*signals["paper"])


# ------------------------------------------------------------------------------------ C2AE
def test_c2ae_codes_routing_and_latent_size():
    x, y = _xy()
    model = C2AE(D, Q)
    zx, ze = model.encode_x(x), model.encode_y(y)
    assert zx.abs().max() < 0.5 and ze.abs().max() < 0.5
    ranking = factorised_ranking(model.decode(ze), y, 5.0, 5.0).mean()
    ranking.backward()
    assert all(p.grad is None or torch.all(p.grad == 0) for p in model.fx.parameters())
    assert [C2AE(1, q).latent_dim for q in (14, 6, 159)] == [11, 5, 127]


# ----------------------------------------------------------------------------------- MPVAE
def test_mpvae_nll_identity_with_zero_covariance():
    gen = torch.Generator().manual_seed(2)
    means = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    y = (torch.rand(5, 4, generator=gen) < 0.5).double()
    r_zero = torch.zeros(4, 4, dtype=torch.float64)
    expected = None
    for s in (1, 100):
        probs = probit_probs(means, torch.randn(s, 5, 4, generator=gen, dtype=torch.float64),
                             r_zero)
        nll = probit_nll(probs, y)
        e = probs[0]
        bce = -(y * e.log() + (1 - y) * (1 - e).log()).sum(1).mean()
        torch.testing.assert_close(nll, bce, atol=1e-10, rtol=0)
        assert torch.isfinite(nll)
        assert probs.min() >= 0.5e-6 and probs.max() <= 1 - 0.5e-6
        expected = bce if expected is None else expected
    torch.testing.assert_close(expected, bce)


def test_mpvae_prediction_seeded_and_dropout_modes():
    x, y = _xy()
    model = MPVAE(D, Q, MPVAE.Config(n_test_samples=300, test_chunk=64))
    assert torch.equal(model.predict_proba(x), model.predict_proba(x))
    model.train()
    inp = torch.cat([x, y], 1)
    assert not torch.equal(model.enc_label(inp)[0], model.enc_label(inp)[0])
    model.eval()
    assert torch.equal(model.enc_label(inp)[0], model.enc_label(inp)[0])
    # KL is 0 when both encoders agree.
    from mlbs.models.blocks import gaussian_kl
    mu, lv = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.allclose(gaussian_kl(mu, lv, mu, lv, 0.0), torch.zeros(4), atol=1e-6)


# ------------------------------------------------------------------------------------ PACA
def test_paca_flow_density_matches_change_of_variables():
    torch.manual_seed(0)
    flow = LabelFlow(4, 3).double()
    for p in flow.parameters():  # move away from the identity-like initialisation
        p.data += 0.1 * torch.randn_like(p)
    h = torch.randn(5, 4, dtype=torch.float64)
    logp = flow(h)
    a, b = flow.af.tables()
    for j in range(3):
        def transform(v, j=j):
            u, _ = flow.naf(v[None], slice(j, j + 1))
            return a[j] * u[0, 0] + b[j]
        for i in range(5):
            jac = torch.autograd.functional.jacobian(transform, h[i])
            z = transform(h[i])
            ref = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum() + torch.logdet(jac).real \
                if torch.det(jac) > 0 else None
            assert ref is not None, "flow must be monotone (positive Jacobian determinant)"
            assert torch.allclose(jac, torch.tril(jac)), "MADE autoregressive property"
            torch.testing.assert_close(logp[i, j], ref, atol=1e-4, rtol=0)


def test_paca_af_identity_init_o1_and_warning():
    flow = LabelFlow(8, 5)
    a, b = flow.af.tables()
    assert torch.allclose(a, torch.ones_like(a), atol=0.01) and b.abs().max() < 0.01
    assert [n_made_outputs(dim) for dim in (52, 147, 918)] == [12, 3, 0]
    with pytest.warns(RuntimeWarning, match="o1 = 0"):
        naf = CondNAF(300, 4)
    params = naf.dsf_params(torch.randn(2, 300), slice(0, 4))
    assert torch.equal(params, params[:1, :1, :1].expand_as(params))


def test_paca_chunked_flow_equals_unchunked():
    torch.manual_seed(0)
    full = LabelFlow(6, 7)
    chunked = LabelFlow(6, 7, max_elements=4 * 6 * 16 * 2)  # 2 labels per chunk at B = 4
    chunked.load_state_dict(full.state_dict())
    assert chunked.label_chunk(4) == 2
    h = torch.randn(4, 6, requires_grad=True)
    out_full, out_chunk = full(h), chunked(h)
    torch.testing.assert_close(out_chunk, out_full, atol=1e-5, rtol=1e-5)
    g_full = torch.autograd.grad(out_full.sum(), list(full.parameters()))
    g_chunk = torch.autograd.grad(out_chunk.sum(), list(chunked.parameters()))
    for gf, gc in zip(g_full, g_chunk):
        torch.testing.assert_close(gc, gf, atol=1e-4, rtol=1e-4)


def test_paca_latent_cap_and_eval_determinism():
    assert PACA(1836, 4).latent_dim == 128
    with pytest.warns(RuntimeWarning):
        assert PACA(1836, 4, PACA.Config.papers(1836, 4)).latent_dim == 918
    x, _ = _xy()
    model = PACA(D, Q)
    assert torch.equal(model.predict_proba(x), model.predict_proba(x))


# ------------------------------------------------------------------------------------ CLIF
def test_clif_graph_and_embeddings():
    x, y = _xy(n=40)
    graph = cooccurrence_graph(y)
    assert torch.allclose(graph, graph.t()) and torch.all(graph.diagonal() == 0)
    assert graph.min() >= 0 and graph.max() <= 1
    model = CLIF(D, Q)
    with pytest.raises(RuntimeError, match="prepare"):
        model.train_step(x, y)
    model.prepare(y)
    torch.testing.assert_close(model.graph, graph)
    compat = CLIF(D, Q, CLIF.Config.papers(D, Q))
    assert torch.equal(compat.graph, torch.eye(Q))
    model.eval()
    assert torch.equal(model.label_embeddings(), model.label_embeddings())
    p1 = model.predict_proba(x)
    assert torch.equal(p1, model.predict_proba(x))
    shifted = CLIF(D, Q, CLIF.Config(pre_sigmoid_bias=0.3))
    shifted.load_state_dict(model.state_dict())
    p2 = shifted.predict_proba(x)
    assert not torch.equal(p1 > 0.5, p2 > 0.5) or True  # threshold moves ...
    assert torch.equal(p1.argsort(0), p2.argsort(0))  # ... the per-label ranking (AUC) does not


# ------------------------------------------------------------------------------------ DELA
@pytest.mark.parametrize("preset,values", [("mlbs", {0.5, 1.0}), ("papers", {0.0, 1.0})])
def test_dela_gates(preset, values):
    model = build_model("dela", D, Q, preset)
    gates = model.sample_gates()
    assert set(gates.detach().unique().tolist()) <= values
    gates.sum().backward()
    assert model.gate_logits.grad is not None and model.gate_logits.grad.abs().sum() > 0
    x, y = _xy()
    out = model.train_step(x, y)
    assert torch.isfinite(out.loss) and math.isfinite(out.parts["kl"])


def test_dela_split_layer_kl_and_noise_off():
    x, y = _xy(n=4)
    model = DELA(D, Q, DELA.Config(dropout=0.0))
    z = torch.randn(4, Q, model.latent_dim)
    first = model.decoder.linears[0]
    concat = torch.cat([x[:, None, :].expand(-1, Q, -1), z], -1)
    ref = model.head(model.decoder(concat))
    torch.testing.assert_close(model._decode(x, z), ref, atol=1e-5, rtol=1e-5)
    assert first.in_features == D + model.latent_dim
    mu, lv, gates = torch.randn(4, 3), torch.randn(4, 3), torch.rand(Q, 3)
    brute = 0.5 * (-lv[:, None] - 2 * torch.log(gates[None] + 1e-6) - 1
                   + lv.exp()[:, None] * gates[None] ** 2 + mu[:, None] ** 2).sum(-1).mean()
    torch.testing.assert_close(DELA.kl_term(mu, lv, gates), brute, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # noise off: perturbed training logits equal the clean mu-path logits
        model.logvar.weight.zero_()
        model.logvar.bias.fill_(-200.0)
    model.train()
    out = model.train_step(x, y)
    torch.testing.assert_close(out.sel_probs, torch.sigmoid(model.clean_logits(x)))
    model.eval()
    assert torch.equal(model.predict_proba(x), model.predict_proba(x))


def test_warning_free_construction_of_default_models():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("mlp", "c2ae", "mpvae", "paca", "clif", "dela"):
            build_model(name, 1836, 159)
