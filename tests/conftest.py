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


@pytest.fixture(scope="module")
def one_thread():
    """Two threads on a CPU shared with other jobs run tiny matmuls far slower (up to ~50x); one thread does not."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, tiny_tokenizer):
    """A tiny random llama checkpoint, written once per session."""
    from separ_eval.testing import tiny_model

    directory = tmp_path_factory.getbasetemp() / "tiny-llama"
    if not (directory / "config.json").exists():
        tiny_model("llama").save_pretrained(directory)
        tiny_tokenizer.save_pretrained(directory)
    return directory
