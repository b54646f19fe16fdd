/* trainer.h: one training run: the step loop, evaluation, probes, checkpoints and the run folder
 * (README "Run folder"). Deterministic: the same config, seed and thread count give bit-identical
 * losses, and a resumed run continues bit-identically. */
#ifndef SINKLAB_TRAINER_H
#define SINKLAB_TRAINER_H

#include "train/config.h"

typedef struct {
    const char *run_dir;     /* created (or replaced) by the trainer once setup succeeds */
    int resume;              /* continue the run in run_dir from its newest intact checkpoint */
    int replace;             /* run_dir holds an earlier run to replace (--force) */
    int quiet;               /* no console progress (log.txt still written) */
} TrainOptions;

/* Runs cfg to its last step. Returns 0, 1 on a runtime failure (NaN loss, I/O error; the last
 * good checkpoint stays), 2 on bad input (corpus, resume mismatch) with the message printed. */
int trainer_run(const Config *cfg, const TrainOptions *opt);

#endif
