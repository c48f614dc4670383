#!/usr/bin/env python3
"""libFuzzer harness for the dtls_records target (toolkit.fuzz.targets); flags are libFuzzer's."""
from toolkit.fuzz.harness import main

if __name__ == "__main__":
    main("dtls_records")
