"""Build keys: what each trained model and each encoder cache is built from, for `make`.

A model's key covers its registry entry (build function, options, training settings), the
code it runs (its build function in ``models`` with every definition of that module it
uses, ``train.train``, ``inputs``' loading, batching and building, ``features``), its input's key (the
prepared posters at its size, the films table, or the encoder cache's key, which covers
the encoder's code and weights) and the split. An encoder's key is its cache key.
Code is read as syntax with docstrings left out, so comments and prose do not count.

`filmgenre keys` (run by every `make`, also by `make -n`) writes each key to a stamp file
(``models/keys/<model>.json``, ``data/processed/keys/<input>.json``) only when it changed,
and the Makefile's targets depend on those stamps: adding or changing one model retrains
that model alone, and `make -n all` lists exactly what would rebuild. The key of the list
of models (``models/keys/registry.json``) makes evaluate run again when a model leaves.

A stamp also remembers the key its target (the model, or the encoder's ``.encoded`` mark) was
last built from: an edit tried and reverted before anything rebuilt (`make -n all` in between
writes the tried key) brings the key back to it, and the stamp is then dated just before
the target, so `make` rebuilds nothing.
"""

import ast
import json
import os
from pathlib import Path

from filmgenre import config, dataset, files, inputs, registry
from filmgenre.encoders import cache as encoder_cache

PACKAGE = Path(__file__).parent
# What every model's training runs besides its build function: these definitions (and what they use
# of their module), or a whole module (None).
TRAINING_CODE = {"train.py": ("train",), "inputs.py": ("load", "batches", "build"), "features.py": None}


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


def module_digest(path: Path) -> str:
    """A module's code as syntax, docstrings and comments left out."""
    return files.digest(ast.dump(_without_docstrings(ast.parse(path.read_text(encoding="utf-8")))))


def definition_digest(path: Path, *names: str) -> str:
    """The code of top-level definitions ``names`` of a module and of every top-level definition of
    that module they use, directly or not: editing one model's build function changes its key alone."""
    tree = _without_docstrings(ast.parse(path.read_text(encoding="utf-8")))
    definitions = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            definitions[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    definitions[target.id] = node
    for name in names:
        if name not in definitions:
            raise KeyError(f"{path.name} defines no {name!r}")
    used, todo = set(), list(names)
    while todo:
        current = todo.pop()
        if current in used:
            continue
        used.add(current)
        todo += [node.id for node in ast.walk(definitions[current])
                 if isinstance(node, ast.Name) and node.id in definitions and node.id not in used]
    return files.digest(*[ast.dump(definitions[n]) for n in sorted(used)])


def model_parts(name: str) -> dict:
    """Each part of model ``name``'s key: the registry entry, the code, the input, the split."""
    spec = registry.MODELS[name]
    splits = config.paths().splits
    return {
        "entry": files.digest(spec.settings()),
        "code": files.digest(definition_digest(PACKAGE / "models.py", spec.build),
                             *[module_digest(PACKAGE / module) if names is None else
                               definition_digest(PACKAGE / module, *names) for module, names in TRAINING_CODE.items()],
                             config.GENRES, config.SEED, config.BATCH_SIZE),
        "input": inputs.input_key(spec),
        "split": files.sha256_cached(splits)[:16] if splits.exists() else "none",
    }


def encoder_parts(reads: str) -> dict:
    try:
        return {"cache": encoder_cache.cache_key(encoder_cache.ENCODERS[reads])}
    except dataset.DatasetError:  # not prepared yet
        return {"cache": "unprepared"}


def stamp_paths() -> dict[str, Path]:
    where = config.paths()
    stamps = {f"model {name}": where.models / "keys" / f"{name}.json" for name in registry.MODELS}
    stamps |= {f"encoder {reads}": where.processed / "keys" / f"{reads}.json" for reads in encoder_cache.ENCODERS}
    stamps["registry"] = where.models / "keys" / "registry.json"
    return stamps


def current_parts(stamp: str) -> dict:
    kind, _, name = stamp.partition(" ")
    if kind == "model":
        return model_parts(name)
    if kind == "encoder":
        return encoder_parts(name)
    return {"models": files.digest(sorted(registry.MODELS))}


def built_target(stamp: str) -> Path | None:
    """The file `make` builds from a stamp (the Makefile's rules), or None for the registry's."""
    kind, _, name = stamp.partition(" ")
    if kind == "model":
        return registry.model_path(name)
    if kind == "encoder":
        return config.paths().processed / f"{name}.encoded"
    return None


def write_keys(log=print) -> list[str]:
    """Write every stamp whose key changed (and only those: `make` compares their times); one line
    per change saying what changed. Returns the stamps written."""
    written, paths = [], stamp_paths()
    for folder in {path.parent for path in paths.values()}:  # stamps of models no longer in the registry
        for orphan in set(folder.glob("*.json")) - set(paths.values()) if folder.is_dir() else ():
            orphan.unlink()
    for stamp, path in paths.items():
        parts = current_parts(stamp)
        try:
            recorded = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        except (ValueError, UnicodeDecodeError):  # a damaged stamp: rewritten, so its target rebuilds
            recorded = None
        if isinstance(recorded, dict) and recorded.get("parts") == parts:
            continue
        if isinstance(recorded, dict) and isinstance(recorded.get("parts"), dict):
            changed = [part for part in parts if recorded["parts"].get(part) != parts[part]]
            why = f"{', '.join(changed)} changed"
        else:
            why = "no key recorded yet"
        key, target = files.digest(parts), built_target(stamp)
        built = recorded.get("built") if isinstance(recorded, dict) else None
        if target is not None and target.exists() and isinstance(recorded, dict) \
                and target.stat().st_mtime >= path.stat().st_mtime:
            built = recorded.get("key")  # the target is up to date with the key being replaced
        files.write_json(path, {"key": key, "parts": parts} | ({"built": built} if built else {}))
        if built == key and target is not None and target.exists():
            built_at = target.stat().st_mtime
            os.utime(path, (built_at - 1, built_at - 1))
            log(f"keys: {stamp}: {why}, back to what {files.relative(target)} was built from (nothing rebuilds)")
            continue
        written.append(stamp)
        log(f"keys: {stamp}: {why}")
    return written
