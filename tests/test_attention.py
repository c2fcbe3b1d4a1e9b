"""CrossBlock's input-space attention (model/attention.py, issue 13) against nn.MultiheadAttention's own forward:
same outputs, same head-averaged weights, same gradients, same parameters (state_dict keys), in train mode
(attention dropout 0) and eval mode; saved models embed as before."""

from __future__ import annotations

import copy

import pytest
import torch

from itemtower.model import TowerConfig
from itemtower.model.attention import CrossBlock
from itemtower.model.flops import cross_attention_flops, input_space_is_cheaper


def _inputs(B=5, Fq=6, S=9, D=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, Fq, D, generator=g)
    kv = torch.randn(B, S, D, generator=g)
    pad = torch.rand(B, S, generator=g) < 0.4
    pad[:, 0] = False  # the null slot is never padded (the tower's contract: no empty softmax)
    pad[1, 1:] = True  # one item with no text at all
    return q, kv, pad


def _pair(cfg: TowerConfig, seed: int = 0):
    torch.manual_seed(seed)
    ref = CrossBlock(cfg, form="mha")
    with torch.no_grad():  # non-zero biases: the folded form drops b_k and moves b_v, both must still hold
        ref.attn.in_proj_bias.normal_()
        ref.attn.out_proj.bias.normal_()
    new = copy.deepcopy(ref)
    new.form = "input"
    return ref, new


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("heads", [1, 4])
def test_input_space_matches_multihead_attention(train, heads):
    cfg = TowerConfig(d_model=16, n_heads=heads, attn_dropout=0.0, dropout=0.0)
    ref, new = _pair(cfg)
    ref.train(train), new.train(train)
    q, kv, pad = _inputs()
    out_r, w_r = ref(q, kv, pad, need_weights=True)
    out_n, w_n = new(q, kv, pad, need_weights=True)
    torch.testing.assert_close(out_n, out_r, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w_n, w_r, atol=1e-6, rtol=1e-5)
    assert w_n.shape == (5, 6, 9) and bool((w_n[pad.unsqueeze(1).expand_as(w_n)] == 0).all())
    assert new(q, kv, pad)[1] is None and ref.state_dict().keys() == new.state_dict().keys()


def test_input_space_gradients_match():
    cfg = TowerConfig(d_model=16, n_heads=4, attn_dropout=0.0, dropout=0.0)
    ref, new = _pair(cfg, seed=1)
    grads = []
    for blk in (ref, new):
        blk.train()
        q, kv, pad = _inputs(seed=2)
        q.requires_grad_(True), kv.requires_grad_(True)
        out, _ = blk(q, kv, pad)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append([q.grad, kv.grad] + [p.grad for p in blk.parameters()])
    names = ["q", "kv"] + [n for n, _ in ref.named_parameters()]
    for name, g_r, g_n in zip(names, *grads):
        assert g_r is not None and g_n is not None, name
        torch.testing.assert_close(g_n, g_r, atol=1e-5, rtol=1e-4, msg=lambda m: f"{name}: {m}")


def test_attention_dropout_matches_too():
    """With attention dropout (train mode): nn.MultiheadAttention's weights path (need_weights=True) drops the
    (B*H, F, S) weights with F.dropout, as the folded form drops its (B, H*F, S) ones, so under one seed the masks
    are the same and so must be the outputs (the value bias counted as often as the dropped weights sum to)."""
    cfg = TowerConfig(d_model=16, n_heads=2, attn_dropout=0.3, dropout=0.0)
    ref, new = _pair(cfg)
    ref.train(), new.train()
    q, kv, pad = _inputs()
    outs = []
    for blk in (ref, new):
        torch.manual_seed(5)
        outs.append(blk(q, kv, pad, need_weights=True))
    torch.testing.assert_close(outs[1][0], outs[0][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(outs[1][1], outs[0][1], atol=1e-6, rtol=1e-5)
    new.eval()
    assert not torch.allclose(new(q, kv, pad)[0], outs[1][0])  # dropout did drop something


def test_auto_form_picks_the_cheaper_and_a_bad_form_is_refused():
    assert input_space_is_cheaper(256, 4, 20, 108)  # the defaults: H*F = 80 queries against 2D = 512
    assert not input_space_is_cheaper(16, 8, 200, 100)  # many heads x queries on a narrow model
    assert cross_attention_flops(256, 4, 20, 108) == cross_attention_flops(256, 4, 20, 108, "input")
    assert (cross_attention_flops(256, 4, 20, 108, "input")
            < 0.6 * cross_attention_flops(256, 4, 20, 108, "mha"))
    with pytest.raises(ValueError, match="form"):
        CrossBlock(TowerConfig(d_model=16, n_heads=2), form="fast")
    with pytest.raises(ValueError, match="form"):
        cross_attention_flops(16, 2, 3, 4, "fast")


def test_saved_model_embeds_and_explains_as_with_multihead_attention():
    """tests/fixtures/model_v0 (saved before this change) loads into the new block; vectors and the attention
    explain reads are those of nn.MultiheadAttention's forward."""
    from pathlib import Path

    import numpy as np

    from itemtower.artifacts import Embedder
    from itemtower.catalog import read_catalog
    from itemtower.features.dataset import collate_items

    fixtures = Path(__file__).parent / "fixtures"
    items = read_catalog(fixtures / "model_v0_catalog.jsonl").items
    emb = Embedder.load(fixtures / "model_v0")
    blocks = list(emb.tower.body.blocks)
    assert blocks and all(b.form == "auto" for b in blocks)
    t_std, t_re = collate_items(emb.featurizer.encode(items[:40]), emb.featurizer.max_text_tokens)
    results = {}
    for form in ("input", "mha"):
        for b in blocks:
            b.form = form
        results[form] = (emb.embed(items), emb.tower.attention(t_std, t_re))
    np.testing.assert_allclose(results["input"][0], results["mha"][0], atol=1e-5, rtol=0)
    for w_in, w_mha in zip(results["input"][1], results["mha"][1]):
        torch.testing.assert_close(w_in, w_mha, atol=1e-6, rtol=1e-5)
