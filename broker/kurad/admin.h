/* The admin API on admin.sock (root only): whois, status, and every operation kuractl offers,
 * run on kurad's open vault. Touches plaintext: values arrive and leave in guarded buffers. */
#pragma once

#include <stddef.h>

#include <microhttpd.h>

#include "identity.h"
#include "keeper.h"
#include "recorder.h"
#include "custody.h"

/* What the admin API works on (not owned). */
struct kura_admin {
	const char *state_dir;
	size_t n_runtimes;
	struct kura_keeper *keeper;
	struct kura_vault *vault; /* the keeper's: only between kura_keeper_hold and _release */
	struct kura_resolver *resolver;
	struct kura_recorder *rec;
	struct kura_custody *custody; /* the front's counters, for status */
};

/* libmicrohttpd's callbacks for admin.sock (cls: the struct kura_admin). */
enum MHD_Result kura_admin_handler(void *cls, struct MHD_Connection *c, const char *url,
	const char *method, const char *version, const char *upload_data, size_t *upload_data_size,
	void **req_cls);
void kura_admin_notify(void *cls, struct MHD_Connection *c, void **socket_context,
	enum MHD_ConnectionNotificationCode code);
/* Frees what the handler kept for a request (its body, wiped). */
void kura_admin_completed(void *cls, struct MHD_Connection *c, void **req_cls,
	enum MHD_RequestTerminationCode code);
