"""conv, pool, rnorm, cnorm, cmrnorm: cuda-convnet's spatial layers as exact ONNX.

cuda-convnet sizes outputs with a ceil and lets windows hang over the image's right/bottom edge
(conv taps there read zero; pool windows are clipped to the image). ONNX's floor formula gives
the same windows when the end pad is chosen as  pad_end = (M - 1) * stride + k - S - pad_begin,
so we never use ceil_mode. See docs/cuda-convnet.md for each case.
"""
import numpy as np

from .layers import array, ceil_div, fail, num, param


def end_pad(size, pad, k, stride, m):
    """The end pad giving ONNX (floor) exactly cuda-convnet's m windows at pad + i*stride; None if
    no pad >= 0 does (more than stride - 1 trailing pixels unused: that needs a Slice)."""
    pe = (m - 1) * stride + k - size - pad
    if pe >= 0:
        return pe
    return 0 if (size + pad - k) // stride + 1 == m else None


def emit_conv(ctx, layer, out):
    b = ctx.b
    filters = num(layer, "filters", kind=int)         # all groups together
    m = num(layer, "modulesX", kind=int)
    shared = bool(param(layer, "sharedBiases", default=True))
    bias = array(layer, "biases").reshape(-1)
    if bias.size != (filters if shared else filters * m * m):
        fail(layer, "has %d biases; expected %d" % (bias.size, filters if shared else filters * m * m))
    n = len(layer.inputs)
    terms = []
    for i in range(n):
        channels = num(layer, "channels", i, kind=int)
        size = num(layer, "imgSize", i, kind=int)
        k = num(layer, "filterSize", i, kind=int)
        stride = num(layer, "stride", i, kind=int)
        pad = -num(layer, "padding", i, kind=int)      # stored negated: it is paddingStart
        groups = num(layer, "groups", i, default=1, kind=int)
        fch = num(layer, "filterChannels", i, default=channels // groups, kind=int)
        if bool(param(layer, "randSparse", i, default=False)):
            fail(layer, "random sparse filter connectivity (randSparse) is not supported")
        if fch * groups != channels or filters % groups:
            fail(layer, "groups=%d do not divide channels=%d / filters=%d" % (groups, channels, filters))
        if pad < 0:
            fail(layer, "a positive paddingStart (%d) is not supported" % -pad)
        pad_end = end_pad(size, pad, k, stride, m)
        if pad_end is None:
            fail(layer, "modulesX=%d leaves %d or more trailing input pixels unused (needs a Slice)" % (m, stride))
        w = array(layer, "weights", i)
        if w.shape != (fch * k * k, filters):
            fail(layer, "weights[%d] has shape %s; expected %s" % (i, w.shape, (fch * k * k, filters)))
        # (filterChannels*k*k, filters), filter index fastest -> ONNX (F, C/groups, k, k)
        wk = b.const(layer.name + "/W", w.reshape(fch, k, k, filters).transpose(3, 0, 1, 2))
        x = ctx.image(layer, i, channels, size)
        ins = [x, wk] + ([b.const(layer.name + "/b", bias)] if i == 0 and shared else [])
        direct = n == 1 and shared
        terms.append(b.node("Conv", ins, (filters, m, m),
                            out=out if direct else b.fresh("%s/conv%d" % (layer.name, i)),
                            kernel_shape=[k, k], strides=[stride, stride], pads=[pad, pad, pad_end, pad_end],
                            group=groups, dilations=[1, 1]))
    total = terms[0]
    if n > 1:
        total = b.node("Sum", terms, (filters, m, m), out=out if shared else b.fresh(layer.name + "/sum"))
    if not shared:      # unshared biases: one per filter and output position, index f*modules + m
        b.node("Add", [total, b.const(layer.name + "/b", bias.reshape(1, filters, m, m))], (filters, m, m),
               out=out)


def _shift(ctx, layer, x, channels, size, start):
    """out[y, x] = in[y + start, x + start]: a depthwise Conv with a one-hot kernel (exact)."""
    w = np.zeros((channels, 1, start + 1, start + 1), np.float32)
    w[:, 0, start, start] = 1.0
    return ctx.b.node("Conv", [x, ctx.b.const(layer.name + "/shift", w)], (channels, size - start, size - start),
                      out=ctx.b.fresh(layer.name + "/shifted"), kernel_shape=[start + 1, start + 1],
                      strides=[1, 1], pads=[0, 0, 0, 0], group=channels, dilations=[1, 1])


def emit_pool(ctx, layer, out):
    b = ctx.b
    channels = num(layer, "channels", kind=int)
    size = num(layer, "imgSize", kind=int)
    k = num(layer, "sizeX", kind=int)
    stride = num(layer, "stride", kind=int)
    start = num(layer, "start", default=0, kind=int)
    kind = str(param(layer, "pool"))
    m = num(layer, "outputsX", default=0, kind=int)
    if m <= 0:
        m = ceil_div(size - start - k, stride) + 1
    if kind not in ("max", "avg"):
        fail(layer, "pooling '%s' is not supported (max and avg are)" % kind)
    x = ctx.image(layer, 0, channels, size)
    if start > 0:                 # windows start inside the image: shift it, then start = 0
        x, size, start = _shift(ctx, layer, x, channels, size, start), size - start, 0
    pad = -start
    pad_end = end_pad(size, pad, k, stride, m)
    if pad >= k:
        fail(layer, "the first window (start=%d, sizeX=%d) lies entirely outside the image" % (start, k))
    if start + (m - 1) * stride >= size:
        fail(layer, "the last of outputsX=%d windows lies entirely outside the image" % m)
    if pad_end is None:
        fail(layer, "outputsX=%d leaves %d or more trailing pixels unused (needs a Slice)" % (m, stride))
    attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=[pad, pad, pad_end, pad_end])
    shape = (channels, m, m)
    if kind == "max":
        b.node("MaxPool", [x], shape, out=out, **attrs)
    elif not bool(param(layer, "sum", default=False)):
        # clipped windows divide by the clipped area: exactly count_include_pad=0
        b.node("AveragePool", [x], shape, out=out, count_include_pad=0, **attrs)
    else:                         # cuda-convnet2 avg pool with sum=1: the plain sum
        avg = b.node("AveragePool", [x], shape, out=b.fresh(layer.name + "/avg"), count_include_pad=1, **attrs)
        b.node("Mul", [avg, b.const("c", np.float32(k * k))], shape, out=out)


def _window_avg(ctx, layer, x, shape, size, include_pad, tag):
    """Mean over the size x size window starting at (y - size/2, x - size/2), stride 1, same size.
    include_pad=1: the window sum / size^2 (zeros outside); 0: mean over the clipped window."""
    lo = size // 2
    hi = size - 1 - lo
    return ctx.b.node("AveragePool", [x], shape, out=ctx.b.fresh("%s/%s" % (layer.name, tag)),
                      kernel_shape=[size, size], strides=[1, 1], pads=[lo, lo, hi, hi],
                      count_include_pad=include_pad)


def _finish_norm(ctx, layer, x, summed, factor, out):
    """out = x * (K + factor * summed)^(-pow); K = 1 in v1, minDiv in v2."""
    b = ctx.b
    shape = b.shapes[x]
    k_const = num(layer, "minDiv", default=1.0)
    power = num(layer, "pow")
    scaled = b.node("Mul", [summed, b.const("c", np.float32(factor))], shape, out=b.fresh(layer.name + "/scaled"))
    denom = b.node("Add", [scaled, b.const("c", np.float32(k_const))], shape, out=b.fresh(layer.name + "/denom"))
    factor_v = b.node("Pow", [denom, b.const("c", np.float32(-power))], shape, out=b.fresh(layer.name + "/factor"))
    b.node("Mul", [x, factor_v], shape, out=out)


def _norm_input(ctx, layer):
    channels = num(layer, "channels", kind=int)
    size = num(layer, "imgSize", kind=int)
    x = ctx.image(layer, 0, channels, size)
    return x, (channels, size, size), num(layer, "size", kind=int), num(layer, "scale")


def emit_rnorm(ctx, layer, out):
    # within-channel: scale is stored already divided by size^2; sum of x^2 over the clipped window
    x, shape, size, scale = _norm_input(ctx, layer)
    sq = ctx.b.node("Mul", [x, x], shape, out=ctx.b.fresh(layer.name + "/sq"))
    avg = _window_avg(ctx, layer, sq, shape, size, 1, "sqavg")
    _finish_norm(ctx, layer, x, avg, scale * size * size, out)


def emit_cnorm(ctx, layer, out):
    # contrast norm: the same on x - (mean of x over the clipped window), then times x itself
    b = ctx.b
    x, shape, size, scale = _norm_input(ctx, layer)
    mean = _window_avg(ctx, layer, x, shape, size, 0, "mean")
    diff = b.node("Sub", [x, mean], shape, out=b.fresh(layer.name + "/diff"))
    sq = b.node("Mul", [diff, diff], shape, out=b.fresh(layer.name + "/sq"))
    avg = _window_avg(ctx, layer, sq, shape, size, 1, "sqavg")
    _finish_norm(ctx, layer, x, avg, scale * size * size, out)


def emit_cmrnorm(ctx, layer, out):
    # cross-map: scale is stored already divided by size; channels f - size/2 .. f - size/2 + size - 1
    b = ctx.b
    x, shape, size, scale = _norm_input(ctx, layer)
    channels = shape[0]
    blocked = bool(param(layer, "blocked", default=False))
    if not blocked and size % 2 == 1:
        # ONNX LRN: x / (bias + alpha/size * sum)^beta over the same centred, clipped window
        b.node("LRN", [x], shape, out=out, size=size, alpha=float(scale * size), beta=num(layer, "pow"),
               bias=num(layer, "minDiv", default=1.0))
        return
    # even size (window not centred) or blocked: the channel sum as a 1x1 Conv with a 0/1 band
    band = np.zeros((channels, channels, 1, 1), np.float32)
    for f in range(channels):
        lo = (f // size) * size if blocked else f - size // 2
        band[f, max(0, lo):min(channels, lo + size), 0, 0] = 1.0
    sq = b.node("Mul", [x, x], shape, out=b.fresh(layer.name + "/sq"))
    summed = b.node("Conv", [sq, b.const(layer.name + "/band", band)], shape, out=b.fresh(layer.name + "/sqsum"),
                    kernel_shape=[1, 1], strides=[1, 1], pads=[0, 0, 0, 0], group=1, dilations=[1, 1])
    _finish_norm(ctx, layer, x, summed, scale, out)
