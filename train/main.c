/* main.c: the sinklab command line. Dispatches to the subcommands in train/commands.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis/metric_table.h"
#include "analysis/report.h"
#include "train/commands.h"
#include "train/config.h"
#include "train/config_flat.h"

static void usage(FILE *f)
{
    fprintf(f,
        "sinklab %s: train tiny transformers and watch attention sinks emerge\n"
        "\n"
        "usage:\n"
        "  sinklab train CONFIG.yaml [--set key.path=value ...] [--out runs/NAME] [--resume] [--force] [--quiet]\n"
        "  sinklab analyze CHECKPOINT|RUN_DIR [--config probe.yaml] [--set probe.key=value ...] [--out DIR]\n"
        "  sinklab data CONFIG.yaml [--set ...] [--batches N] [--step S] [--split train|val] [--probe] [--json]\n"
        "  sinklab report RUN_DIR       (re)write RUN_DIR/report.html, e.g. for a stopped run\n"
        "  sinklab report RUN_A RUN_B ...   the comparison page of several runs (as compare)\n"
        "  sinklab sweep SWEEP.yaml [--jobs N] [--dry-run] [--out DIR] [--emit slurm] [--submit] [--status]\n"
        "  sinklab compare RUN_OR_SWEEP_DIR... [--by KEY] [--head L.H ...] [--out DIR]   writes DIR/compare.html\n"
        "  sinklab reproduce CLAIM|all [--scale micro|tiny|small] [--jobs N] [--emit slurm] [--out DIR]\n"
        "  sinklab export RUN_OR_SWEEP_DIR... --csv [--out DIR]     writes scalars.csv and heads.csv\n"
        "  sinklab --help | --version | COMMAND --help\n"
        "\n"
        "exit codes: 0 success, 2 bad usage or input, 1 runtime failure, 130/143/129 train stopped\n"
        "by SIGINT/SIGTERM/SIGHUP after saving a checkpoint (continue with --resume); sweep: the\n"
        "number of failed runs (2 for a bad sweep file before any run starts)\n",
        SINKLAB_VERSION);
}

/* OpenMP threads that spin while waiting steal the core from a worker that was descheduled;
 * on a shared 2-core machine 2 threads then ran at 4.3k tok/s against 7.6k with passive waiting
 * (and 6.1k with 1 thread). libgomp reads the policy only at start-up, so unless the user chose
 * one, set it and start again once. */
static void prefer_passive_waiting(char **argv)
{
    if (getenv("OMP_WAIT_POLICY")) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with the default policy */
}

/* `sinklab report RUN_DIR`: the report of a run that stopped early or was resumed elsewhere. */
static int cmd_report(int argc, char **argv)
{
    /* several runs: the comparison page */
    if (argc > 1 && argv[0][0] != '-') return cmd_compare(argc, argv);
    if (argc != 1 || argv[0][0] == '-') {
        fprintf(argc == 1 && !strcmp(argv[0], "--help") ? stdout : stderr,
                "usage: sinklab report RUN_DIR   (writes RUN_DIR/report.html from its metrics)\n"
                "       sinklab report RUN_A RUN_B ... [--by KEY] [--out DIR]   (the comparison page, see compare)\n");
        return argc == 1 && !strcmp(argv[0], "--help") ? 0 : 2;
    }
    char err[1024];
    KeyValueList cfg = {0};
    /* an unreadable config only costs the page its header details */
    if (config_flatten_run(argv[0], &cfg, err, sizeof err) != 0)
        fprintf(stderr, "sinklab report: warning: %s (the header omits the model details)\n", err);
    int rc = report_write(argv[0], &cfg, err, sizeof err);
    kv_free(&cfg);
    if (rc != 0) {
        fprintf(stderr, "sinklab report: %s\n", err);
        return 2;
    }
    printf("%s/report.html\n", argv[0]);
    return 0;
}

int main(int argc, char **argv)
{
    prefer_passive_waiting(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    /* The README's key table is this output, verbatim (tests/test_config.c checks it). */
    if (!strcmp(cmd, "--config-reference")) {
        config_write_reference(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("sinklab %s\n", SINKLAB_VERSION);
        return 0;
    }
    /* hidden: the README's two probe-metric tables (tests/test_metric_table.c compares them) */
    if (!strcmp(cmd, "--metric-reference")) {
        metric_write_reference(stdout, METRIC_TIER_LIGHT);
        putchar('\n');
        metric_write_reference(stdout, METRIC_TIER_HEAVY);
        return 0;
    }
    if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "analyze")) return cmd_analyze(argc - 2, argv + 2);
    if (!strcmp(cmd, "reproduce")) return cmd_reproduce(argc - 2, argv + 2);
    if (!strcmp(cmd, "data")) return cmd_data(argc - 2, argv + 2);
    if (!strcmp(cmd, "report")) return cmd_report(argc - 2, argv + 2);
    if (!strcmp(cmd, "sweep")) return cmd_sweep(argc - 2, argv + 2);
    if (!strcmp(cmd, "compare")) return cmd_compare(argc - 2, argv + 2);
    if (!strcmp(cmd, "export")) return cmd_export(argc - 2, argv + 2);
    fprintf(stderr, "sinklab: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
