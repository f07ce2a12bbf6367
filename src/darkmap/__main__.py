"""``python -m darkmap``: the ``darkmap`` command (:func:`darkmap.cli.run`), for a
machine where the console script is not on the PATH."""

from darkmap.cli import run

if __name__ == "__main__":
    run()
