/* SPDX-License-Identifier: MIT */
/*
 * What a person can do when the command-line tools (dirtyctl,
 * dirtyd-migrate) cannot connect to dirtyd: a hint for the errno of
 * dirty_connect(), naming the socket's group and the units.
 */
#ifndef DIRTYD_CLIENTS_HINT_H
#define DIRTYD_CLIENTS_HINT_H

#include <stdio.h>

/** connect_hint() - write "hint: ..." lines for a connection to @path
 *  that failed with @err (negative) to @f; nothing for other errors. */
void connect_hint(FILE *f, const char *path, int err);

#endif
