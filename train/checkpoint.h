/* checkpoint.h: one checkpoint = one .npz-compatible ZIP file (numpy.load reads it; the format is
 * specified in the README ("Checkpoints")) holding the format version, the resolved config, parameters,
 * Adam moments, the RNG state and the loop's position.
 * Guarantees: every member is CRC32-checked on read, and so is the ZIP central directory; a
 * damaged, truncated or wrong-version file, a missing member, or a name/shape mismatch with the
 * model is refused with a message "PATH: section 'NAME' ..." and nothing is half-loaded into the
 * caller's state. Saving writes PATH.tmp, fsyncs it, renames it over PATH and fsyncs the
 * directory, so a crash mid-save never damages an existing checkpoint. All functions return 0 on
 * success and -1 on failure with the reason in err (err may be NULL). */
#ifndef SINKLAB_CHECKPOINT_H
#define SINKLAB_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include "model/tensor.h"

#define CKPT_FORMAT_VERSION 1
#define CKPT_STATE_EXTRA 8
/* Number of int64 values in the `state` member for this format version. */
#define CKPT_STATE_LEN (4 + CKPT_STATE_EXTRA)

/* The loop's position. Saved as the int64 member `state` in field order (step, tokens_seen,
 * data_pos, data_epoch, extra[0..7]) and the uint64 member `rng`. New fields are only ever
 * appended: a reader takes the fields it knows and zeroes known fields a shorter file lacks. */
typedef struct {
    int64_t step;              /* optimizer updates completed (the resume point) */
    int64_t tokens_seen;       /* training tokens consumed so far */
    int64_t data_pos;          /* the training stream's cursor (meaning owned by data/) */
    int64_t data_epoch;        /* completed passes over the training split */
    int64_t extra[CKPT_STATE_EXTRA]; /* caller-defined, saved and restored verbatim */
    uint64_t rng[4];           /* the data/probe RNG state (xoshiro256** words) */
} CkptState;

/* Writes the checkpoint: parameters, moments (pb->m, pb->v, both NULL for a weights-only file;
 * SGD keeps its momentum buffer in m),
 * config_yaml (the fully resolved config, stored verbatim) and st. The bytes depend only on the
 * inputs (fixed timestamps), so equal states give identical files. */
int ckpt_save(const char *path, const ParamBlock *pb, const char *config_yaml,
              const CkptState *st, char *err, size_t n);

/* The stored config string (malloc'd, NUL-terminated; the caller frees it), after checking the
 * whole file, so the caller can build the model before ckpt_load. */
int ckpt_read_config(const char *path, char **config_yaml, char *err, size_t n);

/* Loads parameters into pb (every parameter of pb must be in the file with the same shape, and
 * the file may hold no other), and with with_optimizer also pb->m and pb->v (a weights-only file
 * is then refused, saying so). st may be NULL.
 * The whole file is checked before anything is copied. */
int ckpt_load(const char *path, ParamBlock *pb, CkptState *st, int with_optimizer,
              char *err, size_t n);

/* checkpoint.optimizer_state latest: rewrites PATH without its optimizer moments, atomically as
 * ckpt_save does; its weights, config and state stay as they were. pb gives the model's layout
 * (its values are not touched). A missing PATH (pruned by keep_last) is not an error. */
int ckpt_drop_optimizer(const char *path, const ParamBlock *pb, char *err, size_t n);

/* Checks every CRC, the central directory, the format version and the required members. */
int ckpt_verify(const char *path, char *err, size_t n);

/* ---- run folder ---------------------------------------------------------------------------- */

/* RUN_DIR/checkpoints/step_0000500.ckpt (seven digits, more when needed). */
void ckpt_path(char *out, size_t n, const char *run_dir, int64_t step);
/* Creates RUN_DIR/checkpoints if missing (RUN_DIR must exist). */
int ckpt_ensure_dir(const char *run_dir, char *err, size_t n);
/* Atomically replaces RUN_DIR/checkpoints/latest with the one line "step_0000500.ckpt\n". */
int ckpt_write_latest(const char *run_dir, int64_t step, char *err, size_t n);
/* The checkpoint to resume from: the one `latest` names if it is intact; otherwise the newest
 * intact step_*.ckpt, with note saying why ("PATH: section 'param/wte' CRC mismatch (file
 * damaged); newest intact: step_0000200.ckpt"). note is "" when no fallback was needed. Fails
 * when no intact checkpoint exists (err says what was found). */
int ckpt_find_latest(const char *run_dir, char *path_out, size_t n_out,
                     char *note, size_t n_note, char *err, size_t n_err);

/* Whether to checkpoint after `step` completed updates: the final step (step == total_steps);
 * every `every` steps (every > 0, step > 0); and with log_spaced, step 0 and the 1-2-5 series
 * from 10 (10, 20, 50, 100, 200, 500, 1000, ...) so emergence can be studied afterwards. */
int ckpt_scheduled(int64_t step, int64_t total_steps, int every, int log_spaced);

#endif
