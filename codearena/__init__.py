"""CodeArena: human-preference evaluation of code LLMs (crowd votes, model duels, validated BT ratings)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("codearena")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
