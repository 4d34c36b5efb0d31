"""Images kept as uint8 on the training device, gathered by index tensors and converted to float there.

No per-item Python and no DataLoader workers: a batch is one ``index_select`` on the device plus a cast.
"""

from __future__ import annotations

import torch


class DeviceImages:
    """A uint8 image tensor ``(N, C, H, W)`` resident on ``device``.

    The tensor may be a channels-last view of the file's array; it is moved to the device as it is (no copy on CPU).
    """

    def __init__(self, images: torch.Tensor, device: torch.device | str = "cpu") -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"DeviceImages needs uint8 (N, C, H, W) images, got {images.dtype} {tuple(images.shape)}")
        self.device = torch.device(device)
        self.images = images if images.device == self.device else images.to(self.device)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def nbytes(self) -> int:
        return self.images.numel() * self.images.element_size()

    def gather(self, index: torch.Tensor) -> torch.Tensor:
        """Float images ``(B, C, H, W)`` in [0, 1] of the rows in ``index`` (a long tensor on any device)."""
        rows = self.images.index_select(0, index.to(self.device))
        return rows.to(torch.float32).div_(255.0).contiguous()
