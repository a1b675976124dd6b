"""Who said what: attributions (source, cue, content spans) found by rules, then Quote records.

Two stages, so a learned tagger can replace the first:
- `find_attributions(text)`: raw spans in PolNeAR's shape (source, cue, content), from direct
  quotes in quotation marks and their frames ("...," he said), and from cue words in sentences
  ("X said (that) ...", "..., X said", "said X", "according to X, ...", "X told Y that ...").
  Text without punctuation (like the seed) is segmented by capitalisation and cue positions.
- `to_quotes(article, attributions)`: the speaker mention resolved to the fullest name the
  article gives (pronouns by gender and subject, relative "who" through its antecedent,
  titles, surnames, person descriptions; organisations to the organisation, groups to no
  one; "I" to the quote's speaker or the author), the venue or addressee, direct / indirect
  / None.
Pure Python over one token pass: a few milliseconds per article.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import NamedTuple

from index.records import Article, Quote, Span
from index.text import wordset

_TOKEN_OR_BREAK = re.compile(r"\n|''|\w+(?:[-'’]\w+)*|[^\w\s]")
#: Quotation marks: curly, straight, and the doubled apostrophe some wire copy uses ('').
_QUOTE_MARK = re.compile(r"''|[“”\"]")
_OPEN_QUOTES = frozenset({"“", '"', "‘", "''"})
_CLOSE_QUOTES = frozenset({"”", '"', "’", "''"})
_QUOTE_CHARS = frozenset("“”\"„«»‘")  # ‘ opens headline-style quotes (‘I Think She Will.’)

#: Cue words that attribute speech, writing, belief or intention, chosen on PolNeAR train:
#: the lower-case words that are part of a gold cue in at least 35 % of their uses (and at
#: least 6 times), verbs only, plus the seed's own cues and "shows", "showed", "finds" (+0.3
#: content F1 on train; bare "show" is mostly the noun). Belief verbs (believes, thinks,
#: wants) were measured and left out: +0.6 content F1 but -1 point speaker match on train.
CUE_VERBS = wordset("""
shows showed finds
accused accuses accusing acknowledge acknowledged acknowledging added adding adds admits
admitted agreed alleging angered announce announced announcing answered apologized applauded
approved argue argued argues arguing asked asking asks assailed asserted assured attacked
attributed believing bemoaned blamed blasted blasting boasted called calling calls cautioned
celebrated challenged championed chanted chants charged cited cites citing claimed claiming
complained conceded concluded condemned confirmed considered continued convince criticize
criticized criticizing declare declared declaring declined decried deemed defended defending
delivering denied denounced denouncing describe described describes describing disclosed discuss
discussed discussing dismissed dismissing doubt downplayed echoed emailed embraced emphasized
encouraged endorsed endorsing estimated estimates expecting explain explained explaining
explains express expressed forecast found highlighted highlighting hints hoped hopes hoping
identified implied indicate indicated insist insisted insisting insists invoked issued joked
laid lamented learned likened listed mention mentioned mentioning mocked mocking named nominated
noted notes noting offered oppose opposed ordered pleaded pledging pointed pointing portray
portrayed posted praise praised praises praising predict predicted predicting prefer preferred
presented pressed projected promised promises promising promote proposed proposing pushed
pushing questioned questioning quoted railed rattled reads recalled recalling recommended
referenced referred referring refused refusing reiterated rejected remarked remembered reminded
reminding repeated repeating replied reported requested respond responded restricting retweeted
revealed ruled said say saying says seeking seeks sees shouted shown sided signaled slammed
slamming slams sought sounded stated stating stressed suggest suggested suggesting suggests
supported talked talking telling tells thanked thanking thinks threatened threatening titled
told touted touting tweeted tweeting urged urging voiced vowed vowing vows warn warned warning
welcomed wonder wondered worried worry writes writing wrote
""")
#: Cues after which the content follows directly ("Trenta said that ...").
_THAT = wordset("that")
#: Words allowed between a source and its cue ("Conte also said", "he has said").
_BETWEEN = wordset("""
also has had have then later again further earlier previously repeatedly once
categorically firmly personally flatly publicly privately recently would will had
""")
PRONOUNS = wordset("he she they it i we you him her them")
_PERSON_PRONOUNS = wordset("he she him her")
_DETERMINERS = wordset("the a an his her its their our this that these those another some")
_ARTICLES = wordset("the a an his her its their our")
_QUANTIFIERS = wordset("one another several two three some many")
#: Cues that may stand before their source ("said Conte", "added the minister").
_INVERTING = wordset("""
said says added adds wrote writes asked asks noted notes explained continued told tells
insisted warned argued replied responded recalled declared stated concluded observed
""")
#: Cues that may close the content before them in text without punctuation.
_CLOSERS = _INVERTING | wordset("stressed stresses tweeted")
TITLE_WORDS = wordset("""
minister prime deputy defense defence foreign interior economy finance president vice
chancellor general secretary spokesman spokeswoman spokesperson leader chief king queen senator
sen governor gov mayor ambassador envoy commander premier head director judge representative
rep congressman congresswoman councillor councilman councilwoman lawmaker mp
pope prince chairman chairwoman candidate nominee mr mrs ms dr
former attorney justice speaker adviser advisor strategist manager aide official
gen lt col sgt rev
""")
#: Capitalised words that start a sentence rather than a name (for text without full stops).
_STARTERS = wordset("""
the a an it he she they we this that these those there if and but also like with what as on
in at according its his her their our some many however when while after before since
although so yet for meanwhile last earlier later now then still even both each such under
over despite among my your who why how where you
""")
_FUNCTION_WORDS = wordset("""
and or but as if that than because so when while what which who where how whether though
although unless until since to of for by with from say said says think believe
""")
_SUBORDINATORS = wordset("if when while although though as because since unless after before")
_NAME_LINKS = wordset("of de della del di da al bin van von la le el du dos das")
_ADJUNCT_STARTS = wordset("in on at during to from about after before last this")


@dataclass(frozen=True)
class Attribution:
    """One attribution as raw spans into the text: who (source), the cue, and what (content)."""

    content: tuple[Span, ...]
    source: tuple[Span, ...] = ()
    cue: tuple[Span, ...] = ()


class _Tok(NamedTuple):
    start: int
    end: int
    text: str
    lower: str
    cap: bool
    brk: bool  # a line break comes before this token


def _tokens(text: str) -> list[_Tok]:
    """Words and punctuation marks with offsets; `brk` marks the first token of a line."""
    out: list[_Tok] = []
    append = out.append
    brk = False
    for m in _TOKEN_OR_BREAK.finditer(text):
        word = m.group()
        if word == "\n":
            brk = True
            continue
        append(_Tok(m.start(), m.end(), word, word.lower(), word[0].isupper(), brk))
        brk = False
    return out


def is_stripped(text: str) -> bool:
    """Whether the text has (almost) no sentence punctuation, like the seed article."""
    marks = sum(text.count(ch) for ch in ".,?!")
    return marks * 60 < len(text.split())


# ---------------------------------------------------------------- direct quotes


def _is_opening(text: str, i: int) -> bool:
    """Whether the quotation mark at `i` opens a quote (a “ typed after a word and before a
    space closes one: "Apparently not,“ he said")."""
    ch = text[i]
    if ch == "“":
        return not (i > 0 and not text[i - 1].isspace() and text[i - 1] not in "([—–-:"
                    and text[i + 1:i + 2].isspace())
    if ch == "”":
        return False
    return i == 0 or text[i - 1].isspace() or text[i - 1] in "([—–-:"


def _quote_spans(text: str) -> list[Span]:
    """Spans of text in double quotation marks, marks included; a quote left open at a
    paragraph's end continues when the next paragraph opens with a quotation mark."""
    spans: list[Span] = []
    open_at, reopened = -1, -1
    for m in re.finditer(r"''|[“”\"]|\n", text):
        i = m.start()
        if text[i] == "\n":
            if open_at >= 0:
                reopened = _next_paragraph_opens(text, i)
                if reopened < 0:
                    spans.append((open_at, i))
                    open_at = -1
            continue
        if i == reopened:
            continue
        if open_at < 0 and _is_opening(text, i):
            open_at = i
        elif open_at >= 0 and not (text[i] == "“" and _is_opening(text, i)):
            if i > open_at + 1:
                spans.append((open_at, m.end()))
            open_at = -1
    if open_at >= 0:
        spans.append((open_at, len(text.rstrip())))
    return spans


def _next_paragraph_opens(text: str, newline: int) -> int:
    """Offset of the quotation mark that opens the paragraph after `newline`, else -1."""
    k = newline
    while k < len(text) and text[k].isspace():
        k += 1
    return k if text.startswith(("“", '"', "''"), k) else -1


# ---------------------------------------------------------------- sentences


_ABBREVIATIONS = wordset("""
mr mrs ms dr sen rep gov gen lt col st jr sr u s inc corp co no vs sept oct nov dec jan feb aug
""")


def _abbreviation(toks: Sequence[_Tok], dot: int) -> bool:
    """Whether the full stop at `dot` ends an abbreviation ("Mr.", "U.S.", "J.") rather than
    a sentence."""
    before = toks[dot - 1].lower if dot >= 1 else ""
    return before in _ABBREVIATIONS or len(before) == 1


_WORD_BEFORE = re.compile(r"(\w+)$")


def ends_abbreviation(text: str, dot: int) -> bool:
    """Whether the full stop at character `dot` ends an abbreviation ("Sen. Ted Cruz",
    "U.S. History", "John F. Kelly") rather than a sentence, as `_abbreviation` reads it."""
    word = _WORD_BEFORE.search(text, max(0, dot - 12), dot)
    return word is not None and (word.group(1).lower() in _ABBREVIATIONS
                                 or len(word.group(1)) == 1)


def _sentence_ends(text: str, toks: Sequence[_Tok], stripped: bool) -> set[int]:
    """Indices of tokens that start a new sentence."""
    starts = {0}
    for i in range(1, len(toks)):
        prev, tok = toks[i - 1], toks[i]
        if tok.brk:
            starts.add(i)
        elif stripped:
            if _starts_stripped(toks, i):
                starts.add(i)
        elif prev.text in ".!?" and (tok.cap or tok.text in _OPEN_QUOTES or tok.text[0].isdigit()):
            if not (prev.text == "." and _abbreviation(toks, i - 1)):
                starts.add(i)
        elif prev.text in _CLOSE_QUOTES and i >= 2 and toks[i - 2].text in ".!?" and tok.cap:
            starts.add(i)
    return starts


def _starts_stripped(toks: Sequence[_Tok], i: int) -> bool:
    """In text without full stops: a capitalised function word starts a sentence ("They",
    "What", "An"); "I" does too unless it follows a function word or the sentence so far is
    a subordinate clause ("If anyone ... in Libya I can say")."""
    tok = toks[i]
    if not tok.cap or (tok.text == tok.text.upper() and tok.text != "I"):
        return False
    if tok.text != "I":
        return tok.lower in _STARTERS
    if toks[i - 1].lower in _STARTERS or toks[i - 1].lower in _FUNCTION_WORDS:
        return False
    j = i - 1
    while j > 0 and not (toks[j].cap and toks[j].lower in _STARTERS):
        j -= 1
    return toks[j].lower not in _SUBORDINATORS or i - j > 25


def _sentences(text: str, toks: Sequence[_Tok], stripped: bool) -> list[tuple[int, int]]:
    """Sentences as token ranges (start, end)."""
    starts = sorted(_sentence_ends(text, toks, stripped))
    bounds = [*starts, len(toks)]
    return [(a, b) for a, b in pairwise(bounds) if b > a]


# ---------------------------------------------------------------- sources (who)


#: Plural or collective nouns that can be a source on their own ("officials said").
_SOURCE_NOUNS = wordset("""
officials official analysts experts critics aides sources supporters democrats republicans
voters people polls poll police prosecutors investigators lawyers observers economists
researchers advocates opponents residents witnesses authorities leaders members staff
campaign government ministry spokesman spokeswoman statement report reports survey study data
agency fund committee department office company group organization organisation union council
board court administration party foundation institute commission bank
""")


_CALENDAR = wordset("""
monday tuesday wednesday thursday friday saturday sunday january february march april june
july august september october november december
""")
_CONTRACTION = re.compile(r"['’](?:s|m|re|ve|ll|d|t)$", re.IGNORECASE)


@dataclass(frozen=True)
class _Sentence:
    """Tokens of one sentence (start, end) and what the rules need to know about the text."""

    toks: Sequence[_Tok]
    start: int
    end: int
    stripped: bool
    lone_names: frozenset[str]
    cues: frozenset[str]

    def part(self, start: int, end: int) -> _Sentence:
        return replace(self, start=start, end=end)

    def is_name_word(self, i: int) -> bool:
        """A capitalised word that can be part of a name: not a sentence starter, a day or
        month, nor a contraction ("I'm", "That's")."""
        tok = self.toks[i]
        return (tok.cap and tok.lower not in _STARTERS and tok.text != "I"
                and tok.lower not in _CALENDAR and not _CONTRACTION.search(tok.text))


def _name_run_back(sent: _Sentence, j: int, floor: int) -> int:
    """Start of the capitalised name that ends at token `j` ("Corriere della Sera")."""
    toks = sent.toks
    a = j
    while a - 1 >= floor and (sent.is_name_word(a - 1) or (toks[a - 1].text == "."
                              and a - 2 >= floor and toks[a - 2].cap)
                              or (toks[a - 1].lower in _NAME_LINKS and a - 2 >= floor
                              and sent.is_name_word(a - 2))):
        a -= 1
    if sent.stripped and a < j and toks[j].lower in sent.lone_names:
        return j
    while a - 1 >= floor and toks[a - 1].lower in TITLE_WORDS:
        a -= 1
    if a - 1 >= floor and toks[a - 1].lower in _DETERMINERS:
        a -= 1
    return a


_NOT_IN_PHRASE = wordset("""
and or but to is was are were has have had be been being by with for in on at from as that
than it not no if when while because so who which whom
""")
#: Time words that may stand between a source and its cue ("the board ruled Monday").
_TIME_WORDS = wordset("""
monday tuesday wednesday thursday friday saturday sunday today yesterday tonight
""")


def _noun_phrase_back(sent: _Sentence, j: int, floor: int) -> int | None:
    """Start of a lower-case source phrase ending at `j` ("the defense minister", "officials",
    "the board of elections")."""
    toks = sent.toks
    a = j
    while a >= floor and j - a < 6:
        tok = toks[a]
        if tok.lower in _ARTICLES or tok.lower in ("this", "these", "those", "some", "many"):
            return a if a < j else None
        if (not tok.text[0].isalpha() or tok.lower in sent.cues or tok.lower in _STARTERS
                or tok.lower in _NOT_IN_PHRASE):
            break
        a -= 1
    last = toks[j].lower
    if a < j and (last in TITLE_WORDS or last in _SOURCE_NOUNS):
        return a + 1
    return None


def _appositive_back(sent: _Sentence, comma: int, floor: int) -> int | None:
    """"Graham, a former candidate, told": the start of the name before the appositive that
    ends with the comma at `comma`."""
    toks = sent.toks
    for k in range(comma - 1, max(comma - 16, floor - 1), -1):
        if toks[k].text in ".;:!?\"“”''":
            return None
        if toks[k].text == "," and k - 1 >= floor and sent.is_name_word(k - 1):
            return _name_run_back(sent, k - 1, floor)
    return None


def _source_before(sent: _Sentence, cue: int, floor: int) -> tuple[int, int] | None:
    """Token range of the source written before the cue ("Trenta also said", "he told",
    "the defense minister said", "who told", "Graham, a former candidate, told")."""
    toks = sent.toks
    j = cue - 1
    while j >= floor and (toks[j].lower in _BETWEEN or toks[j].lower in _TIME_WORDS):
        j -= 1
    if j < floor:
        return None
    tok = toks[j]
    if tok.lower in PRONOUNS or tok.lower in ("who", "which"):
        return (j, j + 1)
    if tok.text == "," and not sent.stripped:
        start = _appositive_back(sent, j, floor)
        return (start, j) if start is not None else None
    if sent.is_name_word(j):
        return (_name_run_back(sent, j, floor), j + 1)
    if _CONTRACTION.search(tok.text):
        return None  # "Trump's calling", "Clinton's saying": a possessive, not a source
    start = _noun_phrase_back(sent, j, floor)
    return (start, j + 1) if start is not None else None


def _source_after(sent: _Sentence, cue: int) -> tuple[int, int] | None:
    """Token range of the source written after the cue ("said Conte", "said the minister",
    "said retired neurosurgeon Ben Carson", "said the woman")."""
    toks, end = sent.toks, sent.end
    k = cue + 1
    if k >= end:
        return None
    if toks[k].lower in PRONOUNS and toks[k].lower not in ("it", "you", "him", "her", "them"):
        return (k, k + 1)
    article = toks[k].lower in _ARTICLES or toks[k].lower in _QUANTIFIERS
    b = k + article
    while (b < end and b - k < 5 and not toks[b].cap and toks[b].text[0].isalpha()
           and toks[b].lower not in _NOT_IN_PHRASE and toks[b].lower not in sent.cues
           and toks[b].lower != "of"):
        b += 1
    described = b
    while b < end and (toks[b].lower in TITLE_WORDS or sent.is_name_word(b)
                       or (toks[b].lower in _NAME_LINKS and b + 1 < end and toks[b + 1].cap)
                       or (toks[b].text == "." and b > k and _abbreviation(toks, b))):
        b += 1
    if b == described and not (article and described > k + 1):
        return None
    return (k, b)


# ---------------------------------------------------------------- cues in sentences


@dataclass
class _Found:
    """An attribution being assembled, in token ranges of one sentence."""

    content: tuple[int, int]
    source: tuple[int, int] | None
    cue: tuple[int, int]
    opening: bool
    lead: tuple[int, int] | None = None  # the part before a parenthetical ", he said,"


def _cue_at(sent: _Sentence, i: int) -> tuple[int, int] | None:
    """The cue starting at token i: a cue verb, or "according to"."""
    tok = sent.toks[i]
    if tok.lower == "according" and i + 1 < sent.end and sent.toks[i + 1].lower == "to":
        return (i, i + 2)
    if tok.lower in sent.cues and (not tok.cap or _in_title_case(sent, i)):
        return (i, i + 1)
    return None


def _in_title_case(sent: _Sentence, i: int) -> bool:
    """A capitalised cue inside a headline ("Trump Says He Never Pledged ...")."""
    toks = sent.toks
    return (sent.start < i < sent.end - 1 and toks[i - 1].cap and toks[i + 1].cap
            and toks[i].text != toks[i].text.upper())


def _venue_end(sent: _Sentence, cue: tuple[int, int]) -> int:
    """After "told"/"tells": the end of the addressee ("told Corriere della Sera newspaper")."""
    toks = sent.toks
    k = cue[1]
    if toks[cue[0]].lower not in ("told", "tells", "telling", "tell") or k >= sent.end:
        return k
    if toks[k].lower in ("him", "her", "them", "us", "me", "reporters", "journalists"):
        return k + 1
    if toks[k].lower in _DETERMINERS:
        k += 1
    b = k
    while b < sent.end and ((toks[b].cap and toks[b].lower not in _STARTERS and toks[b].text != "I")
                            or (toks[b].lower in _NAME_LINKS and b > k)):
        b += 1
    if b < sent.end and toks[b].lower in ("newspaper", "daily", "magazine", "radio", "tv",
                                          "television", "agency", "reporters"):
        b += 1
    return b if b > k else cue[1]


def _content_start(sent: _Sentence, cue: tuple[int, int], after: int) -> int:
    """Where the content of an opening cue starts: after ":" or ",", or at a "that" within
    reach ("told X in an interview on Saturday that ...", "said on Tuesday that", the "that"
    included)."""
    toks = sent.toks
    told = toks[cue[0]].lower in ("told", "tells", "telling", "tell")
    if after < sent.end and (told or toks[after].lower in _ADJUNCT_STARTS):
        for k in range(after, min(after + 14, sent.end)):
            if toks[k].lower == "that":
                return k
            if toks[k].lower in sent.cues or toks[k].text in ".;:":
                break
    k = after
    while k < sent.end and toks[k].text in ":,—–-":
        k += 1
    return k


def _is_closing(sent: _Sentence, source: tuple[int, int], cue: tuple[int, int],
                after: int) -> bool:
    """Whether the cue closes the content before it ("..., Conte said.") rather than opening
    the content after it ("Conte said that ...")."""
    toks = sent.toks
    before = [t.lower for t in toks[sent.start:source[0]] if t.text[0].isalnum()]
    if not before or before == ["as"]:
        return False
    rest = [t for t in toks[after:sent.end] if t.text[0].isalnum()]
    if not rest:
        return True
    if sent.stripped:
        between = any(t.lower in _BETWEEN for t in toks[source[1]:cue[0]])
        return (toks[cue[0]].lower in _CLOSERS and toks[after].cap and not between
                and toks[after].lower not in ("that", "i"))
    nxt = toks[after]
    if nxt.text in ".,;!?":
        return True
    return (nxt.lower in _ADJUNCT_STARTS and len(rest) <= 6
            and all(t.lower != "that" for t in rest))


def _trim(toks: Sequence[_Tok], a: int, b: int) -> tuple[int, int]:
    """Drop punctuation (but not quotation marks) at both ends of a token range."""
    while a < b and toks[a].text in ",;:—–-":
        a += 1
    while b > a and toks[b - 1].text in ",;:.—–-":
        b -= 1
    return (a, b)


def _attribute_cue(sent: _Sentence, cue: tuple[int, int], floor: int,
                   found: Sequence[_Found]) -> _Found | None:
    """The attribution a cue makes in its sentence, or None when it has no content."""
    toks = sent.toks
    if toks[cue[0]].lower == "according":
        return _according_to(sent, cue, floor)
    source = _source_before(sent, cue[0], floor)
    inverted = _source_after(sent, cue[0]) if toks[cue[0]].lower in _INVERTING else None
    if source is not None and inverted is not None and not _strong_source(sent, source) \
            and toks[inverted[0]].cap:
        source = None
    if source is None and found and _coordinated(sent, cue, found[-1]):
        return _opening(sent, found[-1].source, cue, _venue_end(sent, cue))
    if source is None and toks[cue[0]].lower.endswith("ing") and cue[0] > sent.start \
            and toks[cue[0] - 1].text == ",":
        return _opening(sent, _subject(sent, cue[0]), cue, _venue_end(sent, cue))
    if source is not None and not _strong_source(sent, source):
        return None  # "the tax loophole called ...": a phrase that names no one (train: -1
        # point content F1, +1.2 points speaker match)
    if source is not None:
        after = _venue_end(sent, cue)
        parenthetical = _parenthetical(sent, floor, source, after)
        if parenthetical is not None:
            return parenthetical
        if _is_closing(sent, source, cue, after):
            return _closing(sent, floor, source[0], source, cue)
        return _opening(sent, source, cue, after)
    if inverted is None:
        return None
    return _closing(sent, floor, cue[0], inverted, cue)


def _parenthetical(sent: _Sentence, floor: int, source: tuple[int, int],
                   after: int) -> _Found | None:
    """"Greensboro, Sexton said, made him question ...": the content on both sides."""
    toks = sent.toks
    if not (floor < source[0] - 1 and toks[source[0] - 1].text == ","
            and after + 3 < sent.end and toks[after].text == ","):
        return None
    lead = _trim(toks, floor, source[0] - 1)
    rest = _trim(toks, after + 1, sent.end)
    if lead[1] - lead[0] < 1 or rest[1] - rest[0] < 3:
        return None
    cue = (source[1], after)
    while cue[0] < cue[1] and toks[cue[0]].lower not in sent.cues:
        cue = (cue[0] + 1, cue[1])
    return _Found(rest, source, (cue[0], cue[0] + 1), opening=True, lead=lead)


def _subject(sent: _Sentence, before: int) -> tuple[int, int] | None:
    """The first name or pronoun of the sentence outside quotation marks: who a participle
    cue (", saying ...", ", urging ...") belongs to."""
    toks = sent.toks
    quoted = False
    for i in range(sent.start, before):
        tok = toks[i]
        if tok.text in _OPEN_QUOTES or tok.text in _CLOSE_QUOTES:
            quoted = not quoted
        elif not quoted and tok.lower in ("he", "she", "they", "we", "i"):
            return (i, i + 1)
        elif not quoted and sent.is_name_word(i):
            end = i
            while end + 1 < before and (sent.is_name_word(end + 1) or (
                    toks[end + 1].text == "." and _abbreviation(toks, end + 1))):
                end += 1
            return (_name_run_back(sent, i, sent.start), end + 1)
    return None


def _strong_source(sent: _Sentence, source: tuple[int, int]) -> bool:
    """A pronoun, a name, or a phrase ending in a title or source noun ("the minister")."""
    toks = sent.toks[source[0]:source[1]]
    return (toks[-1].lower in PRONOUNS or toks[-1].lower in ("who", "which")
            or any(t.cap for t in toks)
            or toks[-1].lower in TITLE_WORDS or toks[-1].lower in _SOURCE_NOUNS)


def _coordinated(sent: _Sentence, cue: tuple[int, int], previous: _Found) -> bool:
    """"... and added that", ", saying that": the cue shares the previous cue's source."""
    before = sent.toks[cue[0] - 1].lower if cue[0] > sent.start else ""
    return before in ("and", "but", ",", "also") or sent.toks[cue[0]].lower.endswith("ing")


def _opening(sent: _Sentence, source: tuple[int, int] | None, cue: tuple[int, int],
             after: int) -> _Found | None:
    """An attribution whose content follows the cue ("X said that ...")."""
    content = _trim(sent.toks, _content_start(sent, cue, after), sent.end)
    if content[1] - content[0] < 2:
        return None
    return _Found(content, source, cue, opening=True)


def _closing(sent: _Sentence, floor: int, stop: int, source: tuple[int, int],
             cue: tuple[int, int]) -> _Found | None:
    """An attribution whose content precedes its frame ("..., X said")."""
    content = _trim(sent.toks, floor, stop)
    if content[1] - content[0] < 2:
        return None
    return _Found(content, source, cue, opening=False)


def _according_to(sent: _Sentence, cue: tuple[int, int], floor: int) -> _Found | None:
    """"According to X, ..." and "..., according to X"."""
    toks = sent.toks
    source = _source_after(sent, cue[1] - 1)
    if source is None or not toks[source[1] - 1].cap:
        b = cue[1]
        while (b < sent.end and b - cue[1] < 6 and toks[b].text not in ",;.:"
               and toks[b].lower not in ("that", "who", "which")):
            b += 1
        source = (cue[1], b) if b > cue[1] else None
    if source is None:
        return None
    before = _trim(toks, floor, cue[0])
    if before[1] - before[0] >= 2:
        return _Found(before, source, cue, opening=False)
    content = _trim(toks, source[1], sent.end)
    if content[1] - content[0] < 2:
        return None
    return _Found(content, source, cue, opening=True)


def _sentence_attributions(sent: _Sentence, blocked: set[int]) -> list[_Found]:
    """Attributions made by the cue words of one sentence, in order."""
    found: list[_Found] = []
    floor = sent.start
    i = sent.start
    while i < sent.end:
        cue = None if i in blocked else _cue_at(sent, i)
        if cue is None:
            i += 1
            continue
        item = _attribute_cue(sent, cue, floor, found)
        if item is not None:
            _end_previous(sent, found, item)
            found.append(item)
            if not item.opening:
                floor = max(cue[1], item.source[1] if item.source else 0)
        i = cue[1]
    return found


def _end_previous(sent: _Sentence, found: list[_Found], item: _Found) -> None:
    """An opening content ends where the next cue's frame starts, unless that cue is nested
    inside it with a source of its own ("X said that Y believes ...")."""
    if not found or not found[-1].opening:
        return
    prev = found[-1]
    own_source = item.source is not None and item.source[0] >= prev.content[0]
    frame = item.source[0] if own_source and item.source else item.cue[0]
    nested = (item.opening and own_source and item.source != prev.source
              and not sent.stripped)
    if not nested and prev.content[0] < frame < prev.content[1]:
        end = frame
        while end > prev.content[0] and sent.toks[end - 1].lower in ("and", "but", "also"):
            end -= 1
        found[-1] = _Found(_trim(sent.toks, prev.content[0], end), prev.source, prev.cue,
                           prev.opening)


# ---------------------------------------------------------------- direct quotes and frames


def _token_index(toks: Sequence[_Tok], char: int) -> int:
    """Index of the first token that starts at or after `char` (binary search)."""
    lo, hi = 0, len(toks)
    while lo < hi:
        mid = (lo + hi) // 2
        if toks[mid].start < char:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _frame_after(sent: _Sentence, first: int) -> tuple[tuple[int, int] | None,
                                                        tuple[int, int], int] | None:
    """The frame right after a closing quotation mark (", he said", "Conte told X"):
    (source, cue, end of the frame) or None."""
    toks = sent.toks
    k = first
    while k < sent.end and toks[k].text in ",—–-":
        k += 1
    for c in range(k, min(k + 18, sent.end)):
        if toks[c].text in "!?;" or toks[c].text in _OPEN_QUOTES or (
                toks[c].text == "." and not _abbreviation(toks, c)):
            return None
        cue = _cue_at(sent, c)
        if cue is None:
            continue
        source = _source_before(sent, c, k)
        if source is not None and source[0] - k <= 2 and all(
                t.text[0].isalpha() for t in toks[k:source[0]]):
            source = (k, source[1])
            return source, cue, max(_venue_end(sent, cue), source[1])
        source = _source_after(sent, c)
        if c == k and source is not None:
            return source, cue, source[1]
        return None
    return None


_DAYS = wordset("""
monday tuesday wednesday thursday friday saturday sunday today yesterday recently later
earlier again then simply
""")


def _frame_before(sent: _Sentence, open_tok: int) -> tuple[tuple[int, int] | None,
                                                           tuple[int, int]] | None:
    """The frame right before an opening quotation mark ("Cruz continued:", "he said that",
    "said Trump:"): only punctuation, "that" or a time word may stand between."""
    toks = sent.toks
    k = open_tok - 1
    while k >= sent.start and (toks[k].text in ":,—–-" or toks[k].lower == "that"):
        k -= 1
    for c in range(k, max(k - 6, sent.start - 1), -1):
        cue = _cue_at(sent, c)
        if cue is None:
            continue
        between = toks[cue[1]:k + 1]
        if all(t.lower in _DAYS or t.lower.endswith("ly") for t in between):
            source = _source_before(sent, c, sent.start) or _source_after(sent, c)
            if source is None and toks[c].lower.endswith("ing") and c > sent.start \
                    and toks[c - 1].text == ",":
                source = _subject(sent, c)
            return source, cue
        source = _source_after(sent, c)
        if source is not None and source[1] == k + 1:
            return source, cue
        break
    if open_tok - 1 >= sent.start and toks[open_tok - 1].text == ":":
        source = _subject(sent, open_tok - 1)  # "Trump leaned in and boomed: “..."
        if source is not None:
            return source, (open_tok - 1, open_tok)
    return None


def _direct_attributions(text: str, whole: _Sentence, blocked: set[int]) -> list[Attribution]:
    """Attributions of the text in quotation marks, with the frames that attribute them;
    two-part quotes around "he said" become one attribution with two content spans."""
    toks = whole.toks
    spans = _quote_spans(text)
    out: list[Attribution] = []
    skip: set[int] = set()
    for n, (qa, qb) in enumerate(spans):
        ta, tb = _token_index(toks, qa), _token_index(toks, qb)
        blocked.update(range(ta, tb))
        if n in skip or _is_title(toks, ta, tb):
            continue
        content = [(qa, qb)]
        frame = _frame_after(_bounded(whole, tb), tb)
        if frame is not None:
            source, cue, end = frame
            if n + 1 < len(spans) and _joins(toks, end, spans[n + 1][0]):
                content.append(spans[n + 1])
                skip.add(n + 1)
        else:
            before = _frame_before(_bounded_back(whole, ta), ta)
            if before is not None and tb - ta < 6 and toks[before[1][0]].lower not in _INVERTING:
                before = None  # "a show called “Brokers”": a name, not words said
            if before is None:
                if out and _continues(text, out[-1], qa, qb):
                    previous = out[-1]
                    out[-1] = Attribution((*previous.content, (qa, qb)), previous.source,
                                          previous.cue)
                continue
            source, cue = before
        blocked.update(range(*cue))
        out.append(_to_attribution(toks, tuple(content), source, cue))
    return out


_TITLE_SMALL = wordset("the a an of and to in for on at with")


def _is_title(toks: Sequence[_Tok], ta: int, tb: int) -> bool:
    """A title in quotation marks (on NBC's "Meet the Press", "Fox News Sunday,"): five words
    at most, all capitalised but the small ones, or right after a possessive."""
    words = [t for t in toks[ta:tb] if t.text[0].isalnum()]
    if not words or (ta > 0 and toks[ta - 1].lower.endswith(("'s", "’s"))):
        return True
    return len(words) <= 5 and words[0].cap and all(
        t.cap or t.text[0].isdigit() or t.lower in _TITLE_SMALL for t in words)


def _continues(text: str, previous: Attribution, start: int, end: int) -> bool:
    """A quote of four words or more with no frame of its own that starts a sentence right
    after an attributed quote (same paragraph, or the next) continues that speaker's words."""
    gap = text[previous.content[-1][1]:start]
    if gap.count("\n") > 2 or len(gap) > 200 or _QUOTE_MARK.search(gap):
        return False
    ends_sentence = not gap.strip() or gap.rstrip()[-1:] in ".!?:"
    return ends_sentence and len(text[start:end].split()) >= 4


def _bounded(sent: _Sentence, first: int) -> _Sentence:
    """The stretch after token `first` up to the end of its paragraph (12 tokens at most)."""
    end = min(first + 20, sent.end)
    for k in range(first, end):
        if sent.toks[k].brk:
            end = k
            break
    return sent.part(first, end)


def _bounded_back(sent: _Sentence, last: int) -> _Sentence:
    """The stretch before token `last` back to the previous sentence end (12 tokens at most)."""
    start = max(last - 12, 0)
    for k in range(last - 1, start, -1):
        if sent.toks[k].text in ".!?" or (sent.toks[k].text in _CLOSE_QUOTES and k < last - 1):
            start = k + 1
            break
    return sent.part(start, last)


def _joins(toks: Sequence[_Tok], end: int, next_open: int) -> bool:
    """Whether the next quote continues right after the frame (", he said, “...")."""
    k = end
    while k < len(toks) and k - end < 8 and toks[k].start < next_open \
            and toks[k].text not in ".!?;" and toks[k].text not in _CLOSE_QUOTES:
        k += 1  # ", he said of the Clinton campaign, “..."
    return k < len(toks) and toks[k].start == next_open


def _to_attribution(toks: Sequence[_Tok], content: tuple[Span, ...],
                    source: tuple[int, int] | None, cue: tuple[int, int]) -> Attribution:
    """Token ranges as an Attribution of character spans."""
    def chars(r: tuple[int, int] | None) -> tuple[Span, ...]:
        return ((toks[r[0]].start, toks[r[1] - 1].end),) if r and r[1] > r[0] else ()
    return Attribution(content=content, source=chars(source), cue=chars(cue))


# ---------------------------------------------------------------- stage 1


def _lone_names(toks: Sequence[_Tok]) -> frozenset[str]:
    """Capitalised words that also stand alone after a lower-case word (surnames: "Conte")."""
    out = set()
    for i in range(1, len(toks) - 1):
        if toks[i].cap and not toks[i - 1].cap and not toks[i + 1].cap:
            out.add(toks[i].lower)
    return frozenset(out)


def find_attributions(text: str, cues: frozenset[str] = CUE_VERBS) -> list[Attribution]:
    """Stage 1 (rules): every attribution in `text` as raw spans, in text order. `cues` are
    the cue words (the PolNeAR-chosen list unless a caller measures another)."""
    return _find(text, _tokens(text), cues)


def _find(text: str, toks: Sequence[_Tok], cues: frozenset[str]) -> list[Attribution]:
    """Stage 1 on tokens already made: direct quotes first, then cue words per sentence."""
    if not toks:
        return []
    stripped = is_stripped(text)
    lone = _lone_names(toks) if stripped else frozenset()
    whole = _Sentence(toks, 0, len(toks), stripped, lone, cues)
    blocked: set[int] = set()
    out = [] if stripped else _direct_attributions(text, whole, blocked)
    for a, b in _sentences(text, toks, stripped):
        sent = whole.part(a, b)
        for item in _sentence_attributions(sent, blocked):
            if item.content[1] - item.content[0] < 2:
                continue
            content = ((toks[item.content[0]].start, toks[item.content[1] - 1].end),)
            if item.lead is not None:
                content = ((toks[item.lead[0]].start, toks[item.lead[1] - 1].end), *content)
            out.append(_to_attribution(toks, content, item.source, item.cue))
    return sorted(out, key=lambda att: att.content[0])


# ---------------------------------------------------------------- stage 2: names and quotes

_OUTLET_WORDS = wordset("""
times post journal news tribune herald guardian telegraph daily agency press network cnn fox
msnbc bbc reuters politico sera quotidiano stampa repubblica xinhua afp ap axios gazette
""")
_OUTLET_NOUNS = wordset("""
newspaper daily paper outlet network agency magazine broadcaster channel publication tabloid
""")


@dataclass(frozen=True)
class _Names:
    """The names an article gives: full names by surname, names by title, outlets, and every
    person mention with its offset (for pronouns)."""

    by_last: dict[str, str]
    by_title: list[tuple[int, str, str]]
    outlets: list[tuple[int, str]]
    orgs: list[tuple[int, str]]  # capitalised runs of two words or more, for "the fund"
    persons: list[tuple[int, str, bool]]  # offset, full name, starts its sentence
    gender: dict[str, str]


def _name_runs(toks: Sequence[_Tok]) -> list[tuple[int, int]]:
    """Token ranges of capitalised runs ("Defense Minister Elisabetta Trenta")."""
    runs, i = [], 0
    while i < len(toks):
        if not toks[i].cap or toks[i].text == "I" or toks[i].lower in _CALENDAR:
            i += 1
            continue
        j = i + 1
        while j < len(toks) and ((toks[j].cap and toks[j].lower != "i"
                                  and toks[j].lower not in _CALENDAR)
                                 or (toks[j].lower in _NAME_LINKS and j + 1 < len(toks)
                                 and toks[j + 1].cap) or _abbreviation_stop(toks, j)):
            j += 1
        runs.append((i, j))
        i = j
    return runs


def _abbreviation_stop(toks: Sequence[_Tok], j: int) -> bool:
    """A full stop inside a name: after an initial or a title abbreviation, before a
    capitalised word ("John F. Kelly", "Gov. Chris Christie")."""
    return (toks[j].text == "." and j + 1 < len(toks) and toks[j + 1].cap
            and not toks[j + 1].brk and toks[j - 1].cap
            and (len(toks[j - 1].text) == 1 or toks[j - 1].lower in _TITLE_ABBREVIATIONS))


_TITLE_ABBREVIATIONS = wordset("mr mrs ms dr sen rep gov gen lt col sgt rev")


def _run_words(toks: Sequence[_Tok], a: int, b: int) -> tuple[list[_Tok], list[str]]:
    """A run's tokens without its full stops, and their words with the stop kept on its
    word ("F.", "Gov.")."""
    kept = [k for k in range(a, b) if toks[k].text != "."]
    words = [toks[k].text + ("." if k + 1 < b and toks[k + 1].text == "." else "")
             for k in kept]
    return [toks[k] for k in kept], words


def _article_names(toks: Sequence[_Tok], quoted: Sequence[Span] = ()) -> _Names:
    """Names of the article; full forms come from text outside quotation marks (so that
    "Crooked Hillary Clinton" in a quote does not become Clinton's full name)."""
    names = _Names({}, [], [], [], [], {})
    counts: dict[str, int] = {}
    inside = {i for a, b in quoted for i in range(_token_index(toks, a), _token_index(toks, b))}
    runs = _name_runs(toks)
    lowered = _written_lower(toks)
    for a, b in runs:
        while a < b and (toks[a].lower in _STARTERS or _opener_not_name(toks, a, lowered)):
            a += 1
        if a == b:
            continue
        kept, words = _run_words(toks, a, b)
        possessive = bool(_POSSESSIVE.search(kept[-1].text))
        if possessive:  # "Donald Trump’s detractors": a person too
            bare = _POSSESSIVE.sub("", kept[-1].text)
            kept[-1] = kept[-1]._replace(text=bare, lower=bare.lower())
            words[-1] = bare
        lowers = [t.lower for t in kept]
        titled = [k for k, w in enumerate(lowers) if w in TITLE_WORDS]
        cut = titled[-1] + 1 if titled else 0
        if titled and cut + 2 < len(lowers) and lowers[cut] == "of":
            cut += 2  # "Secretary of State John F. Kerry"
        if len(words) > 1:
            names.orgs.append((toks[a].start, " ".join(words)))
        if (b < len(toks) and toks[b].lower in _OUTLET_NOUNS) or lowers[-1] in _OUTLET_WORDS:
            names.outlets.append((toks[a].start, " ".join(words)))
            continue
        person = words[cut:]
        if not person:
            continue
        full = " ".join(person)
        plausible = all(t.lower not in _NOT_PERSON for t in kept[-len(person):])
        if ((titled and plausible) or _looks_like_person(kept[-len(person):])) \
                and a not in inside:
            counts[full] = counts.get(full, 0) + (not possessive)  # "Le Pen’s niece" does
            last = person[-1].lower()  # not make "Le Pen" the usual form of "Marine Le Pen"
            known = names.by_last.get(last, "")
            if (" " in full, counts[full], len(full)) > (" " in known, counts.get(known, 0),
                                                         len(known)):
                names.by_last[last] = full  # a full name, the usual one, then the longest
        if titled:
            title = " ".join(lowers[:cut])
            names.by_title.append((toks[a].start, title, full))
        _lower_title_before(toks, a, full, names)
    lone = _lone_surnames(toks, [(a, b) for a, b in runs if a not in inside], names, lowered)
    names.by_last.update(lone)
    votes = _person_mentions(toks, runs, names, lowered)
    _drop_ungendered(names, frozenset(lone.values()), votes)
    return names


#: A lone capitalised word is a candidate surname when written at least this many times,
#: and a person when this many more pronouns of one gender than of the other follow it
#: (train, 240 articles: 2 instead of 1 lost "Clinton", "Pate" and "Megyn", 3 right names).
LONE_NAME_USES = 2
LONE_NAME_VOTES = 1


def _lone_surnames(toks: Sequence[_Tok], runs: Sequence[tuple[int, int]], names: _Names,
                   lowered: frozenset[str]) -> dict[str, str]:
    """Capitalised words written alone, never in lower case, no place, body, title or
    outlet word, and no surname of a known full name ("Clinton" in an article that never
    writes her first name): candidates for people, kept only when pronouns give them a
    gender (`_drop_ungendered`)."""
    counts: dict[str, int] = {}
    places: set[str] = set()
    inside: set[str] = set()  # written inside a sentence at least once
    line_words = _line_words(toks)
    for a, b in runs:
        while a < b and (toks[a].lower in _STARTERS or _opener_not_name(toks, a, lowered)):
            a += 1
        if b - a != 1 or (a > 0 and toks[a - 1].lower in _DETERMINERS) \
                or line_words[a] < CAPTION_WORDS:
            continue
        word = _bare_lower(toks[a])
        if a > 0 and toks[a - 1].lower in _PLACE_PREPOSITIONS and word == toks[a].lower:
            places.add(word)  # "in Iowa", "across Vermont": a place
        if len(word) > 2 and toks[a].text[1:2].islower() and word not in lowered \
                and word not in names.by_last and not _not_a_name(word):
            counts[word] = counts.get(word, 0) + 1
            if not _opens_sentence(toks, a):
                inside.add(word)
    return {word: _POSSESSIVE.sub("", next(t.text for t in toks if _bare_lower(t) == word))
            for word, n in counts.items()
            if n >= LONE_NAME_USES and word in inside and word not in places}


_PLACE_PREPOSITIONS = wordset("in at across throughout")


def _not_a_name(word: str) -> bool:
    """A word that is no surname: a place, body, title, outlet, group or function word."""
    return any(word in words for words in (
        _NOT_PERSON, _STARTERS, _FUNCTION_WORDS, _CALENDAR, _OUTLET_WORDS, _OUTLET_NOUNS,
        _GROUP_NOUNS, TITLE_WORDS, _QUANTIFIERS, _TITLE_ABBREVIATIONS, PRONOUNS, _PLACES))


#: Places and their adjectives written alone ("Vermont", "Turkish"): no surname.
_PLACES = wordset("""
alabama alaska arizona arkansas california colorado connecticut delaware florida georgia
hawaii idaho illinois indiana iowa kansas kentucky louisiana maine maryland massachusetts
michigan minnesota mississippi missouri montana nebraska nevada ohio oklahoma oregon
pennsylvania tennessee texas utah vermont virginia washington wisconsin wyoming
america europe africa asia china russia mexico canada iran iraq syria israel turkey germany
france britain england italy japan india libya egypt ukraine cuba korea
french turkish chinese german mexican syrian iranian iraqi israeli italian japanese indian
european african asian arab muslim christian jewish catholic latino hispanic english spanish
""")


def _drop_ungendered(names: _Names, lone: frozenset[str], votes: dict[str, int]) -> None:
    """Forget the lone-word candidates that fewer than LONE_NAME_VOTES pronouns gave a
    gender to (a country, a party)."""
    drop = {full for full in lone if abs(votes.get(full, 0)) < LONE_NAME_VOTES}
    if not drop:
        return
    for last in [last for last, full in names.by_last.items() if full in drop]:
        del names.by_last[last]
    names.persons[:] = [p for p in names.persons if p[1] not in drop]
    for full in drop:
        names.gender.pop(full, None)


_NOT_PERSON = wordset("""
county party show grants republican republicans democratic democrats democrat university
college house senate congress committee department news times post journal company inc corp
association council court state states city school museum institute center centre foundation
campaign administration street square america american americans united national international
federal white media network fox cnn group union league bank fund agency office ministry
organization organisation army forces government press club tower hall church river island
new north south east west today british russian against for with to on in at by from about
over after before says said
""")


def _looks_like_person(toks: Sequence[_Tok]) -> bool:
    """Two to four capitalised words, none of them an organisation or place word, no
    possessive: "Elisabetta Trenta", not "Pell Grants" or "Kent County Republican"."""
    return 2 <= len(toks) <= 4 and len(toks[-1].text) > 1 and all(
        t.cap and (t.text[1:2].islower() or len(t.text) == 1)
        and "'" not in t.text and "’" not in t.text
        and t.lower not in _NOT_PERSON and t.lower not in _STARTERS
        and t.lower not in _FUNCTION_WORDS and t.lower not in _QUANTIFIERS
        for t in toks)  # not a headline ("Invasion Of Iraq"), nor "One California delegate"


def _full_name(names: _Names, words: Sequence[str]) -> str:
    """The fullest form the article gives for these name words: "Trenta" -> "Elisabetta
    Trenta"; a two-word name is kept unless the fuller form ends with it ("Ivanka Trump" is
    not "Donald Trump")."""
    mention = " ".join(words)
    full = names.by_last.get(words[-1].lower(), "") if words else ""
    if full and (full == mention or full.endswith(" " + mention)):
        return full
    return mention


def _bare_lower(tok: _Tok) -> str:
    """A word in lower case without its possessive ending ("trump’s" -> "trump")."""
    return _POSSESSIVE.sub("", tok.lower)


_HE_PRONOUNS = wordset("he his him himself")
_SHE_PRONOUNS = wordset("she her hers herself")
_HE = _HE_PRONOUNS | wordset("mr")
_SHE = _SHE_PRONOUNS | wordset("mrs ms")


def _person_mentions(toks: Sequence[_Tok], runs: Sequence[tuple[int, int]],
                     names: _Names, lowered: frozenset[str]) -> dict[str, int]:
    """Every mention of a known person, and each person's gender as the pronouns right after
    their mentions as a sentence's subject tell it (after "Asked about Trump, she ..." the
    pronoun is not Trump's), a gendered title or noun just before ("Mrs.", "actress")
    counting five times (for "he" / "she" to find a person that fits); returns the votes
    (positive: male) by name."""
    votes: dict[str, int] = {}
    mentions = [(a, b) for a, b in runs if _bare_lower(toks[b - 1]) in names.by_last]
    line_words = _line_words(toks)
    for n, (a, b) in enumerate(mentions):
        full = names.by_last[_bare_lower(toks[b - 1])]
        pair = toks[b - 2:b] if b - 2 >= a else []
        if pair and _looks_like_person(pair) and pair[0].lower not in _PERSON_NOUNS \
                and not full.endswith(f"{pair[0].text} {pair[1].text}") \
                and not _opener_not_name(toks, b - 2, lowered):
            full = f"{pair[0].text} {pair[1].text}"  # "Ivanka Trump" beside "Donald Trump"
        initial = (_opens_sentence(toks, a) or _opens_clause(toks, a)) \
            and line_words[a] >= CAPTION_WORDS
        if n and names.persons and _titled_by(toks, mentions[n - 1][1], a):
            start, previous, initial = names.persons[-1]  # "McConnell spokesman Don Stewart":
            names.persons[-1] = (start, previous, False)  # the subject is the spokesman
        names.persons.append((toks[a].start, full, initial))
        stop = min(mentions[n + 1][0] if n + 1 < len(mentions) else len(toks), b + 15)
        if a > 0 and toks[a - 1].lower in _HE | _SHE:
            stop = max(stop, a)
        if _POSSESSIVE.search(toks[b - 1].text):
            continue  # "chairman for Clinton’s campaign": no vote for the possessor's gender
        window = [t.lower for t in toks[max(a - 1, 0):stop]] if initial else []
        titled = [t.lower for t in toks[max(a - 3, 0):b]]  # "Mrs. Clinton", "actress X"
        votes[full] = votes.get(full, 0) + sum(w in _HE for w in window) \
            - sum(w in _SHE for w in window) + 5 * (sum(w in _MALE_NOUNS for w in titled)
                                                    - sum(w in _FEMALE_NOUNS for w in titled))
    for full, vote in votes.items():
        first = full.split()[0].lower() if " " in full else ""
        vote += FIRST_NAME_VOTES * ((first in _MALE_FIRST_NAMES) - (first in _FEMALE_FIRST_NAMES))
        if vote:
            names.gender[full] = "m" if vote > 0 else "f"
    return votes


def _opens_sentence(toks: Sequence[_Tok], k: int) -> bool:
    """Whether token `k` opens a sentence or a line (its capital says nothing of a name)."""
    return k == 0 or toks[k].brk or toks[k - 1].text in ".!?" or toks[k - 1].text in _CLOSE_QUOTES


def _opens_clause(toks: Sequence[_Tok], a: int) -> bool:
    """Whether the name at token `a` opens a clause after ", but" or ";" (its subject:
    "..., but Christie wasn't having it"; not ", and", which mostly ends a list)."""
    return a >= 2 and ((toks[a - 1].lower == "but" and toks[a - 2].text == ",")
                       or toks[a - 1].text == ";")


def _written_lower(toks: Sequence[_Tok]) -> frozenset[str]:
    """The words the article writes in lower case somewhere."""
    return frozenset(t.lower for t in toks if not t.cap)


def _opener_not_name(toks: Sequence[_Tok], k: int, lowered: frozenset[str]) -> bool:
    """A word capitalised only because it opens a sentence, and written in lower case
    elsewhere in the article, is no name word ("Maybe Trump is ..." is Trump)."""
    return _opens_sentence(toks, k) and toks[k].lower in lowered


#: A common first name counts as this many pronouns for its bearer's gender (train: "Ben
#: Jealous" was made female by the "her" of a quote after his name).
FIRST_NAME_VOTES = 3


#: Common first names by gender, for people no pronoun or title tells apart (train: "he"
#: went to "Independent Vermont" rather than Bernie Sanders, "He" to a woman nearby).
_MALE_FIRST_NAMES = wordset("""
james john robert michael william david richard joseph thomas charles christopher daniel
matthew anthony mark donald steven paul andrew joshua kenneth kevin brian george timothy
ronald edward jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin scott
brandon benjamin samuel gregory frank alexander raymond patrick jack dennis jerry tyler aaron
jose adam henry nathan douglas zachary peter kyle walter ethan jeremy harold keith christian
roger noah gerald carl sean austin arthur lawrence dylan bryan joe billy bruce albert willie
gabriel logan alan juan wayne roy ralph randy eugene vincent russell elijah louis bobby philip
johnny bill bernie ted marco jeb chris mike mitch newt rand ben barack tim rick rudy reince
corey steve andy jim tom bob sam dan greg rob ron ed jeff tony nick matt harry jimmy jon reid
chuck marcus luis carlos jorge mario antonio francisco pedro miguel ahmed mohammed muhammad
omar vladimir sergei dmitri shinzo emmanuel francois boris nigel
""")
_FEMALE_FIRST_NAMES = wordset("""
mary patricia jennifer linda elizabeth barbara susan jessica sarah karen nancy lisa betty
margaret sandra ashley kimberly emily donna michelle dorothy carol amanda melissa deborah
stephanie rebecca sharon laura cynthia kathleen amy shirley angela helen anna brenda pamela
nicole emma samantha katherine christine debra rachel catherine carolyn janet ruth maria
heather diane virginia julie joyce victoria olivia christina lauren joan evelyn judith megan
cheryl andrea hannah martha jacqueline frances gloria ann teresa kathryn sara janice jean alice
madison doris abigail julia judy grace denise amber marilyn beverly danielle theresa sophia
marie diana brittany natalie isabella charlotte rose alexis kayla hillary kellyanne huma
nikki michele debbie loretta condoleezza madeleine ivanka melania chelsea tiffany jill carly
marine neera sonia elena valerie susana ileana tammy maxine kamala kirsten tulsi claudia megyn
""")


#: A line of fewer tokens is a caption, credit or heading ("Neilson Barnard via Getty
#: Images."): the names in it are not the subjects pronouns refer to.
CAPTION_WORDS = 8


def _line_words(toks: Sequence[_Tok]) -> list[int]:
    """For every token, the number of tokens on its line."""
    out: list[int] = []
    start = 0
    for i in range(1, len(toks) + 1):
        if i == len(toks) or toks[i].brk:
            out.extend([i - start] * (i - start))
            start = i
    return out


def _titled_by(toks: Sequence[_Tok], end: int, start: int) -> bool:
    """Whether only lower-case title words stand between a name ending at `end` and one
    starting at `start` ("McConnell spokesman Don Stewart", "Trump campaign manager X")."""
    between = toks[end:start]
    return bool(between) and len(between) <= 4 and all(
        not t.cap and (t.lower in TITLE_WORDS or t.lower in _ORG_NOUNS or t.lower in _ANONYMOUS
                       or _is_person_noun(t.lower)) for t in between)


def _lower_title_before(toks: Sequence[_Tok], a: int, full: str, names: _Names) -> None:
    """"his defense minister Trenta": a lower-case title right before a name."""
    k = a
    while k - 1 >= 0 and toks[k - 1].lower in TITLE_WORDS and not toks[k - 1].cap:
        k -= 1
    if k < a:
        names.by_title.append((toks[k].start, " ".join(t.lower for t in toks[k:a]), full))


_RELATIVE = re.compile(r"^(?:who|which)(?:['’]\w*)?$")
_CONTRACTED = re.compile(r"['’]\w*$")
_POSSESSIVE = re.compile(r"['’]s?$")
#: Singular nouns that describe a person ("the candidate", "the 43-year-old", "the actress");
#: with TITLE_WORDS, a definite description ending in one is resolved to a person.
_PERSON_NOUNS = wordset("""
actress actor host anchor journalist reporter columnist author writer pastor preacher reverend
doctor neurosurgeon surgeon lawyer billionaire businessman businesswoman mogul tycoon developer
frontrunner front-runner hopeful contender incumbent challenger star singer rapper comedian
celebrity economist professor pollster analyst activist veteran founder executive ceo donor
attorney consultant
businessperson man woman mother father wife husband son daughter widow nominee candidate
""")
#: Verbs ending in "-ist" that are not people.
_IST_VERBS = wordset("persist consist exist insist assist resist")


def _is_person_noun(word: str) -> bool:
    """A noun for a person: the list, or one of the "-ist" nouns ("the self-described
    democratic socialist", "the strategist")."""
    return word in _PERSON_NOUNS or (
        len(word) > 6 and word.endswith("ist") and word not in _IST_VERBS)


_FEMALE_NOUNS = wordset("""
actress spokeswoman congresswoman chairwoman councilwoman businesswoman woman mother wife
daughter widow queen mrs ms lady
""")
_MALE_NOUNS = wordset("""
spokesman congressman chairman councilman businessman man father husband son king mr
""")
#: People as a group ("voters", "aides", "Trump supporters"): a source that names no person.
_GROUP_NOUNS = wordset("""
officials analysts experts critics aides sources supporters democrats republicans voters
people police prosecutors investigators lawyers observers economists researchers advocates
opponents residents witnesses authorities leaders members staff staffers protesters
americans delegates donors activists conservatives liberals progressives evangelicals
doctors parents students workers women men others some many most both
candidates advisers advisors allies strategists lawmakers politicians senators insiders rivals
attorneys investors executives organizers operatives backers fans friends moderators
""")
#: Singular people words that introduce someone other than the person in focus ("a campaign
#: spokesman said"): never resolved to the last person named.
_ANONYMOUS = wordset("""
official aide source spokesman spokeswoman spokesperson adviser advisor staffer delegate voter
resident supporter member friend witness participant attendee
""")
_FIRST_PERSON = wordset("i we me us my our")
#: A dateline before a mention ("BRUSSELS - European leaders", "LOS ANGELES (AP) —").
_DATELINE = re.compile(r"^[A-Z][A-Z .,]+(?:\(\w+\))?\s*[-—–]+\s*")
_CONJUNCTIONS = wordset("and but yet so or")
_INDEFINITE_PERSONS = wordset("everyone everybody someone somebody anyone anybody nobody")
_THEY = wordset("they them their theirs themselves")
_IT = wordset("it its itself")
#: Possessive and reflexive pronouns resolved like the pronoun ("his promise of ...").
_POSSESSIVE_PRONOUNS = wordset("his himself hers herself") | _THEY | _IT
#: Words that end a sentence's subject phrase ("The attendees at ...", "Trump's campaign
#: immediately backtracked"): verbs and auxiliaries a subject does not hold.
_SUBJECT_STOPS = wordset("""
is are was were be been has have had will would can could should may might must do does did
says said say told tells added argued also still now even just
""")


def _subject_phrase(toks: Sequence[_Tok], first: int, stop: int) -> tuple[int, int] | None:
    """Token range of the subject phrase a sentence opens with, before `stop`: an opening
    adjunct ("In cases of abortion,") skipped, at most seven words, up to a verb-like word
    (an auxiliary, a cue, "-ed", "-ly"), a function word or a punctuation mark."""
    i = first
    while i < stop and (not toks[i].text[0].isalnum() or toks[i].lower in _CONJUNCTIONS):
        i += 1
    if i < stop and toks[i].lower in _SUBJECT_STOPS:
        return None  # "Had their arguments prevailed, ...": an inverted clause
    if i < stop and (toks[i].lower in _ADJUNCT_STARTS or toks[i].lower in _SUBORDINATORS):
        comma = next((k for k in range(i, stop) if toks[k].text == ","), None)
        if comma is None:
            return None
        i = comma + 1
    j = i
    while j < stop and j - i < 7 and toks[j].text[0].isalnum() and not (j > i and (
            toks[j].lower in _NOT_IN_PHRASE or toks[j].lower in _SUBJECT_STOPS
            or toks[j].lower in CUE_VERBS or _after_name(toks, i, j)
            or (not toks[j].cap and toks[j].lower.endswith(("ed", "ly"))))):
        j += 1
    return (i, j) if j > i else None


def _after_name(toks: Sequence[_Tok], first: int, j: int) -> bool:
    """A lower-case word right after a name that opens the phrase with no determiner and no
    possessive ("Paul Vance spoke"): the name is the whole subject; "The Varga campaign",
    "Trump's campaign" and a group the name modifies ("Black voters", "Trump supporters")
    go on."""
    return (not toks[j].cap and toks[j - 1].cap and toks[first].cap
            and toks[first].lower not in _DETERMINERS
            and not _POSSESSIVE.search(toks[j - 1].text) and toks[j].lower not in _GROUP_NOUNS)


_NOT_DESCRIPTIONS = wordset("""
who which that whom his her its their our my your him them us me
""") | PRONOUNS | _FIRST_PERSON
#: Words that open a description of someone or something ("many voters", "each", "the ad").
_DESCRIPTION_STARTS = _DETERMINERS | _QUANTIFIERS | wordset("""
each every all both most few no any someone somebody everyone nobody anyone
more fewer less about nearly almost roughly half
""")


def _is_description(words: Sequence[str]) -> bool:
    """Whether a mention's words describe someone or something: not a pronoun, and opened
    by a determiner, quantifier, share word or number ("the ad", "More than 4 in 10", "44
    percent"), ended by a person, group or organisation noun, a short plural ("critics",
    "federal statistics"), or a capitalised phrase ending in a noun ("Early results of exit
    polls ..."; the last two, train: 22 names better given as written, 1 worse)."""
    lowers = [w.lower() for w in words]
    if not lowers or (len(lowers) == 1 and _CONTRACTED.sub("", lowers[0]) in _NOT_DESCRIPTIONS):
        return False
    return (lowers[0] in _DESCRIPTION_STARTS or lowers[0][0].isdigit()
            or _is_description_head(lowers[-1]) or _lower_noun_phrase(words)
            or (len(lowers) <= 3 and lowers[-1].endswith("s") and not lowers[-1].endswith("ss"))
            or (len(words) <= 4 and words[0][:1].isupper() and words[-1][:1].islower())
            or (words[0][:1].isupper() and words[-1][:1].islower() and words[-1].isalpha()
                and lowers[-1] not in _NOT_IN_PHRASE and not lowers[-1].endswith("ed")))


def _lower_noun_phrase(words: Sequence[str]) -> bool:
    """A short phrase of lower-case words that could be a noun phrase ("exit polling
    data"): no function word, verb-like ending or adverb at its edges."""
    return 2 <= len(words) <= 4 and all(w.isalpha() and w.islower() for w in words) \
        and not any(w in _NOT_IN_PHRASE or w in _SUBJECT_STOPS or w in CUE_VERBS
                    for w in (words[0], words[-1])) \
        and not words[-1].endswith(("ed", "ly", "ing"))


@dataclass
class _Resolver:
    """Stage 2's memory of one article, made per `to_quotes` call: its tokens and names, its
    author, and what the quotes resolved so far said (speakers by offset; contents with
    their speaker's name; unnamed speakers), filled in text order by `remember`."""

    body: str
    toks: Sequence[_Tok]
    names: _Names
    author: str
    stripped: bool
    quoted: Sequence[Span]
    sentence_starts: Sequence[int] = ()  # token index of every sentence's first token
    speakers: list[tuple[int, str]] = field(default_factory=list)
    said: list[tuple[tuple[Span, ...], str]] = field(default_factory=list)
    unnamed: list[tuple[int, str]] = field(default_factory=list)  # "a campaign aide said"

    def name_of(self, span: Span) -> str:
        """The fullest name the article gives for the source mention at `span`."""
        mention, at = self._mention(span)
        return self.resolve(mention, at)

    def described(self, span: Span) -> str:
        """A mention no name resolves, as the description itself ("many voters", "the
        ad", "Americans" for "Americans who"), never a wrong person; "" for a pronoun."""
        mention, _ = self._mention(span)
        mention = _DATELINE.sub("", mention)
        words = _POSSESSIVE.sub("", mention.strip(" ,.;:—–-\"“”‘’'()")).split()
        while len(words) > 1 and words[0].lower() in _SUBORDINATORS:
            words = words[1:]  # "While campaign officials"
        relative = any(_RELATIVE.match(w.lower()) for w in self.body[span[0]:span[1]].split())
        if relative and 0 < len(words) <= 3 and words[-1].lower() not in _NOT_DESCRIPTIONS:
            return " ".join(words)  # the noun phrase a "who" / "which" attaches to
        return " ".join(words) if _is_description(words) else ""

    def remember(self, quote: Quote, named: bool = True) -> None:
        """Keep a resolved quote for the pronouns and first persons after it (`named`:
        its speaker name was resolved, not the description itself)."""
        if quote.speaker_span is None:
            return
        if quote.speaker_name:
            self.said.append((quote.content_spans, quote.speaker_name))
        if quote.speaker_name and named:
            self.speakers.append((quote.speaker_span[0], quote.speaker_name))
        elif _lower_words(quote.speaker)[-1:] and _lower_words(quote.speaker)[-1] in _ANONYMOUS:
            self.unnamed.append((quote.speaker_span[0], quote.speaker_name))

    def _mention(self, span: Span) -> tuple[str, int]:
        """The mention's words for resolution: through a relative pronoun to its antecedent
        ("Collins, who'd"), the part of it that names someone ("Paul Rieckhoff, founder of
        ..." -> "Paul Rieckhoff"), edges cleaned ("EPA," "Scott's", "of Americans") and a
        cut name completed ("John F" -> "John F. Kelly")."""
        toks = self.toks
        a, b = _token_index(toks, span[0]), _token_index(toks, span[1])
        for k in range(a, b):
            if _RELATIVE.match(toks[k].lower):
                return _antecedent(toks, k)
        b = _without_day(toks, a, b)
        words = _named_part(toks, a, b)
        if not words:
            return self.body[span[0]:span[1]], span[0]
        first, last = words
        while last < len(toks) - 2 and len(toks[last - 1].text) == 1 and toks[last - 1].cap \
                and toks[last].text == "." and toks[last + 1].cap:
            last += 2  # "John F" + ". Kelly"
        text, at = _words_from(toks, _description_start(toks, first, last), last)
        return (_POSSESSIVE.sub("", text) if toks[last - 1].cap else text), at

    def resolve(self, mention: str, at: int) -> str:
        """The fullest name the article gives for a mention at offset `at`."""
        words = mention.split()
        if not words:
            return ""
        lowers = [w.lower().rstrip(".") for w in words]
        pronoun = _CONTRACTED.sub("", lowers[0])  # "I’d", "he’s"
        if len(words) == 1 and (pronoun in PRONOUNS or pronoun in _FIRST_PERSON
                                or pronoun in _POSSESSIVE_PRONOUNS):
            return self._pronoun(pronoun, at)
        titles = [k for k, lw in enumerate(lowers) if lw in TITLE_WORDS]
        skip = titles[-1] + 1 if titles else 0
        if skip + 2 < len(words) and lowers[skip] == "of":
            skip += 2  # "Secretary of State John F. Kerry"
        named = [k for k, (w, lw) in enumerate(zip(words, lowers, strict=True))
                 if k >= skip and w[:1].isupper() and lw not in TITLE_WORDS
                 and lw not in _STARTERS]
        if named and _is_description_head(lowers[-1]) and not words[-1][:1].isupper():
            return self._description(lowers, at, [words[k] for k in named])
        if len(named) == 1 and lowers[named[0]] in _GROUP_NOUNS:
            return ""  # "Democrats", "Americans who ...": a group, not a person
        if named and named[-1] < len(words) - 1 and not words[-1][:1].isupper() \
                and not _POSSESSIVE.search(words[named[-1]]):
            return ""  # "the Latino community", "Republican leadership": a name modifies
        if named:
            return _full_name(self.names, words[named[0]:named[-1] + 1])
        return self._description(lowers, at, [])

    def _pronoun(self, pronoun: str, at: int) -> str:
        """"he" / "she": the nearest fitting person (`_salient`); "I" / "we": the speaker of
        the quote they sit in, else (outside quotation marks) the article's author."""
        if pronoun in _THEY or pronoun in _IT:
            return self._subject_antecedent(at, plural=pronoun in _THEY)
        if pronoun == "you":
            return ""
        if pronoun in _FIRST_PERSON:
            inside = [name for spans, name in self.said
                      if any(a <= at < b for a, b in spans)]
            if inside:
                return inside[-1]
            if self.stripped or any(a <= at < b for a, b in self.quoted):
                return self.speakers[-1][1] if self.speakers else ""
            byline = self.author.split()
            return "" if not byline or byline[-1].lower() in _OUTLET_WORDS else self.author
        return self._salient(at, "m" if pronoun in _HE else "f", pronoun=True)

    def _subject_antecedent(self, at: int, plural: bool) -> str:
        """"they" / "it": the subject of the pronoun's sentence written before it, else of
        the one or two sentences before, that agrees in number (plural for "they"; for "it"
        a thing or an organisation, not a person); its fullest name, else the phrase itself
        ("Trump's campaign ... it said" -> "Trump campaign"; "The attendees ... They")."""
        here = _token_index(self.toks, at)
        number = bisect.bisect_right(self.sentence_starts, here) - 1
        for n in range(number, max(number - 3, -1), -1):
            first = self.sentence_starts[n]
            stop = here if n == number else (self.sentence_starts[n + 1]
                                             if n + 1 < len(self.sentence_starts)
                                             else len(self.toks))
            phrase = _subject_phrase(self.toks, first, stop)
            if phrase is None or not self._agrees(phrase, plural):
                continue
            text, start = _words_from(self.toks, *phrase)
            return self.resolve(text, start) or self.described((self.toks[phrase[0]].start,
                                                                self.toks[phrase[1] - 1].end))
        return ""

    def _agrees(self, phrase: tuple[int, int], plural: bool) -> bool:
        """Whether a subject phrase can be "they" (`plural`) or "it" (a thing or body)."""
        head = self.toks[phrase[1] - 1]
        lower = _POSSESSIVE.sub("", head.lower)
        if lower in PRONOUNS or lower in _FIRST_PERSON:
            return False
        many = lower in _GROUP_NOUNS or (not head.cap and lower.endswith("s")
                                         and not lower.endswith(("ss", "us", "is")))
        if plural:
            return many
        first = self.toks[phrase[0]].lower
        person = (lower in _PERSON_NOUNS or lower in TITLE_WORDS or lower in _ANONYMOUS
                  or first in _INDEFINITE_PERSONS
                  or any(start == head.start or full.endswith(head.text)
                         for start, full, _ in self.names.persons if head.cap))
        return not many and not person

    def _salient(self, at: int, want: str, pronoun: bool = False) -> str:
        """The nearest person before `at` that fits `want` ("m", "f" or "" for either),
        among earlier speakers and the people who start a sentence (subjects), else any
        person mentioned before who fits; for a pronoun, first the first person of its
        gender named in its own sentence before it (`_sentence_people`)."""
        names = self.names
        people = {full for _, full, _ in names.persons}

        def fits(name: str) -> bool:
            return name in people and (not want or names.gender.get(name, want) == want)
        subjects = [(start, full) for start, full, initial in names.persons if initial]
        near = [(start, name) for start, name in [*self.speakers, *subjects]
                if start < at and fits(name)]
        unnamed = [(start, described) for start, described in self.unnamed if start < at]
        own = self._sentence_people(at, want) if pronoun else []
        if unnamed and max(unnamed)[0] > max([start for start, _ in [*near, *own]], default=-1):
            return max(unnamed)[1]  # "A campaign aide said he ...": the aide, as described
        if own:
            return own[0][1]
        if near:
            return max(near)[1]
        before = [full for start, full, _ in names.persons if start < at and fits(full)]
        return before[-1] if before else ""

    def _sentence_people(self, at: int, want: str) -> list[tuple[int, str]]:
        """People of the gender `want` named in the pronoun's own sentence before it and
        before any earlier pronoun of that gender, outside quotation marks, first first
        ("Donald Trump drew boos from the audience when he", "Lindsey Graham called out his
        rival Donald Trump ..., which he"; not "Though he did not mention Rubio, he")."""
        here = _token_index(self.toks, at)
        number = bisect.bisect_right(self.sentence_starts, here) - 1
        if not want or number < 0:
            return []
        first = self.sentence_starts[number]
        gendered = _HE_PRONOUNS if want == "m" else _SHE_PRONOUNS
        stop = next((k for k in range(first, here) if self.toks[k].lower in gendered
                     and not self._in_quote(self.toks[k].start)), here)
        begin, end = self.toks[first].start, self.toks[stop].start
        return [(start, full) for start, full, _ in self.names.persons
                if begin <= start < end and self.names.gender.get(full) == want
                and not self._in_quote(start)]

    def _in_quote(self, offset: int) -> bool:
        """Whether an offset lies inside quotation marks (a name there is not a referent)."""
        return any(a <= offset < b for a, b in self.quoted)

    def _description(self, lowers: list[str], at: int, modifiers: list[str]) -> str:
        """A description: an outlet noun to the outlet named before, an organisation noun
        to the organisation ("the Clinton campaign", "the fund"), a group of people to no
        one, a title to the name it was attached to, and a definite person description ("the
        candidate", "the Vermont senator") to the nearest person that fits."""
        words, head = _head_of([w for w in lowers if w not in _DETERMINERS])
        if head in _OUTLET_NOUNS:
            before = [name for start, name in self.names.outlets if start < at]
            return before[-1] if before else (self.names.outlets[0][1]
                                              if self.names.outlets else "")
        if head in _ORG_NOUNS:
            return self._organisation(head, at, modifiers) or self._owned(lowers, head, at)
        if head in _GROUP_NOUNS or not head:
            return ""
        titled = _titled_name(self.names, " ".join(words), at)
        if titled or head in _ANONYMOUS or lowers[0] not in ("the", "this", "that"):
            return titled
        if head in TITLE_WORDS or _is_person_noun(head) or head.endswith("-old"):
            want = "f" if head in _FEMALE_NOUNS else "m" if head in _MALE_NOUNS else ""
            return self._title_holder(head, at, modifiers) or self._salient(at, want)
        return ""

    def _owned(self, lowers: Sequence[str], head: str, at: int) -> str:
        """"his campaign" with no "<Name> campaign" written before: the campaign of the
        person "his" resolves to ("Ted Cruz campaign"), else no one (train, 240 articles: 3
        right, 1 wrong; "his office" was more often another person's)."""
        if head != "campaign" or not lowers or lowers[0] not in ("his", "her"):
            return ""
        owner = self._pronoun(lowers[0], at)
        return f"{owner} {head}" if owner else ""

    def _title_holder(self, head: str, at: int, modifiers: Sequence[str] = ()) -> str:
        """The person last named before `at` with a title of this head ("the governor" ->
        "Gov. Chris Christie") and the description's capitalised words ("the Florida
        senator" is not "Vermont Sen. Bernie Sanders"), else ""."""
        wanted = {m.lower().rstrip(".") for m in modifiers}

        def fits(title: str) -> bool:
            words = [_TITLE_NOUNS.get(w.rstrip("."), w.rstrip(".")) for w in title.split()]
            return head in words and wanted <= set(words)
        holders = [(start, full) for start, title, full in self.names.by_title
                   if start < at and fits(title)]
        if not holders:
            return ""
        full = max(holders)[1]
        last = full.split()[-1].lower() if full else ""
        return self.names.by_last.get(last, full) if len(full.split()) == 1 else full

    def _organisation(self, head: str, at: int, modifiers: list[str]) -> str:
        """"the Clinton campaign" -> "Clinton campaign"; "the fund" -> the last organisation
        named before that ends in the noun; "the campaign" -> the last "<Name> campaign"
        written before; "the ministry" -> "China's foreign ministry" written just before
        (NEAR_ORGANISATION); else no one."""
        if modifiers:
            return " ".join([*(_POSSESSIVE.sub("", m) for m in modifiers), head])
        named = [name for start, name in self.names.orgs
                 if start < at and (name.lower().endswith(" " + head)
                                    or f" {head} of " in f" {name.lower()} ")]
        if named:
            return named[-1]
        pattern = re.compile(r"\b((?:[A-Z][\w-]*(?:['’]s)? )+)((?:[a-z]+ ){0,2})"
                             + re.escape(head) + r"\b")
        for found in reversed(list(pattern.finditer(self.body, 0, at))):
            owner = [w for w in found.group(1).split()
                     if w.lower() not in _STARTERS and w.lower() not in _CALENDAR]
            between = found.group(2).split()
            if owner and not any(w in _NOT_IN_PHRASE or w in _DETERMINERS for w in between) \
                    and (not between or at - found.end() <= NEAR_ORGANISATION):
                owner = owner if between else [_POSSESSIVE.sub("", w) for w in owner]
                return " ".join([*owner, *between, head])
        return ""


#: "the ministry" takes a "<Name> <adjective> ministry" written at most this many characters
#: before it ("China's foreign ministry").
NEAR_ORGANISATION = 300
#: Title words that modify a head rather than end a description ("former employees").
_TITLE_MODIFIERS = wordset("former deputy vice prime acting chief senior top")
#: Abbreviated titles as the nouns a description uses ("Sen. X" is "the senator").
_TITLE_NOUNS = {"sen": "senator", "gov": "governor", "rep": "representative",
                "gen": "general", "pres": "president"}


def _head_of(words: list[str]) -> tuple[list[str], str]:
    """A description's words up to its head noun, and the head: the last word a
    description can end in ("the judge rubbed" -> "judge"), before an "of" that follows
    it ("former secretary of state" -> "secretary")."""
    heads = [k for k, w in enumerate(words)
             if _is_description_head(w) and w not in _TITLE_MODIFIERS]
    if not heads:
        return words, words[-1] if words else ""
    last = heads[-1]
    if last + 1 < len(words) and words[last + 1] != "of":
        words = words[:last + 1]
    return words, words[last]


def _lower_words(mention: str) -> list[str]:
    """The mention's words in lower case, punctuation dropped."""
    return [w.lower() for w in re.findall(r"\w[\w'’-]*", mention)]


def _is_description_head(word: str) -> bool:
    """A lower-case noun a description can end in (not a name)."""
    return (word in _OUTLET_NOUNS or word in _ANONYMOUS or word in _ORG_NOUNS
            or word in _GROUP_NOUNS or word in TITLE_WORDS or _is_person_noun(word)
            or word.endswith("-old"))


def _titled_name(names: _Names, phrase: str, at: int) -> str:
    """The name a title was attached to ("the defense minister" -> "Elisabetta Trenta"),
    the latest before `at` (else the first after)."""
    best = ""
    for start, title, full in names.by_title:
        fits = title == phrase or title.endswith(" " + phrase) or (
            " " in title and phrase.endswith(" " + title))  # "former secretary of state"
        if phrase and fits and (start < at or not best):
            best = full
    last = best.split()[-1].lower() if best else ""
    return names.by_last.get(last, best) if len(best.split()) == 1 else best


def _named_part(toks: Sequence[_Tok], a: int, b: int) -> tuple[int, int] | None:
    """Token range of the part of a mention that names someone: split at commas and
    brackets, the first part with a name word (else the first part), punctuation and
    leading prepositions dropped."""
    parts: list[tuple[int, int]] = []
    start = a
    for k in range(a, b + 1):
        if k == b or toks[k].text in ",()[];:—–":
            if k > start:
                parts.append((start, k))
            start = k + 1
    cleaned = []
    for first, last in parts:
        while first < last and (not toks[first].text[0].isalnum() or toks[first].lower in
                                ("of", "by", "from", "and", "to")):
            first += 1
        while last > first and not toks[last - 1].text[0].isalnum():
            last -= 1
        if last > first:
            cleaned.append((first, last))
    named = [(f, la) for f, la in cleaned if any(
        t.cap and t.lower not in TITLE_WORDS and t.lower not in _STARTERS
        and t.lower not in _NUMBER_WORDS for t in toks[f:la])]
    chosen = named or cleaned
    return chosen[0] if chosen else None


def _without_day(toks: Sequence[_Tok], a: int, b: int) -> int:
    """A mention's end before a closing day adjunct ("the board of elections on Monday",
    "The report published Tuesday"), not "Super Tuesday"."""
    while b - 1 > a and not toks[b - 1].text[0].isalnum():
        b -= 1
    if b - 1 > a and toks[b - 1].lower in _CALENDAR and not toks[b - 2].cap:
        b -= 1
        if b - 1 > a and toks[b - 1].lower in ("on", "last", "this", "next"):
            b -= 1
    return b


def _description_start(toks: Sequence[_Tok], first: int, last: int) -> int:
    """A lower-case mention cut before its determiner ("estate tycoon" of "the real estate
    tycoon") starts at the determiner, at most three words back."""
    if toks[first].cap or toks[first].lower in _DETERMINERS:
        return first
    for k in range(first - 1, max(first - 4, -1), -1):
        if toks[k].lower in ("the", "this", "that"):
            return k
        if not toks[k].text[0].isalpha() or toks[k].cap or toks[k].lower in _NOT_IN_PHRASE:
            break
    return first


#: Capitalised at a sentence's start, not a name ("Two objectors, Lawrence Joyce and ...").
_NUMBER_WORDS = _QUANTIFIERS | wordset("four five six seven eight nine ten dozens hundreds")
_ORG_NOUNS = wordset("""
agency fund committee department office company group organization organisation union council
board court administration party foundation institute ministry commission bank campaign
""")


def _venue(body: str, toks: Sequence[_Tok], cue: Span | None) -> Span | None:
    """The outlet or addressee of an attribution: "told Corriere della Sera", "in an
    interview with Il Fatto Quotidiano" in the cue's sentence."""
    if cue is None:
        return None
    c = _token_index(toks, cue[0])
    if c >= len(toks):
        return None
    whole = _Sentence(toks, 0, len(toks), False, frozenset(), CUE_VERBS)
    end = _venue_end(whole, (c, c + 1))
    if end > c + 1 and toks[end - 1].lower in _OUTLET_NOUNS and end - 2 > c + 1:
        end -= 1
    if end > c + 1:
        a = c + 1 + (toks[c + 1].lower in _DETERMINERS)
        if a < end:
            return (toks[a].start, toks[end - 1].end)
    for k in range(max(0, c - 12), min(len(toks) - 2, c + 12)):
        if toks[k].lower == "interview" and toks[k + 1].lower in ("with", "to"):
            a = k + 2
            b = a
            while b < len(toks) and (toks[b].cap or (toks[b].lower in _NAME_LINKS and b > a)):
                b += 1
            if b > a:
                return (toks[a].start, toks[b - 1].end)
    return None


def _antecedent(toks: Sequence[_Tok], rel: int) -> tuple[str, int]:
    """For a relative "who" / "which" at token `rel`, the mention it refers to: the name
    before it ("Trenta who told", "Obama, who pressed"), through an appositive ("Ted Cruz,
    the Texas senator, who"), else the noun phrase before it ("the star journalist, who")."""
    j = rel - 1
    if j >= 0 and toks[j].text == ",":
        j -= 1
    if j < 0 or not toks[j].text[0].isalpha():
        return toks[rel].text, toks[rel].start
    whole = _Sentence(toks, 0, len(toks), False, frozenset(), CUE_VERBS)
    if toks[j].cap:
        return _words_from(toks, _name_run_back(whole, j, max(0, j - 8)), j + 1)
    for k in range(j, max(j - 10, 0), -1):
        if toks[k].text in ".;:!?" or toks[k].text in _QUOTE_CHARS:
            break
        if toks[k].text == "," and whole.is_name_word(k - 1) and (
                toks[k + 1].lower in _ARTICLES or toks[k + 1].cap):
            return _words_from(toks, _name_run_back(whole, k - 1, max(0, k - 9)), k)
    a = j
    while a > 0 and j - a < 5 and toks[a].lower not in _DETERMINERS:
        before = toks[a - 1]
        if not before.text[0].isalpha() or (before.cap and (
                before.brk or before.lower in _STARTERS)) or (
                before.lower in _NOT_IN_PHRASE and before.lower not in _DETERMINERS):
            break
        a -= 1  # capitalised modifiers too: "the Latino community", "wealthy Chinese citizens"
    return _words_from(toks, a, j + 1)


def _words_from(toks: Sequence[_Tok], a: int, b: int) -> tuple[str, int]:
    """Tokens a..b as mention words (a full stop kept on its word: "John F. Kelly") and the
    offset they start at."""
    words: list[str] = []
    for tok in toks[a:b]:
        if tok.text == "." and words:
            words[-1] += "."
        else:
            words.append(tok.text)
    return " ".join(words), toks[a].start



# ---------------------------------------------------------------- cue syntax (tagger linking)

#: A passive cue: maybe an auxiliary, a form of "be" (or "get"), adverbs, a participle
#: ("was first reported", "has been criticized", "are considered", "were shown"; the
#: auxiliary and adverbs other than "-ly" ones, train: +0.05 points speaker match).
_PASSIVE = re.compile(r"(?:(?:has|have|had|will|would|could|may|might|must|should)\s+"
                      r"(?:(?:not|also|\w+ly)\s+)*)?"
                      r"(?:is|are|was|were|been|being|be|get|got|gets)\s+"
                      r"(?:(?:\w+ly|first|also|not|just|now|still|even|already|never|often|long)"
                      r"\s+)*"
                      r"(\w+(?:ed|en)|known|shown|seen|heard|met|told|held|thought|said|left"
                      r"|found|sent)\b", re.IGNORECASE)
#: A form of "be" that ends right where a cue starts.
_BE_BEFORE = re.compile(r"\b(?:is|are|was|were|been|being|be)\s+$")
#: Participles of inner states: "X is convinced that ...", where X is the source.
_STATE_PARTICIPLES = wordset("""
concerned convinced divided focused devoted worried delighted tired pleased interested
determined committed prepared opposed inclined disappointed frustrated surprised impressed
dismayed alarmed troubled satisfied excited outraged offended annoyed angered relieved
encouraged shocked outspoken startled
""")
#: A negated or modified passive ("is not expected", "is also expected", "wasn’t even
#: invited") or one after an auxiliary ("has been asked", "was being challenged", "will
#: informally be dubbed"), which `_PASSIVE` leaves to the linked source ("isn’t expected"
#: alone: no gain on train).
_PASSIVE_MODIFIED = re.compile(
    r"(?:(?:is|are|was|were|been|being|be|isn[’']t|wasn[’']t|aren[’']t|weren[’']t)\s+"
    r"(?:(?:not|also|\w+ly)\s+)+"
    r"|(?:has|have|had|will|would|could|may|might|must|should|is|are|was|were)\s+"
    r"(?:(?:not|also|\w+ly)\s+)*(?:been|being|be)\s+(?:(?:not|also|\w+ly)\s+)*)"
    r"(\w+(?:ed|en))\b", re.IGNORECASE)
#: An evidential cue alone ("Trump seemed", "the statistics appear"): the writer's
#: reading of its subject, whom PolNeAR does not make the source.
_EVIDENTIAL = re.compile(r"(?:appear|appears|appeared|seem|seems|seemed)(?:\s+(?:to|somewhat))?",
                         re.IGNORECASE)
#: Criticism received ("came under fire", "has fielded sharp criticism on"): the subject
#: is its target; the critics, unless "from" names them, are unnamed.
_UNDER_CRITICISM = re.compile(
    r"(?:(?:has|have|had)\s+)?(?:came|come|comes|coming)\s+under\b"
    r"|(?:(?:has|have|had)\s+)?(?:endured|fielded|faced|faces|face|facing)\b.*\bcriticism\b",
    re.IGNORECASE)
#: What closes a relative clause before the main clause's cue ("Beck, who ..., intended").
_CLAUSE_CLOSE = re.compile(r"[,—–]")
#: "when asked whether ...": the asker is not named.
_ASKED_AFTER = wordset("when whenever if after once while as before being")
#: Words that end the agent of a passive ("by some of his rivals for failing ...").
_AGENT_STOPS = wordset("""
for to as that in on at over about after before during while when because since with
""")
#: Agent words at most this many ("was first reported by MSNBC"), and "by" at most
#: AGENT_GAP words after the participle ("was appointed to the court by President X").
AGENT_WORDS = 8
AGENT_GAP = 5


@dataclass(frozen=True)
class CueSyntax:
    """The rules' view of who a cue belongs to, for a tagger's cue spans (character
    offsets): the subject written before it, a participle's sentence subject, a passive's
    agent, or no one. Made once per text (`of`)."""

    text: str
    toks: Sequence[_Tok]
    starts: Sequence[int]

    @classmethod
    def of(cls, text: str) -> CueSyntax:
        toks = _tokens(text)
        return cls(text, toks, tuple(a for a, _ in _sentences(text, toks, is_stripped(text))))

    def _sentence(self, cue: Span) -> tuple[_Sentence, int] | None:
        """The sentence holding the cue's first token, and that token's index."""
        c = _token_index(self.toks, cue[0])
        if c >= len(self.toks):
            return None
        n = bisect.bisect_right(self.starts, c) - 1
        end = self.starts[n + 1] if n + 1 < len(self.starts) else len(self.toks)
        return _Sentence(self.toks, self.starts[n], end, False, frozenset(), CUE_VERBS), c

    def _span(self, a: int, b: int) -> Span:
        return (self.toks[a].start, self.toks[b - 1].end)

    def subject_before(self, cue: Span) -> Span | None:
        """The source written right before the cue in its sentence ("the company balked",
        "Trump, in Kentucky, said"), as the rules find it (`_source_before`)."""
        found = self._sentence(cue)
        if found is None:
            return None
        sent, c = found
        got = _source_before(sent, c, sent.start)
        return self._span(*got) if got else None

    def source_after(self, cue: Span) -> Span | None:
        """"..., according to the results": the source written after "according to"."""
        found = self._sentence(cue)
        if found is None or self.toks[found[1]].lower != "according":
            return None
        sent, c = found
        if c + 1 >= sent.end or self.toks[c + 1].lower != "to":
            return None
        got = _source_after(sent, c + 1)
        return self._span(*got) if got else None

    def coordinated_subject(self, cue: Span) -> Span | None:
        """"Carson took the stage and called the system rotten": a cue after "and" (maybe
        with "has", "also") belongs to the sentence's subject."""
        found = self._sentence(cue)
        if found is None:
            return None
        sent, c = found
        j = c - 1
        while j > sent.start and self.toks[j].lower in _BETWEEN:
            j -= 1
        if j <= sent.start or self.toks[j].lower != "and":
            return None
        got = _subject(sent, c)
        return self._span(*got) if got else None

    def participle_subject(self, cue: Span) -> Span | None:
        """", saying ...", ", calling him ...": the first name or pronoun of the sentence."""
        found = self._sentence(cue)
        if found is None:
            return None
        sent, c = found
        if not (self.toks[c].lower.endswith("ing") and c > sent.start
                and self.toks[c - 1].text == ","):
            return None
        got = _subject(sent, c)
        return self._span(*got) if got else None

    def _passive(self, cue: Span) -> re.Match[str] | None:
        """A passive cue, its form of "be" inside it or right before it ("was" + "called by
        the SVP"; train: +0.2 points speaker match); a state ("is convinced") is not one."""
        start = cue[0]
        be = _BE_BEFORE.search(self.text, max(0, start - 8), start)
        found = _PASSIVE.match(self.text, be.start() if be else start, cue[1])
        return found if found and found.group(1).lower() not in _STATE_PARTICIPLES else None

    def passive_agent(self, cue: Span) -> Span | None:
        """"was rejected by 64 percent of the electorate": the agent after "by" (at most
        AGENT_GAP words after the participle, at most AGENT_WORDS words long)."""
        found = self._passive(cue)
        if found is None:
            return None
        by = re.compile(r"\bby\s+").search(self.text, found.end(), cue[1] + 40)
        if by is None or len(self.text[found.end():by.start()].split()) > AGENT_GAP:
            return None
        toks = self.toks
        k = j = _token_index(toks, by.end())
        while j < len(toks) and j - k < AGENT_WORDS and toks[j].text[0].isalnum() and (
                j == k or toks[j].lower not in _AGENT_STOPS):
            j += 1
        return self._span(k, j) if j > k else None

    def relative_antecedent(self, source: Span, cue: Span) -> Span | None:
        """"Barkley, who said he votes Democratic, said ...": a source that is a relative
        "who" / "which" after a comma, whose clause closes (a comma or dash) before the cue,
        is the noun phrase it attaches to: the cue is the main clause's, not the relative's
        ("Franklin Graham, who has vowed" keeps "who"; train: +0.24 points speaker match)."""
        toks = self.toks
        rel = _token_index(toks, source[0])
        if rel < 2 or rel >= len(toks) or not _RELATIVE.match(toks[rel].lower) \
                or toks[rel - 1].text != "," or cue[0] < toks[rel].end:
            return None
        clause = self.text[toks[rel].end:cue[0]]
        if "\n" in clause or clause.lstrip().startswith((",", "—", "–")) \
                or _CLAUSE_CLOSE.search(clause) is None:
            return None  # "who, on a press call, criticized": the relative's own cue
        first = _token_index(toks, _antecedent(toks, rel)[1])
        if first > 0 and toks[first - 1].lower in _DETERMINERS:
            first -= 1  # "The complaint, which ..."
        start, end = toks[first].start, toks[rel - 2].end
        start = max(start, self.text.rfind("\n", start, end) + 1)  # not the line before
        return (start, end) if start < source[0] else None

    def has_no_source(self, cue: Span) -> bool:
        """A cue whose subject is not its source: a passive without "by" ("was announced
        the winner", "are expected to") or "Asked ..." / "when asked ..." (the asker is
        unnamed; train: +1.0 point speaker match together)."""
        words = self.text[cue[0]:cue[1]]
        before = self.text[max(0, cue[0] - 12):cue[0]].split()[-1:]
        asked = words.startswith("Asked") or (words.startswith("asked") and bool(before)
                                              and before[0].lower() in _ASKED_AFTER)
        return asked or unsourced_cue(words) or (
            self._passive(cue) is not None and self.passive_agent(cue) is None
            and re.search(r"\bby\b", words) is None)


def unsourced_cue(words: str) -> bool:
    """A cue whose subject PolNeAR does not make its source, by its words alone: an evidential
    ("seemed", "appear to"), criticism received without "from" ("came under", "fielded
    criticism"), a negated, modified or auxiliary passive without "by" ("is not expected",
    "has been asked"); chosen on 240 train.jsonl articles (speaker match +0.32, +0.07 and
    +0.15 points)."""
    if _EVIDENTIAL.fullmatch(words):
        return True
    if _UNDER_CRITICISM.match(words) and re.search(r"\bfrom\b", words) is None:
        return True
    modified = _PASSIVE_MODIFIED.match(words)
    return modified is not None and modified.group(1).lower() not in _STATE_PARTICIPLES \
        and re.search(r"\bby\b", words) is None


def _cue_span(cue: tuple[Span, ...]) -> Span | None:
    """One cue span for the Quote: the whole cue when its parts are close, else the first."""
    if not cue:
        return None
    if cue[-1][1] - cue[0][0] <= 40:
        return (cue[0][0], cue[-1][1])
    return cue[0]


def to_quotes(article: Article, attributions: Sequence[Attribution]) -> tuple[Quote, ...]:
    """Stage 2: attributions as Quote records, speakers resolved to the fullest name the
    article gives, venues found, kind direct / indirect (None for text without punctuation)."""
    return _to_quotes(article, attributions, _tokens(article.body))


def _to_quotes(article: Article, attributions: Sequence[Attribution],
               toks: Sequence[_Tok]) -> tuple[Quote, ...]:
    """Stage 2 on tokens already made; earlier quotes help resolve pronouns."""
    body = article.body
    stripped = is_stripped(body)
    quoted = () if stripped else tuple(_quote_spans(body))
    resolver = _Resolver(body, toks, _article_names(toks, quoted), article.author, stripped,
                         quoted, tuple(a for a, _ in _sentences(body, toks, stripped)))
    out: list[Quote] = []
    seen: set[str] = set()
    for att in sorted(attributions, key=lambda x: x.content[0]):
        speaker_span = att.source[0] if att.source else None
        name = resolver.name_of(speaker_span) if speaker_span else ""
        quote = _quote(article, att, toks, resolver, name or (
            resolver.described(speaker_span) if speaker_span else ""))
        if quote.id in seen:
            continue
        seen.add(quote.id)
        resolver.remember(quote, named=bool(name))
        out.append(quote)
    return tuple(out)


def _quote(article: Article, att: Attribution, toks: Sequence[_Tok],
           resolver: _Resolver, speaker_name: str) -> Quote:
    """One attribution as a Quote: mention, its name (resolved, or the description
    itself), cue, venue, kind."""
    body = article.body
    spans = tuple(sorted(att.content))
    speaker_span = att.source[0] if att.source else None
    speaker = body[speaker_span[0]:speaker_span[1]] if speaker_span else ""
    cue_span = _cue_span(att.cue)
    venue_span = _venue(body, toks, cue_span)
    first = body[spans[0][0]:spans[0][0] + 1]
    direct = first in _QUOTE_CHARS or body.startswith("''", spans[0][0])
    kind = None if resolver.stripped else ("direct" if direct else "indirect")
    return Quote(
        article_id=article.id, content_spans=spans,
        content=" ... ".join(body[a:b] for a, b in spans),
        speaker=speaker, speaker_span=speaker_span,
        speaker_name=speaker_name,
        cue=body[cue_span[0]:cue_span[1]] if cue_span else "", cue_span=cue_span,
        venue=body[venue_span[0]:venue_span[1]] if venue_span else "", venue_span=venue_span,
        kind=kind, published=article.published, source=article.source)


def extract_quotes(article: Article) -> tuple[Quote, ...]:
    """Every attribution in the article as a Quote: find_attributions, then to_quotes."""
    toks = _tokens(article.body)
    return _to_quotes(article, _find(article.body, toks, CUE_VERBS), toks)
