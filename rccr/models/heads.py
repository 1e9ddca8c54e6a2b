"""RCCR's projection head: backbone features to L2-normalised embeddings (docs/method.md#loss).

Two 1x1 convolutions with a ReLU between, then L2 normalisation over channels, so that
``q.k`` in the contrastive loss is a cosine similarity. 128-d at output stride 8.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["ProjectionHead"]


class ProjectionHead(nn.Module):
    """1x1 conv -> ReLU -> 1x1 conv -> L2 normalisation over channels.

    Args:
        in_channels: channels of the backbone features.
        hidden: channels of the hidden layer; ``in_channels`` if None.
        out_dim: embedding dimension (128 in the paper's code).
    """

    def __init__(self, in_channels: int, hidden: int | None = None, out_dim: int = 128) -> None:
        super().__init__()
        hidden = in_channels if hidden is None else hidden
        self.proj = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_dim, kernel_size=1),
        )

    def forward(self, features: Tensor) -> Tensor:
        """Embed ``features (B, C, h, w)`` as unit vectors ``(B, out_dim, h, w)``."""
        return F.normalize(self.proj(features), dim=1)
