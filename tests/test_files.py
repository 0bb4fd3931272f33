import json

from filmgenre import files


def test_an_entry_replaces_only_itself_within_its_section(tmp_path):
    path = tmp_path / "bench.json"
    files.merge_json(path, "prepare", {"64px": {"seconds": 2.0}})
    files.merge_json_entry(path, "train", "cnn", {"epochs": 40})
    files.merge_json_entry(path, "train", "lstm", {"epochs": 10})
    files.merge_json_entry(path, "train", "cnn", {"epochs": 39})
    assert json.loads(path.read_text()) == {"prepare": {"64px": {"seconds": 2.0}},
                                            "train": {"cnn": {"epochs": 39}, "lstm": {"epochs": 10}}}
