"""The supervisor app (PySide6): watch the agent live, approve or correct each action, take over,
record demonstrations; corrections become training data. Start it with `emulator app`; the user
guide is docs/app.md, the window app/main.py."""
