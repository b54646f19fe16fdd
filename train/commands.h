/* commands.h: the sinklab subcommands. Each takes the arguments after its name and returns the
 * process exit code: 0 success, 2 bad usage or input (message names the file/key), 1 runtime
 * failure. */
#ifndef SINKLAB_COMMANDS_H
#define SINKLAB_COMMANDS_H

int cmd_train(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_demo(int argc, char **argv);

#endif
