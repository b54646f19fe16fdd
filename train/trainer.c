/* trainer.c: the training loop. Every allocation happens before the first step; the step itself
 * only resets the arena, fills the preallocated batch, runs forward/backward and updates. */
#include "train/trainer.h"

#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "analysis/json.h"
#include "analysis/jsonw.h"
#include "analysis/onset.h"
#include "analysis/probe.h"
#include "analysis/report.h"
#include "data/dataset.h"
#include "model/transformer.h"
#include "train/batch_shards.h"
#include "train/checkpoint.h"
#include "train/config_flat.h"
#include "train/optim.h"
#include "train/run_folder.h"
#include "train/run_timings.h"
#include "train/signals.h"

/* Declared by OpenBLAS (cblas.h of the pthread/openmp builds). */
extern char *openblas_get_config(void);

typedef struct {
    const Config *cfg;
    TrainOptions *opt;
    char run_dir[1100];         /* opt->run_dir, then opt->swap_into once the --force swap is done */
    int interrupted;            /* the stop signal, once the run stopped for one */
    char *config_yaml;
    FILE *log, *metrics;
    int tty;
    Transformer model;
    Dataset *ds;
    Batch batch, val_batch;
    BatchShards shards;         /* the step's graphs: training and validation passes */
    Probe probe;
    int has_probe;
    JsonWriter json;
    int64_t step, tokens;
    int64_t first_step, first_tokens;  /* where this invocation started (0, or the resume) */
    double train_seconds, eval_seconds, ckpt_seconds, started;
    /* onset tracking: alpha_0 per probe (n_probe_rows x L*H) */
    int *probe_steps;
    float *probe_alpha0;
    int n_probe_rows, cap_probe_rows;
    double last_val;
    int has_val;
    int64_t last_val_step, last_probe_step;   /* what the progress line's values belong to */
    int64_t resumed_at;                       /* -1, or the step this invocation resumed from */
    int64_t moments_step;                     /* -1, or the checkpoint that holds the moments */
    int64_t last_saved;         /* step of the newest checkpoint written or resumed (-1: none) */
} Trainer;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Console and log.txt get the same plain lines; a terminal also gets a live progress line. */
static void say(Trainer *t, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (!t->opt->quiet) {
        if (t->tty) fputs("\r\033[K", stdout);
        fputs(line, stdout);
        fflush(stdout);
    }
    if (t->log) {
        fputs(line, t->log);
        fflush(t->log);
    }
}

static float alpha0_max(const Probe *p);

static void progress(Trainer *t, double loss, double tok_s)
{
    if (t->opt->quiet || !t->tty) return;
    int64_t total = t->cfg->train.steps;
    double elapsed = now_seconds() - t->started;
    int64_t done = t->step - t->first_step;
    double eta = done > 0 ? elapsed / (double)done * (double)(total - t->step) : 0.0;
    char val[64] = "", sink[96] = "";
    /* the latest validation loss and probe, each with the step it was measured at */
    if (t->has_val) snprintf(val, sizeof val, " | val %.4f (step %lld)", t->last_val, (long long)t->last_val_step);
    if (t->has_probe && t->n_probe_rows && t->probe.alpha0_valid)
        snprintf(sink, sizeof sink, " | alpha0 max %.3f, sink@%g %.2f (step %lld)",
                 (double)alpha0_max(&t->probe), (double)t->cfg->probe.eps[0],
                 (double)t->probe.sink_rate[0], (long long)t->last_probe_step);
    printf("\r\033[Kstep %lld/%lld | loss %.4f%s | %.1fk tok/s%s | ETA %d:%02d",
           (long long)t->step, (long long)total, loss, val, tok_s / 1000.0, sink, (int)eta / 60,
           (int)eta % 60);
    fflush(stdout);
}

/* ---- setup ---- */

static int open_run_files(Trainer *t, char *err, size_t n)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/log.txt", t->run_dir);
    t->log = fopen(path, t->opt->resume ? "a" : "w");
    snprintf(path, sizeof path, "%s/metrics.jsonl", t->run_dir);
    t->metrics = fopen(path, t->opt->resume ? "a" : "w");
    snprintf(path, sizeof path, "%s/probe", t->run_dir);
    mkdir(path, 0777);
    if (!t->log || !t->metrics) {
        snprintf(err, n, "%s: cannot write the run folder (%s)", t->run_dir, strerror(errno));
        return -1;
    }
    return ckpt_ensure_dir(t->run_dir, err, n);
}

/* Keeps the metrics lines up to `step` (a resumed run rewrites what came after its checkpoint).
 * Written to a temporary file and renamed, so a failure leaves the old file whole. */
static int truncate_metrics(const char *run_dir, int64_t step, char *err, size_t n)
{
    char path[1200], tmp[1220];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *in = fopen(path, "r");
    if (!in) return 0;
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        snprintf(err, n, "%s: cannot write", tmp);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) > 0) {
        long long s = -1;
        if (line[len - 1] != '\n') break;   /* a torn last line from a crash */
        if (strncmp(line, "{\"final\"", 8) == 0) continue;   /* an older run's summary line */
        if (sscanf(line, "{\"step\":%lld", &s) == 1 && s > step) break;
        fwrite(line, 1, (size_t)len, out);
    }
    free(line);
    fclose(in);
    int rc = fclose(out) == 0 && rename(tmp, path) == 0 ? 0 : -1;
    if (rc) snprintf(err, n, "%s: cannot rewrite", path);
    return rc;
}

/* OpenBLAS 0.3.21 falls back to its SSE3 "Prescott" kernels on CPUs it does not recognise
 * (virtual machines often report a generic model), about 3x slower on sgemm; say so, with the fix,
 * since a user would otherwise read the slowness as sinklab's. */
static void warn_slow_blas(Trainer *t)
{
    const char *blas = openblas_get_config();
    if (!blas || !strstr(blas, "Prescott")) return;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2")) return;
    say(t, "warning: OpenBLAS did not recognise this CPU and uses its slow Prescott kernels (%s); "
        "export OPENBLAS_CORETYPE=%s for about 3x faster matrix products\n", blas,
        __builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell");
#endif
}

/* A training step runs one batch shard per thread: threads beyond the shard count wait through
 * it (only probes and analysis use them), which a user with more cores should hear about. */
static void note_idle_threads(Trainer *t)
{
    int threads = t->cfg->train.threads, shards = t->shards.n, B = t->cfg->train.batch_size;
    if (shards == 1 || threads <= shards) return;
    if (B % threads == 0)
        say(t, "note: %d threads but the batch is in %d shards: a training step uses %d of them "
            "(train.batch_shards: %d would use them all)\n", threads, shards, shards, threads);
    else
        say(t, "note: %d threads but the batch is in %d shards: a training step uses %d of them "
            "(train.batch_shards must divide train.batch_size %d)\n", threads, shards, shards, B);
}

static void record_run_info(Trainer *t)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/run_info.json", t->run_dir);
    FILE *f = fopen(path, "w");
    if (!f) return;
    JsonWriter w;
    jsonw_init(&w);
    jsonw_object_begin(&w);
    jsonw_key_string(&w, "sinklab_version", SINKLAB_VERSION);
    jsonw_key_int(&w, "threads", t->cfg->train.threads);
    jsonw_key_int(&w, "batch_shards", t->shards.n);
    jsonw_key_int(&w, "omp_max_threads", omp_get_max_threads());
    jsonw_key_string(&w, "openblas_config", openblas_get_config());
    jsonw_key_int(&w, "n_params", (long long)t->model.params.n);
    jsonw_key_int(&w, "batch_size", t->cfg->train.batch_size);
    jsonw_key_int(&w, "seq_len", t->cfg->data.seq_len);
    jsonw_object_end(&w);
    jsonw_write_line(&w, f);
    jsonw_free(&w);
    fclose(f);
}

static int setup(Trainer *t, char *err, size_t n)
{
    const Config *c = t->cfg;
    autograd_set_threads(c->train.threads);
    t->config_yaml = config_to_string(c);
    if (transformer_init(&t->model, &c->model, c->train.seed, err, n) != 0) return 2;
    t->ds = dataset_open(&c->data, err, n);
    if (!t->ds) return 2;
    int B = c->train.batch_size, T = c->data.seq_len;
    batch_alloc(&t->batch, B, T);
    batch_alloc(&t->val_batch, B, T);
    /* sized by a dry training pass; evaluation (same shapes, no tape) needs less */
    batch_shards_init(&t->shards, &t->model, batch_shards_resolve(c->train.batch_shards, B), B, T);
    if (c->probe.every > 0 || c->checkpoint.every > 0 || c->checkpoint.log_spaced) {
        if (probe_init(&t->probe, &t->model, t->ds, &c->probe, err, n) != 0) return 2;
        t->has_probe = 1;
    }
    jsonw_init(&t->json);
    return 0;
}

static void remember_probe(Trainer *t, int64_t step, const float *alpha0);

/* The alpha_0 rows of the probes already in metrics.jsonl, so a resumed run's onset table covers
 * the whole run (metrics.jsonl prints floats so that they read back exactly). */
static void reload_probe_rows(Trainer *t, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return;
    int L = t->probe.L, H = t->probe.H;
    double *a0 = xcalloc((size_t)L * H, sizeof(double));
    float *row = xcalloc((size_t)L * H, sizeof(float));
    char *line = NULL, jerr[256];
    size_t cap = 0;
    ssize_t len;
    for (int lineno = 1; (len = getline(&line, &cap, f)) > 0; lineno++) {
        JsonDoc d;
        if (json_parse(&d, line, (size_t)len, path, lineno, jerr, sizeof jerr) != 0) continue;
        const JsonValue *step = json_get(d.root, "step");
        if (step && json_matrix(a0, json_get(json_get(d.root, "probe"), "alpha0"), L, H) == 0) {
            for (int i = 0; i < L * H; i++) row[i] = (float)a0[i];
            remember_probe(t, (int64_t)step->number, row);
        }
        json_free(&d);
    }
    free(line);
    free(a0);
    free(row);
    fclose(f);
}

/* RUN/config.yaml follows the resumed config (train.steps, probe.*, checkpoint.* may change). */
static int rewrite_config(const Trainer *t, char *err, size_t n)
{
    char path[1200], tmp[1220];
    snprintf(path, sizeof path, "%s/config.yaml", t->run_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int ok = f && fputs(t->config_yaml, f) >= 0;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, n, "%s: cannot write", path);
        return -1;
    }
    return 0;
}

static int resume_from_checkpoint(Trainer *t, char *err, size_t n)
{
    char path[1200], note[1400];
    if (ckpt_find_latest(t->run_dir, path, sizeof path, note, sizeof note, err, n) != 0)
        return -1;
    if (note[0]) say(t, "%s\n", note);
    char *stored = NULL;
    if (ckpt_read_config(path, &stored, err, n) != 0) return -1;
    Config saved;
    char cerr[512];
    if (config_load_string(&saved, stored, path, cerr, sizeof cerr) != 0 ||
        config_validate(&saved, cerr, sizeof cerr) != 0) {
        snprintf(err, n, "%s: stored config unreadable: %s", path, cerr);
        free(stored);
        return -1;
    }
    free(stored);
    /* model and data must match to continue; train.steps, probes and checkpoints may change, and
     * the thread count, which never changes the arithmetic */
    Config a = saved, b = *t->cfg;
    a.train.steps = b.train.steps;
    a.train.threads = b.train.threads;
    a.train.memory_limit = b.train.memory_limit;
    a.probe = b.probe;
    a.checkpoint = b.checkpoint;
    a.output = b.output;
    memcpy(a.source, b.source, sizeof a.source);
    char diff[512];
    if (config_diff(&a, &b, diff, sizeof diff) > 0) {
        snprintf(err, n, "%s: cannot resume with a different config (%s); only train.steps, "
                 "train.threads, train.memory_limit, probe.*, checkpoint.* and output.* may change", path, diff);
        return -1;
    }
    CkptState st;
    if (ckpt_load(path, &t->model.params, &st, 1, err, n) != 0) return -1;
    t->step = st.step;
    t->tokens = st.tokens_seen;
    char metrics[1200];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", t->run_dir);
    /* the time already spent, so the summary's timings cover the whole run (read before the
     * summary is removed and the metrics truncated) */
    RunTimings before;
    run_timings_read(&before, t->run_dir, t->step);
    t->train_seconds = before.train;
    t->eval_seconds = before.eval;
    t->ckpt_seconds = before.checkpoint;
    if (t->has_probe) t->probe.seconds = before.probe;
    t->resumed_at = t->step;
    t->moments_step = t->step;
    if (truncate_metrics(t->run_dir, t->step, err, n) != 0) return -1;
    /* the run is not complete again until it writes a new summary */
    char summary[1200];
    snprintf(summary, sizeof summary, "%s/summary.json", t->run_dir);
    remove(summary);
    /* the rewrite replaced metrics.jsonl: append to the new file, not the unlinked old one */
    fclose(t->metrics);
    if (!(t->metrics = fopen(metrics, "a"))) {
        snprintf(err, n, "%s: cannot write", metrics);
        return -1;
    }
    if (t->has_probe) reload_probe_rows(t, metrics);
    if (rewrite_config(t, err, n) != 0) return -1;
    say(t, "resumed from %s at step %lld\n", path, (long long)t->step);
    return 0;
}

/* ---- the pieces of a step ---- */

static double evaluate(Trainer *t)
{
    double t0 = now_seconds(), total = 0.0;
    int nb = t->cfg->train.eval_batches;
    for (int i = 0; i < nb; i++) {
        dataset_batch(t->ds, DATA_VAL, t->cfg->data.split_seed, i, &t->val_batch);
        total += batch_shards_pass(&t->shards, &t->val_batch, 0, 1.0f);
    }
    t->eval_seconds += now_seconds() - t0;
    return total / nb;
}

/* One optimizer update over grad_accum micro-batches. Returns the mean loss, or NAN. */
static double train_step(Trainer *t, float *grad_norm)
{
    const TrainConfig *tc = &t->cfg->train;
    params_zero_grad(&t->model.params);
    double loss_sum = 0.0;
    for (int micro = 0; micro < tc->grad_accum; micro++) {
        int64_t index = t->step * tc->grad_accum + micro;
        dataset_batch(t->ds, DATA_TRAIN, tc->seed, index, &t->batch);
        loss_sum += batch_shards_pass(&t->shards, &t->batch, 1, 1.0f / (float)tc->grad_accum);
        t->tokens += (int64_t)t->batch.B * t->batch.T;
    }
    batch_shards_reduce(&t->shards);
    double loss = loss_sum / tc->grad_accum;
    *grad_norm = optim_clip_grad(&t->model.params, tc->grad_clip);
    if (!isfinite(loss) || !isfinite(*grad_norm)) return NAN;
    optim_step(&t->model.params, tc, t->step + 1, optim_lr(tc, t->step));
    return loss;
}

static void remember_probe(Trainer *t, int64_t step, const float *alpha0)
{
    int LH = t->probe.L * t->probe.H;
    if (t->n_probe_rows == t->cap_probe_rows) {
        t->cap_probe_rows = t->cap_probe_rows ? 2 * t->cap_probe_rows : 64;
        t->probe_steps = realloc(t->probe_steps, (size_t)t->cap_probe_rows * sizeof(int));
        t->probe_alpha0 = realloc(t->probe_alpha0, (size_t)t->cap_probe_rows * LH * sizeof(float));
        SL_CHECK(t->probe_steps && t->probe_alpha0, "out of memory for the onset table");
    }
    t->probe_steps[t->n_probe_rows] = (int)step;
    memcpy(t->probe_alpha0 + (size_t)t->n_probe_rows * LH, alpha0, (size_t)LH * sizeof(float));
    t->n_probe_rows++;
}

static int cmp_int64_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* checkpoint.keep_last: keeps the newest N regular checkpoints; the log-spaced early ones stay,
 * since they are what emergence is studied from afterwards. */
static void prune_checkpoints(Trainer *t)
{
    int keep = t->cfg->checkpoint.keep_last;
    if (keep <= 0) return;
    char dir[1200], path[1500];
    snprintf(dir, sizeof dir, "%s/checkpoints", t->run_dir);
    DIR *d = opendir(dir);
    if (!d) return;
    int64_t steps[4096];
    int n = 0;
    struct dirent *e;
    long long s;
    while ((e = readdir(d)) && n < 4096)
        if (sscanf(e->d_name, "step_%lld.ckpt", &s) == 1 && strstr(e->d_name, ".tmp") == NULL)
            steps[n++] = s;
    closedir(d);
    qsort(steps, (size_t)n, sizeof steps[0], cmp_int64_desc);
    int regular = 0;
    for (int i = 0; i < n; i++) {
        if (ckpt_scheduled(steps[i], INT64_MAX, 0, 1)) continue;
        if (++regular <= keep) continue;
        ckpt_path(path, sizeof path, t->run_dir, steps[i]);
        remove(path);
    }
}

/* --force: the new run replaces the old one only once it has a checkpoint to resume from. */
static int swap_in(Trainer *t, char *err, size_t n)
{
    if (!t->opt->swap_into || t->opt->swapped) return 0;
    if (run_folder_swap_in(t->run_dir, t->opt->swap_into, err, n) != 0) return -1;
    snprintf(t->run_dir, sizeof t->run_dir, "%s", t->opt->swap_into);
    t->opt->swapped = 1;
    return 0;
}

static int save_checkpoint(Trainer *t, char *err, size_t n)
{
    double t0 = now_seconds();
    char path[1200];
    ckpt_path(path, sizeof path, t->run_dir, t->step);
    CkptState st;
    memset(&st, 0, sizeof st);
    st.step = t->step;
    st.tokens_seen = t->tokens;
    st.data_pos = t->step * t->cfg->train.grad_accum;
    st.data_epoch = (int64_t)dataset_epochs(t->ds, t->tokens);
    if (ckpt_save(path, &t->model.params, t->config_yaml, &st, err, n) != 0 ||
        ckpt_write_latest(t->run_dir, t->step, err, n) != 0)
        return -1;
    /* optimizer_state latest: the previous holder of the moments drops them only now that the
     * newest checkpoint (with moments) and `latest` are safely written; failing to (a full disk)
     * only costs space, so the run goes on */
    if (t->cfg->checkpoint.optimizer_state == OPTSTATE_LATEST && t->moments_step >= 0 &&
        t->moments_step != t->step) {
        char prev[1200], why[1400];
        ckpt_path(prev, sizeof prev, t->run_dir, t->moments_step);
        if (ckpt_drop_optimizer(prev, &t->model.params, why, sizeof why) != 0)
            say(t, "warning: %s; that checkpoint keeps its optimizer moments\n", why);
    }
    t->moments_step = t->step;
    prune_checkpoints(t);
    if (t->has_probe) {
        char maps[1200];
        snprintf(maps, sizeof maps, "%s/probe/step_%07lld.json", t->run_dir, (long long)t->step);
        if (probe_write_maps(&t->probe, maps, t->step, err, n) != 0) return -1;
    }
    t->ckpt_seconds += now_seconds() - t0;
    t->last_saved = t->step;
    return swap_in(t, err, n);
}

static float alpha0_max(const Probe *p)
{
    float mx = 0.0f;
    for (int i = 0; i < p->L * p->H; i++) mx = p->alpha0[i] > mx ? p->alpha0[i] : mx;
    return mx;
}

/* A plain console/log line for steps that evaluated or probed. */
static void print_step(Trainer *t, double loss, int has_val, int has_probe, double tok_s)
{
    char l[32] = "     -", v[32] = "     -", sink[96] = "", speed[32] = "";
    if (isfinite(loss)) snprintf(l, sizeof l, "%.4f", loss);
    if (has_val) snprintf(v, sizeof v, "%.4f", t->last_val);
    if (tok_s > 0) snprintf(speed, sizeof speed, " | %6.0f tok/s", tok_s);
    if (has_probe && t->probe.alpha0_valid)
        snprintf(sink, sizeof sink, " | alpha0 max %.3f (uniform %.3f) | sink@%g %.2f",
                 (double)alpha0_max(&t->probe), probe_uniform_alpha0(&t->probe),
                 (double)t->cfg->probe.eps[0], (double)t->probe.sink_rate[0]);
    say(t, "step %6lld/%lld | loss %s | val %s%s%s\n", (long long)t->step,
        (long long)t->cfg->train.steps, l, v, speed, sink);
}

/* Everything measured after `step` updates goes into one metrics line. */
static int log_step(Trainer *t, double loss, float grad_norm, double tok_s, int is_ckpt,
                    int *logged, char *err, size_t n)
{
    const Config *c = t->cfg;
    int64_t s = t->step;
    int do_eval = c->train.eval_every > 0 && (s % c->train.eval_every == 0 || s == c->train.steps);
    int do_probe = t->has_probe && ((c->probe.every > 0 && s % c->probe.every == 0) || is_ckpt ||
                                    s == c->train.steps);
    int heavy = is_ckpt || s == c->train.steps ||
                (c->probe.heavy_every > 0 && s % c->probe.heavy_every == 0);
    int do_log = s == 0 || (c->train.log_every > 0 && s % c->train.log_every == 0) || do_eval ||
                 do_probe || s == c->train.steps;
    *logged = do_log;
    if (!do_log) return 0;
    JsonWriter *w = &t->json;
    jsonw_reset(w);
    jsonw_object_begin(w);
    jsonw_key_int(w, "step", s);
    jsonw_key_int(w, "tokens", t->tokens);
    jsonw_key_number(w, "epoch", dataset_epochs(t->ds, t->tokens));
    if (s > 0) {
        jsonw_key_number(w, "loss", loss);
        jsonw_key_number(w, "lr", optim_lr(&c->train, s - 1));
        jsonw_key_number(w, "grad_norm", grad_norm);
        if (tok_s > 0) jsonw_key_number(w, "tok_per_s", tok_s);
    }
    if (do_eval) {
        t->last_val = evaluate(t);
        t->last_val_step = s;
        t->has_val = 1;
        jsonw_key_number(w, "val_loss", t->last_val);
    }
    if (do_probe) {
        double before = t->probe.seconds;
        probe_run(&t->probe, &t->model, heavy, w);
        /* outside "probe", so analyze's probe object stays comparable with this line's */
        jsonw_key_number(w, "probe_seconds", t->probe.seconds - before);
        if (t->probe.alpha0_valid) remember_probe(t, t->step, t->probe.alpha0);
        t->last_probe_step = s;
    }
    jsonw_object_end(w);
    errno = 0;
    if (jsonw_write_line(w, t->metrics) != 0) {
        snprintf(err, n, "%s/metrics.jsonl: write failed (%s)", t->run_dir,
                 errno ? strerror(errno) : "stream error");
        return -1;
    }
    if (do_eval || do_probe) print_step(t, s > 0 ? loss : NAN, do_eval, do_probe, tok_s);
    return 0;
}

/* ---- the end of a run ---- */

/* RUN/summary.json: the run's totals and onset table, written once the last step is done
 * (atomically), so metrics.jsonl keeps one line shape and a folder with a summary is complete. */
static int write_summary(Trainer *t, char *err, size_t n)
{
    JsonWriter *w = &t->json;
    jsonw_reset(w);
    jsonw_object_begin(w);
    jsonw_key_int(w, "step", t->step);
    jsonw_key_int(w, "tokens", t->tokens);
    jsonw_key_number(w, "train_seconds", t->train_seconds);
    jsonw_key_number(w, "eval_seconds", t->eval_seconds);
    jsonw_key_number(w, "checkpoint_seconds", t->ckpt_seconds);
    if (t->resumed_at >= 0) jsonw_key_int(w, "resumed_at", t->resumed_at);
    if (t->has_probe) {
        jsonw_key_number(w, "probe_seconds", t->probe.seconds);
        if (t->train_seconds > 0)
            jsonw_key_number(w, "probe_overhead", t->probe.seconds / t->train_seconds);
        int LH = t->probe.L * t->probe.H;
        int *onset = xcalloc((size_t)LH, sizeof(int));
        float eps = t->cfg->probe.eps[0];
        onset_find_steps(onset, t->probe_steps, t->probe_alpha0, t->n_probe_rows, LH, eps);
        jsonw_key_object_begin(w, "onset");
        jsonw_key_number(w, "threshold", eps);
        int shape[2] = {t->probe.L, t->probe.H};
        jsonw_key_ints(w, "steps", onset, shape, 2);
        jsonw_object_end(w);
        int n_sink = 0;
        for (int i = 0; i < LH; i++) n_sink += onset[i] >= 0;
        say(t, "onset: %d of %d heads hold alpha0 > %g to the end of the run\n", n_sink, LH, (double)eps);
        free(onset);
    }
    jsonw_object_end(w);
    char path[1200], tmp[1220];
    snprintf(path, sizeof path, "%s/summary.json", t->run_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int ok = f && jsonw_write_line(w, f) == 0;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, n, "%s: cannot write", path);
        return -1;
    }
    return 0;
}

static void teardown(Trainer *t)
{
    if (t->has_probe) probe_free(&t->probe);
    if (t->ds) dataset_free(t->ds);
    batch_free(&t->batch);
    batch_free(&t->val_batch);
    if (t->shards.graph) batch_shards_free(&t->shards);
    if (t->model.blocks) transformer_free(&t->model);
    jsonw_free(&t->json);
    free(t->config_yaml);
    free(t->probe_steps);
    free(t->probe_alpha0);
    if (t->log) fclose(t->log);
    if (t->metrics) fclose(t->metrics);
}

/* A stop signal: the step in hand is finished; save it unless it was just saved. */
static int stop_requested(Trainer *t, char *err, size_t n)
{
    int sig = signals_pending();
    if (!sig) return 0;
    t->interrupted = sig;
    if (t->last_saved != t->step && save_checkpoint(t, err, n) != 0) return -1;
    return 1;
}

static int run_loop(Trainer *t, char *err, size_t n)
{
    const Config *c = t->cfg;
    int logged = 0;
    if (!t->opt->resume) {
        int is_ckpt = ckpt_scheduled(0, c->train.steps, c->checkpoint.every, c->checkpoint.log_spaced);
        if (log_step(t, NAN, 0.0f, 0.0, is_ckpt, &logged, err, n) != 0) return 1;
        if (is_ckpt && save_checkpoint(t, err, n) != 0) return 1;
    }
    double window_time = 0.0;
    int64_t window_tokens = 0;
    double recent = 0.0;
    t->started = now_seconds();
    t->first_step = t->step;
    t->first_tokens = t->tokens;
    while (t->step < c->train.steps) {
        int stop = stop_requested(t, err, n);
        if (stop) return stop < 0 ? 1 : 0;
        float grad_norm = 0.0f;
        int64_t tokens_before = t->tokens;
        double t0 = now_seconds();
        double loss = train_step(t, &grad_norm);
        double dt = now_seconds() - t0;
        if (!isfinite(loss)) {
            char last[1200] = "none";
            char note[64];
            ckpt_find_latest(t->run_dir, last, sizeof last, note, sizeof note, note, sizeof note);
            say(t, "step %lld: the loss or the gradient is not finite (loss %g, grad norm %g); "
                "stopping. The last good checkpoint is %s\n", (long long)t->step + 1, loss,
                (double)grad_norm, last);
            snprintf(err, n, "training diverged at step %lld", (long long)t->step + 1);
            return 1;
        }
        t->train_seconds += dt;
        window_time += dt;
        window_tokens += t->tokens - tokens_before;
        t->step++;
        double tok_s = window_time > 0 ? (double)window_tokens / window_time : 0.0;
        recent = tok_s;
        int is_ckpt = ckpt_scheduled(t->step, c->train.steps, c->checkpoint.every, c->checkpoint.log_spaced);
        if (log_step(t, loss, grad_norm, tok_s, is_ckpt, &logged, err, n) != 0) return 1;
        if (logged) { window_time = 0.0; window_tokens = 0; }
        if (is_ckpt && save_checkpoint(t, err, n) != 0) return 1;
        progress(t, loss, recent);
    }
    /* a run that wrote no checkpoint still replaces the old one when it ends (a signal that
     * arrives after the last step changes nothing: the run is complete) */
    return swap_in(t, err, n) != 0;
}

/* A run killed between a checkpoint's rename and its probe file lost that file: the resumed
 * model is that checkpoint's, so its maps can be written again. */
static int restore_probe_file(Trainer *t, char *err, size_t n)
{
    char maps[1200];
    snprintf(maps, sizeof maps, "%s/probe/step_%07lld.json", t->run_dir, (long long)t->step);
    if (!t->has_probe || access(maps, F_OK) == 0) return 0;
    jsonw_reset(&t->json);
    jsonw_object_begin(&t->json);
    probe_run(&t->probe, &t->model, 1, &t->json);
    jsonw_object_end(&t->json);
    if (probe_write_maps(&t->probe, maps, t->step, err, n) != 0) return -1;
    say(t, "rewrote the missing %s\n", maps);
    return 0;
}

/* Leftovers of a process killed mid-write (.tmp files in checkpoints/, next to config and
 * metrics) are never read; they are removed once the lock is ours. */
static void remove_tmp_files(const char *run_dir)
{
    const char *dirs[2] = {"", "/checkpoints"};
    for (int i = 0; i < 2; i++) {
        char dir[1200], path[1500];
        snprintf(dir, sizeof dir, "%s%s", run_dir, dirs[i]);
        DIR *d = opendir(dir);
        if (!d) continue;
        for (struct dirent *e; (e = readdir(d));) {
            size_t len = strlen(e->d_name);
            if (len > 4 && !strcmp(e->d_name + len - 4, ".tmp")) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                remove(path);
            }
        }
        closedir(d);
    }
}

/* A failure after the run folder opened goes to log.txt too, with its reason. */
static void report_failure(Trainer *t, const char *err)
{
    fprintf(stderr, "sinklab train: %s\n", err);
    if (t->log) {
        fprintf(t->log, "sinklab train: %s\n", err);
        fflush(t->log);
    }
}

static int finish(Trainer *t, char *err, size_t n)
{
    const Config *cfg = t->cfg;
    int rc = 0;
    if (!t->interrupted && write_summary(t, err, n) != 0) {
        report_failure(t, err);
        rc = 1;
    }
    double probe_pct = t->train_seconds > 0 && t->has_probe ? 100.0 * t->probe.seconds / t->train_seconds : 0;
    if (t->interrupted)
        say(t, "interrupted at step %lld (%s); the checkpoint of step %lld is saved, continue with "
            "--resume\n", (long long)t->step, signals_name(t->interrupted), (long long)t->step);
    /* train_seconds covers the whole run, resumed or not (run_timings.h) */
    say(t, "%s: %lld steps, %lld tokens, %.1f s training (%.0f tok/s), probes %.1f%% of "
        "training time\n", t->interrupted ? "stopped" : "done", (long long)t->step,
        (long long)t->tokens, t->train_seconds,
        t->train_seconds > 0 ? (double)t->tokens / t->train_seconds : 0.0, probe_pct);
    if (cfg->output.report) {
        fflush(t->metrics);
        KeyValueList cfg_pairs = {0};
        config_flatten(cfg, &cfg_pairs);
        int report_rc = report_write(t->run_dir, &cfg_pairs, err, n);
        kv_free(&cfg_pairs);
        if (report_rc != 0) {
            say(t, "report: %s\n", err);
            rc = 1;
        } else {
            say(t, "report: %s/report.html\n", t->run_dir);
        }
    }
    if (fflush(t->metrics) != 0 || ferror(t->metrics)) {
        snprintf(err, n, "%s/metrics.jsonl: write failed (%s)", t->run_dir, strerror(errno));
        report_failure(t, err);
        rc = 1;
    }
    return t->interrupted ? 128 + t->interrupted : rc;
}

int trainer_run(const Config *cfg, TrainOptions *opt)
{
    Trainer t;
    memset(&t, 0, sizeof t);
    t.cfg = cfg;
    t.opt = opt;
    t.last_saved = -1;
    snprintf(t.run_dir, sizeof t.run_dir, "%s", opt->run_dir);
    t.tty = isatty(STDOUT_FILENO);
    t.resumed_at = -1;
    t.moments_step = -1;
    signals_install();
    char err[2048] = "";
    /* everything that can fail on bad input (model, corpus, probe set) is checked before the
     * run folder is written */
    int rc = setup(&t, err, sizeof err);
    if (rc == 0) remove_tmp_files(t.run_dir);
    if (rc == 0 && !opt->resume && run_folder_prepare(t.run_dir, 0, cfg, err, sizeof err) != 0)
        rc = 1;
    if (rc == 0 && open_run_files(&t, err, sizeof err) != 0) rc = 1;
    if (rc == 0 && opt->resume && resume_from_checkpoint(&t, err, sizeof err) != 0) rc = 2;
    if (rc == 0 && opt->resume) t.last_saved = t.step;
    if (rc == 0 && opt->resume && restore_probe_file(&t, err, sizeof err) != 0) rc = 1;
    if (rc != 0) {
        report_failure(&t, err);
        teardown(&t);
        return rc;
    }
    record_run_info(&t);
    char desc[512];
    dataset_describe(t.ds, desc, sizeof desc);
    say(&t, "sinklab train: %s | %zu parameters | %d threads | batch in %d shards\n",
        opt->swap_into ? opt->swap_into : opt->run_dir, t.model.params.n, cfg->train.threads,
        t.shards.n);
    say(&t, "data: %s\n", desc);
    warn_slow_blas(&t);
    note_idle_threads(&t);
    char warn[512];
    if (t.has_probe && probe_config_warning(&cfg->probe, &cfg->data, &cfg->model, warn, sizeof warn))
        say(&t, "%s\n", warn);
    rc = run_loop(&t, err, sizeof err);
    if (rc == 0) rc = finish(&t, err, sizeof err);
    else if (err[0]) report_failure(&t, err);
    teardown(&t);
    return rc;
}
