"""Client programs run in a child process by their drivers."""
