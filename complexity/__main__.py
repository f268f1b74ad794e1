"""``python -m complexity``: the ``energy-complexity`` command line."""

from energy_complexity.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
