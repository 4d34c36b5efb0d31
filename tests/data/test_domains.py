"""Domain shifts against their formulas on hand-made images, and the per-image seeding they rely on."""

from __future__ import annotations

import pytest
import torch

from disco.data.domains import DOMAINS, ShiftDomain, TextureDomain, make_domain, uniform


def _sprite() -> torch.Tensor:
    """Two grey 1×6×6 images: a white 2×3 block on black, and its transpose shifted."""
    x = torch.zeros(2, 1, 6, 6)
    x[0, 0, 1:3, 2:5] = 1.0
    x[1, 0, 3:6, 0:2] = 1.0
    return x


KEYS = torch.tensor([7, 123456])


def test_uniform_is_a_fixed_function_of_key_and_stream() -> None:
    a = uniform(torch.tensor([5, 9, 5]), 4000, seed=1, stream=0)
    assert a.dtype == torch.float32 and a.min() >= 0 and a.max() < 1
    torch.testing.assert_close(a[0], a[2])  # same key, same draws, wherever it sits in the batch
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(a[0], uniform(torch.tensor([5]), 4000, seed=1, stream=1)[0])
    assert not torch.equal(a[0], uniform(torch.tensor([5]), 4000, seed=2, stream=0)[0])
    flat = uniform(torch.arange(50), 4000, seed=0, stream=0).flatten()
    assert abs(float(flat.mean()) - 0.5) < 0.005 and abs(float(flat.var()) - 1 / 12) < 0.002
    first, second = flat[:-1], flat[1:]
    assert abs(float(torch.corrcoef(torch.stack([first, second]))[0, 1])) < 0.01


def test_color_multiplies_by_one_colour_in_half_to_one() -> None:
    x = _sprite()
    out = make_domain("color", seed=3)(x, KEYS)
    c = 0.5 + 0.5 * uniform(KEYS, 3, seed=3, stream=0)
    assert out.shape == (2, 3, 6, 6)
    for b in range(2):
        torch.testing.assert_close(out[b], x[b].expand(3, -1, -1) * c[b][:, None, None])
        assert torch.all(out[b][:, x[b, 0] == 0] == 0)  # background stays black
        assert torch.all((c[b] >= 0.5) & (c[b] <= 1.0))


def test_noisy_adds_uniform_noise_clipped_at_one() -> None:
    x = _sprite()
    out = make_domain("noisy", seed=0)(x, KEYS)
    u = uniform(KEYS, 3 * 36, seed=0, stream=0).view(2, 3, 6, 6)
    torch.testing.assert_close(out, torch.minimum(x.expand(-1, 3, -1, -1) + u, torch.ones(())))
    assert torch.all(out[0][:, 1:3, 2:5] == 1.0)  # the sprite becomes white


def test_texture_is_scream_dsprites_with_a_procedural_texture() -> None:
    x = _sprite()
    domain = TextureDomain(seed=4, texture_size=16)
    out = domain(x, KEYS)
    offset = uniform(KEYS, 2, seed=4, stream=0)
    v = uniform(KEYS, 3, seed=4, stream=1)
    for b in range(2):
        top, left = int(offset[b, 0] * 11), int(offset[b, 1] * 11)  # 16 - 6 + 1 positions
        crop = domain.texture[:, top : top + 6, left : left + 6]
        background = (crop + v[b][:, None, None]) / 2
        expected = torch.where(x[b, 0] > 0.5, 1.0 - background, background)
        torch.testing.assert_close(out[b], expected)
    assert 0.0 <= float(domain.texture.min()) and float(domain.texture.max()) <= 1.0


def test_shift_blurs_casts_and_adds_noise() -> None:
    x = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    out = ShiftDomain(seed=2)(x, KEYS)
    cast = 0.8 + 0.4 * uniform(KEYS, 3, seed=2, stream=0)
    noise = 0.16 * uniform(KEYS, 75, seed=2, stream=1).view(2, 3, 5, 5) - 0.08
    w = [1 / 4, 2 / 4, 1 / 4]
    for b in range(2):
        for c in range(3):
            for i in range(5):
                for j in range(5):
                    blur = sum(
                        w[di] * w[dj] * x[b, c, min(max(i + di - 1, 0), 4), min(max(j + dj - 1, 0), 4)]
                        for di in range(3)
                        for dj in range(3)
                    )
                    ref = min(max(float(blur * cast[b, c] + noise[b, c, i, j]), 0.0), 1.0)
                    assert float(out[b, c, i, j]) == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize("name", list(DOMAINS))
def test_every_domain_keeps_the_image_per_key_and_range(name: str) -> None:
    x = torch.rand(4, 1, 64, 64).round()
    keys = torch.tensor([3, 1, 4, 1])
    out = make_domain(name, seed=0)(x, keys)
    assert out.shape == (4, 3, 64, 64) and out.min() >= 0 and out.max() <= 1
    alone = make_domain(name, seed=0)(x[1:2], keys[1:2])
    torch.testing.assert_close(out[1:2], alone)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown domain 'sepia'"):
        make_domain("sepia")
    with pytest.raises(ValueError, match="1 or 3 channels"):
        make_domain("color")(torch.zeros(1, 2, 4, 4), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="keys"):
        make_domain("color")(torch.zeros(2, 1, 4, 4), torch.zeros(3, dtype=torch.long))
