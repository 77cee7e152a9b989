"""Answer post-processing shared by several benchmarks, re-implemented from the V1.2 protocol.

Each function reproduces the behaviour of the original evaluation code, quirks included, because
the reported numbers depend on them. Where the original would crash (empty MC prediction) we return
a value that scores as wrong and let the scorer report it, instead of aborting a whole run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# --- multiple choice (MMBench, ScienceQA, MMMU-MC, MMVP) -------------------------------------------


def mc_postprocess(prediction: str, options: Mapping[str, str]) -> str:
    """Map a free-text answer to an option letter the way the V1.2 MC scripts do.

    Order: strip; a single character is returned as is; a leading option letter wins; else the
    first option (in display order) whose text occurs in the prediction; else the raw stripped text
    (which then scores as wrong). The original indexes ``pred[0]`` on an empty string and crashes;
    we return ``""`` so the item counts as wrong and the caller can report how many were empty.
    """
    pred = prediction.strip()
    if len(pred) == 1:
        return pred
    if not pred:
        return ""
    if pred[0] in options:
        return pred[0]
    for key, text in options.items():
        if text in pred:
            return key
    return pred


# --- edit distance (DocVQA ANLS, MathVista choice matching) ----------------------------------------


def levenshtein(a: str, b: str) -> int:
    """Edit distance with unit costs for insertion, deletion and substitution (code points)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


# --- POPE ---------------------------------------------------------------------------------------


def pope_yes_no(text: str) -> str:
    """Return ``"yes"`` or ``"no"`` for a POPE answer exactly as the POPE eval script decides.

    Keep the text before the first period, drop commas, split on single spaces (no strip: a
    trailing newline glues to the word, as in the original), and answer "no" when one of the words
    is ``No``, ``not`` or ``no``; everything else, including empty text, counts as "yes".
    """
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if ("No" in words or "not" in words or "no" in words) else "yes"


# --- VQA answer normalization (official VQA evaluation / LAVIS VQAEval) -------------------------

# Contractions written without apostrophes are mapped back to the apostrophe form. The table is
# the official one, including its oddities: keys with capitals ("Im", "Ive", ...) never match
# because lookup happens after lower-casing, and "somebody'd" maps the "wrong" way round.
VQA_CONTRACTIONS: dict[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
    "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
    "let's": "let's", "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
    "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at",
    "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas",
    "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't",
    "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's",
    "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}  # fmt: skip

VQA_NUMBER_WORDS: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
VQA_ARTICLES: frozenset[str] = frozenset({"a", "an", "the"})

# Punctuation handled one character at a time, in this order. Periods are treated separately.
VQA_PUNCTUATION: tuple[str, ...] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!",
)  # fmt: skip

_DIGIT_COMMA_DIGIT = re.compile(r"(\d)(,)(\d)")
# The official pattern is written ``(?!<=\d)(\.)(?!\d)``: the first group is a *lookahead* for the
# two characters "<=" plus a digit (a typo for a lookbehind), which always succeeds in front of a
# period. The effective rule is therefore "remove every period not followed by a digit", so "5." loses
# its period while "3.5" keeps it. We keep the pattern verbatim to keep that behaviour.
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
# The official code passes ``re.UNICODE`` (== 32) as the positional *count* of ``Pattern.sub``, so at
# most 32 periods are removed per answer. Reproduced for parity.
_PERIOD_STRIP_COUNT = int(re.UNICODE)


def vqa_process_punctuation(text: str) -> str:
    """Official VQA punctuation step.

    A punctuation character is deleted everywhere if it (any occurrence) touches a space in the
    *input* text, or if the input has a digit-comma-digit pattern (so "1,000" -> "1000"); otherwise
    it is replaced by a space. Then periods not followed by a digit are removed.
    """
    out = text
    has_digit_comma = _DIGIT_COMMA_DIGIT.search(text) is not None
    for p in VQA_PUNCTUATION:
        if (p + " " in text or " " + p in text) or has_digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, _PERIOD_STRIP_COUNT)


def vqa_process_digit_article(text: str) -> str:
    """Official VQA word step: lowercase, number words to digits, drop articles, restore contractions."""
    words = []
    for word in text.lower().split():
        word = VQA_NUMBER_WORDS.get(word, word)
        if word not in VQA_ARTICLES:
            words.append(word)
    return " ".join(VQA_CONTRACTIONS.get(w, w) for w in words)


def vqa_clean_whitespace(text: str) -> str:
    """Newlines and tabs become spaces, then strip (applied to prediction and GT answers alike)."""
    return text.replace("\n", " ").replace("\t", " ").strip()


def vqa_normalize_prediction(text: str) -> str:
    """Full normalization InternVL's VQAEval copy applies to every prediction."""
    return vqa_process_digit_article(vqa_process_punctuation(vqa_clean_whitespace(text)))
