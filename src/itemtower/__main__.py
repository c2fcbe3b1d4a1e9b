"""`python -m itemtower ...` runs the same CLI as the `itemtower` script (torchrun uses this form)."""

from itemtower.cli import app

if __name__ == "__main__":
    app()
