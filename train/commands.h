/* commands.h: the sinklab subcommands. Each takes the arguments after its name and returns the
 * process exit code: 0 success, 2 bad usage or input (message names the file/key), 1 runtime
 * failure. */
#ifndef SINKLAB_COMMANDS_H
#define SINKLAB_COMMANDS_H

#include "train/config.h"

int cmd_train(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_reproduce(int argc, char **argv);

/* Loads CONFIG over the defaults, applies --set overrides in order and validates; prints the
 * error and returns 2 on bad input, 0 on success. cmd names the subcommand in messages. */
int cli_load_config(Config *c, const char *path, char **sets, int n_sets, const char *cmd);
/* Checks the config's memory against train.memory_limit (exit code 2 with a message, or 0) and
 * sets the corpus text cap from what is left. */
int cli_check_budget(Config *c, const char *cmd);

#endif
