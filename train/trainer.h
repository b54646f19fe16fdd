/* trainer.h: one training run: the step loop, evaluation, probes, checkpoints and the run folder
 * (README "Run folder"). Deterministic: the same config, seed and thread count give bit-identical
 * losses, and a resumed run continues bit-identically. */
#ifndef SINKLAB_TRAINER_H
#define SINKLAB_TRAINER_H

#include "train/config.h"

typedef struct {
    const char *run_dir;     /* the folder written (locked by the caller); its files are created
                              * once setup succeeds */
    int resume;              /* continue the run in run_dir from its newest intact checkpoint */
    const char *swap_into;   /* --force: run_dir is a staged sibling exchanged with this folder
                              * once the first checkpoint exists (NULL otherwise) */
    int quiet;               /* no console progress (log.txt still written) */
    int swapped;             /* out: the staged run replaced swap_into */
} TrainOptions;

/* Runs cfg to its last step. Returns 0, 1 on a runtime failure (NaN loss, I/O error; the last
 * good checkpoint stays), 2 on bad input (corpus, resume mismatch) with the message printed,
 * 128 + signal when stopped by SIGINT/SIGTERM/SIGHUP (after a checkpoint of the last step). */
int trainer_run(const Config *cfg, TrainOptions *opt);

#endif
