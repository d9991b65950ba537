"""One module per `codearena` subcommand: HELP (one line), configure(parser), run(args) -> exit code."""
