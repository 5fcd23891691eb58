"""Linear-chain CRF over words, for the span (NER) head. Training only: decoding is
app.model.decode (numpy)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CRF(nn.Module):
    """Linear-chain CRF over words. Training only: decoding is app.model.decode (numpy)."""

    def __init__(self, n: int):
        super().__init__()
        self.trans = nn.Parameter(torch.zeros(n, n))  # [from, to]
        self.start = nn.Parameter(torch.zeros(n))
        self.end = nn.Parameter(torch.zeros(n))

    def nll(self, em: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Mean NLL. em (B, W, n), tags (B, W), mask (B, W) bool with mask[:, 0] true."""
        B, W, _ = em.shape
        maskf = mask.float()
        # Score of the gold path.
        gold = self.start[tags[:, 0]] + em[:, 0].gather(1, tags[:, :1]).squeeze(1)
        for t in range(1, W):
            step = self.trans[tags[:, t - 1], tags[:, t]] + em[:, t].gather(
                1, tags[:, t : t + 1]
            ).squeeze(1)
            gold = gold + step * maskf[:, t]
        last = tags.gather(1, (mask.sum(1) - 1).unsqueeze(1)).squeeze(1)
        gold = gold + self.end[last]
        # Partition function.
        alpha = self.start + em[:, 0]  # (B, n)
        for t in range(1, W):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + self.trans + em[:, t].unsqueeze(1), dim=1)
            alpha = torch.where(mask[:, t : t + 1], nxt, alpha)
        logz = torch.logsumexp(alpha + self.end, dim=1)
        return (logz - gold).mean()
