/* curl_uv: libcurl's multi interface driven by a libuv loop (the only glue
 * between the two; every HTTP client of the agent goes through it).
 *
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: one
 * uv_poll handle per socket, created on first sight and closed when libcurl
 * says CURL_POLL_REMOVE) and when to call it back (CURLMOPT_TIMERFUNCTION:
 * one uv_timer). Both feed curl_multi_socket_action(); finished transfers are
 * collected with curl_multi_info_read() and reported through the transfer's
 * done callback. Connections stay in the multi handle's cache between
 * transfers, so keep-alive and HTTP/2 connection reuse work across easy
 * handles added one after the other.
 *
 * Threads: everything runs on the loop thread that owns the struct; none of
 * these functions may be called from inside libcurl's own callbacks
 * (CURLOPT_WRITEFUNCTION etc.). They may be called from a done callback. */
#ifndef NP_AGENT_CURL_UV_H
#define NP_AGENT_CURL_UV_H

#include "netpulse/err.h"

#include <curl/curl.h>
#include <uv.h>

struct np_curl_uv;

/* Called once per transfer added with np_curl_uv_add(), on the loop thread,
 * when the transfer ended (result CURLE_OK: it completed, look at
 * CURLINFO_RESPONSE_CODE for the HTTP status). By then the easy handle has
 * been removed from the multi handle: the caller owns it again and may
 * curl_easy_cleanup() it or add it again (also from inside the callback). */
typedef void (*np_curl_done_cb)(CURL *easy, CURLcode result, void *ctx);

/* Creates the multi handle and its timer on loop (borrowed; must outlive the
 * struct). Calls curl_global_init() (reference counted by libcurl). On
 * success *out is freed with np_curl_uv_free(); on error *out is NULL.
 * Errors: NP_EHTTP (libcurl init failed), -ENOMEM, negative uv codes. Loop
 * thread, or before the loop runs. */
int np_curl_uv_new(uv_loop_t *loop, struct np_curl_uv **out, struct np_err *err);

/* Starts the transfer set up on easy (borrowed for the transfer's duration:
 * the caller must not touch or free it until cb ran or it was cancelled).
 * cb is called exactly once, never from inside this call. ctx is passed back
 * untouched. Returns 0; -EINVAL (NULL argument, or easy already added),
 * -ESHUTDOWN (np_curl_uv_free() was called), -ENOMEM, NP_EHTTP (libcurl
 * refused the handle). On error cb will not be called. */
int np_curl_uv_add(struct np_curl_uv *cu, CURL *easy, np_curl_done_cb cb, void *ctx);

/* Stops the transfer on easy if it is running: it is removed from the multi
 * handle, its callback will not be called, and the caller owns easy again
 * when this returns. Does nothing when easy is not running here. */
void np_curl_uv_cancel(struct np_curl_uv *cu, CURL *easy);

/* Number of transfers running. */
unsigned np_curl_uv_running(const struct np_curl_uv *cu);

/* Cancels every running transfer (no callbacks; their easy handles go back
 * to their owners), cleans up the multi handle (closing its cached
 * connections) and closes the libuv handles; the memory goes in the last
 * uv_close callback, so run the loop afterwards. Accepts NULL. Called from a
 * done callback, the teardown happens when the callback returns. */
void np_curl_uv_free(struct np_curl_uv *cu);

#endif
