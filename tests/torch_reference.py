"""EfficientNet-Lite0 in PyTorch, as the weights' own code defines it: the reference that
``encoders.efficientnet.efficientnet_lite0`` must reproduce. Imported only where PyTorch is installed
(the equality test on real posters); the committed ``fixtures/encoder_reference.npz`` holds
its features of synthetic images (and sentence-transformers' MiniLM embeddings of four
sentences) so the equality is checked without PyTorch too.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from filmgenre.encoders.efficientnet import LITE0_STAGES, MEAN, POSTER_FEATURES, STD
from filmgenre.encoders.packages import efficientnet_weights_path


class SameConv(nn.Conv2d):
    """Bias-free Conv2d with TensorFlow's 'SAME' padding (the odd pixel goes bottom/right)."""

    def __init__(self, cin, cout, kernel, stride=1, groups=1):
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)

    def forward(self, x):
        pads = []
        for size, k, s in zip((x.shape[-1], x.shape[-2]), self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _norm(channels):
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    def __init__(self, cin, cout, kernel, stride, expand):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv, self._bn0 = SameConv(cin, mid, 1), _norm(mid)
        self._depthwise_conv, self._bn1 = SameConv(mid, mid, kernel, stride, groups=mid), _norm(mid)
        self._project_conv, self._bn2 = SameConv(mid, cout, 1), _norm(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        self._conv_stem, self._bn0 = SameConv(3, 32, 3, 2), _norm(32)
        self._blocks = nn.ModuleList(
            MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand)
            for repeats, kernel, stride, expand, cin, cout in LITE0_STAGES for i in range(repeats))
        self._conv_head, self._bn1 = SameConv(320, POSTER_FEATURES, 1), _norm(POSTER_FEATURES)
        self._fc = nn.Linear(POSTER_FEATURES, classes)

    def features(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x))).mean(dim=(2, 3))


@torch.no_grad()
def poster_features(images):
    """uint8 (N, H, W, 3) -> (N, 1280) with the PyTorch network and ``torch.load(weights_only=True)``."""
    model = EfficientNetLite0()
    model.load_state_dict(torch.load(efficientnet_weights_path(), map_location="cpu", weights_only=True), strict=True)
    pixels = (torch.from_numpy(images).permute(0, 3, 1, 2).float() - MEAN) / STD
    return model.eval().features(pixels).numpy()
