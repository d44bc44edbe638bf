"""The synthetic gesture vocabulary: class names, labels and which classes only the hand tells apart."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GestureClass:
    """One class of the synthetic vocabulary."""

    name: str
    hand_intensive: bool  # True where the hand's shape, not the arm's motion, identifies the class
    description: str


# The order is fixed: a class's label is its index here. Append new classes at the end only.
CLASSES: tuple[GestureClass, ...] = (
    GestureClass("idle", False, "standing at rest: posture sway, now and then a small hand drift"),
    GestureClass("wave", False, "open hand raised beside the head, swung from side to side"),
    GestureClass("hello", False, "flat hand from the forehead outwards, like a salute (sign HELLO)"),
    GestureClass("thanks", False, "flat hand from the chin forwards and down (sign THANK YOU)"),
    GestureClass("i_love_you", True, "ILY hand (thumb, index and pinky out) held up"),
    GestureClass("thumbs_up", True, "fist with the thumb up, held up"),
    GestureClass("thumbs_down", True, "fist with the thumb down, held up"),
    GestureClass("ok_sign", True, "thumb and index tips touching in a ring, other fingers out"),
    GestureClass("victory_sign", True, "index and middle finger spread in a V"),
    GestureClass("pointing", True, "index finger pointing to the front, towards the performer's side"),
    GestureClass("stop", False, "arm pushed forwards, open palm towards the camera"),
    GestureClass("come_here", True, "palm up, fingers curling repeatedly (beckoning)"),
    GestureClass("clap", False, "both hands clapping in front of the chest"),
    GestureClass("fidget", False, "no gesture: both arms wander through random poses without a hold"),
)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
HAND_INTENSIVE: tuple[bool, ...] = tuple(c.hand_intensive for c in CLASSES)
# Same arm trajectory distribution and random stream; they differ only in the hand.
SHARED_ARM_CLASSES: tuple[str, ...] = (
    "i_love_you", "thumbs_up", "thumbs_down", "ok_sign", "victory_sign", "pointing",
)  # fmt: skip


def class_index(name: str) -> int:
    """Label of a class name, with an error that lists the vocabulary."""
    try:
        return CLASS_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown gesture class {name!r}; known: {', '.join(CLASS_NAMES)}") from None
