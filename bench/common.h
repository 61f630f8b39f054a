/* common.h: what the benchmark drivers (bench_hnsw.c, bench_shard.c,
 * bench_serve.c) share: CPU and load accounting from /proc, the machine
 * description and small JSON writers for their reports. Not a library of
 * the product: Linux only, errors come back as "unknown"/-1/NAN. */
#ifndef VT_BENCH_COMMON_H
#define VT_BENCH_COMMON_H

#include <stddef.h>
#include <stdio.h>

/* The CPU model from /proc/cpuinfo into `out` ("unknown" if unreadable). */
void vt_bench_cpu_model(char *out, size_t cap);

/* `argv` joined by spaces into `out` (truncated to `cap`). */
void vt_bench_command_line(int argc, char **argv, char *out, size_t cap);

/* CPU seconds the whole machine spent busy since boot (/proc/stat: user,
 * nice, system, irq, softirq, steal), to tell how much of a measurement
 * other processes took; -1 if unreadable. */
double vt_bench_machine_busy_s(void);

/* Others' CPU seconds over an interval in which the machine's busy time
 * went from `busy0` to `busy1` and we used `ours`: NAN if either reading
 * failed, never negative. */
double vt_bench_others_cpu(double busy0, double busy1, double ours);

/* The 1-minute load average, -1 if unreadable. */
double vt_bench_loadavg1(void);

/* CPU seconds of this process, all threads (user + system). */
double vt_bench_self_cpu_s(void);

/* qsort comparison for doubles, ascending. */
int vt_bench_cmp_double(const void *a, const void *b);

/* Removes the directory tree `dir` (rm -rf); on failure says so on stderr,
 * prefixed with `prog`. */
void vt_bench_rm_rf(const char *prog, const char *dir);

/* Opens a driver's JSON report: {"bench":`bench`,"format":1,"command":
 * `cmd`,"machine":{"cpu":`cpu`,"cpus":<online CPUs>,"kernel":`kernel`
 * -- the caller adds the rest of the machine object and closes it. */
void vt_bench_json_begin(FILE *f, const char *bench, const char *cmd, const char *cpu,
			 const char *kernel);

/* `s` as a JSON string (quotes, backslashes and control bytes escaped). */
void vt_bench_json_str(FILE *f, const char *s);
/* `v` as a JSON number (%.6g), or null when it is not finite. */
void vt_bench_json_num(FILE *f, double v);

#endif
