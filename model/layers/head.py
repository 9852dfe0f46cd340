"""The head: global average pool -> FC (with bias) to the class logits.

With ``fq`` (``fixed_point`` flag) the FC weights are fake-quantised as in the export; in eval
mode the logits are computed exactly as the integer export's (float64, rounded to its grid).
"""

import torch
import torch.nn.functional as F
from torch import nn

from bincount.model.layers.fake_quant import fq_round, fq_weight
from bincount.model.export.folding import head_fold

__all__ = ["Head"]


class Head(nn.Module):
    """``fc(mean over H, W of x)``: ``[B, C, H, W] -> [B, num_classes]``."""

    def __init__(self, in_channels=512, num_classes=10):
        super().__init__()
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.fc = nn.Linear(in_channels, num_classes)
        self.fq = None

    def forward(self, x):
        if self.fq is None:
            return self.fc(x.mean(dim=(2, 3)))
        if self.training:
            return F.linear(x.mean(dim=(2, 3)), fq_weight(self.fc.weight, self.fq.real_w_bits),
                            self.fc.bias)

        f = self.fq
        r = head_fold(self, x.shape[2] * x.shape[3], f)
        v = x.double().sum(dim=(2, 3)) @ torch.as_tensor(r["wq"]).T + torch.as_tensor(r["bq"])
        return fq_round(v, f.logit_frac, f.logit_bits).to(x.dtype)
