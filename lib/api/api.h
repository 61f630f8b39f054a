/* api.h: the public API (proto/vectron/v1/vectron.proto) as one table of
 * methods over decoded protobuf-c messages. Both transports use it: gRPC
 * unpacks a request and calls the method; REST maps its JSON body (and path
 * parameters) onto the same request message first. Every request is
 * validated here, with errors that name the field. Not a transport: no
 * sockets, no JSON; not the routing layer: lib/coll splits and merges. */
#ifndef VT_API_API_H
#define VT_API_API_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/error.h"
#include "coll/coll.h"
#include "vectron/v1/vectron.pb-c.h"

typedef struct vt_api vt_api; /* opaque */

typedef struct vt_api_opts {
	uint32_t default_timeout_ms; /* a request's deadline when the client
					sets none, default 30000 */
	uint32_t max_batch_searches; /* searches in one SearchBatch, 100 */
	const char *version;         /* reported by Health, "dev" */
} vt_api_opts;

VT_API void vt_api_opts_default(vt_api_opts *o);

/* Creates the API over `db` (borrowed: it must outlive the API). */
VT_API int vt_api_create(vt_db *db, const vt_api_opts *o, vt_api **out);
VT_API void vt_api_destroy(vt_api *api);

/* Receives each message of a server stream. Called from a worker thread,
 * one call at a time per request; `msg` is valid only during the call
 * (pack it). Returns 0, or nonzero to stop the stream (client gone). */
typedef int (*vt_api_stream_fn)(void *ud, const ProtobufCMessage *msg);

/* One request in flight. The transport fills it. */
typedef struct vt_api_ctx {
	vt_arena *arena;       /* the request's memory: the response is
				  allocated here and lives until destroy */
	uint64_t deadline_ns;  /* vt_clock_mono_ns() deadline, 0 = default */
	vt_api_stream_fn stream; /* streaming methods only */
	void *stream_ud;
} vt_api_ctx;

typedef int (*vt_api_fn)(vt_api *api, vt_api_ctx *cx,
			 const ProtobufCMessage *req, ProtobufCMessage **resp,
			 vt_errmsg *err);

typedef struct vt_api_method {
	const char *name;      /* "Search": the gRPC method of
				  vectron.v1.VectronService */
	const ProtobufCMessageDescriptor *input, *output;
	vt_api_fn fn;
	int streaming;         /* server-streaming: fn sends every message
				  through cx->stream and sets *resp NULL */
	int index;             /* position in the table, for metrics */
} vt_api_method;

#define VT_API_SERVICE "vectron.v1.VectronService"

/* The table, in a fixed order. */
VT_API const vt_api_method *vt_api_methods(size_t *n);
/* By name ("Search"); NULL if unknown. */
VT_API const vt_api_method *vt_api_method_find(const char *name);

/* Runs `m` on `req` (decoded from m->input) with timing and metrics. On
 * error *resp is NULL and `err` says what was wrong (the field named). */
VT_API int vt_api_call(vt_api *api, const vt_api_method *m, vt_api_ctx *cx,
		       const ProtobufCMessage *req, ProtobufCMessage **resp,
		       vt_errmsg *err);

/* The status a VT_E* code maps to, for both transports (lib/base's one
 * table, vt_err_status_of): http 400, 404, ...; grpc the gRPC code; name
 * "INVALID_ARGUMENT", ... */
typedef vt_err_status vt_api_status;

VT_API vt_api_status vt_api_status_of(int vt_err);

/* A transport reports what it refused before a method ran (bad JSON,
 * body too large, unknown route) so the metrics count it. */
VT_API void vt_api_observe(vt_api *api, const vt_api_method *m, int vt_err,
			   uint64_t ns);

/* Appends the Prometheus text exposition: request counts by method and
 * status, latency histograms, points / index lag / memory / disk per
 * collection. */
VT_API int vt_api_metrics(vt_api *api, vt_buf *out);

/* ProtobufCAllocator backed by an arena, to unpack requests into it. */
VT_API void vt_api_allocator(vt_arena *a, ProtobufCAllocator *out);

#endif
