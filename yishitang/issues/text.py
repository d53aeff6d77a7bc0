"""Search terms for Chinese text: character bigrams (and single characters of short runs).

MongoDB's text index does not segment Chinese, so each issue stores the n-grams of its title
and the start of its description in a multikey index; a query matches issues holding all the
n-grams of the search words.
"""

import re

RUN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]+|[a-z0-9]+")
INDEXED_DESCRIPTION_CHARS = 300  # enough to find an issue; bounds the index size per issue


def ngrams(text: str) -> list[str]:
    terms: list[str] = []
    for run in RUN.findall((text or "").lower()):
        if run.isascii():
            terms.append(run)
        elif len(run) == 1:
            terms.append(run)
        else:
            terms.extend(run[i:i + 2] for i in range(len(run) - 1))
    return list(dict.fromkeys(terms))


def index_terms(title: str, description: str, number: str = "") -> list[str]:
    title_chars = [ch for ch in (title or "") if RUN.fullmatch(ch.lower())]
    return list(dict.fromkeys([*ngrams(title), *title_chars,
                               *ngrams((description or "")[:INDEXED_DESCRIPTION_CHARS]), *ngrams(number)]))


def query_terms(q: str) -> list[str]:
    return ngrams(q)


def similarity(a: list[str], b: list[str]) -> float:
    """Share of the shorter text's bigrams that the other holds (0..1)."""
    sa, sb = set(a), set(b)
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / min(len(sa), len(sb))
