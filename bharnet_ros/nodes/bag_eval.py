"""The real-time mode of the bag evaluation: the bag replayed into the live graph, with its timing.

``bharnet_ros.core.bag_eval.evaluate_bag`` runs it when given :func:`realtime_replay`; options,
scores and report are the core's. The nodes are those of ``bharnet run``, started with the same
parameters file (the pose node reading ``/compressed`` for a CompressedImage bag), in a private ROS
domain (``nodes.bag_io``). rclpy is imported only when a replay starts, so a command that may
run either mode imports this module and stays free of rclpy in the deterministic one.
"""

from __future__ import annotations

import math
from collections import Counter
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from bharnet_ros.core.bag import ACTION_TYPE, COMPRESSED_TYPE, stamp_ns, typestore
from bharnet_ros.core.bag_eval import (
    EvalError,
    EvalOptions,
    EvalRun,
    Replay,
    relative_seconds,
    write_params_file,
)
from bharnet_ros.core.frame_rules import stamp_seconds
from bharnet_ros.core.streaming_metrics import Decision, summarize
from bharnet_ros.nodes.graph import GraphOptions

if TYPE_CHECKING:
    from bharnet_ros.nodes.bag_io import LiveRun


def realtime_replay(rate: float = 1.0) -> Replay:
    """The real-time mode for ``core.bag_eval.evaluate_bag``: replay at ``rate`` times recorded speed."""
    if not (math.isfinite(rate) and rate > 0):  # NaN waited never: the bag went out at once
        raise ValueError(f"the replay rate must be a positive finite number, got {rate}")
    return partial(evaluate_realtime, rate=rate)


def evaluate_realtime(options: EvalOptions, out: Path, rate: float = 1.0) -> EvalRun:
    """Replay the bag into the in-process graph and turn what came back into an EvalRun.

    The parameters file the nodes are started with is written to ``out/params.yaml``. Raises
    BagError when the graph does not come up, EvalError when a node refuses its parameters.
    """
    from bharnet_ros.nodes.bag_io import run_graph_on_bag  # rclpy: only now (see the module doc)
    from bharnet_ros.nodes.graph import camera_topic_problem
    from bharnet_ros.nodes.runner import NodeStartError

    camera = (
        options.topic.removesuffix("/compressed") if options.msgtype == COMPRESSED_TYPE else options.topic
    )
    if problem := camera_topic_problem(camera):  # a bag from another tool may have such a name
        raise EvalError(
            f"{options.topic}: the live graph cannot subscribe to it ({problem}); evaluate the bag "
            "without --realtime"
        )
    graph = GraphOptions(
        camera_topic=camera, model=str(options.model), device=options.device,
        params_file=str(write_params_file(options, out)),
    )  # fmt: skip
    try:
        live = run_graph_on_bag(options.bag, options.topic, options.msgtype, graph, rate=rate)
    except NodeStartError as err:  # a parameter rclpy refuses, as `bharnet run` reports it
        raise EvalError(str(err)) from None
    return live_run(live, options.origin)


def live_run(live: LiveRun, origin: int) -> EvalRun:
    """A replay's ``LiveRun`` as an EvalRun: decisions stamped relative to ``origin`` (ns), each with
    its end-to-end latency (receive time - publish time of the frame it is for), and the counts
    (images the pose node refuses, for their stamps or their pixels, are bad frames, not dropped ones)."""
    bad = live.undecodable + live.refused + live.unusable  # as the deterministic run names them
    run = EvalRun("realtime", live.sent + live.undecodable, 0, None, bad, [], [])
    for received, data in live.actions:
        msg = typestore().deserialize_cdr(data, ACTION_TYPE)
        stamp = stamp_ns(msg.header)
        relative = relative_seconds(stamp_seconds(msg.header.stamp), origin)
        run.predictions.append(Decision(relative, msg.label, int(msg.person_id), float(msg.confidence)))
        published = live.published.get(stamp)
        run.latencies.append(None if published is None else received - published)
    if live.pose_stage:
        # as many of each stamp as were both sent and processed: a bag may repeat a stamp
        run.processed = sum((Counter(live.processed) & Counter(live.stamps_sent)).values())
        run.dropped = live.sent - live.refused - live.unusable - run.processed
    else:
        run.processed = live.sent
    seconds = live.replay_seconds
    run.timing = {
        "replay_seconds": seconds,
        "processed_fps": run.processed / seconds if seconds > 0 else None,
        "latency_seconds": summarize([v for v in run.latencies if v is not None]),
        "schedule_lag_max_seconds": live.schedule_lag_max,
    }
    return run
