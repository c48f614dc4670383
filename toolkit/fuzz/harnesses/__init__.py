"""Executable libFuzzer harnesses, one *_fuzzer.py per built-in target (the OSS-Fuzz layout)."""
