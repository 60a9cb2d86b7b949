/* Unit tests of collector/outage: table-driven timelines.
 *
 * A small simulator plays one agent second by second: probe rounds, batches
 * every batch interval into a spool, the spool drained towards the collector
 * at a bounded rate whenever the path is up, and cuts of the three kinds (the
 * school's link: probes fail and nothing gets out; the agent: nothing runs;
 * the path to the collector only: probes fine, nothing gets out). The
 * collector side is the module under test: heard + add per batch received,
 * tick every second. Each table row says which outages must come out, with
 * exact start and end on the agent's clock. */
#include "outage.h"

#include "check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define T0 INT64_C(1700000000000) /* collector wall clock at second 0 */
#define MONO0 INT64_C(5000000)    /* collector monotonic clock at second 0 */
#define MAX_BATCHES 1024

struct expect {
    enum np_outage_rec_cause cause;
    int64_t start_s, end_s; /* seconds of the simulation; end -1: open */
};

struct scenario {
    const char *name;
    int64_t batch_s, probe_s, end_s;
    int64_t off_ms;               /* agent clock minus collector clock */
    int64_t timeout_ms;           /* 0: 30 s */
    int64_t cut_from, cut_to;     /* link down: probes fail, nothing gets out */
    int64_t down_from, down_to;   /* agent not running */
    int64_t path_from, path_to;   /* only the path to the collector is down */
    int64_t drop_from, drop_to;   /* batches created then are dropped from the spool */
    int64_t fail2_from, fail2_to; /* the second probe alone fails */
    unsigned n_probes;            /* 0: the agent's uplink verdict only */
    int64_t drain_per_s;          /* backlog batches sent per second */
    int64_t suspected_within_s;   /* suspected visible this many s after the last batch heard */
    size_t n_expect;
    struct expect expect[4];
};

struct sbatch {
    uint64_t seq;
    int64_t created_ms, start_ms;
    int uplink;
    struct np_outage_probe probes[4];
    size_t n_probes;
    struct np_outage_mark marks[4];
    size_t n_marks;
    uint64_t spool_batches;
    int64_t spool_oldest_ms;
};

struct sim {
    const struct scenario *sc;
    struct np_outage_tracker *t;
    struct sbatch batches[MAX_BATCHES];
    size_t n_batches;
    size_t spool[MAX_BATCHES];
    size_t spool_head, spool_tail;
    int64_t first_suspected_s;
    bool suspected_while_draining; /* seen: heartbeats back, backlog left, still suspected */
    bool confirmed_while_draining;
};

static bool in(int64_t s, int64_t from, int64_t to)
{
    return s >= from && s < to;
}

static int64_t agent_ms(const struct scenario *sc, int64_t s)
{
    return T0 + s * 1000 + sc->off_ms;
}

static struct np_outage_batch view(const struct sbatch *b)
{
    return (struct np_outage_batch){
        .agent = "school-1",
        .seq = b->seq,
        .created_ms = b->created_ms,
        .agent_start_ms = b->start_ms,
        .uplink = b->uplink,
        .probes = b->probes,
        .n_probes = b->n_probes,
        .marks = b->marks,
        .n_marks = b->n_marks,
    };
}

static size_t get_list(struct np_outage_tracker *t, struct np_outage_rec *out, size_t cap)
{
    size_t n = 0;
    if (np_outage_get(t, "school-1", out, cap, &n, NULL) != 0) {
        return 0;
    }
    return n;
}

static bool has_suspected(struct np_outage_tracker *t)
{
    struct np_outage_rec list[16];
    size_t n = get_list(t, list, 16);
    for (size_t i = 0; i < n; i++) {
        if (list[i].state == NP_OUTAGE_SUSPECTED) {
            return true;
        }
    }
    return false;
}

static void sim_run(struct sim *m, const struct scenario *sc)
{
    memset(m, 0, sizeof *m);
    m->sc = sc;
    m->first_suspected_s = -1;
    struct np_outage_config cfg = {.heartbeat_timeout_ms = sc->timeout_ms ? sc->timeout_ms : 30000};
    CHECK_INT(np_outage_tracker_new(&cfg, &m->t), 0);
    struct sbatch cur = {0};
    uint64_t seq = 0;
    int64_t start_ms = 0, lost_from = 0, lost_to = 0;
    int last_verdict = 0;
    bool was_running = false;
    for (int64_t s = 0; s <= sc->end_s; s++) {
        bool running = !in(s, sc->down_from, sc->down_to);
        bool link_ok = !in(s, sc->cut_from, sc->cut_to);
        bool path_ok = link_ok && !in(s, sc->path_from, sc->path_to);
        int64_t now_wall = T0 + s * 1000, now_mono = MONO0 + s * 1000;
        if (running && !was_running) {
            start_ms = agent_ms(sc, s);
            cur = (struct sbatch){0};
            cur.marks[cur.n_marks++] =
                (struct np_outage_mark){NP_OUTAGE_MARK_AGENT_START, start_ms, 0};
            last_verdict = 0;
        }
        was_running = running;
        if (running && s % sc->probe_s == 0) {
            static const char *const names[] = {"dns", "http", "icmp"};
            for (unsigned p = 0; p < sc->n_probes && p < 3; p++) {
                bool ok = link_ok && !(p == 1 && in(s, sc->fail2_from, sc->fail2_to));
                cur.probes[cur.n_probes++] =
                    (struct np_outage_probe){names[p], agent_ms(sc, s), sc->probe_s * 1000, ok};
            }
            int verdict = link_ok ? 1 : 2;
            if (verdict != last_verdict && cur.n_marks < 4) {
                cur.marks[cur.n_marks++] = (struct np_outage_mark){
                    link_ok ? NP_OUTAGE_MARK_UPLINK_UP : NP_OUTAGE_MARK_UPLINK_DOWN,
                    agent_ms(sc, s), 0};
                last_verdict = verdict;
            }
        }
        if (running && s % sc->batch_s == 0) {
            cur.seq = ++seq;
            cur.created_ms = agent_ms(sc, s);
            cur.start_ms = start_ms;
            cur.uplink = last_verdict;
            cur.spool_batches = m->spool_tail - m->spool_head;
            cur.spool_oldest_ms =
                cur.spool_batches ? m->batches[m->spool[m->spool_head]].created_ms : 0;
            if (in(s, sc->drop_from, sc->drop_to)) {
                /* The spool is full: this batch is shed, the next says so. */
                lost_from = lost_from ? lost_from : cur.created_ms;
                lost_to = cur.created_ms;
            } else {
                if (lost_from && cur.n_marks < 4) {
                    cur.marks[cur.n_marks++] =
                        (struct np_outage_mark){NP_OUTAGE_MARK_DATA_LOST, lost_from, lost_to};
                    lost_from = lost_to = 0;
                }
                m->batches[m->n_batches] = cur;
                m->spool[m->spool_tail++] = m->n_batches++;
            }
            cur = (struct sbatch){0};
        }
        if (running && path_ok) {
            for (int64_t k = 0; k < sc->drain_per_s && m->spool_head < m->spool_tail; k++) {
                const struct sbatch *b = &m->batches[m->spool[m->spool_head++]];
                CHECK_INT(np_outage_heard(m->t, "school-1", now_mono, now_wall, b->created_ms,
                                          b->spool_batches, b->spool_oldest_ms),
                          0);
                struct np_outage_batch v = view(b);
                CHECK_INT(np_outage_add(m->t, &v), 0);
            }
            if (m->spool_head < m->spool_tail && m->first_suspected_s >= 0) {
                struct np_outage_rec list[16];
                size_t n = get_list(m->t, list, 16);
                for (size_t i = 0; i < n; i++) {
                    if (list[i].state == NP_OUTAGE_SUSPECTED) {
                        m->suspected_while_draining = true;
                    } else if (list[i].end_ms == 0) {
                        m->confirmed_while_draining = true;
                    }
                }
            }
        }
        np_outage_tick(m->t, now_mono + 999);
        if (m->first_suspected_s < 0 && has_suspected(m->t)) {
            m->first_suspected_s = s;
        }
    }
}

static void check_expect(const struct scenario *sc, struct np_outage_tracker *t)
{
    struct np_outage_rec list[16];
    size_t n = get_list(t, list, 16);
    if (n != sc->n_expect) {
        fprintf(stderr, "%s: %zu outages, expected %zu:\n", sc->name, n, sc->n_expect);
        for (size_t i = 0; i < n; i++) {
            fprintf(stderr, "  %s %s %lld..%lld %s\n", np_outage_rec_cause_name(list[i].cause),
                    np_outage_rec_state_name(list[i].state),
                    (long long)(list[i].start_ms - T0 - sc->off_ms),
                    (long long)(list[i].end_ms ? list[i].end_ms - T0 - sc->off_ms : -1),
                    list[i].detail);
        }
    }
    CHECK_INT(n, sc->n_expect);
    for (size_t i = 0; i < n && i < sc->n_expect; i++) {
        const struct expect *e = &sc->expect[i];
        CHECK_STR(np_outage_rec_cause_name(list[i].cause), np_outage_rec_cause_name(e->cause));
        CHECK_STR(np_outage_rec_state_name(list[i].state), "confirmed");
        CHECK_INT(list[i].start_ms, agent_ms(sc, e->start_s));
        CHECK_INT(list[i].end_ms, e->end_s < 0 ? 0 : agent_ms(sc, e->end_s));
    }
}

#define L NP_OUTAGE_CAUSE_LINK
#define A NP_OUTAGE_CAUSE_AGENT
#define U NP_OUTAGE_CAUSE_UNKNOWN

static const struct scenario scenarios[] = {
    /* The test: 3-minute cut, probes every 10 s. Start = the first
     * failed round (100), end = the first successful one (280). */
    {"link cut 3 min", 10, 10, 400, 0, 0, 100, 280, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 32, 1,
     {{L, 100, 280}}},
    /* Same with the cut between rounds: within one probe interval of it. */
    {"link cut off-round", 10, 10, 400, 0, 0, 95, 275, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 32, 1,
     {{L, 100, 280}}},
    /* Agent clock 2 h behind the collector's, and 7 min ahead: same answer. */
    {"clock 2 h behind", 10, 10, 400, -7200000, 0, 100, 280, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 32, 1,
     {{L, 100, 280}}},
    {"clock 7 min ahead", 10, 10, 400, 420000, 0, 100, 280, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 32, 1,
     {{L, 100, 280}}},
    /* Probes every 5 s, batches every 10 s, slow drain. */
    {"fast probes, slow drain",
     10,
     5,
     500,
     0,
     0,
     100,
     280,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     0,
     1,
     1,
     32,
     1,
     {{L, 100, 280}}},
    /* Agent stopped 100..200 (link fine): last sign of life 90, back at 200. */
    {"agent stopped", 10, 10, 300, 0, 0, 0, 0, 100, 200, 0, 0, 0, 0, 0, 0, 1, 2, 32, 1,
     {{A, 90, 200}}},
    /* Only the path to the collector was down: suspected, then nothing. */
    {"collector path down",
     10,
     10,
     300,
     0,
     0,
     0,
     0,
     0,
     0,
     100,
     200,
     0,
     0,
     0,
     0,
     1,
     2,
     32,
     0,
     {{0}}},
    /* Link down 100..300 and the agent down 150..250 inside it: split. */
    {"mixed link and agent",
     10,
     10,
     400,
     0,
     0,
     100,
     300,
     150,
     250,
     0,
     0,
     0,
     0,
     0,
     0,
     1,
     2,
     32,
     3,
     {{L, 100, 140}, {A, 140, 250}, {L, 250, 300}}},
    /* The spool shed the batches of 100..190: that part is unknown. */
    {"spool overflow",
     10,
     10,
     400,
     0,
     0,
     100,
     300,
     0,
     0,
     0,
     0,
     100,
     200,
     0,
     0,
     1,
     2,
     32,
     2,
     {{U, 90, 200}, {L, 200, 300}}},
    /* Two probes, quorum 1: one failing alone is no outage; both fail in the cut. */
    {"two probes quorum 1", 10, 10, 400, 0, 0, 100, 280, 0, 0, 0, 0, 0, 0, 30, 60, 2, 2, 32, 1,
     {{L, 100, 280}}},
    /* No probes configured: the agent's verdict (events, heartbeat) decides. */
    {"uplink verdict only", 10, 10, 400, 0, 0, 100, 280, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 32, 1,
     {{L, 100, 280}}},
    /* A cut shorter than the timeout is still an outage from the probes. */
    {"short cut", 10, 10, 200, 0, 0, 100, 120, 0, 0, 0, 0, 0, 0, 0, 0, 1, 5, 0, 1, {{L, 100, 120}}},
};

static void test_scenarios(void)
{
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        const struct scenario *sc = &scenarios[i];
        static struct sim m;
        sim_run(&m, sc);
        check_expect(sc, m.t);
        if (sc->suspected_within_s > 0) {
            /* Opened "at once": within a second of the timeout. */
            CHECK(m.first_suspected_s > 0);
            int64_t gap_from = sc->cut_to    ? sc->cut_from
                               : sc->down_to ? sc->down_from
                                             : sc->path_from;
            int64_t last_live = (gap_from - 1) / sc->batch_s * sc->batch_s;
            if (m.first_suspected_s < last_live + 30 ||
                m.first_suspected_s > last_live + sc->suspected_within_s) {
                fprintf(stderr, "%s: suspected at %lld, last heartbeat %lld\n", sc->name,
                        (long long)m.first_suspected_s, (long long)last_live);
            }
            CHECK(m.first_suspected_s >= last_live + 30);
            CHECK(m.first_suspected_s <= last_live + sc->suspected_within_s);
        } else {
            CHECK_INT(m.first_suspected_s, -1);
        }
        if (sc->drain_per_s == 1 && sc->suspected_within_s > 0 && sc->cut_to) {
            /* Heartbeats back, backlog still coming: suspected, never a
             * half-known confirmed outage. */
            CHECK(m.suspected_while_draining);
            CHECK(!m.confirmed_while_draining);
        }
        np_outage_tracker_free(m.t);
    }
}

/* The same batches applied twice, and in a shuffled order, to a fresh
 * tracker: the same single outage. */
static void test_replay_and_order(void)
{
    static struct sim m;
    sim_run(&m, &scenarios[0]);
    struct np_outage_rec want[16], got[16];
    size_t nw = get_list(m.t, want, 16);
    CHECK_INT(nw, 1);

    struct np_outage_config cfg = {.heartbeat_timeout_ms = 30000};
    struct np_outage_tracker *t = NULL;
    CHECK_INT(np_outage_tracker_new(&cfg, &t), 0);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < m.n_batches; i++) {
            struct np_outage_batch v = view(&m.batches[i]);
            CHECK_INT(np_outage_add(t, &v), 0);
        }
    }
    size_t ng = get_list(t, got, 16);
    CHECK_INT(ng, 1);
    CHECK(ng == 1 && got[0].start_ms == want[0].start_ms && got[0].end_ms == want[0].end_ms &&
          got[0].cause == NP_OUTAGE_CAUSE_LINK);
    np_outage_tracker_free(t);

    /* Out of order: a fixed shuffle (LCG), and newest first. */
    for (int variant = 0; variant < 2; variant++) {
        size_t idx[MAX_BATCHES];
        for (size_t i = 0; i < m.n_batches; i++) {
            idx[i] = variant == 0 ? i : m.n_batches - 1 - i;
        }
        if (variant == 0) {
            uint32_t x = 12345;
            for (size_t i = m.n_batches - 1; i > 0; i--) {
                x = x * 1103515245u + 12345u;
                size_t j = (x >> 8) % (i + 1);
                size_t tmp = idx[i];
                idx[i] = idx[j];
                idx[j] = tmp;
            }
        }
        CHECK_INT(np_outage_tracker_new(&cfg, &t), 0);
        for (size_t i = 0; i < m.n_batches; i++) {
            struct np_outage_batch v = view(&m.batches[idx[i]]);
            CHECK_INT(np_outage_add(t, &v), 0);
        }
        ng = get_list(t, got, 16);
        CHECK_INT(ng, 1);
        if (ng == 1) {
            CHECK_INT(got[0].start_ms, want[0].start_ms);
            CHECK_INT(got[0].end_ms, want[0].end_ms);
            CHECK_INT(got[0].cause, NP_OUTAGE_CAUSE_LINK);
        }
        np_outage_tracker_free(t);
    }
    np_outage_tracker_free(m.t);
}

static struct np_outage_batch simple(uint64_t seq, int64_t created, int64_t start,
                                     const struct np_outage_probe *p, size_t np)
{
    return (struct np_outage_batch){.agent = "school-1",
                                    .seq = seq,
                                    .created_ms = created,
                                    .agent_start_ms = start,
                                    .probes = p,
                                    .n_probes = np};
}

/* Suspected exactly after the timeout, not at it; nothing before any data;
 * no backlog yet: stays suspected with an unknown cause. */
static void test_heartbeat_gap(void)
{
    struct np_outage_config cfg = {.heartbeat_timeout_ms = 30000};
    struct np_outage_tracker *t = NULL;
    CHECK_INT(np_outage_tracker_new(&cfg, &t), 0);
    struct np_outage_rec list[4];
    size_t n = 9;
    CHECK_INT(np_outage_get(t, "school-1", list, 4, &n, NULL), -ENOENT);
    CHECK_INT(n, 0);
    CHECK_INT(np_outage_tick(t, MONO0 + 100000), 0);

    int64_t c = T0 + 3000;
    CHECK_INT(np_outage_heard(t, "school-1", MONO0, T0 + 3100, c, 0, 0), 0);
    struct np_outage_probe p = {"icmp", c - 1000, 10000, true};
    struct np_outage_batch b = simple(1, c, T0 - 60000, &p, 1);
    CHECK_INT(np_outage_add(t, &b), 0);
    CHECK_INT(np_outage_tick(t, MONO0 + 30000), 0);
    CHECK_INT(get_list(t, list, 4), 0);
    CHECK_INT(np_outage_tick(t, MONO0 + 30001), 1);
    n = get_list(t, list, 4);
    CHECK_INT(n, 1);
    CHECK_STR(np_outage_rec_state_name(list[0].state), "suspected");
    CHECK_STR(np_outage_rec_cause_name(list[0].cause), "unknown");
    CHECK_INT(list[0].start_ms, c);
    CHECK_INT(list[0].end_ms, 0);
    CHECK_INT(list[0].lag_ms, 100);
    CHECK_CONTAINS(list[0].detail, "no heartbeat");
    /* Later ticks change nothing. */
    CHECK_INT(np_outage_tick(t, MONO0 + 90000), 0);

    /* Heartbeats again, but the first batch is from the backlog: still
     * suspected, the detail tells the backlog. */
    struct np_outage_probe f = {"icmp", c + 9000, 10000, false};
    CHECK_INT(np_outage_heard(t, "school-1", MONO0 + 95000, T0 + 95100, c + 10000, 0, 0), 0);
    b = simple(2, c + 10000, T0 - 60000, &f, 1);
    CHECK_INT(np_outage_add(t, &b), 0);
    n = get_list(t, list, 4);
    CHECK_INT(n, 1);
    CHECK_STR(np_outage_rec_state_name(list[0].state), "suspected");
    CHECK_STR(np_outage_rec_cause_name(list[0].cause), "link");
    CHECK_CONTAINS(list[0].detail, "waiting for the agent's backlog");
    CHECK_INT(list[0].target_ms, T0 + 95100 - 100 - 2000);

    /* The pop interface hands the agent out once per change. */
    char id[NP_OUTAGE_AGENT_MAX + 1];
    CHECK(np_outage_pop_dirty(t, id, sizeof id));
    CHECK_STR(id, "school-1");
    CHECK(!np_outage_pop_dirty(t, id, sizeof id));

    /* A restarted collector goes on from what was stored. */
    struct np_outage_tracker *t2 = NULL;
    CHECK_INT(np_outage_tracker_new(&cfg, &t2), 0);
    CHECK_INT(np_outage_restore(t2, "school-1", MONO0, c + 10000, &list[0]), 0);
    struct np_outage_rec l2[4];
    size_t n2 = 0;
    int64_t wf = 0;
    CHECK_INT(np_outage_get(t2, "school-1", l2, 4, &n2, &wf), 0);
    CHECK_INT(n2, 1);
    CHECK_INT(l2[0].state, NP_OUTAGE_SUSPECTED);
    CHECK_INT(l2[0].start_ms, c);
    CHECK_INT(wf, c);
    /* The rest of the backlog reaches the target: a confirmed link outage
     * from the first failed round to the first good one. */
    for (int k = 2; k <= 9; k++) {
        int64_t ck = c + 10000 * k;
        struct np_outage_probe pk = {"icmp", ck - 1000, 10000, k >= 8};
        struct np_outage_batch bk = simple((uint64_t)k + 1, ck, T0 - 60000, &pk, 1);
        CHECK_INT(np_outage_add(t2, &bk), 0);
    }
    n2 = get_list(t2, l2, 4);
    CHECK_INT(n2, 1);
    CHECK_INT(l2[0].state, NP_OUTAGE_CONFIRMED);
    CHECK_INT(l2[0].cause, NP_OUTAGE_CAUSE_LINK);
    /* The restarted tracker never saw the round at c + 9000: its first
     * failed round is c + 19000 (the stored row keeps its earlier start;
     * state_db's sync does that). */
    CHECK_INT(l2[0].start_ms, c + 19000);
    CHECK_INT(l2[0].end_ms, c + 79000);
    np_outage_tracker_free(t2);
    np_outage_tracker_free(t);
}

/* Agent clock edge cases: an NTP step forward between consecutive batches
 * of one process is not an agent outage; a step back breaks nothing; no
 * outage ever ends before it starts. */
static void test_clock_steps(void)
{
    struct np_outage_config cfg = {.heartbeat_timeout_ms = 30000};
    struct np_outage_tracker *t = NULL;
    CHECK_INT(np_outage_tracker_new(&cfg, &t), 0);
    int64_t start = T0 - 100000;
    int64_t times[] = {T0,           T0 + 10000, T0 + 20000, T0 + 3620000,
                       T0 + 3630000, T0 + 30000, T0 + 40000, T0 + 3640000};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        struct np_outage_probe p = {"icmp", times[i] - 500, 10000, true};
        struct np_outage_batch b = simple(i + 1, times[i], start, &p, 1);
        CHECK_INT(np_outage_add(t, &b), 0);
    }
    struct np_outage_rec list[8];
    size_t n = get_list(t, list, 8);
    /* Step forward (seq 3 -> 4) bridged; the step back (5 -> 6) lands in
     * known time; 7 -> 8 jumps forward again, consecutive: bridged. */
    CHECK_INT(n, 0);
    for (size_t i = 0; i < n; i++) {
        CHECK(list[i].end_ms == 0 || list[i].end_ms >= list[i].start_ms);
    }

    /* Implausible times (a box without RTC) are ignored, not stored. */
    struct np_outage_probe bad = {"icmp", 1000, 10000, false};
    struct np_outage_batch b = simple(9, 5000, 0, &bad, 1);
    CHECK_INT(np_outage_add(t, &b), 0);
    CHECK_INT(get_list(t, list, 8), 0);
    /* Bad ids are refused. */
    b.agent = "";
    CHECK_INT(np_outage_add(t, &b), -EINVAL);
    CHECK_INT(np_outage_heard(t, NULL, 0, 0, 0, 0, 0), -EINVAL);
    np_outage_tracker_free(t);

    struct np_outage_tracker *t2 = NULL;
    struct np_outage_config bad_cfg = {.heartbeat_timeout_ms = 0};
    CHECK_INT(np_outage_tracker_new(&bad_cfg, &t2), -EINVAL);
    CHECK(t2 == NULL);
}

/* Quorum 2 of 2 probes: one failing probe is an outage. */
static void test_quorum(void)
{
    struct np_outage_config cfg = {.heartbeat_timeout_ms = 30000, .probe_quorum = 2};
    struct np_outage_tracker *t = NULL;
    CHECK_INT(np_outage_tracker_new(&cfg, &t), 0);
    for (int k = 0; k < 20; k++) {
        int64_t ck = T0 + 10000 * k;
        struct np_outage_probe p[2] = {{"dns", ck, 10000, true},
                                       {"http", ck, 10000, !(k >= 5 && k < 9)}};
        struct np_outage_batch b = simple((uint64_t)k + 1, ck, T0 - 1000, p, 2);
        CHECK_INT(np_outage_add(t, &b), 0);
    }
    struct np_outage_rec list[4];
    size_t n = get_list(t, list, 4);
    CHECK_INT(n, 1);
    CHECK_INT(list[0].start_ms, T0 + 50000);
    CHECK_INT(list[0].end_ms, T0 + 90000);
    np_outage_tracker_free(t);
}

/* Real probe timers drift: rounds 10.4 s apart at a 10 s interval are one
 * run, and a cut is one outage, not one per round. */
static void test_jitter(void)
{
    struct np_outage_config cfg = {.heartbeat_timeout_ms = 30000};
    struct np_outage_tracker *t = NULL;
    CHECK_INT(np_outage_tracker_new(&cfg, &t), 0);
    for (int k = 0; k < 30; k++) {
        int64_t ck = T0 + 10400 * k;
        struct np_outage_probe p = {"icmp", ck, 10000, !(k >= 10 && k < 20)};
        struct np_outage_batch b = simple((uint64_t)k + 1, ck + 50, T0 - 1000, &p, 1);
        CHECK_INT(np_outage_add(t, &b), 0);
    }
    struct np_outage_rec list[8];
    size_t n = get_list(t, list, 8);
    CHECK_INT(n, 1);
    CHECK_INT(list[0].start_ms, T0 + 104000);
    CHECK_INT(list[0].end_ms, T0 + 208000);
    np_outage_tracker_free(t);
}

/* A link down at the end of the evidence is open; names round-trip. */
static void test_open_and_names(void)
{
    struct np_outage_config cfg = {.heartbeat_timeout_ms = 30000};
    struct np_outage_tracker *t = NULL;
    CHECK_INT(np_outage_tracker_new(&cfg, &t), 0);
    for (int k = 0; k < 10; k++) {
        int64_t ck = T0 + 10000 * k;
        struct np_outage_probe p = {"icmp", ck, 10000, k < 6};
        struct np_outage_batch b = simple((uint64_t)k + 1, ck, T0 - 1000, &p, 1);
        CHECK_INT(np_outage_add(t, &b), 0);
    }
    struct np_outage_rec list[4];
    size_t n = get_list(t, list, 4);
    CHECK_INT(n, 1);
    CHECK_INT(list[0].start_ms, T0 + 60000);
    CHECK_INT(list[0].end_ms, 0);
    np_outage_tracker_free(t);

    enum np_outage_rec_cause c;
    enum np_outage_rec_state s;
    CHECK_INT(np_outage_rec_cause_parse("agent", &c), 0);
    CHECK_INT(c, NP_OUTAGE_CAUSE_AGENT);
    CHECK_INT(np_outage_rec_state_parse("confirmed", &s), 0);
    CHECK_INT(s, NP_OUTAGE_CONFIRMED);
    CHECK_INT(np_outage_rec_cause_parse("power", &c), -EINVAL);
}

int main(void)
{
    test_scenarios();
    test_replay_and_order();
    test_heartbeat_gap();
    test_clock_steps();
    test_quorum();
    test_jitter();
    test_open_and_names();
    return check_done("test_outage");
}
