"""The realtime voice loop: Opus in, VAD and turns, a pluggable model, paced Opus out.

Every module here is sans-IO (time is a `now` parameter). What runs a model's async generator
as a task, and the embedded tone model's think time, are the shell's
(`reference_server/shell/model_driver.py`, `voice.py`, `tone_model.py`).
"""
