"""Images kept as uint8 on the training device, gathered by index tensors and converted to float there.

No per-item Python and no DataLoader workers: a batch is one ``index_select`` on the device plus a cast (and the
domain shift, when one is given: :mod:`disco.data.domains`, keyed by the dataset row, so every source that gathers
through here renders its images in that domain).
"""

from __future__ import annotations

import torch

from disco.data.domains import Domain


class DeviceImages:
    """A uint8 image tensor ``(N, C, H, W)`` resident on ``device``.

    The tensor may be a channels-last view of the file's array (3D Shapes); it is kept in that layout (no copy on CPU)
    and batches come out as contiguous ``(B, C, H, W)`` floats; with a ``domain`` they come out as that domain renders
    the rows (RGB).
    """

    def __init__(self, images: torch.Tensor, device: torch.device | str = "cpu", domain: Domain | None = None) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"DeviceImages needs uint8 (N, C, H, W) images, got {images.dtype} {tuple(images.shape)}")
        self.device = torch.device(device)
        self.domain = domain
        # Gather from contiguous storage: index_select on a strided view would copy the whole tensor each call.
        self.channels_last = not images.is_contiguous() and images.permute(0, 2, 3, 1).is_contiguous()
        storage = images.permute(0, 2, 3, 1) if self.channels_last else images.contiguous()
        self.storage = storage if storage.device == self.device else storage.to(self.device)

    @property
    def images(self) -> torch.Tensor:
        """The uint8 ``(N, C, H, W)`` images (a view of the stored tensor)."""
        return self.storage.permute(0, 3, 1, 2) if self.channels_last else self.storage

    def __len__(self) -> int:
        return int(self.storage.shape[0])

    @property
    def nbytes(self) -> int:
        return self.storage.numel() * self.storage.element_size()

    def gather(self, index: torch.Tensor) -> torch.Tensor:
        """Float images ``(B, C, H, W)`` in [0, 1] of the rows in ``index`` (a long tensor on any device), rendered in
        :attr:`domain` when there is one."""
        index = index.to(self.device)
        rows = self.storage.index_select(0, index)
        if self.channels_last:
            rows = rows.permute(0, 3, 1, 2)
        x = rows.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)
        return x if self.domain is None else self.domain(x, index)

    @property
    def channels(self) -> int:
        """Channels of the gathered images (3 under a domain)."""
        return 3 if self.domain is not None else int(self.storage.shape[3 if self.channels_last else 1])
