/* hqnn's native CPU kernel: a batched statevector interpreter with an adjoint backward sweep.
 *
 * Compiled on first use by hqnn/sim/native.py, once with -DSINGLE (float, 16 lanes: complex64)
 * and once without (double, 8 lanes: complex128). The batch is cut into chunks of LANES samples;
 * a chunk's state is held batch-innermost, one row of 2*LANES reals (the LANES real parts, then
 * the LANES imaginary parts) per basis index, so that every gate is a loop over amplitude pairs
 * whose inner loop runs over the samples with SIMD, whatever the wire. Each chunk's state stays
 * in cache from the first gate to the measurement; chunks run in parallel (OpenMP).
 *
 * Ops are of two kinds:
 *  - a group: single-qubit matrices on one target wire under one control mask, multiplied per
 *    sample into one 2x2 and applied in one pass (native.py groups gates that commute into place);
 *    each member's matrix is C + cos(k*theta)*A + sin(k*theta)*S, theta = scale * its source value;
 *  - a permutation (CNOT, SWAP, Toffoli): no amplitude moves, the rows are relabelled through an
 *    index map.
 * Groups that open every wire (nothing before them touches the wire) build the product state
 * directly instead of being applied.
 *
 * The backward pass is the adjoint method on the saved final state: per group, psi <- G^dag psi,
 * lambda <- G^dag lambda and E[a][b] = sum over pairs conj(lambda_a) psi_b, from which every
 * member's derivative is Re sum_ab (S_{j+1} dU_j R_{j-1})[a][b] E[a][b] (suffix and prefix products).
 *
 * Program (int32): header (HEADER ints, see program()), ops of OP_WIDTH ints, then member records
 * (src, index, coefficient offset, 0), permutation records (k, k wire masks, 2^k table) and
 * measurement records (type, output offset, Z mask or k, wire-mask offset). Layout: native.py, whose
 * LAYOUT must equal HQ_LAYOUT below: bump both whenever the program's layout changes (native.py
 * reads hq_layout from the library file and rebuilds a library that declares another layout).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef SINGLE
typedef float real;
#define L 16
#define SIN sinf
#define COS cosf
#else
typedef double real;
#define L 8
#define SIN sin
#define COS cos
#endif
#define RS (2 * L)

#ifndef NO_SIMD_MATH
/* glibc's libmvec has SIMD versions of these: the per-sample angles' cos/sin then vectorise */
#pragma omp declare simd notinbranch
extern real SIN(real);
#pragma omp declare simd notinbranch
extern real COS(real);
#endif

enum { OP_KIND, OP_TBIT, OP_CMASK, OP_COUNT, OP_AT, OP_CLASS, OP_INITIAL };
#define OP_WIDTH 8
enum { KIND_GROUP = 0, KIND_PERM = 1 };
enum { SRC_CONST = 0, SRC_INPUT = 1, SRC_WEIGHT = 2 };
enum { CLS_GENERAL = 0, CLS_REAL = 1, CLS_DIAG = 2 };
enum { MEAS_ZWORD = 0, MEAS_PROBS = 1 };
enum { FAILED_ALLOC = 1, BAD_INPUTS = 2, BAD_WEIGHTS = 4 };  /* bits of the entry points' status */

typedef struct {
    int n, n_in, n_w, n_ops, n_meas, n_out, dim, max_members;
    const int32_t *ops, *prog, *meas;
    const double *coef;
} Program;

static Program program(const int32_t *prog, const double *coef) {
    Program p;
    p.n = prog[0]; p.n_in = prog[1]; p.n_w = prog[2]; p.n_ops = prog[3];
    p.n_meas = prog[4]; p.n_out = prog[5]; p.dim = 1 << prog[0];
    p.ops = prog + prog[6]; p.meas = prog + prog[7]; p.max_members = prog[8] > 0 ? prog[8] : 1;
    p.prog = prog; p.coef = coef;
    return p;
}

/* per-lane 2x2 complex matrices: m[e][l], e = u00r u00i u01r u01i u10r u10i u11r u11i */
typedef real Mat[8][L];

typedef struct {
    real *psi, *lam;
    int32_t *map, *tmp;
    Mat *u, *du, *pre, *suf;  /* max_members each (suf: + 1) */
    Mat g, dg;
    int bad;  /* BAD_INPUTS | BAD_WEIGHTS: a non-finite angle was met */
} Work;

static int work_alloc(Work *w, const Program *p, int with_lambda) {
    const size_t bytes = sizeof(real) * RS * (size_t)p->dim, m = (size_t)p->max_members;
    w->psi = aligned_alloc(64, bytes);
    w->lam = with_lambda ? aligned_alloc(64, bytes) : NULL;
    w->map = malloc(sizeof(int32_t) * (size_t)p->dim);
    w->tmp = malloc(sizeof(int32_t) * (size_t)p->dim);
    w->u = aligned_alloc(64, sizeof(Mat) * m);
    w->du = aligned_alloc(64, sizeof(Mat) * m);
    w->pre = aligned_alloc(64, sizeof(Mat) * m);
    w->suf = aligned_alloc(64, sizeof(Mat) * (m + 1));
    w->bad = 0;
    return w->psi && w->map && w->tmp && w->u && w->du && w->pre && w->suf && (w->lam || !with_lambda);
}

static void work_free(Work *w) {
    free(w->psi); free(w->lam); free(w->map); free(w->tmp);
    free(w->u); free(w->du); free(w->pre); free(w->suf);
}

/* ---- matrices -------------------------------------------------------------------------------- */

static void mat_identity(Mat m) {
    for (int e = 0; e < 8; e++)
        for (int l = 0; l < L; l++) m[e][l] = (e == 0 || e == 6) ? 1 : 0;
}

/* out = a @ b per lane (out may not alias a or b) */
static void mat_mul(Mat out, Mat a, Mat b) {
#pragma omp simd
    for (int l = 0; l < L; l++) {
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < 2; c++) {
                real re = 0, im = 0;
                for (int k = 0; k < 2; k++) {
                    const real ar = a[4 * r + 2 * k][l], ai = a[4 * r + 2 * k + 1][l];
                    const real br = b[4 * k + 2 * c][l], bi = b[4 * k + 2 * c + 1][l];
                    re += ar * br - ai * bi;
                    im += ar * bi + ai * br;
                }
                out[4 * r + 2 * c][l] = re;
                out[4 * r + 2 * c + 1][l] = im;
            }
    }
}

/* u (and du when not NULL) of one member for the chunk's lanes */
static void member_matrix(const Program *p, const int32_t *mem, const real *inputs, const real *weights,
                          int b0, int nb, Mat u, Mat du, int *bad) {
    const double *cf = p->coef + mem[2];
    const double k = cf[24], scale = cf[25];
    real C[8], A[8], S[8], c[L], s[L], x[L];
    for (int e = 0; e < 8; e++) { C[e] = (real)cf[e]; A[e] = (real)cf[8 + e]; S[e] = (real)cf[16 + e]; }
    if (mem[0] != SRC_INPUT) {  /* shared by the batch: one cos/sin */
        const double theta = scale * (mem[0] == SRC_WEIGHT ? (double)weights[mem[1]] : 1.0);
        if (!isfinite(theta)) *bad |= BAD_WEIGHTS;
        const real c0 = COS((real)(k * theta)), s0 = SIN((real)(k * theta));
        for (int l = 0; l < L; l++) { c[l] = c0; s[l] = s0; }
    } else {
        for (int l = 0; l < L; l++) {
            const double theta = l < nb ? scale * (double)inputs[(size_t)(b0 + l) * p->n_in + mem[1]] : 0.0;
            if (!isfinite(theta)) *bad |= BAD_INPUTS;
            x[l] = (real)(k * theta);
        }
        /* two loops: fused, the compiler would merge them into a scalar sincos call */
#pragma omp simd
        for (int l = 0; l < L; l++) c[l] = COS(x[l]);
#pragma omp simd
        for (int l = 0; l < L; l++) s[l] = SIN(x[l]);
    }
    for (int e = 0; e < 8; e++) {
#pragma omp simd
        for (int l = 0; l < L; l++) u[e][l] = C[e] + c[l] * A[e] + s[l] * S[e];
    }
    if (!du) return;
    const real kr = (real)k;
    for (int e = 0; e < 8; e++) {
#pragma omp simd
        for (int l = 0; l < L; l++) du[e][l] = kr * (c[l] * S[e] - s[l] * A[e]);
    }
}

/* w->g = product of the group's member matrices (the first member applied first); with
 * derivatives, also w->du, prefix products w->pre[j] = u_j..u_0 and suffixes w->suf[j] = u_{m-1}..u_j */
static void group_matrix(const Program *p, const int32_t *op, const real *inputs, const real *weights,
                         int b0, int nb, Work *w, int derivatives) {
    const int m = op[OP_COUNT];
    const int32_t *members = p->prog + op[OP_AT];
    for (int j = 0; j < m; j++)
        member_matrix(p, members + 4 * j, inputs, weights, b0, nb, w->u[j], derivatives ? w->du[j] : NULL, &w->bad);
    memcpy(w->pre[0], w->u[0], sizeof(Mat));
    for (int j = 1; j < m; j++) mat_mul(w->pre[j], w->u[j], w->pre[j - 1]);
    memcpy(w->g, w->pre[m - 1], sizeof(Mat));
    if (!derivatives) return;
    mat_identity(w->suf[m]);
    memcpy(w->suf[m - 1], w->u[m - 1], sizeof(Mat));
    for (int j = m - 2; j >= 0; j--) mat_mul(w->suf[j], w->suf[j + 1], w->u[j]);
}

/* ---- forward ------------------------------------------------------------------------------- */

static void apply_group(real *psi, const int32_t *map, int dim, int tbit, int cmask, int cls, Mat u) {
    for (int i = 0; i < dim; i++) {
        if ((i & tbit) || (i & cmask) != cmask) continue;
        real *restrict a = psi + (size_t)map[i] * RS;
        real *restrict b = psi + (size_t)map[i | tbit] * RS;
        if (cls == CLS_DIAG) {
#pragma omp simd
            for (int l = 0; l < L; l++) {
                const real ar = a[l], ai = a[L + l], br = b[l], bi = b[L + l];
                a[l] = u[0][l] * ar - u[1][l] * ai;
                a[L + l] = u[0][l] * ai + u[1][l] * ar;
                b[l] = u[6][l] * br - u[7][l] * bi;
                b[L + l] = u[6][l] * bi + u[7][l] * br;
            }
        } else if (cls == CLS_REAL) {
#pragma omp simd
            for (int l = 0; l < L; l++) {
                const real ar = a[l], ai = a[L + l], br = b[l], bi = b[L + l];
                a[l] = u[0][l] * ar + u[2][l] * br;
                a[L + l] = u[0][l] * ai + u[2][l] * bi;
                b[l] = u[4][l] * ar + u[6][l] * br;
                b[L + l] = u[4][l] * ai + u[6][l] * bi;
            }
        } else {
#pragma omp simd
            for (int l = 0; l < L; l++) {
                const real ar = a[l], ai = a[L + l], br = b[l], bi = b[L + l];
                a[l] = u[0][l] * ar - u[1][l] * ai + u[2][l] * br - u[3][l] * bi;
                a[L + l] = u[0][l] * ai + u[1][l] * ar + u[2][l] * bi + u[3][l] * br;
                b[l] = u[4][l] * ar - u[5][l] * ai + u[6][l] * br - u[7][l] * bi;
                b[L + l] = u[4][l] * ai + u[5][l] * ar + u[6][l] * bi + u[7][l] * br;
            }
        }
    }
}

/* source index of output index i under a permutation record [k, masks[k], table[2^k]] */
static inline int perm_source(const int32_t *rec, int i) {
    const int k = rec[0];
    const int32_t *masks = rec + 1, *table = rec + 1 + k;
    int local = 0;
    for (int j = 0; j < k; j++) local = (local << 1) | ((i & masks[j]) != 0);
    int v = table[local];
    for (int j = k - 1; j >= 0; j--, v >>= 1) i = (v & 1) ? (i | masks[j]) : (i & ~masks[j]);
    return i;
}

/* psi_new[i] = psi_old[src(i)]  <=>  map_new[i] = map_old[src(i)]; undo: map_old[src(i)] = map_new[i] */
static void permute(const int32_t *rec, int dim, Work *w, int undo) {
    int32_t *m = w->map, *t = w->tmp;
    if (undo) for (int i = 0; i < dim; i++) t[perm_source(rec, i)] = m[i];
    else for (int i = 0; i < dim; i++) t[i] = m[perm_source(rec, i)];
    w->map = t; w->tmp = m;
}

/* The state after the opening groups: the Kronecker product over wires (wire 0 most significant)
 * of G_w |0> = column 0 of G_w, or |0> for wires no opening group touches. Rows in natural order. */
static void product_state(const Program *p, Work *w, const real *inputs, const real *weights, int b0, int nb) {
    real *psi = w->psi;
    memset(psi, 0, sizeof(real) * RS * (size_t)p->dim);
    for (int l = 0; l < L; l++) psi[l] = 1;
    for (int i = 0; i < p->dim; i++) w->map[i] = i;
    int size = 1;
    for (int q = 0; q < p->n; q++) {
        const int bit = 1 << (p->n - 1 - q);
        const int32_t *op = NULL;
        for (int o = 0; o < p->n_ops && !op; o++)
            if (p->ops[OP_WIDTH * o + OP_INITIAL] && p->ops[OP_WIDTH * o + OP_TBIT] == bit) op = p->ops + OP_WIDTH * o;
        /* rows j < size hold the product over wires < q; row j spreads to rows 2j and 2j + 1 */
        if (op) group_matrix(p, op, inputs, weights, b0, nb, w, 0);
        else mat_identity(w->g);  /* a wire no opening group touches stays |0> */
        Mat *g = &w->g;
        for (int j = size - 1; j >= 0; j--) {
            real *src = psi + (size_t)j * RS, *lo = psi + (size_t)(2 * j) * RS, *hi = psi + (size_t)(2 * j + 1) * RS;
#pragma omp simd
            for (int l = 0; l < L; l++) {
                const real ar = src[l], ai = src[L + l];
                /* column 0 of g: (u00, u10) */
                hi[l] = ar * (*g)[4][l] - ai * (*g)[5][l];
                hi[L + l] = ar * (*g)[5][l] + ai * (*g)[4][l];
                lo[l] = ar * (*g)[0][l] - ai * (*g)[1][l];
                lo[L + l] = ar * (*g)[1][l] + ai * (*g)[0][l];
            }
        }
        size *= 2;
    }
}

static void run_forward(const Program *p, Work *w, const real *inputs, const real *weights, int b0, int nb) {
    product_state(p, w, inputs, weights, b0, nb);
    for (int o = 0; o < p->n_ops; o++) {
        const int32_t *op = p->ops + OP_WIDTH * o;
        if (op[OP_KIND] == KIND_PERM) {
            permute(p->prog + op[OP_AT], p->dim, w, 0);
        } else if (!op[OP_INITIAL]) {
            group_matrix(p, op, inputs, weights, b0, nb, w, 0);
            apply_group(w->psi, w->map, p->dim, op[OP_TBIT], op[OP_CMASK], op[OP_CLASS], w->g);
        }
    }
}

/* ---- measurements -------------------------------------------------------------------------- */

static inline int probs_index(const int32_t *m, const int32_t *prog, int i) {
    const int k = m[2];
    const int32_t *masks = prog + m[3];
    int v = 0;
    for (int j = 0; j < k; j++) v = (v << 1) | ((i & masks[j]) != 0);
    return m[1] + v;
}

static int measure(const Program *p, const Work *w, real *out, int b0, int nb) {
    const int n_out = p->n_out;
    real *acc = calloc((size_t)n_out * L, sizeof(real));
    if (!acc) return 1;
    for (int i = 0; i < p->dim; i++) {
        const real *row = w->psi + (size_t)w->map[i] * RS;
        real prob[L];
#pragma omp simd
        for (int l = 0; l < L; l++) prob[l] = row[l] * row[l] + row[L + l] * row[L + l];
        for (int j = 0; j < p->n_meas; j++) {
            const int32_t *m = p->meas + 4 * j;
            if (m[0] == MEAS_ZWORD) {
                real *a = acc + (size_t)m[1] * L;
                if (__builtin_parity((unsigned)(i & m[2]))) for (int l = 0; l < L; l++) a[l] -= prob[l];
                else for (int l = 0; l < L; l++) a[l] += prob[l];
            } else {
                real *a = acc + (size_t)probs_index(m, p->prog, i) * L;
                for (int l = 0; l < L; l++) a[l] += prob[l];
            }
        }
    }
    for (int l = 0; l < nb; l++)
        for (int k = 0; k < n_out; k++) out[(size_t)(b0 + l) * n_out + k] = acc[(size_t)k * L + l];
    free(acc);
    return 0;
}

/* Load the saved final states of the chunk (rows in natural order) and lambda = w * psi, where
 * w_i = d(sum_k g_k out_k) / d|psi_i|^2, with gt the chunk's output gradients (n_out x L, zero-padded). */
static void load_adjoint(const Program *p, Work *w, const real *state, const real *gout, real *gt, int b0, int nb) {
    for (int k = 0; k < p->n_out; k++)
        for (int l = 0; l < L; l++) gt[(size_t)k * L + l] = l < nb ? gout[(size_t)(b0 + l) * p->n_out + k] : 0;
    memset(w->psi, 0, sizeof(real) * RS * (size_t)p->dim);
    for (int i = 0; i < p->dim; i++) {
        real weight[L];
        for (int l = 0; l < L; l++) weight[l] = 0;
        for (int j = 0; j < p->n_meas; j++) {
            const int32_t *m = p->meas + 4 * j;
            if (m[0] == MEAS_ZWORD) {
                const real *g = gt + (size_t)m[1] * L;
                if (__builtin_parity((unsigned)(i & m[2]))) for (int l = 0; l < L; l++) weight[l] -= g[l];
                else for (int l = 0; l < L; l++) weight[l] += g[l];
            } else {
                const real *g = gt + (size_t)probs_index(m, p->prog, i) * L;
                for (int l = 0; l < L; l++) weight[l] += g[l];
            }
        }
        real *row = w->psi + (size_t)i * RS, *lrow = w->lam + (size_t)i * RS;
        for (int l = 0; l < nb; l++) {
            const real *src = state + ((size_t)(b0 + l) * p->dim + i) * 2;
            row[l] = src[0];
            row[L + l] = src[1];
        }
#pragma omp simd
        for (int l = 0; l < L; l++) {
            lrow[l] = weight[l] * row[l];
            lrow[L + l] = weight[l] * row[L + l];
        }
        w->map[i] = i;
    }
}

/* ---- entry points -------------------------------------------------------------------------- */

#define HQ_LAYOUT "1"
const char hq_layout[] = "hqnn-program-layout " HQ_LAYOUT;

static int n_chunks(int batch) { return (batch + L - 1) / L; }

/* out (B, n_out); state (B, 2^n) complex interleaved, written when not NULL.
 * Returns 0, or FAILED_ALLOC / BAD_INPUTS / BAD_WEIGHTS bits. */
int hq_forward(const int32_t *prog, const double *coef, const real *inputs, const real *weights, int batch,
               real *out, real *state, int threads) {
    const Program p = program(prog, coef);
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        Work w;
        const int ok = work_alloc(&w, &p, 0);
        /* every thread reaches the work-sharing loop (and its barrier), allocated or not */
#pragma omp for schedule(static)
        for (int c = 0; c < n_chunks(batch); c++) {
            if (!ok) { failed |= FAILED_ALLOC; continue; }
            const int b0 = c * L, nb = batch - b0 < L ? batch - b0 : L;
            run_forward(&p, &w, inputs, weights, b0, nb);
            if (measure(&p, &w, out, b0, nb)) failed |= FAILED_ALLOC;
            if (!state) continue;
            for (int l = 0; l < nb; l++) {
                real *dst = state + (size_t)(b0 + l) * 2 * p.dim;
                for (int i = 0; i < p.dim; i++) {
                    const real *row = w.psi + (size_t)w.map[i] * RS;
                    dst[2 * i] = row[l];
                    dst[2 * i + 1] = row[L + l];
                }
            }
        }
        failed |= w.bad;
        work_free(&w);
    }
    return failed;
}

/* One backward step through a group: psi <- G^dag psi, lam <- G^dag lam and, when e != NULL,
 * e[a][b] = sum over the pairs of conj(lam_a) psi_b (lam before, psi after the step). */
static void adjoint_group(real *psi, real *lam, const int32_t *map, int dim, int tbit, int cmask, Mat u, Mat e) {
    real e_[8][L];
    for (int k = 0; k < 8; k++)
        for (int l = 0; l < L; l++) e_[k][l] = 0;
    for (int i = 0; i < dim; i++) {
        if ((i & tbit) || (i & cmask) != cmask) continue;
        real *restrict a = psi + (size_t)map[i] * RS, *restrict b = psi + (size_t)map[i | tbit] * RS;
        real *restrict la = lam + (size_t)map[i] * RS, *restrict lb = lam + (size_t)map[i | tbit] * RS;
#pragma omp simd
        for (int l = 0; l < L; l++) {
            /* G^dag = [[conj g00, conj g10], [conj g01, conj g11]] */
            const real ar = a[l], ai = a[L + l], br = b[l], bi = b[L + l];
            const real pr = u[0][l] * ar + u[1][l] * ai + u[4][l] * br + u[5][l] * bi;
            const real pi = u[0][l] * ai - u[1][l] * ar + u[4][l] * bi - u[5][l] * br;
            const real qr = u[2][l] * ar + u[3][l] * ai + u[6][l] * br + u[7][l] * bi;
            const real qi = u[2][l] * ai - u[3][l] * ar + u[6][l] * bi - u[7][l] * br;
            a[l] = pr; a[L + l] = pi; b[l] = qr; b[L + l] = qi;
            const real xr = la[l], xi = la[L + l], yr = lb[l], yi = lb[L + l];
            if (e) {
                e_[0][l] += xr * pr + xi * pi; e_[1][l] += xr * pi - xi * pr;
                e_[2][l] += xr * qr + xi * qi; e_[3][l] += xr * qi - xi * qr;
                e_[4][l] += yr * pr + yi * pi; e_[5][l] += yr * pi - yi * pr;
                e_[6][l] += yr * qr + yi * qi; e_[7][l] += yr * qi - yi * qr;
            }
            la[l] = u[0][l] * xr + u[1][l] * xi + u[4][l] * yr + u[5][l] * yi;
            la[L + l] = u[0][l] * xi - u[1][l] * xr + u[4][l] * yi - u[5][l] * yr;
            lb[l] = u[2][l] * xr + u[3][l] * xi + u[6][l] * yr + u[7][l] * yi;
            lb[L + l] = u[2][l] * xi - u[3][l] * xr + u[6][l] * yi - u[7][l] * yr;
        }
    }
    if (e) memcpy(e, e_, sizeof(Mat));
}

/* d loss / d theta_j for every trainable member of the group, added to ginputs / gw */
static void group_gradients(const Program *p, const int32_t *op, Work *w, Mat e, int b0, int nb,
                            real *ginputs, double *gw) {
    const int m = op[OP_COUNT];
    const int32_t *members = p->prog + op[OP_AT];
    Mat tmp, ident;
    mat_identity(ident);
    for (int j = 0; j < m; j++) {
        const int32_t *mem = members + 4 * j;
        if (mem[0] == SRC_CONST) continue;
        /* dG_j = suf[j+1] @ du_j @ pre[j-1] */
        mat_mul(tmp, w->du[j], j > 0 ? w->pre[j - 1] : ident);
        mat_mul(w->dg, w->suf[j + 1], tmp);
        const double scale = 2.0 * p->coef[mem[2] + 25];
        for (int l = 0; l < nb; l++) {
            double g = 0;
            for (int k = 0; k < 8; k += 2) g += (double)w->dg[k][l] * e[k][l] - (double)w->dg[k + 1][l] * e[k + 1][l];
            if (mem[0] == SRC_INPUT) ginputs[(size_t)(b0 + l) * p->n_in + mem[1]] += (real)(scale * g);
            else gw[mem[1]] += scale * g;
        }
    }
}

static int trainable(const Program *p, const int32_t *op) {
    const int32_t *members = p->prog + op[OP_AT];
    for (int j = 0; j < op[OP_COUNT]; j++)
        if (members[4 * j] != SRC_CONST) return 1;
    return 0;
}

/* Gradients of sum(gout * out): ginputs (B, n_in) and gweights (n_w,) are added to. */
int hq_backward(const int32_t *prog, const double *coef, const real *inputs, const real *weights, int batch,
                const real *state, const real *gout, real *ginputs, real *gweights, int threads) {
    const Program p = program(prog, coef);
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        Work w;
        double *gw = calloc((size_t)p.n_w + 1, sizeof(double));
        real *gt = malloc(sizeof(real) * L * (size_t)p.n_out);
        const int ok = work_alloc(&w, &p, 1) && gw && gt;
#pragma omp for schedule(static)
        for (int c = 0; c < n_chunks(batch); c++) {
            if (!ok) { failed |= FAILED_ALLOC; continue; }
            const int b0 = c * L, nb = batch - b0 < L ? batch - b0 : L;
            load_adjoint(&p, &w, state, gout, gt, b0, nb);
            for (int o = p.n_ops - 1; o >= 0; o--) {
                const int32_t *op = p.ops + OP_WIDTH * o;
                if (op[OP_KIND] == KIND_PERM) {
                    permute(p.prog + op[OP_AT], p.dim, &w, 1);
                    continue;
                }
                const int grad = trainable(&p, op);
                Mat e;
                group_matrix(&p, op, inputs, weights, b0, nb, &w, grad);
                adjoint_group(w.psi, w.lam, w.map, p.dim, op[OP_TBIT], op[OP_CMASK], w.g, grad ? e : NULL);
                if (grad) group_gradients(&p, op, &w, e, b0, nb, ginputs, gw);
            }
        }
        if (ok) {
#pragma omp critical
            for (int j = 0; j < p.n_w; j++) gweights[j] += (real)gw[j];
        }
        work_free(&w);
        free(gw);
        free(gt);
    }
    return failed;
}
