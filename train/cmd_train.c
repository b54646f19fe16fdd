/* cmd_train.c: `sinklab train CONFIG [--set k=v ...] [--out DIR] [--resume] [--force] [--quiet]`.
 * Resolves the config, prepares the run folder (never overwriting an earlier run unless asked)
 * and hands over to the trainer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include "train/commands.h"
#include "train/config.h"
#include "train/run_folder.h"
#include "train/trainer.h"

#define MAX_SETS 128

static void usage(FILE *f)
{
    fprintf(f,
        "usage: sinklab train CONFIG.yaml [--set key.path=value ...] [--out DIR] [--resume] [--force] [--quiet]\n"
        "\n"
        "Trains the model CONFIG describes and writes a run folder (default runs/<config name>):\n"
        "config.yaml (resolved), metrics.jsonl, log.txt, checkpoints/, probe/, report.html.\n"
        "  --set k=v   override any config key (same dotted names as the YAML), repeatable\n"
        "  --out DIR   the run folder\n"
        "  --resume    continue the run in DIR from its newest intact checkpoint (a run folder\n"
        "              with no checkpoint yet is started from step 0)\n"
        "  --force     replace an existing run folder\n"
        "  --quiet     no console output (log.txt is still written)\n");
}

/* Loads CONFIG, applies the --set overrides in order, validates. Shared with `sinklab data`. */
int cli_load_config(Config *c, const char *path, char **sets, int n_sets, const char *cmd)
{
    char err[1024];
    config_defaults(c);
    if (config_load(c, path, err, sizeof err) != 0) {
        fprintf(stderr, "sinklab %s: %s\n", cmd, err);
        return 2;
    }
    for (int i = 0; i < n_sets; i++)
        if (config_set(c, sets[i], err, sizeof err) != 0) {
            fprintf(stderr, "sinklab %s: %s\n", cmd, err);   /* err names the --set */
            return 2;
        }
    if (config_validate(c, err, sizeof err) != 0) {
        fprintf(stderr, "sinklab %s: %s\n", cmd, err);
        return 2;
    }
    return 0;
}

/* Whether DIR/checkpoints holds any step_*.ckpt (intact or not: a damaged one is reported by the
 * resume, never silently restarted over). */
static int has_checkpoint(const char *dir)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/checkpoints", dir);
    DIR *d = opendir(path);
    if (!d) return 0;
    int found = 0;
    long long s;
    for (struct dirent *e; !found && (e = readdir(d));)
        found = sscanf(e->d_name, "step_%lld.ckpt", &s) == 1;
    closedir(d);
    return found;
}

int cmd_train(int argc, char **argv)
{
    const char *config_path = NULL, *out = NULL;
    char *sets[MAX_SETS];
    int n_sets = 0, resume = 0, force = 0, quiet = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--set") || !strcmp(a, "--out")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sinklab train: %s needs a value\n", a);
                return 2;
            }
            if (!strcmp(a, "--out")) out = argv[++i];
            else if (n_sets < MAX_SETS) sets[n_sets++] = argv[++i];
        } else if (!strncmp(a, "--set=", 6) && n_sets < MAX_SETS) {
            sets[n_sets++] = (char *)a + 6;
        } else if (!strcmp(a, "--resume")) {
            resume = 1;
        } else if (!strcmp(a, "--force")) {
            force = 1;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (a[0] == '-') {
            fprintf(stderr, "sinklab train: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!config_path) {
            config_path = a;
        } else {
            fprintf(stderr, "sinklab train: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!config_path) {
        usage(stderr);
        return 2;
    }
    if (resume && force) {
        fprintf(stderr, "sinklab train: --resume and --force exclude each other\n");
        return 2;
    }
    static Config cfg;
    int rc = cli_load_config(&cfg, config_path, sets, n_sets, "train");
    if (rc) return rc;
    char dir[sizeof cfg.output.dir];
    if (out) snprintf(dir, sizeof dir, "%s", out);
    else config_run_dir(&cfg, dir, sizeof dir);
    memcpy(cfg.output.dir, dir, sizeof dir);

    if (!dir[0]) {
        fprintf(stderr, "sinklab train: --out needs a folder name\n");
        return 2;
    }
    int exists = run_folder_exists(dir);
    if (resume && !exists) {
        fprintf(stderr, "sinklab train: %s: no run to resume\n", dir);
        return 2;
    }
    /* a run folder prepared (sweep) or interrupted before its first checkpoint: nothing to
     * continue from, so --resume starts it, which lets a requeued job always pass --resume */
    if (resume && exists && !has_checkpoint(dir) && run_folder_is_run(dir)) {
        if (!quiet) printf("sinklab train: %s has no checkpoint yet; starting the run\n", dir);
        resume = 0;
        force = 1;
    }
    if (exists && !resume) {
        if (!force) {
            fprintf(stderr, "sinklab train: %s already exists; use --resume to continue it or "
                    "--force to replace it\n", dir);
            return 2;
        }
        if (!run_folder_is_run(dir)) {
            fprintf(stderr, "sinklab train: %s is not a run folder (no config.yaml, metrics.jsonl "
                    "or checkpoints/); --force will not remove it\n", dir);
            return 2;
        }
    }
    /* the trainer replaces or creates the folder only once the run can start (corpus, probe set
     * and model checked), so a failing --force never destroys the earlier run */
    TrainOptions opt = {.run_dir = dir, .resume = resume, .replace = exists && force, .quiet = quiet};
    return trainer_run(&cfg, &opt);
}
