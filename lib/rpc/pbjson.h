/* pbjson.h: protobuf-c messages <-> JSON, driven by the message
 * descriptors, for the REST API: a REST body is the gRPC request message
 * in JSON with the proto field names. Not the canonical proto3 JSON
 * mapping: it follows docs/api.md (enums as lower-case names, 64-bit
 * integers as numbers, "payload" and "filter" as JSON objects). */
#ifndef VT_RPC_PBJSON_H
#define VT_RPC_PBJSON_H

#include <protobuf-c/protobuf-c.h>

#include "base/arena.h"
#include "base/error.h"
#include "rpc/json.h"

/* Decodes the JSON object `v` into a new message of type `desc` allocated
 * in `a` (with its proto2 defaults). Rules: keys are proto field names;
 * null means absent; unknown keys are refused; numbers must fit the field
 * (integers for integer fields); enums are names, case-insensitive, with
 * or without the type prefix ("cosine", "COSINE"), or numbers; repeated
 * fields are arrays; string fields whose JSON value is an object or array
 * take its JSON text (payloads, filters). Errors: VT_EINVAL with the path,
 * e.g. "points[2].vector[5]: expected a number, got a string",
 * "search.tpo_k: unknown field", VT_ENOMEM. */
VT_API int vt_pbjson_decode(const vt_json_value *v,
			    const ProtobufCMessageDescriptor *desc,
			    vt_arena *a, ProtobufCMessage **out,
			    vt_errmsg *err);

/* Writes `msg` as a JSON object: every present field (optional ones with
 * their has_ flag or pointer set, lists of messages or strings always
 * ([] when empty), lists of numbers when not empty, and
 * scalars with a [default] when set), enums as lower-case names without
 * the type prefix, string fields named in docs/api.md as JSON ("payload")
 * inserted as JSON, not as strings. */
VT_API void vt_pbjson_encode(const ProtobufCMessage *msg, vt_json_writer *w);

/* Sets string field `name` of `msg` (a path parameter of a REST route).
 * VT_ENOENT if the message has no such string field. `value` must live as
 * long as the message. */
VT_API int vt_pbjson_set_string(ProtobufCMessage *msg, const char *name,
				char *value);

#endif
