"""``python -m greenserve``: the same as the ``greenserve`` command."""

from greenserve.cli import main

if __name__ == "__main__":
    main()
