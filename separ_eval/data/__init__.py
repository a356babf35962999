"""Text a run reads: corpora (loading, splits) and the token blocks cut from them."""

from .blocks import Blocks, Budget, CorpusBlocks, frequent_tokens, pack, token_stream
from .corpora import ALIASES, EMBEDDED_CORPORA, HUB, Corpus, CorpusError, HubCorpus, available, load_corpus

__all__ = [
    "ALIASES", "EMBEDDED_CORPORA", "HUB", "Blocks", "Budget", "Corpus", "CorpusBlocks", "CorpusError", "HubCorpus",
    "available", "frequent_tokens", "load_corpus", "pack", "token_stream",
]
