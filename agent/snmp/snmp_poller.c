/* snmp_poller: net-snmp single sessions on the libuv loop. See snmp_poller.h. */
#include "snmp_poller.h"

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/library/large_fd_set.h>

#include "snmp_internal.h"

#include "netpulse/clock.h"
#include "netpulse/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Hard limits on what one device may make us hold. */
#define MAX_ROWS 65536    /* ifTable rows per device */
#define MAX_ROUNDS 20000  /* requests per poll */
#define MAX_VARBINDS 4096 /* per reply */
/* A walked instance: the longest column OID (ifXTable, 11 sub-ids) plus the
 * ifIndex; walk_reply accepts nothing longer. Not MAX_OID_LEN (128): that
 * costs 13 KiB per target, 2.6 MiB of RSS at 200 targets. */
#define COL_OID_MAX 12

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

struct ifstate {
    char *key;
    int oper, admin;
    bool has_counters;
    struct np_counter_reading in, out;
};

enum phase { PH_IDLE, PH_PROBE, PH_WALK };

struct target {
    struct np_snmp_poller *p;
    const struct np_snmp_target_conf *conf;
    void *sessp;
    char open_error[640];
    uv_poll_t poll;
    uv_timer_t sched;
    bool poll_started, sched_started;
    netsnmp_large_fd_set fdset;
    int64_t deadline_ms; /* loop time of net-snmp's next timeout; -1: none */
    enum phase phase;
    bool engine_known;
    bool completed; /* finished inside a net-snmp callback; delivered after it returns */
    bool in_once;   /* counted in the poller's pending once-poll */
    int reqid;
    int sec_error; /* SNMPERR_* from a SEC_ERROR callback not yet explained */
    /* the poll in progress */
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
    /* state across polls */
    struct ifstate *prev;
    size_t n_prev;
    struct np_complain complain;
};

struct np_snmp_poller {
    uv_loop_t *loop;
    struct np_snmp_callbacks cb;
    void *ctx;
    struct np_snmp_target_conf *confs;
    struct target *t;
    size_t n;
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

static void rows_reset(struct target *t)
{
    for (size_t i = 0; i < t->n_rows; i++) {
        free(t->rows[i].descr);
        free(t->rows[i].name);
        free(t->rows[i].alias);
    }
    t->n_rows = 0;
    if (t->slot) {
        memset(t->slot, 0, t->n_slots * sizeof *t->slot);
    }
    t->n_rounds = 0;
}

static size_t slot_of(uint32_t if_index, size_t n_slots)
{
    return (size_t)((if_index * 2654435761u) & (uint32_t)(n_slots - 1));
}

static int rehash(struct target *t, size_t n_slots)
{
    uint32_t *s = calloc(n_slots, sizeof *s);
    if (!s) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < t->n_rows; i++) {
        size_t k = slot_of(t->rows[i].if_index, n_slots);
        while (s[k]) {
            k = (k + 1) & (n_slots - 1);
        }
        s[k] = (uint32_t)i + 1;
    }
    free(t->slot);
    t->slot = s;
    t->n_slots = n_slots;
    return 0;
}

static struct row *row_get(struct target *t, uint32_t if_index)
{
    if (t->n_slots) {
        size_t k = slot_of(if_index, t->n_slots);
        while (t->slot[k]) {
            struct row *r = &t->rows[t->slot[k] - 1];
            if (r->if_index == if_index) {
                return r;
            }
            k = (k + 1) & (t->n_slots - 1);
        }
    }
    if (t->n_rows >= MAX_ROWS) {
        return NULL;
    }
    if (t->n_rows == t->cap_rows) {
        size_t cap = t->cap_rows ? t->cap_rows * 2 : 64;
        struct row *r = realloc(t->rows, cap * sizeof *r);
        if (!r) {
            return NULL;
        }
        t->rows = r;
        t->cap_rows = cap;
    }
    if ((t->n_rows + 1) * 2 > t->n_slots && rehash(t, t->n_slots ? t->n_slots * 2 : 128) != 0) {
        return NULL;
    }
    struct row *r = &t->rows[t->n_rows];
    memset(r, 0, sizeof *r);
    r->if_index = if_index;
    size_t k = slot_of(if_index, t->n_slots);
    while (t->slot[k]) {
        k = (k + 1) & (t->n_slots - 1);
    }
    t->slot[k] = (uint32_t)t->n_rows + 1;
    t->n_rows++;
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
static bool store(struct target *t, struct row *r, enum col c, const netsnmp_variable_list *v)
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
    r->round[c] = (uint32_t)(t->n_rounds - 1);
    return true;
}

/* ---- io plumbing --------------------------------------------------------- */

static void arm_timeout_timer(struct np_snmp_poller *p);
static void deliver(struct target *t);
static int snmp_cb(int op, netsnmp_session *sess, int reqid, netsnmp_pdu *pdu, void *magic);

static void fail(struct target *t, enum np_snmp_failure f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refresh_deadline(struct target *t)
{
    t->deadline_ms = -1;
    if (!t->sessp) {
        return;
    }
    int numfds = 0, block = 1;
    struct timeval tv = {0, 0};
    snmp_sess_select_info2(t->sessp, &numfds, &t->fdset, &tv, &block);
    if (!block) {
        uint64_t ms = (uint64_t)tv.tv_sec * 1000 + ((uint64_t)tv.tv_usec + 999) / 1000;
        t->deadline_ms = (int64_t)(uv_now(t->p->loop) + ms);
    }
}

/* After every entry into net-snmp for t: deliver what finished, recompute
 * the deadline. Results are delivered here, outside net-snmp's callback, so
 * user callbacks never run inside the library. */
static void after_io(struct target *t)
{
    if (t->sec_error && t->phase != PH_IDLE) {
        int e = t->sec_error;
        fail(t, failure_of_snmperr(e), "%s", snmp_api_errstring(e));
    }
    t->sec_error = 0;
    if (t->completed) {
        t->completed = false;
        deliver(t);
    }
    refresh_deadline(t);
    arm_timeout_timer(t->p);
}

static void fail(struct target *t, enum np_snmp_failure f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->detail, sizeof t->detail, fmt, ap);
    va_end(ap);
    t->failure = f;
    t->completed = true;
    t->phase = PH_IDLE;
}

static void session_error(struct target *t, char *buf, size_t len)
{
    char *s = NULL;
    int liberr = 0, syserr = 0;
    snmp_sess_error(t->sessp, &syserr, &liberr, &s);
    snprintf(buf, len, "%s", s ? s : "unknown net-snmp error");
    free(s);
}

static bool send_pdu(struct target *t, netsnmp_pdu *pdu)
{
    t->reqid = snmp_sess_async_send(t->sessp, pdu, snmp_cb, t);
    if (t->reqid == 0) {
        char why[200];
        session_error(t, why, sizeof why);
        snmp_free_pdu(pdu);
        fail(t, NP_SNMP_SEND_FAILED, "%s", why);
        return false;
    }
    return true;
}

static void send_probe(struct target *t)
{
    /* RFC 3414 4: an unauthenticated request with an empty user and engine ID
     * draws a Report carrying the authoritative engine ID, boots and time. */
    netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GET);
    if (!pdu) {
        fail(t, NP_SNMP_SEND_FAILED, "out of memory");
        return;
    }
    pdu->version = SNMP_VERSION_3;
    pdu->securityName = strdup("");
    pdu->securityNameLen = 0;
    pdu->securityLevel = SNMP_SEC_LEVEL_NOAUTH;
    pdu->securityModel = SNMP_SEC_MODEL_USM;
    /* Set on the library's own copy of the session: the flag given to
     * snmp_sess_open() does not survive it, and without it the send below
     * would run net-snmp's blocking probe (as Zabbix also found). */
    snmp_sess_session(t->sessp)->flags |= SNMP_FLAGS_DONT_PROBE;
    t->phase = PH_PROBE;
    send_pdu(t, pdu);
}

static void send_walk(struct target *t)
{
    bool v1 = t->conf->version == NP_SNMP_V1;
    netsnmp_pdu *pdu = snmp_pdu_create(v1 ? SNMP_MSG_GETNEXT : SNMP_MSG_GETBULK);
    if (!pdu) {
        fail(t, NP_SNMP_SEND_FAILED, "out of memory");
        return;
    }
    t->n_nonrep = t->first_round ? N_SYS : 1;
    for (size_t i = 0; i < t->n_nonrep; i++) {
        snmp_add_null_var(pdu, sys_oid[i], 8);
    }
    t->n_sent = 0;
    for (int c = 0; c < N_COLS; c++) {
        if (!t->col_done[c]) {
            t->sent_cols[t->n_sent++] = c;
            snmp_add_null_var(pdu, t->col_last[c], t->col_last_len[c]);
        }
    }
    if (!v1) {
        pdu->non_repeaters = (long)t->n_nonrep;
        pdu->max_repetitions = t->max_rep;
    }
    t->phase = PH_WALK;
    send_pdu(t, pdu);
}

static void start_poll(struct target *t)
{
    if (t->phase != PH_IDLE) {
        np_log(NP_LOG_WARN, "snmp: poll overrun target=%s (previous poll still running)",
               t->conf->s->name);
        return;
    }
    rows_reset(t);
    t->failure = NP_SNMP_OK;
    t->detail[0] = '\0';
    t->sys_name[0] = t->sys_descr[0] = t->sys_oid[0] = '\0';
    t->sys_uptime_cs = 0;
    t->started_ms = (int64_t)(uv_hrtime() / 1000000);
    t->max_rep = (int)t->conf->s->max_repetitions;
    t->first_round = true;
    for (int c = 0; c < N_COLS; c++) {
        t->col_done[c] = false;
        memcpy(t->col_last[c], col_oid[c].o, col_oid[c].len * sizeof(oid));
        t->col_last_len[c] = col_oid[c].len;
    }
    if (!t->sessp) {
        fail(t, NP_SNMP_SEND_FAILED, "%s", t->open_error);
    } else if (t->conf->version == NP_SNMP_V3 && !t->engine_known) {
        send_probe(t);
    } else {
        send_walk(t);
    }
    after_io(t);
}

/* ---- replies ------------------------------------------------------------- */

static void probe_reply(struct target *t, netsnmp_session *sess)
{
    if (sess->securityEngineIDLen == 0) {
        fail(t, NP_SNMP_UNKNOWN_ENGINE, "engine discovery: the reply carried no engine ID");
        return;
    }
    if (sess->engineBoots || sess->engineTime) {
        set_enginetime(sess->securityEngineID, (u_int)sess->securityEngineIDLen, sess->engineBoots,
                       sess->engineTime, TRUE);
    }
    /* Localises the keys for the discovered engine (what net-snmp's blocking
     * probe does after discovery). */
    if (create_user_from_session(sess) != SNMPERR_SUCCESS) {
        fail(t, NP_SNMP_UNKNOWN_ENGINE, "could not create the USM user for the engine");
        return;
    }
    t->engine_known = true;
    send_walk(t);
}

static void sys_value(struct target *t, size_t i, const netsnmp_variable_list *v)
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
            t->sys_uptime_cs = u;
            t->rounds[t->n_rounds - 1].uptime_cs = u;
        }
        break;
    }
    case S_DESCR:
        if (v->type == ASN_OCTET_STR) {
            size_t len = v->val_len > NP_SNMP_MAX_STRING ? NP_SNMP_MAX_STRING : v->val_len;
            np_snmp_text(t->sys_descr, sizeof t->sys_descr, v->val.string, len);
        }
        break;
    case S_NAME:
        if (v->type == ASN_OCTET_STR) {
            size_t len = v->val_len > NP_SNMP_MAX_STRING ? NP_SNMP_MAX_STRING : v->val_len;
            np_snmp_text(t->sys_name, sizeof t->sys_name, v->val.string, len);
        }
        break;
    case S_OBJID:
        if (v->type == ASN_OBJECT_ID) {
            size_t n = v->val_len / sizeof(oid), o = 0;
            for (size_t k = 0; k < n && o + 12 < sizeof t->sys_oid; k++) {
                int w = snprintf(t->sys_oid + o, sizeof t->sys_oid - o, "%s%lu", k ? "." : "",
                                 (unsigned long)v->val.objid[k]);
                if (w < 0) {
                    break;
                }
                o += (size_t)w;
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

static void walk_reply(struct target *t, netsnmp_pdu *pdu)
{
    bool v1 = t->conf->version == NP_SNMP_V1;
    if (pdu->errstat != SNMP_ERR_NOERROR) {
        long ei = pdu->errindex;
        if (v1 && pdu->errstat == SNMP_ERR_NOSUCHNAME && ei > (long)t->n_nonrep &&
            ei <= (long)(t->n_nonrep + t->n_sent)) {
            /* v1 ends a GETNEXT walk with noSuchName on the exhausted column. */
            t->col_done[t->sent_cols[ei - 1 - (long)t->n_nonrep]] = true;
            send_walk(t);
            return;
        }
        if (v1 && pdu->errstat == SNMP_ERR_NOSUCHNAME && ei == 1) {
            fail(t, NP_SNMP_NO_SUCH_OBJECT, "oid=sysUpTime.0");
            return;
        }
        if (pdu->errstat == SNMP_ERR_TOOBIG && t->max_rep > 1) {
            t->max_rep /= 2;
            send_walk(t);
            return;
        }
        fail(t, NP_SNMP_PROTOCOL_ERROR, "error-status %s (%ld) index %ld",
             snmp_errstring((int)pdu->errstat), pdu->errstat, ei);
        return;
    }
    if (t->n_rounds == t->cap_rounds) {
        size_t cap = t->cap_rounds ? t->cap_rounds * 2 : 16;
        struct round *r = realloc(t->rounds, cap * sizeof *r);
        if (!r) {
            fail(t, NP_SNMP_TOO_BIG, "out of memory");
            return;
        }
        t->rounds = r;
        t->cap_rounds = cap;
    }
    if (t->n_rounds >= MAX_ROUNDS) {
        fail(t, NP_SNMP_TOO_BIG, "more than %d requests in one poll", MAX_ROUNDS);
        return;
    }
    /* Stamped when the reply is read: the counters were sampled a round trip
     * at most earlier, and it is the same for every poll. */
    struct round *rd = &t->rounds[t->n_rounds++];
    rd->mono_ms = (int64_t)(uv_hrtime() / 1000000);
    rd->wall_ms = np_clock_wall_ms();
    rd->uptime_cs = 0;

    netsnmp_variable_list *v = pdu->variables;
    if (!v || !uptime_ok(v)) {
        fail(t, NP_SNMP_NO_SUCH_OBJECT, "oid=sysUpTime.0");
        return;
    }
    size_t i = 0;
    for (; v && i < t->n_nonrep; v = v->next_variable, i++) {
        sys_value(t, i, v);
    }
    bool stepped[N_COLS] = {false};
    size_t k = 0, count = 0;
    for (; v && count < MAX_VARBINDS; v = v->next_variable, k++, count++) {
        int c = t->sent_cols[k % t->n_sent];
        if (t->col_done[c]) {
            continue;
        }
        const size_t cl = col_oid[c].len;
        if (v->type == SNMP_ENDOFMIBVIEW || v->type == SNMP_NOSUCHOBJECT ||
            v->type == SNMP_NOSUCHINSTANCE || v->name_length != cl + 1 ||
            memcmp(v->name, col_oid[c].o, cl * sizeof(oid)) != 0) {
            t->col_done[c] = true;
            continue;
        }
        if (v->name_length > COL_OID_MAX ||
            snmp_oid_compare(v->name, v->name_length, t->col_last[c], t->col_last_len[c]) <= 0) {
            /* RFC 3416 4.2.3: GETNEXT must advance; an agent that loops is cut off. */
            t->col_done[c] = true;
            continue;
        }
        memcpy(t->col_last[c], v->name, v->name_length * sizeof(oid));
        t->col_last_len[c] = v->name_length;
        stepped[c] = true;
        if (v->name[cl] > UINT32_MAX || v->name[cl] == 0) {
            continue; /* ifIndex is 1..2147483647 */
        }
        struct row *r = row_get(t, (uint32_t)v->name[cl]);
        if (!r) {
            fail(t, NP_SNMP_TOO_BIG, "more than %d interfaces", MAX_ROWS);
            return;
        }
        store(t, r, (enum col)c, v);
    }
    t->first_round = false;
    bool any_active = false, any_step = false;
    for (size_t s = 0; s < t->n_sent; s++) {
        int c = t->sent_cols[s];
        any_active = any_active || !t->col_done[c];
        any_step = any_step || stepped[c];
    }
    if (!any_active) {
        t->phase = PH_IDLE;
        t->completed = true;
        return;
    }
    if (!any_step) {
        /* A reply without progress (agent truncated everything): ask for less. */
        if (t->max_rep > 1) {
            t->max_rep /= 2;
        } else {
            fail(t, NP_SNMP_PROTOCOL_ERROR, "walk makes no progress");
            return;
        }
    }
    send_walk(t);
}

static int snmp_cb(int op, netsnmp_session *sess, int reqid, netsnmp_pdu *pdu, void *magic)
{
    struct target *t = magic;
    if (t->phase == PH_IDLE) {
        return 1;
    }
    switch (op) {
    case NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE:
        /* Reports may carry another request ID than the request (RFC 3412
         * 7.2.11 lets the agent answer before it could read one). */
        if (reqid != t->reqid && pdu->command != SNMP_MSG_REPORT) {
            return 1;
        }
        t->sec_error = 0;
        if (t->phase == PH_PROBE) {
            probe_reply(t, sess);
        } else if (pdu->command == SNMP_MSG_REPORT) {
            int e = snmpv3_get_report_type(pdu);
            fail(t, failure_of_snmperr(e), "report: %s", snmp_api_errstring(e));
        } else {
            walk_reply(t, pdu);
        }
        break;
    case NETSNMP_CALLBACK_OP_TIMED_OUT:
        if (reqid == t->reqid) {
            fail(t, NP_SNMP_TIMEOUT, "no reply after %" PRId64 " ms x %" PRId64 " tries",
                 t->conf->s->timeout_ms, t->conf->s->retries + 1);
        }
        break;
    case NETSNMP_CALLBACK_OP_RESEND:
        t->reqid = reqid;
        break;
    case NETSNMP_CALLBACK_OP_SEC_ERROR:
        /* net-snmp says this before it hands over the Report that explains
         * it (RECEIVED_MESSAGE, same read); only if none follows does it
         * end the poll (after_io). */
        t->sec_error = sess->s_snmp_errno ? sess->s_snmp_errno : SNMPERR_AUTHENTICATION_FAILURE;
        break;
    case NETSNMP_CALLBACK_OP_SEND_FAILED:
    case NETSNMP_CALLBACK_OP_DISCONNECT:
        fail(t, NP_SNMP_SEND_FAILED, "%s", snmp_api_errstring(sess->s_snmp_errno));
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
    if (hint < t->n_prev && strcmp(t->prev[hint].key, key) == 0) {
        return &t->prev[hint];
    }
    for (size_t i = 0; i < t->n_prev; i++) {
        if (strcmp(t->prev[i].key, key) == 0) {
            return &t->prev[i];
        }
    }
    return NULL;
}

static void free_states(struct ifstate *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].key);
    }
    free(s);
}

#define HAVE(r, c) (((r)->have >> (c)) & 1u)

static void deliver(struct target *t)
{
    struct np_snmp_poller *p = t->p;
    const struct np_snmp_settings *s = t->conf->s;
    struct np_snmp_target_result res = {
        .target = s->name,
        .host = s->host,
        .port = (unsigned)s->port,
        .failure = t->failure,
        .detail = t->detail,
        .rows = t->n_rows,
        .sys_name = t->sys_name,
        .sys_descr = t->sys_descr,
        .sys_object_id = t->sys_oid,
        .sys_uptime_cs = t->sys_uptime_cs,
        .started_mono_ms = t->started_ms,
        .finished_mono_ms = (int64_t)(uv_hrtime() / 1000000),
    };
    if (t->failure != NP_SNMP_OK) {
        if (p->cb.quiet) {
            goto out_done;
        }
        np_complain(&t->complain, NP_LOG_WARN,
                    "snmp: poll failed target=%s host=%s err=%s detail=\"%s\"", s->name, s->host,
                    np_snmp_failure_name(t->failure), t->detail);
        goto out_done;
    }
    np_complain_release(&t->complain, "snmp: poll recovered target=%s", s->name);
    qsort(t->rows, t->n_rows, sizeof *t->rows, row_cmp);
    struct ifstate *next = calloc(t->n_rows ? t->n_rows : 1, sizeof *next);
    if (!next) {
        res.failure = NP_SNMP_TOO_BIG;
        res.detail = "out of memory";
        goto out_done;
    }
    size_t n_next = 0, n_disc = 0;
    char disc_first[NP_SNMP_MAX_STRING + 16] = "";
    enum np_counter_status disc_in = NP_COUNTER_OK, disc_out = NP_COUNTER_OK;
    for (size_t i = 0; i < t->n_rows; i++) {
        struct row *r = &t->rows[i];
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
            if (strcmp(next[j].key, key) == 0) {
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
        const struct round *rin = &t->rounds[cin >= 0 ? r->round[cin] : 0];
        rd.sys_uptime_cs = rin->uptime_cs;
        rd.time_mono_ms = rin->mono_ms;
        rd.time_wall_ms = rin->wall_ms;

        struct ifstate *st = &next[n_next];
        st->key = strdup(key);
        if (!st->key) {
            continue;
        }
        n_next++;
        st->oper = r->oper;
        st->admin = r->admin;
        st->has_counters = rd.counter_bits != 0;
        if (st->has_counters) {
            const struct round *rout = &t->rounds[r->round[cout]];
            st->in = (struct np_counter_reading){
                .time_ms = rin->mono_ms,
                .value = rd.in_octets,
                .width_bits = rd.counter_bits,
                .has_uptime = true,
                .uptime_cs = rin->uptime_cs,
                .uptime_wrap = NP_UPTIME_WRAP_TIMETICKS,
                .has_discontinuity = HAVE(r, C_DISC),
                .discontinuity_cs = r->disc,
            };
            st->out = st->in;
            st->out.time_ms = rout->mono_ms;
            st->out.value = rd.out_octets;
            st->out.uptime_cs = rout->uptime_cs;
        }
        rd.in.status = NP_COUNTER_BAD_INTERVAL;
        rd.out.status = NP_COUNTER_BAD_INTERVAL;
        struct ifstate *old = find_prev(t, key, n_next - 1);
        if (old) {
            if (old->has_counters && st->has_counters) {
                rd.has_previous = true;
                np_counter_delta(&old->in, &st->in, rd.rate_limit_bps, &rd.in);
                np_counter_delta(&old->out, &st->out, rd.rate_limit_bps, &rd.out);
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
            for (int w = 0; w < 2; w++) {
                if (olds[w] && news[w] && olds[w] != news[w] && p->cb.on_event) {
                    struct np_snmp_if_event ev = {s->name, key,     r->if_index,    what[w],
                                                  olds[w], news[w], rd.time_wall_ms};
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
    free_states(t->prev, t->n_prev);
    t->prev = next;
    t->n_prev = n_next;
out_done:
    if (p->cb.on_target_done) {
        p->cb.on_target_done(p->ctx, &res);
    }
    rows_reset(t);
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
    struct target *t = h->data;
    (void)events;
    if (status < 0) {
        np_log(NP_LOG_WARN, "snmp: socket error target=%s err=%s", t->conf->s->name,
               uv_strerror(status));
        return;
    }
    snmp_sess_read2(t->sessp, &t->fdset);
    after_io(t);
}

static void on_timeout_timer(uv_timer_t *h)
{
    struct np_snmp_poller *p = h->data;
    int64_t now = (int64_t)uv_now(p->loop);
    for (size_t i = 0; i < p->n; i++) {
        struct target *t = &p->t[i];
        if (t->deadline_ms >= 0 && t->deadline_ms <= now) {
            snmp_sess_timeout(t->sessp);
            after_io(t);
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
    for (size_t i = 0; i < p->n; i++) {
        int64_t d = p->t[i].deadline_ms;
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

static int open_session(struct target *t, struct np_err *err)
{
    const struct np_snmp_settings *s = t->conf->s;
    netsnmp_session ss;
    snmp_sess_init(&ss);
    char peer[288];
    if (strchr(s->host, ':')) {
        snprintf(peer, sizeof peer, "udp6:[%s]:%" PRId64, s->host, s->port);
    } else {
        snprintf(peer, sizeof peer, "udp:%s:%" PRId64, s->host, s->port);
    }
    ss.peername = peer;
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
        ss.flags |= SNMP_FLAGS_DONT_PROBE; /* we discover the engine asynchronously */
        ss.securityModel = SNMP_SEC_MODEL_USM;
        ss.securityName = s->user;
        ss.securityNameLen = strlen(s->user);
        if (s->context[0]) {
            ss.contextName = s->context;
            ss.contextNameLen = strlen(s->context);
        }
        ss.securityLevel = t->conf->priv != NP_SNMP_PRIV_NONE   ? SNMP_SEC_LEVEL_AUTHPRIV
                           : t->conf->auth != NP_SNMP_AUTH_NONE ? SNMP_SEC_LEVEL_AUTHNOPRIV
                                                                : SNMP_SEC_LEVEL_NOAUTH;
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
            ss.securityAuthProto = a;
            ss.securityAuthProtoLen = USM_AUTH_PROTO_SHA_LEN;
            ss.securityAuthKeyLen = USM_AUTH_KU_LEN;
            if (generate_Ku(a, (u_int)ss.securityAuthProtoLen, (const u_char *)s->auth_password,
                            strlen(s->auth_password), ss.securityAuthKey,
                            &ss.securityAuthKeyLen) != SNMPERR_SUCCESS) {
                return np_err_set(err, NP_ESNMP, "snmp: target %s: cannot derive the auth key",
                                  s->name);
            }
        }
        if (t->conf->priv != NP_SNMP_PRIV_NONE) {
            switch (t->conf->priv) {
            case NP_SNMP_PRIV_DES:
                ss.securityPrivProto = usmDESPrivProtocol;
                ss.securityPrivProtoLen = OID_LENGTH(usmDESPrivProtocol);
                break;
            case NP_SNMP_PRIV_AES192:
                ss.securityPrivProto = usmAES192PrivProtocol;
                ss.securityPrivProtoLen = OID_LENGTH(usmAES192PrivProtocol);
                break;
            case NP_SNMP_PRIV_AES256:
                ss.securityPrivProto = usmAES256PrivProtocol;
                ss.securityPrivProtoLen = OID_LENGTH(usmAES256PrivProtocol);
                break;
            default:
                ss.securityPrivProto = usmAESPrivProtocol;
                ss.securityPrivProtoLen = OID_LENGTH(usmAESPrivProtocol);
                break;
            }
            ss.securityPrivKeyLen = USM_PRIV_KU_LEN;
            if (generate_Ku(ss.securityAuthProto, (u_int)ss.securityAuthProtoLen,
                            (const u_char *)s->priv_password, strlen(s->priv_password),
                            ss.securityPrivKey, &ss.securityPrivKeyLen) != SNMPERR_SUCCESS) {
                return np_err_set(err, NP_ESNMP, "snmp: target %s: cannot derive the priv key",
                                  s->name);
            }
        }
    }
    t->sessp = snmp_sess_open(&ss);
    memset(ss.securityAuthKey, 0, sizeof ss.securityAuthKey);
    memset(ss.securityPrivKey, 0, sizeof ss.securityPrivKey);
    if (!t->sessp) {
        char *why = NULL;
        int e1 = 0, e2 = 0;
        snmp_error(&ss, &e1, &e2, &why);
        snprintf(t->open_error, sizeof t->open_error, "cannot open session to %s: %s", peer,
                 why ? why : "unknown error");
        free(why);
        np_log(NP_LOG_WARN, "snmp: open failed target=%s detail=\"%s\"", s->name, t->open_error);
        return 0; /* reported by each poll of this target, the others go on */
    }
    netsnmp_transport *tr = snmp_sess_transport(t->sessp);
    if (!tr || tr->sock < 0) {
        snmp_sess_close(t->sessp);
        t->sessp = NULL;
        snprintf(t->open_error, sizeof t->open_error, "no socket for %s", peer);
        return 0;
    }
    netsnmp_large_fd_set_init(&t->fdset, tr->sock + 1);
    NETSNMP_LARGE_FD_SET(tr->sock, &t->fdset);
    int rc = uv_poll_init(t->p->loop, &t->poll, tr->sock);
    if (rc == 0) {
        t->poll.data = t;
        t->poll_started = true;
        rc = uv_poll_start(&t->poll, UV_READABLE, on_readable);
    }
    if (rc != 0) {
        return np_err_set(err, NP_ESNMP, "snmp: target %s: uv_poll: %s", s->name, uv_strerror(rc));
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
    p->t = calloc(p->n ? p->n : 1, sizeof *p->t);
    if (!p->t) {
        np_snmp_targets_free(p->confs, p->n);
        free(p);
        np_err_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    uv_timer_init(loop, &p->timeout_timer);
    p->timeout_timer.data = p;
    for (size_t i = 0; i < p->n; i++) {
        struct target *t = &p->t[i];
        t->p = p;
        t->conf = &p->confs[i];
        t->deadline_ms = -1;
        uv_timer_init(loop, &t->sched);
        t->sched.data = t;
        t->sched_started = true;
        if (open_session(t, err) != 0) {
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

int np_snmp_poller_start(struct np_snmp_poller *p)
{
    for (size_t i = 0; i < p->n; i++) {
        struct target *t = &p->t[i];
        uint64_t interval = (uint64_t)t->conf->s->interval_ms;
        /* Spread first polls evenly over each target's interval. */
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
        if (t->phase != PH_IDLE || t->in_once) {
            continue;
        }
        t->in_once = true;
        p->once_pending++;
        start_poll(t);
    }
    if (--p->once_pending == 0 && done) {
        done(p, p->ctx);
    }
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct np_snmp_poller *p = h->data;
    if (--p->pending_handles == 0) {
        free(p->t);
        np_snmp_targets_free(p->confs, p->n);
        free(p);
    }
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
    for (size_t i = 0; i < p->n; i++) {
        struct target *t = &p->t[i];
        if (t->poll_started) {
            t->poll.data = p;
            p->pending_handles++;
            uv_close((uv_handle_t *)&t->poll, on_handle_closed);
            netsnmp_large_fd_set_cleanup(&t->fdset);
        }
        if (t->sched_started) {
            t->sched.data = p;
            p->pending_handles++;
            uv_close((uv_handle_t *)&t->sched, on_handle_closed);
        }
        if (t->sessp) {
            snmp_sess_close(t->sessp);
            t->sessp = NULL;
        }
        rows_reset(t);
        free(t->rows);
        free(t->slot);
        free(t->rounds);
        free_states(t->prev, t->n_prev);
    }
}
