/* settings.h: a command's settings as one table: each setting's default,
 * environment variable, flag and help. Sources, later ones winning:
 * defaults, the config file (--config FILE or <PREFIX>_CONFIG; lines
 * "name = value", '#' comments), the environment, the flags. `--help`
 * prints the table. Used by every `vectron` subcommand that runs a
 * daemon (serve, pd, worker, gateway). */
#ifndef VT_VECTRON_SETTINGS_H
#define VT_VECTRON_SETTINGS_H

#include <stddef.h>
#include <stdio.h>

enum vt_setting_kind { VT_SET_STR, VT_SET_INT, VT_SET_LONG };

typedef struct vt_setting {
	const char *name;  /* file key; the flag is --name with '-' for '_' */
	const char *env;
	int kind;          /* enum vt_setting_kind: char[], int, long long */
	size_t off, size;  /* where in the command's config struct */
	const char *def;
	long long lo, hi;  /* numbers: the allowed range */
	const char *help;
} vt_setting;

/* A string setting `n` of struct type T, and a number (kind VT_SET_INT or
 * VT_SET_LONG) in lo..hi. */
#define VT_SET_S(T, n, e, d, h)                                               \
	{#n, e, VT_SET_STR, offsetof(T, n), sizeof(((T *)0)->n), d, 0, 0, h}
#define VT_SET_N(T, n, e, k, d, lo, hi, h)                                    \
	{#n, e, k, offsetof(T, n), 0, d, lo, hi, h}

typedef struct vt_settings {
	const char *command;     /* "serve": for messages and usage */
	const char *intro;       /* what the command does, for --help */
	const char *config_env;  /* "VECTRON_CONFIG" */
	const vt_setting *table;
	size_t n;
} vt_settings;

/* Fills `cfg` (the struct the table describes) with defaults, then the
 * file, environment and argv (argv[0] is the subcommand). Returns 0, 1
 * when --help was printed, or -1 with the reason on stderr. */
int vt_settings_load(const vt_settings *s, void *cfg, int argc, char **argv);

/* Fills `cfg` with the defaults alone (a command run as part of another
 * one). 0, or -1 if a default does not parse (a bug in the table). */
int vt_settings_defaults(const vt_settings *s, void *cfg);

/* Prints the usage and the table with each setting's current value. */
void vt_settings_print(const vt_settings *s, const void *cfg, FILE *out);

#endif
