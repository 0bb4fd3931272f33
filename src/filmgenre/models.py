"""The models, each readable in one screen: the assignment's CNN and LSTM, then ours.

Each is a function that returns a compiled Keras model; ``registry.MODELS`` names the
function a model is built with, its options, what it reads and its training defaults.
"""

import keras
import numpy as np
from keras import layers, ops
# The step loop Keras's own RNN layers run: private API, checked on the Keras versions that
# tests/test_models.py pins (CHECKED_KERAS).
from keras.src.backend import rnn as step_loop

from filmgenre import config

N_GENRES = len(config.GENRES)
SPEC_METRICS = ["precision", "recall"]


CLASS_WEIGHT_CAP = 10.0  # the largest weight a rare genre's positive films get under --class-weight


@keras.saving.register_keras_serializable(package="filmgenre")
class WeightedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy whose positive term is weighted per genre (``positive_weights``).

    With plain cross-entropy a genre on 2 % of the films costs little when never predicted;
    weighting its positives by about negatives / positives makes a miss cost what a false
    alarm does, which pushes probabilities of rare genres up (macro-F1 is their mean).
    """

    def __init__(self, positive_weights, name: str = "weighted_binary_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.positive_weights = [float(w) for w in positive_weights]

    def call(self, y_true, y_pred):
        y_pred = keras.ops.clip(y_pred, keras.config.epsilon(), 1 - keras.config.epsilon())
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        weights = keras.ops.convert_to_tensor(self.positive_weights, dtype=y_pred.dtype)
        loss = weights * y_true * keras.ops.log(y_pred) + (1 - y_true) * keras.ops.log(1 - y_pred)
        return -keras.ops.mean(loss, axis=-1)

    def get_config(self) -> dict:
        return super().get_config() | {"positive_weights": self.positive_weights}


def positive_weights(labels, cap: float = CLASS_WEIGHT_CAP) -> list[float]:
    """Per genre, negatives / positives among the training films, between 1 and ``cap``; 1 for an empty genre.

    Frequent genres (Drama, on half the films) keep weight 1; the cap stops a genre with a
    handful of films from dominating the loss.
    """
    positives = np.asarray(labels).sum(axis=0).astype(np.float64)
    ratio = np.divide(len(labels) - positives, positives, out=np.ones_like(positives), where=positives > 0)
    return np.clip(ratio, 1.0, cap).round(4).tolist()


@keras.saving.register_keras_serializable(package="filmgenre")
class LSTM(layers.LSTM):
    """Keras's LSTM (same weights, dropout masks and function) at about 0.6x its training CPU.

    With recurrent dropout Keras computes every step gate by gate (each gate has its own input
    and recurrent dropout masks, fixed over time): 8 small matmuls on kernel slices taken inside
    the step loop, whose gradients are scattered back step by step. The input half does not
    depend on the previous step, so here it is one product per gate over all steps before the
    loop, and the kernels are split once; the loop keeps only the recurrent half. Without
    recurrent dropout Keras's own fused path (cuDNN on a GPU) is used.
    """

    def inner_loop(self, sequences, initial_state, mask, training=False):
        cell = self.cell
        if not cell.recurrent_dropout:
            return super().inner_loop(sequences, initial_state, mask, training)

        def gate_masks(rate, masks):  # RNN.call drew them before the loop
            return masks if training and 0 < rate < 1 else [None] * 4

        input_masks = gate_masks(cell.dropout, cell.get_dropout_mask(sequences[:, 0, :]))
        recurrent_masks = gate_masks(cell.recurrent_dropout, cell.get_recurrent_dropout_mask(initial_state[0]))
        biases = ops.split(cell.bias, 4) if cell.use_bias else [0.0] * 4
        gate_inputs = ops.concatenate([
            ops.matmul(sequences if m is None else sequences * ops.expand_dims(m, 1), kernel) + bias
            for m, kernel, bias in zip(input_masks, ops.split(cell.kernel, 4, axis=1), biases)
        ], axis=-1)
        recurrent_kernels = ops.split(cell.recurrent_kernel, 4, axis=1)

        def step(x, states):
            h, c = states
            x_i, x_f, x_c, x_o = ops.split(x, 4, axis=-1)
            r_i, r_f, r_c, r_o = [ops.matmul(h if m is None else h * m, kernel)
                                  for m, kernel in zip(recurrent_masks, recurrent_kernels)]
            c = (cell.recurrent_activation(x_f + r_f) * c
                 + cell.recurrent_activation(x_i + r_i) * cell.activation(x_c + r_c))
            h = cell.recurrent_activation(x_o + r_o) * cell.activation(c)
            return h, [h, c]

        return step_loop(step, gate_inputs, initial_state, go_backwards=self.go_backwards, mask=mask,
                         unroll=self.unroll, input_length=sequences.shape[1],
                         zero_output_for_mask=self.zero_output_for_mask, return_all_outputs=self.return_sequences)


def with_class_weights(model: keras.Model, labels, jit_compile: bool | str = "auto") -> keras.Model:
    """The model recompiled (same optimizer settings and metrics) with ``WeightedBinaryCrossentropy``."""
    learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    return _compile(model, learning_rate, jit_compile, loss=WeightedBinaryCrossentropy(positive_weights(labels)))


def _compile(model: keras.Model, learning_rate: float, jit_compile: bool | str = "auto",
             loss: str | keras.losses.Loss = "binary_crossentropy") -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=loss,
        metrics=[keras.metrics.Precision(name="precision"), keras.metrics.Recall(name="recall"),
                 keras.metrics.AUC(name="auc")],
        jit_compile=jit_compile,
    )
    return model


def spec_cnn(image_size: int = config.IMAGE_SIZE, jit_compile: bool | str = "auto") -> keras.Model:
    """The assignment's poster CNN (Functional API): 3,464,601 parameters at 64x64."""
    conv = dict(kernel_size=3, padding="same", activation="relu")
    inputs = keras.Input(shape=(image_size, image_size, 3), name="Input")
    x = layers.Conv2D(16, strides=2, name="Conv0", **conv)(inputs)
    x = layers.Dropout(0.2, name="Drop1")(x)
    x = layers.Conv2D(32, name="Conv1", **conv)(x)
    x = layers.Conv2D(32, name="Conv2", **conv)(x)
    x = layers.Dropout(0.2, name="Drop2")(x)
    x = layers.MaxPooling2D(name="Pool1")(x)
    x = layers.Conv2D(64, name="Conv3", **conv)(x)
    x = layers.Conv2D(64, name="Conv4", **conv)(x)
    x = layers.Dropout(0.2, name="Drop3")(x)
    x = layers.MaxPooling2D(name="Pool2")(x)
    x = layers.Conv2D(128, name="Conv5", **conv)(x)
    x = layers.Conv2D(128, name="Conv6", **conv)(x)
    x = layers.Dropout(0.2, name="Drop4")(x)
    x = layers.MaxPooling2D(name="Pool3")(x)
    x = layers.Flatten(name="Flat")(x)
    x = layers.Dense(1024, activation="relu", name="FC1")(x)
    x = layers.Dropout(0.5, name="Drop5")(x)
    x = layers.Dense(1024, activation="relu", name="FC2")(x)
    x = layers.Dropout(0.5, name="Drop6")(x)
    outputs = layers.Dense(N_GENRES, activation="sigmoid", dtype="float32", name="Output")(x)
    return _compile(keras.Model(inputs, outputs, name="spec_cnn"), 1e-4, jit_compile)


def spec_lstm(encoder: layers.TextVectorization, jit_compile: bool | str = "auto") -> keras.Model:
    """The assignment's overview BiLSTM (Sequential): 4,303,129 trainable parameters.

    The course text says 265 embedding units in one place and 256 in another; 256 is used.
    The encoder is the first layer, so the saved model carries its vocabulary. ``LSTM`` is
    Keras's, computed with less CPU.
    """
    model = keras.Sequential([
        keras.Input(shape=(1,), dtype="string", name="overview"),
        encoder,
        layers.Embedding(len(encoder.get_vocabulary()), 256, mask_zero=True, name="Embedding"),
        layers.Bidirectional(LSTM(256, dropout=0.5, recurrent_dropout=0.2, return_sequences=True), name="BiLSTM1"),
        layers.Bidirectional(LSTM(128, dropout=0.5, recurrent_dropout=0.2), name="BiLSTM2"),
        layers.Dense(128, activation="relu", name="Dense"),
        layers.Dropout(0.8, name="Dropout"),
        layers.Dense(N_GENRES, activation="sigmoid", dtype="float32", name="Output"),
    ], name="spec_lstm")
    return _compile(model, 1e-3, jit_compile)


def poster_cnn(image_size: int = 96, jit_compile: bool | str = "auto") -> keras.Model:
    """Ours for posters: augmentation, batch-normalised conv blocks, global average pooling.

    Global pooling replaces the spec CNN's 2M-weight dense layer (its main overfitting
    source), augmentation multiplies the 4,418 training posters, and a strided stem keeps
    96-pixel inputs about as cheap per epoch as three spec epochs.
    """
    augment = keras.Sequential([
        layers.RandomFlip("horizontal"),
        layers.RandomTranslation(0.06, 0.06),
        layers.RandomZoom(0.1),
        layers.RandomContrast(0.15),
    ], name="Augment")
    inputs = keras.Input(shape=(image_size, image_size, 3), name="Input")
    x = augment(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="Stem")(x)
    x = layers.BatchNormalization(name="StemNorm")(x)
    x = layers.ReLU(name="StemReLU")(x)
    for block, filters in enumerate([64, 128, 256], start=1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"Conv{block}")(x)
        x = layers.BatchNormalization(name=f"Norm{block}")(x)
        x = layers.ReLU(name=f"ReLU{block}")(x)
        x = layers.MaxPooling2D(name=f"Pool{block}")(x)
    x = layers.GlobalAveragePooling2D(name="GlobalPool")(x)
    x = layers.Dropout(0.4, name="Drop")(x)
    outputs = layers.Dense(N_GENRES, activation="sigmoid", dtype="float32", name="Output")(x)
    return _compile(keras.Model(inputs, outputs, name="poster_cnn"), 1e-3, jit_compile)


def glove_lstm(encoder: layers.TextVectorization, jit_compile: bool | str = "auto") -> keras.Model:
    """Ours for overviews: a small BiLSTM over pretrained GloVe 6B 50-d word vectors.

    4,418 overviews are too few to learn 2.5M embedding weights from scratch (the spec
    LSTM's); GloVe brings word meaning learnt from 6B tokens, fine-tuned here.
    """
    from filmgenre import features

    vocabulary = encoder.get_vocabulary()
    embedding = layers.Embedding(len(vocabulary), 50, mask_zero=True, name="GloVe")
    model = keras.Sequential([
        keras.Input(shape=(1,), dtype="string", name="overview"),
        encoder,
        embedding,
        layers.SpatialDropout1D(0.2, name="WordDrop"),
        layers.Bidirectional(layers.LSTM(64, dropout=0.2), name="BiLSTM"),
        layers.Dropout(0.4, name="Dropout"),
        layers.Dense(N_GENRES, activation="sigmoid", dtype="float32", name="Output"),
    ], name="glove_lstm")
    embedding.set_weights([features.glove_vectors(vocabulary)])
    return _compile(model, 2e-3, jit_compile)


def encoder_head(train_features, name: str, hidden: int = 256, dropout: float = 0.6,
                 learning_rate: float = 3e-4, loss: str = "binary_crossentropy",
                 jit_compile: bool | str = "auto") -> keras.Model:
    """Ours, on a frozen pretrained encoder: a small head over its vectors (``encoders.cache.ENCODERS``).

    The encoder turns every film into one vector once (``encoders.cache.embeddings``); only this
    head trains, in about a second an epoch. The Normalization layer is adapted on the
    training vectors, so the saved model standardises its input itself. For the poster
    features, chosen on validation (3 seeds): a hidden layer of 256 with dropout 0.6 had
    the lowest validation loss and the best macro-F1 at a micro-F1 as good as a linear
    head's (``hidden=0``) or an L2-regularised one's. On several encoders' vectors side by side it
    is a concatenation fusion (``concat_fusion``). ``loss``: a Keras loss name.
    """
    standardise = layers.Normalization(name="Standardise")
    standardise.adapt(train_features)
    inputs = keras.Input(shape=(train_features.shape[1],), name="features")
    x = layers.Dropout(dropout, name="Drop")(standardise(inputs))
    if hidden:
        x = layers.Dense(hidden, activation="relu", name="Hidden")(x)
        x = layers.Dropout(dropout, name="HiddenDrop")(x)
    outputs = layers.Dense(N_GENRES, activation="sigmoid", dtype="float32", name="Output")(x)
    return _compile(keras.Model(inputs, outputs, name=name), learning_rate, jit_compile, loss)


def effnet_finetune(train_maps, hidden: int = 256, dropout: float = 0.6, learning_rate: float = 1e-4,
                    jit_compile: bool | str = "auto") -> keras.Model:
    """Ours for posters, fine-tuned: EfficientNet-Lite0's last MBConv block and 1x1 head train on.

    The frozen trunk's 7x7x192 maps of every poster are computed once (``encoders.cache.embeddings``),
    so an epoch costs only the top block; mirrored maps stand in for mirrored posters
    (augmentation). The top starts from the ImageNet weights, its BatchNorm statistics stay
    frozen (4,418 posters are too few to re-estimate them), and the learning rate is low so
    the pretrained filters move a little rather than being overwritten.
    """
    from filmgenre.encoders.efficientnet import poster_trunk_and_top

    _, top = poster_trunk_and_top()
    for layer in top.layers:  # each layer: the encoder was frozen as a whole, layer by layer
        layer.trainable = not isinstance(layer, layers.BatchNormalization)
    inputs = keras.Input(shape=train_maps.shape[1:], name="maps")
    x = layers.RandomFlip("horizontal", name="Mirror")(inputs)
    x = top(x)
    x = layers.Dropout(dropout, name="Drop")(x)
    x = layers.Dense(hidden, activation="relu", name="Hidden")(x)
    x = layers.Dropout(dropout, name="HiddenDrop")(x)
    outputs = layers.Dense(N_GENRES, activation="sigmoid", dtype="float32", name="Output")(x)
    return _compile(keras.Model(inputs, outputs, name="effnet_finetune"), learning_rate, jit_compile)


@keras.saving.register_keras_serializable(package="filmgenre")
class Columns(layers.Layer):
    """Columns ``start:stop`` of each row: one encoder's part of vectors laid side by side."""

    def __init__(self, start: int, stop: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.start, self.stop = start, stop

    def call(self, inputs):
        return inputs[:, self.start:self.stop]

    def get_config(self) -> dict:
        return super().get_config() | {"start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package="filmgenre")
class GatedMix(layers.Layer):
    """``z * poster + (1 - z) * text``, unit by unit: the mix a gated multimodal unit outputs."""

    def call(self, inputs):
        gate, poster, text = inputs
        return gate * poster + (1 - gate) * text


def gated_fusion(train_vectors, hidden: int = 256, dropout: float = 0.6, learning_rate: float = 3e-4,
                 loss: str = "binary_crossentropy", jit_compile: bool | str = "auto") -> keras.Model:
    """Ours, a learned fusion: a gated multimodal unit (GMU, Arevalo et al. 2017) on both frozen encoders.

    A film's vector is its poster features then its overview embedding, side by side
    (``inputs.vectors_of``). Each part gets a tanh branch; a sigmoid gate read from both parts
    decides, hidden unit by hidden unit and film by film, how much of the poster branch to take
    (``Gate``: 1 = poster only, 0 = text only). Unlike the late fusion's one weight, the mix can
    differ per film and per unit, and the gate's mean over a genre's films says how much that
    genre leans on the poster (``gates``). Chosen on validation (``analysis/fusion_grid.py``,
    ``results/fusion_grid.csv``): dropout 0.6 had the lowest validation loss and the best sum of
    validation micro- and macro-F1 of 0.4, 0.5 and 0.6. ``loss`` is a Keras loss name.
    """
    from filmgenre.encoders.cache import ENCODERS

    poster_width = ENCODERS["poster_features"].shape[0]
    standardise = layers.Normalization(name="Standardise")
    standardise.adapt(train_vectors)
    inputs = keras.Input(shape=(train_vectors.shape[1],), name="features")
    both = layers.Dropout(dropout, name="Drop")(standardise(inputs))
    poster_branch = layers.Dense(hidden, activation="tanh", name="PosterBranch")(Columns(0, poster_width, name="Poster")(both))
    text_branch = layers.Dense(hidden, activation="tanh", name="TextBranch")(Columns(poster_width, name="Text")(both))
    gate = layers.Dense(hidden, activation="sigmoid", name="Gate")(both)
    fused = GatedMix(name="Mix")([gate, poster_branch, text_branch])
    x = layers.Dropout(dropout, name="MixDrop")(fused)
    outputs = layers.Dense(N_GENRES, activation="sigmoid", dtype="float32", name="Output")(x)
    return _compile(keras.Model(inputs, outputs, name="gmu"), learning_rate, jit_compile, loss)
