/* journal_test: the collector's ingest journal on a real folder — order and
 * durability of appends, group commit (a burst of appends shares a few syncs,
 * a lone append is synced at once by one sync, appends from many agents
 * arriving one after another share syncs, and none completes before a sync
 * that covers it), barriers, acknowledgement of applied records and replay
 * after reopening. */
#include "journal.h"

#include "check.h"
#include "netpulse/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 100

struct item {
    struct np_journal_req req;
    char payload[32];
    int status;
    bool done;
    uint64_t done_ms;
};

static unsigned done_count;

static void on_done(struct np_journal_req *r, int status)
{
    struct item *it = (struct item *)r;
    it->status = status;
    it->done = true;
    it->done_ms = np_clock_mono_ms();
    done_count++;
}

static void submit(struct np_journal *j, struct item *it, const char *text)
{
    memset(it, 0, sizeof *it);
    if (text) {
        snprintf(it->payload, sizeof it->payload, "%s", text);
        it->req.data = it->payload;
        it->req.len = strlen(it->payload);
    }
    it->req.done = on_done;
    np_journal_submit(j, &it->req);
}

/* Appends arriving one by one, as from many agents posting at once: each
 * completion must find its record covered by a finished fdatasync. */
#define N_CONC 60
#define CONC_GAP_MS 3

static struct np_journal *conc_journal;
static unsigned conc_uncovered;

static void on_done_covered(struct np_journal_req *r, int status)
{
    struct np_journal_stats st;
    np_journal_stats(conc_journal, &st);
    if (status == 0 && r->jseq > st.synced_jseq) {
        fprintf(stderr, "jseq %llu completed, syncs cover only %llu\n", (unsigned long long)r->jseq,
                (unsigned long long)st.synced_jseq);
        conc_uncovered++;
    }
    on_done(r, status);
}

/* Runs the loop until want requests are done (5 s at most). */
static void run_until(uv_loop_t *loop, unsigned want)
{
    uint64_t deadline = np_clock_mono_ms() + 5000;
    while (done_count < want && np_clock_mono_ms() < deadline) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

struct seen {
    unsigned n;
    uint64_t first, last;
    int bad;
};

static int on_replay(void *ctx, uint64_t jseq, const void *data, size_t len)
{
    struct seen *s = ctx;
    char want[32];
    snprintf(want, sizeof want, "batch-%llu", (unsigned long long)jseq);
    if (len != strlen(want) || memcmp(data, want, len) != 0) {
        s->bad++;
    }
    if (s->n == 0) {
        s->first = jseq;
    }
    s->last = jseq;
    s->n++;
    return 0;
}

static void reopen_and_replay(uv_loop_t *loop, const char *dir, struct seen *s)
{
    struct np_journal *j = NULL;
    struct np_err err = {0};
    memset(s, 0, sizeof *s);
    CHECK_INT(np_journal_open(loop, dir, &j, &err), 0);
    if (!j) {
        return;
    }
    CHECK_INT(np_journal_replay(j, on_replay, s, &err), 0);
    np_journal_close(j);
    uv_run(loop, UV_RUN_DEFAULT);
}

int main(void)
{
    char dir[] = "/tmp/np-journal-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char jdir[64];
    snprintf(jdir, sizeof jdir, "%s/journal", dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct np_err err = {0};
    struct np_journal *j = NULL;
    static struct item items[N + 3];

    CHECK_INT(np_journal_open(&loop, jdir, &j, &err), 0);
    CHECK_INT(np_journal_start(j, &err), 0);

    /* A burst: everything done, in order, with consecutive journal seqs, and
     * the appends submitted while the first sync ran share the next ones. */
    struct np_journal_stats st0, st1;
    np_journal_stats(j, &st0);
    for (unsigned i = 0; i < N; i++) {
        char text[32];
        snprintf(text, sizeof text, "batch-%u", i + 1);
        submit(j, &items[i], text);
    }
    run_until(&loop, N);
    CHECK_INT(done_count, N);
    for (unsigned i = 0; i < N; i++) {
        CHECK_INT(items[i].status, 0);
        CHECK_U64(items[i].req.jseq, i + 1);
    }
    CHECK_U64(np_journal_backlog(j), N);
    np_journal_stats(j, &st1);
    printf("journal_test: burst of %u appends, %llu syncs\n", N,
           (unsigned long long)(st1.syncs - st0.syncs));
    if (st1.syncs == st0.syncs || st1.syncs - st0.syncs > N / 10) {
        fprintf(stderr, "%llu syncs for a burst of %u appends: no group commit\n",
                (unsigned long long)(st1.syncs - st0.syncs), N);
        check_failures++;
    }
    CHECK_U64(st1.synced_jseq, N);

    /* A lone append is synced at once (no timer to wait for), by one sync. */
    submit(j, &items[N], "batch-101");
    run_until(&loop, N + 1);
    np_journal_stats(j, &st0);
    CHECK_U64(st0.syncs, st1.syncs + 1);
    CHECK_U64(st0.synced_jseq, N + 1);
    submit(j, &items[N + 1], "batch-102");
    run_until(&loop, N + 2);
    CHECK_INT(items[N + 1].status, 0);
    /* A barrier with nothing unsynced completes at once, with no record. */
    submit(j, &items[N + 2], NULL);
    run_until(&loop, N + 3);
    CHECK_INT(items[N + 2].status, 0);
    CHECK_U64(items[N + 2].req.jseq, 0);

    /* Half applied: close persists that; the rest comes back at replay. */
    np_journal_applied(j, 50);
    np_journal_close(j);
    uv_run(&loop, UV_RUN_DEFAULT);

    struct seen s;
    reopen_and_replay(&loop, jdir, &s);
    CHECK_INT(s.n, N + 2 - 50);
    CHECK_U64(s.first, 51);
    CHECK_U64(s.last, N + 2);
    CHECK_INT(s.bad, 0);

    /* The replay acknowledged what it walked: nothing the second time. */
    reopen_and_replay(&loop, jdir, &s);
    CHECK_INT(s.n, 0);

    /* Start and close with nothing queued. */
    CHECK_INT(np_journal_open(&loop, jdir, &j, &err), 0);
    CHECK_INT(np_journal_start(j, &err), 0);
    np_journal_close(j);
    uv_run(&loop, UV_RUN_DEFAULT);

    /* Appends arriving every few ms, as from many agents: each completes
     * only once a sync covers it, and no append costs more than one sync. */
    {
        static struct item conc[N_CONC];
        CHECK_INT(np_journal_open(&loop, jdir, &j, &err), 0);
        CHECK_INT(np_journal_start(j, &err), 0);
        conc_journal = j;
        np_journal_stats(j, &st0);
        done_count = 0;
        uint64_t t0 = np_clock_mono_ms();
        for (unsigned i = 0; i < N_CONC; i++) {
            memset(&conc[i], 0, sizeof conc[i]);
            snprintf(conc[i].payload, sizeof conc[i].payload, "agent-%u", i);
            conc[i].req.data = conc[i].payload;
            conc[i].req.len = strlen(conc[i].payload);
            conc[i].req.done = on_done_covered;
            np_journal_submit(j, &conc[i].req);
            uint64_t next = np_clock_mono_ms() + CONC_GAP_MS;
            while (np_clock_mono_ms() < next) {
                uv_run(&loop, UV_RUN_NOWAIT);
                usleep(500);
            }
        }
        uint64_t span_ms = np_clock_mono_ms() - t0;
        run_until(&loop, N_CONC);
        np_journal_stats(j, &st1);
        CHECK_INT(done_count, N_CONC);
        for (unsigned i = 0; i < N_CONC; i++) {
            CHECK_INT(conc[i].status, 0);
        }
        CHECK_INT(conc_uncovered, 0);
        uint64_t syncs = st1.syncs - st0.syncs;
        printf("journal_test: %u appends over %llu ms, %llu syncs\n", N_CONC,
               (unsigned long long)span_ms, (unsigned long long)syncs);
        if (syncs == 0 || syncs > N_CONC) {
            fprintf(stderr, "%llu syncs for %u appends over %llu ms: no group commit\n",
                    (unsigned long long)syncs, N_CONC, (unsigned long long)span_ms);
            check_failures++;
        }
        np_journal_close(j);
        uv_run(&loop, UV_RUN_DEFAULT);
    }

    CHECK_INT(uv_loop_close(&loop), 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot remove %s\n", dir);
    }
    if (check_failures == 0) {
        printf("journal_test: ok\n");
    }
    return check_failures;
}
