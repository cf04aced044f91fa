"""pycoral's `PipelinedModelRunner`, in Python over any tf.lite-style interpreters: a model cut into segments
runs one segment per thread, each on its own Edge TPU (or on the CPU), so that while segment 1 works on
input n, segment 0 already works on input n + 1.

The API and its behaviour are pycoral 2's (pycoral/pipeline/pipelined_model_runner.py, over libcoral's
coral/pipeline/pipelined_model_runner.cc and internal/segment_runner.cc):
- `PipelinedModelRunner(interpreters)` checks that each segment's inputs are the pushed inputs or outputs of
  earlier segments, else "Interpreter N can not get its input tensors" (a ValueError, as in pycoral);
- `push({name: array})` queues one input; `push({})` says no more will come; a push after it raises
  "Pipeline was turned off before." (a RuntimeError, as in pycoral);
- `pop()` gives the last segment's outputs {name: array} in the order inputs were pushed, and None once
  `push({})` was seen and everything before it came out;
- the input and output queues are unbounded until `set_input_queue_size` / `set_output_queue_size` bound
  them (a push, or a segment's output, then waits for room); between two segments a queue holds one
  result, as libcoral's internal queues do, so a bounded pipe of N segments holds at most 2N + 1 inputs;
- a segment whose invoke fails stops the pipe: the next (or a waiting) `push` or `pop` raises
  "Segment K runner error: <the interpreter's message>" (a RuntimeError, as in libcoral).
Tensors flow as libcoral's do: a pushed input or an intermediate output travels on until the last segment
that reads it has run.

Unlike libcoral, `push({})` does not wait for the pipe to drain (the threads end as the end mark reaches
them), so one thread may push everything, close, then pop; `close()` (or leaving a `with` block) stops the
threads at once, dropping whatever is still in the pipe. The threads never hold a reference to the runner,
so a runner nobody holds is collected and its threads stopped. TFLite interpreters release the GIL while
they invoke, so segments on the CPU overlap too, one core each.
"""

import threading
from collections import deque

import numpy as np

from edgekit.errors import EdgekitError


class PipelineSetupError(EdgekitError, ValueError):
    """Interpreters that cannot form a pipeline, or an input it cannot take: a ValueError, as pycoral raises."""


class PipelineRunError(EdgekitError, RuntimeError):
    """A segment failed, or the pipe was used after it closed: a RuntimeError, as pycoral raises."""


# pycoral's own words (pycoral/pipeline/pipelined_model_runner.py, libcoral's pipelined_model_runner.cc),
# kept so that code written against pycoral matches the same messages.
WRONG_ORDER = "Interpreter {index} can not get its input tensors"
TURNED_OFF = "Pipeline was turned off before."
SEGMENT_FAILED = "Segment {index} runner error: {detail}"

_END = object()  # what a closed, drained queue hands out: no more inputs will come


class _Stopped(Exception):
    """Raised inside a queue's wait when the pipe was stopped (a segment failed, or close())."""


class _Stop:
    """Why the pipe stopped (None while it runs), shared by its queues and threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reason = None
        self.queues = []

    def set(self, reason):
        """Record the first reason only and wake every waiter of the pipe to see it."""
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
        for queue in self.queues:
            queue.wake()


class _WaitQueue:
    """A FIFO between two stages: `put` waits while it holds `limit` items (None: never), `get` waits for an
    item; after `close()` a drained queue hands out _END; once the pipe stops, both raise _Stopped."""

    def __init__(self, stop, limit=None):
        self._items = deque()
        self._limit = limit
        self._closed = False
        self._stop = stop
        lock = threading.Lock()
        self._readable = threading.Condition(lock)
        self._writable = threading.Condition(lock)

    def set_limit(self, limit):
        with self._writable:
            self._limit = limit
            self._writable.notify_all()

    def put(self, item):
        with self._writable:
            while self._limit is not None and len(self._items) >= self._limit and self._stop.reason is None:
                self._writable.wait()
            if self._stop.reason is not None:
                raise _Stopped
            self._items.append(item)
            self._readable.notify()

    def get(self):
        with self._readable:
            while not self._items and not self._closed and self._stop.reason is None:
                self._readable.wait()
            if self._stop.reason is not None:
                raise _Stopped
            if not self._items:
                return _END
            item = self._items.popleft()
            self._writable.notify()
            return item

    def close(self):
        """No more items will come: waiting and later `get`s return _END once the queue is empty."""
        with self._readable:
            self._closed = True
            self._readable.notify_all()

    def wake(self):
        """Let every waiter see that the pipe stopped."""
        with self._readable:
            self._readable.notify_all()
            self._writable.notify_all()


def _names(details):
    return [d["name"] for d in details]


def tensors_carried(input_names, output_names):
    """Which tensors leave each segment, from each segment's input and output tensor names (lists, segment 0
    first): a list of name sets, the last being the last segment's outputs. Between segments travel the
    outputs so far and the pushed inputs that a later segment still reads.

    Raises PipelineSetupError with pycoral's "Interpreter N can not get its input tensors" when a segment
    reads a tensor that neither the pushed inputs nor an earlier segment provides, and when an output of a
    segment before the last is read by no later segment (libcoral stops the process there: nothing would
    ever deliver that tensor).
    """
    count = len(input_names)
    available = set(input_names[0])
    for index in range(count):
        missing = [name for name in input_names[index] if name not in available]
        if missing:
            providers = "the pushed inputs" + (f" and interpreters 0-{index - 1}" if index > 1 else
                                               " and interpreter 0" if index == 1 else "")
            raise PipelineSetupError(WRONG_ORDER.format(index=index) + f": it reads {_quoted(missing)}, which "
                                     f"{providers} do not provide; give the segments in order, segment 0 first, "
                                     "all of one model")
        available.update(output_names[index])
    for index in range(count - 1):
        later = set().union(*input_names[index + 1:])
        unread = [name for name in output_names[index] if name not in later]
        if unread:
            raise PipelineSetupError(f"Interpreter {index}'s output {_quoted(unread)} is read by no later "
                                     "interpreter, so the pipeline could never deliver it: every output of a "
                                     "segment but the last must be an input of a later segment")
    carried = []
    for index in range(count - 1):
        later = set().union(*input_names[index + 1:])
        carried.append({name for name in set(input_names[0]).union(*output_names[:index + 1]) if name in later})
    carried.append(set(output_names[-1]))
    return carried


def _quoted(names):
    shown = ", ".join(f"'{name}'" for name in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _run_segment(index, interpreter, carried, inbox, outbox, stop):
    """One segment's thread: take tensors from `inbox`, invoke, pass the `carried` names to `outbox`."""
    inputs = [(d["name"], d["index"]) for d in interpreter.get_input_details()]
    outputs = [(d["name"], d["index"]) for d in interpreter.get_output_details()]
    try:
        while True:
            tensors = inbox.get()
            if tensors is _END:
                outbox.close()
                return
            try:
                for name, tensor_index in inputs:
                    interpreter.set_tensor(tensor_index, tensors[name])
                interpreter.invoke()
                for name, tensor_index in outputs:
                    tensors[name] = interpreter.get_tensor(tensor_index)
            # Whatever the interpreter raises (RuntimeError from a kernel, ValueError from set_tensor, or
            # anything a delegate throws) must reach the caller, not end this thread silently.
            except Exception as e:  # noqa: BLE001
                detail = " ".join(str(e).split()) or type(e).__name__
                error = PipelineRunError(SEGMENT_FAILED.format(index=index, detail=detail))
                error.__cause__ = e
                stop.set(error)
                return
            outbox.put({name: tensors[name] for name in carried})
    except _Stopped:
        return


class PipelinedModelRunner:
    """pycoral's PipelinedModelRunner: runs the segments of one model, one thread each, in a pipeline.

        runner = PipelinedModelRunner([interpreter_0, interpreter_1])
        runner.push({"input": picture})      # as many as there are, from any thread
        runner.push({})                      # no more
        while (result := runner.pop()) is not None:
            ...                              # {output name: array}, in push order
    """

    def __init__(self, interpreters):
        """`interpreters`: allocated tf.lite-style interpreters, one per segment, segment 0 first."""
        interpreters = list(interpreters)
        if not interpreters:
            raise PipelineSetupError("At least one interpreter expected")
        inputs = [interpreter.get_input_details() for interpreter in interpreters]
        carried = tensors_carried([_names(d) for d in inputs],
                                  [_names(i.get_output_details()) for i in interpreters])
        self._interpreters = interpreters
        self._inputs = {d["name"]: d for d in inputs[0]}
        self._output_names = _names(interpreters[-1].get_output_details())
        self._stop = _Stop()
        # Between two segments one result waits at most, as in libcoral (kInternalQueueSize = 1): a slow
        # segment holds back the one before it instead of letting results pile up in memory.
        self._queues = [_WaitQueue(self._stop, None if i in (0, len(interpreters)) else 1)
                        for i in range(len(interpreters) + 1)]
        self._stop.queues = self._queues
        self._push_lock = threading.Lock()
        self._closed = False
        self._threads = [threading.Thread(target=_run_segment, name=f"edgekit-segment-{i}", daemon=True,
                                          args=(i, interpreter, carried[i], self._queues[i], self._queues[i + 1],
                                                self._stop))
                         for i, interpreter in enumerate(interpreters)]
        for thread in self._threads:
            thread.start()

    def interpreters(self):
        """The interpreters the runner was made with."""
        return self._interpreters

    def set_input_queue_size(self, size):
        """Let at most `size` pushed inputs wait for the first segment; a push beyond that waits for room."""
        self._queues[0].set_limit(_queue_size(size))

    def set_output_queue_size(self, size):
        """Let at most `size` results wait for `pop`; the last segment then waits for room."""
        self._queues[-1].set_limit(_queue_size(size))

    def push(self, input_tensors):
        """Queue one input {name: array} for the first segment (the arrays are copied); `{}` closes the pipe.

        Waits while the input queue is full. Raises PipelineRunError when a segment failed or the pipe was
        closed, PipelineSetupError for inputs the first segment does not take."""
        self._raise_if_stopped()
        if input_tensors and not isinstance(input_tensors, dict):
            raise PipelineSetupError(f"push takes a dict {{input name: numpy array}}, as pycoral 2's runner does, not "
                                     f"a {type(input_tensors).__name__}; the first segment's inputs are "
                                     f"{_quoted(list(self._inputs))}")
        if not input_tensors:
            with self._push_lock:
                if self._closed:
                    raise PipelineRunError(TURNED_OFF)
                self._closed = True
                self._queues[0].close()
            return
        tensors = self._checked_inputs(input_tensors)
        with self._push_lock:
            if self._closed:
                raise PipelineRunError(TURNED_OFF)
            try:
                self._queues[0].put(tensors)
            except _Stopped:
                self._raise_if_stopped()

    def pop(self):
        """The next result {output name: array}, waiting for it; None once `push({})` came and all results
        before it were popped. Raises PipelineRunError when a segment failed."""
        self._raise_if_stopped()
        try:
            tensors = self._queues[-1].get()
        except _Stopped:
            self._raise_if_stopped()
        if tensors is _END:
            self._join()
            return None
        return {name: tensors[name] for name in self._output_names}

    def close(self):
        """Stop every thread now, dropping whatever is still in the pipe (not in pycoral: for callers that
        stop early). Later pushes and pops raise "Pipeline was turned off before."."""
        with self._push_lock:
            self._closed = True
        self._stop.set(PipelineRunError(TURNED_OFF))
        self._join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # A runner dropped without close(): stop its threads rather than leave them waiting forever.
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set(PipelineRunError(TURNED_OFF))

    def _checked_inputs(self, input_tensors):
        if len(input_tensors) != len(self._inputs):
            raise PipelineSetupError(f"Expected input of length {len(self._inputs)}, but got {len(input_tensors)}")
        tensors = {}
        for name, value in input_tensors.items():
            details = self._inputs.get(name)
            if details is None:
                raise PipelineSetupError(f"Unknown input '{name}': the first segment's inputs are "
                                         f"{_quoted(list(self._inputs))}")
            # pycoral's message, then which input and what it was.
            if not isinstance(value, np.ndarray) or value.dtype != details["dtype"]:
                got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
                raise PipelineSetupError(f"Input should be a list of numpy array of type "
                                         f"{np.dtype(details['dtype']).type} (input '{name}' is {got})")
            if tuple(value.shape) != tuple(details["shape"]):
                raise PipelineSetupError(f"Input '{name}' has shape {list(value.shape)}, but the first segment "
                                         f"takes {[int(d) for d in details['shape']]}")
            tensors[name] = value.copy()
        return tensors

    def _raise_if_stopped(self):
        reason = self._stop.reason
        if reason is None:
            return
        self._join()
        # A fresh exception each time, so that tracebacks do not pile up on one object.
        error = PipelineRunError(str(reason))
        error.__cause__ = reason.__cause__
        raise error

    def _join(self):
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join()


def _queue_size(size):
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise PipelineSetupError(f"a queue size must be a whole number of at least 1, not {size!r}")
    return int(size)
