"""The benchmark world for real: MiniWoB++ in Chromium on Xvfb. The task area is found
pixel-exactly (also after the window moves), every suite expert succeeds through real X input,
collected episodes read back with the recorder's reader and hold exactly the expert's actions,
`eval` reports, and the Gymnasium wrapper plays."""

import json
import os
import subprocess
import time

import numpy as np
import pytest
from conftest import run_cli

from emulator.envs.episodes import run_episode
from emulator.envs.experts import click_on, query
from emulator.envs.gym_env import MiniWoBEnv
from emulator.envs.miniwob import SUITE, TASK_H, TASK_W, MiniWoBWorld
from emulator.loop import FunctionPolicy
from emulator.schema import Action, Kind, Rect, char_to_key
from recorder.reader import Recording


@pytest.fixture(scope="module")
def world():
    with MiniWoBWorld() as w:
        yield w


def grab_matches_chromium(world) -> bool:
    ours = world.observe(cursor=False)[..., 2::-1]
    return ours.shape == (TASK_H, TASK_W, 3) and np.array_equal(ours, world.page_screenshot())


@pytest.mark.parametrize("task", ["click-test", "click-dialog", "enter-password", "grid-coordinate"])
def test_task_area_capture_is_pixel_exact(world, task):
    world.reset(task, 11)
    world.driver.execute(Action.move(0.99, 0.01))  # keep the pointer off the comparison
    assert world.settle()
    assert grab_matches_chromium(world)


def test_calibration_measures_where_the_page_really_is(world):
    """Move Chromium's window (as an info bar or a window manager would shift the page) and
    calibrate again: the task area follows, still pixel-exact."""
    win = subprocess.run(["xdotool", "search", "--onlyvisible", "--class", "chromium"], env=world.display.env(),
                         capture_output=True, text=True, check=True).stdout.split()[0]  # fmt: skip
    before = world.area
    subprocess.run(["xdotool", "windowmove", "--sync", win, "37", "23"], env=world.display.env(), check=True)
    try:
        area = world.calibrate()
        assert area == Rect(before.x + 37, before.y + 23, TASK_W, TASK_H)
        world.area = area
        world.reset("click-color", 5)
        world.settle()
        assert grab_matches_chromium(world)
    finally:
        subprocess.run(
            ["xdotool", "windowmove", "--sync", win, "0", "0"], env=world.display.env(), check=True
        )
        world.area = world.calibrate()
        assert world.area == before


@pytest.mark.parametrize("task", SUITE)
def test_expert_succeeds_through_real_input(world, task):
    results = [run_episode(world, task, seed) for seed in (101, 202, 303)]
    assert all(r.success for r in results), [(r.seed, r.stopped_by, r.raw_reward) for r in results]
    assert all(r.seconds < 3 for r in results)


def test_collected_episodes_hold_exactly_what_the_expert_did(tmp_path):
    out = tmp_path / "data"
    result = run_cli("collect", "--tasks", "drag-box,login-user", "--episodes", "2", "--out", str(out),
                     "--workers", "2", "--json", timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["episodes"] == 4 and summary["success"] == 1.0
    rows = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert sorted((r["task"], r["seed"]) for r in rows) == [
        ("drag-box", 0),
        ("drag-box", 1),
        ("login-user", 0),
        ("login-user", 1),
    ]
    for row in rows:
        with Recording(out / row["path"]) as rec:
            assert rec.info["task"] == row["utterance"] and rec.info["episode"]["success"] is True
            got = [json.loads(a["action"]) for a in rec.actions]
            assert len(got) == len(row["actions"]), row["task"]
            for did, saw in zip(row["actions"], got, strict=True):
                assert (
                    did["kind"] == saw["kind"]
                    and did.get("key") == saw.get("key")
                    and did.get("mods") == saw.get("mods")
                )
                if "x" in did:  # the same pixel of the task area
                    assert round(did["x"] * TASK_W - 0.5) == round(saw["x"] * TASK_W - 0.5)
                    assert round(did["y"] * TASK_H - 0.5) == round(saw["y"] * TASK_H - 0.5)
            first = rec.frame(rec.actions[0]["frame"])
            q = first[:50].astype(int)
            yellow = (q[..., 0] > 200) & (q[..., 1] > 200) & (q[..., 2] < 80)
            assert first.shape == (TASK_H, TASK_W, 3) and yellow.mean() > 0.5  # the instruction's yellow box
        assert os.stat(out / row["path"]).st_mode & 0o777 == 0o700
    again = run_cli(
        "collect", "--tasks", "drag-box", "--episodes", "2", "--out", str(out), "--json", timeout=120
    )
    assert json.loads(again.stdout)["episodes"] == 0  # resumed: nothing left to do


def test_expert_reads_the_glyph_it_types_and_the_label_it_clicks(world, tmp_path):
    """The looks recorded with a demonstration point at the instruction's characters: one per
    key typed, in reading order along the quoted word, each on dark glyph pixels of the yellow
    box, the second read on the character typed just before (checking it) and, once the word is
    typed, on the closing quote after it; a click on a
    labelled target reads the label's first letter and clicks the page's copy of it."""
    run_episode(world, "enter-text", 7, record_to=str(tmp_path / "enter"))
    with Recording(tmp_path / "enter") as rec:
        looks, actions = rec.info["looks"], rec.actions
        frame = rec.frame(actions[0]["frame"]).astype(int)
    target = rec.info["episode"]["utterance"].split('"')[1]
    keyed = [look[:3] for look in looks if look[1] is not None]
    assert len(keyed) == len(target) + 1  # the click into the field reads the first letter too
    xs = [x * TASK_W for _, x, _ in keyed[1:]]
    assert all(b > a for a, b in zip(xs, xs[1:], strict=False))  # left to right along the word
    typed = [look for look in looks if look[1] is not None][1:]
    checks = zip(typed, typed[1:], strict=False)
    assert typed[0][3] is None and all(now[3:] == before[1:3] for before, now in checks)
    # The word done, the submit click's second read checks that it ends: the glyph right after.
    _, x, y, x2, y2 = looks[-1]
    assert x is None and 0 < (x2 - typed[-1][1]) * TASK_W < 9 and abs(y2 - typed[-1][2]) * TASK_H < 2
    for _, x, y in keyed:
        px, py = int(x * TASK_W), int(y * TASK_H)
        assert py < 50  # inside the instruction
        patch = frame[max(py - 3, 0) : py + 4, max(px - 2, 0) : px + 3].sum(-1)
        assert patch.min() < 300, (x, y)  # glyph ink, not the yellow background (~510)
    run_episode(world, "click-link", 7, record_to=str(tmp_path / "link"))
    with Recording(tmp_path / "link") as rec:
        ((t, x, y, x2, y2),) = rec.info["looks"]
        assert 0 < y * TASK_H < 50 and t <= rec.actions[0]["t"] and x2 is None
        # ... and clicks the page's copy of that letter: blue link ink, below the instruction.
        click = rec.actions[0]
        frame = rec.frame(click["frame"]).astype(int)
    px, py = int(click["x"] * TASK_W), int(click["y"] * TASK_H)
    patch = frame[py - 3 : py + 4, px - 2 : px + 3].reshape(-1, 3)
    assert py > 50 and any(b > 150 and r < 100 for r, g, b in patch), (px, py)
    world.reset("click-link", 7)  # the same instance: the click is at the link's first letter
    link = next(e for e in query(world, "#area .alink") if e["text"] == world.fields()["target"])
    assert link["x"] <= px < link["x"] + 8 < link["x"] + link["w"], (px, link)


def test_a_window_opened_by_a_wild_key_is_closed_before_the_next_episode(world):
    """A model's ctrl+h opens Chromium's History over the task page (a DAgger round recorded that
    for its last tasks); the next episode closes it and shows the task again, pixel-exact."""
    world.reset("click-test", 1)
    task_view = world.observe(cursor=False)
    world.driver.execute(Action.press("h", ("ctrl",)))
    for _ in range(50):
        if len(world.web.window_handles) > 1:
            break
        time.sleep(0.1)
    assert len(world.web.window_handles) > 1
    time.sleep(0.5)
    assert not np.array_equal(world.observe(cursor=False), task_view)  # covered
    world.reset("click-test", 1)
    assert len(world.web.window_handles) == 1 and grab_matches_chromium(world)
    assert np.array_equal(world.observe(cursor=False), task_view)
    # An episode in which the policy does it stops there, marked: training skips its frames.
    wild = FunctionPolicy(lambda obs: Action.press("h", ("ctrl",)))
    result = run_episode(world, "enter-text", 2, wild)
    assert result.left_page and result.stopped_by == "left the page" and result.steps < 10
    assert not run_episode(world, "enter-text", 2).left_page  # the expert, right after: a clean page


def test_each_episode_starts_with_nothing_focused(world):
    """A field left focused by one episode must not carry into the next (it would look focused
    and take no keys): same seed, same starting state, whatever ran before."""
    world.reset("enter-text", 3)
    field = query(world, "input")[0]
    world.driver.execute(click_on(field))
    world.driver.execute(Action.press("q"))
    time.sleep(0.2)
    assert query(world, "input")[0]["value"] == "q"
    world.reset("enter-text", 4)
    assert not any(e["focused"] for e in query(world, "input"))
    assert world.js("return document.activeElement === document.body || !document.activeElement;")


def test_expert_deletes_a_wrong_character_at_once_also_in_a_password_field(world):
    """In a field that shows only dots too, a wrong character is deleted at once (the model knows
    what it typed from its history and the check read, not from the dots), each Backspace reading
    the character left last (the place after it), then the word is typed and the next field
    clicked."""
    from emulator.envs.experts import expert_action, expert_look

    world.reset("enter-password", 5)
    fields = world.fields()
    world.driver.execute(click_on(query(world, "input")[0]))
    for ch in "xq":  # two wrong characters first
        world.driver.execute(Action.press(ch))
    time.sleep(0.2)
    target, steps, looks = fields["target"], [], []
    for _ in range(2 * len(target) + 4):
        action = expert_action(world, fields)
        steps.append(action)
        looks.append(expert_look(world))
        if action.kind == "click":
            break
        world.driver.execute(action)
        time.sleep(0.05)
    keys = [(a.key, a.mods) for a in steps if a.kind == "key"]
    assert keys[:2] == [("backspace", ())] * 2 and len(keys) == 2 + len(target)
    # "xq" -> "x": reads the word's first glyph (where "x" stood); "x" -> "": nothing is left to read.
    assert looks[0][0] == looks[2][0] is not None and looks[1][0] is None
    assert query(world, "#password")[0]["value"] == target and steps[-1].kind == "click"


def test_expert_does_not_go_back_for_a_wrong_password_character_nobody_can_see(world):
    """A full password field whose wrong character is not the last typed looks right (dots), so
    the expert goes on to the next field rather than teaching a return pixels cannot explain; a
    field with too few dots is still gone back to."""
    from emulator.envs.experts import expert_action

    world.reset("enter-password", 5)
    fields = world.fields()
    target = fields["target"]
    password, verify = query(world, "#password")[0], query(world, "#verify")[0]
    world.driver.execute(click_on(password))
    wrong = "z" if target[0] != "z" else "y"
    for ch in wrong + target[1:]:
        world.driver.execute(Action.press(*char_to_key(ch)))
    time.sleep(0.2)
    assert query(world, "#password")[0]["value"] != target
    step = expert_action(world, fields)
    assert step.kind == "click" and verify["y"] <= step.y * TASK_H <= verify["y"] + verify["h"]
    world.driver.execute(step)
    time.sleep(0.1)
    step = expert_action(world, fields)  # in the verify field: type, do not return
    assert (step.kind, step.key) == ("key", char_to_key(target[0])[0])
    world.driver.execute(click_on(password))  # one dot fewer: that shows, so back it goes
    world.driver.execute(Action.press("backspace"))
    world.driver.execute(click_on(verify))
    time.sleep(0.2)
    step = expert_action(world, fields)
    assert step.kind == "click" and password["y"] <= step.y * TASK_H <= password["y"] + password["h"]


def test_expert_lets_go_of_a_press_that_missed_the_boxes_and_grabs_again(world):
    """A model's press on bare page while DAgger labels its states: moving on would drag nothing
    for ever, so the expert's label is to release, then to grab a box and finish the drag."""
    from emulator.envs.experts import expert_action

    world.reset("drag-box", 3)
    boxes = query(world, "#draggableSmall") + query(world, "#draggableLarge")
    spot = next((x, y) for y in range(60, TASK_H - 20, 6) for x in range(6, TASK_W - 6, 6)
                if all(b["x"] - 4 > x or x > b["x"] + b["w"] + 4 or b["y"] - 4 > y or y > b["y"] + b["h"] + 4
                       for b in boxes) and world.js(
                    "const w = document.getElementById('wrap').getBoundingClientRect();"
                    "const e = document.elementFromPoint(w.left + arguments[0], w.top + arguments[1]);"
                    "return e && e.closest('#draggable') !== null;", x, y))  # fmt: skip
    world.driver.execute(Action(Kind.MOUSE_DOWN, (spot[0] + 0.5) / TASK_W, (spot[1] + 0.5) / TASK_H))
    world.driver.execute(Action.move((spot[0] + 8.5) / TASK_W, (spot[1] + 0.5) / TASK_H))
    time.sleep(0.1)
    first = expert_action(world, world.fields())
    assert first.kind == "mouse_up"
    kinds = [first.kind]
    world.driver.execute(first)
    for _ in range(40):
        time.sleep(0.05)
        if world.status().done:
            break
        action = expert_action(world, world.fields())
        kinds.append(action.kind)
        world.driver.execute(action)
    assert world.status().success and kinds[1] == "mouse_down" and "move" in kinds


def test_eval_random_runs_and_reports(tmp_path):
    result = run_cli("eval", "--policy", "random", "--tasks", "click-test,focus-text", "--episodes", "3",
                     "--json", "--report", str(tmp_path / "report"), timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data["tasks"]) == {"click-test", "focus-text"}
    for row in data["tasks"].values():
        assert {"success", "reward", "steps", "seconds"} <= set(row) and 0 <= row["success"] <= 1
    assert 0 <= data["mean_success"] <= 1 and data["mean_seconds"] > 0
    assert (tmp_path / "report/report.md").read_text().count("| click-test |") == 1
    assert (tmp_path / "report/success.png").stat().st_size > 5000
    bad = run_cli("eval", "--policy", "nonsense", "--tasks", "click-test")
    assert bad.returncode == 2 and bad.stderr.startswith("emulator: error:") and "Traceback" not in bad.stderr
    bad = run_cli("eval", "--policy", "random", "--tasks", "no-such-task")
    assert bad.returncode == 2 and "unknown MiniWoB task" in bad.stderr


def test_gymnasium_wrapper_plays(world):
    env = MiniWoBEnv("focus-text", world=world)
    obs, info = env.reset(seed=4)
    assert obs["image"].shape == (TASK_H, TASK_W, 3) and env.observation_space.contains(obs)
    field = world.js(
        "const r = document.getElementById('tt').getBoundingClientRect(); return [r.left, r.top, r.width, r.height];"
    )
    x, y = (field[0] + field[2] / 2) / TASK_W, (field[1] + field[3] / 2) / TASK_H
    obs, reward, terminated, truncated, info = env.step(Action.click(x, y))
    assert terminated and info["success"] and reward > 0
    env.reset(seed=5)
    sample = env.action_space.sample()
    _, _, terminated, truncated, info = env.step(sample)
    assert isinstance(terminated, bool) and isinstance(truncated, bool) and "action" in info
