"""The command line: ``python -m salience {generate,explain,prepare,serve,evaluate}``.

The top of the engine: may import every other subpackage."""
