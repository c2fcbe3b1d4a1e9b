"""Pre-tokenization: Hangul through kiwipiepy's morphological analyser, Latin words and sizes kept whole.

Titles mix scripts ("XP214 리버스 와이드 데님 팬츠 (LIGHT BLUE)"). A whitespace split would keep "팬츠를" and
"팬츠" apart; a plain subword model would cut brand codes and sizes. So: Hangul runs go through kiwipiepy
(morphemes, particles and endings dropped), everything else through a regex that keeps "xp214", "55/66", "100%"
whole. Text with no Hangul never loads kiwi (1.9 s) at all.
"""

from __future__ import annotations

import re
import threading
from typing import Iterable, Sequence

__all__ = ["PreTokenizer", "FASHION_USER_WORDS", "release_kiwi"]

_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
# Latin/number tokens: letters and digits, allowing inner / . - % (sizes "55/66", "2.5", "t-shirt", "100%").
_LATIN = re.compile(r"[0-9a-z]+(?:[/.\-][0-9a-z]+)*%?")

# Kiwi tags kept: nouns, verb/adjective stems, roots, foreign words, numbers, Hanja, serials ("55/66").
_KEEP_TAGS = ("NN", "VV", "VA", "XR", "SL", "SN", "SH", "W_SERIAL", "MAG", "NR", "XPN")

# Fashion words kiwi would otherwise split or mis-tag; kept whole as nouns.
FASHION_USER_WORDS = (
    "쿨링", "와이드", "린넨", "오버핏", "세미오버", "슬림핏", "레귤러핏", "스트레이트", "부츠컷", "조거", "카고",
    "데님", "연청", "중청", "진청", "흑청", "맨투맨", "후드", "후드티", "집업", "니트", "가디건", "블라우스",
    "원피스", "점프수트", "슬랙스", "셔츠", "반팔", "긴팔", "민소매", "나시", "크롭", "피케", "카라", "폴로",
    "스웨트", "트레이닝", "기모", "플리스", "코듀로이", "스판", "울", "캐시미어", "나일론", "폴리",
    "폴라티", "목폴라티", "폴라티셔츠",
)


_KIWI_CACHE: dict[tuple[str, ...], object] = {}
_KIWI_LOCK = threading.Lock()


def release_kiwi() -> None:
    """Drop the process's cached analysers (~200 MB resident each); a PreTokenizer still alive keeps its own, and
    the next one to meet Hangul loads kiwi again (`itemtower index` calls this once it has embedded)."""
    with _KIWI_LOCK:
        _KIWI_CACHE.clear()


class PreTokenizer:
    """Turns raw text into a list of lower-cased word/morpheme strings.

    Args:
        user_words: extra words kiwi must keep whole (added as nouns).
    """

    def __init__(self, user_words: Sequence[str] = FASHION_USER_WORDS) -> None:
        self.user_words = tuple(user_words)
        self._kiwi = None

    def _get_kiwi(self):
        with _KIWI_LOCK:
            if self._kiwi is None:
                # One analyser per word list for the whole process: loading kiwi takes ~2 s.
                if self.user_words not in _KIWI_CACHE:
                    from kiwipiepy import Kiwi  # imported lazily: only needed for Hangul

                    kiwi = Kiwi()
                    for w in self.user_words:
                        kiwi.add_user_word(w, "NNG")
                    _KIWI_CACHE[self.user_words] = kiwi
                self._kiwi = _KIWI_CACHE[self.user_words]
        return self._kiwi

    @staticmethod
    def _latin(text: str) -> list[str]:
        return _LATIN.findall(text.lower())

    def _from_kiwi_tokens(self, text: str, tokens) -> list[str]:
        out: list[str] = []
        prev_end = -1
        for t in tokens:
            if not t.tag.startswith(_KEEP_TAGS):
                prev_end = -1
                continue
            form = t.form.lower()
            # kiwi splits "XP214" into XP + 214: glue Latin/number pieces that touch in the source text.
            if out and t.start == prev_end and t.tag in ("SL", "SN") and _LATIN.fullmatch(out[-1]):
                out[-1] = out[-1] + form
            else:
                out.extend(self._latin(form) if t.tag in ("SL", "SN", "W_SERIAL") else [form])
            prev_end = t.start + t.len
        return out

    def __call__(self, text: str) -> list[str]:
        return self.batch([text])[0]

    def batch(self, texts: Iterable[str]) -> list[list[str]]:
        """Pre-tokenize many texts; kiwi sees only those that contain Hangul."""
        texts = [t or "" for t in texts]
        out: list[list[str] | None] = [None] * len(texts)
        hangul_idx = []
        for i, t in enumerate(texts):
            if _HANGUL.search(t):
                hangul_idx.append(i)
            else:
                out[i] = self._latin(t)
        if hangul_idx:
            kiwi = self._get_kiwi()
            for i, toks in zip(hangul_idx, kiwi.tokenize([texts[i] for i in hangul_idx])):
                out[i] = self._from_kiwi_tokens(texts[i], toks)
        return out  # type: ignore[return-value]
