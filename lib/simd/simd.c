/* simd.c: CPU detection and the choice of kernel table, made once.
 * Not a kernel file: it is compiled for baseline x86-64 and only hands out
 * tables whose instructions the CPU and the OS both support. */
#include "simd_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <strings.h>

#include "base/log.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* XCR0 state components the OS must save and restore on a context switch,
 * or the upper register halves are lost (or the instructions fault). */
#define XCR0_SSE (1u << 1)
#define XCR0_AVX (1u << 2)
#define XCR0_OPMASK (1u << 5)
#define XCR0_ZMM_HI256 (1u << 6)
#define XCR0_HI16_ZMM (1u << 7)
#define XCR0_AVX_STATE (XCR0_SSE | XCR0_AVX)
#define XCR0_AVX512_STATE                                                      \
	(XCR0_AVX_STATE | XCR0_OPMASK | XCR0_ZMM_HI256 | XCR0_HI16_ZMM)

static uint64_t read_xcr0(void)
{
	unsigned eax, ebx, ecx, edx;
	/* xgetbv itself faults unless the OS set CR4.OSXSAVE. */
	if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE))
		return 0;
	unsigned lo, hi;
	/* The raw opcode needs no -mxsave, which this file must not have. */
	__asm__ volatile(".byte 0x0f, 0x01, 0xd0" /* xgetbv */
			 : "=a"(lo), "=d"(hi)
			 : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

static int detect(void)
{
	/* __builtin_cpu_supports reports what the CPU implements; whether the
	 * OS enabled the register state is checked separately, because gcc 12
	 * does not check XCR0 for every AVX-512 feature. */
	__builtin_cpu_init();
	uint64_t xcr0 = read_xcr0();
	int os_avx = (xcr0 & XCR0_AVX_STATE) == XCR0_AVX_STATE;
	int os_avx512 = (xcr0 & XCR0_AVX512_STATE) == XCR0_AVX512_STATE;

	if (!os_avx || !__builtin_cpu_supports("avx2") ||
	    !__builtin_cpu_supports("fma"))
		return VT_SIMD_SCALAR;
	if (!os_avx512 || !__builtin_cpu_supports("avx512f") ||
	    !__builtin_cpu_supports("avx512bw") ||
	    !__builtin_cpu_supports("avx512vl") ||
	    !__builtin_cpu_supports("avx512dq"))
		return VT_SIMD_AVX2;
	if (!__builtin_cpu_supports("avx512vnni"))
		return VT_SIMD_AVX512;
	return VT_SIMD_AVX512VNNI;
}
#else
static int detect(void)
{
	return VT_SIMD_SCALAR;
}
#endif

static const vt_simd_ops *const tables[VT_SIMD_LEVELS] = {
	&vt__simd_scalar,
	&vt__simd_avx2,
	&vt__simd_avx512,
	&vt__simd_avx512vnni,
};

static const char *const names[VT_SIMD_LEVELS] = {
	"scalar",
	"avx2",
	"avx512",
	"avx512vnni",
};

static pthread_once_t detect_once = PTHREAD_ONCE_INIT;
static int detected;
static pthread_once_t choose_once = PTHREAD_ONCE_INIT;
static _Atomic(const vt_simd_ops *) chosen;

static void run_detect(void)
{
	detected = detect();
}

int vt_simd_detect(void)
{
	pthread_once(&detect_once, run_detect);
	return detected;
}

const char *vt_simd_level_name(int level)
{
	return level >= 0 && level < VT_SIMD_LEVELS ? names[level] : "?";
}

int vt_simd_level_parse(const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < VT_SIMD_LEVELS; i++)
		if (strcasecmp(name, names[i]) == 0)
			return i;
	return -1;
}

const vt_simd_ops *vt_simd_get(int level)
{
	if (level < 0 || level >= VT_SIMD_LEVELS || level > vt_simd_detect())
		return NULL;
	return tables[level];
}

static void choose(void)
{
	int level = vt_simd_detect();
	const char *env = getenv("VT_SIMD");

	if (env && *env) {
		int cap = vt_simd_level_parse(env);
		if (cap < 0)
			VT_LOG(VT_LOG_WARN, "simd",
			       "VT_SIMD=\"%s\" is not one of scalar, avx2, "
			       "avx512, avx512vnni; ignored, using %s",
			       env, names[level]);
		else if (cap < level)
			level = cap;
	}
	atomic_store_explicit(&chosen, tables[level], memory_order_release);
}

const vt_simd_ops *vt_simd(void)
{
	const vt_simd_ops *ops =
		atomic_load_explicit(&chosen, memory_order_acquire);
	if (ops)
		return ops;
	pthread_once(&choose_once, choose);
	return atomic_load_explicit(&chosen, memory_order_acquire);
}
