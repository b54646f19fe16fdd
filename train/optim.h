/* optim.h: the learning-rate schedule, clipping by global gradient norm, and the optimizer step
 * (AdamW with torch.optim.AdamW's exact arithmetic, or SGD with momentum as torch.optim.SGD).
 * Guarantees: every function is deterministic and independent of the OpenMP thread count; the
 * optimizer touches only the ParamBlock's own arrays (no allocation). */
#ifndef SINKLAB_OPTIM_H
#define SINKLAB_OPTIM_H

#include <stdint.h>
#include "model/tensor.h"
#include "train/config.h"

/* Learning rate of the update that takes the model from `step` completed updates to step + 1
 * (step is 0-based, 0 <= step < tc->steps).
 * Warm-up (all schedules, when warmup_steps W > 0): step < W gives lr * (step + 1) / W, so the
 * first update uses lr / W and update W (step = W - 1) the full lr.
 * After warm-up, with r = (step - W) / (steps - W) in [0, 1):
 *   SCHED_CONSTANT  lr
 *   SCHED_COSINE    min_lr + (lr - min_lr) * 0.5 * (1 + cos(pi r))
 *   SCHED_LINEAR    lr + (min_lr - lr) * r
 * and step >= steps (past the end) gives min_lr for cosine/linear. */
float optim_lr(const TrainConfig *tc, int64_t step);

/* The global L2 norm of all gradients, sqrt(sum g^2), accumulated in double over fixed chunks
 * summed in order (the same bits for any thread count). When max_norm > 0 and the norm exceeds
 * it, every gradient is multiplied by max_norm / norm, so the new norm is max_norm (to float
 * rounding); a non-finite norm is returned without touching the gradients (the caller stops).
 * Returns the norm before clipping. */
float optim_clip_grad(ParamBlock *pb, float max_norm);

/* Whether parameter group g receives weight decay under the policy d. Sinks only under
 * DECAY_ALL. */
int optim_decays(DecayGroups d, ParamGroup g);

/* One update with learning rate lr; t is the 1-based update count (bias correction).
 * OPT_ADAMW, as torch.optim.AdamW: for decaying params p *= 1 - lr*wd; then
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * OPT_SGD, as torch.optim.SGD (dampening 0, no Nesterov): d = g (+ wd p for decaying params,
 * coupled L2 as torch does); buf = momentum buf + d (pb->m is the buffer); p -= lr buf
 * (momentum 0: p -= lr d). Gradients are read as they are: accumulation scaling is the
 * caller's. */
void optim_step(ParamBlock *pb, const TrainConfig *tc, int64_t t, float lr);

#endif
