/* cmd_reproduce.c: `sinklab reproduce CLAIM|all`: for each claim file, write the sweep of the
 * chosen scale, run it through `sinklab sweep` (finished runs are reused, interrupted ones
 * resumed), run the claim's intervention on each run's final checkpoint through
 * `sinklab analyze`, decide the verdict and write REPORT.md and report.html. */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "analysis/claim.h"
#include "analysis/claim_report.h"
#include "analysis/json.h"
#include "analysis/runset.h"
#include "base/check.h"
#include "base/files.h"
#include "train/commands.h"
#include "train/config_flat.h"
#include "train/sweep.h"

extern char **environ;

#define MAX_CLAIMS 32
#define PATH_CAP 4096

typedef struct {
    const char *target, *scale, *out, *claims_dir, *emit;
    int jobs, no_run;
} ReproduceArgs;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sinklab reproduce CLAIM|all [--scale micro|tiny|small] [--jobs N] [--emit slurm] [--no-run]\n"
            "                         [--out DIR] [--claims DIR]\n"
            "  CLAIM       a claim id (C2), a list (C2,C10,C15) or a claim file; all = every\n"
            "              configs/claims/C*.yaml\n"
            "  --scale     the claim files' scale to run (default tiny)\n"
            "  --jobs N    local runs at once (default 1; threads are split between them)\n"
            "  --emit slurm  write each claim's SLURM array (sinklab sweep --emit slurm) and report\n"
            "              what has finished so far; run reproduce again once the arrays are done\n"
            "  --no-run    train nothing: decide and report from the runs that exist (the rest count\n"
            "              as not finished)\n"
            "  --out DIR   default runs/reproduce/SCALE; runs live in DIR/ID/runs, the report in DIR\n"
            "  --claims DIR  where claim files are (default: configs/claims of this source tree)\n");
}

static int parse_args(ReproduceArgs *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->scale = "tiny";
    a->jobs = 1;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) { usage(stdout); return 0; }
        int has = i + 1 < argc;
        if (!strcmp(s, "--scale") && has) a->scale = argv[++i];
        else if (!strcmp(s, "--out") && has) a->out = argv[++i];
        else if (!strcmp(s, "--claims") && has) a->claims_dir = argv[++i];
        else if (!strcmp(s, "--emit") && has) a->emit = argv[++i];
        else if (!strcmp(s, "--no-run")) a->no_run = 1;
        else if (!strcmp(s, "--jobs") && has) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 256) {
                fprintf(stderr, "sinklab reproduce: --jobs: expected an integer in [1, 256], got '%s'\n", argv[i]);
                return 2;
            }
            a->jobs = (int)v;
        } else if (s[0] == '-') {
            fprintf(stderr, "sinklab reproduce: unknown option or missing value '%s'\n", s);
            usage(stderr);
            return 2;
        } else if (!a->target) a->target = s;
        else {
            fprintf(stderr, "sinklab reproduce: unexpected argument '%s'\n", s);
            return 2;
        }
    }
    if (!a->target) { usage(stderr); return 2; }
    if (a->emit && strcmp(a->emit, "slurm")) {
        fprintf(stderr, "sinklab reproduce: --emit: expected slurm, got '%s'\n", a->emit);
        return 2;
    }
    return -1;
}

/* out = a/b; -1 when it does not fit (a path that long is refused, never cut). */
static int path_join(char *out, size_t n, const char *a, const char *b)
{
    int k = snprintf(out, n, "%s/%s", a, b);
    return k < 0 || (size_t)k >= n ? -1 : 0;
}

/* The source tree this binary was built from: the folder above build/ with configs/claims. */
static void default_claims_dir(char *out, size_t n)
{
    char exe[PATH_CAP];
    if (files_self_exe(exe, sizeof exe) == 0) {
        for (int up = 0; up < 2; up++) {
            char *slash = strrchr(exe, '/');
            if (slash) *slash = 0;
        }
        struct stat st;
        if (!path_join(out, n, exe, "configs/claims") && !stat(out, &st) && S_ISDIR(st.st_mode))
            return;
    }
    snprintf(out, n, "configs/claims");
}

static int claim_number(const char *name)
{
    return name[0] == 'C' ? atoi(name + 1) : 1000;
}

static int by_claim_number(const void *a, const void *b)
{
    return claim_number(*(char *const *)a) - claim_number(*(char *const *)b);
}

/* Paths of the claim files the target names (sorted C1, C2, ..., C15). */
static int list_claims(const char *target, const char *dir, char paths[][PATH_CAP], int max)
{
    struct stat st;
    if (strstr(target, ".yaml") || strchr(target, '/')) {
        snprintf(paths[0], PATH_CAP, "%s", target);
        return 1;
    }
    if (strcmp(target, "all")) {
        /* one id or a comma-separated list: C2,C10,C15 */
        char ids[512];
        int n = 0;
        snprintf(ids, sizeof ids, "%s", target);
        for (char *id = strtok(ids, ","); id && n < max; id = strtok(NULL, ",")) {
            if (snprintf(paths[n], PATH_CAP, "%s/%s", dir, id) >= PATH_CAP - 6) return -1;
            strcat(paths[n], ".yaml");
            if (stat(paths[n], &st)) {
                fprintf(stderr, "sinklab reproduce: no claim %s (looked for %s)\n", id, paths[n]);
                return -1;
            }
            n++;
        }
        return n ? n : -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "sinklab reproduce: %s: cannot open the claims folder: %s\n", dir, strerror(errno));
        return -1;
    }
    char *names[MAX_CLAIMS];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] != 'C' || l < 6 || strcmp(e->d_name + l - 5, ".yaml")) continue;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_claim_number);
    for (int i = 0; i < n; i++) {
        if (snprintf(paths[i], PATH_CAP, "%s/", dir) < PATH_CAP - 256) strncat(paths[i], names[i], 255);
        free(names[i]);
    }
    if (!n) fprintf(stderr, "sinklab reproduce: %s: no claim files C*.yaml\n", dir);
    return n ? n : -1;
}

/* Runs argv (our own binary) and waits; output goes to this process's stdout/stderr, or to log. */
static int run(char *const argv[], const char *log)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (log) {
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    }
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) return -1;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int expected_runs(const char *runs_dir)
{
    char path[PATH_CAP], err[512];
    JsonDoc doc;
    if (path_join(path, sizeof path, runs_dir, "sweep.json") ||
        json_parse_file(&doc, path, err, sizeof err))
        return -1;
    int n = (int)json_num_or(json_get(doc.root, "runs"), -1);
    json_free(&doc);
    return n;
}

/* One run's value of the claim's metric: "loss" is the loss over the shared targets, anything
 * else a reduction of its probe object. */
static double run_value(const JsonValue *run, const char *metric)
{
    if (!strcmp(metric, "loss")) return json_num_or(json_get(run, "loss"), NAN);
    return claim_reduce_probe(json_get(run, "probe"), metric);
}

static const JsonValue *find_spec(const JsonValue *list, const char *spec)
{
    for (int i = 0; i < json_len(list); i++) {
        const JsonValue *s = json_get(json_at(list, i), "spec");
        if (s && s->type == JSON_STRING && !strcmp(s->str, spec)) return json_at(list, i);
    }
    return NULL;
}

/* The claim's metric changed by its intervention on run r's final checkpoint, against the
 * unmodified model (or against claim.reference): analyze writes interventions.json with every
 * run's metrics on the same probe sequences. NaN when missing. */
static double intervention_delta(const char *bin, const Claim *c, const RunData *r, const char *out)
{
    char spec[300], ref[300], log[PATH_CAP], path[PATH_CAP], err[512];
    snprintf(spec, sizeof spec, "%s", c->intervention);
    snprintf(ref, sizeof ref, "%s", c->reference);
    if (snprintf(log, sizeof log, "%s.log", out) >= (int)sizeof log ||
        path_join(path, sizeof path, out, "interventions.json"))
        return NAN;
    /* the run's final checkpoint: checkpoints/latest names it */
    char latest_path[PATH_CAP], ckdir[PATH_CAP], name[256] = "", ckpt[PATH_CAP];
    if (path_join(ckdir, sizeof ckdir, r->dir, "checkpoints") ||
        path_join(latest_path, sizeof latest_path, ckdir, "latest"))
        return NAN;
    FILE *lf = fopen(latest_path, "r");
    if (!lf) return NAN;
    if (!fgets(name, sizeof name, lf)) name[0] = 0;
    fclose(lf);
    name[strcspn(name, "\n")] = 0;
    if (!name[0] || path_join(ckpt, sizeof ckpt, ckdir, name)) return NAN;
    char *argv[] = {(char *)bin, "analyze", ckpt, "--intervene", spec, "--out", (char *)out,
                    "--force", ref[0] ? "--intervene" : NULL, ref, NULL};
    JsonDoc doc;
    /* a finished analysis of the same checkpoint is reused */
    if (json_parse_file(&doc, path, err, sizeof err) != 0) {
        if (run(argv, log) != 0) return NAN;
        if (json_parse_file(&doc, path, err, sizeof err) != 0) return NAN;
    }
    const JsonValue *ck = json_at(json_get(doc.root, "checkpoints"), 0);
    const JsonValue *list = json_get(ck, "interventions");
    const JsonValue *it = find_spec(list, spec);
    const JsonValue *base = ref[0] ? find_spec(list, ref) : json_get(ck, "baseline");
    double d = NAN;
    /* against the baseline, the loss change is over the targets both runs score */
    if (it && !ref[0] && !strcmp(c->metric, "loss")) d = json_num_or(json_get(it, "delta_loss"), NAN);
    else if (it && base) d = run_value(it, c->metric) - run_value(base, c->metric);
    json_free(&doc);
    return d;
}

static void git_commit(char *out, size_t n, const char *claims_dir)
{
    char cmd[PATH_CAP + 64];
    snprintf(cmd, sizeof cmd, "git -C '%s' rev-parse --short HEAD 2>/dev/null", claims_dir);
    FILE *p = popen(cmd, "r");
    snprintf(out, n, "unknown");
    if (!p) return;
    if (fgets(out, (int)n, p)) out[strcspn(out, "\n")] = 0;
    else snprintf(out, n, "unknown");
    if (pclose(p) != 0) snprintf(out, n, "unknown (not a git checkout)");
}

/* Sweep, interventions and verdict of one claim. Returns the sweep's exit code (failed runs). */
static int reproduce_one(const ReproduceArgs *a, const char *bin, const char *out_root, Claim *c,
                         ClaimResult *res)
{
    const ClaimScale *scale = claim_scale(c, a->scale);
    char dir[PATH_CAP], sweep_path[PATH_CAP], runs_dir[PATH_CAP];
    if (path_join(dir, sizeof dir, out_root, c->id) ||
        path_join(sweep_path, sizeof sweep_path, dir, "sweep.yaml") ||
        path_join(runs_dir, sizeof runs_dir, dir, "runs") || files_mkdirs(dir)) {
        fprintf(stderr, "sinklab reproduce: %s: cannot create: %s\n", dir, strerror(errno));
        return -1;
    }
    FILE *f = fopen(sweep_path, "w");
    if (!f || claim_write_sweep(c, scale, runs_dir, f) || fclose(f)) {
        fprintf(stderr, "sinklab reproduce: %s: cannot write\n", sweep_path);
        return -1;
    }
    char jobs[16];
    snprintf(jobs, sizeof jobs, "%d", a->jobs);
    printf("== %s: %s (scale %s)\n", c->id, c->title, a->scale);
    fflush(stdout);
    int rc = 0;
    if (a->no_run) {
        printf("   (--no-run: deciding from the runs that exist)\n");
    } else if (a->emit) {
        char *argv[] = {(char *)bin, "sweep", sweep_path, "--out", runs_dir, "--emit", "slurm", NULL};
        rc = run(argv, NULL);
    } else {
        char *argv[] = {(char *)bin, "sweep", sweep_path, "--out", runs_dir, "--jobs", jobs, NULL};
        rc = run(argv, NULL);
    }
    RunSet rs;
    memset(&rs, 0, sizeof rs);
    rs.read_config = config_flatten_run;
    char err[PATH_CAP];
    int unreadable = runset_add(&rs, runs_dir, err, sizeof err) != 0;
    if (unreadable) fprintf(stderr, "sinklab reproduce: %s\n", err);
    runset_finish(&rs);
    double *deltas = xcalloc((size_t)rs.n + 1, sizeof *deltas);
    for (int i = 0; i < rs.n; i++) {
        deltas[i] = NAN;
        if (c->test != CLAIM_INTERVENTION || !rs.runs[i].complete) continue;
        char sub[PATH_CAP], out[PATH_CAP];
        if (path_join(sub, sizeof sub, dir, "interventions") ||
            path_join(out, sizeof out, sub, rs.runs[i].name) || files_mkdirs(sub))
            continue;
        deltas[i] = intervention_delta(bin, c, &rs.runs[i], out);
    }
    /* the sweep file says how many runs the claim needs, whether or not they exist */
    int n_expected = expected_runs(runs_dir);
    Sweep sw;
    char serr[512];
    if (sweep_load(&sw, sweep_path, serr, sizeof serr) == 0) {
        n_expected = sweep_count(&sw);
        sweep_free(&sw);
    }
    claim_decide(c, &rs, deltas, n_expected > 0 ? n_expected : rs.n, res);
    /* runs after an unreadable one were never read: no verdict from the rest */
    if (unreadable) {
        res->verdict = VERDICT_INCONCLUSIVE;
        snprintf(res->reason, sizeof res->reason, "a run could not be read, so the claim is not decided: %.400s", err);
    }
    printf("   %s: %s\n", VERDICT_NAMES[res->verdict], res->reason);
    free(deltas);
    runset_free(&rs);
    return rc;
}

int cmd_reproduce(int argc, char **argv)
{
    ReproduceArgs a;
    int rc = parse_args(&a, argc, argv);
    if (rc >= 0) return rc;
    char claims_dir[PATH_CAP], out_root[PATH_CAP], bin[PATH_CAP];
    if (a.claims_dir) snprintf(claims_dir, sizeof claims_dir, "%s", a.claims_dir);
    else default_claims_dir(claims_dir, sizeof claims_dir);
    if (a.out) snprintf(out_root, sizeof out_root, "%s", a.out);
    else snprintf(out_root, sizeof out_root, "runs/reproduce/%s", a.scale);
    if (files_self_exe(bin, sizeof bin)) {
        fprintf(stderr, "sinklab reproduce: cannot find its own binary (/proc/self/exe)\n");
        return 1;
    }

    static char paths[MAX_CLAIMS][PATH_CAP];
    int n = list_claims(a.target, claims_dir, paths, MAX_CLAIMS);
    if (n < 0) return 2;
    Claim *claims = xcalloc((size_t)n, sizeof *claims);
    ClaimResult *results = xcalloc((size_t)n, sizeof *results);
    char err[PATH_CAP];
    /* Every claim file is read and checked before anything runs. */
    for (int i = 0; i < n; i++) {
        if (claim_load(&claims[i], paths[i], err, sizeof err)) {
            fprintf(stderr, "sinklab reproduce: %s\n", err);
            free(claims);
            free(results);
            return 2;
        }
        if (!claim_scale(&claims[i], a.scale)) {
            fprintf(stderr, "sinklab reproduce: %s: no scale '%s' (the file's scales:", paths[i], a.scale);
            for (int s = 0; s < claims[i].n_scales; s++) fprintf(stderr, " %s", claims[i].scales[s].name);
            fprintf(stderr, ")\n");
            free(claims);
            free(results);
            return 2;
        }
    }
    if (files_mkdirs(out_root)) {
        fprintf(stderr, "sinklab reproduce: %s: cannot create: %s\n", out_root, strerror(errno));
        free(claims);
        free(results);
        return 1;
    }
    int failed = 0;
    for (int i = 0; i < n; i++)
        if (reproduce_one(&a, bin, out_root, &claims[i], &results[i]) != 0) failed++;

    char commit[128], date[64], command[PATH_CAP], machine[64];
    git_commit(commit, sizeof commit, claims_dir);
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    size_t k = (size_t)snprintf(command, sizeof command, "sinklab reproduce");
    for (int i = 0; i < argc && k < sizeof command; i++)
        k += (size_t)snprintf(command + k, sizeof command - k, " %s", argv[i]);
    snprintf(machine, sizeof machine, "%ld cores", sysconf(_SC_NPROCESSORS_ONLN));
    ReproduceInfo info = {a.scale, command, commit, date, machine};
    rc = 0;
    if (claim_report_write(out_root, &info, claims, results, n, err, sizeof err)) {
        fprintf(stderr, "sinklab reproduce: %s\n", err);
        rc = 1;
    } else {
        printf("%s/REPORT.md\n%s/report.html\n", out_root, out_root);
    }
    if (failed) {
        fprintf(stderr, "sinklab reproduce: %d claim(s) had runs that failed (see their sweep logs)\n", failed);
        rc = 1;
    }
    free(claims);
    free(results);
    return rc;
}
