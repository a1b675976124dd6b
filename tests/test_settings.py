"""Settings: defaults, NEWSQA_* environment variables, overrides, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.errors import SettingsError
from index.settings import Settings


def test_defaults_keep_everything_under_data() -> None:
    settings = Settings()
    assert settings.data_dir == Path("data")
    for path in (settings.chroma_path, settings.keyword_dir, settings.manifest_path,
                 settings.lock_path, settings.uploads_dir):
        assert path.is_relative_to(settings.data_dir)
    assert settings.host == "127.0.0.1"


def test_environment_then_overrides() -> None:
    env = {"NEWSQA_DATA_DIR": "/tmp/x", "NEWSQA_CHROMA_URL": "http://127.0.0.1:8001",
           "NEWSQA_LLM": "ollama:llama3.1", "NEWSQA_AUTH": "desk:pw", "NEWSQA_TOP_K": "9",
           "UNRELATED": "1"}
    settings = Settings.from_env(env, top_k=3, llm=None)
    assert settings.data_dir == Path("/tmp/x")
    assert settings.chroma_url == "http://127.0.0.1:8001"
    assert settings.llm == "ollama:llama3.1"
    assert settings.auth == "desk:pw"
    assert settings.top_k == 3
    assert settings.to_dict()["auth"] == "desk:***"


@pytest.mark.parametrize("env,message", [
    ({"NEWSQA_TOP_K": "many"}, "NEWSQA_TOP_K"),
    ({"NEWSQA_TOP_K": "0"}, "top_k"),
    ({"NEWSQA_AUTH": "nopassword"}, "USER:PASS"),
    ({"NEWSQA_CHROMA_URL": "localhost:8000"}, "http://"),
    ({"NEWSQA_CHUNK_OVERLAP": "500"}, "chunk_overlap"),
])
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_every_setting_has_help_and_documented_variable() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for name, (env, _default, help_text) in Settings.help().items():
        assert help_text, name
        assert env and env.startswith("NEWSQA_"), name
        assert f"`{env}`" in readme, f"{env} is not documented in README.md"


def test_settings_are_layered_by_owner() -> None:
    layers = Settings.layers()
    assert set(layers) == {"index", "qa", "ui"}
    owned = [name for names in layers.values() for name in names]
    assert sorted(owned) == sorted(Settings.help()), "every setting belongs to exactly one layer"
    assert {"host", "port", "auth"} <= set(layers["ui"])
    assert {"llm", "top_k"} <= set(layers["qa"])
    assert {"data_dir", "embedding_model", "chunk_tokens"} <= set(layers["index"])


def test_a_switch_reads_yes_and_no_and_names_a_bad_value() -> None:
    assert Settings.from_env({"NEWSQA_LLM_CITE_UNCITED": "yes"}).llm_cite_uncited is True
    assert Settings.from_env({"NEWSQA_LLM_CITE_UNCITED": "0"}).llm_cite_uncited is False
    assert Settings.from_env({}).llm_cite_uncited is False
    with pytest.raises(SettingsError, match="NEWSQA_LLM_CITE_UNCITED"):
        Settings.from_env({"NEWSQA_LLM_CITE_UNCITED": "maybe"})
