/* cmd.h: the placement driver's command format: one metadata change as bytes
 * that sit in the PD's Raft log and are applied by vt_pd_apply (meta.h).
 * Version 1, little-endian; str8/str16 = u8/u16 length then bytes:
 *
 *   header             u8 version (1), u8 type, u16 flags (0)
 *   REGISTER_WORKER    u64 worker, str16 addr, u64 capacity, str8 zone,
 *                      str8 rack, u8 role
 *   SET_WORKER_STATE   u64 worker, u8 state
 *   CREATE_COLLECTION  str8 name, u32 config_len, config, u32 shard_count,
 *                      u8 rf, then shard_count x { u8 n, n x { u64 worker,
 *                      u8 replica_role } }   (the initial placement)
 *   DROP_COLLECTION    str8 name
 *   ADD_REPLICA        str8 name, u32 shard, u64 expect_epoch, u64 worker,
 *                      u8 replica_role
 *   REMOVE_REPLICA     str8 name, u32 shard, u64 expect_epoch, u64 worker
 *   PROMOTE            str8 name, u32 shard, u64 expect_epoch, u64 worker,
 *                      u8 replica_role   (voter <-> nonvoter)
 *   SET_LEADER         str8 name, u32 shard, u64 worker (0 = unknown),
 *                      u64 term
 *
 * expect_epoch: 0 = unconditional; otherwise the shard's epoch must equal it
 * (the planner's fence against a plan made on older metadata).
 * Decoding checks framing, enums and limits (every length against what is
 * left, no trailing bytes, one encoding per command); vt_pd_apply checks
 * meaning (workers exist, names are free...). */
#ifndef VT_PD_CMD_H
#define VT_PD_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"

#define VT_PD_CMD_VERSION 1u

enum vt_pd_cmd_type {
	VT_PD_CMD_REGISTER_WORKER = 1,
	VT_PD_CMD_SET_WORKER_STATE = 2,
	VT_PD_CMD_CREATE_COLLECTION = 3,
	VT_PD_CMD_DROP_COLLECTION = 4,
	VT_PD_CMD_ADD_REPLICA = 5,
	VT_PD_CMD_REMOVE_REPLICA = 6,
	VT_PD_CMD_PROMOTE = 7,
	VT_PD_CMD_SET_LEADER = 8,
};

/* One replica of CREATE_COLLECTION's placement. */
typedef struct vt_pd_slot {
	uint32_t shard; /* ascending, every shard of 0..shard_count-1 */
	uint64_t worker;
	uint8_t role;   /* enum vt_pd_replica_role */
} vt_pd_slot;

/* A command, decoded or to encode. Fields a type does not use are 0/NULL.
 * Decoded: string and config pointers borrow the input bytes (which must
 * outlive the command) and are not NUL-terminated; `slots` is owned by the
 * command (vt_pd_cmd_release). To encode: the caller owns everything. */
typedef struct vt_pd_cmd {
	int type;
	uint64_t worker;
	const char *addr;
	uint32_t addr_len;
	uint64_t capacity;
	const char *zone, *rack;
	uint32_t zone_len, rack_len;
	uint8_t role;  /* worker role, or replica role (ADD_REPLICA, PROMOTE) */
	uint8_t state; /* SET_WORKER_STATE */
	const char *name;
	uint32_t name_len;
	const uint8_t *config;
	uint32_t config_len;
	uint32_t shard_count; /* CREATE_COLLECTION */
	uint32_t rf;          /* CREATE_COLLECTION */
	uint32_t shard;       /* replica commands and SET_LEADER */
	uint64_t expect_epoch;
	uint64_t term;        /* SET_LEADER */
	uint32_t n_slots;     /* CREATE_COLLECTION */
	vt_pd_slot *slots;
} vt_pd_cmd;

/* Decodes `len` bytes into `cmd` (which borrows them). Errors: VT_EVERSION,
 * VT_EINVAL (unknown type, flag or enum value, empty name), VT_ELIMIT (a
 * cap of meta.h), VT_ECORRUPT (truncated or trailing bytes), VT_ENOMEM;
 * the message names the field. On error nothing needs releasing. */
VT_API int vt_pd_cmd_decode(const void *p, size_t len, vt_pd_cmd *cmd,
			    vt_errmsg *err);

/* Frees what decode allocated (NULL-safe, idempotent). */
VT_API void vt_pd_cmd_release(vt_pd_cmd *cmd);

/* Appends the encoding of `cmd` to `out`. Checks what the format can carry
 * (lengths, enums, slots in shard order): VT_EINVAL/VT_ELIMIT with the
 * field named in `err`; vt_buf errors. A decoded command re-encodes to the
 * same bytes. */
VT_API int vt_pd_cmd_encode(const vt_pd_cmd *cmd, vt_buf *out,
			    vt_errmsg *err);

/* "register_worker", ..., "set_leader", or "?". */
VT_API const char *vt_pd_cmd_type_name(int type);

#endif
