#!/usr/bin/env python3
"""libFuzzer harness for any target named by $RTCGATE_FUZZ_TARGET (see toolkit.fuzz.harness)."""
from toolkit.fuzz.harness import main

if __name__ == "__main__":
    main()
