"""What every bharnet lifecycle node shares.

* Parameters that really apply: live ones at once, the others on the next configure, which reads
  every parameter again (``Param.live`` / ``read_only`` in each node's table).
* Symmetric resources: configure acquires (model, publishers) and cleanup/shutdown release them;
  activate subscribes (a lazy node only once its output has readers) and deactivate unsubscribes.
  A transition that fails (a bad parameter, an exception) leaves nothing half made and says why on
  ``/diagnostics``. The ``/diagnostics`` publisher and its timer live as long as the node, on the
  steady clock, so an unconfigured node still reports why, and a paused ``/clock`` (sim time) does
  not silence it.
* A warning when a second graph shares the ROS domain (same node name, or a second publisher on a
  topic only this node should publish).
* Core (Python ``logging``) records on the node's logger, publishing that never raises, autostart,
  and a ``ros2 run`` entry point that exits quietly.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy._rclpy_pybind11 import RCLError
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import (
    InvalidHandle,
    NameValidationException,
    ParameterException,
    ParameterNotDeclaredException,
)
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription

from bharnet_ros.core.labels import shorten
from bharnet_ros.nodes.core_logging import route_core_logging, stop_routing_core_logging
from bharnet_ros.nodes.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from bharnet_ros.nodes.environment import ignore_further_interrupts, use_default_dds_profile
from bharnet_ros.nodes.parameters import ON_CONFIGURE, Param, declare_parameters, read_parameters

MANAGED_PARAMS = (
    Param("diagnostics_period", 1.0, "seconds between /diagnostics updates", (0.1, 60.0), live=True),
    Param(
        "autostart",
        True,
        "configure and activate on start-up (no lifecycle manager needed)",
        read_only=True,
    ),
)
SHARED_DOMAIN_HINT = (
    "two graphs seem to share this ROS domain; give one its own namespace (bharnet run --namespace "
    "NAME, or namespace:=NAME for the launch file) or its own ROS_DOMAIN_ID"
)
Status = tuple[bytes, str, dict[str, Any]]  # diagnostics level, message, key values
T = TypeVar("T")  # what a guarded callback returns


CALLBACK_ERROR_HOLD_SECONDS = 60.0  # diagnostics stay ERROR this long after a callback failed
REFUSAL_CHARS = 300  # a refused request's reason, as logged and answered (a path can be megabytes)


class CallbackErrorCount:
    """For a node: exceptions from its callbacks, logged (throttled) and counted, so that its
    diagnostics can say that it survived them and what the last one was."""

    callback_errors = 0
    last_callback_error = ""
    last_callback_error_at = -float("inf")  # time.monotonic() of the last failure

    def with_callback_errors(self, status: Status) -> Status:
        """``status`` with the count and the last failure once a callback failed: ERROR for
        :data:`CALLBACK_ERROR_HOLD_SECONDS` after a failure, then at least WARN (a few bad /clock
        messages long ago must not hide for good that the node is fine, or that its video ended)."""
        level, message, values = status
        values["callback_errors"] = self.callback_errors
        if not self.callback_errors:
            return status
        failed = f"{self.callback_errors} callbacks failed, last: {self.last_callback_error}"
        if time.monotonic() - self.last_callback_error_at <= CALLBACK_ERROR_HOLD_SECONDS:
            return ERROR, f"{message}; {failed}", values  # added: it replaced why the video stopped
        return max(level, WARN), f"{message}; {failed}", values

    def note_callback_error(self, err: Exception) -> None:
        self.last_callback_error_at = time.monotonic()
        self.callback_errors += 1
        self.last_callback_error = f"{type(err).__name__}: {err}"[:200]
        self.get_logger().error(  # type: ignore[attr-defined]
            f"a callback failed ({self.last_callback_error}); the node keeps running",
            throttle_duration_sec=5.0,
        )


class SafePublishing:
    """For a node: publishing that never raises, with what the middleware refuses logged
    (throttled) and counted in ``publish_failures`` for its diagnostics."""

    publish_failures = 0

    def safe_publish(self, publisher: Any, msg: Any) -> bool:
        """Publish; whether it went out.

        A publisher destroyed under a running callback, or a context already shut down by Ctrl-C,
        means the node is being torn down: that is no failure and is not reported.
        """
        try:
            publisher.publish(msg)
        except InvalidHandle:
            return False
        except Exception as err:  # rclpy raises RCLError subclasses, under overload too
            if not self.context.ok():  # type: ignore[attr-defined]
                return False
            self.publish_failures += 1
            self.get_logger().warning(  # type: ignore[attr-defined]
                f"publish on {_topic_name(publisher)} failed: {err}", throttle_duration_sec=5.0
            )
            return False
        return True


MOST_QUEUE_DEPTH = 2**31 - 1  # what rmw's queue depth takes
HISTORIES = {"KEEP_LAST", "KEEP_ALL", "SYSTEM_DEFAULT"}  # rclpy's HistoryPolicy names a subscription takes


class TransitionError(Exception):
    """A transition cannot complete, for the reason given (a model file that does not load): the
    node releases what it made, reports why as ``transition_error`` and stays up."""


class ManagedNode(CallbackErrorCount, SafePublishing, LifecycleNode):
    """A lifecycle node whose parameters apply, whose resources follow its transitions, and that
    never dies on a publish error.

    Subclasses implement :meth:`acquire` (configure; raise :class:`TransitionError` and the node
    stays up, inspectable and reconfigurable), :meth:`subscribe` (activate), :meth:`status` (diagnostics)
    and extend :meth:`release` (cleanup and shutdown) and :meth:`apply_live`.
    """

    def __init__(self, name: str, params: tuple[Param, ...], **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.param_table = {param.name: param for param in params}
        self.params = declare_parameters(self, params)  # the values in effect
        self.pending: set[str] = set()  # set since the last configure, applied by the next one
        self.transitions_refused = 0  # requests for a transition the current state does not offer
        self.parameter_sets_refused = 0  # set requests refused, by us or by rclpy (type, range)
        self.last_parameter_refusal = ""
        self.wrong_type: list[str] = []  # publishers of another type on an input topic, in words
        self.wrong_type_publishers = 0
        self.inputs: list[Subscription] = []  # flat: every rclpy subscription activate made
        self.conflicts: list[str] = []
        self.transition_error = ""  # why the last configure or activate failed
        self._configured_publishers: list[Any] = []
        self.add_on_set_parameters_callback(self._check_values)
        self.add_post_set_parameters_callback(self.guarded(self._on_parameters_set))
        self.diagnostics = DiagnosticsPublisher(self)
        self.diagnostics_timer = self.create_timer(
            self.params["diagnostics_period"], self._on_timer, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )
        route_core_logging(self)
        self._autostart_timer = None
        if self.params["autostart"]:
            self.start_automatically()

    # --- what subclasses provide -------------------------------------------------------------

    def acquire(self) -> None:
        """Configure: load what may fail (raising :class:`TransitionError` with the reason) and
        create the publishers (with ``create_configured_publisher``)."""

    def subscribe(self) -> list[Subscription]:
        """Activate: the input subscriptions."""
        return []

    def release(self) -> None:
        """Free what configure and activate created. Called by cleanup and shutdown."""
        self.unsubscribe()
        for publisher in self._configured_publishers:
            self.destroy_lifecycle_publisher(publisher)
        self._configured_publishers.clear()

    def apply_live(self, names: set[str]) -> None:
        """Live parameters ``names`` were just set (``self.params`` holds the new values)."""
        if "diagnostics_period" in names:
            self.diagnostics_timer.timer_period_ns = int(self.params["diagnostics_period"] * 1e9)
            if not self.diagnostics_timer.is_canceled():  # a finalized node said so once: no more
                self.diagnostics_timer.reset()  # else the tick already due under the old period comes first

    def check_set(self, parameters: list[Parameter]) -> SetParametersResult:
        """A set whose every value passed its own check: what it would cost to apply it (e.g.
        loading a file) is tried last, so that a set refused for another value costs nothing."""
        return SetParametersResult(successful=True)

    def reapply(self, parameter: Parameter) -> bool:
        """Whether a set to the value already in effect must apply again (e.g. a file that changed)."""
        return False

    def status(self) -> Status:
        """The diagnostics level, message and values, once per ``diagnostics_period``."""
        raise NotImplementedError

    def periodic(self) -> None:
        """Housekeeping run by the diagnostics timer just before :meth:`status`."""

    def exclusive_topics(self) -> list[str]:
        """Topics that should have no publisher but this node (a second one means a second graph)."""
        return []

    # --- lifecycle -------------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.params = read_parameters(self, tuple(self.param_table.values()))
        self.pending.clear()
        self.callback_errors, self.last_callback_error = 0, ""
        problems = list(
            filter(None, (self._problem(p, self.params[p.name]) for p in self.param_table.values()))
        )
        if problems:  # values given at start-up (YAML, launch) skip the on-set check
            return self._failed("configure", "; ".join(problems))
        try:
            self.acquire()
        except Exception as err:
            self.release()
            why = str(err) if isinstance(err, TransitionError) else f"{type(err).__name__}: {err}"
            return self._failed("configure", why)
        self.transition_error = ""
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        before = list(self.subscriptions)
        try:
            self.inputs = self.subscribe()
        except Exception as err:  # destroy what it made before it failed
            self.inputs = [s for s in self.subscriptions if all(s is not b for b in before)]
            self.unsubscribe()
            return self._failed("activate", f"{type(err).__name__}: {err}")
        self.transition_error = ""
        return super().on_activate(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised past its own handling: free everything and go back to unconfigured."""
        self.release()
        self._failed(f"the transition from {state.label}", "an unexpected error (resources released)")
        return TransitionCallbackReturn.SUCCESS

    def _failed(self, transition: str, why: str) -> TransitionCallbackReturn:
        """Log and keep why a transition failed (shown on /diagnostics); the node stays up. Once a
        signal shut the context down, the failure is the shutdown's, and nothing is logged."""
        self.transition_error = f"{transition} failed: {why}"[:300]
        if self.context.ok():
            self.get_logger().error(f"{self.transition_error}; the node keeps running, fix it and retry")
        return TransitionCallbackReturn.FAILURE

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.unsubscribe()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        self.transition_error = ""  # a transition succeeded: the failure before it is over
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        self.transition_error = ""
        return TransitionCallbackReturn.SUCCESS

    def create_configured_publisher(
        self, msg_type: Any, topic: str, qos: QoSProfile | int, **options: Any
    ) -> Any:
        """A lifecycle publisher that :meth:`release` destroys again (``options``: rclpy's, such as
        ``event_callbacks``)."""
        publisher = self.create_lifecycle_publisher(msg_type, topic, qos, **options)
        self._configured_publishers.append(publisher)
        return publisher

    def create_subscription(self, msg_type: Any, topic: str, *args: Any, **options: Any) -> Subscription:
        """rclpy's, after :meth:`check_queue_overrides` where overrides apply."""
        if options.get("qos_overriding_options") is not None:
            self.check_queue_overrides(topic)
        return super().create_subscription(msg_type, topic, *args, **options)

    def check_queue_overrides(self, topic: str) -> None:
        """ValueError naming the parameter for a ``qos_overrides`` depth or history given at start-up
        for this topic that no subscription can take: rclpy failed on them with a pybind signature
        or a bare RuntimeError that named no parameter. A node that subscribes later (``lazy``)
        checks them at activate too, not in the first reader's callback."""
        where = f"qos_overrides.{self.resolve_topic_name(topic)}.subscription"
        depth = self._parameter_overrides.get(f"{where}.depth")
        value = depth.value if depth is not None else 1
        if type(value) is not int or not 1 <= value <= MOST_QUEUE_DEPTH:
            raise ValueError(
                f"{where}.depth {shorten(repr(value), 40)} is no depth from 1 to {MOST_QUEUE_DEPTH}"
            )
        history = self._parameter_overrides.get(f"{where}.history")
        value = history.value if history is not None else "keep_last"
        if not isinstance(value, str) or value.upper() not in HISTORIES:
            names = ", ".join(sorted(HISTORIES)).lower()
            raise ValueError(f"{where}.history {shorten(repr(value), 40)} is none of {names}")

    def unsubscribe(self) -> None:
        """Destroy every input subscription, so no callback runs once the node is inactive."""
        inputs, self.inputs = self.inputs, []
        for subscription in inputs:
            self.destroy_subscription(subscription)

    def destroy_node(self) -> None:
        """Destroy the node, and its lifecycle state machine with it.

        rclpy's LifecycleNode leaves the state machine to the garbage collector, and the state
        machine keeps the rcl node alive: the node would stay in the ROS graph (and look like a
        second node of its name) until the Python object happened to be collected.
        """
        stop_routing_core_logging(self)
        super().destroy_node()
        self._state_machine.destroy_when_not_in_use()

    def _LifecycleNodeMixin__change_state(self, transition_id: int) -> TransitionCallbackReturn:  # noqa: N802
        """Refuse a transition the current state does not offer before rclpy starts it.

        Kilted's rclpy answers such a request with failure, but Jazzy's raises out of the
        ``change_state`` service and kills the node, and lifecycle managers (nav2's, launch's
        ``ChangeState``) send ``configure`` by id to a node that ``autostart`` already activated.
        """
        offered = {description[0] for description in self._state_machine.available_transitions}
        if transition_id not in offered:
            state = self._state_machine.current_state[1]
            self.transitions_refused += 1
            self.get_logger().warning(
                f"transition {transition_id} is not available in state {state}; refused"
            )
            return TransitionCallbackReturn.ERROR
        return super()._LifecycleNodeMixin__change_state(transition_id)

    def _LifecycleNodeMixin__on_change_state(self, request: Any, response: Any) -> Any:  # noqa: N802
        """Count a request by a label the current state does not offer (rclpy answers failure
        silently), like one by id."""
        label = request.transition.label
        if label:
            try:
                self._state_machine.get_transition_by_label(label)
            except RCLError:
                state = self._state_machine.current_state[1]
                self.transitions_refused += 1
                self.get_logger().warning(
                    f"transition {shorten(label, 40)!r} is not available in state {state}; refused"
                )
                response.success = False
                return response
        return super()._LifecycleNodeMixin__on_change_state(request, response)

    def start_automatically(self) -> None:
        """Configure and activate once the executor spins (what a lifecycle manager would do)."""
        self._autostart_timer = self.create_timer(0.0, self._autostart)

    def _autostart(self) -> None:
        self.destroy_timer(self._autostart_timer)
        if not self.context.ok():  # a signal came during start-up: configuring would only fail
            return
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # --- parameters ------------------------------------------------------------------------------

    def _problem(self, param: Param, value: Any) -> str:
        return param.problem(value, self.get_name(), self.get_namespace())

    def _check_values(self, parameters: list[Parameter]) -> SetParametersResult:
        """Refuse text that is not one of a parameter's choices, or fails its check, at the set."""
        for parameter in parameters:
            param = self.param_table.get(parameter.name)
            problem = self._problem(param, parameter.value) if param is not None else ""
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        try:
            return self.check_set(parameters)
        except Exception as err:  # the client gets an answer, not a timeout
            return SetParametersResult(successful=False, reason=f"{type(err).__name__}: {err}")

    def _on_parameters_set(self, parameters: list[Parameter]) -> None:
        """After a successful set: apply live values now, note the others for the next configure.

        A set that names a parameter twice ends with its last value, as rclpy stores it."""
        newest = {p.name: p for p in parameters}.values()
        changed = [
            p for p in newest
            if p.name in self.param_table and (p.value != self.params[p.name] or self.reapply(p))
        ]  # fmt: skip
        live = {p.name: p.value for p in changed if self._is_live(p.name)}
        deferred = [p.name for p in changed if not self._is_live(p.name)]
        if deferred:
            self.get_logger().info(f"{', '.join(deferred)} {ON_CONFIGURE}")
        self.pending = {
            name for name in self.param_table
            if not self._is_live(name) and self.get_parameter(name).value != self.params[name]
        }  # fmt: skip
        if live:
            self.params.update(live)
            self.apply_live(set(live))

    def set_parameters(self, parameter_list: list[Parameter]) -> list[SetParametersResult]:
        """One set per parameter, as rclpy does it, each through :meth:`set_parameters_atomically`."""
        return [self.set_parameters_atomically([parameter]) for parameter in parameter_list]

    def set_parameters_atomically(self, parameter_list: list[Parameter]) -> SetParametersResult:
        """Also what the ``set_parameters`` services call, so ``ros2 param set`` shows the reason.
        Every refusal (ours, or rclpy's for a type, a range or a read-only parameter) is logged
        and counted for /diagnostics."""
        try:
            result = super().set_parameters_atomically(parameter_list)
        except ParameterNotDeclaredException as err:
            self._note_refusal(parameter_list, str(err))
            raise
        if not result.successful:
            result.reason = self._note_refusal(parameter_list, result.reason)
        return self._say_when(result, parameter_list)

    def _note_refusal(self, parameters: list[Parameter], reason: str) -> str:
        """Log and count a refused set; the reason, cut to :data:`REFUSAL_CHARS`."""
        reason = shorten(reason, REFUSAL_CHARS)
        names = shorten(", ".join(p.name for p in parameters), 80)
        self.parameter_sets_refused += 1
        self.last_parameter_refusal = f"{names}: {reason}"
        if self.context.ok():  # after Ctrl-C, the shutdown's refusals are no news
            self.get_logger().warning(f"parameter set refused ({self.last_parameter_refusal})")
        return reason

    def _say_when(self, result: SetParametersResult, parameters: list[Parameter]) -> SetParametersResult:
        """Successful sets of configure-time parameters say so in their reason.

        rclpy drops the reason an on-set callback gives with success, so it is added here.
        """
        deferred = [p.name for p in parameters if p.name in self.param_table and not self._is_live(p.name)]
        if result.successful and deferred:
            result.reason = f"{', '.join(deferred)} {ON_CONFIGURE}"
        return result

    def _is_live(self, name: str) -> bool:
        return self.param_table[name].live

    # --- diagnostics and graph checks ------------------------------------------------------------

    def guarded(self, callback: Callable[..., T]) -> Callable[..., T | None]:
        """``callback`` that cannot stop its executor thread: an exception is logged (throttled),
        counted in ``callback_errors`` and turns the diagnostics ERROR until the next configure
        (and the call returns None)."""

        def run(*args: Any) -> T | None:
            try:
                return callback(*args)
            except Exception as err:
                self.note_callback_error(err)
                return None

        return run

    def _on_timer(self) -> None:
        self.guarded(self.periodic)()
        level, message, values = self.status()
        state = values["lifecycle_state"] = self._state_machine.current_state[1]
        if state == "inactive":  # said whatever else is wrong: an old WARN hid it for good
            inactive = "inactive: configured but not processing; activate it"
            level, message = max(level, WARN), inactive if level == OK else f"{inactive}; {message}"
        if state == "finalized":
            level, message = WARN, "shut down (finalized); start the node again to use it"
            self.diagnostics_timer.cancel()  # this status is its last
        level, message, values = self.with_callback_errors((level, message, values))
        conflicts = self._check_graph()
        if conflicts:
            level, message = max(level, WARN), f"{message}; {'; '.join(conflicts)}"
        values["transitions_refused"] = self.transitions_refused
        values["parameter_sets_refused"] = self.parameter_sets_refused
        if self.last_parameter_refusal:
            values["last_parameter_refusal"] = self.last_parameter_refusal
        if self.pending:
            values["pending_reconfigure"] = ",".join(sorted(self.pending))
        if self.transition_error:
            level, message = ERROR, f"{message}; {self.transition_error}"
            values["transition_error"] = self.transition_error
        self.diagnostics.publish(level, message, values)

    def _check_graph(self) -> list[str]:
        """Warn (once per change) about another node with our name or another publisher of our topics."""
        try:
            conflicts = self.graph_conflicts()
        except InvalidHandle:  # a publisher destroyed by a concurrent cleanup
            return self.conflicts
        if conflicts and conflicts != self.conflicts:
            self.get_logger().warning(f"{'; '.join(conflicts)}: {SHARED_DOMAIN_HINT}")
        self.conflicts = conflicts
        return conflicts

    def graph_conflicts(self) -> list[str]:
        """Other nodes named like this one, and other publishers on :meth:`exclusive_topics`."""
        found = []
        me = (self.get_name(), self.get_namespace())
        if list(self.get_node_names_and_namespaces()).count(me) > 1:
            found.append(f"another node is named {self.get_fully_qualified_name()}")
        for topic in self.exclusive_topics():
            others = self.count_publishers(topic) - 1
            if others > 0:
                found.append(f"{others} other publisher(s) on {topic}")
        return found

    def find_wrong_types(
        self, hint: Callable[[str, list[str]], str] = lambda wanted, others: ""
    ) -> list[list[Any]]:
        """Each input's publishers that send its type; those of other types are put in words in
        ``wrong_type`` (logged when they change) and counted in ``wrong_type_publishers``.

        DDS never delivers another type and says nothing, so a topic of the wrong type looks like a
        silent one. ``hint(wanted, other types)`` adds what to change to the words.
        """
        found, count, matched = [], 0, []
        for subscription in list(self.inputs):
            wanted = message_type_name(subscription.msg_type)
            matching, others = split_publishers(self, subscription.topic_name, subscription.msg_type)
            matched.append(matching)
            problem = wrong_type_problem(subscription.topic_name, wanted, others, hint(wanted, others))
            if problem:
                found.append(problem)
                count += len(others)
        if found and found != self.wrong_type:
            self.get_logger().warning("; ".join(found))
        self.wrong_type, self.wrong_type_publishers = found, count
        return matched


def split_publishers(node: Any, topic: str, msg_type: Any) -> tuple[list[Any], list[str]]:
    """The publishers on ``topic`` (resolved) that send ``msg_type``, and the types the others
    send, as ``node`` sees the graph."""
    wanted = message_type_name(msg_type)
    publishers = node.get_publishers_info_by_topic(topic)
    return (
        [info for info in publishers if info.topic_type == wanted],
        [info.topic_type for info in publishers if info.topic_type != wanted],
    )


def message_type_name(msg_type: Any) -> str:
    """``sensor_msgs/msg/Image`` for the class ``sensor_msgs.msg.Image``, as the ROS graph names
    types (``rcl_interfaces/srv/ListParameters_Event`` for a service's event messages)."""
    package, kind = [*msg_type.__module__.split("."), "msg"][:2]
    return f"{package}/{kind}/{msg_type.__name__}"


def wrong_type_problem(topic: str, wanted: str, others: list[str], hint: str = "") -> str:
    """The sentence for ``others`` (types other publishers send on ``topic``), or "" for none."""
    if not others:
        return ""
    return (
        f"{len(others)} publisher(s) on {topic} send {', '.join(sorted(set(others)))}, which never "
        f"reaches this node: it takes {wanted}{hint}"
    )


def _topic_name(publisher: Any) -> str:
    try:
        return publisher.topic_name
    except InvalidHandle:
        return "a destroyed publisher"


def spin_node(make_node: Callable[[], Any], args: list[str] | None = None) -> int:
    """Entry point body for ``ros2 run``: DDS profile, init, spin until Ctrl-C, quiet shutdown.

    Teardown ignores further Ctrl-C: ``timeout -s INT`` signals the whole process group, so a second
    SIGINT arrives while the node is being destroyed.
    """
    use_default_dds_profile()
    node = None
    try:
        node = _started(make_node, args)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spin_through_errors(executor, node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, FileNotFoundError, ParameterException, NameValidationException) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)  # bad parameters or input: one line, exit 2
        return 2
    finally:
        ignore_further_interrupts()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


ERROR_PAUSE_SECONDS = 0.01  # after a spin error within this time of the last one (at most 100 a second)


def spin_through_errors(executor: Executor, node: Any, stopping: Callable[[], bool] = lambda: False) -> None:
    """Spin until the executor or its context shuts down.

    Our callbacks are :meth:`ManagedNode.guarded`, but rclpy runs some of its own: its time source
    raises on a /clock message with a negative time. Such an error is logged and counted
    on the node (:class:`CallbackErrorCount`), and spinning goes on, since one bad
    message must not stop the node; a node without that count (a tool's probe) raises it. Errors
    while stopping belong to the shutdown and are dropped. An error that recurs at once is followed
    by a pause of :data:`ERROR_PAUSE_SECONDS`, so a cause that never clears cannot spin a core.
    """
    last_error = -float("inf")
    while True:
        try:
            executor.spin()
            return
        except ExternalShutdownException:
            return
        except Exception as err:
            if stopping() or not executor.context.ok():
                return
            if not isinstance(node, CallbackErrorCount):
                raise
            node.note_callback_error(err)
            if time.monotonic() - last_error < ERROR_PAUSE_SECONDS:
                time.sleep(ERROR_PAUSE_SECONDS)
            last_error = time.monotonic()


def _started(make_node: Callable[[], Any], args: list[str] | None) -> Any:
    """``rclpy.init`` and the node. ``--ros-args`` that rcl cannot parse (``-p video:=`` with no
    value, a remapping to ``{node}``) raise rcl's RCLError with a traceback: a ValueError here."""
    try:
        rclpy.init(args=args)
        return make_node()
    except RCLError as err:
        raise ValueError(str(err)) from None


def one_line(err: Exception, limit: int = 300) -> str:
    """rclpy's parameter and name errors span lines (a caret under the bad character): join them,
    keeping at most ``limit`` characters."""
    return " ".join(line.strip() for line in str(err).splitlines() if line.strip())[:limit]


def unreachable(subscription: Subscription, publishers: list[Any]) -> int:
    """How many of ``publishers`` (of the subscription's topic and type) cannot reach it: best
    effort for a reliable subscription, volatile for a transient-local one."""
    wanted = subscription.qos_profile
    reliable = wanted.reliability == ReliabilityPolicy.RELIABLE
    latched = wanted.durability == DurabilityPolicy.TRANSIENT_LOCAL
    return sum(
        (reliable and info.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT)
        or (latched and info.qos_profile.durability == DurabilityPolicy.VOLATILE)
        for info in publishers
    )
