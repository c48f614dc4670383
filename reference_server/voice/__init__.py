"""The realtime voice loop: Opus in, VAD and turns, a pluggable model, paced Opus out.

Every module here is sans-IO (time is a `now` parameter) except `driver.py` and the default
model in `model.py`, which run a model's async generator.
"""
