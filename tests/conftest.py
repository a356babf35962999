import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from separ_eval.testing import tiny_tokenizer

    return tiny_tokenizer()


@pytest.fixture(scope="session")
def smollm2():
    """The embedded real model, loaded once per session (slow tests only)."""
    from separ_eval import models

    return models.load("smollm2-135m")
