"""Recognizer node: skeletons in, smoothed actions out on /bharnet/action.

Configure reads the parameters, loads the ONNX model and checks which ONNX Runtime provider really
runs it (a missing or broken model fails configure with a clear log; the node stays up). Activate
subscribes. One window per person, covering the model's window duration; the core Recognizer
decides every ``stride_seconds`` and publishes ``none`` when no known gesture is confident enough.
The decision parameters (``Param.live``) apply to the running recognizer at once.

Hot swap: setting ``model`` (``ros2 param set /recognizer model new.onnx``, i.e. the standard
``~/set_parameters`` service) loads and checks the new model before the set returns; the old one
goes on deciding on the skeletons that come meanwhile (``nodes.serving``). A file that cannot be
loaded refuses the set with the reason, and the old model stays. Setting the same
path again loads the file again if it changed on disk since it was loaded (a model taught again
under the same name). A good one
replaces the old model between two messages: every person's window is kept where the new model
reads windows as the old one did (duration, frames, body layout), the class list is republished
on ``bharnet/labels`` and the change is logged and reported on ``/diagnostics``. The old model
is kept until the new one has classified its first 20 live windows: if the new one fails on one,
or is slower than ``stride_seconds`` (at least 50 ms) per window, the old one comes back (and the
``model`` parameter with it), since a check on a still window at load time cannot see what real
windows do.
"""

from __future__ import annotations

import copy
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_policy_name_from_kind
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.serialization import deserialize_message
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from std_msgs.msg import Header

from bharnet_ros.core.frame_rules import FrameRules, stamp_problem
from bharnet_ros.core.inference import DEVICES, MAX_DISTANCE_THRESHOLD, InferenceError
from bharnet_ros.core.labels import shorten
from bharnet_ros.core.model_swap import FileStamp, Probation, Verdict, file_stamp
from bharnet_ros.core.params_file import MOST_THREADS
from bharnet_ros.core.paths import DEFAULT_MODEL, default_model
from bharnet_ros.core.recognizer import (
    ActionResult,
    IncompatibleFrameError,
    OnnxWindowClassifier,
    Recognizer,
    RecognizerConfig,
    load_window_classifier,
    takes_frame,
)
from bharnet_ros.core.skeleton import SkeletonError
from bharnet_ros.core.skeleton_fields import MOST_DECODED_SKELETONS, too_many_skeletons
from bharnet_ros.core.stats import Percentiles, PersonDropCounter, RateMeter
from bharnet_ros.core.sync import attach_hands
from bharnet_ros.core.window import MOST_PERSONS
from bharnet_ros.msg import Action, ActionClass, ActionLabels, PersonSkeletonArray
from bharnet_ros.nodes.conversions import queued_seconds, seconds_to_stamp, stamp_to_seconds
from bharnet_ros.nodes.core_logging import speaking_for
from bharnet_ros.nodes.diagnostics import ERROR, OK, WARN
from bharnet_ros.nodes.lifecycle import (
    MANAGED_PARAMS,
    ManagedNode,
    Status,
    TransitionError,
    spin_node,
    unreachable,
)
from bharnet_ros.nodes.pairing import subscribe_pair
from bharnet_ros.nodes.parameters import Param, topic_name_problem
from bharnet_ros.nodes.serving import serve_while

C = RecognizerConfig()
PARAMS = (
    Param(
        "model",
        "",
        f"ONNX model file; empty = {DEFAULT_MODEL} in the package share. A new file is loaded and "
        "checked before it replaces the running one, which decides meanwhile; a bad one is refused and "
        "the old model stays, and one that fails or lags on its first 20 live windows is rolled back",
        live=True,
    ),
    Param(
        "device",
        "cpu",
        "ONNX Runtime device: cpu, cuda (falls back to cpu unless require_device) or auto",
        choices=DEVICES,
    ),
    Param(
        "require_device",
        False,
        "fail configure instead of falling back to CPU (device cuda, or auto whose CUDA fails to start)",
    ),
    Param("threads", 1, "ONNX Runtime intra-op threads (1 leaves a core to MediaPipe)", (0, MOST_THREADS)),
    Param("window_seconds", C.window_seconds, "window duration in seconds; 0 = the model's own", (0.0, 60.0)),
    Param(
        "stride_seconds",
        C.stride_seconds,
        "classify a person's window this often on average (sensor time)",
        (0.0, 10.0),
        live=True,
    ),
    Param(
        "min_seconds",
        C.min_seconds,
        "seconds of history before a person's first decision (at most the window)",
        (0.0, 60.0),
        live=True,
    ),
    Param(
        "none_threshold",
        C.none_threshold,
        "smoothed confidence below which the label is 'none'; 0 = the model's calibrated threshold",
        (0.0, 1.0),
        live=True,
    ),
    Param(
        "distance_threshold",
        C.distance_threshold,
        "feature distance from the training data above which a window's label is 'none'; "
        "0 = the model's calibrated threshold (a model without a distance output ignores it)",
        (0.0, MAX_DISTANCE_THRESHOLD),
        live=True,
    ),
    Param("max_gap", C.max_gap, "hand gaps up to this many frames are interpolated", (0, 256)),
    Param(
        "person_timeout",
        C.person_timeout,
        "seconds without skeletons before a person is forgotten",
        (0.05, 60.0),
    ),
    Param(
        "max_persons",
        C.max_persons,
        "persons tracked at once (a newcomer evicts only a person silent for half person_timeout)",
        (1, MOST_PERSONS),
    ),
    Param(
        "smoothing",
        C.smoothing,
        "weight of the newest window in the label average (1 = none)",
        (0.01, 1.0),
        live=True,
    ),
    Param(
        "switch_margin",
        C.switch_margin,
        "probability lead needed to change the label (below 1: no lead beats 1, the label would freeze)",
        (0.0, 0.99),
        live=True,
    ),
    Param("top_k", C.top_k, "labels listed in each Action", (1, 100), live=True),
    Param(
        "body_topic",
        "",
        "take bodies from this PersonSkeletonArray topic (e.g. a depth tracker), hands from ours",
        check=topic_name_problem,
    ),
    Param("sync_slop", 0.05, "seconds by which body and hand stamps may differ to be paired", (0.0, 1.0)),
    *MANAGED_PARAMS,
)
# Diagnostics values that make the status WARN while they are non-zero.
TROUBLES = (
    "bad_messages", "publish_failures", "unstamped_frames", "persons_refused", "nonfinite_scores",
    "incompatible_qos", "pairing_stalled", "frames_repeated", "wrong_type_publishers",
    "resets_since_last_report",
)  # fmt: skip
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Reliable; absorbs bursts from several persons, and frames that come while a callback is slow.
SKELETON_QOS = QoSProfile(depth=120)


class RecognizerNode(ManagedNode):
    """Runs BHaRNet on per-person sliding windows of skeletons."""

    def __init__(self, **kwargs: Any) -> None:
        self.recognizer: Recognizer | None = None
        self.action_pub = self.labels_pub = None
        self.bad_messages = 0
        self.resets_reported = 0  # window resets already reported on /diagnostics
        self.actions_published = 0
        self.processing = Percentiles()
        self.latency = Percentiles()
        self.rate_in = RateMeter()
        self.unstamped_frames = 0
        self.rules = FrameRules(self._refuse)  # per message, as the deterministic bag eval applies them
        # with body_topic, the body stream's own: one stream's stamps say nothing of the other's
        self.body_rules = FrameRules(self._refuse)
        self.messages_lost = 0  # reported by the middleware
        self.incompatible_qos = 0  # publishers the middleware could not connect to us, ever
        self.unreachable_publishers = 0  # those on the skeleton topics now whose QoS cannot reach us
        self.pairing = PairingCounts()  # with body_topic
        self.drops = PersonDropCounter()  # frames missing between each person's stamps
        self.swap_lock = threading.Lock()  # a model swap never runs inside a push or a prune
        # loaded, not in use: the new ``model`` value, its classifier and file, and the value it replaces
        self.staged_model: tuple[str, OnnxWindowClassifier, FileStamp, str] | None = None
        self.model_stamp: FileStamp = None  # the running model file's identity when it was loaded
        self.model_swaps = self.model_refusals = self.model_rollbacks = 0
        # the model a swap replaced, until the new one proves itself
        self.probation: Probation[Fallback] | None = None
        self.restoring = False  # the node itself is setting ``model`` back after a rollback
        self.loading = False  # a set's model loads; skeletons are served by the waiting set
        self.restore_model: str | None = None  # a rollback's ``model`` value, set once a set ended
        self._restore_timer: Timer | None = None  # the one-shot timer that sets it
        self.spinning_thread: int | None = None  # the executor's, once it ran a callback
        self.last_model_change = ""
        super().__init__("recognizer", PARAMS, **kwargs)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)  # one-shot timers fire under a paused /clock
        self._thread_timer = self.create_timer(0.0, self._note_spinning_thread, clock=self._steady)

    def _note_spinning_thread(self) -> None:
        """Which thread spins the node: only that one may serve its subscriptions during a load."""
        self.destroy_timer(self._thread_timer)
        self.spinning_thread = threading.get_ident()

    def acquire(self) -> None:
        self.staged_model = self.probation = None
        try:
            stamp = file_stamp(self._model_path(self.params["model"]))
            classifier = self._load(self.params["model"])
        except Exception as err:  # no model file may stop the node (InferenceError says why)
            raise TransitionError(f"cannot load the model: {_why(err)}") from None
        self.model_stamp = stamp
        self.recognizer = Recognizer(classifier, RecognizerConfig.from_params(self.params))
        self.resets_reported = 0  # its window set counts from 0
        self.get_logger().info(f"model {classifier.description} running on {classifier.providers}")
        self.action_pub = self.create_configured_publisher(Action, "action", QoSProfile(depth=10))
        self.labels_pub = self.create_configured_publisher(ActionLabels, "labels", LATCHED)

    def subscribe(self) -> list[Subscription]:
        """Skeletons; with ``body_topic``, hands from ours and bodies from there, paired by stamp."""
        options = {
            "qos_overriding_options": QoSOverridingOptions.with_default_policies(),
            "event_callbacks": self._subscription_events(),
        }
        if not self.params["body_topic"]:
            guarded = self.guarded(self._on_serialized_skeletons)
            qos = copy.copy(SKELETON_QOS)  # qos_overrides edit the profile they are given

            def callback(raw: bytes, info: Mapping[str, int]) -> None:  # rclpy: info by arity
                guarded(raw, info)

            return [
                self.create_subscription(PersonSkeletonArray, "skeletons", callback, qos, raw=True, **options)
            ]
        topics = ("skeletons", self.params["body_topic"])
        return subscribe_pair(
            self, PersonSkeletonArray, topics, self.guarded(self._on_synchronised), self.params["sync_slop"],
            SKELETON_QOS, on_arrival=self._count_arrival, decode=self.guarded(self._decode), **options,
        )  # fmt: skip

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        if result == TransitionCallbackReturn.SUCCESS:
            self._publish_labels()
        return result

    def release(self) -> None:
        """Drop the model and the per-person stream state: a stream seen again after a new
        configure is a new stream, not a gap of dropped frames, and an old stamp says nothing
        about whether the new one is stamped. The node's counters on /diagnostics keep counting;
        those of frames and windows start again with the next configure's window set."""
        super().release()
        self.recognizer = self.probation = None
        self.action_pub = self.labels_pub = None
        self.rules.forget()
        self.body_rules.forget()

    def unsubscribe(self) -> None:
        """Also forget each person's stamp gaps: a stream heard again after a deactivate is a new
        stream, not seconds of frames dropped upstream."""
        super().unsubscribe()
        self.drops.forget_all()

    def apply_live(self, names: set[str]) -> None:
        """Decision settings go to the running recognizer; every person's window is kept."""
        super().apply_live(names)
        if self.recognizer is not None:
            self.recognizer.apply_live(RecognizerConfig.from_params(self.params))
        swapped = "model" in names and self._swap_model()
        if "none_threshold" in names and not swapped:
            self._republish_labels()  # the latched threshold follows the live value

    def check_set(self, parameters: list[Parameter]) -> SetParametersResult:
        """Before a set of ``model`` succeeds: load and check the new file (refused if it fails).

        Without a running model (unconfigured) the file is checked on the CPU and dropped:
        configure loads it. The running model's own path is loaded again only if the file changed
        since it was loaded.
        """
        wanted = [p.value for p in parameters if p.name == "model"]
        if not wanted or self.restoring:
            return SetParametersResult(successful=True)
        self.staged_model = None  # one a refused or unchanged set left behind
        try:
            stamp = file_stamp(self._model_path(wanted[-1]))
            if self.recognizer is None:
                self._load(wanted[-1], device="cpu")
            elif wanted[-1] != self.params["model"] or stamp != self.model_stamp:
                classifier = self._load_serving(wanted[-1])
                self.staged_model = (wanted[-1], classifier, stamp, self.params["model"])
        except Exception as err:  # no model file may stop the node (InferenceError says why)
            if not self.context.ok():  # Ctrl-C reached the check's child too: no refusal to report
                return SetParametersResult(successful=False, reason="the node is shutting down")
            self.model_refusals += 1
            kept = "the old one keeps running" if self.recognizer is not None else "not configured"
            reason = shorten(f"model not loaded, {kept}: {_why(err)}", 300)
            self.last_model_change = shorten(f"refused {wanted[-1]}: {_why(err)}", 300)
            self.get_logger().warning(reason)
            return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def reapply(self, parameter: Parameter) -> bool:
        """A set of the running model's path whose changed file was just loaded applies again."""
        staged = self.staged_model
        return parameter.name == "model" and staged is not None and staged[0] == parameter.value

    def _swap_model(self) -> bool:
        """Put the model that :meth:`check_set` checked in place of the running one; whether it did.
        The old one is kept on probation (``core.model_swap``)."""
        staged, self.staged_model = self.staged_model, None
        if staged is None or staged[0] != self.params["model"] or self.recognizer is None:
            return False
        with self.swap_lock:
            old = self.recognizer.classifier
            kept = self.recognizer.replace_classifier(staged[1])
            if self.probation is None:  # else the last model that proved itself stays the fallback
                replaced = staged[3] if self.restore_model is None else self.restore_model
                self.probation = Probation(Fallback(replaced, old, self.model_stamp))
            self.probation.restart()
        self.restore_model = None  # this set's value stands
        self.model_swaps, self.model_stamp = self.model_swaps + 1, staged[2]
        windows = "windows kept" if kept else "windows reset (the new model reads other windows)"
        self.last_model_change = shorten(f"{old.description} -> {staged[1].description}, {windows}", 300)
        self.get_logger().info(f"model swapped: {self.last_model_change}")
        self._republish_labels()
        return True

    def _watch_probation(self) -> None:
        """Act on the verdict on the windows a swapped-in model classified since the last call."""
        verdict, why = self.probation.judge(self.params["stride_seconds"])
        if verdict is Verdict.ROLL_BACK:
            self._roll_back(why)
        elif verdict is Verdict.DONE:
            self.probation = None

    def _roll_back(self, why: str) -> None:
        """Put the model a swap replaced back, and the ``model`` parameter with it: at once, or
        during another set's load (whose callback serves this one) once that set ended."""
        fallback, self.probation = self.probation.fallback, None
        with self.swap_lock:
            failed = self.recognizer.classifier.description
            self.recognizer.replace_classifier(fallback.classifier)
        self.model_stamp, self.model_rollbacks = fallback.stamp, self.model_rollbacks + 1
        back = f"rolled back to {fallback.classifier.description}: {failed} {why}"
        self.last_model_change = shorten(back, 300)
        self.get_logger().error(f"model swap {self.last_model_change}")
        if self.loading:  # a set must not run inside a set
            self.restore_model = fallback.model
            if self._restore_timer is None:  # one pending: a second one orphaned the first, for good
                self._restore_timer = self.create_timer(0.0, self._restore_after_set, clock=self._steady)
        else:
            self._set_model_back(fallback.model)
        self._republish_labels()

    def _restore_after_set(self) -> None:
        """The ``model`` value of a rollback made during a load, unless that set put in a model."""
        self.destroy_timer(self._restore_timer)
        self._restore_timer = None
        model, self.restore_model = self.restore_model, None
        if model is not None:
            self._set_model_back(model)

    def _set_model_back(self, model: str) -> None:
        self.restoring = True
        try:
            self.set_parameters([Parameter("model", value=model)])
        finally:
            self.restoring = False

    def _republish_labels(self) -> None:
        if self.labels_pub is not None and self.labels_pub.is_activated:
            self._publish_labels()

    def _load_serving(self, model: str) -> OnnxWindowClassifier:
        """:meth:`_load` for a running node: the running model goes on deciding on the skeletons
        that come while the new one loads and is checked (seconds). Their windows are not timed
        for a probation, since the load competes with them for the CPU; a failure still rolls back."""
        self.loading = True
        try:
            if threading.get_ident() != self.spinning_thread:  # a set made by hand, not by the executor
                return self._load(model)
            subscriptions = list(self.subscriptions)  # the skeletons', and /clock's under use_sim_time
            return serve_while(
                lambda: self._load(model), subscriptions, self.note_callback_error, self.context
            )
        finally:
            self.loading = False

    def _load(self, model: str, device: str = "") -> OnnxWindowClassifier:
        """The model file (empty: the default) on ``device`` (default: the configured one),
        checked by a dry run."""
        with speaking_for(self):
            path = self._model_path(model)
            return load_window_classifier(path, device or self.params["device"], **self._runtime())

    @staticmethod
    def _model_path(model: str) -> str:
        return model or str(default_model())

    def exclusive_topics(self) -> list[str]:
        return [self.action_pub.topic_name] if self.action_pub is not None else []

    def _runtime(self) -> dict[str, Any]:
        """How the node opens a model: checked first in a child process with a time and memory
        limit (``core.model_check``), so that a graph that hangs or asks for gigabytes is refused
        without stalling the node."""
        return {"require": self.params["require_device"], "threads": self.params["threads"], "isolated": True}

    def _publish_labels(self) -> None:
        """The class list as vision_msgs/LabelInfo shapes it: the class map and the none threshold in use.

        Latched, so a robot that starts later still learns what each ``Action.class_id`` means.
        """
        classifier = self.recognizer.classifier
        msg = ActionLabels(threshold=float(self.recognizer.none_threshold), model=classifier.description)
        names = classifier.class_names
        msg.class_map = [ActionClass(class_id=i, class_name=name) for i, name in enumerate(names)]
        msg.hand_intensive = list(classifier.hand_intensive)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.safe_publish(self.labels_pub, msg)

    def _on_serialized_skeletons(self, raw: bytes, info: Mapping[str, int] | None = None) -> None:
        msg = self._decode(raw)
        if msg is not None:
            self._on_skeletons(msg, info)

    def _decode(self, raw: bytes) -> PersonSkeletonArray | None:
        """A message as the middleware gave it, counted before it is decoded (None if refused): each
        skeleton becomes Python objects, and 2 million empty ones (120 MB) took 4 GB."""
        count = too_many_skeletons(raw)
        if count is not None:
            self._refuse(
                f"ignored a message of {count} skeletons, more than the {MOST_DECODED_SKELETONS} read"
            )
            return None
        return deserialize_message(raw, PersonSkeletonArray)

    def _on_skeletons(self, msg: PersonSkeletonArray, info: Mapping[str, int] | None = None) -> None:
        started = time.monotonic()
        self._push_all(self._frames(msg), msg, started, started - queued_seconds(info))

    def _on_synchronised(self, hands_msg: PersonSkeletonArray, body_msg: PersonSkeletonArray) -> None:
        started = time.monotonic()  # paired messages come without the middleware's receive time
        self.pairing.pairs += 1
        frames = attach_hands(self._frames(body_msg, self.body_rules), self._frames(hands_msg))
        self._push_all(frames, body_msg, started, started)

    def _subscription_events(self) -> SubscriptionEventCallbacks:
        """Count what the middleware reports (where the RMW supports it): messages lost on the way,
        and publishers whose QoS cannot reach us (a best-effort tracker: nothing would ever arrive)."""

        def on_lost(info: Any) -> None:
            self.messages_lost += int(info.total_count_change)

        def on_incompatible(info: Any) -> None:
            self.incompatible_qos += int(info.total_count_change)
            policy = qos_policy_name_from_kind(info.last_policy_kind)
            self.get_logger().warning(
                f"a publisher's QoS cannot reach this subscription ({policy}); "
                "match it with the qos_overrides parameters (docs/nodes.md)"
            )

        return SubscriptionEventCallbacks(message_lost=on_lost, incompatible_qos=on_incompatible)

    def _count_arrival(self, stream: int) -> None:
        self.pairing.arrived[stream] += 1

    def _frames(self, msg: PersonSkeletonArray, rules: FrameRules | None = None) -> list:
        """Contract frames of a message by ``core.frame_rules``; invalid persons are counted, logged
        and left out.

        An unstamped message (stamp 0, from a driver that never sets it) is timed by this node's
        clock instead, with a throttled warning and a counter, so its frames are not all duplicates;
        within ``frame_rules.STAMPED_MEMORY`` s of a stamped frame (on the monotonic clock) it is refused
        instead (a second publisher on the same topic; ``rules`` are that topic's).
        """
        return (rules or self.rules).frames(msg.persons, time.monotonic(), self._unstamped)

    def _unstamped(self) -> float:
        self.unstamped_frames += 1
        self.get_logger().warning(
            "skeletons arrive with stamp 0; timing them by this node's clock (fix the camera driver)",
            throttle_duration_sec=10.0,
        )
        return self.get_clock().now().nanoseconds * 1e-9

    def _refuse(self, why: str) -> None:
        self.bad_messages += 1
        self.get_logger().warning(why, throttle_duration_sec=5.0)

    def _push_all(self, frames: list, msg: PersonSkeletonArray, started: float, received: float) -> None:
        """``started``: when this callback began; ``received``: when the middleware had the message
        (earlier by the time it queued behind slower callbacks)."""
        recognizer = self.recognizer
        if recognizer is None:  # a message taken just before cleanup
            return
        self.rate_in.tick(started)
        with speaking_for(self), self.swap_lock:
            for frame in frames:  # one per person: FrameRules.frames kept the first of each
                self.drops.observe(frame.person_id, frame.timestamp)
                try:
                    result = self._push(recognizer, frame, started)
                except SkeletonError as err:
                    self._refuse(f"ignored a skeleton: {err}")
                    continue
                if result is not None:
                    self._publish_action(result, action_header(frame.person_id, result.stamp, msg), received)
        windows = recognizer.windows
        self.drops.forget_untracked(windows.person_ids, 2 * windows.max_persons)  # bounded under id churn
        self.processing.add(time.monotonic() - started)
        if self.probation is not None and self.probation.unjudged:
            self._watch_probation()

    def _push(self, recognizer: Recognizer, frame: Any, arrival: float) -> ActionResult | None:
        """One frame into the recognizer; while a swapped-in model is on probation, its windows are
        timed and a failure (a frame of a layout or space it cannot take among them) is noted for
        :meth:`_watch_probation` (run once the lock is free)."""
        probation = self.probation
        if probation is None:
            return recognizer.push(frame, arrival=arrival)
        classified, start = recognizer.windows_classified, time.monotonic()
        nonfinite = recognizer.stats.nonfinite_scores
        try:
            result = recognizer.push(frame, arrival=arrival)
        except IncompatibleFrameError as err:
            if not takes_frame(probation.fallback.classifier, frame):
                raise
            probation.failed(str(err))  # the old model took it: this never will. The swap is at
            return None  # fault, not the input: no bad message, which had kept the node at WARN
        except SkeletonError:
            raise
        except Exception as err:
            probation.failed(_why(err))
            return None
        if recognizer.stats.nonfinite_scores > nonfinite:  # it answered, with no number to act on
            probation.failed("scores or distance not finite")
        elif recognizer.windows_classified > classified and not self.loading:
            probation.timed(time.monotonic() - start)
        return result

    def _publish_action(self, result: ActionResult, header: Header, received: float) -> None:
        body = result.expert_labels.get("body", ("", 0.0))
        hand = result.expert_labels.get("hand", ("", 0.0))
        msg = Action(
            header=header,
            person_id=result.person_id,
            label=result.label,
            class_id=result.class_id,
            confidence=result.confidence,
            top_labels=result.top_labels,
            top_scores=result.top_scores,
            body_label=body[0],
            body_score=body[1],
            hand_label=hand[0],
            hand_score=hand[1],
            hand_fraction=result.hand_fraction,
            window_start=seconds_to_stamp(result.window_start),
        )
        msg.processing_latency = time.monotonic() - received
        if self.safe_publish(self.action_pub, msg):
            self.actions_published += 1
            self.latency.add(msg.processing_latency)

    def periodic(self) -> None:
        """Forget persons who left, also when no skeletons arrive at all, and look for publishers
        of another type on the skeleton topics (``find_wrong_types``).

        Age is the time since a person's last frame *arrived* (this node's monotonic clock), so it
        works whatever clock the camera stamps with, and per person: skewed clocks of two cameras
        do not time each other out.
        """
        recognizer = self.recognizer
        if recognizer is not None:
            with speaking_for(self), self.swap_lock:
                recognizer.prune(time.monotonic())  # persons age on the arrival clock
        matched = self.find_wrong_types()  # a body tracker's own message on body_topic, say
        self.unreachable_publishers = sum(
            unreachable(subscription, publishers)
            for subscription, publishers in zip(list(self.inputs), matched, strict=False)
        )

    def status(self) -> Status:
        if self.recognizer is None:
            return ERROR, "not configured", {}
        timing, latency = self.processing.summary(), self.latency.summary()
        windows = self.recognizer.windows
        fills = [buffer.fill for _, buffer in windows.items()]
        values = {
            "provider": ",".join(self.recognizer.classifier.providers),
            "input_rate_hz": self.rate_in.rate(time.monotonic()),
            "processing_ms_p50": 1000 * timing["p50"],
            "processing_ms_p95": 1000 * timing["p95"],
            "latency_ms_p95": 1000 * latency["p95"],
            "windows_classified": self.recognizer.windows_classified,
            "windows_unfamiliar": self.recognizer.windows_unfamiliar,
            "distance_threshold": self.recognizer.distance_threshold,
            "actions_published": self.actions_published,
            "persons": len(windows),
            "window_fill": max(fills, default=0.0),
            "bad_messages": self.bad_messages,
            "incompatible_layout": self.recognizer.stats.incompatible_layout,
            "incompatible_space": self.recognizer.stats.incompatible_space,
            "nonfinite_scores": self.recognizer.stats.nonfinite_scores,
            "unstamped_frames": self.unstamped_frames,
            "persons_refused": self.recognizer.stats.persons_refused,
            "frames_received": windows.stats.frames_pushed,
            "frames_repeated": windows.stats.duplicates,
            "frames_dropped_upstream": self.drops.dropped,
            "messages_lost": self.messages_lost,
            "incompatible_qos": self.unreachable_publishers,  # now: the WARN clears once they leave
            "incompatible_qos_seen": self.incompatible_qos,
            "frames_not_classified": windows.stats.frames_pushed - self.recognizer.windows_classified,
            "publish_failures": self.publish_failures,
            "resets": windows.stats.resets,
            "resets_since_last_report": max(windows.stats.resets - self.resets_reported, 0),
            "model": self.recognizer.classifier.description,
            "model_swaps": self.model_swaps,
            "model_swaps_refused": self.model_refusals,
            "model_swaps_rolled_back": self.model_rollbacks,
        }
        self.resets_reported = windows.stats.resets
        if self.last_model_change:
            values["last_model_change"] = self.last_model_change
        if self.wrong_type_publishers:
            values["wrong_type_publishers"] = self.wrong_type_publishers
            values["wrong_type"] = "; ".join(self.wrong_type)
        if self.params["body_topic"]:
            values.update(self.pairing.report())
        return self._level(values), self._message(values), values

    @staticmethod
    def _level(values: dict[str, Any]) -> int:
        return WARN if any(values.get(key) for key in TROUBLES) else OK

    @staticmethod
    def _message(values: dict[str, Any]) -> str:
        parts = []
        if values["bad_messages"] or values["publish_failures"]:
            parts.append("bad input or publish failures seen")
        if values["unstamped_frames"]:
            parts.append("unstamped input timed by the node clock")
        if values.get("wrong_type"):
            parts.append(values["wrong_type"])
        if values["frames_repeated"]:
            parts.append(
                f"{values['frames_repeated']} frames repeated their person's newest stamp and were ignored"
            )
        if values.get("resets_since_last_report"):
            parts.append(
                f"{values['resets_since_last_report']} window resets since the last report (stamps "
                "going back or jumping ahead: a second clock on the topic?, or a new image size)"
            )
        if values["persons_refused"]:
            parts.append(f"more persons than max_persons: {values['persons_refused']} frames refused")
        if values["incompatible_qos"]:
            parts.append("a publisher's QoS cannot reach the skeleton subscription")
        if values.get("pairing_stalled"):
            parts.append("skeletons arrive but bodies and hands do not pair: check sync_slop and both clocks")
        return "; ".join(parts) or "running"


@dataclass
class PairingCounts:
    """Messages of the two paired topics (hands, bodies) and the pairs made of them."""

    arrived: list[int] = field(default_factory=lambda: [0, 0])
    pairs: int = 0
    reported: tuple[int, int] = (0, 0)  # (messages, pairs) at the last report

    def report(self) -> dict[str, int]:
        """Diagnostics values; ``pairing_stalled`` when messages came since the last report and
        none paired (bodies stamped on another clock, or beyond sync_slop): no action could follow."""
        messages = sum(self.arrived)
        stalled = messages > self.reported[0] and self.pairs == self.reported[1]
        self.reported = (messages, self.pairs)
        return {
            "hand_messages": self.arrived[0], "body_messages": self.arrived[1], "pairs": self.pairs,
            "pairing_stalled": int(stalled),
        }  # fmt: skip


@dataclass(frozen=True)
class Fallback:
    """The model a swap replaced, put back if the new one fails its probation."""

    model: str  # the ``model`` parameter's value for it
    classifier: OnnxWindowClassifier
    stamp: FileStamp


def action_header(person_id: int, stamp: float, msg: PersonSkeletonArray) -> Header:
    """An Action's header: the newest frame's own stamp, to the nanosecond as it came (this node's
    clock for an unstamped frame), and the camera frame_id of the message it came in. Looked up
    only when a decision is published, not for every message: the person's own skeleton (not
    another's a float cannot tell apart at epoch times, nor one refused for a stamp no clock gives)."""
    own = (
        p.header.stamp
        for p in msg.persons
        if p.person_id == person_id
        and not stamp_problem(p.header.stamp)
        and stamp_to_seconds(p.header.stamp) == stamp
    )
    return Header(stamp=next(own, None) or seconds_to_stamp(stamp), frame_id=msg.header.frame_id)


def _why(err: Exception) -> str:
    """An error in one line: our own errors as they say it, others with their type."""
    return str(err) if isinstance(err, InferenceError) else f"{type(err).__name__}: {err}"


def main(args: list[str] | None = None) -> int:
    return spin_node(RecognizerNode, args)


if __name__ == "__main__":
    sys.exit(main())
