/* One-pass NAdam update (loaded by optim.py): per element, the arithmetic of PyTorch's multi-tensor
 * NAdam in its order, where PyTorch makes about nine passes over the parameter buffers.
 *
 * Compiled twice, with -DSINGLE (float) and without (double). The scalars (step sizes, bias
 * correction) are computed in Python exactly as PyTorch computes them and passed in. */
#include <math.h>
#include <stdint.h>

#ifdef SINGLE
typedef float real;
#define SQRT sqrtf
#else
typedef double real;
#define SQRT sqrt
#endif

/* For each i: g = grad (+ wd * param unless decoupled; decoupled: param *= 1 - lr wd first);
 * m += (1 - beta1) (g - m); v = v beta2 + (1 - beta2) g g; d = sqrt(v) / bias_sqrt + eps;
 * param += step_grad g / d; param += step_avg m / d. */
void hq_nadam(real *param, const real *grad, real *exp_avg, real *exp_avg_sq, int64_t n, double beta1,
              double beta2, double weight_decay, int decoupled, double lr, double eps, double bias_sqrt,
              double step_grad, double step_avg, int threads) {
    real one_minus_beta1 = (real)(1 - beta1), b2 = (real)beta2, one_minus_beta2 = (real)(1 - beta2);
    real wd = (real)weight_decay, shrink = (real)(1 - lr * weight_decay), bias = (real)bias_sqrt;
    real e = (real)eps, sg = (real)step_grad, sa = (real)step_avg;
#pragma omp parallel for simd schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n; i++) {
        real p = param[i], g = grad[i];
        if (weight_decay != 0) {
            if (decoupled) p = p * shrink;
            else g = g + wd * p;
        }
        real m = exp_avg[i] + one_minus_beta1 * (g - exp_avg[i]);
        real v = exp_avg_sq[i] * b2;
        v = v + one_minus_beta2 * (g * g);
        real d = SQRT(v) / bias + e;
        p = p + sg * (g / d);
        p = p + sa * (m / d);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        param[i] = p;
    }
}
