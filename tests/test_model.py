import math

import pytest
import torch

from itemtower.model import ContrastiveLoss, ItemTower, ProjectionHead, TowerConfig, TowerSizes

SIZES = TowerSizes(n_fields=3, n_values=20, vocab_size=50, n_types=4, max_len=12)


def _cfg(**kw):
    base = dict(d_model=16, n_heads=2, sem_dim=0)
    base.update(kw)
    return TowerConfig(**base)


def _batch(B=5, T=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    t_std = torch.randint(0, 20, (B, 3, 2), generator=g)
    ids = torch.randint(3, 50, (B, T), generator=g)
    types = torch.randint(1, 4, (B, T), generator=g)
    types[0, 4:] = 0  # padding
    ids[0, 4:] = 0
    return t_std, torch.stack([ids, types], 1)


def naive_ntxent(z: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent recomputed with Python loops: for each positive pair (a, p), -log(e^{s_ap} / (e^{s_ap} + sum_neg))."""
    z = torch.nn.functional.normalize(z, dim=1)
    n = len(z)
    losses = []
    for a in range(n):
        for p in range(n):
            if a == p or labels[a] != labels[p]:
                continue
            num = torch.exp(z[a] @ z[p] / temperature)
            den = num + sum(torch.exp(z[a] @ z[k] / temperature) for k in range(n) if labels[k] != labels[a])
            losses.append(-torch.log(num / den))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("temperature", [0.07, 0.3, 1.0])
def test_loss_matches_naive_loop(dtype, temperature):
    """The NT-Xent loss on cat(z1, z2) equals the naive per-pair computation, in float32 and float64."""
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 8, generator=g, dtype=dtype), torch.randn(6, 8, generator=g, dtype=dtype)
    labels = torch.tensor([0, 1, 2, 2, 3, 4])  # items 2 and 3 share a group: positives, not negatives
    want = naive_ntxent(torch.cat([z1, z2]), torch.cat([labels, labels]), temperature)
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    for impl in ("matrix", "pml"):
        got = ContrastiveLoss(temperature, impl=impl)(z1, z2, labels)
        assert abs(float(got) - float(want)) < tol * max(1.0, float(want)), impl


def test_matrix_loss_gradients_match_pml():
    """The O(N^2) loss gives pml NTXentLoss's gradients, with groups in the batch."""
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, 10, 6, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 2, 3, 3, 3, 4, 5, 6])
    grads = []
    for impl in ("matrix", "pml"):
        z1, z2 = z[0].clone().requires_grad_(), z[1].clone().requires_grad_()
        ContrastiveLoss(0.2, impl=impl)(z1, z2, labels).backward()
        grads.append(torch.cat([z1.grad, z2.grad]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-9, rtol=1e-7)


def test_loss_batch_of_one_is_finite():
    """A batch of one item has its two views as the only pair and no negatives: loss 0, not NaN."""
    for impl in ("matrix", "pml"):
        loss = ContrastiveLoss(0.3, impl=impl)(torch.randn(1, 4), torch.randn(1, 4), torch.tensor([0]))
        assert math.isfinite(float(loss)) and float(loss) == pytest.approx(0.0, abs=1e-6)


def test_loss_rejects_bad_temperature():
    """A non-positive temperature is refused at construction."""
    with pytest.raises(ValueError):
        ContrastiveLoss(0.0)


@pytest.mark.parametrize("pool,dim", [("query", 16), ("text", 16), ("query+text", 32)])
def test_tower_output_shape(pool, dim):
    """The tower maps (B, F, M), (B, 2, T) to h of h_dim, for every pooling."""
    tower = ItemTower(_cfg(pool=pool), SIZES).eval()
    h = tower(*_batch())
    assert h.shape == (5, dim) and torch.isfinite(h).all()


def test_tower_handles_empty_text_and_missing_fields():
    """An item with no text tokens and no STD values still gets a finite vector (the null key slot)."""
    tower = ItemTower(_cfg(), SIZES).eval()
    h = tower(torch.zeros(2, 3, 1, dtype=torch.long), torch.zeros(2, 2, 1, dtype=torch.long))
    assert torch.isfinite(h).all()


def test_padding_does_not_change_h():
    """Extra padding at the end of the text changes nothing in eval mode."""
    tower = ItemTower(_cfg(), SIZES).eval()
    t_std, t_re = _batch()
    padded = torch.cat([t_re, torch.zeros(5, 2, 3, dtype=torch.long)], 2)
    torch.testing.assert_close(tower(t_std, t_re), tower(t_std, padded), atol=1e-5, rtol=1e-5)


def test_dropout_makes_two_views_in_train_mode():
    """In train mode two passes differ (SimCSE noise); in eval mode they are equal."""
    tower = ItemTower(_cfg(dropout=0.3), SIZES)
    b = _batch()
    assert not torch.allclose(tower.train()(*b), tower(*b))
    torch.testing.assert_close(tower.eval()(*b), tower(*b))


def test_attention_weights_shape():
    """attention() returns per block (B, F, 1 + T) weights summing to one over keys."""
    tower = ItemTower(_cfg(n_blocks=2), SIZES).eval()
    t_std, t_re = _batch(T=9)
    ws = tower.attention(t_std, t_re)
    assert len(ws) == 2 and ws[0].shape == (5, 3, 10)
    torch.testing.assert_close(ws[0].sum(-1), torch.ones(5, 3))


def test_head_is_not_part_of_tower():
    """The projection head lives outside ItemTower, so exporting the tower cannot carry it."""
    tower = ItemTower(_cfg(), SIZES)
    head = ProjectionHead(tower.cfg.h_dim, 8)
    assert head(tower(*_batch())).shape == (5, 8)
    assert not any("head" in k or "net." in k for k in tower.state_dict())


def test_config_rejects_unknown_keys_and_bad_pool():
    """TowerConfig refuses unknown keys and an unknown pooling."""
    with pytest.raises(ValueError):
        TowerConfig.from_dict({**_cfg().to_dict(), "bogus": 1})
    with pytest.raises(ValueError):
        _cfg(pool="max")


def test_value_bag_carries_std_values_into_the_text_pool():
    """With value_bag, pool="text" sees STD values (a changed value moves h); a masked value (id 1) counts as
    absent (id 0); without value_bag the text pool ignores STD values."""
    t_std, t_re = _batch()
    t_std = t_std.clamp_min(3)  # real values only
    other = t_std.clone()
    other[:, 0, 0] = (other[:, 0, 0] + 1 - 3) % 17 + 3  # another real value in field 0
    masked, absent = t_std.clone(), t_std.clone()
    masked[:, 1, :] = 1
    absent[:, 1, :] = 0
    tower = ItemTower(_cfg(pool="text", value_bag=True), SIZES).eval()
    assert not torch.allclose(tower(t_std, t_re), tower(other, t_re), atol=1e-4)
    torch.testing.assert_close(tower(masked, t_re), tower(absent, t_re))
    plain = ItemTower(_cfg(pool="text", value_bag=False), SIZES).eval()
    torch.testing.assert_close(plain(t_std, t_re), plain(other, t_re))
    assert plain.body.value_weight is None


def test_value_weights_start_at_idf():
    """init_value_weights sets softplus(raw weight) to the given IDF."""
    tower = ItemTower(_cfg(), SIZES)
    idf = torch.linspace(0.5, 5.0, 20)
    tower.body.init_value_weights(idf)
    torch.testing.assert_close(torch.nn.functional.softplus(tower.body.value_weight.weight.squeeze(1)), idf)
