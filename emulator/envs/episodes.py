"""One MiniWoB++ episode, played by any policy through the product's own agent loop, optionally
recorded by the product's own recorder.

    result = run_episode(world, "enter-text", seed=3, policy="expert", record_to="data/enter-text/3")

Policies: "expert" (privileged, emulator/envs/experts.py), "random" (clicks and keys anywhere in
the task area), or a path to an ONNX model (models/policy.py). The loop runs exactly as shipped
(settling on X DAMAGE after each action) and ends when MiniWoB says the episode is done, on the
step budget, or on the page's own 10 s timer.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field

from emulator.envs.experts import expert_action, expert_look
from emulator.envs.miniwob import MiniWoBWorld
from emulator.loop import AgentLoop, FunctionPolicy, Observation, Policy
from emulator.schema import Action

MAX_STEPS = 50
MAX_SECONDS = 12.0  # MiniWoB's own timer ends every episode at 10 s
RECORD_FPS = 60


@dataclass
class EpisodeResult:
    task: str
    seed: int
    success: bool
    reward: float
    raw_reward: float
    steps: int
    seconds: float
    stopped_by: str
    utterance: str
    actions: list = field(default_factory=list)  # what the policy did (schema JSON), waits left out
    left_page: bool = False  # its keys opened a window over the task page (ctrl+h ...) or left it

    def to_json(self) -> dict:
        return asdict(self)


def random_policy(seed: int) -> Policy:
    rng = random.Random(seed)

    def act(obs: Observation) -> Action:
        if rng.random() < 0.8:
            return Action.click(rng.random(), 50 / 210 + rng.random() * 160 / 210)
        return Action.press(rng.choice("abcdefghijklmnopqrstuvwxyz"))

    return FunctionPolicy(act)


def make_policy(spec: str, world: MiniWoBWorld, seed: int) -> Policy:
    if spec == "expert":
        return FunctionPolicy(lambda obs: expert_action(world, world.episode_fields))
    if spec == "random":
        return random_policy(seed)
    from models.policy import OnnxPolicy  # the model issue's runtime; imported only when asked for

    return OnnxPolicy.cached(spec)


def run_episode(
    world: MiniWoBWorld,
    task: str,
    seed: int,
    policy: str | Policy = "expert",
    record_to: str | None = None,
    max_steps: int = MAX_STEPS,
    expert_labels: bool = False,
) -> EpisodeResult:
    """Play one episode. With `record_to` it is recorded; with `expert_labels` too (DAgger), the
    policy acts but the recording's actions are what the expert would have done in each state."""
    utterance = world.reset(task, seed)
    world.episode_fields = world.fields()
    agent = make_policy(policy, world, seed) if isinstance(policy, str) else policy
    recorder, labels, looks, context = None, [], [], []
    if record_to is not None:
        from recorder.record import Recorder, RecordOptions

        # Lossless 4:4:4: training frames are exactly what the agent will see live (the task area
        # is small, so this costs little disk).
        options = RecordOptions(fps=RECORD_FPS, task=utterance, stop_hotkey=None, pause_hotkey=None,
                                crf=0, pix_fmt="yuv444p")  # fmt: skip
        recorder = Recorder(record_to, world.display.name, world.viewport, options).start()
        recorder.wait_for_frame(time.monotonic())
        expert_decides = expert_labels or policy == "expert"
        agent = _paced(agent, recorder, world, labels if expert_labels else None,
                       looks if expert_decides else None, context)  # fmt: skip

    def check_done(timing, obs) -> None:
        if world.left_task_page():  # nothing more to see of the task: a failure, frames unusable
            loop.stop("left the page")
        elif world.status().done:
            loop.stop("done")

    loop = AgentLoop(
        world.screen, world.driver, agent, max_steps=max_steps, max_seconds=MAX_SECONDS,
        settle_timeout=0.5, react_window=0.05, settle_poll=0.02, stop_hotkey=None, takeover=False,
        on_step=check_done,
    )  # fmt: skip
    start = time.monotonic()
    summary = loop.run()
    seconds = time.monotonic() - start
    status = world.status()
    result = EpisodeResult(
        task, seed, status.success, status.reward, status.raw_reward, summary.steps, round(seconds, 4),
        summary.stopped_by, utterance, [t.action for t in summary.timings if t.action["kind"] != "wait"],
        summary.stopped_by == "left the page",
    )  # fmt: skip
    if recorder is not None:
        episode = {**result.to_json(), "policy": policy if isinstance(policy, str) else "custom"}
        # Where the expert read for each decision: [seconds since the recording began, x, y, x2, y2]
        # (viewport-normalized; null where it read nothing). models/data.py pairs them with actions.
        reads = [[round(t - recorder.t0, 6), *look] for t, look in looks]
        extra = {"episode": episode, "looks": reads}
        if expert_labels:  # the model's history input is what the policy did, not the labels
            extra["label_context"] = context
        recorder.finish(extra=extra, labels=labels if expert_labels else None)
    return result


def _paced(
    policy: Policy, recorder, world: MiniWoBWorld, labels: list | None, looks: list | None, context: list
) -> Policy:
    """Acts only once the recorder holds a frame grabbed after the screen settled, so every
    recorded action is aligned to a frame that shows the result of the one before. With
    `labels`, the expert's choice for each state goes there (DAgger), and into `context` the
    policy's own last actions before it (schema JSON, waits included, as the model's history
    input sees them at run time); with `looks`, where the expert read for each of its decisions
    (its own actions, or its labels)."""
    from recorder.dataset import LABEL_CONTEXT  # recording only: pyarrow stays out of plain evaluation

    done: list[dict] = []

    class Paced:
        def preprocess(self, obs):
            recorder.wait_for_frame(time.monotonic())
            return policy.preprocess(obs)

        def act(self, inputs):
            now = time.monotonic()
            if labels is not None:
                label = expert_action(world, world.episode_fields)
                if label.kind == "wait":
                    return self._done(policy.act(inputs))
                labels.append((now, label))
                context.append(done[-LABEL_CONTEXT:])
            action = policy.act(inputs)  # the expert policy decides (and reads) here; a model does not
            if looks is not None:
                looks.append((now, expert_look(world)))
            return self._done(action)

        def _done(self, action: Action) -> Action:
            done.append(action.to_json())
            return action

    return Paced()
