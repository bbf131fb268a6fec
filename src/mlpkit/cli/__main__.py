"""``python -m mlpkit.cli``: the command line without the console script."""

from mlpkit.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
