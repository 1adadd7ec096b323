"""Layer-wise encoding of IR networks into a short sequence of fixed-length steps.

TAPAS encodes every layer ``i`` as a vector of two blocks: the *layer* (type,
kernel, stride, width, output size, ...) and the *sub-network* from the input to
layer ``i`` (cumulative params and FLOPs, depth, ...). The accuracy field
``A_i`` and the dataset's DCN are appended by the model (:mod:`predictor.tap`),
because ``A_i`` is the model's own feedback and the DCN is per request.

Why steps and not raw layers: a NAS-Bench-201 network has 144-264 IR layers and
the model's accuracy feedback forces a sequential loop over steps, so scoring and
training cost grow with the sequence length. Layers are therefore grouped:

1. every layer gets its TAPAS vector (``layer_vectors``);
2. the layer sequence is cut after every *merge* layer (``add``/``concat``), so a
   segment is "the branches that meet at one node" (a residual block, a cell node);
3. consecutive segments are grouped into at most ``MAX_STEPS`` balanced steps;
   a step's vector sums the layer blocks of its live layers (op counts with their
   kernel/stride/width statistics and op x position interactions) and carries the
   sub-network block of its last layer (where the sub-network "ends" so far).

Zero-aware analysis: a ``zero`` op makes its branch output nothing, and a layer
whose only way to the output passes through a zero is *dead*. The sub-network
block uses the *effective* ancestry (paths that do not pass through a zero), so
two NAS-Bench-201 cells that differ only in dead operations encode identically,
as they should. Everything is relative to the network's own input size and totals
where possible, so 16x16 and 32x32 versions of one network encode alike (that is
what lets a predictor transfer from CIFAR to ImageNet16-120).

Encodings are deterministic, pure numpy, and cached on the (immutable)
:class:`~tapas.core.arch.Architecture` object, so a search loop that re-scores the same
objects pays the encoding once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tapas.core.arch import Architecture
from tapas.core.arch.ops import OPS

#: Bumped whenever a model's inputs change meaning (3: history column 4 became the plain
#: mean percentile; 4: weighted by a fitted dataset kernel; 5: trees beside the LSTM and
#: the descriptor level model by default; 6: a dataset kernel per pool of datasets), so a
#: model file trained on the old inputs is refused, not misread.
ENCODING_VERSION = 6
MAX_STEPS = 16
# One one-hot slot per op *family* (tapas.core.arch.ops.OpSpec.family): the smooth activations
# (GELU, SiLU, hardswish, ReLU6) share "act", the gates (sigmoid, hard sigmoid, tanh)
# share "gate", and reshape encodes as flatten, so new activation variants do not
# widen the vector and networks that differ only in the activation encode alike.
_FAMILY = {name: spec.family or ("flatten" if name == "reshape" else name)
           for name, spec in OPS.items()}
OP_NAMES: tuple[str, ...] = tuple(sorted(set(_FAMILY.values())))
_OP_INDEX = {op: OP_NAMES.index(fam) for op, fam in _FAMILY.items()}
_N_OPS = len(OP_NAMES)
_MERGE = frozenset({"add", "concat"})
# ops whose output is zero when their input is (sigmoid and hard sigmoid are not)
_ZERO_PRESERVING = frozenset({"conv", "bn", "relu", "identity", "dropout", "maxpool", "avgpool",
                              "gap", "flatten", "relu6", "gelu", "silu", "hardswish", "tanh",
                              "layernorm", "reshape", "crop"})

# layer block (per layer): op one-hot, then these numbers
_LAYER_NUM = ("log2_kernel", "stride_gt1", "log2_width_ratio", "spatial_ratio",
              "n_inputs", "log_params", "log2_out_channels_rel")
# sub-network block (per layer)
_SUB_NUM = ("eff_params_frac", "eff_flops_frac", "log_eff_params", "eff_depth",
            "eff_short_depth", "log_activation", "position")
LAYER_DIM = _N_OPS + len(_LAYER_NUM)
SUB_DIM = len(_SUB_NUM)
# step: sum of live layer blocks, op x (eff_depth, eff_short_depth) sums, mean of the
# sub-network block over live layers, sub-network block of the last live layer, and
# (live layers / 10, any live layer). Dead layers contribute nothing.
STEP_DIM = LAYER_DIM + 2 * _N_OPS + SUB_DIM + SUB_DIM + 2
_CACHE_ATTR = f"_tap_steps_v{ENCODING_VERSION}"


def _log(x: float) -> float:
    return math.log10(1.0 + x)


def layer_vectors(arch: Architecture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-layer TAPAS vectors: ``(layer block [L, LAYER_DIM], sub-network block, live)``."""
    infos = arch.infos
    n = len(infos)
    in_c, in_h, in_w = arch.input_shape
    in_act = float(in_c * in_h * in_w)
    zero = [False] * n
    anc = [0] * n  # effective ancestry as bitsets (paths that avoid zero branches)
    depth = [0.0] * n
    short = [0.0] * n
    act = [0.0] * n
    rows: list[list[float]] = []
    first_c = 0
    log2 = math.log2
    for i, li in enumerate(infos):
        op, f, ins = li.op, li.fields, li.inputs
        w = 1.0 if op in ("conv", "linear") else 0.0
        live_ins = [x for x in ins if x == -1 or not zero[x]]
        if op == "zero" or (not live_ins and (op in _ZERO_PRESERVING or op in _MERGE)):
            zero[i] = True
        bits = 1 << i
        d = s_ = None
        for x in live_ins:
            if x == -1:
                dx = sx = 0.0
            else:
                bits |= anc[x]
                dx, sx = depth[x], short[x]
            d = dx if d is None or dx > d else d
            s_ = sx if s_ is None or sx < s_ else s_
        anc[i] = bits
        depth[i] = (d or 0.0) + w
        short[i] = (s_ or 0.0) + w
        out = li.out_shape
        c_out = out[0]
        c_in = li.in_shapes[0][0]
        if not first_c and op == "conv":
            first_c = c_out
        a = 1.0
        for e in out:
            a *= e
        act[i] = a
        k = f.get("kernel")
        st = f.get("stride")
        kk = (k if isinstance(k, int) else max(k)) if k is not None else 0
        dil = f.get("dilation", 1)
        if kk and dil != 1:  # a dilated kernel sees d*(k-1)+1 pixels
            kk = (dil if isinstance(dil, int) else max(dil)) * (kk - 1) + 1
        sv = (st if isinstance(st, int) else max(st)) if st is not None else 1
        rows.append([
            log2(kk) if kk > 0 else 0.0,
            1.0 if sv > 1 else 0.0,
            log2(c_out / c_in) if c_in > 0 and c_out > 0 else 0.0,
            (out[1] / in_h) if len(out) == 3 else 0.0,
            float(len(ins)),
            _log(li.params) / 6.0,
            log2(c_out / (first_c or in_c)) if len(out) == 3 else 0.0,
        ])
    # live: has a non-zero path to the output
    live = [False] * n
    live[n - 1] = not zero[n - 1]
    for i in range(n - 1, -1, -1):
        if live[i]:
            for x in infos[i].inputs:
                if x != -1 and not zero[x]:
                    live[x] = True
    live_a = np.array(live, dtype=bool)
    ops_idx = np.fromiter((_OP_INDEX[li.op] for li in infos), dtype=np.int64, count=n)
    lb = np.zeros((n, LAYER_DIM))
    lb[np.arange(n), ops_idx] = 1.0
    lb[:, _N_OPS:] = np.asarray(rows, dtype=np.float64)
    nbytes = (n + 7) // 8
    buf = b"".join(b.to_bytes(nbytes, "little") for b in anc)
    ancm = np.unpackbits(np.frombuffer(buf, dtype=np.uint8).reshape(n, nbytes), axis=1,
                         bitorder="little")[:, :n].astype(np.float64)
    params = np.fromiter((li.params for li in infos), dtype=np.float64, count=n) * live_a
    flops = np.fromiter((li.flops for li in infos), dtype=np.float64, count=n) * live_a
    eff_p = ancm @ params
    eff_f = ancm @ flops
    tot_p = max(float(eff_p[-1]), 1.0)
    tot_f = max(float(eff_f[-1]), 1.0)
    sub = np.empty((n, SUB_DIM))
    sub[:, 0] = eff_p / tot_p
    sub[:, 1] = eff_f / tot_f
    sub[:, 2] = np.log10(1.0 + eff_p) / 6.0
    sub[:, 3] = np.asarray(depth) / 10.0
    sub[:, 4] = np.asarray(short) / 10.0
    sub[:, 5] = np.log10(np.asarray(act) / in_act) / 2.0
    rank = np.cumsum(live_a) - 1.0  # position among live layers (dead ones do not shift it)
    sub[:, 6] = rank / max(float(rank[-1]), 1.0)
    return lb, sub, live_a


def _segments(ops: Sequence[str]) -> list[tuple[int, int]]:
    """Cut after every merge layer: ``[(start, end), ...]`` with ``end`` exclusive."""
    segs, start = [], 0
    for i, op in enumerate(ops):
        if op in _MERGE:
            segs.append((start, i + 1))
            start = i + 1
    if start < len(ops):
        segs.append((start, len(ops)))
    return segs


def _group(segs: list[tuple[int, int]], max_steps: int) -> list[tuple[int, int]]:
    """Balance consecutive segments into at most ``max_steps`` groups."""
    m = len(segs)
    if m <= max_steps:
        return segs
    bounds = np.linspace(0, m, max_steps + 1).round().astype(int)
    return [(segs[bounds[g]][0], segs[bounds[g + 1] - 1][1]) for g in range(max_steps)]


def step_vectors(arch: Architecture, max_steps: int = MAX_STEPS) -> np.ndarray:
    """The step sequence ``[T, STEP_DIM]`` (``T <= max_steps``), cached on the object."""
    key = f"{_CACHE_ATTR}_{max_steps}"
    cached = arch.__dict__.get(key)
    if cached is not None:
        return cached
    lb, sub, live = layer_vectors(arch)
    lw = live.astype(np.float64)
    ops = [li.op for li in arch.infos]
    groups = _group(_segments(ops), max_steps)
    out = np.zeros((len(groups), STEP_DIM), dtype=np.float32)
    onehot = lb[:, :_N_OPS] * lw[:, None]
    for t, (a, b) in enumerate(groups):
        w = lw[a:b]
        nl = float(w.sum())
        row = np.empty(STEP_DIM)
        o = 0
        row[o:o + LAYER_DIM] = (lb[a:b] * w[:, None]).sum(0)
        o += LAYER_DIM
        row[o:o + _N_OPS] = onehot[a:b].T @ sub[a:b, 3]
        o += _N_OPS
        row[o:o + _N_OPS] = onehot[a:b].T @ sub[a:b, 4]
        o += _N_OPS
        row[o:o + SUB_DIM] = (sub[a:b] * w[:, None]).sum(0) / nl if nl else 0.0
        o += SUB_DIM
        live_idx = np.flatnonzero(live[a:b])
        last = a + int(live_idx[-1]) if len(live_idx) else b - 1
        row[o:o + SUB_DIM] = sub[last] if len(live_idx) else 0.0
        o += SUB_DIM
        row[o:o + 2] = (nl / 10.0, float(len(live_idx) > 0))
        out[t] = row
    out.setflags(write=False)
    arch.__dict__[key] = out
    return out


def encode_batch(archs: Sequence[Architecture],
                 max_steps: int = MAX_STEPS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pad a batch: ``(steps [N, T, STEP_DIM], lengths [N], num_classes [N])``."""
    seqs = [step_vectors(a, max_steps) for a in archs]
    t_max = max((len(s) for s in seqs), default=1)
    x = np.zeros((len(seqs), t_max, STEP_DIM), dtype=np.float32)
    lengths = np.empty(len(seqs), dtype=np.int64)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = s
        lengths[i] = len(s)
    ncls = np.fromiter((a.num_classes for a in archs), dtype=np.float64, count=len(archs))
    return x, lengths, ncls


def summary_features(arch: Architecture) -> np.ndarray:
    """Whole-network summary (for the gradient-boosting baseline): step sums + totals."""
    s = step_vectors(arch).astype(np.float64)
    tot = np.array([_log(arch.params) / 6.0, _log(arch.flops) / 9.0, len(arch.layers) / 100.0,
                    math.log2(arch.input_shape[1]), math.log2(arch.num_classes)])
    return np.concatenate([s.sum(0), s[-1], tot])
