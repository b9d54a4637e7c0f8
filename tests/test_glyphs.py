"""Glyph sheets (emulator/envs/glyphs.py) and the glyph readers learning to name glyphs from them:
every glyph Chromium renders in the instruction is labelled with the key that types it, at its
pointer cell; the patch training sees is the patch the network reads there; and a reader fitted
on some sheets names the glyphs of other sheets (labels one glyph off would leave it at chance)."""

import os

import numpy as np
import torch
import torch.nn.functional as F

from emulator.envs.collect import collect
from emulator.envs.glyphs import capture_sheet, glyph_class, make_sheets
from emulator.envs.miniwob import MiniWoBWorld
from models.data import NO_GLYPH, cell_names, load_glyph_sheets
from models.net import GlyphReader, glyph_patches
from models.policy import OnnxPolicy
from models.spec import GRID, INPUT_H, INPUT_W, preprocess
from models.train import TrainConfig, train


def test_a_sheet_labels_each_glyph_at_its_cell():
    text = 'Ab "x9" <span class="bold">Q</span>'
    with MiniWoBWorld() as world:
        world.reset("enter-password", 0)
        frame, labelled = capture_sheet(world, text)
    assert frame.shape == (INPUT_H, INPUT_W, 3) and frame.dtype == np.uint8
    query = [(cell, cls) for cell, cls in labelled if cell // GRID.cols < 50 // 4]  # the instruction's 50 px
    assert [cls for _, cls in query] == [glyph_class(c) for c in 'Ab"x9"Q']  # spaces carry no label
    page = [cls for cell, cls in labelled if cell // GRID.cols >= 50 // 4]  # the page's own labels, too
    assert page[: len("Password")] == [glyph_class(c) for c in "Password"]
    cells = [cell for cell, _ in query]
    assert len({c // GRID.cols for c in cells}) == 1  # one line ...
    assert all(b > a for a, b in zip(cells, cells[1:], strict=False))  # ... read left to right
    for cell in cells:  # ink (dark on the yellow instruction) at every labelled cell
        r, c = divmod(cell, GRID.cols)
        assert (
            frame[max(0, 4 * r - 2) : 4 * r + 6, max(0, 4 * c - 2) : 4 * c + 6].min(axis=(0, 1)).max() < 140
        )


def test_training_patches_are_what_the_reader_reads():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, INPUT_H, INPUT_W, 3), dtype=np.uint8)
    cells = np.array([5 * GRID.cols + 7, GRID.size - 1])  # and the bottom-right corner, half off the grid
    got = glyph_patches(frames, cells, np.array([0, 1])).float()
    reader = GlyphReader(1, GRID.rows, GRID.cols)
    x = F.pad(
        torch.from_numpy(preprocess(frames)),
        (0, GRID.cols * 4 - INPUT_W, 0, GRID.rows * 4 - INPUT_H),
        value=-0.5,
    )
    want = reader.patch(F.pixel_unshuffle(x, 4).flatten(2), torch.from_numpy(cells)[:, None])
    assert torch.allclose(got, want, atol=2e-3)


def test_a_reader_fitted_on_sheets_names_the_glyphs_of_others(tmp_path):
    path = tmp_path / "glyphs.npz"
    summary = make_sheets(str(path), 60, seed=1, progress=False)
    assert summary["glyphs"] > 60 * 20 and os.stat(path).st_mode & 0o777 == 0o600
    sheets = load_glyph_sheets(str(path))
    test = sheets.frames >= 50
    torch.manual_seed(0)
    reader = GlyphReader(8, GRID.rows, GRID.cols)
    opt = torch.optim.AdamW(reader.parameters(), lr=3e-3)
    train = np.where(~test)[0]
    for step in range(400):
        i = torch.from_numpy(np.random.default_rng(step).choice(train, 128))
        loss = F.cross_entropy(
            reader.classify(sheets.patches[i].float()), torch.from_numpy(sheets.classes[i.numpy()])
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        named = reader.classify(sheets.patches[torch.from_numpy(test)].float()).argmax(1).numpy()
    accuracy = (named == sheets.classes[test]).mean()
    assert accuracy > 0.6, f"a reader fitted on 50 sheets named {accuracy:.0%} of the glyphs on 10 others"


def test_the_name_map_is_taught_each_glyph_at_its_cell_and_no_glyph_far_from_text():
    cell = 10 * GRID.cols + 20
    names = cell_names(np.array([[0, cell, 7], [1, 0, 9]]), 2)
    assert names[0, cell] == 7 and names[1, 0] == 9
    assert names[0, cell + 1] == names[0, cell - GRID.cols - 1] == -100  # beside a glyph: not taught
    assert names[0, cell + 2] == names[0, 0] == NO_GLYPH and (names[1, 1:] != NO_GLYPH).sum() == 3


def test_training_with_glyph_sheets_reports_how_well_it_reads(tmp_path):
    demos, sheets = tmp_path / "demos", tmp_path / "glyphs.npz"
    collect("click-test", 6, str(demos), workers=1, seed=0, progress=False)
    make_sheets(str(sheets), 20, seed=2, progress=False)
    summary = train([str(demos)], str(tmp_path / "m.onnx"), progress=False,
                    config=TrainConfig(epochs=None, minutes=0.2, batch=8, glyphs=str(sheets)))  # fmt: skip
    assert 0 <= summary["val"]["glyph"] <= 1 and 0 <= summary["val"]["names"] <= 1
    assert summary["parity_max_abs"] < 1e-4
    # Its readers name glyphs, so the runtime gets their names (and so does a fine-tune of it);
    # a model never taught names has none to weigh.
    assert OnnxPolicy(str(tmp_path / "m.onnx")).outputs[-1] == "name"
    tuned = train([str(demos)], str(tmp_path / "tuned.onnx"), init=str(tmp_path / "m.onnx"), progress=False,
                  config=TrainConfig(epochs=None, minutes=0.05, batch=8))  # fmt: skip
    assert tuned["parity_max_abs"] < 1e-4 and OnnxPolicy(str(tmp_path / "tuned.onnx")).outputs[-1] == "name"
    train([str(demos)], str(tmp_path / "plain.onnx"), progress=False,
          config=TrainConfig(epochs=None, minutes=0.05, batch=8))  # fmt: skip
    assert "name" not in OnnxPolicy(str(tmp_path / "plain.onnx")).outputs
