/* common.c: the benchmark drivers' shared machine accounting and JSON
 * writers (see common.h). */
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

void vt_bench_cpu_model(char *out, size_t cap)
{
	char line[512];
	snprintf(out, cap, "unknown");
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		char *c = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && c) {
			c++;
			while (*c == ' ')
				c++;
			c[strcspn(c, "\n")] = 0;
			snprintf(out, cap, "%s", c);
			break;
		}
	}
	fclose(f);
}

void vt_bench_command_line(int argc, char **argv, char *out, size_t cap)
{
	size_t off = 0;
	out[0] = 0;
	for (int i = 0; i < argc && off < cap; i++)
		off += (size_t)snprintf(out + off, cap - off, "%s%s", i ? " " : "", argv[i]);
}

double vt_bench_machine_busy_s(void)
{
	unsigned long long v[8] = {0};
	double s = -1;
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return -1;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) == 8) {
		long hz = sysconf(_SC_CLK_TCK);
		s = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)(hz > 0 ? hz : 100);
	}
	fclose(f);
	return s;
}

double vt_bench_others_cpu(double busy0, double busy1, double ours)
{
	if (busy0 < 0 || busy1 < 0)
		return NAN;
	return fmax(0, busy1 - busy0 - ours);
}

double vt_bench_loadavg1(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

double vt_bench_self_cpu_s(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int vt_bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

void vt_bench_rm_rf(const char *prog, const char *dir)
{
	char cmd[2300];
	snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "%s: could not remove %s\n", prog, dir);
}

void vt_bench_json_begin(FILE *f, const char *bench, const char *cmd, const char *cpu,
			 const char *kernel)
{
	fprintf(f, "{\"bench\":\"%s\",\"format\":1,\"command\":", bench);
	vt_bench_json_str(f, cmd);
	fprintf(f, ",\"machine\":{\"cpu\":");
	vt_bench_json_str(f, cpu);
	fprintf(f, ",\"cpus\":%ld,\"kernel\":", sysconf(_SC_NPROCESSORS_ONLN));
	vt_bench_json_str(f, kernel);
}

void vt_bench_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

void vt_bench_json_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.6g", v);
	else
		fprintf(f, "null");
}
