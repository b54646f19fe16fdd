/* cmd_sweep.c: `sinklab sweep SWEEP.yaml [--jobs N] [--dry-run] [--out DIR] [--emit slurm]
 * [--submit] [--status]`. Runs a sweep's runs as local processes of this same binary (each a
 * normal `sinklab train ... --resume`), or writes/submits the SLURM job array, or reports states.
 * Exit code: 2 for a bad sweep file, else the number of failed runs (at most 125). */
#define _DEFAULT_SOURCE /* realpath */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "analysis/export.h"
#include "analysis/jsonw.h"
#include "analysis/runset.h"
#include "base/files.h"
#include "train/commands.h"
#include "train/run_folder.h"
#include "train/sweep.h"

extern char **environ;

typedef struct {
    const char *file, *out, *emit;
    int jobs, dry_run, submit, status;
} SweepArgs;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: sinklab sweep SWEEP.yaml [--jobs N] [--dry-run] [--out DIR] [--emit slurm] [--submit] [--status]\n"
        "\n"
        "Expands the sweep file (base config, grid, zip groups, seeds) into run folders DIR/NAME\n"
        "(default DIR: the sweep's out:, else runs/<sweep file name>) and trains them.\n"
        "  --jobs N      N local training processes at once (default 1, at most the core count);\n"
        "                train.threads is set to cores / N so the jobs never oversubscribe the machine\n"
        "  --dry-run     list the runs, their state and how each differs from the base; write nothing\n"
        "  --emit slurm  write DIR/sweep.sbatch (a job array, one task per run) and the run configs\n"
        "  --submit      --emit slurm, then sbatch it and print the job id\n"
        "  --status      each run's state from its folder: done, running, failed, interrupted, not started\n"
        "Complete runs are skipped and interrupted ones resumed. Exit code: the number of failed runs\n"
        "(0 = all complete, at most 125); 2 = bad sweep file or usage (before any run starts).\n");
}

static int parse_args(SweepArgs *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->jobs = 1;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        int has_next = i + 1 < argc;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(s, "--jobs") || !strcmp(s, "--out") || !strcmp(s, "--emit")) {
            if (!has_next) {
                fprintf(stderr, "sinklab sweep: %s needs a value\n", s);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(s, "--out")) a->out = v;
            else if (!strcmp(s, "--emit")) a->emit = v;
            else {
                char *end;
                long j = strtol(v, &end, 10);
                if (*end || j < 1 || j > 256) {
                    fprintf(stderr, "sinklab sweep: --jobs %s: expected an integer from 1 to 256\n", v);
                    return 2;
                }
                a->jobs = (int)j;
            }
        } else if (!strcmp(s, "--dry-run")) a->dry_run = 1;
        else if (!strcmp(s, "--submit")) a->submit = 1;
        else if (!strcmp(s, "--status")) a->status = 1;
        else if (s[0] == '-') {
            fprintf(stderr, "sinklab sweep: unknown option '%s'\n", s);
            usage(stderr);
            return 2;
        } else if (!a->file) a->file = s;
        else {
            fprintf(stderr, "sinklab sweep: unexpected argument '%s'\n", s);
            return 2;
        }
    }
    if (!a->file) {
        usage(stderr);
        return 2;
    }
    if (a->emit && strcmp(a->emit, "slurm")) {
        fprintf(stderr, "sinklab sweep: --emit %s: expected slurm\n", a->emit);
        return 2;
    }
    if (a->submit) a->emit = "slurm";
    if (a->status + a->dry_run + (a->emit != NULL) > 1) {
        fprintf(stderr, "sinklab sweep: --status, --dry-run and --emit/--submit exclude each other\n");
        return 2;
    }
    return -1;
}

/* ---- shared ---- */

static int cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* DIR/summary.jsonl: one line per run, its swept values, seed, state and final metrics. */
static void write_summary(const Sweep *s, const char *dir, const SweepRun *runs, int n)
{
    char path[1400], tmp[1420];
    snprintf(path, sizeof path, "%s/summary.jsonl", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    for (int i = 0; i < n; i++) {
        const char *keys[SWEEP_MAX_AXES * SWEEP_MAX_ZIP_KEYS], *vals[SWEEP_MAX_AXES * SWEEP_MAX_ZIP_KEYS];
        int nk = 0;
        for (int a = 0; a < s->n_axes; a++)
            for (int k = 0; k < s->axes[a].n_keys; k++) {
                keys[nk] = s->axes[a].keys[k];
                vals[nk++] = sweep_value(s, &runs[i], a, k);
            }
        long long step;
        SweepState st = sweep_state(dir, &runs[i], &step);
        long long seed = runs[i].seed_index >= 0 ? s->seeds[runs[i].seed_index] : -1;
        export_summary_line(f, runs[i].name, runs[i].dir, keys, vals, nk, seed, sweep_state_name(st));
    }
    if (fclose(f) == 0) rename(tmp, path);
}

/* DIR/sweep.json: the sweep file and its swept keys in order, so compare and export know which
 * config differences are the experiment (and not values derived from them). */
static void write_manifest(const Sweep *s, const char *dir)
{
    char path[1400], tmp[1420];
    snprintf(path, sizeof path, "%s/sweep.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    JsonWriter w;
    jsonw_init(&w);
    jsonw_object_begin(&w);
    jsonw_key_string(&w, "sweep", s->path);
    jsonw_key_string(&w, "base", s->base);
    jsonw_key_array_begin(&w, "keys");
    for (int a = 0; a < s->n_axes; a++)
        for (int k = 0; k < s->axes[a].n_keys; k++) jsonw_string(&w, s->axes[a].keys[k]);
    if (s->n_seeds) jsonw_string(&w, "train.seed");
    jsonw_array_end(&w);
    jsonw_key_int(&w, "runs", sweep_count(s));
    jsonw_object_end(&w);
    int ok = jsonw_write_line(&w, f) == 0;
    jsonw_free(&w);
    if (fclose(f) == 0 && ok) rename(tmp, path);
    else remove(tmp);
}

/* Expands and resolves every run (so a bad value fails before anything starts). */
static int prepare(const Sweep *s, const char *dir, int threads, SweepRun **runs_out, Config **cfgs_out)
{
    int n = sweep_count(s);
    SweepRun *runs = calloc((size_t)n, sizeof *runs);
    Config *cfgs = calloc((size_t)n, sizeof *cfgs);
    if (!runs || !cfgs) {
        free(runs);
        free(cfgs);
        fprintf(stderr, "sinklab sweep: out of memory for %d runs\n", n);
        return -1;
    }
    char err[2048];
    for (int i = 0; i < n; i++) {
        sweep_run_at(s, i, dir, &runs[i]);
        if (sweep_resolve(s, &runs[i], threads, &cfgs[i], err, sizeof err) != 0) {
            fprintf(stderr, "sinklab sweep: %s\n", err);
            free(runs);
            free(cfgs);
            return -1;
        }
    }
    *runs_out = runs;
    *cfgs_out = cfgs;
    return n;
}

/* Writes the run's resolved config.yaml (creating its folder) unless the run is complete. */
static int write_run_config(const SweepRun *r, const Config *c)
{
    char err[1024];
    if (run_folder_prepare(r->dir, 0, c, err, sizeof err) != 0) {
        fprintf(stderr, "sinklab sweep: %s\n", err);
        return -1;
    }
    return 0;
}

/* ---- --dry-run and --status ---- */

static int dry_run(const Sweep *s, const char *dir, const SweepRun *runs, const Config *cfgs, int n, int threads)
{
    static Config base;
    char err[1024], diff[2048];
    if (sweep_resolve_base(s, &base, err, sizeof err) != 0 || config_validate(&base, err, sizeof err) != 0) {
        fprintf(stderr, "sinklab sweep: %s\n", err);
        return 2;
    }
    printf("sweep %s: %d runs into %s (base %s, train.threads %d)\n", s->path, n, dir, s->base,
           cfgs[0].train.threads);
    (void)threads;
    for (int i = 0; i < n; i++) {
        long long step;
        SweepState st = sweep_state(dir, &runs[i], &step);
        Config a = base, b = cfgs[i];
        /* where a run goes and its threads are the sweep's choices, not the run's differences */
        memcpy(a.output.dir, b.output.dir, sizeof a.output.dir);
        a.train.threads = b.train.threads;
        memcpy(a.source, b.source, sizeof a.source);
        int nd = config_diff(&a, &b, diff, sizeof diff);
        printf("  %-40s %-12s %s\n", runs[i].name, sweep_state_name(st), nd ? diff : "(the base config)");
    }
    return 0;
}

static int status(const Sweep *s, const char *dir, const SweepRun *runs, const Config *cfgs, int n)
{
    int count[5] = {0};
    for (int i = 0; i < n; i++) {
        long long step;
        SweepState st = sweep_state(dir, &runs[i], &step);
        count[st]++;
        char at[64] = "";
        if (st != SWEEP_DONE && step >= 0) snprintf(at, sizeof at, "checkpoint at step %lld of %d", step, cfgs[i].train.steps);
        printf("  %-40s %-12s %s\n", runs[i].name, sweep_state_name(st), at);
    }
    printf("sweep %s: %d runs: %d done, %d running, %d failed, %d interrupted, %d not started\n",
           dir, n, count[SWEEP_DONE], count[SWEEP_RUNNING], count[SWEEP_FAILED],
           count[SWEEP_INTERRUPTED], count[SWEEP_NOT_STARTED]);
    write_summary(s, dir, runs, n);
    return 0;
}

/* ---- --emit slurm / --submit ---- */

/* What running or emitting needs first: this binary's path (the runs call it), DIR/logs and
 * DIR/sweep.json. 0, or 1 after a message. */
static int prepare_sweep_dir(const Sweep *s, const char *dir, char *bin, size_t n_bin)
{
    char logs[1400];
    if (files_self_exe(bin, n_bin) != 0) {
        fprintf(stderr, "sinklab sweep: cannot find this executable's path (/proc/self/exe)\n");
        return 1;
    }
    snprintf(logs, sizeof logs, "%s/logs", dir);
    if (files_mkdirs(logs) != 0) {
        fprintf(stderr, "sinklab sweep: %s: cannot create: %s\n", logs, strerror(errno));
        return 1;
    }
    write_manifest(s, dir);
    return 0;
}

static int emit_slurm(const Sweep *s, const char *dir, const SweepRun *runs, const Config *cfgs, int n, int submit)
{
    char bin[PATH_MAX], err[1024];
    if (prepare_sweep_dir(s, dir, bin, sizeof bin)) return 1;
    for (int i = 0; i < n; i++) {
        long long step;
        if (sweep_state(dir, &runs[i], &step) != SWEEP_DONE && write_run_config(&runs[i], &cfgs[i])) return 1;
    }
    if (sweep_write_sbatch(s, dir, runs, n, bin, err, sizeof err) != 0) {
        fprintf(stderr, "sinklab sweep: %s\n", err);
        return 1;
    }
    printf("%s/sweep.sbatch: a job array of %d tasks (logs in %s/logs)\n", dir, n, dir);
    if (!submit) {
        printf("submit it with: sbatch %s/sweep.sbatch   (or sinklab sweep %s --submit)\n", dir, s->path);
        return 0;
    }
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "sbatch --parsable '%s/sweep.sbatch'", dir);
    FILE *p = popen(cmd, "r");
    char id[128] = "";
    if (p && !fgets(id, sizeof id, p)) id[0] = 0;
    int rc = p ? pclose(p) : -1;
    id[strcspn(id, "\n;")] = 0;
    if (rc != 0 || !id[0]) {
        fprintf(stderr, "sinklab sweep: sbatch failed (is SLURM installed and sbatch on PATH?)\n");
        return 1;
    }
    printf("submitted job %s\n", id);
    return 0;
}

/* ---- local runner ---- */

typedef struct {
    pid_t pid;
    int run;
    double started;
} Slot;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static volatile sig_atomic_t stop_signal;
static void on_stop(int sig) { stop_signal = sig; }

/* SIGINT/SIGTERM to the sweep reach its training processes too (they resume later from their
 * newest checkpoints); no new run starts after one. */
static void forward_stop(const Slot *slots, int jobs)
{
    for (int j = 0; j < jobs; j++)
        if (slots[j].pid > 0) kill(slots[j].pid, SIGTERM);
}

/* `sinklab train RUN/config.yaml --out RUN --resume --quiet`, output into DIR/logs/NAME.log. */
static pid_t start_run(const char *bin, const char *dir, const SweepRun *r)
{
    char cfg[1400], log[1600];
    snprintf(cfg, sizeof cfg, "%s/config.yaml", r->dir);
    snprintf(log, sizeof log, "%s/logs/%s.log", dir, r->name);
    char *argv[] = {(char *)bin, "train", cfg, "--out", (char *)r->dir, "--resume", "--quiet", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? pid : -1;
}

static void finish_run(const char *dir, const SweepRun *r, int code, double seconds, int *done, int total, int *failed)
{
    char text[64];
    snprintf(text, sizeof text, "exit %d", code);
    sweep_write_state(dir, r, text);
    (*done)++;
    if (code == 0) {
        printf("[%d/%d] %s: done (%.1f s)\n", *done, total, r->name, seconds);
    } else {
        (*failed)++;
        printf("[%d/%d] %s: FAILED (exit %d; see %s/logs/%s.log)\n", *done, total, r->name, code, dir, r->name);
    }
    fflush(stdout);
}

static int run_local(const Sweep *s, const char *dir, const SweepRun *runs, const Config *cfgs, int n, int jobs)
{
    char bin[PATH_MAX];
    if (prepare_sweep_dir(s, dir, bin, sizeof bin)) return 1;
    int *pending = calloc((size_t)n, sizeof *pending), n_pending = 0, skipped = 0;
    Slot *slots = calloc((size_t)jobs, sizeof *slots);
    for (int i = 0; i < n; i++) {
        long long step;
        SweepState st = sweep_state(dir, &runs[i], &step);
        if (st == SWEEP_DONE) { skipped++; continue; }
        if (st == SWEEP_RUNNING) {
            printf("%s: another sweep process is running it; left alone\n", runs[i].name);
            continue;
        }
        if (st == SWEEP_INTERRUPTED) printf("%s: resuming from step %lld\n", runs[i].name, step);
        if (st == SWEEP_FAILED && step >= 0) printf("%s: failed before; retrying from step %lld\n", runs[i].name, step);
        if (st == SWEEP_FAILED && step < 0) printf("%s: failed before; retrying\n", runs[i].name);
        pending[n_pending++] = i;
    }
    if (n_pending)
        printf("sweep %s: %d runs, %d complete, %d to train with %d job%s x %d thread%s\n", dir, n, skipped,
               n_pending, jobs, jobs > 1 ? "s" : "", cfgs[pending[0]].train.threads,
               cfgs[pending[0]].train.threads > 1 ? "s" : "");
    else if (skipped == n)
        printf("sweep %s: %d runs, all complete\n", dir, n);
    else
        printf("sweep %s: %d runs, %d complete, none to start\n", dir, n, skipped);
    fflush(stdout);
    int next = 0, running = 0, finished = 0, failed = 0;
    struct sigaction sa = {.sa_handler = on_stop}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int forwarded = 0;
    while ((next < n_pending && !stop_signal) || running > 0) {
        if (stop_signal && !forwarded) {
            forward_stop(slots, jobs);
            forwarded = 1;
        }
        while (running < jobs && next < n_pending && !stop_signal) {
            const SweepRun *r = &runs[pending[next]];
            int slot = 0;
            while (slots[slot].pid) slot++;
            pid_t pid = write_run_config(r, &cfgs[pending[next]]) == 0 ? start_run(bin, dir, r) : -1;
            if (pid < 0) {
                finish_run(dir, r, 127, 0.0, &finished, n_pending, &failed);
            } else {
                char text[64];
                snprintf(text, sizeof text, "running local %d", (int)pid);
                sweep_write_state(dir, r, text);
                slots[slot] = (Slot){.pid = pid, .run = pending[next], .started = now()};
                running++;
            }
            next++;
        }
        if (!running) continue;
        int wst;
        pid_t pid = waitpid(-1, &wst, 0);
        if (pid < 0 && errno == EINTR) continue;
        if (pid < 0) break;
        for (int j = 0; j < jobs; j++) {
            if (slots[j].pid != pid) continue;
            int code = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + (WIFSIGNALED(wst) ? WTERMSIG(wst) : 0);
            if (stop_signal && WIFSIGNALED(wst)) {
                /* stopped on request, not failed: its state falls back to its checkpoints */
                sweep_write_state(dir, &runs[slots[j].run], "stopped");
                printf("%s: stopped\n", runs[slots[j].run].name);
            } else {
                finish_run(dir, &runs[slots[j].run], code, now() - slots[j].started, &finished, n_pending, &failed);
            }
            slots[j].pid = 0;
            running--;
        }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(pending);
    free(slots);
    write_summary(s, dir, runs, n);
    if (stop_signal) {
        printf("sweep %s: stopped by signal %d; run it again to resume\n", dir, (int)stop_signal);
        return 1 + failed > 125 ? 125 : 1 + failed;
    }
    int complete = 0;
    for (int i = 0; i < n; i++) {
        long long step;
        complete += sweep_state(dir, &runs[i], &step) == SWEEP_DONE;
    }
    printf("sweep %s: %d of %d runs complete, %d failed (summary: %s/summary.jsonl)\n", dir,
           complete, n, failed, dir);
    return failed > 125 ? 125 : failed;
}

int cmd_sweep(int argc, char **argv)
{
    SweepArgs a;
    int rc = parse_args(&a, argc, argv);
    if (rc >= 0) return rc;
    static Sweep s;
    char err[2048];
    if (sweep_load(&s, a.file, err, sizeof err) != 0) {
        fprintf(stderr, "sinklab sweep: %s\n", err);
        return 2;
    }
    const char *dir = a.out ? a.out : s.out;
    int n = sweep_count(&s), threads = 0;
    if (a.emit) threads = s.slurm.cpus_per_task[0] ? atoi(s.slurm.cpus_per_task) : 0;
    else if (!a.status) {
        /* more jobs than cores would oversubscribe them whatever the thread count */
        if (a.jobs > cpu_count()) {
            printf("sweep: --jobs %d on %d cores: running %d at once\n", a.jobs, cpu_count(), cpu_count());
            a.jobs = cpu_count();
        }
        /* cores split evenly over the jobs that can run at once */
        int at_once = a.jobs < n ? a.jobs : n;
        threads = cpu_count() / at_once;
        if (threads < 1) threads = 1;
    }
    SweepRun *runs;
    Config *cfgs;
    n = prepare(&s, dir, threads, &runs, &cfgs);
    if (n < 0) {
        sweep_free(&s);
        return 2;
    }
    if (a.dry_run) rc = dry_run(&s, dir, runs, cfgs, n, threads);
    else if (a.status) rc = status(&s, dir, runs, cfgs, n);
    else if (a.emit) rc = emit_slurm(&s, dir, runs, cfgs, n, a.submit);
    else rc = run_local(&s, dir, runs, cfgs, n, a.jobs);
    free(runs);
    free(cfgs);
    sweep_free(&s);
    return rc;
}
