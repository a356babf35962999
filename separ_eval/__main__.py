"""`python -m separ_eval ...` (and `torchrun -m separ_eval ...`) is the `separ-eval` command."""

from .cli import main

if __name__ == "__main__":
    main()
