"""The benchmark world: MiniWoB++ in real Chromium on Xvfb (miniwob.py), scripted experts
(experts.py), one episode (episodes.py), parallel runs (runner.py), `emulator collect` and
`emulator eval` (collect.py, evaluate.py, cli.py), and a Gymnasium env (gym_env.py)."""
