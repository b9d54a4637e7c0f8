"""Workflows on real practice apps under Xvfb: perturbations are really applied, the scripted
demonstrator succeeds through the real recorder (its end labelled `done`), the coordinate-replay
macro redoes a demo on the same instance but breaks on a moved one, the agent follows a window
that moves, and the whole path record -> fine-tune -> run passes a bar on new instances."""

import random
import subprocess

import numpy as np
import pytest
from conftest import run_cli

from bench.workflow_apps import APPS, Instance, PracticeApp, judge, plan
from bench.workflows import record_demo, run_ours, run_replay
from emulator.display import VirtualDisplay
from emulator.input import InputDriver
from emulator.loop import AgentLoop, FunctionPolicy
from emulator.schema import Action, Kind
from emulator.screen import Screen
from emulator.workflow import viewport_finder
from recorder.reader import Recording


@pytest.fixture(scope="module")
def display():
    with VirtualDisplay(800, 600) as d:
        yield d


@pytest.mark.parametrize("app", APPS)
def test_perturbations_are_really_applied(display, tmp_path, app):
    plain = Instance.natural(app)
    moved = Instance(app, 420, 250, 236, 320, "dark", 7, {"order_form": "1234", "keypad": "9071",
                                                          "notes": "Fix bike"}[app])  # fmt: skip
    with Screen(display.name) as screen:
        with (
            PracticeApp.start(display.name, plain, tmp_path) as a,
            PracticeApp.start(display.name, moved, tmp_path) as b,
        ):
            ra, rb = a.window_rect(screen), b.window_rect(screen)
            assert (ra.x, ra.y, ra.width, ra.height) == (40, 40, 200, 262)
            assert (rb.x, rb.y, rb.width, rb.height) == (420, 250, 236, 320)
            light, dark = screen.grab(ra, cursor=False), screen.grab(rb, cursor=False)
            assert np.median(light[..., :3]) > 200 > 80 > np.median(dark[..., :3])  # the theme
            if app != "notes":  # the items' order: the same item sits elsewhere (relative to the window)
                item = "Express" if app == "order_form" else "key-1"
                assert (a.widgets[item].y / ra.height, a.widgets[item].x / ra.width) != pytest.approx(
                    (b.widgets[item].y / rb.height, b.widgets[item].x / rb.width), abs=0.02
                )
    assert not judge(plain, None) and not judge(plain, {"checked": [], "entered": "", "text": ""})


def test_demonstration_replay_and_perturbation(display, tmp_path):
    rng = random.Random(3)
    inst = Instance.random("keypad", rng)
    demo = record_demo(display.name, inst, tmp_path / "demo", rng)
    assert demo["success"] and demo["actions"] == 6  # 4 digits + OK + done
    with Recording(demo["path"]) as rec:
        kinds = [a["kind"] for a in rec.actions]
        events = rec.events
        assert kinds == ["click"] * 5 + ["done"]
        assert rec.info["ends_task"] and rec.actions[-1]["frame"] == len(rec.frames) - 1
    assert run_replay(display.name, inst, events, tmp_path)  # the macro redoes the same instance
    elsewhere = Instance(**{**inst.__dict__, "x": (inst.x + 300) % 560, "y": (inst.y + 200) % 300})
    assert not run_replay(display.name, elsewhere, events, tmp_path)  # but not a moved window


def test_the_order_form_demonstrator_ticks_express_by_its_label(display, tmp_path):
    """The demonstrator clicks the first letter of "Express" (what tells the shuffled boxes apart),
    not the box: a click there ticks it too."""
    rng = random.Random(5)
    inst = Instance.random("order_form", rng)
    with PracticeApp.start(display.name, inst, tmp_path) as app:
        text, size = app.widgets["Express.text"], app.ready["size"]
        click = plan(app)[0]
        assert text.x < click.x * size[0] < text.x + 8 and text.y < click.y * size[1] < text.y + text.height
        assert click.x * size[0] > app.widgets["Express"].x + 14  # right of the 14 px box
    assert record_demo(display.name, inst, tmp_path / "demo", rng)["success"]


def test_the_agent_follows_a_window_that_moves(display, tmp_path):
    """A scripted policy clicks the window's Express box at window-relative coordinates; the
    window is moved between steps; every click still lands (the order is ticked, then submitted)."""
    inst = Instance.natural("order_form")
    with PracticeApp.start(display.name, inst, tmp_path) as app, Screen(display.name) as screen:
        where = viewport_finder(screen, window=app.title)
        targets = [app.widgets["Express"], app.widgets["Submit"]]
        size = app.ready["size"]
        moves = iter([(500, 300), (120, 280), (120, 280)])

        def act(obs):
            if obs.step >= len(targets):
                return Action(Kind.DONE)
            r = targets[obs.step]
            return Action(Kind.CLICK, (r.x + 10) / size[0], (r.y + r.height / 2) / size[1])

        def move_window(*_):  # after each step, before the next observation
            x, y = next(moves)
            subprocess.run(["xdotool", "search", "--name", app.title, "windowmove", "--sync", str(x), str(y)],
                           env=display.env(), check=True, timeout=10)  # fmt: skip

        driver = InputDriver(display.name, where())
        try:
            summary = AgentLoop(screen, driver, FunctionPolicy(act), follow=where, stop_hotkey=None,
                                takeover=False, max_steps=5, on_step=move_window).run()  # fmt: skip
        finally:
            driver.close()
        assert summary.stopped_by == "done"
        rect = app.window_rect(screen)
        assert (rect.x, rect.y) == (120, 280) and driver.viewport.rect == rect
        assert app.wait_result(2.0) == {"checked": ["Express"], "order_no": inst.data}


@pytest.mark.parametrize("app", ["notes"])
def test_record_finetune_run(display, tmp_path, app):
    """The user's path: 5 demonstrations -> fine-tune the default model briefly -> new perturbed
    instances (moved, resized, re-themed, other text). The default model alone has never clicked
    into a note, typed "done", saved or said done: only what it learned can pass."""
    from models.train import TrainConfig, train

    rng = random.Random(11)
    for i in range(5):
        assert record_demo(display.name, Instance.random(app, rng), tmp_path / "demos" / f"{i}", rng)[
            "success"
        ]
    model = tmp_path / "flow.onnx"
    cfg = TrainConfig(epochs=None, minutes=1.5, val_fraction=0.0, colors=True, shift=True)
    train([str(tmp_path / "demos")], str(model), init="models/default.onnx", config=cfg, progress=False)
    test_rng = random.Random(12)
    wins = sum(
        run_ours(display.name, Instance.random(app, test_rng), str(model), tmp_path)[0] for _ in range(6)
    )
    assert wins >= 5, f"{wins}/6 new instances done"
    with PracticeApp.start(display.name, Instance.random(app, test_rng), tmp_path) as inst:  # the CLI path
        r = run_cli(
            "run", "--model", str(model), "--display", display.name, "--window", inst.title, timeout=120
        )
        assert r.returncode == 0 and "1/1 runs ended with done" in r.stderr, r.stderr
        assert inst.wait_result(2.0) is not None and inst.success


def test_run_refuses_a_missing_window_in_one_line(display):
    r = run_cli(
        "run", "--model", "models/default.onnx", "--display", display.name, "--window", "No such window"
    )
    assert (
        r.returncode == 2 and "no window titled 'No such window'" in r.stderr and "Traceback" not in r.stderr
    )
