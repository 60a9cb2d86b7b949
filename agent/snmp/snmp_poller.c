/* snmp_poller: net-snmp single sessions on the libuv loop. See snmp_poller.h. */
#include "snmp_poller.h"

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/library/large_fd_set.h>

#include "snmp_internal.h"

#include "agent_config.h"

#include "netpulse/clock.h"
#include "netpulse/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Hard limits on what one device may make us hold. */
#define MAX_ROWS 65536    /* ifTable rows per device */
#define MAX_ROUNDS 20000  /* requests per poll */
#define MAX_VARBINDS 4096 /* per reply */
/* A walked instance: the longest column OID (ifXTable, 11 sub-ids) plus the
 * ifIndex; walk_reply accepts nothing longer. Not MAX_OID_LEN (128): that
 * costs 13 KiB per poll in progress. */
#define COL_OID_MAX 12
#define MAX_ENGINE_ID 32      /* RFC 3411 SnmpEngineID: 5..32 octets */
#define POOL_KEEP_ROWS 512    /* a pooled walk keeps row arrays up to this size */

/* The ifTable/ifXTable columns walked in parallel. */
enum col {
    C_DESCR,
    C_TYPE,
    C_SPEED,
    C_ADMIN,
    C_OPER,
    C_IN32,
    C_OUT32,
    C_NAME,
    C_HCIN,
    C_HCOUT,
    C_HIGHSPEED,
    C_ALIAS,
    C_DISC,
    N_COLS
};

#define IFTABLE 1, 3, 6, 1, 2, 1, 2, 2, 1
#define IFXTABLE 1, 3, 6, 1, 2, 1, 31, 1, 1, 1
static const struct {
    oid o[11];
    size_t len;
} col_oid[N_COLS] = {
    [C_DESCR] = {{IFTABLE, 2}, 10},       [C_TYPE] = {{IFTABLE, 3}, 10},
    [C_SPEED] = {{IFTABLE, 5}, 10},       [C_ADMIN] = {{IFTABLE, 7}, 10},
    [C_OPER] = {{IFTABLE, 8}, 10},        [C_IN32] = {{IFTABLE, 10}, 10},
    [C_OUT32] = {{IFTABLE, 16}, 10},      [C_NAME] = {{IFXTABLE, 1}, 11},
    [C_HCIN] = {{IFXTABLE, 6}, 11},       [C_HCOUT] = {{IFXTABLE, 10}, 11},
    [C_HIGHSPEED] = {{IFXTABLE, 15}, 11}, [C_ALIAS] = {{IFXTABLE, 18}, 11},
    [C_DISC] = {{IFXTABLE, 19}, 11},
};

/* Scalars asked as GETNEXT of their object (so the reply carries x.0). */
enum sysvar { S_UPTIME, S_DESCR, S_OBJID, S_NAME, N_SYS };
static const oid sys_oid[N_SYS][8] = {
    [S_UPTIME] = {1, 3, 6, 1, 2, 1, 1, 3},
    [S_DESCR] = {1, 3, 6, 1, 2, 1, 1, 1},
    [S_OBJID] = {1, 3, 6, 1, 2, 1, 1, 2},
    [S_NAME] = {1, 3, 6, 1, 2, 1, 1, 5},
};

struct row {
    uint32_t if_index;
    uint32_t have; /* 1u << col */
    char *descr, *name, *alias;
    int type, admin, oper;
    uint32_t speed, high_speed, disc;
    uint64_t in32, out32, hcin, hcout;
    uint32_t round[N_COLS]; /* which reply carried each column */
};

struct round {
    int64_t mono_ms, wall_ms;
    uint64_t uptime_cs;
};

/* What is kept of one interface between polls. 64 bytes with the key in the
 * target's key pool: 10,000 interfaces hold 0.7 MiB, where a struct of two
 * np_counter_reading plus a strdup'ed key per interface held 1.6 MiB. */
struct ifstate {
    int64_t in_time_ms, out_time_ms;
    uint64_t in_value, out_value;
    uint32_t key; /* offset in the target's keys */
    int32_t oper, admin;
    uint32_t in_uptime_cs, out_uptime_cs; /* sysUpTime: TimeTicks, 32 bits */
    uint32_t disc_cs;
    uint8_t width_bits; /* 0: no counters */
    bool has_disc;
};

/* SNMPv3 state that outlives a session: the password-derived keys (RFC 3414
 * A.2: a megabyte of hashing each, so done once) and the discovered engine ID.
 * The engine's boots and time stay in net-snmp's process-wide LCD cache
 * (lcd_time.c) and the localised user in its USM user list; snmp_sess_close()
 * touches neither (USM registers no session_close). A session reopened with
 * the engine ID set and SNMP_FLAGS_DONT_PROBE re-localises the keys from it
 * (create_user_from_session in snmp_sess_add_ex) and goes straight to the
 * walk: no discovery per poll. */
struct v3_cache {
    u_char auth_ku[USM_AUTH_KU_LEN], priv_ku[USM_PRIV_KU_LEN];
    size_t auth_ku_len, priv_ku_len;
    u_char engine_id[MAX_ENGINE_ID];
    size_t engine_id_len; /* 0: not discovered (yet, or again after an engine error) */
};

enum phase { PH_IDLE, PH_PROBE, PH_WALK };

/* One poll in progress. The poller holds min(snmp_max_concurrent, targets)
 * of these and lends one to a target for the length of a poll: the net-snmp
 * session (socket, request list, sent PDUs kept for retransmission) and the
 * rows exist only while the target is polled, so memory and sockets follow
 * the concurrency cap, not the number of targets. */
struct walk {
    struct np_snmp_poller *p;
    struct target *t; /* NULL while free */
    bool closing;     /* poll handle closing: not free until its close callback */
    void *sessp;
    uv_poll_t poll;
    bool poll_active; /* poll initialised, not yet closed */
    netsnmp_large_fd_set fdset;
    bool fdset_init;
    int64_t deadline_ms; /* loop time of net-snmp's next timeout; -1: none */
    enum phase phase;
    bool completed; /* finished inside a net-snmp callback; delivered after it returns */
    int reqid;
    int sec_error; /* SNMPERR_* from a SEC_ERROR callback not yet explained */
    int max_rep;
    bool first_round;
    bool col_done[N_COLS];
    oid col_last[N_COLS][COL_OID_MAX];
    size_t col_last_len[N_COLS];
    int sent_cols[N_COLS];
    size_t n_sent;
    size_t n_nonrep;
    struct row *rows;
    size_t n_rows, cap_rows;
    uint32_t *slot; /* open addressing: row index + 1, 0 empty */
    size_t n_slots;
    struct round *rounds;
    size_t n_rounds, cap_rounds;
    char sys_name[NP_SNMP_MAX_STRING + 1], sys_descr[NP_SNMP_MAX_STRING + 1], sys_oid[160];
    uint64_t sys_uptime_cs;
    int64_t started_ms;
    enum np_snmp_failure failure;
    char detail[700];
};

/* One configured device: only what lasts between polls. */
struct target {
    struct np_snmp_poller *p;
    const struct np_snmp_target_conf *conf;
    char *peer;          /* net-snmp transport address, resolved once; NULL: open_error */
    char *open_error;    /* why no session can be opened, reported by every poll */
    struct v3_cache *v3; /* v3 targets only */
    uv_timer_t sched;
    bool sched_started;
    bool queued;  /* waiting for a free walk */
    bool in_once; /* counted in the poller's pending once-poll */
    struct target *next_queued;
    struct walk *walk; /* the poll in progress, or NULL */
    struct ifstate *prev;
    size_t n_prev;
    char *keys; /* the keys of prev, NUL-terminated one after another */
    struct np_complain complain;
};

struct np_snmp_poller {
    uv_loop_t *loop;
    struct np_snmp_callbacks cb;
    void *ctx;
    struct np_snmp_target_conf *confs;
    struct target *t;
    size_t n;
    struct walk *walks; /* n_walks = min(snmp_max_concurrent, n), at least 1 */
    size_t n_walks;
    size_t in_flight; /* walks lent out or closing */
    struct target *queue_head, *queue_tail;
    size_t queued;
    bool pumping;
    struct np_snmp_poller_stats stats;
    uv_timer_t timeout_timer;
    size_t pending_handles; /* handles still to close before the memory goes */
    size_t once_pending;
    void (*once_done)(struct np_snmp_poller *, void *);
    bool freeing;
};

const char *np_snmp_failure_name(enum np_snmp_failure f)
{
    switch (f) {
    case NP_SNMP_OK:
        return "ok";
    case NP_SNMP_TIMEOUT:
        return "timeout";
    case NP_SNMP_AUTH_FAILURE:
        return "authentication-failure";
    case NP_SNMP_UNKNOWN_USER:
        return "unknown-user";
    case NP_SNMP_UNKNOWN_ENGINE:
        return "unknown-engine";
    case NP_SNMP_NOT_IN_TIME_WINDOW:
        return "not-in-time-window";
    case NP_SNMP_DECRYPTION_ERROR:
        return "decryption-error";
    case NP_SNMP_UNSUPPORTED_SECLEVEL:
        return "unsupported-security-level";
    case NP_SNMP_NO_SUCH_OBJECT:
        return "no-such-object";
    case NP_SNMP_PROTOCOL_ERROR:
        return "protocol-error";
    case NP_SNMP_SEND_FAILED:
        return "send-failed";
    case NP_SNMP_TOO_BIG:
        return "too-big";
    }
    return "unknown";
}

static enum np_snmp_failure failure_of_snmperr(int e)
{
    switch (e) {
    case SNMPERR_TIMEOUT:
        return NP_SNMP_TIMEOUT;
    case SNMPERR_AUTHENTICATION_FAILURE:
        return NP_SNMP_AUTH_FAILURE;
    case SNMPERR_UNKNOWN_USER_NAME:
        return NP_SNMP_UNKNOWN_USER;
    case SNMPERR_UNKNOWN_ENG_ID:
        return NP_SNMP_UNKNOWN_ENGINE;
    case SNMPERR_NOT_IN_TIME_WINDOW:
        return NP_SNMP_NOT_IN_TIME_WINDOW;
    case SNMPERR_DECRYPTION_ERR:
        return NP_SNMP_DECRYPTION_ERROR;
    case SNMPERR_UNSUPPORTED_SEC_LEVEL:
        return NP_SNMP_UNSUPPORTED_SECLEVEL;
    default:
        return NP_SNMP_PROTOCOL_ERROR;
    }
}

static void library_init(void)
{
    static bool done;
    if (done) {
        return;
    }
    done = true;
    /* No snmp.conf, no persistent state under /var/lib/snmp, no MIB parsing:
     * the poller works on numeric OIDs and its own config only. */
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_LOAD_HOST_FILES, 1);
    setenv("MIBS", "", 0);
    snmp_disable_log();
    init_snmp("netpulse-agent");
}

/* ---- rows ---------------------------------------------------------------- */

static void rows_reset(struct walk *w)
{
    for (size_t i = 0; i < w->n_rows; i++) {
        free(w->rows[i].descr);
        free(w->rows[i].name);
        free(w->rows[i].alias);
    }
    w->n_rows = 0;
    if (w->slot) {
        memset(w->slot, 0, w->n_slots * sizeof *w->slot);
    }
    w->n_rounds = 0;
}

static size_t slot_of(uint32_t if_index, size_t n_slots)
{
    return (size_t)((if_index * 2654435761u) & (uint32_t)(n_slots - 1));
}

static int rehash(struct walk *w, size_t n_slots)
{
    uint32_t *s = calloc(n_slots, sizeof *s);
    if (!s) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < w->n_rows; i++) {
        size_t k = slot_of(w->rows[i].if_index, n_slots);
        while (s[k]) {
            k = (k + 1) & (n_slots - 1);
        }
        s[k] = (uint32_t)i + 1;
    }
    free(w->slot);
    w->slot = s;
    w->n_slots = n_slots;
    return 0;
}

static struct row *row_get(struct walk *w, uint32_t if_index)
{
    if (w->n_slots) {
        size_t k = slot_of(if_index, w->n_slots);
        while (w->slot[k]) {
            struct row *r = &w->rows[w->slot[k] - 1];
            if (r->if_index == if_index) {
                return r;
            }
            k = (k + 1) & (w->n_slots - 1);
        }
    }
    if (w->n_rows >= MAX_ROWS) {
        return NULL;
    }
    if (w->n_rows == w->cap_rows) {
        size_t cap = w->cap_rows ? w->cap_rows * 2 : 64;
        struct row *r = realloc(w->rows, cap * sizeof *r);
        if (!r) {
            return NULL;
        }
        w->rows = r;
        w->cap_rows = cap;
    }
    if ((w->n_rows + 1) * 2 > w->n_slots && rehash(w, w->n_slots ? w->n_slots * 2 : 128) != 0) {
        return NULL;
    }
    struct row *r = &w->rows[w->n_rows];
    memset(r, 0, sizeof *r);
    r->if_index = if_index;
    size_t k = slot_of(if_index, w->n_slots);
    while (w->slot[k]) {
        k = (k + 1) & (w->n_slots - 1);
    }
    w->slot[k] = (uint32_t)w->n_rows + 1;
    w->n_rows++;
    return r;
}

static char *dup_text(const netsnmp_variable_list *v)
{
    char buf[NP_SNMP_MAX_STRING + 1];
    size_t len = v->val_len > NP_SNMP_MAX_STRING ? NP_SNMP_MAX_STRING : v->val_len;
    np_snmp_text(buf, sizeof buf, v->val.string, len);
    return strdup(buf);
}

static bool get_u64(const netsnmp_variable_list *v, uint64_t *out)
{
    switch (v->type) {
    case ASN_COUNTER64: {
        const struct counter64 *c = v->val.counter64;
        *out = ((uint64_t)(c->high & 0xFFFFFFFFu) << 32) | (c->low & 0xFFFFFFFFu);
        return true;
    }
    case ASN_COUNTER:
    case ASN_GAUGE:
    case ASN_TIMETICKS:
    case ASN_UINTEGER:
        *out = (uint64_t)(*v->val.integer & 0xFFFFFFFFul);
        return true;
    case ASN_INTEGER:
        *out = (uint64_t)(uint32_t)*v->val.integer;
        return true;
    default:
        return false;
    }
}

/* Stores one column value; false when its type is wrong (skipped, not fatal). */
static bool store(struct walk *w, struct row *r, enum col c, const netsnmp_variable_list *v)
{
    uint64_t u = 0;
    bool is_str = v->type == ASN_OCTET_STR;
    if (c == C_DESCR || c == C_NAME || c == C_ALIAS) {
        if (!is_str) {
            return false;
        }
        char **dst = c == C_DESCR ? &r->descr : c == C_NAME ? &r->name : &r->alias;
        free(*dst);
        *dst = dup_text(v);
        if (!*dst) {
            return false;
        }
    } else {
        if (!get_u64(v, &u)) {
            return false;
        }
        bool want64 = c == C_HCIN || c == C_HCOUT;
        if (want64 != (v->type == ASN_COUNTER64)) {
            return false; /* a 32-bit value in a 64-bit column (or back) is not trusted */
        }
        switch (c) {
        case C_TYPE:
            r->type = (int)u;
            break;
        case C_SPEED:
            r->speed = (uint32_t)u;
            break;
        case C_ADMIN:
            r->admin = (int)u;
            break;
        case C_OPER:
            r->oper = (int)u;
            break;
        case C_IN32:
            r->in32 = u;
            break;
        case C_OUT32:
            r->out32 = u;
            break;
        case C_HCIN:
            r->hcin = u;
            break;
        case C_HCOUT:
            r->hcout = u;
            break;
        case C_HIGHSPEED:
            r->high_speed = (uint32_t)u;
            break;
        case C_DISC:
            r->disc = (uint32_t)u;
            break;
        default:
            return false;
        }
    }
    r->have |= 1u << c;
    r->round[c] = (uint32_t)(w->n_rounds - 1);
    return true;
}

/* ---- io plumbing --------------------------------------------------------- */

static void arm_timeout_timer(struct np_snmp_poller *p);
static void deliver(struct walk *w);
static void walk_end(struct walk *w);
static void pump(struct np_snmp_poller *p);
static int snmp_cb(int op, netsnmp_session *sess, int reqid, netsnmp_pdu *pdu, void *magic);

static void fail(struct walk *w, enum np_snmp_failure f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refresh_deadline(struct walk *w)
{
    w->deadline_ms = -1;
    if (!w->sessp) {
        return;
    }
    int numfds = 0, block = 1;
    struct timeval tv = {0, 0};
    snmp_sess_select_info2(w->sessp, &numfds, &w->fdset, &tv, &block);
    if (!block) {
        uint64_t ms = (uint64_t)tv.tv_sec * 1000 + ((uint64_t)tv.tv_usec + 999) / 1000;
        w->deadline_ms = (int64_t)(uv_now(w->p->loop) + ms);
    }
}

/* After every entry into net-snmp for w: deliver what finished and give the
 * walk back, or recompute the deadline. Results are delivered here, outside
 * net-snmp's callback, so user callbacks never run inside the library and the
 * session can be closed. */
static void after_io(struct walk *w)
{
    if (w->sec_error && w->phase != PH_IDLE) {
        int e = w->sec_error;
        fail(w, failure_of_snmperr(e), "%s", snmp_api_errstring(e));
    }
    w->sec_error = 0;
    if (w->completed) {
        w->completed = false;
        deliver(w);
        if (!w->p->freeing) {
            walk_end(w);
        }
        return;
    }
    refresh_deadline(w);
    arm_timeout_timer(w->p);
}

static void fail(struct walk *w, enum np_snmp_failure f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->detail, sizeof w->detail, fmt, ap);
    va_end(ap);
    w->failure = f;
    w->completed = true;
    w->phase = PH_IDLE;
    struct v3_cache *v3 = w->t->v3;
    if (v3 && (f == NP_SNMP_UNKNOWN_ENGINE || f == NP_SNMP_NOT_IN_TIME_WINDOW)) {
        v3->engine_id_len = 0; /* a replaced or rebooted engine: discover it again */
    }
}

static void session_error(void *sessp, char *buf, size_t len)
{
    char *s = NULL;
    int liberr = 0, syserr = 0;
    snmp_sess_error(sessp, &syserr, &liberr, &s);
    snprintf(buf, len, "%s", s ? s : "unknown net-snmp error");
    free(s);
}

static bool send_pdu(struct walk *w, netsnmp_pdu *pdu)
{
    w->reqid = snmp_sess_async_send(w->sessp, pdu, snmp_cb, w);
    if (w->reqid == 0) {
        char why[200];
        session_error(w->sessp, why, sizeof why);
        snmp_free_pdu(pdu);
        fail(w, NP_SNMP_SEND_FAILED, "%s", why);
        return false;
    }
    return true;
}

static void send_probe(struct walk *w)
{
    /* RFC 3414 4: an unauthenticated request with an empty user and engine ID
     * draws a Report carrying the authoritative engine ID, boots and time. */
    netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GET);
    if (!pdu) {
        fail(w, NP_SNMP_SEND_FAILED, "out of memory");
        return;
    }
    pdu->version = SNMP_VERSION_3;
    pdu->securityName = strdup("");
    pdu->securityNameLen = 0;
    pdu->securityLevel = SNMP_SEC_LEVEL_NOAUTH;
    pdu->securityModel = SNMP_SEC_MODEL_USM;
    w->p->stats.discoveries++;
    w->phase = PH_PROBE;
    send_pdu(w, pdu);
}

static void send_walk(struct walk *w)
{
    bool v1 = w->t->conf->version == NP_SNMP_V1;
    netsnmp_pdu *pdu = snmp_pdu_create(v1 ? SNMP_MSG_GETNEXT : SNMP_MSG_GETBULK);
    if (!pdu) {
        fail(w, NP_SNMP_SEND_FAILED, "out of memory");
        return;
    }
    w->n_nonrep = w->first_round ? N_SYS : 1;
    for (size_t i = 0; i < w->n_nonrep; i++) {
        snmp_add_null_var(pdu, sys_oid[i], 8);
    }
    w->n_sent = 0;
    for (int c = 0; c < N_COLS; c++) {
        if (!w->col_done[c]) {
            w->sent_cols[w->n_sent++] = c;
            snmp_add_null_var(pdu, w->col_last[c], w->col_last_len[c]);
        }
    }
    if (!v1) {
        pdu->non_repeaters = (long)w->n_nonrep;
        pdu->max_repetitions = w->max_rep;
    }
    w->phase = PH_WALK;
    send_pdu(w, pdu);
}

static void on_readable(uv_poll_t *h, int status, int events);

/* The security part of a v3 session from the target's config and cache. */
static void session_v3(const struct target *t, netsnmp_session *ss)
{
    const struct np_snmp_settings *s = t->conf->s;
    const struct v3_cache *v3 = t->v3;
    ss->flags |= SNMP_FLAGS_DONT_PROBE; /* we discover the engine asynchronously */
    ss->securityModel = SNMP_SEC_MODEL_USM;
    ss->securityName = s->user;
    ss->securityNameLen = strlen(s->user);
    if (s->context[0]) {
        ss->contextName = s->context;
        ss->contextNameLen = strlen(s->context);
    }
    ss->securityLevel = t->conf->priv != NP_SNMP_PRIV_NONE   ? SNMP_SEC_LEVEL_AUTHPRIV
                        : t->conf->auth != NP_SNMP_AUTH_NONE ? SNMP_SEC_LEVEL_AUTHNOPRIV
                                                             : SNMP_SEC_LEVEL_NOAUTH;
    if (v3->engine_id_len) {
        ss->securityEngineID = (u_char *)v3->engine_id;
        ss->securityEngineIDLen = v3->engine_id_len;
    }
    if (t->conf->auth != NP_SNMP_AUTH_NONE) {
        oid *a = usmHMACSHA1AuthProtocol;
        switch (t->conf->auth) {
        case NP_SNMP_AUTH_MD5:
            a = usmHMACMD5AuthProtocol;
            break;
        case NP_SNMP_AUTH_SHA224:
            a = usmHMAC128SHA224AuthProtocol;
            break;
        case NP_SNMP_AUTH_SHA256:
            a = usmHMAC192SHA256AuthProtocol;
            break;
        case NP_SNMP_AUTH_SHA384:
            a = usmHMAC256SHA384AuthProtocol;
            break;
        case NP_SNMP_AUTH_SHA512:
            a = usmHMAC384SHA512AuthProtocol;
            break;
        default:
            break;
        }
        ss->securityAuthProto = a;
        ss->securityAuthProtoLen = USM_AUTH_PROTO_SHA_LEN;
        memcpy(ss->securityAuthKey, v3->auth_ku, v3->auth_ku_len);
        ss->securityAuthKeyLen = v3->auth_ku_len;
    }
    if (t->conf->priv != NP_SNMP_PRIV_NONE) {
        switch (t->conf->priv) {
        case NP_SNMP_PRIV_DES:
            ss->securityPrivProto = usmDESPrivProtocol;
            ss->securityPrivProtoLen = OID_LENGTH(usmDESPrivProtocol);
            break;
        case NP_SNMP_PRIV_AES192:
            ss->securityPrivProto = usmAES192PrivProtocol;
            ss->securityPrivProtoLen = OID_LENGTH(usmAES192PrivProtocol);
            break;
        case NP_SNMP_PRIV_AES256:
            ss->securityPrivProto = usmAES256PrivProtocol;
            ss->securityPrivProtoLen = OID_LENGTH(usmAES256PrivProtocol);
            break;
        default:
            ss->securityPrivProto = usmAESPrivProtocol;
            ss->securityPrivProtoLen = OID_LENGTH(usmAESPrivProtocol);
            break;
        }
        memcpy(ss->securityPrivKey, v3->priv_ku, v3->priv_ku_len);
        ss->securityPrivKeyLen = v3->priv_ku_len;
    }
}

/* Opens w's session to its target and watches its socket. false (with the
 * failure set) when it cannot. */
static bool open_session(struct walk *w)
{
    struct target *t = w->t;
    const struct np_snmp_settings *s = t->conf->s;
    if (!t->peer) {
        fail(w, NP_SNMP_SEND_FAILED, "%s", t->open_error ? t->open_error : "no address");
        return false;
    }
    netsnmp_session ss;
    snmp_sess_init(&ss);
    ss.peername = t->peer;
    ss.retries = (int)s->retries;
    ss.timeout = (long)s->timeout_ms * 1000;
    switch (t->conf->version) {
    case NP_SNMP_V1:
        ss.version = SNMP_VERSION_1;
        break;
    case NP_SNMP_V2C:
        ss.version = SNMP_VERSION_2c;
        break;
    case NP_SNMP_V3:
        ss.version = SNMP_VERSION_3;
        break;
    }
    if (t->conf->version != NP_SNMP_V3) {
        ss.community = (u_char *)s->community;
        ss.community_len = strlen(s->community);
    } else {
        session_v3(t, &ss);
    }
    w->sessp = snmp_sess_open(&ss);
    memset(ss.securityAuthKey, 0, sizeof ss.securityAuthKey);
    memset(ss.securityPrivKey, 0, sizeof ss.securityPrivKey);
    if (!w->sessp) {
        char *why = NULL;
        int e1 = 0, e2 = 0;
        snmp_error(&ss, &e1, &e2, &why);
        fail(w, NP_SNMP_SEND_FAILED, "cannot open session to %s: %s", t->peer,
             why ? why : "unknown error");
        free(why);
        return false;
    }
    if (t->v3) {
        /* Set on the library's own copy of the session: snmp_sess_add_ex()
         * clears the flag given to snmp_sess_open(), and without it a send
         * with no engine ID would run net-snmp's blocking probe (as Zabbix
         * also found). */
        snmp_sess_session(w->sessp)->flags |= SNMP_FLAGS_DONT_PROBE;
    }
    netsnmp_transport *tr = snmp_sess_transport(w->sessp);
    if (!tr || tr->sock < 0) {
        fail(w, NP_SNMP_SEND_FAILED, "no socket for %s", t->peer);
        return false;
    }
    netsnmp_large_fd_set_init(&w->fdset, tr->sock + 1);
    w->fdset_init = true;
    NETSNMP_LARGE_FD_SET(tr->sock, &w->fdset);
    int rc = uv_poll_init(w->p->loop, &w->poll, tr->sock);
    if (rc != 0) {
        fail(w, NP_SNMP_SEND_FAILED, "uv_poll_init: %s", uv_strerror(rc));
        return false;
    }
    w->poll.data = w;
    w->poll_active = true;
    rc = uv_poll_start(&w->poll, UV_READABLE, on_readable);
    if (rc != 0) {
        fail(w, NP_SNMP_SEND_FAILED, "uv_poll_start: %s", uv_strerror(rc));
        return false;
    }
    return true;
}

/* Lends a free walk to t and starts its poll. The caller (pump) made sure
 * one is free. */
static void begin(struct target *t)
{
    struct np_snmp_poller *p = t->p;
    struct walk *w = NULL;
    for (size_t i = 0; i < p->n_walks && !w; i++) {
        if (!p->walks[i].t && !p->walks[i].closing) {
            w = &p->walks[i];
        }
    }
    w->t = t;
    t->walk = w;
    p->in_flight++;
    if (p->in_flight > p->stats.in_flight_max) {
        p->stats.in_flight_max = p->in_flight;
    }
    rows_reset(w);
    w->completed = false;
    w->sec_error = 0;
    w->phase = PH_IDLE;
    w->deadline_ms = -1;
    w->failure = NP_SNMP_OK;
    w->detail[0] = '\0';
    w->sys_name[0] = w->sys_descr[0] = w->sys_oid[0] = '\0';
    w->sys_uptime_cs = 0;
    w->started_ms = (int64_t)(uv_hrtime() / 1000000);
    w->max_rep = (int)t->conf->s->max_repetitions;
    w->first_round = true;
    for (int c = 0; c < N_COLS; c++) {
        w->col_done[c] = false;
        memcpy(w->col_last[c], col_oid[c].o, col_oid[c].len * sizeof(oid));
        w->col_last_len[c] = col_oid[c].len;
    }
    if (open_session(w)) {
        if (t->v3 && !t->v3->engine_id_len) {
            send_probe(w);
        } else {
            send_walk(w);
        }
    }
    after_io(w);
}

static void enqueue(struct target *t)
{
    struct np_snmp_poller *p = t->p;
    t->queued = true;
    t->next_queued = NULL;
    if (p->queue_tail) {
        p->queue_tail->next_queued = t;
    } else {
        p->queue_head = t;
    }
    p->queue_tail = t;
    if (++p->queued > p->stats.queued_max) {
        p->stats.queued_max = p->queued;
    }
}

/* Starts queued polls while walks are free. Not reentrant: a poll that ends
 * at once (no session) frees its walk inside begin(), and the loop here,
 * not a nested call, starts the next one. */
static void pump(struct np_snmp_poller *p)
{
    if (p->pumping || p->freeing) {
        return;
    }
    p->pumping = true;
    while (p->queue_head && p->in_flight < p->n_walks) {
        struct target *t = p->queue_head;
        p->queue_head = t->next_queued;
        if (!p->queue_head) {
            p->queue_tail = NULL;
        }
        t->next_queued = NULL;
        t->queued = false;
        p->queued--;
        begin(t);
    }
    p->pumping = false;
    arm_timeout_timer(p);
}

static void walk_release(struct walk *w)
{
    w->p->in_flight--;
    pump(w->p);
}

static void handle_closed(struct np_snmp_poller *p);

static void on_walk_closed(uv_handle_t *h)
{
    struct walk *w = h->data;
    w->closing = false;
    if (w->p->freeing) {
        handle_closed(w->p);
    } else {
        walk_release(w);
    }
}

/* Closes w's session and socket watch. */
static void walk_close_session(struct walk *w)
{
    if (w->poll_active) {
        /* uv_close() takes the fd out of epoll at once, so closing the
         * socket right after (snmp_sess_close) is safe. */
        w->poll_active = false;
        w->closing = true;
        uv_close((uv_handle_t *)&w->poll, on_walk_closed);
    }
    if (w->sessp) {
        snmp_sess_close(w->sessp);
        w->sessp = NULL;
    }
    if (w->fdset_init) {
        netsnmp_large_fd_set_cleanup(&w->fdset);
        w->fdset_init = false;
    }
}

/* The end of a poll: the session goes, the walk returns to the pool (once
 * its poll handle is closed). */
static void walk_end(struct walk *w)
{
    w->t->walk = NULL;
    w->t = NULL;
    w->deadline_ms = -1;
    w->phase = PH_IDLE;
    rows_reset(w);
    if (w->cap_rows > POOL_KEEP_ROWS) {
        /* One big device does not pin its arrays in the pool. */
        free(w->rows);
        free(w->slot);
        free(w->rounds);
        w->rows = NULL;
        w->slot = NULL;
        w->rounds = NULL;
        w->cap_rows = w->n_slots = w->cap_rounds = 0;
    }
    walk_close_session(w);
    if (!w->closing) {
        walk_release(w);
    } else {
        arm_timeout_timer(w->p);
    }
}

/* A poll of t is due: start it if a walk is free, else queue it. */
static void start_poll(struct target *t)
{
    if (t->walk || t->queued) {
        np_log(NP_LOG_WARN, "snmp: poll overrun target=%s (previous poll still %s)",
               t->conf->s->name, t->walk ? "running" : "waiting for a free slot");
        return;
    }
    enqueue(t);
    pump(t->p);
}

/* ---- replies ------------------------------------------------------------- */

static void probe_reply(struct walk *w, netsnmp_session *sess)
{
    if (sess->securityEngineIDLen == 0 || sess->securityEngineIDLen > MAX_ENGINE_ID) {
        fail(w, NP_SNMP_UNKNOWN_ENGINE, "engine discovery: the reply carried no valid engine ID");
        return;
    }
    if (sess->engineBoots || sess->engineTime) {
        set_enginetime(sess->securityEngineID, (u_int)sess->securityEngineIDLen, sess->engineBoots,
                       sess->engineTime, TRUE);
    }
    /* Localises the keys for the discovered engine (what net-snmp's blocking
     * probe does after discovery). */
    if (create_user_from_session(sess) != SNMPERR_SUCCESS) {
        fail(w, NP_SNMP_UNKNOWN_ENGINE, "could not create the USM user for the engine");
        return;
    }
    struct v3_cache *v3 = w->t->v3;
    memcpy(v3->engine_id, sess->securityEngineID, sess->securityEngineIDLen);
    v3->engine_id_len = sess->securityEngineIDLen;
    send_walk(w);
}

static void sys_value(struct walk *w, size_t i, const netsnmp_variable_list *v)
{
    /* The reply must be the .0 instance of the object asked for. */
    if (v->name_length != 9 || memcmp(v->name, sys_oid[i], 8 * sizeof(oid)) != 0 ||
        v->name[8] != 0) {
        return;
    }
    switch (i) {
    case S_UPTIME: {
        uint64_t u;
        if (v->type == ASN_TIMETICKS && get_u64(v, &u)) {
            w->sys_uptime_cs = u;
            w->rounds[w->n_rounds - 1].uptime_cs = u;
        }
        break;
    }
    case S_DESCR:
        if (v->type == ASN_OCTET_STR) {
            size_t len = v->val_len > NP_SNMP_MAX_STRING ? NP_SNMP_MAX_STRING : v->val_len;
            np_snmp_text(w->sys_descr, sizeof w->sys_descr, v->val.string, len);
        }
        break;
    case S_NAME:
        if (v->type == ASN_OCTET_STR) {
            size_t len = v->val_len > NP_SNMP_MAX_STRING ? NP_SNMP_MAX_STRING : v->val_len;
            np_snmp_text(w->sys_name, sizeof w->sys_name, v->val.string, len);
        }
        break;
    case S_OBJID:
        if (v->type == ASN_OBJECT_ID) {
            size_t n = v->val_len / sizeof(oid), o = 0;
            for (size_t k = 0; k < n && o + 12 < sizeof w->sys_oid; k++) {
                int len = snprintf(w->sys_oid + o, sizeof w->sys_oid - o, "%s%lu", k ? "." : "",
                                   (unsigned long)v->val.objid[k]);
                if (len < 0) {
                    break;
                }
                o += (size_t)len;
            }
        }
        break;
    default:
        break;
    }
}

static bool uptime_ok(const netsnmp_variable_list *v)
{
    return v->name_length == 9 && memcmp(v->name, sys_oid[S_UPTIME], 8 * sizeof(oid)) == 0 &&
           v->name[8] == 0 && v->type == ASN_TIMETICKS;
}

static void walk_reply(struct walk *w, netsnmp_pdu *pdu)
{
    bool v1 = w->t->conf->version == NP_SNMP_V1;
    if (pdu->errstat != SNMP_ERR_NOERROR) {
        long ei = pdu->errindex;
        if (v1 && pdu->errstat == SNMP_ERR_NOSUCHNAME && ei > (long)w->n_nonrep &&
            ei <= (long)(w->n_nonrep + w->n_sent)) {
            /* v1 ends a GETNEXT walk with noSuchName on the exhausted column. */
            w->col_done[w->sent_cols[ei - 1 - (long)w->n_nonrep]] = true;
            send_walk(w);
            return;
        }
        if (v1 && pdu->errstat == SNMP_ERR_NOSUCHNAME && ei == 1) {
            fail(w, NP_SNMP_NO_SUCH_OBJECT, "oid=sysUpTime.0");
            return;
        }
        if (pdu->errstat == SNMP_ERR_TOOBIG && w->max_rep > 1) {
            w->max_rep /= 2;
            send_walk(w);
            return;
        }
        fail(w, NP_SNMP_PROTOCOL_ERROR, "error-status %s (%ld) index %ld",
             snmp_errstring((int)pdu->errstat), pdu->errstat, ei);
        return;
    }
    if (w->n_rounds == w->cap_rounds) {
        size_t cap = w->cap_rounds ? w->cap_rounds * 2 : 16;
        struct round *r = realloc(w->rounds, cap * sizeof *r);
        if (!r) {
            fail(w, NP_SNMP_TOO_BIG, "out of memory");
            return;
        }
        w->rounds = r;
        w->cap_rounds = cap;
    }
    if (w->n_rounds >= MAX_ROUNDS) {
        fail(w, NP_SNMP_TOO_BIG, "more than %d requests in one poll", MAX_ROUNDS);
        return;
    }
    /* Stamped when the reply is read: the counters were sampled a round trip
     * at most earlier, and it is the same for every poll. */
    struct round *rd = &w->rounds[w->n_rounds++];
    rd->mono_ms = (int64_t)(uv_hrtime() / 1000000);
    rd->wall_ms = np_clock_wall_ms();
    rd->uptime_cs = 0;

    netsnmp_variable_list *v = pdu->variables;
    if (!v || !uptime_ok(v)) {
        fail(w, NP_SNMP_NO_SUCH_OBJECT, "oid=sysUpTime.0");
        return;
    }
    size_t i = 0;
    for (; v && i < w->n_nonrep; v = v->next_variable, i++) {
        sys_value(w, i, v);
    }
    bool stepped[N_COLS] = {false};
    size_t k = 0, count = 0;
    for (; v && count < MAX_VARBINDS; v = v->next_variable, k++, count++) {
        int c = w->sent_cols[k % w->n_sent];
        if (w->col_done[c]) {
            continue;
        }
        const size_t cl = col_oid[c].len;
        if (v->type == SNMP_ENDOFMIBVIEW || v->type == SNMP_NOSUCHOBJECT ||
            v->type == SNMP_NOSUCHINSTANCE || v->name_length != cl + 1 ||
            memcmp(v->name, col_oid[c].o, cl * sizeof(oid)) != 0) {
            w->col_done[c] = true;
            continue;
        }
        if (v->name_length > COL_OID_MAX ||
            snmp_oid_compare(v->name, v->name_length, w->col_last[c], w->col_last_len[c]) <= 0) {
            /* RFC 3416 4.2.3: GETNEXT must advance; an agent that loops is cut off. */
            w->col_done[c] = true;
            continue;
        }
        memcpy(w->col_last[c], v->name, v->name_length * sizeof(oid));
        w->col_last_len[c] = v->name_length;
        stepped[c] = true;
        if (v->name[cl] > UINT32_MAX || v->name[cl] == 0) {
            continue; /* ifIndex is 1..2147483647 */
        }
        struct row *r = row_get(w, (uint32_t)v->name[cl]);
        if (!r) {
            fail(w, NP_SNMP_TOO_BIG, "more than %d interfaces", MAX_ROWS);
            return;
        }
        store(w, r, (enum col)c, v);
    }
    w->first_round = false;
    bool any_active = false, any_step = false;
    for (size_t s = 0; s < w->n_sent; s++) {
        int c = w->sent_cols[s];
        any_active = any_active || !w->col_done[c];
        any_step = any_step || stepped[c];
    }
    if (!any_active) {
        w->phase = PH_IDLE;
        w->completed = true;
        return;
    }
    if (!any_step) {
        /* A reply without progress (agent truncated everything): ask for less. */
        if (w->max_rep > 1) {
            w->max_rep /= 2;
        } else {
            fail(w, NP_SNMP_PROTOCOL_ERROR, "walk makes no progress");
            return;
        }
    }
    send_walk(w);
}

static int snmp_cb(int op, netsnmp_session *sess, int reqid, netsnmp_pdu *pdu, void *magic)
{
    struct walk *w = magic;
    if (!w->t || w->phase == PH_IDLE) {
        return 1;
    }
    switch (op) {
    case NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE:
        /* Reports may carry another request ID than the request (RFC 3412
         * 7.2.11 lets the agent answer before it could read one). */
        if (reqid != w->reqid && pdu->command != SNMP_MSG_REPORT) {
            return 1;
        }
        w->sec_error = 0;
        if (w->phase == PH_PROBE) {
            probe_reply(w, sess);
        } else if (pdu->command == SNMP_MSG_REPORT) {
            int e = snmpv3_get_report_type(pdu);
            fail(w, failure_of_snmperr(e), "report: %s", snmp_api_errstring(e));
        } else {
            walk_reply(w, pdu);
        }
        break;
    case NETSNMP_CALLBACK_OP_TIMED_OUT:
        if (reqid == w->reqid) {
            fail(w, NP_SNMP_TIMEOUT, "no reply after %" PRId64 " ms x %" PRId64 " tries",
                 w->t->conf->s->timeout_ms, w->t->conf->s->retries + 1);
        }
        break;
    case NETSNMP_CALLBACK_OP_RESEND:
        w->reqid = reqid;
        break;
    case NETSNMP_CALLBACK_OP_SEC_ERROR:
        /* net-snmp says this before it hands over the Report that explains
         * it (RECEIVED_MESSAGE, same read); only if none follows does it
         * end the poll (after_io). */
        w->sec_error = sess->s_snmp_errno ? sess->s_snmp_errno : SNMPERR_AUTHENTICATION_FAILURE;
        break;
    case NETSNMP_CALLBACK_OP_SEND_FAILED:
    case NETSNMP_CALLBACK_OP_DISCONNECT:
        fail(w, NP_SNMP_SEND_FAILED, "%s", snmp_api_errstring(sess->s_snmp_errno));
        break;
    default:
        break;
    }
    return 1;
}

/* ---- delivery ------------------------------------------------------------ */

static int row_cmp(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    return x->if_index < y->if_index ? -1 : x->if_index > y->if_index;
}

static struct ifstate *find_prev(struct target *t, const char *key, size_t hint)
{
    if (hint < t->n_prev && strcmp(t->keys + t->prev[hint].key, key) == 0) {
        return &t->prev[hint];
    }
    for (size_t i = 0; i < t->n_prev; i++) {
        if (strcmp(t->keys + t->prev[i].key, key) == 0) {
            return &t->prev[i];
        }
    }
    return NULL;
}

/* The counter reading of one direction of a kept state. */
static void reading_of(const struct ifstate *st, bool out, struct np_counter_reading *r)
{
    *r = (struct np_counter_reading){
        .time_ms = out ? st->out_time_ms : st->in_time_ms,
        .value = out ? st->out_value : st->in_value,
        .width_bits = st->width_bits,
        .has_uptime = true,
        .uptime_cs = out ? st->out_uptime_cs : st->in_uptime_cs,
        .uptime_wrap = NP_UPTIME_WRAP_TIMETICKS,
        .has_discontinuity = st->has_disc,
        .discontinuity_cs = st->disc_cs,
    };
}

/* A growing pool of NUL-terminated keys; offsets stay valid across growth. */
struct key_pool {
    char *buf;
    size_t len, cap;
};

static bool key_add(struct key_pool *kp, const char *key, uint32_t *off)
{
    size_t n = strlen(key) + 1;
    if (kp->len + n > kp->cap) {
        size_t cap = kp->cap ? kp->cap : 256;
        while (kp->len + n > cap) {
            cap *= 2;
        }
        char *b = realloc(kp->buf, cap);
        if (!b) {
            return false;
        }
        kp->buf = b;
        kp->cap = cap;
    }
    memcpy(kp->buf + kp->len, key, n);
    *off = (uint32_t)kp->len;
    kp->len += n;
    return true;
}

#define HAVE(r, c) (((r)->have >> (c)) & 1u)

static void deliver(struct walk *w)
{
    struct target *t = w->t;
    struct np_snmp_poller *p = t->p;
    const struct np_snmp_settings *s = t->conf->s;
    struct np_snmp_target_result res = {
        .target = s->name,
        .host = s->host,
        .port = (unsigned)s->port,
        .failure = w->failure,
        .detail = w->detail,
        .rows = w->n_rows,
        .sys_name = w->sys_name,
        .sys_descr = w->sys_descr,
        .sys_object_id = w->sys_oid,
        .sys_uptime_cs = w->sys_uptime_cs,
        .started_mono_ms = w->started_ms,
        .finished_mono_ms = (int64_t)(uv_hrtime() / 1000000),
    };
    if (w->failure != NP_SNMP_OK) {
        if (p->cb.quiet) {
            goto out_done;
        }
        np_complain(&t->complain, NP_LOG_WARN,
                    "snmp: poll failed target=%s host=%s err=%s detail=\"%s\"", s->name, s->host,
                    np_snmp_failure_name(w->failure), w->detail);
        goto out_done;
    }
    np_complain_release(&t->complain, "snmp: poll recovered target=%s", s->name);
    qsort(w->rows, w->n_rows, sizeof *w->rows, row_cmp);
    struct ifstate *next = calloc(w->n_rows ? w->n_rows : 1, sizeof *next);
    struct key_pool kp = {0};
    if (!next) {
        res.failure = NP_SNMP_TOO_BIG;
        res.detail = "out of memory";
        goto out_done;
    }
    size_t n_next = 0, n_disc = 0;
    char disc_first[NP_SNMP_MAX_STRING + 16] = "";
    enum np_counter_status disc_in = NP_COUNTER_OK, disc_out = NP_COUNTER_OK;
    for (size_t i = 0; i < w->n_rows; i++) {
        struct row *r = &w->rows[i];
        const char *name = r->name ? r->name : "", *alias = r->alias ? r->alias : "",
                   *descr = r->descr ? r->descr : "";
        if (!np_snmp_if_selected((const char *const *)s->interfaces.items, s->interfaces.count,
                                 s->include_loopback, name, alias, descr, r->type)) {
            continue;
        }
        char key[NP_SNMP_MAX_STRING + 16];
        if (name[0]) {
            snprintf(key, sizeof key, "%s", name);
        } else if (descr[0]) {
            snprintf(key, sizeof key, "%s", descr);
        } else {
            snprintf(key, sizeof key, "ifIndex.%" PRIu32, r->if_index);
        }
        for (size_t j = 0; j < n_next; j++) {
            if (strcmp(kp.buf + next[j].key, key) == 0) {
                /* Two interfaces with one name: tell them apart by index. */
                size_t kl = strlen(key);
                snprintf(key + kl, sizeof key - kl, "#%" PRIu32, r->if_index);
                break;
            }
        }
        struct np_snmp_if_reading rd = {
            .target = s->name,
            .if_index = r->if_index,
            .if_name = name,
            .if_alias = alias,
            .if_descr = descr,
            .if_type = r->type,
            .has_high_speed = HAVE(r, C_HIGHSPEED),
            .high_speed_mbps = r->high_speed,
            .oper_status = r->oper,
            .admin_status = r->admin,
        };
        rd.key = key;
        if (HAVE(r, C_HIGHSPEED) && r->high_speed > 0) {
            rd.speed_bps = (uint64_t)r->high_speed * 1000000u;
        } else if (HAVE(r, C_SPEED)) {
            rd.speed_bps = r->speed;
        }
        uint64_t ov =
            np_snmp_rate_override_for(t->conf->overrides, t->conf->n_overrides, name, alias, descr);
        rd.rate_limit_bps = ov ? ov : rd.speed_bps;
        int cin = -1, cout = -1;
        if (HAVE(r, C_HCIN) && HAVE(r, C_HCOUT)) {
            rd.counter_bits = 64;
            rd.in_octets = r->hcin;
            rd.out_octets = r->hcout;
            cin = C_HCIN;
            cout = C_HCOUT;
        } else if (HAVE(r, C_IN32) && HAVE(r, C_OUT32)) {
            rd.counter_bits = 32;
            rd.in_octets = r->in32;
            rd.out_octets = r->out32;
            cin = C_IN32;
            cout = C_OUT32;
        }
        const struct round *rin = &w->rounds[cin >= 0 ? r->round[cin] : 0];
        rd.sys_uptime_cs = rin->uptime_cs;
        rd.time_mono_ms = rin->mono_ms;
        rd.time_wall_ms = rin->wall_ms;

        struct ifstate *st = &next[n_next];
        if (!key_add(&kp, key, &st->key)) {
            continue;
        }
        n_next++;
        st->oper = r->oper;
        st->admin = r->admin;
        st->width_bits = (uint8_t)rd.counter_bits;
        if (rd.counter_bits) {
            const struct round *rout = &w->rounds[r->round[cout]];
            st->in_time_ms = rin->mono_ms;
            st->out_time_ms = rout->mono_ms;
            st->in_value = rd.in_octets;
            st->out_value = rd.out_octets;
            st->in_uptime_cs = (uint32_t)rin->uptime_cs;
            st->out_uptime_cs = (uint32_t)rout->uptime_cs;
            st->has_disc = HAVE(r, C_DISC);
            st->disc_cs = r->disc;
        }
        rd.in.status = NP_COUNTER_BAD_INTERVAL;
        rd.out.status = NP_COUNTER_BAD_INTERVAL;
        struct ifstate *old = find_prev(t, key, n_next - 1);
        if (old) {
            if (old->width_bits && st->width_bits) {
                struct np_counter_reading o_in, o_out, c_in, c_out;
                reading_of(old, false, &o_in);
                reading_of(old, true, &o_out);
                reading_of(st, false, &c_in);
                reading_of(st, true, &c_out);
                rd.has_previous = true;
                np_counter_delta(&o_in, &c_in, rd.rate_limit_bps, &rd.in);
                np_counter_delta(&o_out, &c_out, rd.rate_limit_bps, &rd.out);
                rd.rates_valid = np_counter_valid(rd.in.status) && np_counter_valid(rd.out.status);
                if (!rd.rates_valid && n_disc++ == 0) {
                    /* One line per target and poll: a restart of a 48-port
                     * switch is one event, not 48 log lines. */
                    snprintf(disc_first, sizeof disc_first, "%s", key);
                    disc_in = rd.in.status;
                    disc_out = rd.out.status;
                }
            }
            static const char *const what[2] = {"operStatus", "adminStatus"};
            const int olds[2] = {old->oper, old->admin}, news[2] = {r->oper, r->admin};
            for (int k = 0; k < 2; k++) {
                if (olds[k] && news[k] && olds[k] != news[k] && p->cb.on_event) {
                    struct np_snmp_if_event ev = {s->name, key,     r->if_index,    what[k],
                                                  olds[k], news[k], rd.time_wall_ms};
                    p->cb.on_event(p->ctx, &ev);
                }
            }
        }
        if (p->cb.on_interface) {
            p->cb.on_interface(p->ctx, &rd);
        }
        res.interfaces++;
    }
    if (n_disc) {
        np_log(NP_LOG_INFO,
               "snmp: counter discontinuity target=%s interfaces=%zu first=%s in=%s out=%s",
               s->name, n_disc, disc_first, np_counter_status_name(disc_in),
               np_counter_status_name(disc_out));
    }
    free(t->prev);
    free(t->keys);
    if (n_next < w->n_rows) {
        /* Kept for the whole interval: not the size of every row walked. */
        struct ifstate *shrunk = realloc(next, (n_next ? n_next : 1) * sizeof *next);
        next = shrunk ? shrunk : next;
    }
    if (kp.len < kp.cap) {
        char *shrunk = realloc(kp.buf, kp.len ? kp.len : 1);
        kp.buf = shrunk ? shrunk : kp.buf;
    }
    t->prev = next;
    t->n_prev = n_next;
    t->keys = kp.buf;
out_done:
    if (p->cb.on_target_done) {
        p->cb.on_target_done(p->ctx, &res);
    }
    if (t->in_once) {
        t->in_once = false;
        if (--p->once_pending == 0 && p->once_done) {
            p->once_done(p, p->ctx);
        }
    }
}

/* ---- handles ------------------------------------------------------------- */

static void on_readable(uv_poll_t *h, int status, int events)
{
    struct walk *w = h->data;
    (void)events;
    if (!w->t) {
        return;
    }
    if (status < 0) {
        np_log(NP_LOG_WARN, "snmp: socket error target=%s err=%s", w->t->conf->s->name,
               uv_strerror(status));
        return;
    }
    snmp_sess_read2(w->sessp, &w->fdset);
    after_io(w);
}

static void on_timeout_timer(uv_timer_t *h)
{
    struct np_snmp_poller *p = h->data;
    int64_t now = (int64_t)uv_now(p->loop);
    for (size_t i = 0; i < p->n_walks; i++) {
        struct walk *w = &p->walks[i];
        if (w->t && w->deadline_ms >= 0 && w->deadline_ms <= now) {
            snmp_sess_timeout(w->sessp);
            after_io(w);
        }
    }
    arm_timeout_timer(p);
}

static void arm_timeout_timer(struct np_snmp_poller *p)
{
    if (p->freeing) {
        return;
    }
    int64_t min = -1;
    for (size_t i = 0; i < p->n_walks; i++) {
        int64_t d = p->walks[i].t ? p->walks[i].deadline_ms : -1;
        if (d >= 0 && (min < 0 || d < min)) {
            min = d;
        }
    }
    if (min < 0) {
        uv_timer_stop(&p->timeout_timer);
        return;
    }
    int64_t now = (int64_t)uv_now(p->loop);
    uv_timer_start(&p->timeout_timer, on_timeout_timer, min > now ? (uint64_t)(min - now) : 0, 0);
}

static void on_schedule(uv_timer_t *h)
{
    start_poll(h->data);
}

/* The transport address of t, resolved once here (blocking, at startup, as
 * opening a session did before): sessions are opened for every poll and a
 * name lookup there would block the loop. A failure is kept and reported by
 * every poll of the target; the others go on. */
static int resolve_peer(struct target *t)
{
    const struct np_snmp_settings *s = t->conf->s;
    bool v6 = strchr(s->host, ':') != NULL;
    char addr[INET6_ADDRSTRLEN] = "";
    struct addrinfo hints = {.ai_family = v6 ? AF_INET6 : AF_INET, .ai_socktype = SOCK_DGRAM};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(s->host, NULL, &hints, &ai);
    if (rc == 0 && ai) {
        rc = getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof addr, NULL, 0, NI_NUMERICHOST);
    }
    if (ai) {
        freeaddrinfo(ai);
    }
    char buf[640];
    if (rc != 0) {
        snprintf(buf, sizeof buf, "cannot resolve %s: %s", s->host, gai_strerror(rc));
        np_log(NP_LOG_WARN, "snmp: open failed target=%s detail=\"%s\"", s->name, buf);
        t->open_error = strdup(buf);
        return t->open_error ? 0 : -ENOMEM;
    }
    snprintf(buf, sizeof buf, v6 ? "udp6:[%s]:%" PRId64 : "udp:%s:%" PRId64, addr, s->port);
    t->peer = strdup(buf);
    return t->peer ? 0 : -ENOMEM;
}

/* Derives t's v3 keys from the passwords once (RFC 3414 A.2). */
static int v3_keys(struct target *t, struct np_err *err)
{
    const struct np_snmp_settings *s = t->conf->s;
    struct v3_cache *v3 = calloc(1, sizeof *v3);
    if (!v3) {
        return np_err_set(err, -ENOMEM, "out of memory");
    }
    t->v3 = v3;
    netsnmp_session ss;
    snmp_sess_init(&ss);
    session_v3(t, &ss); /* the protocol OIDs for the config */
    if (t->conf->auth != NP_SNMP_AUTH_NONE) {
        v3->auth_ku_len = sizeof v3->auth_ku;
        if (generate_Ku(ss.securityAuthProto, (u_int)ss.securityAuthProtoLen,
                        (const u_char *)s->auth_password, strlen(s->auth_password), v3->auth_ku,
                        &v3->auth_ku_len) != SNMPERR_SUCCESS) {
            return np_err_set(err, NP_ESNMP, "snmp: target %s: cannot derive the auth key",
                              s->name);
        }
    }
    if (t->conf->priv != NP_SNMP_PRIV_NONE) {
        v3->priv_ku_len = sizeof v3->priv_ku;
        if (generate_Ku(ss.securityAuthProto, (u_int)ss.securityAuthProtoLen,
                        (const u_char *)s->priv_password, strlen(s->priv_password), v3->priv_ku,
                        &v3->priv_ku_len) != SNMPERR_SUCCESS) {
            return np_err_set(err, NP_ESNMP, "snmp: target %s: cannot derive the priv key",
                              s->name);
        }
    }
    return 0;
}

struct np_snmp_poller *np_snmp_poller_new(uv_loop_t *loop, const struct np_config *cfg,
                                          const struct np_snmp_callbacks *callbacks, void *ctx,
                                          struct np_err *err)
{
    struct np_snmp_poller *p = calloc(1, sizeof *p);
    if (!p) {
        np_err_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    p->loop = loop;
    if (callbacks) {
        p->cb = *callbacks;
    }
    p->ctx = ctx;
    if (np_snmp_targets_load(cfg, &p->confs, &p->n, true, err) != 0) {
        free(p);
        return NULL;
    }
    library_init();
    size_t cap = (size_t)np_agent_settings(cfg)->snmp_max_concurrent; /* >= 1 */
    p->n_walks = p->n < cap ? p->n : cap;
    if (p->n_walks == 0) {
        p->n_walks = 1;
    }
    p->t = calloc(p->n ? p->n : 1, sizeof *p->t);
    p->walks = calloc(p->n_walks, sizeof *p->walks);
    if (!p->t || !p->walks) {
        free(p->t);
        free(p->walks);
        np_snmp_targets_free(p->confs, p->n);
        free(p);
        np_err_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < p->n_walks; i++) {
        p->walks[i].p = p;
        p->walks[i].deadline_ms = -1;
    }
    uv_timer_init(loop, &p->timeout_timer);
    p->timeout_timer.data = p;
    for (size_t i = 0; i < p->n; i++) {
        struct target *t = &p->t[i];
        t->p = p;
        t->conf = &p->confs[i];
        uv_timer_init(loop, &t->sched);
        t->sched.data = t;
        t->sched_started = true;
        int rc = resolve_peer(t);
        if (rc != 0) {
            np_err_set(err, rc, "out of memory");
        } else if (t->conf->version == NP_SNMP_V3) {
            rc = v3_keys(t, err);
        }
        if (rc != 0) {
            p->n = i + 1;
            np_snmp_poller_free(p);
            return NULL;
        }
    }
    return p;
}

size_t np_snmp_poller_count(const struct np_snmp_poller *p)
{
    return p->n;
}

void np_snmp_poller_take_stats(struct np_snmp_poller *p, struct np_snmp_poller_stats *out)
{
    if (out) {
        *out = p->stats;
        out->max_concurrent = p->n_walks;
    }
    p->stats.in_flight_max = p->in_flight;
    p->stats.queued_max = p->queued;
    p->stats.discoveries = 0;
}

int np_snmp_poller_start(struct np_snmp_poller *p)
{
    for (size_t i = 0; i < p->n; i++) {
        struct target *t = &p->t[i];
        uint64_t interval = (uint64_t)t->conf->s->interval_ms;
        /* Spread first polls evenly over each target's interval; the
         * concurrency cap only queues polls that still fall together. */
        uint64_t first = p->n ? interval * i / p->n : 0;
        int rc = uv_timer_start(&t->sched, on_schedule, first, interval);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int np_snmp_poller_poll_all_once(struct np_snmp_poller *p,
                                 void (*done)(struct np_snmp_poller *p, void *ctx))
{
    p->once_done = done;
    p->once_pending = 1; /* held while starting, so done runs once at the end */
    for (size_t i = 0; i < p->n; i++) {
        struct target *t = &p->t[i];
        if (t->walk || t->queued || t->in_once) {
            continue;
        }
        t->in_once = true;
        p->once_pending++;
        enqueue(t);
    }
    pump(p);
    if (--p->once_pending == 0 && done) {
        done(p, p->ctx);
    }
    return 0;
}

static void handle_closed(struct np_snmp_poller *p)
{
    if (--p->pending_handles > 0) {
        return;
    }
    for (size_t i = 0; i < p->n_walks; i++) {
        free(p->walks[i].rows);
        free(p->walks[i].slot);
        free(p->walks[i].rounds);
    }
    free(p->walks);
    free(p->t);
    np_snmp_targets_free(p->confs, p->n);
    free(p);
}

static void on_handle_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

void np_snmp_poller_free(struct np_snmp_poller *p)
{
    if (!p) {
        return;
    }
    p->freeing = true;
    p->pending_handles = 1;
    p->timeout_timer.data = p;
    uv_close((uv_handle_t *)&p->timeout_timer, on_handle_closed);
    for (size_t i = 0; i < p->n_walks; i++) {
        struct walk *w = &p->walks[i];
        if (w->t) {
            w->t->walk = NULL;
            w->t = NULL;
            rows_reset(w);
            walk_close_session(w);
        }
        if (w->closing) {
            p->pending_handles++; /* on_walk_closed counts it */
        }
    }
    for (size_t i = 0; i < p->n; i++) {
        struct target *t = &p->t[i];
        if (t->sched_started) {
            t->sched.data = p;
            p->pending_handles++;
            uv_close((uv_handle_t *)&t->sched, on_handle_closed);
        }
        free(t->prev);
        free(t->keys);
        free(t->peer);
        free(t->open_error);
        if (t->v3) {
            memset(t->v3, 0, sizeof *t->v3); /* key material */
            free(t->v3);
        }
    }
}
