"""Text a run reads: corpora (loading, splits), the windows sampled from them, and the token blocks they fill."""

from .blocks import Blocks, Budget, CorpusBlocks, frequent_tokens, pack, pack_windows, token_stream
from .corpora import ALIASES, EMBEDDED_CORPORA, HUB, Corpus, CorpusError, HubCorpus, available, load_corpus
from .sampling import Window, document_id, sample_windows

__all__ = [
    "ALIASES", "EMBEDDED_CORPORA", "HUB", "Blocks", "Budget", "Corpus", "CorpusBlocks", "CorpusError", "HubCorpus",
    "Window", "available", "document_id", "frequent_tokens", "load_corpus", "pack", "pack_windows",
    "sample_windows", "token_stream",
]
