"""`python -m gpttui` (and `torchrun -m gpttui`) entry point."""

from gpttui.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
