"""The learned attribution tagger: BIO tags for SOURCE / CUE / CONTENT from MiniLM token states.

The frozen bundled all-MiniLM-L6-v2 (through `index.embedding`) gives last-layer token states;
a small head (projection + BiGRU + linear, newsqa's own weights in index/weights/quotes/,
loaded by path and sha256-checked) adds casing and punctuation features read from the cased
text through the tokenizer's offsets (the tokenizer is uncased) and tags every word piece.
Tags decode to `index.attribution.Attribution` (content, source, cue) spans, the shape the
rules give, so stage 2 (`to_quotes`, speaker resolution) serves both. Training lives in
qa/eval/train_quotes.py; torch is imported inside.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.artifacts import file_sha256, record_weights, recorded_sha256
from index.attribution import Attribution, CueSyntax, ends_abbreviation
from index.embedding import Embedder, get_embedder, torch_threads
from index.errors import IndexingError
from index.settings import BUNDLED_MODEL
from index.text import wordset

if TYPE_CHECKING:
    from tokenizers import Tokenizer

WEIGHTS_DIR = Path(__file__).parent / "weights" / "quotes"
WEIGHTS_FILE = "tagger.pt"
SHA_FILE = "tagger.pt.sha256"
METADATA_FILE = "metadata.json"
KINDS = ("SOURCE", "CUE", "CONTENT")
TAGS = ("O", *(f"{p}-{k}" for k in KINDS for p in "BI"))
#: Encoder windows in word pieces (special tokens included) and their stride; each token takes
#: its state from the window where it sits farthest from an edge.
WINDOW = 256
STRIDE = 192
OPEN_QUOTES = "“‘«"
CLOSE_QUOTES = "”’»"
QUOTES = OPEN_QUOTES + CLOSE_QUOTES + "\"'"
FEATURES = 12
#: A content links to a cue at most this many characters away (a paragraph costs PARAGRAPH).
MAX_LINK = 300
PARAGRAPH = 150
_SENTENCE_END = re.compile(r"[.!?]$")

Span = tuple[int, int]


class TaggerWeightsError(IndexingError):
    """The tagger's weights are missing, corrupted or do not fit the head."""


@dataclass(frozen=True)
class TaggerConfig:
    """The head's shape: projection width, BiGRU width and layers, dropout while training."""

    projection: int = 128
    hidden: int = 128
    layers: int = 2
    dropout: float = 0.1
    states: int = 384
    features: int = FEATURES

    def to_dict(self) -> dict[str, Any]:
        return {"projection": self.projection, "hidden": self.hidden, "layers": self.layers,
                "dropout": self.dropout, "states": self.states, "features": self.features}


@dataclass(frozen=True)
class Pieces:
    """An article's word pieces: ids and (start, end) character offsets into its text."""

    ids: tuple[int, ...]
    offsets: tuple[Span, ...]


@dataclass(frozen=True)
class TaggedSpan:
    """One decoded span: its kind (SOURCE, CUE, CONTENT) and character offsets."""

    kind: str
    start: int
    end: int


# --- word pieces and encoder states --------------------------------------------------------


def word_pieces(tokenizer: Tokenizer, text: str) -> Pieces:
    """The text's word pieces without special tokens (empty-offset pieces dropped)."""
    encoding = tokenizer.encode(text, add_special_tokens=False)
    kept = [(i, o) for i, o in zip(encoding.ids, encoding.offsets, strict=True) if o[1] > o[0]]
    return Pieces(tuple(i for i, _ in kept), tuple((int(a), int(b)) for _, (a, b) in kept))


def windows(count: int, window: int = WINDOW, stride: int = STRIDE) -> list[Span]:
    """(begin, end) token ranges covering `count` tokens, `window - 2` tokens each."""
    inner = window - 2
    if count <= inner:
        return [(0, count)]
    starts = [*range(0, count - inner, stride), count - inner]
    return [(s, s + inner) for s in sorted(set(starts))]


def owner_window(count: int, ranges: Sequence[Span]) -> np.ndarray:
    """For every token, the index of the window where it sits farthest from an edge."""
    best = np.zeros(count, dtype=np.int64)
    margin = np.full(count, -1, dtype=np.int64)
    for number, (begin, end) in enumerate(ranges):
        positions = np.arange(begin, end)
        here = np.minimum(positions - begin, end - 1 - positions)
        better = here > margin[begin:end]
        best[begin:end][better] = number
        margin[begin:end][better] = here[better]
    return best


def article_states(embedder: Embedder, pieces: Pieces, window: int = WINDOW,
                   stride: int = STRIDE, batch: int = 16) -> np.ndarray:
    """One float32 state per word piece, each from its most central encoder window."""
    count = len(pieces.ids)
    if count == 0:
        return np.zeros((0, 384), dtype=np.float32)
    tokenizer = embedder.tokenizer
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    ranges = windows(count, window, stride)
    owners = owner_window(count, ranges)
    out: np.ndarray | None = None
    for first in range(0, len(ranges), batch):
        group = ranges[first:first + batch]
        states = embedder.token_states([[cls, *pieces.ids[b:e], sep] for b, e in group])
        if out is None:
            out = np.zeros((count, states[0].shape[1]), dtype=np.float32)
        for number, (begin, end), rows in zip(range(first, first + len(group)), group, states,
                                              strict=True):
            mine = np.nonzero(owners[begin:end] == number)[0]
            out[begin + mine] = rows[1 + mine]
    assert out is not None
    return out


@dataclass(frozen=True)
class ChunkStates:
    """Token states an embedding pass computed for one chunk: the embedded text's word-piece
    offsets (special tokens excluded, so row n of `states` is piece n), where the chunk's body
    text starts inside the embedded text (after a title line) and in the article body."""

    offsets: tuple[Span, ...]
    states: np.ndarray
    prefix: int
    body_start: int


def assemble_states(pieces: Pieces, chunks: Sequence[ChunkStates]) -> np.ndarray:
    """One state per body word piece from chunk passes (no second encoder pass): a piece
    several chunks hold takes the state of the chunk where it sits farthest from an edge; a
    piece no chunk holds (a truncated tail) keeps zeros."""
    where = {start: row for row, (start, _) in enumerate(pieces.offsets)}
    width = chunks[0].states.shape[1] if chunks else 384
    out = np.zeros((len(pieces.ids), width), dtype=np.float32)
    margin = np.full(len(pieces.ids), -1, dtype=np.int64)
    for chunk in chunks:
        body = [(n, chunk.body_start + s - chunk.prefix) for n, (s, _) in
                enumerate(chunk.offsets) if s >= chunk.prefix]
        for position, (n, start) in enumerate(body):
            row = where.get(start)
            edge = min(position, len(body) - 1 - position)
            if row is not None and edge > margin[row]:
                out[row], margin[row] = chunk.states[n], edge
    return out


# --- casing and punctuation features -------------------------------------------------------


def inside_quotes(text: str) -> np.ndarray:
    """Per character: 1 inside double quotation marks (marks included); reset at newlines."""
    inside = np.zeros(len(text) + 1, dtype=np.float32)
    depth = 0
    for index, char in enumerate(text):
        if char == "“" or (char == '"' and depth == 0):
            depth = 1
            inside[index] = 1
        elif char == "”" or char == '"':
            inside[index] = 1
            depth = 0
        elif char == "\n":
            depth = 0
        else:
            inside[index] = depth
    return inside


def token_features(text: str, offsets: Sequence[Span]) -> np.ndarray:
    """FEATURES casing/punctuation flags per word piece, read from the cased text."""
    quoted = inside_quotes(text)
    rows = np.zeros((len(offsets), FEATURES), dtype=np.float32)
    previous_end, previous = 0, ""
    for row, (start, end) in enumerate(offsets):
        piece = text[start:end]
        gap = text[previous_end:start]
        glued = row > 0 and not gap and piece[0].isalnum() and previous[-1:].isalnum()
        new_paragraph = row == 0 or "\n" in gap
        sentence_start = new_paragraph or bool(_SENTENCE_END.search(previous.rstrip("”’\"'")))
        rows[row] = (piece[0].isupper(), piece.isupper() and len(piece) > 1, glued,
                     piece in OPEN_QUOTES or (piece == '"' and quoted[end] == 1),
                     piece in CLOSE_QUOTES, quoted[start], new_paragraph, sentence_start,
                     piece[0].isdigit(), not piece[0].isalnum(),
                     piece[0].isupper() and not sentence_start, piece in QUOTES)
        previous_end, previous = end, piece
    return rows


# --- the head ------------------------------------------------------------------------------


def build_head(config: TaggerConfig) -> Any:
    """The head's modules: proj (states + features -> projection), rnn (BiGRU), out (tags)."""
    import torch

    return torch.nn.ModuleDict({
        "proj": torch.nn.Linear(config.states + config.features, config.projection),
        "drop": torch.nn.Dropout(config.dropout),
        "rnn": torch.nn.GRU(config.projection, config.hidden, num_layers=config.layers,
                            batch_first=True, bidirectional=True),
        "out": torch.nn.Linear(2 * config.hidden, len(TAGS)),
    })


def head_logits(head: Any, states: Any, features: Any) -> Any:
    """Tag logits (batch, tokens, TAGS) from states (batch, tokens, 384) and features."""
    import torch

    hidden = head["drop"](torch.nn.functional.gelu(head["proj"](torch.cat([states, features],
                                                                          -1))))
    output, _ = head["rnn"](hidden)
    return head["out"](head["drop"](output))


def save_weights(folder: Path, head: Any, config: TaggerConfig,
                 metadata: dict[str, Any]) -> str:
    """Write tagger.pt, its sha256 file and metadata.json; returns the sha256."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / WEIGHTS_FILE
    state = {k: v.detach().clone().to(torch.float16) for k, v in head.state_dict().items()}
    torch.save(state, target)
    return record_weights(folder, WEIGHTS_FILE, SHA_FILE, METADATA_FILE,
                          {**metadata, "config": config.to_dict(), "tags": list(TAGS)})


# --- decoding ------------------------------------------------------------------------------


def decode_tags(tags: Sequence[int], offsets: Sequence[Span]) -> list[TaggedSpan]:
    """BIO tag ids -> character spans; an I- tag without its B- starts a span (repair)."""
    spans: list[TaggedSpan] = []
    kind, start, end = "", 0, 0
    for tag, (begin, finish) in zip(tags, offsets, strict=True):
        name = TAGS[tag]
        if name != "O" and name[2:] == kind and name[0] == "I":
            end = finish
            continue
        if kind:
            spans.append(TaggedSpan(kind, start, end))
        kind, start, end = ("", 0, 0) if name == "O" else (name[2:], begin, finish)
    if kind:
        spans.append(TaggedSpan(kind, start, end))
    return spans


def distance(text: str, a: Span, b: Span) -> int:
    """Characters between two spans, plus PARAGRAPH for each paragraph break between them."""
    left, right = (a, b) if a[0] <= b[0] else (b, a)
    between = text[min(left[1], right[0]):right[0]]
    return max(right[0] - left[1], 0) + PARAGRAPH * between.count("\n\n")


#: A sentence ends between two spans: a full stop (maybe inside a closing quotation mark)
#: before a capital, or a line break.
_SENTENCE_BREAK = re.compile(r"[.!?][”\"’]?\s+[“\"‘]?[A-Z]|\n")


def _nearest(text: str, span: Span, candidates: Sequence[Span]) -> Span | None:
    scored = [(distance(text, span, c), c) for c in candidates]
    scored = [(d, c) for d, c in scored if d <= MAX_LINK]
    return min(scored)[1] if scored else None


def same_sentence(text: str, a: Span, b: Span, *, past_abbreviations: bool = False) -> bool:
    """Whether no sentence ends between two spans; with `past_abbreviations`, a full stop
    that ends an abbreviation ("Sen. Ted Cruz", "U.S. History") does not end one (the cue
    syntax reads it so, train: +0.14 points speaker match; linking keeps the plain break,
    which wins there)."""
    left, right = (a, b) if a[0] <= b[0] else (b, a)
    # the full stop that ends the left span ("... twice.”") and the capital that starts the
    # right one belong to the break
    begin = max(left[0], left[1] - 2)
    for found in _SENTENCE_BREAK.finditer(text, begin, max(begin, right[0] + 2)):
        if not (past_abbreviations and text[found.start()] == "."
                and ends_abbreviation(text, found.start())):
            return False
    return True


def nearest(text: str, span: Span, candidates: Sequence[Span]) -> Span | None:
    """The nearest candidate in the span's sentence, else the nearest within MAX_LINK (train:
    +1.6 points speaker match, +0.4 content F1 over the nearest alone)."""
    return (_nearest(text, span, [c for c in candidates if same_sentence(text, span, c)])
            or _nearest(text, span, candidates))


# --- post-processing: spans snapped to words and quotation marks ----------------------------

#: A quotation continues the previous speaker's at most this many characters after it.
CONTINUATION_GAP = 200
#: Beside a quotation sharing its cue, an unquoted content of fewer words is dropped.
STRAY_WORDS = 5


def snap_to_words(text: str, span: Span) -> Span:
    """A span widened to whole words (the tagger tags word pieces: "bell" + "ther")."""
    start, end = span
    while 0 < start < len(text) and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while 0 < end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
        end += 1
    return (start, end)


def merge_overlapping(spans: Sequence[Span]) -> list[Span]:
    """Spans in text order, overlapping ones joined (snapping can make two overlap)."""
    out: list[Span] = []
    for span in sorted(spans):
        if out and span[0] < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], span[1]))
        else:
            out.append(span)
    return out


def is_quoted(text: str, span: Span) -> bool:
    """Whether a content starts with a quotation mark (a direct quote)."""
    return text[span[0]:span[0] + 1] in OPEN_QUOTES + "\"'"


def clean_contents(text: str, spans: Sequence[Span]) -> list[Span]:
    """The tagger's content spans snapped to whole words (overlaps joined), each trimmed to
    the quotation it ends in when a colon leads into it (`after_colon`)."""
    return [after_colon(text, span)
            for span in merge_overlapping([snap_to_words(text, span) for span in spans])]


_OPENING = re.compile(r"[“\"‘]")


def after_colon(text: str, span: Span) -> Span:
    """"Nevadans: “This one is for you.”" -> the quotation alone, a direct quote: a content
    whose words before a colon lead into a quotation running to its end (train: +0.4 points
    direct-quote F1; without the colon the words are mostly part of an indirect content)."""
    start, end = span
    inner = text[start:end]
    opening = _OPENING.search(inner)
    if opening is None or opening.start() == 0 or not inner[:opening.start()].rstrip() \
            .endswith(":") or not inner.rstrip(" .,;:!?").endswith(("”", '"', "’")):
        return span
    return (start + opening.start(), end)


def link(text: str, spans: Sequence[TaggedSpan]) -> list[Attribution]:
    """Contents (`clean_contents`) linked to the nearest cue in their sentence (else the
    nearest), cues to the nearest source outside those contents; contents sharing a cue form
    one attribution (a two-part quote around "he said"), the quoted ones apart from the rest
    (`split_quoted`); a quotation continuing a speaker's words takes their source
    (`continue_quotes`); sources are then checked against the cue's syntax
    (`refine_sources`). Tagged sources that name no one ("and", "by") are left out."""
    spans = noun_out_of_cue(text, spans)
    cues = [snap_to_words(text, (s.start, s.end)) for s in spans if s.kind == "CUE"]
    sources = [(s.start, s.end) for s in spans
               if s.kind == "SOURCE" and not names_no_one(text, (s.start, s.end))]
    groups: dict[Span | None, list[Span]] = {}
    for content in clean_contents(text, [(s.start, s.end) for s in spans
                                         if s.kind == "CONTENT"]):
        cue = nearest(text, content, cues)
        groups.setdefault(cue if cue else content, []).append(content)
    out = []
    for key, contents in groups.items():
        cue = key if key in cues else None
        anchor = cue or contents[0]
        outside = [s for s in sources if not any(a <= s[0] and s[1] <= b for a, b in contents)]
        source = nearest(text, anchor, outside)
        for part in split_quoted(text, contents):
            out.append(Attribution(tuple(sorted(part)), (source,) if source else (),
                                   (cue,) if cue else ()))
    return refine_sources(text, continue_quotes(text, sorted(out, key=lambda a: a.content[0])))


#: A tagged source made of one of these alone may have lost its noun to the cue.
_LONE_ARTICLES = wordset("the a an")
#: The verb of a "<noun> <verb>" cue after a tagged article ("the" + "statement said").
_CUE_VERB = re.compile(r"[a-z]+(?:s|ed|d)|said|read|wrote|told|says")
_TWO_WORDS = re.compile(r"([a-z]+)\s+(\S+)")


def noun_out_of_cue(text: str, spans: Sequence[TaggedSpan]) -> list[TaggedSpan]:
    """A source that is an article alone ("the") right before a two-word cue whose second
    word is a verb ("statement said", "petition accuses") takes the cue's noun: the source
    is "the statement", the cue "said" (else the article names no one and the cue has no
    source)."""
    out = list(spans)
    for number, (source, cue) in enumerate(itertools.pairwise(spans)):
        words = _TWO_WORDS.fullmatch(text[cue.start:cue.end])
        if source.kind != "SOURCE" or cue.kind != "CUE" or words is None \
                or text[source.start:source.end].lower() not in _LONE_ARTICLES \
                or text[source.end:cue.start].strip() or words.group(1) in _PHRASE_END \
                or not _CUE_VERB.fullmatch(words.group(2)):
            continue
        out[number] = TaggedSpan("SOURCE", source.start, cue.start + words.end(1))
        out[number + 1] = TaggedSpan("CUE", cue.start + words.start(2), cue.end)
    return out


#: Words a tagged source made of nothing else names no one with ("and", "by the").
_NO_ONE = wordset("""
and or but by of to the a an on in at for from with as that than this is was are were be been
has have had not no so if when while because online legal
""")
_WORD = re.compile(r"\w+")


def names_no_one(text: str, span: Span) -> bool:
    """A tagged source of function words only, or one letter other than "I" (a cut word):
    it names no one, so the cue links to the next source (train: +0.1 points speaker)."""
    start, end = snap_to_words(text, span)
    words = _WORD.findall(text[start:end])
    return not words or (len(words) == 1 and len(words[0]) == 1 and words[0] != "I") \
        or all(w.lower() in _NO_ONE for w in words)


def refine_sources(text: str, found: Sequence[Attribution]) -> list[Attribution]:
    """Each attribution's source checked against its cue's syntax (`CueSyntax`, the
    rules' grammar), in text order, first rule that applies (train, 240 articles: speaker
    match 82.3 -> 85.7): a content with neither cue nor source continues the previous
    attribution's (`orphan_source`); a passive cue takes its "by" agent, a passive without
    one or "Asked" has no source; a participle (", saying") takes the sentence's subject;
    a cue with no source, or one across a full stop, takes the one after "according to" or,
    after "and", the sentence's subject; a cue whose source is in another sentence or after it
    takes the subject written right before it, else (a source across a full stop) no source;
    a relative "who" whose clause closes before the cue is its antecedent (`through_relative`)."""
    syntax = CueSyntax.of(text)
    out: list[Attribution] = []
    for att in found:
        source = orphan_source(text, att, out) if not att.cue and not att.source \
            else syntactic_source(syntax, att)
        if source is not None:
            att = Attribution(att.content, source, att.cue)
        out.append(widen_possessive(text, through_relative(syntax, att)))
    return out


def through_relative(syntax: CueSyntax, att: Attribution) -> Attribution:
    """A relative "who" / "which" source whose clause closes before the cue ("Beck, who has
    ..., clearly intended") replaced by the noun phrase it attaches to
    (`CueSyntax.relative_antecedent`)."""
    if not att.source or not att.cue:
        return att
    antecedent = syntax.relative_antecedent(att.source[0], att.cue[0])
    return att if antecedent is None else Attribution(att.content, (antecedent,), att.cue)


_POSSESSIVES = wordset("his her their its our my")
_PHRASE_END = wordset("""
is are was were be been has have had will would can could should may might must do does did
and or but that who which to of in on at for with by from as the a an this these those
said says say told
""")
#: A possessive source widens over at most this many words ("his top aide").
POSSESSIVE_WORDS = 3


def widen_possessive(text: str, att: Attribution) -> Attribution:
    """A source that is a possessive alone ("his") followed by lower-case words that are
    not its cue ("his attorney said", "according to their attorneys") is the whole noun
    phrase, whom resolution then names or describes, not the possessor (the phrase ends at
    a verb, a function word or a mark, after at most POSSESSIVE_WORDS words)."""
    if not att.source:
        return att
    start, end = att.source[0]
    if text[start:end].lower() not in _POSSESSIVES:
        return att
    limit = min([end + 80, *(cue[0] for cue in att.cue if cue[0] >= end)])
    if not text[end:limit].strip():
        return att  # "his promise of ...": the noun after the possessive is the cue
    stop = end
    for count, word in enumerate(re.finditer(r"\s*([a-z][\w’'-]*)", text[end:limit])):
        if word.start() != stop - end or count >= POSSESSIVE_WORDS \
                or word.group(1) in _PHRASE_END or word.group(1).endswith("ly"):
            break
        stop = end + word.end()
    if stop == end or _contains(att.content, (start, stop)):
        return att
    return Attribution(att.content, ((start, stop), *att.source[1:]), att.cue)


def orphan_source(text: str, att: Attribution, done: Sequence[Attribution]
                  ) -> tuple[Span, ...] | None:
    """A content with no cue and no source, at most two line breaks and CONTINUATION_GAP
    characters after the last attribution with a source: that source (train: +0.8 points)."""
    previous = next((p for p in reversed(done) if p.source), None)
    if previous is None:
        return None
    gap = text[previous.content[-1][1]:att.content[0][0]]
    return previous.source if gap.count("\n") <= 2 and len(gap) < CONTINUATION_GAP else None


def _contains(spans: Sequence[Span], span: Span) -> bool:
    return any(a <= span[0] and span[1] <= b for a, b in spans)


def _overlap(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def syntactic_source(syntax: CueSyntax, att: Attribution) -> tuple[Span, ...] | None:
    """The source the cue's syntax gives instead of the linked one (None: keep it)."""
    if not att.cue:
        return None
    cue, current = att.cue[0], (att.source[0] if att.source else None)

    def usable(span: Span | None) -> Span | None:
        """A candidate outside the content that is not the linked source already."""
        if span is None or _contains(att.content, span) or (
                current is not None and _overlap(current, span)):
            return None
        return span
    agent = syntax.passive_agent(cue)
    if agent:  # "were interpreted by some as a threat": the agent may sit in the content
        return None if current is not None and _overlap(current, agent) else (agent,)
    if current is not None and syntax.has_no_source(cue):
        return ()
    participle = usable(syntax.participle_subject(cue))
    if participle and (current is None or not (same_sentence(syntax.text, current, cue,
                                                             past_abbreviations=True)
                                               and current[0] < cue[0])):
        return (participle,)
    far = current is not None and not same_sentence(syntax.text, current, cue,
                                                    past_abbreviations=True)
    if current is None or far:  # a source across a full stop gives way too (train: +0.08)
        written = usable(syntax.source_after(cue)) or usable(syntax.coordinated_subject(cue))
        if written:
            return (written,)
    subject = usable(syntax.subject_before(cue))
    if subject and (current is None or far or current[0] >= cue[1]):
        return (subject,)
    if far:
        return ()  # a source across a full stop from its cue (train: right 3 times in 76)
    return None


def continue_quotes(text: str, found: Sequence[Attribution]) -> list[Attribution]:
    """A quotation with no cue in its own sentence, right after an attributed quotation
    (same paragraph or the next), continues that speaker's words: it takes their source and
    cue rather than a cue across a full stop (train: +1.7 points direct speaker match)."""
    out: list[Attribution] = []
    for att in found:
        first = att.content[0]
        if out and att.cue and is_quoted(text, first) \
                and not same_sentence(text, first, att.cue[0]):
            previous = out[-1]
            gap = text[previous.content[-1][1]:first[0]]
            if previous.source and is_quoted(text, previous.content[0]) \
                    and gap.count("\n") <= 2 and len(gap) < CONTINUATION_GAP:
                att = Attribution(att.content, previous.source, previous.cue)
        out.append(att)
    return out


def split_quoted(text: str, contents: Sequence[Span]) -> list[list[Span]]:
    """Contents sharing a cue: the quoted ones (a two-part quote) apart from the others, so a
    phrase the tagger put beside a quotation does not hide that it is direct; beside a
    quotation, an unquoted phrase of fewer than STRAY_WORDS words is a stray and is dropped."""
    quoted = [span for span in contents if is_quoted(text, span)]
    other = [span for span in contents if not is_quoted(text, span)]
    if quoted:
        other = [span for span in other if len(text[span[0]:span[1]].split()) >= STRAY_WORDS]
    return [part for part in (quoted, other) if part]


# --- the tagger ----------------------------------------------------------------------------


class QuoteTagger:
    """Tags articles with the committed head; the encoder and the head load lazily, once."""

    def __init__(self, folder: Path = WEIGHTS_DIR, *, embedder: Embedder | None = None,
                 model: str = BUNDLED_MODEL) -> None:
        self.folder = Path(folder)
        self._embedder = embedder
        self.model = model
        self._head: Any = None
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder(self.model)
        return self._embedder

    @property
    def sha256(self) -> str:
        """The recorded sha256 of the weights file."""
        return recorded_sha256(self.folder / SHA_FILE, TaggerWeightsError, "quote tagger")

    @property
    def metadata(self) -> dict[str, Any]:
        path = self.folder / METADATA_FILE
        try:
            return dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise TaggerWeightsError(f"quote tagger metadata unreadable: {path}: {exc}") \
                from exc

    def head(self) -> Any:
        """The head, loaded once after its sha256 is checked."""
        if self._head is None:
            with self._lock:
                if self._head is None:
                    self._head = self._load()
        return self._head

    def _load(self) -> Any:
        import torch

        target = self.folder / WEIGHTS_FILE
        if not target.is_file():
            raise TaggerWeightsError(f"quote tagger weights missing: {target}")
        if file_sha256(target) != self.sha256:
            raise TaggerWeightsError(f"quote tagger weights do not match their sha256: {target}")
        config = TaggerConfig(**self.metadata["config"])
        head = build_head(config)
        try:
            state = torch.load(target, map_location="cpu", weights_only=True)
            head.load_state_dict({k: v.float() for k, v in state.items()})
        except (RuntimeError, KeyError) as exc:
            raise TaggerWeightsError(f"quote tagger weights do not fit the head: {exc}") \
                from exc
        head.eval()
        return head

    def tag_ids(self, text: str, offsets: Sequence[Span], states: np.ndarray) -> list[int]:
        """Tag ids per word piece from token states the caller already has (no encoder pass)."""
        import torch

        if not offsets:
            return []
        features = torch.from_numpy(token_features(text, offsets))[None]
        # one thread: the BiGRU's small steps spin-wait on a second thread (torch_threads)
        with torch_threads(1), torch.inference_mode():
            logits = head_logits(self.head(), torch.from_numpy(states.astype(np.float32))[None],
                                 features)
        return [int(t) for t in logits[0].argmax(-1)]

    def spans(self, text: str) -> list[TaggedSpan]:
        """The decoded SOURCE / CUE / CONTENT spans of a text (one encoder pass over it)."""
        pieces = word_pieces(self.embedder.tokenizer, text)
        states = article_states(self.embedder, pieces)
        return decode_tags(self.tag_ids(text, pieces.offsets, states), pieces.offsets)

    def tag_ids_many(self, items: Sequence[tuple[str, Sequence[Span], np.ndarray]]
                     ) -> list[list[int]]:
        """`tag_ids` of several texts in one padded, packed batch: the BiGRU's steps are
        small, so a batch costs little more than one text (results equal to 1e-5)."""
        import torch

        lengths = [len(offsets) for _, offsets, _ in items]
        if not items or min(lengths) == 0:
            return [self.tag_ids(text, offsets, states) for text, offsets, states in items]
        pad = torch.nn.utils.rnn.pad_sequence
        features = pad([torch.from_numpy(token_features(text, offsets))
                        for text, offsets, _ in items], batch_first=True)
        states = pad([torch.from_numpy(s.astype(np.float32)) for _, _, s in items],
                     batch_first=True)
        head = self.head()
        with torch_threads(1), torch.inference_mode():
            hidden = torch.nn.functional.gelu(head["proj"](torch.cat([states, features], -1)))
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                hidden, lengths, batch_first=True, enforce_sorted=False)
            output, _ = torch.nn.utils.rnn.pad_packed_sequence(head["rnn"](packed)[0],
                                                               batch_first=True)
            tags = head["out"](output).argmax(-1)
        return [[int(t) for t in tags[row, :n]] for row, n in enumerate(lengths)]

    def attributions_from_chunks(self, items: Sequence[tuple[str, Sequence[ChunkStates]]]
                                 ) -> list[list[Attribution]]:
        """(content, source, cue) triples of article bodies, each from the token states its
        chunks' embedding pass computed (`assemble_states`): no encoder pass of its own."""
        pieces = [word_pieces(self.embedder.tokenizer, text) for text, _ in items]
        tags = self.tag_ids_many([(text, p.offsets, assemble_states(p, chunks))
                                  for (text, chunks), p in zip(items, pieces, strict=True)])
        return [link(text, decode_tags(ids, p.offsets))
                for (text, _), p, ids in zip(items, pieces, tags, strict=True)]

    def attributions(self, text: str) -> list[Attribution]:
        """(content, source, cue) triples of a text, sorted by where their content starts."""
        return link(text, self.spans(text))
