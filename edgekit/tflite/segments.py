"""Cut a .tflite model into segments that run one after the other, and choose where to cut.

Pipelining runs segment K of a model on its own Edge TPU (or CPU core) while segment K+1 works on the input
before, so throughput follows the slowest segment (https://coral.ai/docs/edgetpu/pipeline/). A segment here is a
run of subgraph 0's operators in execution order (the order of the file, which is the order the interpreter
runs them), written as a normal .tflite file by `split_model`:

- its inputs are the non-constant tensors its operators read that earlier operators, or the model's inputs,
  produced; its outputs are the tensors it produces that later operators read, plus the model's outputs it
  produces. Tensors keep the whole model's names, types, shapes and quantization, so a runner wires the
  segments by name, as pycoral's PipelinedModelRunner does;
- constants go with the segments that read them (copied where two do); variable tensors (an LSTM's state,
  kept between invokes) and resource or variant handles stay inside one segment: a cut that would separate
  their users is refused;
- the other subgraphs (the bodies of WHILE / IF and other control flow) go with the segments whose operators
  call them, renumbered.

Where to cut: `cuts_by_parameters` balances parameter bytes, as edgetpu_compiler's --num_segments does;
`cuts_by_cost` follows libcoral's profiling partitioner (tools/partitioner/profiling_based_partitioner.cc):
from that split, bisection on a target latency, each segment as long as the target allows, the last taking
the rest.
"""

import copy
import hashlib
import math
from collections import namedtuple

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.tflite.graph_edit import GraphEditor, litert_schema, pack
from edgekit.tflite.metadata import store_metadata

SEGMENT_FILE = "{stem}_segment_{index}_of_{count}{suffix}"
# The TFLite support library's metadata describes the whole model's inputs and outputs; a segment has others.
WHOLE_MODEL_ONLY_METADATA = ("TFLITE_METADATA",)
# Options fields that hold subgraph indices (LiteRT's schema.fbs: WHILE, IF, CALL_ONCE, CALL, StableHLO ops).
SUBGRAPH_FIELDS = ("condSubgraphIndex", "bodySubgraphIndex", "thenSubgraphIndex", "elseSubgraphIndex",
                   "initSubgraphIndex", "subgraph", "decompositionSubgraphIndex", "updateComputationSubgraphIndex",
                   "comparatorSubgraphIndex", "branchSubgraphIndices")

GraphFacts = namedtuple("GraphFacts", "op_count op_names constants boundaries last_start crossing_bytes")
"""What choosing cuts needs to know of subgraph 0. constants: per operator, the (buffer index, bytes) of the
constants it reads, empty for custom operators (they run on the CPU, never in the Edge TPU's parameter cache that
the compiler's split balances; libcoral's CalculateParameterSizes leaves them out too); boundaries: the operator
indices where a segment may start (0 and op_count left out); last_start: the last operator index where the last
segment may start and still produce every model output; crossing_bytes: for each boundary, the bytes of the
tensors a cut there hands from one segment to the next."""

SegmentPlan = namedtuple("SegmentPlan", "index start end inputs outputs parameter_bytes")
"""Segment `index`: operators start..end-1, its input and output tensor names in the file's order, and the bytes
of the constants its builtin operators read (each counted once)."""

ParameterSplit = namedtuple("ParameterSplit", "cuts parameter_bytes total_bytes")
"""cuts: the operator indices where segments 1..N-1 start; parameter_bytes: the bytes of the constants each
segment holds (a constant that operators of two segments read is in both); total_bytes: the whole model's."""

CostSplit = namedtuple("CostSplit", "cuts costs bounds evaluated")
"""cuts chosen; costs: the measured cost of each of their segments; bounds: (lowest, highest) segment cost of
the starting split; evaluated: how many distinct segments were measured."""


def segment_names(stem, count, suffix=".tflite"):
    """File names of `count` segments, as edgetpu_compiler names them: `<stem>_segment_K_of_N<suffix>`, K from 0
    (its compiled segments end in "_edgetpu.tflite")."""
    return [SEGMENT_FILE.format(stem=stem, index=k, count=count, suffix=suffix) for k in range(count)]


def segment_bounds(cuts, op_count):
    """(start, end) operator ranges of the segments that `cuts` make."""
    edges = [0, *cuts, op_count]
    return list(zip(edges[:-1], edges[1:]))


def split_model(model_bytes, cuts, name="the model"):
    """The segments of a .tflite model cut before each operator index of `cuts` (sorted), as .tflite bytes."""
    cutter = ModelCutter(model_bytes, name)
    cutter.check_cuts(cuts)
    return [cutter.segment(start, end) for start, end in segment_bounds(cuts, cutter.op_count)]


def graph_facts(model_bytes, name="the model"):
    """The `GraphFacts` of a .tflite model's bytes, for the cut choosers."""
    return ModelCutter(model_bytes, name).facts


def model_digest(model_bytes):
    """The sha256 hex digest a segment records of its whole model."""
    return hashlib.sha256(model_bytes).hexdigest()


def _ints(values):
    return [int(v) for v in (values if values is not None else [])]


def _text(name):
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name or "")


class ModelCutter:
    """A model read once, to be cut many times (the latency search builds many candidate segments).

    `name` (usually the file's path) begins every error message.
    """

    def __init__(self, model_bytes, name="the model"):
        self.name, self.model_bytes = name, bytes(model_bytes)
        self.editor = GraphEditor.from_bytes(model_bytes)
        self.model, self.graph = self.editor.model, self.editor.graph
        self._fb = litert_schema()
        self._refuse_external_data()
        self.ops = self.graph.operators
        self.op_count = len(self.ops)
        self.op_names = self.editor.op_names()
        self.inputs, self.outputs = _ints(self.graph.inputs), _ints(self.graph.outputs)
        self.producer, self.readers = {}, {}
        for i, op in enumerate(self.ops):
            for t in _ints(op.outputs):
                if t >= 0:
                    self.producer[t] = i
            for t in dict.fromkeys(_ints(op.inputs)):
                if t >= 0:
                    self.readers.setdefault(t, []).append(i)
        # Tensors no operator writes and the model is not fed: constants, variables; each segment has its own.
        self.local = {t for t in range(len(self.graph.tensors)) if t not in self.producer and t not in self.inputs}
        for t in self.outputs:
            if t not in self.producer:
                kind = "one of its inputs" if t in self.inputs else "a constant"
                raise EdgekitError(f"{name}: its output '{self.tensor_name(t)}' is written by no operator (it is "
                                   f"{kind}), so no segment would produce it; such a model cannot be segmented")
        self.together = self._kept_together()
        self.facts = self._facts()

    # --- reading the model ---------------------------------------------------------------------------------

    def tensor_name(self, t):
        return _text(self.graph.tensors[t].name)

    def _refuse_external_data(self):
        """Models over 2 GB keep data after the flatbuffer (buffer offsets), newer ones in external files; the
        object API does not carry either into a new file."""
        external = any((b.offset or 0) > 1 for b in self.model.buffers or [])
        external |= any(getattr(t, "externalBuffer", 0) for g in self.model.subgraphs for t in g.tensors or [])
        external |= any((op.largeCustomOptionsOffset or 0) > 1 for g in self.model.subgraphs
                        for op in g.operators or [])
        if external:
            raise EdgekitError(f"{self.name}: keeps data outside its flatbuffer (a model over 2 GB, or external "
                               "weights), which edgekit cannot copy into segments; segment a smaller model")

    def _data(self, t):
        tensor = self.graph.tensors[t]
        data = self.model.buffers[tensor.buffer].data if tensor.buffer else None
        return data if data is not None and len(data) else None

    def _code(self, op):
        code = self.model.operatorCodes[op.opcodeIndex]
        return max(code.builtinCode, code.deprecatedBuiltinCode)

    def _called(self, op):
        """Subgraph indices an operator's options name."""
        found = []
        for options in (op.builtinOptions, getattr(op, "builtinOptions2", None)):
            for field in SUBGRAPH_FIELDS if options is not None else ():
                value = getattr(options, field, None)
                if value is not None:
                    found += _ints(value) if np.ndim(value) else [int(value)]
        return found

    def reached_subgraphs(self, ops):
        """The subgraphs `ops` call, directly or through the subgraphs they call, in index order."""
        seen, todo = set(), [s for op in ops for s in self._called(op)]
        while todo:
            s = todo.pop()
            if s in seen or s == 0 or s >= len(self.model.subgraphs):
                continue
            seen.add(s)
            todo += [c for op in self.model.subgraphs[s].operators or [] for c in self._called(op)]
        return sorted(seen)

    def _kept_together(self):
        """(first op, last op, what they share) for the operators that must stay in one segment: state lives in
        one interpreter, so readers of one variable tensor, the users of a resource or variant handle, and the
        operators whose VAR_HANDLEs name the same resource cannot be cut apart."""
        fb, groups = self._fb, []
        for t, ops in self.readers.items():
            tensor = self.graph.tensors[t]
            users = sorted(set(ops) | ({self.producer[t]} if t in self.producer else set()))
            if tensor.isVariable:
                groups.append((users[0], users[-1], f"the variable tensor '{self.tensor_name(t)}' (state kept "
                                                   "between invokes)"))
            elif tensor.type in (fb.TensorType.RESOURCE, fb.TensorType.VARIANT):
                groups.append((users[0], users[-1], f"the handle '{self.tensor_name(t)}'"))
        shared = {}
        for i, op in enumerate(self.ops):
            for graph_ops in [[op]] + [self.model.subgraphs[s].operators or [] for s in self.reached_subgraphs([op])]:
                for inner in graph_ops:
                    if self._code(inner) == fb.BuiltinOperator.VAR_HANDLE and inner.builtinOptions is not None:
                        shared.setdefault(_text(inner.builtinOptions.sharedName), set()).add(i)
        groups += [(min(ops), max(ops), f"the resource variable '{name}'") for name, ops in shared.items()
                   if len(ops) > 1]
        return groups

    def _size(self, t):
        tensor = self.graph.tensors[t]
        count = int(np.prod([max(int(d), 1) for d in _ints(tensor.shape)]))
        dtype = self.editor.dtype(t)
        return count * (dtype.itemsize if dtype is not None else 1)

    def _facts(self):
        n = self.op_count
        constants = []
        for op in self.ops:
            read = [t for t in dict.fromkeys(_ints(op.inputs))
                    if t >= 0 and t in self.local and self._data(t) is not None]
            builtin = self._code(op) != self._fb.BuiltinOperator.CUSTOM
            constants.append(tuple(dict.fromkeys((self.graph.tensors[t].buffer, len(self._data(t))) for t in read))
                             if builtin else ())
        forbidden = set()
        for first, last, _ in self.together:
            forbidden.update(range(first + 1, last + 1))
        boundaries = tuple(b for b in range(1, n) if b not in forbidden)
        # A tensor made before boundary b (or fed to the model) and read at or after it crosses b.
        crossing = np.zeros(n + 1, np.int64)
        for t, ops in self.readers.items():
            if t not in self.local:
                first = self.producer.get(t, -1) + 1
                if ops[-1] >= first:
                    crossing[first:ops[-1] + 1] += self._size(t)
        last_start = min(self.producer[t] for t in self.outputs) if self.outputs else n - 1
        return GraphFacts(n, tuple(self.op_names), tuple(constants), boundaries, last_start,
                          {b: int(crossing[b]) for b in boundaries})

    # --- cutting -------------------------------------------------------------------------------------------

    def check_cuts(self, cuts):
        """One line for cuts that are not increasing operator indices, or that separate what must stay together."""
        cuts = list(cuts)
        if any(not isinstance(c, (int, np.integer)) for c in cuts) or cuts != sorted(set(cuts)) or \
                (cuts and (cuts[0] < 1 or cuts[-1] > self.op_count - 1)):
            raise EdgekitError(f"{self.name}: cuts {cuts}: give increasing operator indices from 1 to "
                               f"{self.op_count - 1}, each where a segment starts")
        for c in cuts:
            for first, last, what in self.together:
                if first < c <= last:
                    raise EdgekitError(f"{self.name}: a segment cannot start at operator {c}: operators {first} "
                                       f"and {last} share {what}, so they stay in one segment; cut elsewhere")
        self._check_names(cuts)

    def _check_names(self, cuts):
        """Segments are joined by tensor name, so names handed across a cut must be unique."""
        handed = {t for start, end in segment_bounds(cuts, self.op_count) for tensors in self.plan_tensors(start, end)
                  for t in tensors}
        names = {}
        for t, tensor in enumerate(self.graph.tensors):
            names.setdefault(_text(tensor.name), []).append(t)
        for t in sorted(handed):
            if len(names[self.tensor_name(t)]) > 1:
                raise EdgekitError(f"{self.name}: two tensors are named '{self.tensor_name(t)}', and segments are "
                                   "joined by tensor name; rename one in the model, or cut elsewhere")

    def plan_tensors(self, start, end):
        """(inputs, outputs) tensor indices of the segment of operators start..end-1, in the file's order:
        the model's inputs in its order, then others as they were produced; outputs likewise."""
        inside = range(start, end)
        read = {t for i in inside for t in _ints(self.ops[i].inputs) if t >= 0 and t not in self.local}
        made = [t for i in inside for t in _ints(self.ops[i].outputs) if t >= 0]
        fed = [t for t in self.inputs if t in read or (start == 0 and t not in self.readers)]
        handed = sorted(read - set(fed) - set(made),
                        key=lambda t: (self.producer[t], _ints(self.ops[self.producer[t]].outputs).index(t)))
        outputs = [t for t in self.outputs if t in set(made)]
        later = [t for t in made if t not in outputs and any(r >= end for r in self.readers.get(t, ()))]
        return fed + handed, outputs + later

    def plan(self, index, start, end):
        inputs, outputs = self.plan_tensors(start, end)
        return SegmentPlan(index, start, end, [self.tensor_name(t) for t in inputs],
                           [self.tensor_name(t) for t in outputs], parameter_bytes(self.facts, start, end))

    def segment(self, start, end, metadata=None):
        """Operators start..end-1 as a runnable .tflite file's bytes; `metadata` (a dict) replaces the model's
        edgekit metadata in it. Boundaries are not checked here: `check_cuts` first."""
        fb, source = self._fb, self.model
        inputs, outputs = self.plan_tensors(start, end)
        if not outputs:
            which = f"operator {start} produces" if end - start == 1 else f"operators {start} to {end - 1} produce"
            raise EdgekitError(f"{self.name}: {which} nothing that a later operator or the model's output uses, so "
                               "a segment of them would have no outputs; cut elsewhere")
        ops = self.ops[start:end]
        kept = self.reached_subgraphs(ops)
        subgraph_map = {0: 0, **{s: k + 1 for k, s in enumerate(kept)}}
        inner_ops = [op for s in kept for op in self.model.subgraphs[s].operators or []]
        codes = sorted({op.opcodeIndex for op in ops + inner_ops})
        code_map = {c: k for k, c in enumerate(codes)}
        buffers, buffer_map = [fb.BufferT()], {}

        def buffer_of(index):
            data = source.buffers[index].data if index else None
            if data is None or len(data) == 0:
                return 0   # an activation, or an empty constant: nothing to carry
            if index not in buffer_map:
                buffers.append(source.buffers[index])
                buffer_map[index] = len(buffers) - 1
            return buffer_map[index]

        def tensor_copy(tensor):
            copied = copy.copy(tensor)
            copied.buffer = buffer_of(tensor.buffer)
            return copied

        def op_copy(op, tensor_map):
            copied = copy.copy(op)
            copied.opcodeIndex = code_map[op.opcodeIndex]
            copied.inputs, copied.outputs = ([tensor_map(t) for t in _ints(v)] for v in (op.inputs, op.outputs))
            if op.intermediates is not None:
                copied.intermediates = [tensor_map(t) for t in _ints(op.intermediates)]
            if hasattr(copied, "debugMetadataIndex"):
                copied.debugMetadataIndex = -1
            for attribute in ("builtinOptions", "builtinOptions2"):
                options = getattr(op, attribute, None)
                if options is not None and any(getattr(options, f, None) is not None for f in SUBGRAPH_FIELDS):
                    options = copy.copy(options)
                    for field in SUBGRAPH_FIELDS:
                        value = getattr(options, field, None)
                        if value is not None:
                            setattr(options, field, [subgraph_map[s] for s in _ints(value)] if np.ndim(value)
                                    else subgraph_map[int(value)])
                    setattr(copied, attribute, options)
            return copied

        used = set(inputs) | set(outputs)
        for op in ops:
            used.update(t for field in (op.inputs, op.outputs, op.intermediates) for t in _ints(field) if t >= 0)
        order = sorted(used)
        tensor_index = {t: k for k, t in enumerate(order)}
        main = fb.SubGraphT()
        main.name = self.graph.name
        main.tensors = [tensor_copy(self.graph.tensors[t]) for t in order]
        main.operators = [op_copy(op, lambda t: tensor_index[t] if t >= 0 else -1) for op in ops]
        main.inputs = [tensor_index[t] for t in inputs]
        main.outputs = [tensor_index[t] for t in outputs]
        graphs = [main]
        for s in kept:
            inner = copy.copy(self.model.subgraphs[s])
            inner.tensors = [tensor_copy(t) for t in inner.tensors or []]
            inner.operators = [op_copy(op, lambda t: t) for op in inner.operators or []]
            graphs.append(inner)

        model = fb.ModelT()
        model.version, model.description = source.version, source.description
        model.operatorCodes = [source.operatorCodes[c] for c in codes]
        model.subgraphs, model.buffers = graphs, buffers
        model.metadata = []
        for entry in source.metadata or []:
            if _text(entry.name) in WHOLE_MODEL_ONLY_METADATA or entry.name is None:
                continue
            kept_entry = copy.copy(entry)
            buffers.append(source.buffers[entry.buffer])
            kept_entry.buffer = len(buffers) - 1
            model.metadata.append(kept_entry)
        model.signatureDefs = self._signatures(inputs, outputs, tensor_index)
        if metadata is not None:
            store_metadata(model, metadata)
        return pack(model)

    def _signatures(self, inputs, outputs, tensor_index):
        """The model's signature of subgraph 0 for a segment: the whole model's names where its inputs and
        outputs are the model's own, tensor names elsewhere."""
        fb, found = self._fb, []
        for signature in self.model.signatureDefs or []:
            if signature.subgraphIndex:
                continue
            named = [{int(m.tensorIndex): _text(m.name) for m in maps or []}
                     for maps in (signature.inputs, signature.outputs)]
            copied = fb.SignatureDefT()
            copied.signatureKey, copied.subgraphIndex = signature.signatureKey, 0
            copied.inputs, copied.outputs = [], []
            for tensors, names, into in ((inputs, named[0], copied.inputs), (outputs, named[1], copied.outputs)):
                for t in tensors:
                    entry = fb.TensorMapT()
                    entry.name, entry.tensorIndex = names.get(t, self.tensor_name(t)), tensor_index[t]
                    into.append(entry)
            found.append(copied)
        return found or None


# --- choosing cuts -----------------------------------------------------------------------------------------


def parameter_bytes(facts, start=0, end=None):
    """The bytes of the constants operators start..end-1 read, each counted once: what their segment holds."""
    return sum(dict(pair for op in facts.constants[start:end] for pair in op).values())


def _held_bytes(facts, edges):
    """held[a, b]: the parameter bytes of a segment from edges[a] to edges[b] (a < b), each constant counted once,
    for every pair of edges: converters share one buffer between equal constants, so bytes do not simply add."""
    held = np.zeros((len(edges), len(edges)), np.int64)
    for a, start in enumerate(edges[:-1]):
        seen, total, b = set(), 0, a + 1
        for op in range(start, edges[-1]):
            for buffer, size in facts.constants[op]:
                if buffer not in seen:
                    seen.add(buffer)
                    total += size
            if op + 1 == edges[b]:
                held[a, b] = total
                b += 1
    return held


def _usable_boundaries(facts, count):
    """The boundaries cuts may use. The last segment should hold every operator that writes a model output, so
    that a pipeline's last stage returns them all (libcoral's partitioners keep every output node in the last
    segment); where too few boundaries come before the first such operator, cuts may fall after it, and that
    segment hands its model outputs on as outputs of its own."""
    if count < 2 or count > len(facts.boundaries) + 1:
        raise ValueError(f"{count} segments need {count - 1} boundaries; the model has {len(facts.boundaries)}")
    early = tuple(b for b in facts.boundaries if b <= facts.last_start)
    return early if len(early) >= count - 1 else facts.boundaries


def cuts_by_parameters(facts, count):
    """Cuts that balance parameter bytes over `count` segments: the least sum of squared segment sizes (the
    least spread around the mean), then the smallest largest segment, then the fewest bytes handed across cuts.

    edgetpu_compiler --num_segments "divides the model so each segment has a roughly the same amount of parameter
    data" (Coral's partitioner README); libcoral's ParameterCountBasedPartitioner fills each segment up to the
    average greedily and leaves the rest to the last, which can then hold much more than its share. The sum of
    squares is exact to minimise by dynamic programming over the boundaries, and unlike the largest segment
    alone it still balances the others when one operator outweighs a segment's share."""
    usable = _usable_boundaries(facts, count)
    n = facts.op_count
    edges = [0, *usable, n]
    held = _held_bytes(facts, edges)
    crossing = np.array([0] + [facts.crossing_bytes[b] for b in usable] + [0], np.int64)
    last = len(edges) - 1
    # best[k][j]: (squares, largest, crossing) of the best k+1 segments covering operators 0..edges[j]-1.
    largest = np.full((count, last + 1), np.iinfo(np.int64).max, np.int64)
    squares, handed = np.zeros_like(largest), np.zeros_like(largest)
    parent = np.zeros_like(largest)
    largest[0, 1:] = held[0, 1:]
    squares[0, 1:] = held[0, 1:] ** 2
    handed[0, 1:] = crossing[1:]
    for k in range(1, count):
        for j in range(k + 1, last + 1) if k < count - 1 else [last]:
            i = np.arange(k, j)
            size = held[i, j]
            candidates = (squares[k - 1, i] + size ** 2, np.maximum(largest[k - 1, i], size),
                          handed[k - 1, i] + crossing[j])
            pick = np.lexsort(candidates[::-1])[0]
            squares[k, j], largest[k, j], handed[k, j] = (c[pick] for c in candidates)
            parent[k, j] = i[pick]
    cuts, j = [], last
    for k in range(count - 1, 0, -1):
        j = int(parent[k, j])
        cuts.append(edges[j])
    cuts.reverse()
    sizes = [parameter_bytes(facts, start, end) for start, end in segment_bounds(cuts, n)]
    return ParameterSplit(cuts, sizes, parameter_bytes(facts))


def cuts_by_cost(facts, count, cost, start_cuts, tolerance, step=1, known=None, most_rounds=40):
    """Cuts that even out a measured cost (latency) per segment, by libcoral's profiling partitioner's method.

    cost(start, end, index) -> the cost of operators start..end-1 run as segment `index` (math.inf when that
    segment cannot be made, e.g. the compiler fails on it). Each distinct segment is measured once (`known`
    seeds those measurements). The costs of `start_cuts`' segments bound the target; while the bounds are more
    than `tolerance` apart, the target is their middle: the first segment takes as many operators as keep it
    within the target (trying `step` boundaries fewer each time), then the next, and so on, going back when a
    later segment cannot be fitted; the last takes the rest. When the last comes in under the target, the
    target is an upper bound; otherwise it is a lower bound (and the last segment's cost, when lower than the
    upper bound, becomes it).
    """
    usable = _usable_boundaries(facts, count)
    edges = [0, *usable, facts.op_count]
    measured = dict(known or {})

    def cost_of(start, end, index):
        if (start, end) not in measured:
            measured[start, end] = float(cost(start, end, index))
        return measured[start, end]

    def segment_costs(cuts):
        return [cost_of(start, end, k) for k, (start, end) in enumerate(segment_bounds(cuts, facts.op_count))]

    def search(target, k, begin, failed):
        """Cuts (boundary indices into `edges`) for segments k.. starting at edges[begin], or None."""
        if k == count - 1:
            return []
        if (k, begin) in failed:
            return None
        # Later segments need a boundary each; the last starts at or before the last usable boundary.
        for end in range(len(edges) - 1 - (count - 1 - k), begin, -step):
            if cost_of(edges[begin], edges[end], k) <= target:
                rest = search(target, k + 1, end, failed)
                if rest is not None:
                    return [end] + rest
        failed.add((k, begin))
        return None

    best = list(start_cuts)
    first = segment_costs(best)
    lower, upper = min(first), max(first)
    bounds = (lower, upper)
    for _ in range(most_rounds):
        if not upper - lower > tolerance:
            break
        target = (lower + upper) / 2
        found = search(target, 0, 0, set())
        cuts = [edges[j] for j in found] if found is not None else None
        last = cost_of(cuts[-1], facts.op_count, count - 1) if cuts else math.inf
        if last < target:
            best, upper = cuts, target
        else:
            if last < upper:
                best, upper = cuts, last
            lower = target
    return CostSplit(best, segment_costs(best), bounds, len(measured))
