"""Build keys: a stamp is rewritten exactly when what its target is built from changed."""

import dataclasses
import json
import os
import time

from filmgenre import registry, stamps


def test_a_new_or_changed_model_rewrites_its_stamp_alone(trainable, monkeypatch):
    lines = []
    written = stamps.write_keys(log=lines.append)
    assert set(written) == set(stamps.stamp_paths()) and all(line.endswith("no key recorded yet") for line in lines)
    assert stamps.write_keys(log=lines.append) == []  # nothing changed: no stamp touched, `make` rebuilds nothing

    wide = dataclasses.replace(registry.MODELS["minilm_head"], options={"name": "minilm_wide", "hidden": 512})
    monkeypatch.setitem(registry.MODELS, "minilm_wide", wide)
    assert stamps.write_keys(log=lines.append) == ["model minilm_wide", "registry"]

    monkeypatch.setitem(registry.MODELS, "cnn", dataclasses.replace(registry.MODELS["cnn"], epochs=3))
    lines.clear()
    assert stamps.write_keys(log=lines.append) == ["model cnn"] and lines == ["keys: model cnn: entry changed"]
    recorded = json.loads((trainable / "models" / "keys" / "cnn.json").read_text())
    assert recorded["parts"] == stamps.model_parts("cnn")

    monkeypatch.delitem(registry.MODELS, "minilm_wide")
    assert stamps.write_keys(log=lines.append) == ["registry"]
    assert not (trainable / "models" / "keys" / "minilm_wide.json").exists()  # the stamp of a removed model goes


def test_a_description_is_not_part_of_the_key(trainable, monkeypatch):
    stamps.write_keys(log=lambda *_: None)
    monkeypatch.setitem(registry.MODELS, "lstm", dataclasses.replace(registry.MODELS["lstm"], description="reworded"))
    assert stamps.write_keys(log=lambda *_: None) == []


def test_a_changed_split_or_prepared_data_rewrites_the_stamps_that_read_it(trainable):
    stamps.write_keys(log=lambda *_: None)
    splits = trainable / "data" / "splits.csv"
    splits.write_text(splits.read_text() + "\n")
    assert set(stamps.write_keys(log=lambda *_: None)) == {f"model {name}" for name in registry.MODELS}


def test_a_models_code_key_covers_its_build_function_and_what_it_uses(tmp_path):
    module = tmp_path / "models.py"
    source = '''
WIDTH = 8


def helper(x):
    return x + WIDTH


def first(x):
    """A docstring."""
    return helper(x)


def second(x):
    return x * 2
'''
    module.write_text(source)
    before = {name: stamps.definition_digest(module, name) for name in ("first", "second")}
    module.write_text(source.replace('"""A docstring."""', '"""Reworded."""  # and a comment'))
    assert {name: stamps.definition_digest(module, name) for name in before} == before
    module.write_text(source.replace("WIDTH = 8", "WIDTH = 16"))  # used by first, through helper
    after = {name: stamps.definition_digest(module, name) for name in before}
    assert after["first"] != before["first"] and after["second"] == before["second"]
    module.write_text(source.replace("x * 2", "x * 3"))
    assert stamps.definition_digest(module, "second") != before["second"]
    assert stamps.definition_digest(module, "first") == before["first"]


def test_an_edit_reverted_before_anything_rebuilt_rebuilds_nothing(trainable, monkeypatch):
    """`make -n all` writes the key of an edit being tried; reverting it brings the key back to what
    the model was built from, and its stamp is dated before the model again. Had the model been
    retrained with the edit, reverting it retrains it."""
    stamps.write_keys(log=lambda *_: None)
    stamp, model = trainable / "models" / "keys" / "cnn.json", registry.model_path("cnn")
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(b"trained")
    now = time.time()
    os.utime(stamp, (now - 100, now - 100))
    os.utime(model, (now - 50, now - 50))  # trained after its stamp: up to date
    spec = registry.MODELS["cnn"]
    monkeypatch.setitem(registry.MODELS, "cnn", dataclasses.replace(spec, epochs=3))
    assert stamps.write_keys(log=lambda *_: None) == ["model cnn"] and stamp.stat().st_mtime > model.stat().st_mtime

    monkeypatch.setitem(registry.MODELS, "cnn", spec)  # reverted
    lines = []
    assert stamps.write_keys(log=lines.append) == []
    assert lines == ["keys: model cnn: entry changed, back to what models/cnn.keras was built from (nothing rebuilds)"]
    assert stamp.stat().st_mtime < model.stat().st_mtime

    monkeypatch.setitem(registry.MODELS, "cnn", dataclasses.replace(spec, epochs=3))
    stamps.write_keys(log=lambda *_: None)
    edited = stamp.stat().st_mtime
    os.utime(model, (edited, edited))  # retrained with the edit
    monkeypatch.setitem(registry.MODELS, "cnn", spec)
    assert stamps.write_keys(log=lambda *_: None) == ["model cnn"] and stamp.stat().st_mtime > model.stat().st_mtime
