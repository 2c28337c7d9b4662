/* CPU kernels for the spiking CNN's layers (loaded by native_layers.py).
 *
 * Two layers whose PyTorch form is bound by per-op overhead at SQDR-CNN's sizes:
 *
 *  - the multi-step integrate-and-fire neuron: T time steps of a handful of elementwise ops each,
 *    forward and backward through time, become one pass per block of neurons with the membrane
 *    potential (or its gradient) held in a local buffer;
 *  - 3x3 convolutions (stride 1, zero padding 1) with few channels, where oneDNN's setup and
 *    weight-gradient reduction cost far more than the arithmetic: direct loops, vectorised along
 *    the image row.
 *
 * Compiled twice, with -DSINGLE (float) and without (double). Every array is contiguous. The weight
 * gradient is reduced over fixed blocks of samples in a fixed order, so results do not depend on
 * the number of threads.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef SINGLE
typedef float real;
#else
typedef double real;
#endif

#define NEURON_BLOCK 512 /* neurons per work item: the potential buffer stays in L1 */
#define SPAN_TARGET 1024 /* padded values per channel in a block of samples: spans stay in L1 */
#define MAX_BLOCK 16      /* samples per block at most */

/* One IF step of one neuron: h = v + x; s = [h >= thr]; v = h (1 - s) + reset s. Returns h. */
static inline real if_step(real *v, real x, real thr, real reset) {
    real h = *v + x;
    real s = h >= thr ? (real)1 : (real)0;
    *v = h * (1 - s) + reset * s;
    return h;
}

/* One step back through time: with g = dL/dS[t] and u = dL/dV[t] (0 after the last step),
 * dL/dH[t] = u (1 - S) + (g + u (reset - H)) sg(H - thr), sg(d) = (alpha/2) / (1 + (pi/2 alpha d)^2),
 * half = alpha/2, scale_sq = (pi/2 alpha)^2. dL/dX[t] = dL/dH[t] = dL/dV[t-1]. */
static inline real if_grad(real h, real s, real g, real u, real thr, real reset, real half, real scale_sq) {
    real offset = h - thr;
    real surrogate = half / (1 + offset * offset * scale_sq);
    return (g + u * (reset - h)) * surrogate + u * (1 - s);
}

/* IF forward over x (T, N): h = v + x[t]; s = [h >= thr]; v = h (1 - s) + reset s; v starts at reset.
 * Writes spikes (T, N) and the charges h (T, N) that the backward pass needs. */
void hq_if_forward(const real *x, int64_t T, int64_t N, real thr, real reset, real *spikes, real *charges,
                   int threads) {
    int64_t blocks = (N + NEURON_BLOCK - 1) / NEURON_BLOCK;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t lo = b * NEURON_BLOCK, len = N - lo < NEURON_BLOCK ? N - lo : NEURON_BLOCK;
        real v[NEURON_BLOCK];
        for (int64_t i = 0; i < len; i++) v[i] = reset;
        for (int64_t t = 0; t < T; t++) {
            const real *xt = x + t * N + lo;
            real *st = spikes + t * N + lo, *ht = charges + t * N + lo;
            for (int64_t i = 0; i < len; i++) {
                real h = if_step(&v[i], xt[i], thr, reset);
                ht[i] = h;
                st[i] = h >= thr ? (real)1 : (real)0;
            }
        }
    }
}

/* IF backward through time (if_grad per step), from the charges and spikes of hq_if_forward. */
void hq_if_backward(const real *charges, const real *spikes, const real *grad_spikes, int64_t T, int64_t N,
                    real thr, real reset, real alpha, real scale_sq, real *grad_x, int threads) {
    int64_t blocks = (N + NEURON_BLOCK - 1) / NEURON_BLOCK;
    real half = alpha / 2;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t lo = b * NEURON_BLOCK, len = N - lo < NEURON_BLOCK ? N - lo : NEURON_BLOCK;
        real later[NEURON_BLOCK];
        for (int64_t i = 0; i < len; i++) later[i] = 0;
        for (int64_t t = T - 1; t >= 0; t--) {
            const real *ht = charges + t * N + lo, *st = spikes + t * N + lo, *gt = grad_spikes + t * N + lo;
            real *out = grad_x + t * N + lo;
            for (int64_t i = 0; i < len; i++) {
                real grad = if_grad(ht[i], st[i], gt[i], later[i], thr, reset, half, scale_sq);
                out[i] = grad;
                later[i] = grad;
            }
        }
    }
}

/* IF neuron followed by 2x2 max pooling (stride 2, floor), fused: x and charges (T, P, H, W) over P
 * planes, pooled spikes (T, P, H/2, W/2). The spikes themselves are not stored: they are
 * [charge >= thr], recomputed where needed. Returns 1 when out of memory. */
int hq_if_pool_forward(const real *x, int64_t T, int64_t P, int64_t H, int64_t W, real thr, real reset,
                       real *pooled, real *charges, int threads) {
    int64_t plane = H * W, Ho = H / 2, Wo = W / 2;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        real *v = malloc(sizeof(real) * (size_t)plane);
        if (!v) failed = 1;
#pragma omp for schedule(static)
        for (int64_t p = 0; p < P; p++) {
            if (!v) continue;
            for (int64_t i = 0; i < plane; i++) v[i] = reset;
            for (int64_t t = 0; t < T; t++) {
                const real *xt = x + (t * P + p) * plane;
                real *ht = charges + (t * P + p) * plane, *pt = pooled + (t * P + p) * Ho * Wo;
                for (int64_t i = 0; i < plane; i++) ht[i] = if_step(&v[i], xt[i], thr, reset);
                for (int64_t oy = 0; oy < Ho; oy++)
                    for (int64_t ox = 0; ox < Wo; ox++) {
                        const real *r0 = ht + 2 * oy * W + 2 * ox, *r1 = r0 + W;
                        pt[oy * Wo + ox] = (r0[0] >= thr || r0[1] >= thr || r1[0] >= thr || r1[1] >= thr) ? 1 : 0;
                    }
            }
        }
        free(v);
    }
    return failed;
}

/* Backward of hq_if_pool_forward. The pooled gradient goes to the window's first spiking position
 * in row-major order, or to its first position when none spiked (PyTorch's max_pool2d picks the
 * first maximum); then if_grad per step, with S = [H >= thr]. */
int hq_if_pool_backward(const real *charges, const real *grad_pooled, int64_t T, int64_t P, int64_t H, int64_t W,
                        real thr, real reset, real alpha, real scale_sq, real *grad_x, int threads) {
    int64_t plane = H * W, Ho = H / 2, Wo = W / 2;
    real half = alpha / 2;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        real *later = malloc(sizeof(real) * (size_t)(2 * plane)), *g = later ? later + plane : NULL;
        if (!later) failed = 1;
#pragma omp for schedule(static)
        for (int64_t p = 0; p < P; p++) {
            if (!later) continue;
            for (int64_t i = 0; i < plane; i++) later[i] = 0;
            for (int64_t t = T - 1; t >= 0; t--) {
                const real *ht = charges + (t * P + p) * plane, *gp = grad_pooled + (t * P + p) * Ho * Wo;
                real *out = grad_x + (t * P + p) * plane;
                for (int64_t i = 0; i < plane; i++) g[i] = 0;
                for (int64_t oy = 0; oy < Ho; oy++)
                    for (int64_t ox = 0; ox < Wo; ox++) {
                        int64_t k = 2 * oy * W + 2 * ox, at = k;
                        if (ht[k] >= thr) at = k;
                        else if (ht[k + 1] >= thr) at = k + 1;
                        else if (ht[k + W] >= thr) at = k + W;
                        else if (ht[k + W + 1] >= thr) at = k + W + 1;
                        g[at] = gp[oy * Wo + ox];
                    }
                for (int64_t i = 0; i < plane; i++) {
                    real grad = if_grad(ht[i], ht[i] >= thr ? (real)1 : (real)0, g[i], later[i], thr, reset, half,
                                        scale_sq);
                    out[i] = grad;
                    later[i] = grad;
                }
            }
        }
        free(later);
    }
    return failed;
}

/* The convolutions work on blocks of samples whose zero-padded planes, of
 * (H + 2) x (W + 2) values each, are stacked per channel: row stride S = W + 2, R = m (H + 2) rows for
 * m samples. Output (y, x) of sample s sits at p = (s (H + 2) + y) S + x of a span of
 * L = (R - 2) S - 2 values, and the tap (ky, kx) reads the stacked input at p + ky S + kx: each tap is
 * one multiply-add over one contiguous span for the whole block (the values between rows and
 * between samples are computed and dropped), with no bounds tests. */
/* Samples per block: about SPAN_TARGET padded values per channel (1 sample at 28x28, 4 at 14x14, 12
 * at 7x7). Against one sample per block (forward, input and weight gradient of 160 maps, 1 thread):
 * 14x14 1.3x and 7x7 1.8x faster, 28x28 the same.
 * A function of the map size only, so the weight gradient's partial sums do not depend on threads. */
static int64_t block_samples(int64_t H, int64_t W) {
    int64_t m = SPAN_TARGET / ((H + 2) * (W + 2));
    return m < 1 ? 1 : m > MAX_BLOCK ? MAX_BLOCK : m;
}

static void pad_block(const real *src, int64_t m, int64_t C, int64_t H, int64_t W, real *dst) {
    int64_t S = W + 2, R = m * (H + 2);
    memset(dst, 0, sizeof(real) * (size_t)(C * R * S));
    for (int64_t s = 0; s < m; s++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t y = 0; y < H; y++)
                memcpy(dst + (c * R + s * (H + 2) + y + 1) * S + 1, src + ((s * C + c) * H + y) * W, sizeof(real) * W);
}

/* out[n, o] = sum_c conv3x3(in[n, c], w[o, c]) with zero padding 1, stride 1.
 * in (N, C, H, W), w (O, C, 3, 3), out (N, O, H, W). Returns 1 when out of memory. */
int hq_conv3x3_forward(const real *in, const real *w, int64_t N, int64_t C, int64_t O, int64_t H, int64_t W,
                       real *out, int threads) {
    int64_t S = W + 2, B = block_samples(H, W), R = B * (H + 2), blocks = (N + B - 1) / B;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        real *pad = malloc(sizeof(real) * (size_t)((C + 1) * R * S));
        real *acc = pad ? pad + C * R * S : NULL;
        if (!pad) failed = 1;
#pragma omp for schedule(static)
        for (int64_t b = 0; b < blocks; b++) {
            if (!pad) continue;
            int64_t n0 = b * B, m = N - n0 < B ? N - n0 : B;
            int64_t rows = m * (H + 2), L = (rows - 2) * S - 2;
            pad_block(in + n0 * C * H * W, m, C, H, W, pad);
            for (int64_t o = 0; o < O; o++) {
                memset(acc, 0, sizeof(real) * (size_t)L);
                for (int64_t c = 0; c < C; c++)
                    for (int k = 0; k < 9; k++) {
                        real tap = w[(o * C + c) * 9 + k];
                        const real *src = pad + c * rows * S + (k / 3) * S + k % 3;
#pragma omp simd
                        for (int64_t p = 0; p < L; p++) acc[p] += tap * src[p];
                    }
                for (int64_t s = 0; s < m; s++)
                    for (int64_t y = 0; y < H; y++)
                        memcpy(out + (((n0 + s) * O + o) * H + y) * W, acc + (s * (H + 2) + y) * S, sizeof(real) * W);
            }
        }
        free(pad);
    }
    return failed;
}

/* grad_w[o, c, ky, kx] = sum_{n, y, x} g[n, o, y, x] in[n, c, y + ky - 1, x + kx - 1], g (N, O, H, W):
 * per block, g laid out on the span (zeros at the dropped positions) dotted with each tap's shifted
 * span of the stacked input. Each block sums into its own partial and the partials are added in
 * block order, so the result does not depend on the thread count. Returns 1 when out of memory. */
int hq_conv3x3_weight_grad(const real *in, const real *g, int64_t N, int64_t C, int64_t O, int64_t H, int64_t W,
                           real *grad_w, int threads) {
    int64_t S = W + 2, B = block_samples(H, W), R = B * (H + 2), taps = O * C * 9;
    int64_t blocks = (N + B - 1) / B;
    real *partial = calloc((size_t)(blocks * taps), sizeof(real));
    if (!partial) return 1;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        real *pad = malloc(sizeof(real) * (size_t)((C + O) * R * S));
        real *spans = pad ? pad + C * R * S : NULL;
        if (!pad) failed = 1;
#pragma omp for schedule(static)
        for (int64_t b = 0; b < blocks; b++) {
            if (!pad) continue;
            int64_t n0 = b * B, m = N - n0 < B ? N - n0 : B;
            int64_t rows = m * (H + 2), L = (rows - 2) * S - 2;
            pad_block(in + n0 * C * H * W, m, C, H, W, pad);
            memset(spans, 0, sizeof(real) * (size_t)(O * rows * S));
            for (int64_t s = 0; s < m; s++)
                for (int64_t o = 0; o < O; o++)
                    for (int64_t y = 0; y < H; y++)
                        memcpy(spans + o * rows * S + (s * (H + 2) + y) * S, g + (((n0 + s) * O + o) * H + y) * W,
                               sizeof(real) * W);
            real *part = partial + b * taps;
            for (int64_t o = 0; o < O; o++)
                for (int64_t c = 0; c < C; c++)
                    for (int k = 0; k < 9; k++) {
                        const real *go = spans + o * rows * S, *src = pad + c * rows * S + (k / 3) * S + k % 3;
                        real sum = 0;
#pragma omp simd reduction(+ : sum)
                        for (int64_t p = 0; p < L; p++) sum += go[p] * src[p];
                        part[(o * C + c) * 9 + k] = sum;
                    }
        }
        free(pad);
    }
    if (!failed)
        for (int64_t t = 0; t < taps; t++) {
            real sum = 0;
            for (int64_t b = 0; b < blocks; b++) sum += partial[b * taps + t];
            grad_w[t] = sum;
        }
    free(partial);
    return failed;
}

const char hq_layers_version[] = "hqnn-layers-kernels 1";
