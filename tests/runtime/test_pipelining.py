"""`PipelinedModelRunner`: pycoral's runner semantics on real LiteRT interpreters of small segmented models.

The models are written here with edgekit's ModelBuilder, each segment a normal .tflite whose tensors keep the
whole model's names: dense layers (a chain of two, and a chain of three whose last segment reads a tensor of
the first segment and the pushed input as well), and a GATHER whose invoke fails on an index out of range,
which is how an input makes a segment's invoke fail at run time. Expected messages are pycoral's
(pycoral/pipeline/pipelined_model_runner.py, libcoral's pipelined_model_runner.cc).
"""

import gc
import threading
import time

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from edgekit.errors import EdgekitError
from edgekit.runtime.pipelining import PipelinedModelRunner, PipelineRunError, PipelineSetupError
from edgekit.runtime.segmented import ChainedInterpreter
from edgekit.tflite.builder import ModelBuilder

WIDTH = 16


def _weights(name):
    seed = sum(name.encode())
    rows = np.random.default_rng(seed).normal(0, 0.5, (WIDTH, WIDTH)).astype(np.float32)
    return rows, np.random.default_rng(seed + 1).normal(0, 0.1, WIDTH).astype(np.float32)


def _model(steps, inputs, outputs):
    """A float32 model of `steps` [(op, input names, output name)] over [1, WIDTH] tensors named as given:
    "dense" is FULLY_CONNECTED with weights seeded by the output's name, "add" is ADD."""
    m = ModelBuilder("pipelining test segment")
    tensors = {}

    def named(name):
        if name not in tensors:
            tensors[name] = m.tensor(name, [1, WIDTH], np.float32)
        return tensors[name]

    for name in inputs:
        named(name)
    for op, sources, target in steps:
        if op == "dense":
            rows, bias = _weights(target)
            m.operator("FULLY_CONNECTED", [named(sources[0]), m.tensor(target + "/weights", rows.shape, np.float32,
                                                                        data=rows),
                                           m.tensor(target + "/bias", bias.shape, np.float32, data=bias)],
                       [named(target)])
        else:
            m.operator("ADD", [named(s) for s in sources], [named(target)])
    return m.finish([tensors[n] for n in inputs], [tensors[n] for n in outputs])


# Two segments: x -> dense -> hidden | hidden -> dense -> scores.
TWO = [([("dense", ["x"], "hidden")], ["x"], ["hidden"]),
       ([("dense", ["hidden"], "scores")], ["hidden"], ["scores"])]
# Three segments; the last reads h2 (segment 1), h1 (segment 0, carried past segment 1) and x (the pushed input).
THREE = [([("dense", ["x"], "h1")], ["x"], ["h1"]),
         ([("dense", ["h1"], "h2")], ["h1"], ["h2"]),
         ([("add", ["h2", "h1"], "sum"), ("add", ["sum", "x"], "y")], ["h2", "h1", "x"], ["y"])]


def _whole(parts):
    steps = [step for part in parts for step in part[0]]
    return _model(steps, parts[0][1], parts[-1][2])


def _interpreter(model_bytes):
    interpreter = Interpreter(model_content=model_bytes, num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def _segments(parts):
    return [_interpreter(_model(*part)) for part in parts]


def _run(interpreter, feed):
    for d in interpreter.get_input_details():
        interpreter.set_tensor(d["index"], feed[d["name"]])
    interpreter.invoke()
    return {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}


def _inputs(count, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(0, 1, (1, WIDTH)).astype(np.float32)} for _ in range(count)]


def _gather_parts():
    """Segment 0 reshapes the pushed int32 [1, 2] to [2]; segment 1 gathers those rows of a 4-row table, and
    fails to invoke on a row number past 3."""
    first = ModelBuilder()
    wanted = first.tensor("wanted", [1, 2], np.int32)
    shape = first.tensor("shape", [1], np.int32, data=np.array([2], np.int32))
    rows = first.tensor("rows", [2], np.int32)
    first.operator("RESHAPE", [wanted, shape], [rows], newShape=[2])
    second = ModelBuilder()
    table = second.tensor("table", [4, 3], np.float32, data=np.arange(12, dtype=np.float32).reshape(4, 3))
    rows_in = second.tensor("rows", [2], np.int32)
    picked = second.tensor("picked", [2, 3], np.float32)
    second.operator("GATHER", [table, rows_in], [picked])
    return first.finish([wanted], [rows]), second.finish([rows_in], [picked])


_EARLIER_THREADS = set()


@pytest.fixture(autouse=True)
def _threads_of_other_tests():
    """Segment threads some other test left running are not this test's: only new ones count."""
    _EARLIER_THREADS.clear()
    _EARLIER_THREADS.update(threading.enumerate())


def _segment_threads():
    """The runners' threads started during this test and still alive."""
    return [t for t in threading.enumerate() if t.name.startswith("edgekit-segment-") and t not in _EARLIER_THREADS]


def _wait_for_no_segment_threads(seconds=10.0):
    end = time.monotonic() + seconds
    while _segment_threads() and time.monotonic() < end:
        time.sleep(0.01)
    return _segment_threads()


@pytest.mark.parametrize("parts", [TWO, THREE], ids=["two", "three"])
def test_results_come_out_in_push_order_and_equal_the_whole_model_bit_for_bit(parts):
    whole = _interpreter(_whole(parts))
    feeds = _inputs(40)
    expected = [_run(whole, feed) for feed in feeds]
    runner = PipelinedModelRunner(_segments(parts))
    for feed in feeds:
        runner.push(feed)
    runner.push({})
    results = []
    while (result := runner.pop()) is not None:
        results.append(result)
    assert len(results) == len(feeds)
    for got, want in zip(results, expected):
        assert list(got) == list(want)
        for name in want:
            assert got[name].dtype == want[name].dtype and np.array_equal(got[name], want[name])
    assert runner.pop() is None  # and it stays so
    assert not _segment_threads()


def test_outputs_equal_the_segments_chained_by_hand_and_the_chained_interpreter():
    segments = _segments(THREE)
    feeds = _inputs(5, seed=3)
    by_hand = []
    for feed in feeds:
        tensors = dict(feed)
        for interpreter in segments:
            tensors.update(_run(interpreter, tensors))
        by_hand.append(tensors["y"])
    chain = ChainedInterpreter(_segments(THREE))
    assert [d["name"] for d in chain.get_input_details()] == ["x"]
    assert [(d["name"], d["index"]) for d in chain.get_output_details()] == [("y", 1)]
    chained = [_run(chain, feed)["y"] for feed in feeds]
    runner = PipelinedModelRunner(segments)
    for feed in feeds:
        runner.push(feed)
    runner.push({})
    pipelined = [runner.pop()["y"] for _ in feeds]
    assert runner.pop() is None
    for hand, chain_result, pipe_result in zip(by_hand, chained, pipelined):
        assert np.array_equal(hand, chain_result) and np.array_equal(hand, pipe_result)
    assert len(chain.last_invoke_ms) == 3


def test_segments_in_the_wrong_order_fail_with_pycorals_words():
    segments = _segments(TWO)
    with pytest.raises(ValueError) as error:
        PipelinedModelRunner(segments[::-1])
    assert isinstance(error.value, EdgekitError)
    assert str(error.value) == ("Interpreter 1 can not get its input tensors: it reads 'x', which the pushed inputs "
                                "and interpreter 0 do not provide; give the segments in order, segment 0 first, all "
                                "of one model")
    three = _segments(THREE)
    with pytest.raises(PipelineSetupError) as error:
        PipelinedModelRunner([three[0], three[2]])
    assert str(error.value) == ("Interpreter 1 can not get its input tensors: it reads 'h2', which the pushed inputs "
                                "and interpreter 0 do not provide; give the segments in order, segment 0 first, all "
                                "of one model")
    with pytest.raises(PipelineSetupError) as error:
        PipelinedModelRunner([three[1], three[2], three[0]])
    assert str(error.value) == ("Interpreter 1 can not get its input tensors: it reads 'x', which the pushed inputs "
                                "and interpreter 0 do not provide; give the segments in order, segment 0 first, all "
                                "of one model")
    with pytest.raises(PipelineSetupError, match="^At least one interpreter expected$"):
        PipelinedModelRunner([])
    assert not _segment_threads()


def test_an_output_no_later_segment_reads_is_refused():
    first = _interpreter(_model([("dense", ["x"], "hidden"), ("dense", ["x"], "aside")], ["x"], ["hidden", "aside"]))
    with pytest.raises(PipelineSetupError) as error:
        PipelinedModelRunner([first, _segments(TWO)[1]])
    assert str(error.value) == ("Interpreter 0's output 'aside' is read by no later interpreter, so the pipeline "
                                "could never deliver it: every output of a segment but the last must be an input of "
                                "a later segment")


def test_push_after_the_closing_push_fails_and_pop_gives_none():
    runner = PipelinedModelRunner(_segments(TWO))
    feed = _inputs(1)[0]
    runner.push(feed)
    assert list(runner.pop()) == ["scores"]
    runner.push({})
    with pytest.raises(RuntimeError, match="^Pipeline was turned off before.$"):
        runner.push(feed)
    with pytest.raises(PipelineRunError, match="^Pipeline was turned off before.$"):
        runner.push({})
    assert runner.pop() is None
    assert runner.pop() is None


def test_inputs_the_first_segment_does_not_take_are_refused_in_one_line():
    runner = PipelinedModelRunner(_segments(TWO))
    good = _inputs(1)[0]["x"]
    with pytest.raises(ValueError, match=r"^Input should be a list of numpy array of type <class 'numpy.float32'> "
                                         r"\(input 'x' is float64\)$"):
        runner.push({"x": good.astype(np.float64)})
    with pytest.raises(PipelineSetupError, match=r"^Input should be a list of numpy array of type <class "
                                                 r"'numpy.float32'> \(input 'x' is list\)$"):
        runner.push({"x": good.tolist()})
    with pytest.raises(PipelineSetupError, match=r"^push takes a dict \{input name: numpy array\}, as pycoral 2's "
                                                 r"runner does, not a list; the first segment's inputs are 'x'$"):
        runner.push([good])
    with pytest.raises(PipelineSetupError, match=r"^Expected input of length 1, but got 2$"):
        runner.push({"x": good, "y": good})
    with pytest.raises(PipelineSetupError, match=r"^Unknown input 'image': the first segment's inputs are 'x'$"):
        runner.push({"image": good})
    with pytest.raises(PipelineSetupError,
                       match=r"^Input 'x' has shape \[16\], but the first segment takes \[1, 16\]$"):
        runner.push({"x": good[0]})
    for size in (0, -1, 1.5, True):
        with pytest.raises(PipelineSetupError, match="^a queue size must be a whole number of at least 1, not "):
            runner.set_input_queue_size(size)
    # None of that reached the pipe: it still runs.
    runner.push({"x": good})
    runner.push({})
    assert runner.pop()["scores"].shape == (1, WIDTH)
    assert runner.pop() is None


def test_pushed_arrays_are_copied_so_the_caller_may_reuse_them():
    whole = _interpreter(_whole(TWO))
    runner = PipelinedModelRunner(_segments(TWO))
    buffer = np.zeros((1, WIDTH), np.float32)
    expected = []
    for value in range(5):
        buffer[:] = value
        expected.append(_run(whole, {"x": buffer})["scores"])
        runner.push({"x": buffer})
    runner.push({})
    for want in expected:
        assert np.array_equal(runner.pop()["scores"], want)


def test_bounded_queues_make_push_wait_once_two_n_plus_one_inputs_are_in():
    segments = _segments(TWO)
    runner = PipelinedModelRunner(segments)
    runner.set_input_queue_size(1)
    runner.set_output_queue_size(1)
    feeds = _inputs(6)
    # pycoral's test: with both queues of size 1, N segments hold 2N + 1 inputs (input queue, one in each
    # segment, one between each two, the output queue); the next push waits until a result is popped.
    held = 2 * len(segments) + 1

    def push(selection):
        for feed in selection:
            runner.push(feed)

    first = threading.Thread(target=push, args=(feeds[:held],))
    first.start()
    first.join(10)
    assert not first.is_alive(), "the first 2N + 1 pushes should find room"
    extra = threading.Thread(target=push, args=(feeds[held:],))
    extra.start()
    extra.join(0.5)
    assert extra.is_alive(), "a push beyond 2N + 1 inputs should wait for a pop"
    results = [runner.pop()]
    extra.join(10)
    assert not extra.is_alive()
    runner.push({})
    while (result := runner.pop()) is not None:
        results.append(result)
    whole = _interpreter(_whole(TWO))
    assert len(results) == len(feeds)
    for feed, result in zip(feeds, results):
        assert np.array_equal(result["scores"], _run(whole, feed)["scores"])


def test_producer_and_consumer_threads():
    whole = _interpreter(_whole(THREE))
    feeds = _inputs(30, seed=7)
    expected = [_run(whole, feed)["y"] for feed in feeds]
    runner = PipelinedModelRunner(_segments(THREE))
    runner.set_input_queue_size(2)
    runner.set_output_queue_size(2)
    received = []

    def produce():
        for feed in feeds:
            runner.push(feed)
        runner.push({})

    def consume():
        while (result := runner.pop()) is not None:
            received.append(result["y"])

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert len(received) == len(expected) and all(np.array_equal(a, b) for a, b in zip(received, expected))
    assert _wait_for_no_segment_threads() == []


def test_a_segment_that_fails_to_invoke_is_raised_on_pop_then_on_push():
    first, second = _gather_parts()
    # What LiteRT itself says when this segment's invoke fails: the runner passes it on, prefixed as libcoral does.
    alone = _interpreter(second)
    alone.set_tensor(alone.get_input_details()[0]["index"], np.array([0, 9], np.int32))
    with pytest.raises(RuntimeError) as direct:
        alone.invoke()
    message = "Segment 1 runner error: " + " ".join(str(direct.value).split())
    runner = PipelinedModelRunner([_interpreter(first), _interpreter(second)])
    runner.push({"wanted": np.array([[1, 3]], np.int32)})
    assert np.array_equal(runner.pop()["picked"], [[3, 4, 5], [9, 10, 11]])
    runner.push({"wanted": np.array([[0, 9]], np.int32)})
    with pytest.raises(RuntimeError) as error:
        runner.pop()
    assert str(error.value) == message and isinstance(error.value, PipelineRunError)
    with pytest.raises(PipelineRunError) as again:
        runner.push({"wanted": np.array([[0, 1]], np.int32)})
    assert str(again.value) == message
    with pytest.raises(PipelineRunError, match="^Segment 1 runner error: "):
        runner.pop()
    assert _segment_threads() == []


def test_a_failure_wakes_a_push_waiting_for_room():
    first, second = _gather_parts()
    runner = PipelinedModelRunner([_interpreter(first), _interpreter(second)])
    runner.set_input_queue_size(1)
    runner.set_output_queue_size(1)
    outcome = []

    def push_many():
        try:
            runner.push({"wanted": np.array([[0, 9]], np.int32)})  # fails in segment 1
            for _ in range(20):
                runner.push({"wanted": np.array([[0, 1]], np.int32)})
            outcome.append("all pushed")
        except PipelineRunError as e:
            outcome.append(str(e))

    pusher = threading.Thread(target=push_many)
    pusher.start()
    pusher.join(10)
    assert not pusher.is_alive() and outcome and outcome[0].startswith("Segment 1 runner error: gather index")
    assert _wait_for_no_segment_threads() == []


def test_close_and_dropping_the_runner_stop_every_thread():
    runner = PipelinedModelRunner(_segments(THREE))
    for feed in _inputs(10):
        runner.push(feed)
    assert len(_segment_threads()) == 3
    runner.close()
    assert _segment_threads() == []
    with pytest.raises(PipelineRunError, match="^Pipeline was turned off before.$"):
        runner.pop()
    with pytest.raises(PipelineRunError, match="^Pipeline was turned off before.$"):
        runner.push(_inputs(1)[0])

    with PipelinedModelRunner(_segments(TWO)) as runner:
        runner.push(_inputs(1)[0])
        assert list(runner.pop()) == ["scores"]
    assert _segment_threads() == []

    dropped = PipelinedModelRunner(_segments(TWO))
    dropped.push(_inputs(1)[0])
    assert len(_segment_threads()) == 2
    del dropped
    gc.collect()
    assert _wait_for_no_segment_threads() == []


def test_interpreters_gives_back_what_the_runner_was_made_with():
    segments = _segments(TWO)
    runner = PipelinedModelRunner(segments)
    assert runner.interpreters() == segments
    runner.close()
