/* signals.h: clean stops. SIGINT, SIGTERM and SIGHUP ask the trainer to finish its step, save a
 * checkpoint and exit 128 + signal; a second one ends the process at once (every file the run
 * writes is replaced by rename, so nothing is left half-written that a resume would read).
 * SIGXFSZ is ignored so an exceeded `ulimit -f` becomes a write error with a message. */
#ifndef SINKLAB_SIGNALS_H
#define SINKLAB_SIGNALS_H

void signals_install(void);
/* The first stop signal received (SIGINT, SIGTERM, SIGHUP), or 0. */
int signals_pending(void);
/* "SIGTERM" */
const char *signals_name(int sig);

#endif
