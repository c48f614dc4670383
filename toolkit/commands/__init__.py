"""One module per `rtcgate` subcommand, each with `register(commands)`."""
