"""The private-branch encoder (Domain Separation Networks): the shared columns are the base encoder's, the private
columns its own branch's, and gradients of one part never reach the other's weights."""

from __future__ import annotations

import pytest
import torch

from disco.models.factory import build_encoder
from disco.models.private import PrivateBranchEncoder

COLUMNS = [1, 4]


def make() -> PrivateBranchEncoder:
    torch.manual_seed(0)
    enc = build_encoder("private_branch", base="conv64", base_kwargs={"in_channels": 3, "latent_dim": 6}, columns=COLUMNS,
                        in_channels=3)  # fmt: skip
    assert isinstance(enc, PrivateBranchEncoder)
    return enc


def test_columns_come_from_the_base_encoder_and_the_branch() -> None:
    enc = make()
    x = torch.rand(5, 3, 64, 64)
    mean, logvar = enc(x)
    base_mean, base_logvar = enc.shared(x)
    shared = [0, 2, 3, 5]
    torch.testing.assert_close(mean[:, shared], base_mean[:, shared])
    torch.testing.assert_close(logvar[:, shared], base_logvar[:, shared])
    torch.testing.assert_close(mean[:, COLUMNS], enc.private(x))
    assert torch.equal(logvar[:, COLUMNS], torch.zeros(5, 2))
    scripted = torch.jit.script(enc)  # disco export scripts it
    torch.testing.assert_close(scripted(x)[0], mean)


def test_gradients_stay_in_their_branch() -> None:
    enc = make()
    x = torch.rand(4, 3, 64, 64)
    mean, _ = enc(x)
    private_loss = mean[:, COLUMNS].pow(2).sum()
    shared_params = list(enc.shared.parameters())
    grads = torch.autograd.grad(private_loss, shared_params + list(enc.private.parameters()), allow_unused=True)
    assert all(g is None or not g.any() for g in grads[: len(shared_params)])
    assert any(g is not None and g.abs().sum() > 0 for g in grads[len(shared_params) :])
    mean, _ = enc(x)
    shared_loss = mean[:, [0, 2, 3, 5]].pow(2).sum()
    grads = torch.autograd.grad(shared_loss, list(enc.private.parameters()), allow_unused=True)
    assert all(g is None or not g.any() for g in grads)


@pytest.mark.parametrize("pool", ["style", "logstyle"])
def test_style_pool_is_the_instance_statistics_of_each_layer(pool: str) -> None:
    """``pool="style"``: per-channel mean and (unbiased) std of each ReLU'd conv map, checked by a loop over channels;
    ``logstyle``: their logarithms (+ 1e-3)."""
    torch.manual_seed(0)
    enc = build_encoder("private_branch", base="conv64", base_kwargs={"in_channels": 3, "latent_dim": 6}, columns=COLUMNS,
                        in_channels=3, width=4, pool=pool)  # fmt: skip
    assert isinstance(enc, PrivateBranchEncoder)
    x = torch.rand(3, 3, 64, 64)
    enc.requires_grad_(False)
    stat_pool, linear = enc.private[0], enc.private[1]
    h1 = torch.relu(stat_pool.convs[0](x))
    h2 = torch.relu(stat_pool.convs[1](h1))
    expected = []
    for h in (h1, h2):
        means = [[float(h[i, c].mean()) for c in range(h.shape[1])] for i in range(3)]
        stds = [[float(h[i, c].flatten().std()) for c in range(h.shape[1])] for i in range(3)]
        expected.append(torch.tensor(means))
        expected.append(torch.tensor(stds))
    stats = torch.cat(expected, dim=1)
    if pool == "logstyle":
        stats = torch.log(stats + 1e-3)
    assert stats.shape == (3, 6 * 4)
    torch.testing.assert_close(stat_pool(x), stats, rtol=1e-5, atol=1e-6)
    mean, _ = enc(x)
    torch.testing.assert_close(mean[:, COLUMNS], linear(stats), rtol=1e-5, atol=1e-6)
    # the statistics do not depend on where the content is: a shift by a multiple of the total stride (4), away from
    # the borders
    img = torch.zeros(1, 3, 64, 64)
    img[:, :, 10:20, 10:20] = 1.0
    moved = torch.roll(img, shifts=(24, 28), dims=(2, 3))
    torch.testing.assert_close(stat_pool(img), stat_pool(moved), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.jit.script(enc)(x)[0], mean)


def test_unknown_pool_is_refused() -> None:
    with pytest.raises(ValueError, match="pool"):
        PrivateBranchEncoder("conv64", {"in_channels": 1, "latent_dim": 4}, [3], pool="max")


def test_grey_world_divides_each_channel_by_its_mean_and_ignores_a_cast() -> None:
    """A hand-made 2×2 image: each channel divided by its own mean; an image times a colour per channel gives the same
    result (Buchsbaum's grey world); an all-black channel stays 0."""
    from disco.models.colour import GreyWorld

    img = torch.tensor([[[0.2, 0.4], [0.6, 0.8]], [[0.1, 0.1], [0.1, 0.5]], [[0.0, 0.0], [0.0, 0.0]]])[None]
    expected = torch.tensor([[[0.4, 0.8], [1.2, 1.6]], [[0.5, 0.5], [0.5, 2.5]], [[0.0, 0.0], [0.0, 0.0]]])[None]
    grey = GreyWorld()
    torch.testing.assert_close(grey(img), expected)
    cast = torch.tensor([0.8, 1.2, 0.9])[None, :, None, None]
    torch.testing.assert_close(grey(img * cast), expected)
    with pytest.raises(ValueError, match="eps"):
        GreyWorld(eps=0.0)


def test_greyworld_shared_input_hides_a_cast_from_the_shared_columns_only() -> None:
    """With ``shared_input="greyworld"`` the shared columns are the base encoder's on the grey-world image, so a colour
    cast leaves them unchanged, while the private columns still read the raw image and move with the cast."""
    torch.manual_seed(0)
    enc = build_encoder("private_branch", base="conv64", base_kwargs={"in_channels": 3, "latent_dim": 6}, columns=COLUMNS,
                        in_channels=3, shared_input="greyworld")  # fmt: skip
    assert isinstance(enc, PrivateBranchEncoder)
    x = torch.rand(4, 3, 64, 64) * 0.8 + 0.1
    cast = torch.tensor([[0.8, 1.2, 1.0], [1.1, 0.9, 0.85], [1.0, 1.0, 1.2], [0.9, 0.8, 1.1]])[:, :, None, None]
    shared = [0, 2, 3, 5]
    mean, _ = enc(x)
    torch.testing.assert_close(mean[:, shared], enc.shared(x / x.mean(dim=(2, 3), keepdim=True))[0][:, shared])
    cast_mean, _ = enc(x * cast)
    torch.testing.assert_close(cast_mean[:, shared], mean[:, shared], rtol=1e-4, atol=1e-5)
    assert (cast_mean[:, COLUMNS] - mean[:, COLUMNS]).abs().max() > 1e-3
    torch.testing.assert_close(torch.jit.script(enc)(x)[0], mean)
    with pytest.raises(ValueError, match="shared_input"):
        PrivateBranchEncoder("conv64", {"in_channels": 1, "latent_dim": 4}, [3], shared_input="log")
