"""CLI subcommands. Each module here defines ``register(subparsers)`` which adds one subcommand
(with ``set_defaults(func=...)``); :mod:`celebref.app.cli` discovers them, so a subcommand exists
exactly when its module does."""
