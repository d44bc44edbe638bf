"""Skeleton drawing on synthetic frames: what is drawn, where, in which colour."""

from __future__ import annotations

import numpy as np
import pytest

from bharnet_ros.core.draw import HAND_COLORS, draw_skeleton
from bharnet_ros.core.layouts import MP33
from bharnet_ros.core.skeleton import LEFT, RIGHT, SkeletonFrame

WIDTH, HEIGHT = 200, 100


def make_frame(score: float = 1.0, hands: tuple[bool, bool] = (True, False)) -> SkeletonFrame:
    """Body joints on a grid, a left hand near the top right and a right hand near the top left."""
    body = np.zeros((MP33.num_joints, 4), np.float32)
    body[:, 0] = np.linspace(0.2, 0.8, MP33.num_joints)
    body[:, 1] = 0.6
    body[:, 3] = score
    hand_array = np.zeros((2, 21, 4), np.float32)
    hand_array[LEFT, :, :2] = (0.9, 0.2)
    hand_array[LEFT, 8, :2] = (0.95, 0.1)  # a finger tip away from the wrist, so a bone has length
    hand_array[RIGHT, :, :2] = (0.1, 0.2)
    hand_array[..., 3] = 1.0
    return SkeletonFrame(0.0, body, hand_array, np.array(hands))


def pixel(image: np.ndarray, x: float, y: float) -> list[int]:
    return image[round(y * HEIGHT), round(x * WIDTH)].tolist()


def test_draws_body_and_present_hand_without_touching_input():
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    drawn = draw_skeleton(image, make_frame())
    assert not image.any()
    assert drawn.shape == image.shape
    assert drawn.dtype == np.uint8
    assert any(pixel(drawn, x, 0.6) != [0, 0, 0] for x in np.linspace(0.2, 0.8, MP33.num_joints))
    assert pixel(drawn, 0.9, 0.2) == list(HAND_COLORS[LEFT])
    assert pixel(drawn, 0.1, 0.2) == [0, 0, 0]  # the right hand is absent


def test_hands_have_different_colours():
    drawn = draw_skeleton(np.zeros((HEIGHT, WIDTH, 3), np.uint8), make_frame(hands=(True, True)))
    assert pixel(drawn, 0.9, 0.2) == list(HAND_COLORS[LEFT])
    assert pixel(drawn, 0.1, 0.2) == list(HAND_COLORS[RIGHT])
    assert HAND_COLORS[LEFT] != HAND_COLORS[RIGHT]


def test_low_score_joints_are_not_drawn():
    drawn = draw_skeleton(np.zeros((HEIGHT, WIDTH, 3), np.uint8), make_frame(score=0.2, hands=(False, False)))
    assert not drawn.any()


def test_label_is_written_at_the_top_left():
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    plain = draw_skeleton(image, make_frame(hands=(False, False)))
    labelled = draw_skeleton(image, make_frame(hands=(False, False)), label="wave 0.93")
    assert (labelled[:20, :60] != plain[:20, :60]).any()


def test_mono_input_gives_colour_output():
    drawn = draw_skeleton(np.zeros((HEIGHT, WIDTH), np.uint8), make_frame())
    assert drawn.shape == (HEIGHT, WIDTH, 3)


def test_world_space_frames_are_refused():
    frame = make_frame()
    frame.space = "world"
    with pytest.raises(ValueError, match="image-space"):
        draw_skeleton(np.zeros((HEIGHT, WIDTH, 3), np.uint8), frame)
