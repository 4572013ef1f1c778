"""The application layer: the ``celebref`` command line (:mod:`.cli`, one module per subcommand in :mod:`.commands`),
the ``restore``/``evaluate`` orchestration (:mod:`.restore`, :mod:`.evaluate`) and the demo (:mod:`.demo`).

It may import every other layer; nothing below it imports it (checked by the import-linter contracts in
``pyproject.toml``).
"""
