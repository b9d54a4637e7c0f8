"""Capture on real Xvfb: a window of known colours at a known position matches pixel-exactly (by
title, by id, by region); the pointer is drawn in; downscaling is an exact area average; the
monitor layout and scale factor are detected; X DAMAGE reports changes in a region and nothing else."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from emulator.damage import DamageWatch
from emulator.display import read_layout
from emulator.input import InputDriver
from emulator.schema import Action, Rect
from emulator.screen import Screen, area_downscale, draw_cursor

QUADRANTS_BGR = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 255)]  # TL, TR, BL, BR


def assert_quadrants(frame: np.ndarray) -> None:
    h, w = frame.shape[:2]
    for i, bgr in enumerate(QUADRANTS_BGR):
        ys = slice(0, h // 2) if i < 2 else slice(h // 2, h)
        xs = slice(0, w // 2) if i % 2 == 0 else slice(w // 2, w)
        block = frame[ys, xs, :3]
        assert (block == np.array(bgr, np.uint8)).all(), f"quadrant {i} is not exactly {bgr}"


def test_window_capture_is_pixel_exact(display, start_app):
    start_app(display, "click_target.py", "--title", "C", "--colors", "--pos", "130,70", "--size", "200,100")
    with Screen(display.name) as screen:
        rect = screen.window_rect(title="C")
        assert rect == Rect(130, 70, 200, 100)
        by_title = screen.grab(rect, cursor=False)
        assert by_title.shape == (100, 200, 4)
        assert_quadrants(by_title)
        wid = screen.find_window("C")
        by_id = screen.grab(screen.window_rect(window=wid), cursor=False)
        assert np.array_equal(by_id, by_title)
        full = screen.grab(cursor=False)
        assert np.array_equal(full[70:170, 130:330], by_title)
        # Pixels just outside the window are not window colours.
        assert not (full[69, 130:330, :3] == QUADRANTS_BGR[0]).all()


def test_capture_on_a_scaled_display_is_in_physical_pixels(hidpi_display, start_app):
    start_app(
        hidpi_display, "click_target.py", "--title", "H", "--colors", "--pos", "50,40", "--size", "200,100"
    )
    with Screen(hidpi_display.name) as screen:
        rect = screen.window_rect(title="H")
        assert rect == Rect(100, 80, 400, 200)  # logical geometry x2
        assert_quadrants(screen.grab(rect, cursor=False))
        assert screen.layout().scale == 2.0


def test_pointer_is_drawn_into_captures(display, start_app):
    start_app(display, "click_target.py", "--title", "C", "--colors", "--pos", "100,100", "--size", "200,100")
    layout = read_layout(display.name)
    driver = InputDriver(display.name, layout.viewport())
    try:
        with Screen(display.name) as screen:
            px, py = 120, 110  # inside the red quadrant
            driver.execute(Action.move(*layout.viewport().to_normalized(px, py)))
            rect = screen.window_rect(title="C")
            plain = screen.grab(rect, cursor=False)
            with_cursor = screen.grab(rect)
            x, y = px - rect.x, py - rect.y
            assert tuple(plain[y, x, :3]) == (0, 0, 255)
            assert tuple(with_cursor[y, x, :3]) == (0, 0, 0)  # hot spot: outline
            assert tuple(with_cursor[y + 3, x + 1, :3]) == (255, 255, 255)  # fill
            assert np.array_equal(with_cursor[:, x + 20 :], plain[:, x + 20 :])  # nothing else changed
            driver.execute(Action(kind="mouse_down", x=0.2, y=0.2))
            held = screen.grab(rect)
            hx, hy = screen.pointer()[0] - rect.x, screen.pointer()[1] - rect.y
            assert tuple(held[hy + 3, hx + 1, :3]) == (0, 0, 255)  # red fill: button held
    finally:
        driver.close()


def test_draw_cursor_restores_and_clips():
    frame = np.full((10, 10, 4), 7, np.uint8)
    restore = draw_cursor(frame, 8, 8)  # mostly off the frame
    assert (frame[8:, 8:, :3] != 7).any()
    restore()
    assert (frame == 7).all()
    draw_cursor(frame, -50, -50)()  # entirely outside: nothing happens
    assert (frame == 7).all()


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 8), st.integers(1, 6), st.integers(1, 6), st.data())
def test_area_downscale_is_the_block_mean(factor, bh, bw, data):
    frame = data.draw(arrays(np.uint8, (bh * factor + 1, bw * factor + factor - 1, 4)))  # remainders dropped
    out = area_downscale(frame, factor)
    ref = (
        frame[: bh * factor, : bw * factor].reshape(bh, factor, bw, factor, 4).astype(float).mean(axis=(1, 3))
    )
    assert out.shape == (bh, bw, 4) and out.dtype == np.uint8
    assert np.abs(out - ref).max() <= 0.5 + 1e-9


def test_area_downscale_refuses_bad_factors():
    with pytest.raises(ValueError):
        area_downscale(np.zeros((64, 64, 4), np.uint8), 17)


def test_layout_reports_monitors_and_scale(dual_display, hidpi_display, display):
    dual = read_layout(dual_display.name)
    assert [m.rect for m in dual.monitors] == [Rect(0, 0, 1280, 800), Rect(1280, 0, 1280, 800)]
    assert dual.scale == 1.0
    hidpi = read_layout(hidpi_display.name)
    assert (hidpi.width, hidpi.height, hidpi.dpi, hidpi.scale) == (2560, 1600, 192.0, 2.0)
    single = read_layout(display.name)
    assert len(single.monitors) == 1 and single.monitors[0].rect == Rect(0, 0, 1280, 800)


def test_damage_reports_changes_in_its_region_only(display, start_app):
    app = start_app(display, "click_target.py", "--title", "D", "--pos", "100,50")
    x, y, w, h = app.ready["widgets"]["b0"]
    layout = read_layout(display.name)
    driver = InputDriver(display.name, layout.viewport())
    inside = DamageWatch(display.name, Rect(100, 50, 600, 400))
    elsewhere = DamageWatch(display.name, Rect(900, 500, 300, 200))
    try:
        with Screen(display.name) as screen:
            for watch in (inside, elsewhere):
                watch.reset()
            before = screen.grab(cursor=False).copy()
            driver.execute(Action.move(0.9, 0.9))  # empty root window: nothing repaints
            assert not inside.damaged() and not elsewhere.damaged()
            assert np.array_equal(screen.grab(cursor=False), before)
            cx, cy = 100 + x + w // 2, 50 + y + h // 2
            driver.execute(Action.click((cx + 0.5) / 1280, (cy + 0.5) / 800))  # the button repaints
            assert app.next_event()["widget"] == "b0"
            assert inside.wait(timeout=2.0)
            assert not elsewhere.damaged()
            for _ in range(50):  # the repaint ends: a quiet 100 ms reports nothing
                inside.reset()
                if not inside.wait(timeout=0.1):
                    break
            else:
                pytest.fail("damage never stopped after one click")
    finally:
        inside.close()
        elsewhere.close()
        driver.close()
