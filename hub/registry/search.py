"""Searching adapters: the `q=` of the REST list and the web UI's search box (through `AdapterFilterSet`).

On PostgreSQL each adapter carries a stored, weighted full-text document (`Adapter.search_document`, GIN
index): A the adapter's name; B its task and subtask (names and display names); C its namespace and base
model; D its description. A query matches adapters whose document holds every word of the query: the last
one as a word prefix (`sent` finds `sentiment`), the ones before it as whole words (`_with_prefix_flags`);
ranked by `ts_rank` over those weights. When nothing matches, trigram similarity (`pg_trgm`, GIN trigram
indexes on the names) proposes queries that do ("did you mean").

The document is a column kept up to date on save and when a related name changes (hub.registry.signals),
not a generated column: PostgreSQL's generated columns cannot read other tables, and the task, subtask,
namespace and base model names live there.

Elsewhere (the embedded SQLite of `make run`) the same functions fall back to a case-insensitive match of
each word in the same fields, the last at the start of a word and the others as whole words (a regular
expression, not `icontains`: a substring match would find `bert` inside `roberta`, which full-text search
does not), ordered by name matches first, and to difflib for suggestions; on small catalogues both find the
same adapters (tests/hub/registry/test_search_fallback.py).
"""

import difflib
import itertools
import re

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector, TrigramSimilarity
from django.core.cache import cache
from django.db import connection
from django.db.models import Case, F, Func, IntegerField, Lookup, OuterRef, Q, QuerySet, Subquery, Value, When

from hub.registry.caching import cache_key, registry_generation
from hub.registry.models import Adapter, BaseModel, Namespace, SearchWord, Subtask, Task

# No stemming and no stop words: names (`bert-base-uncased`, `sst-2`, `de`) are identifiers, not English.
SEARCH_CONFIG = "simple"
# A query word: letters and digits, possibly joined by dots or hyphens (`sst-2`, `v1.0`). Anything else
# (quotes, operators) separates words, so no user text reaches tsquery syntax.
WORD_PATTERN = re.compile(r"\w+(?:[.-]\w+)*")
MAX_QUERY_WORDS = 10
SUGGESTION_LIMIT = 3
# How many matches a search ranks (see `by_relevance`).
RELEVANCE_CANDIDATES = 1000
# Names that suggestions are drawn from (adapters: public ones only, so private names never leak).
SUGGESTION_SOURCES = (
    (Task, "name"),
    (Task, "display_name"),
    (Subtask, "name"),
    (Subtask, "display_name"),
    (Namespace, "name"),
    (BaseModel, "model_name"),
    (Adapter, "name"),
)
FALLBACK_SIMILARITY_CUTOFF = 0.6


def uses_full_text_search() -> bool:
    return connection.vendor == "postgresql"


def search_words(text: str) -> list[str]:
    """The words of a query, lower-cased, at most MAX_QUERY_WORDS."""
    return [word.lower() for word in WORD_PATTERN.findall(text or "")][:MAX_QUERY_WORDS]


# --------------------------------------------------------------------------------------------------
# The stored document
# --------------------------------------------------------------------------------------------------


def _related(model, field: str, foreign_key: str) -> Subquery:
    return Subquery(model.objects.filter(pk=OuterRef(foreign_key)).values(field)[:1])


def search_document():
    """The expression of an adapter's search document (an UPDATE reads related names through subqueries)."""
    return (
        SearchVector("name", weight="A", config=SEARCH_CONFIG)
        + SearchVector(
            _related(Task, "name", "task_id"),
            _related(Task, "display_name", "task_id"),
            _related(Subtask, "name", "subtask_id"),
            _related(Subtask, "display_name", "subtask_id"),
            weight="B",
            config=SEARCH_CONFIG,
        )
        + SearchVector(
            _related(Namespace, "name", "namespace_id"),
            _related(BaseModel, "model_name", "base_model_id"),
            weight="C",
            config=SEARCH_CONFIG,
        )
        + SearchVector("description", weight="D", config=SEARCH_CONFIG)
    )


def refresh_search_documents(adapters: QuerySet) -> int:
    """Recompute the search document of `adapters` (one UPDATE). Returns how many were updated; 0 without
    full-text search."""
    if not uses_full_text_search():
        return 0
    updated = adapters.order_by().update(search_document=search_document())
    if updated:
        # The documents' words, for the completion of a search's last word (`_prefix_query`).
        ids_sql, ids_params = adapters.order_by().values("pk").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO registry_searchword (word) SELECT DISTINCT unnest(tsvector_to_array(search_document)) "
                f"FROM registry_adapter WHERE id IN ({ids_sql}) ON CONFLICT (word) DO NOTHING",
                ids_params,
            )
    return updated


# --------------------------------------------------------------------------------------------------
# Matching and ranking
# --------------------------------------------------------------------------------------------------


def _full_text_query(words: list[str], last_is_prefix: bool = True) -> SearchQuery:
    # The last word as a prefix, the ones before it as whole words (`is_prefix`). The words contain no quotes
    # (WORD_PATTERN), and the query is a parameter.
    raw = " & ".join(
        _prefix_query(word) if is_prefix else f"'{word}'"
        for word, is_prefix in _with_prefix_flags(words, last_is_prefix)
    )
    return SearchQuery(raw, search_type="raw", config=SEARCH_CONFIG)


# A word that PostgreSQL's parser keeps whole, as one lexeme, under the 'simple' configuration.
PLAIN_LEXEME = re.compile(r"[a-z0-9]+")
# A hyphenated word: the parser indexes it, its parts and so its first part on its own (`co-op` as `co-op`,
# `co` and `op`).
HYPHENATED_LEXEME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+")
# How many words a last word may complete to and still be searched as them (`_prefix_query`).
MAX_PREFIX_COMPLETIONS = 64
COMPLETIONS_CACHE_SECONDS = 5


def _prefix_query(word: str) -> str:
    """The tsquery text of a query's last word, which matches as the start of a word.

    GIN answers a prefix (`'imdb':*`) by collecting every posting of every word it starts before it can
    intersect them with the other words; whole words it intersects in the index, skipping ahead in the common
    ones. So a prefix that completes to at most MAX_PREFIX_COMPLETIONS words (hub.registry.models.SearchWord)
    is searched as those words (`('imdb' | 'imdbx')`): at a million adapters the candidates' query of
    `biomedical imdb` took 12.5 ms with the prefix and 3.4 ms with its completions. The completions find the
    same documents: a hyphenated completion is left out because its first part, a plain word that also starts
    with `word`, is in the same documents; any other kind (`v1.0`, a non-ASCII word), too many completions, or
    none keep the prefix."""
    prefix = f"'{word}':*"
    if not PLAIN_LEXEME.fullmatch(word):
        return prefix
    # A search builds its query twice (the match and the candidates' rank): looked up once, and kept as briefly
    # as a list answer (a word uploaded through another process may be completed a few seconds late).
    completions = cache.get_or_set(
        cache_key("registry:completions", registry_generation(), word),
        lambda: list(
            SearchWord.objects.filter(word__startswith=word).values_list("word", flat=True)[
                : MAX_PREFIX_COMPLETIONS + 1
            ]
        ),
        COMPLETIONS_CACHE_SECONDS,
    )
    plain = [completion for completion in completions if PLAIN_LEXEME.fullmatch(completion)]
    covered = all(
        PLAIN_LEXEME.fullmatch(completion) or HYPHENATED_LEXEME.fullmatch(completion)
        for completion in completions
    )
    if not plain or not covered or len(completions) > MAX_PREFIX_COMPLETIONS:
        return prefix
    return "(" + " | ".join(f"'{completion}'" for completion in sorted(plain)) + ")"


def _with_prefix_flags(words: list[str], last_is_prefix: bool = True) -> list[tuple[str, bool]]:
    """Each word of a query with whether it matches as the start of a word: the last one only (none when
    `last_is_prefix` is false: a "did you mean" proposal is made of whole names).

    A search box is typed left to right: the last word may be unfinished (`biomed` finds `biomedical`), the
    words before it were finished when the next one was started, so they match whole words (`bio medical`
    does not find `biomedical`). GIN collects every posting of a prefix before it can intersect them, where
    whole words are intersected in the index: at a million adapters the index scan of `'biomedical':* &
    'imdb':*` takes about 30 ms, of `'biomedical' & 'imdb':*` 15 ms, of the two whole words 3 ms."""
    last = len(words) - 1 if last_is_prefix else -1
    return [(word, index == last) for index, word in enumerate(words)]


FALLBACK_FIELDS = (
    "name",
    "description",
    "task__name",
    "task__display_name",
    "subtask__name",
    "subtask__display_name",
    "namespace__name",
    "base_model__model_name",
)


def _word_start(word: str) -> str:
    """A regular expression for `word` at the start of a word (what a prefix query of full-text search finds)."""
    return rf"(^|\W){re.escape(word)}"


def _whole_word(word: str) -> str:
    """A regular expression for `word` as a whole word (what a plain query of full-text search finds)."""
    return rf"(^|\W){re.escape(word)}(\W|$)"


def _word_pattern(word: str, is_prefix: bool) -> str:
    """The regular expression a query's word is matched with on the fallback (see `_with_prefix_flags`)."""
    return _word_start(word) if is_prefix else _whole_word(word)


def _fallback_condition(word: str, is_prefix: bool) -> Q:
    pattern = _word_pattern(word, is_prefix)
    condition = Q()
    for field in FALLBACK_FIELDS:
        condition |= Q(**{f"{field}__iregex": pattern})
    return condition


def matching(adapters: QuerySet, text: str, last_is_prefix: bool = True) -> QuerySet:
    """The adapters of `adapters` that `text` finds (every word must occur; the last as the start of a word
    unless `last_is_prefix` is false). Text without words finds all."""
    words = search_words(text)
    if not words:
        return adapters
    if uses_full_text_search():
        return adapters.filter(search_document=_full_text_query(words, last_is_prefix))
    for word, is_prefix in _with_prefix_flags(words, last_is_prefix):
        adapters = adapters.filter(_fallback_condition(word, is_prefix))
    return adapters


def relevance_candidates(adapters: QuerySet, text: str) -> list[int]:
    """The ids of the RELEVANCE_CANDIDATES most downloaded of `adapters` (a list already `matching` `text`),
    best match first: the rows a search sorted by relevance shows (`by_relevance`), ranked by the rank over the
    weighted document (name above taxonomy above owner and base model above description), then by downloads.

    Reading them is the one query of a search that runs the match (at a million adapters, about 5 ms for two
    common words); the rank is computed in it, on the rows the match reads anyway, and the candidates are
    ordered here (a second query ranking 1,000 ids took 6 ms). With fewer ids than RELEVANCE_CANDIDATES they
    are every match, and the list's count is their number (hub.registry.filtersets.CachedCountPaginator)."""
    rank = SearchRank(F("search_document"), _full_text_query(search_words(text)))
    rows = (
        adapters.annotate(search_rank=rank)
        .order_by("-download_count", "id")
        .values_list("pk", "download_count", "search_rank")[:RELEVANCE_CANDIDATES]
    )
    ranked = sorted(rows, key=lambda row: (-row[2], -row[1], row[0]))
    return [pk for pk, _, _ in ranked]


def are_every_match(candidate_ids: list[int]) -> bool:
    """Whether `relevance_candidates` read every match (fewer than it ranks at most)."""
    return len(candidate_ids) < RELEVANCE_CANDIDATES


class _IsAnyOf(Lookup):
    """`lhs = ANY(array)`, the array one parameter: `pk__in` resolves and prepares its values one by one, 0.5 ms
    for a search's 1,000 candidates, in a query that the lists do not even run (they read a page's ids)."""

    lookup_name = "is_any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", (*lhs_params, *rhs_params)


def by_relevance(
    adapters: QuerySet, text: str, rows_from: QuerySet | None = None, candidate_ids: list[int] | None = None
) -> QuerySet:
    """`adapters` (already `matching` text) best match first.

    With full-text search only a bounded set of candidates is ranked: the RELEVANCE_CANDIDATES most downloaded
    matches, in their order (`relevance_candidates`, read here unless the caller passes `candidate_ids`).
    Ranking every match of a common word means reading and ranking hundreds of thousands of documents at a
    million adapters. A search that finds more than that pages through its candidates (its count still counts
    every match); sorted by downloads it walks every match. `rows_from` (the list before its filters) is where
    the ranked rows are read from by id, so that the match runs once, in the candidates' query."""
    words = search_words(text)
    if not words:
        return adapters
    if uses_full_text_search():
        if candidate_ids is None:
            candidate_ids = relevance_candidates(adapters, text)
        position = Func(
            Value(candidate_ids, output_field=ArrayField(IntegerField())), F("pk"), function="array_position"
        )
        rows = adapters if rows_from is None else rows_from
        return rows.filter(_IsAnyOf(F("pk"), candidate_ids)).order_by(position)
    name_matches = Q()
    for word, is_prefix in _with_prefix_flags(words):
        name_matches &= Q(name__iregex=_word_pattern(word, is_prefix))
    rank = Case(When(name_matches, then=Value(1)), default=Value(0), output_field=IntegerField())
    return adapters.annotate(search_rank=rank).order_by("-search_rank", "-download_count", "id")


# --------------------------------------------------------------------------------------------------
# "Did you mean"
# --------------------------------------------------------------------------------------------------


def _source_rows(model, field: str):
    rows = model.objects.exclude(**{field: ""})
    if model is Adapter:
        rows = rows.filter(private=False)
    return rows


def similar_terms(word: str, limit: int = SUGGESTION_LIMIT) -> list[str]:
    """Names in the registry spelled like `word`, most similar first (trigram similarity on PostgreSQL,
    difflib elsewhere)."""
    scored: dict[str, tuple[float, str]] = {}
    for model, field in SUGGESTION_SOURCES:
        if uses_full_text_search():
            rows = (
                _source_rows(model, field)
                .filter(**{f"{field}__trigram_similar": word})
                .annotate(similarity=TrigramSimilarity(field, word))
                .order_by("-similarity")
                .values_list(field, "similarity")[:limit]
            )
        else:
            names = set(_source_rows(model, field).values_list(field, flat=True))
            rows = [
                (name, difflib.SequenceMatcher(None, word, name.lower()).ratio())
                for name in difflib.get_close_matches(word, names, n=limit, cutoff=FALLBACK_SIMILARITY_CUTOFF)
            ]
        for name, similarity in rows:
            key = name.lower()
            if key != word and similarity > scored.get(key, (0.0, ""))[0]:
                scored[key] = (similarity, key)
    ranked = sorted(scored.values(), key=lambda item: (-item[0], item[1]))
    return [term for _, term in ranked[:limit]]


def suggestions(adapters: QuerySet, text: str, limit: int = SUGGESTION_LIMIT) -> list[str]:
    """Queries close to `text` that find something among `adapters` (the list with its other filters), for a
    `text` that finds nothing: each word that finds nothing on its own is replaced by a similar name."""
    words = search_words(text)
    if not words:
        return []
    alternatives = []
    for word in words:
        if matching(adapters, word).exists():
            alternatives.append([word])
        else:
            alternatives.append(similar_terms(word))
    if not all(alternatives):
        # A word like nothing in the registry: suggest the rest of the query without it.
        alternatives = [options for options in alternatives if options]
        if not alternatives:
            return []
    found = []
    for combination in itertools.islice(itertools.product(*alternatives), limit * 3):
        candidate = " ".join(combination)
        # A proposed name is matched whole, as the search it proposes will find it: `numiza-wiki-250665` as a
        # prefix is a phrase of prefixes, `'wiki':*` among them, which collects the postings of every word that
        # starts so (40 ms a proposal at a million adapters, against 0.2 ms whole). A word typed last stays a
        # prefix, as in the search itself.
        last_is_prefix = combination[-1] == words[-1]
        if (
            candidate != " ".join(words)
            and candidate not in found
            and matching(adapters, candidate, last_is_prefix).exists()
        ):
            found.append(candidate)
            if len(found) == limit:
                break
    return found
