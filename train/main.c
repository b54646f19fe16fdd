/* main.c: the sinklab command line. Dispatches to the subcommands in train/commands.h. */
#include <stdio.h>
#include <string.h>

#include "train/commands.h"

static void usage(FILE *f)
{
    fprintf(f,
        "sinklab %s: train tiny transformers and watch attention sinks emerge\n"
        "\n"
        "usage:\n"
        "  sinklab train CONFIG.yaml [--set key.path=value ...] [--out runs/NAME] [--resume] [--force]\n"
        "  sinklab analyze CHECKPOINT|RUN_DIR [--config probe.yaml] [--set probe.key=value ...] [--out DIR]\n"
        "  sinklab data CONFIG.yaml [--set ...] [--batches N] [--json]\n"
        "  sinklab --help | --version | COMMAND --help\n"
        "\n"
        "exit codes: 0 success, 2 bad usage or input, 1 runtime failure\n",
        SINKLAB_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("sinklab %s\n", SINKLAB_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "analyze")) return cmd_analyze(argc - 2, argv + 2);
    if (!strcmp(cmd, "data")) return cmd_data(argc - 2, argv + 2);
    fprintf(stderr, "sinklab: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
