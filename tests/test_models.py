"""models.toml loading, its error messages, and `codearena models`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codearena.cli import main
from serving.models import ModelsFileError, default_models, load_models

GOOD = """
[[models]]
name = "local-qwen"
backend = "llamacpp"
model = "weights/qwen.gguf"
sha256 = "1D9614638D18024D0FBB36575A15F1302A3ADF044DF10345688EC4F6E1C4FF32"
temperature = 0.2
max_tokens = 256
seed = 7
system_prompt = "Answer with code."
[models.options]
n_ctx = 2048

[[models]]
name = "gpt"
backend = "openai"
model = "gpt-4o-mini"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "CODEARENA_TEST_KEY"
concurrency = 4

[[models]]
name = "gpt-4o-replay"
backend = "replay"
model = "answers/gpt-4o.jsonl"
[models.options]
questions = "answers/question.jsonl"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_pair_when_no_file_is_given(monkeypatch):
    monkeypatch.delenv("CODEARENA_MODELS", raising=False)
    specs = load_models(None)
    assert list(specs) == ["smollm2-135m", "qwen2.5-coder-0.5b"]
    assert all(s.backend == "llamacpp" and s.model.startswith("builtin:") for s in specs.values())
    assert specs == default_models()


def test_file_entries_become_specs_with_paths_relative_to_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("CODEARENA_MODELS", str(path))  # picked up when no path is passed
    specs = load_models()
    assert list(specs) == ["local-qwen", "gpt", "gpt-4o-replay"]
    qwen = specs["local-qwen"]
    assert qwen.model == str(tmp_path / "weights/qwen.gguf")
    assert qwen.options == {"n_ctx": 2048, "sha256": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"}
    assert (qwen.params.temperature, qwen.params.max_tokens, qwen.params.seed) == (0.2, 256, 7)
    assert qwen.system_prompt == "Answer with code."
    gpt = specs["gpt"]
    assert (gpt.base_url, gpt.api_key_env, gpt.concurrency) == ("http://127.0.0.1:9/v1", "CODEARENA_TEST_KEY", 4)
    assert specs["gpt-4o-replay"].options["questions"] == str(tmp_path / "answers/question.jsonl")


@pytest.mark.parametrize(("snippet", "message"), [
    ('name = "a"\nbackend = "llamacpp"\n', r"model #1 \('a'\): field 'model' is required"),
    ('name = "a"\nbackend = "gguf"\nmodel = "x"\n', r"model #1 \('a'\): field 'backend': unknown backend 'gguf'"),
    ('name = "a"\nbackend = "openai"\nmodel = "x"\ntemperature = "hot"\n', r"field 'temperature' must be int or float"),
    ('name = "a"\nbackend = "openai"\nmodel = "x"\ntemprature = 0.1\n', r"unknown field\(s\) temprature"),
    ('name = "a"\nbackend = "openai"\nmodel = "x"\napi_key_env = "sk-abc123-secret"\n',
     r"NAME of an environment variable"),
    ('name = "a"\nbackend = "openai"\nmodel = "x"\ntop_p = 0\n', r"field 'top_p' must be in \(0, 1\]"),
    ('name = "a"\nbackend = "llamacpp"\nmodel = "builtin:llama-70b"\n', r"unknown built-in 'builtin:llama-70b'"),
])
def test_malformed_entry_names_the_entry_and_field(tmp_path, snippet, message):
    path = write(tmp_path, "[[models]]\n" + snippet)
    with pytest.raises(ModelsFileError, match=message):
        load_models(path)


def test_whole_file_errors(tmp_path):
    with pytest.raises(ModelsFileError, match="not found"):
        load_models(tmp_path / "absent.toml")
    with pytest.raises(ModelsFileError, match="not valid TOML"):
        load_models(write(tmp_path, "[[models]\nname="))
    with pytest.raises(ModelsFileError, match="no models"):
        load_models(write(tmp_path, "# empty\n"))
    dup = '[[models]]\nname = "a"\nbackend = "openai"\nmodel = "x"\n'
    with pytest.raises(ModelsFileError, match="model #2: name 'a' is used twice"):
        load_models(write(tmp_path, dup + dup))


def test_cli_lists_models_with_availability_and_reasons(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CODEARENA_TEST_KEY", raising=False)
    assert main(["models", "--models", str(write(tmp_path, GOOD)), "--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"local-qwen", "gpt", "gpt-4o-replay"}
    assert rows["local-qwen"]["available"] is False and "not found" in rows["local-qwen"]["reason"]
    assert rows["gpt"]["available"] is False and "CODEARENA_TEST_KEY" in rows["gpt"]["reason"]
    assert rows["gpt"]["where"] == "http://127.0.0.1:9/v1"
    assert rows["gpt-4o-replay"]["available"] is False

    monkeypatch.setenv("CODEARENA_TEST_KEY", "k")
    assert main(["models", "--models", str(tmp_path / "models.toml")]) == 0
    table = capsys.readouterr().out
    assert "cannot reach http://127.0.0.1:9/v1" in table  # key set now; nothing listens on port 9


def test_cli_builtin_models_are_usable_here(capsys, monkeypatch):
    monkeypatch.delenv("CODEARENA_MODELS", raising=False)
    assert main(["models", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["backend"], r["available"]) for r in rows] == [
        ("smollm2-135m", "llamacpp", True), ("qwen2.5-coder-0.5b", "llamacpp", True)]


def test_cli_malformed_file_exits_2_with_the_problem(tmp_path, capsys):
    path = write(tmp_path, '[[models]]\nname = "a"\nbackend = "openai"\n')
    assert main(["models", "--models", str(path)]) == 2
    assert "field 'model' is required" in capsys.readouterr().err


def test_the_documented_example_parses(tmp_path):
    import serving.models

    doc = serving.models.__doc__
    example = doc.split("::", 1)[1].split("Relative paths", 1)[0]
    text = "\n".join(line[4:] for line in example.splitlines())
    spec = load_models(write(tmp_path, text))["qwen-coder"]
    assert (spec.backend, spec.model, spec.api_key_env) == ("llamacpp", str(tmp_path / "weights/qwen.gguf"),
                                                            "OPENAI_API_KEY")
    assert spec.options == {"n_ctx": 4096, "sha256": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"}
