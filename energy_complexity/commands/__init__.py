"""One module per ``energy-complexity`` subcommand (see energy_complexity.cli)."""
