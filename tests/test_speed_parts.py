"""The FLOPs model (model/flops.py) against a hand count and against torch's own FLOP counter, and the embed
path's speed changes against the vectors they must not change (issue 13)."""

from __future__ import annotations

import pytest
import torch

from itemtower.model import ItemTower, TowerConfig, TowerSizes
from itemtower.model.flops import Flops, forward_flops, train_step_flops


def test_forward_flops_hand_count():
    cfg = TowerConfig(d_model=8, n_heads=2, n_blocks=1, ffn_mult=2, sem_dim=4, value_bag=True)
    F, T, M, D = 3, 5, 2, 8
    S, H = 1 + T, 2
    mha = 2 * F * D * D + 2 * S * D * 2 * D + 4 * F * S * D + 2 * F * D * D
    folded = 8 * F * D * D + 4 * H * F * S * D  # q, W_k fold, W_v after, out; scores and sum per head over D
    ffn = 2 * F * D * 2 * D * 2
    bags = 2 * F * M * D + 2 * T * D + 2 * F * M * D + 2 * T * 4 + 2 * F * M * 4
    f = forward_flops(cfg, F, T, M)
    assert (f.attention, f.ffn, f.bags) == (min(mha, folded), ffn, bags) and folded < mha
    assert f.total == folded + ffn + bags
    assert forward_flops(cfg, F, T, M, attention_form="mha").attention == mha


def test_forward_flops_linear_in_text_length_and_pool():
    cfg = TowerConfig()
    f = [forward_flops(cfg, 20, t).total for t in (32, 80, 128)]
    assert f[2] - f[1] == pytest.approx(f[1] - f[0])  # linear in T (past ~25 tokens, where the folded form wins)
    assert f[2] > 1.1 * f[1]  # the text's share grows with it
    text_only = forward_flops(TowerConfig(pool="text"), 20, 128)
    assert text_only.attention == text_only.ffn == 0 and text_only.total < f[2] / 50
    with pytest.raises(ValueError, match="text_len"):
        forward_flops(cfg, 20, -1)


def test_train_step_is_six_forwards_plus_head_and_loss():
    cfg = TowerConfig()
    fwd = forward_flops(cfg, 20, 100, 1)
    step = train_step_flops(cfg, 20, 100, 1, proj_dim=128, batch_size=256)
    h = cfg.h_dim
    assert step.head == 6 * (2 * h * h + 2 * h * 128)
    assert step.attention == 6 * fwd.attention and step.ffn == 6 * fwd.ffn
    assert step.loss == pytest.approx(3 * 2 * 512 ** 2 * 128 / 256)
    with_distill = train_step_flops(cfg, 20, 100, 1, batch_size=256, distill_batch=256)
    assert with_distill.total > step.total
    assert (Flops(1, 2, 3) + Flops(1, 1, 1)).scaled(2).total == 18


def test_flops_match_torch_flop_counter():
    """torch counts the matmuls it runs (mm/addmm/bmm); ours must agree exactly, in both attention forms. For
    nn.MultiheadAttention's form its counter has no formula for the CPU attention kernel
    (_scaled_dot_product_flash_attention_for_cpu), so the scores and weighted sum, 4 * F * (1 + T) * D per item,
    are left out there; the folded form runs only bmm/matmul, all counted. The bags: the hand count."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = TowerConfig(d_model=32, n_heads=4, sem_dim=0, value_bag=False, pool="query")
    sizes = TowerSizes(n_fields=3, n_values=20, vocab_size=50, n_types=3, max_len=16)
    tower = ItemTower(cfg, sizes).eval()
    B, T = 4, 16
    t_std = torch.randint(3, 20, (B, 3, 1))
    t_re = torch.stack([torch.randint(3, 50, (B, T)), torch.ones(B, T, dtype=torch.long)], 1)
    for form, uncounted in (("mha", 4 * 3 * (1 + T) * 32), ("input", 0)):
        tower.body.blocks[0].form = form
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            tower(t_std, t_re)
        ours = forward_flops(cfg, 3, T, 1, attention_form=form)
        assert counter.get_total_flops() == B * (ours.attention - uncounted + ours.ffn), form


def test_encode_words_same_ids_as_one_tokenizers_call_per_text(tiny_items):
    """The word-at-a-time WordPiece (each distinct word once) gives exactly the ids of one call per text,
    Korean and English, words never seen (UNK, word pieces) and empty texts included."""
    from itemtower.features.tokenizer import TextTokenizer

    texts = [it["title"] for it in tiny_items] + ["", "zzqx 와이드팬츠 unseenword slim-fit 55/66 100%", "   "]
    tok = TextTokenizer.fit(texts[:100], vocab_size=200, min_frequency=2)
    words = tok.pre.batch(texts)
    one_call = [e.ids for e in tok.tok.encode_batch([list(w) for w in words], is_pretokenized=True,
                                                    add_special_tokens=False)]
    assert tok.encode_words(words) == one_call
    assert any(1 in ids for ids in one_call)  # some [UNK]: the case the cache must not change
    assert tok.encode_words([]) == [] and tok.encode_words([[], []]) == [[], []]


def test_embed_vectors_unchanged_by_the_speed_changes():
    """The model issue 11 saved (tests/fixtures/model_v0) embeds its catalog as the code before issue 13 did
    (model_v0_expected.npz), at any batch size: word-at-a-time WordPiece, inference_mode and the batch order
    change no vector beyond float tolerance."""
    from pathlib import Path

    import numpy as np

    from itemtower.artifacts import Embedder
    from itemtower.catalog import read_catalog

    fixtures = Path(__file__).parent / "fixtures"
    items = read_catalog(fixtures / "model_v0_catalog.jsonl").items
    expected = np.load(fixtures / "model_v0_expected.npz")["embeddings"]
    emb = Embedder.load(fixtures / "model_v0")
    for bs, chunk in ((1, 8192), (7, 8192), (256, 8192), (16, 50)):
        np.testing.assert_allclose(emb.embed(items, batch_size=bs, chunk=chunk), expected, atol=1e-5, rtol=0)


def test_embed_to_npz_streams_the_same_vectors(tmp_path):
    """The chunked writer (what `itemtower embed` runs) writes the npz np.savez would: ids in catalog order and
    the same vectors, from a generator too, whole or not at all."""
    from pathlib import Path

    import numpy as np

    from itemtower.artifacts import Embedder
    from itemtower.artifacts.streaming import embed_to_npz
    from itemtower.catalog import read_catalog

    fixtures = Path(__file__).parent / "fixtures"
    items = read_catalog(fixtures / "model_v0_catalog.jsonl").items
    expected = np.load(fixtures / "model_v0_expected.npz")["embeddings"]
    emb = Embedder.load(fixtures / "model_v0")
    seen = []
    n, dim = embed_to_npz(emb, (it for it in items), tmp_path / "sub" / "e.npz", batch_size=8, chunk=50,
                          on_chunk=seen.append)
    assert (n, dim) == expected.shape and seen == [50, 100, 120]
    z = np.load(tmp_path / "sub" / "e.npz")
    assert list(z["ids"]) == [it["id"] for it in items] and z["embeddings"].dtype == np.float32
    np.testing.assert_allclose(z["embeddings"], expected, atol=1e-5, rtol=0)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["e.npz"]  # no temporary left behind
    with pytest.raises(ValueError, match="chunk"):
        embed_to_npz(emb, items, tmp_path / "x.npz", chunk=0)

