/* cmd_train.c: `sinklab train CONFIG [--set k=v ...] [--out DIR] [--resume] [--force] [--quiet]`.
 * Resolves the config, prepares the run folder (never overwriting an earlier run unless asked)
 * and hands over to the trainer. */
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "data/corpus.h"
#include "train/budget.h"
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
        "  --resume    continue the run in DIR from its newest intact checkpoint\n"
        "  --force     replace an existing run folder (the new run is swapped in at its first\n"
        "              checkpoint; until then the old run stays whole)\n"
        "  --quiet     no console output (log.txt is still written)\n"
        "A run folder has one owner (RUN/.lock); SIGINT/SIGTERM/SIGHUP stop after the current step\n"
        "with a checkpoint (exit 130/143/129). The config's memory is checked against\n"
        "train.memory_limit before anything is allocated.\n");
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

/* The memory the resolved config needs, against train.memory_limit, before any allocation;
 * what is left bounds the corpus text. Shared with `sinklab data`. */
int cli_check_budget(Config *c, const char *cmd)
{
    Budget b;
    char err[1024];
    budget_compute(&b, c);
    if (budget_check(&b, err, sizeof err) != 0) {
        fprintf(stderr, "sinklab %s: %s\n", cmd, err);
        return 2;
    }
    corpus_set_text_cap(budget_corpus_text_cap(&b));
    return 0;
}

static int check_folder(const char *dir, int exists, int resume, int force)
{
    if (resume && !exists) {
        fprintf(stderr, "sinklab train: %s: no run to resume\n", dir);
        return 2;
    }
    if (exists && !resume && !run_folder_is_run(dir)) {
        fprintf(stderr, "sinklab train: %s is not a run folder (no config.yaml, metrics.jsonl "
                "or checkpoints/); %s\n", dir, force ? "--force will not remove it" :
                "choose another --out");
        return 2;
    }
    return 0;
}

/* Under the folder's lock: the state seen before locking may have changed (another process
 * created the run meanwhile), so it is checked again. A new run writes the folder directly; a
 * --force run is built in a locked sibling and swapped in at its first checkpoint; a --resume of
 * a folder without any checkpoint starts again from step 0 (nothing was lost). */
static int train_locked(const Config *cfg, const char *dir, int existed, int resume, int force,
                        int quiet)
{
    char err[1400];
    RunLock lock, stage_lock = {.fd = -1};
    int created = !existed;
    if (created && run_folder_make(dir) != 0) {
        fprintf(stderr, "sinklab train: %s: cannot create the run folder (%s)\n", dir, strerror(errno));
        return 1;
    }
    if (run_folder_lock(&lock, dir, err, sizeof err) != 0) {
        fprintf(stderr, "sinklab train: %s\n", err);
        return 2;
    }
    int has_run = run_folder_has_marks(dir);
    if (!resume && !force && has_run) {
        fprintf(stderr, "sinklab train: %s already exists; use --resume to continue it or "
                "--force to replace it\n", dir);
        run_folder_unlock(&lock);
        return 2;
    }
    run_folder_clean_stale(dir);
    TrainOptions opt = {.run_dir = dir, .resume = resume, .quiet = quiet};
    if (resume && !run_folder_has_checkpoint(dir)) {
        fprintf(stderr, "sinklab train: %s has no checkpoint yet; starting it from step 0\n", dir);
        opt.resume = 0;
    }
    char staged[1200];
    if (force && has_run) {
        if (run_folder_stage(dir, staged, sizeof staged, &stage_lock, err, sizeof err) != 0) {
            fprintf(stderr, "sinklab train: %s\n", err);
            run_folder_unlock(&lock);
            return 1;
        }
        opt.run_dir = staged;
        opt.swap_into = dir;
    }
    int rc = trainer_run(cfg, &opt);
    /* a replacement that never reached its first checkpoint leaves the old run as it was */
    if (opt.swap_into && !opt.swapped) run_folder_remove(staged);
    if (created && rc != 0 && !run_folder_has_marks(dir))
        run_folder_remove(dir);
    run_folder_unlock(&stage_lock);
    run_folder_unlock(&lock);
    return rc;
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
    if ((rc = cli_check_budget(&cfg, "train"))) return rc;
    struct stat st;
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "sinklab train: %s exists and is not a folder; expected a run folder "
                "(--out names the folder to write)\n", dir);
        return 2;
    }
    int exists = run_folder_exists(dir);
    if ((rc = check_folder(dir, exists, resume, force))) return rc;
    return train_locked(&cfg, dir, exists, resume, force, quiet);
}
