/* Unit tests of collector/alert_rules: timelines played second by second
 * (heartbeats, silences, settlements, maintenance), checking which notices
 * come out and when. */
#include "alert_rules.h"

#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S 1000 /* ms per second */
#define MAX_OUT 512

struct out {
    struct np_alert *v[MAX_OUT];
    int64_t at[MAX_OUT];
    size_t n;
};

static void drain(struct np_alert_rules *r, struct out *o, int64_t now)
{
    struct np_alert *a;
    while ((a = np_alert_rules_pop(r)) != NULL) {
        if (o->n < MAX_OUT) {
            o->at[o->n] = now;
            o->v[o->n++] = a;
        } else {
            np_alert_free(a);
        }
    }
}

static void out_free(struct out *o)
{
    for (size_t i = 0; i < o->n; i++) {
        np_alert_free(o->v[i]);
    }
    o->n = 0;
}

static size_t count_kind(const struct out *o, enum np_alert_kind k, bool suppressed)
{
    size_t n = 0;
    for (size_t i = 0; i < o->n; i++) {
        n += o->v[i]->kind == k && o->v[i]->suppressed == suppressed;
    }
    return n;
}

static void hear(struct np_alert_rules *r, const char *site, int64_t now)
{
    struct np_alert_input in = {.kind = NP_ALERT_IN_HEARD, .site = site, .time_ms = now};
    CHECK_INT(np_alert_rules_input(r, &in, now), 0);
}

static void base_cfg(struct np_alert_rules_config *c)
{
    np_alert_rules_defaults(c);
    c->site_down_after_ms = 3 * S;
    c->hold_down_ms = 2 * S;
    c->settle_wait_ms = 10 * S;
    c->digest_window_ms = 0;
    c->reminder_ms = 0;
    c->flap_max = 0;
}

/* One site: beats 0..10 s, silent 11..19, beats again from 20; the backlog
 * settles the outage (link, 10.5..19.5) at 21. */
static void test_down_up_settled(void)
{
    struct np_alert_rules_config c;
    struct np_alert_rules *r;
    struct out o = {0};
    base_cfg(&c);
    CHECK_INT(np_alert_rules_new(&c, &r), 0);
    for (int64_t t = 0; t <= 40; t++) {
        int64_t now = t * S;
        if (t <= 10 || t >= 20) {
            hear(r, "school-1", now);
        }
        if (t == 21) {
            struct np_alert_input in = {.kind = NP_ALERT_IN_SETTLED,
                                        .site = "school-1",
                                        .start_ms = 10500,
                                        .end_ms = 19500,
                                        .cause = "link"};
            CHECK_INT(np_alert_rules_input(r, &in, now), 0);
        }
        np_alert_rules_tick(r, now);
        drain(r, &o, now);
    }
    CHECK_INT(o.n, 2);
    if (o.n == 2) {
        CHECK_INT(o.v[0]->kind, NP_ALERT_SITE_DOWN);
        CHECK_INT(o.at[0], 13 * S);
        CHECK_INT(o.v[0]->start_ms, 10 * S);
        CHECK_INT(o.v[0]->severity, NP_ALERT_CRITICAL);
        CHECK_STR(o.v[0]->site, "school-1");
        CHECK_INT(o.v[1]->kind, NP_ALERT_SITE_UP);
        CHECK_INT(o.at[1], 22 * S);
        CHECK_INT(o.v[1]->end_ms - o.v[1]->start_ms, 9000);
        CHECK_STR(o.v[1]->cause, "link");
        CHECK(strcmp(o.v[0]->key, o.v[1]->key) != 0);
    }
    out_free(&o);
    np_alert_rules_free(r);
}

/* No settlement: UP after settle_wait with the heartbeat gap, cause pending. */
static void test_settle_wait(void)
{
    struct np_alert_rules_config c;
    struct np_alert_rules *r;
    struct out o = {0};
    base_cfg(&c);
    CHECK_INT(np_alert_rules_new(&c, &r), 0);
    for (int64_t t = 0; t <= 40; t++) {
        if (t <= 5 || t >= 15) {
            hear(r, "s", t * S);
        }
        np_alert_rules_tick(r, t * S);
        drain(r, &o, t * S);
    }
    CHECK_INT(o.n, 2);
    if (o.n == 2) {
        CHECK_INT(o.v[1]->kind, NP_ALERT_SITE_UP);
        CHECK_INT(o.at[1], 25 * S);
        CHECK_INT(o.v[1]->start_ms, 5 * S);
        CHECK_INT(o.v[1]->end_ms, 15 * S);
        CHECK_STR(o.v[1]->cause, "pending");
    }
    out_free(&o);
    np_alert_rules_free(r);
}

/* 50 sites cut together (last beats spread over 2 s) -> one digest DOWN and
 * one digest UP; 2 sites -> two single notices. */
static void run_many(size_t n_sites, struct out *o)
{
    struct np_alert_rules_config c;
    struct np_alert_rules *r;
    char ids[64][32];
    base_cfg(&c);
    c.digest_window_ms = 5 * S;
    c.digest_min = 3;
    CHECK_INT(np_alert_rules_new(&c, &r), 0);
    for (size_t i = 0; i < n_sites; i++) {
        snprintf(ids[i], sizeof ids[i], "site-%02zu", i);
    }
    for (int64_t t = 0; t <= 80; t++) {
        for (size_t i = 0; i < n_sites; i++) {
            if (t <= 10 + (int64_t)(i % 3) || t >= 30) {
                hear(r, ids[i], t * S);
            }
        }
        if (t == 31) {
            for (size_t i = 0; i < n_sites; i++) {
                struct np_alert_input in = {.kind = NP_ALERT_IN_SETTLED,
                                            .site = ids[i],
                                            .start_ms = 10500,
                                            .end_ms = 29500,
                                            .cause = "link"};
                CHECK_INT(np_alert_rules_input(r, &in, t * S), 0);
            }
        }
        np_alert_rules_tick(r, t * S);
        drain(r, o, t * S);
    }
    np_alert_rules_free(r);
}

static void test_digest(void)
{
    struct out o = {0};
    run_many(50, &o);
    CHECK_INT(o.n, 2);
    if (o.n == 2) {
        CHECK_INT(o.v[0]->kind, NP_ALERT_SITE_DOWN);
        CHECK_INT(o.v[0]->n_sites, 50);
        CHECK_STR(o.v[0]->site, "");
        CHECK_INT(o.at[0], 18 * S); /* first due at 13 + window 5 */
        CHECK_INT(o.v[1]->kind, NP_ALERT_SITE_UP);
        CHECK_INT(o.v[1]->n_sites, 50);
        CHECK_STR(o.v[1]->sites[7].cause, "link");
    }
    out_free(&o);
    run_many(2, &o);
    CHECK_INT(o.n, 4);
    CHECK_INT(count_kind(&o, NP_ALERT_SITE_DOWN, false), 2);
    for (size_t i = 0; i < o.n; i++) {
        CHECK_INT(o.v[i]->n_sites, 0);
    }
    out_free(&o);
}

/* Heartbeats on 6 s / off 6 s for 120 s: the documented bound holds
 * (2 * flap_max + 2 per flap window), a FLAPPING notice is sent, and the last
 * notice is an UP once the site is stable. */
static void test_flapping(void)
{
    struct np_alert_rules_config c;
    struct np_alert_rules *r;
    struct out o = {0};
    base_cfg(&c);
    c.flap_max = 2;
    c.flap_window_ms = 300 * S;
    c.flap_stable_ms = 20 * S;
    c.hold_down_ms = 0;
    c.settle_wait_ms = 1 * S;
    CHECK_INT(np_alert_rules_new(&c, &r), 0);
    for (int64_t t = 0; t <= 200; t++) {
        if (t >= 120 || (t / 6) % 2 == 0) {
            hear(r, "flappy", t * S);
        }
        np_alert_rules_tick(r, t * S);
        drain(r, &o, t * S);
    }
    CHECK(o.n <= 2 * c.flap_max + 2);
    CHECK_INT(count_kind(&o, NP_ALERT_SITE_FLAPPING, false), 1);
    CHECK_INT(count_kind(&o, NP_ALERT_SITE_DOWN, false), 2);
    if (o.n) {
        CHECK_INT(o.v[o.n - 1]->kind, NP_ALERT_SITE_UP);
        CHECK(o.at[o.n - 1] >= 140 * S);
        CHECK_STR(o.v[o.n - 1]->cause, "flapping");
    }
    out_free(&o);
    np_alert_rules_free(r);
}

/* A hold-down longer than the on-periods: one DOWN, one UP, whatever the
 * flapping. */
static void test_hold_down(void)
{
    struct np_alert_rules_config c;
    struct np_alert_rules *r;
    struct out o = {0};
    base_cfg(&c);
    c.hold_down_ms = 15 * S;
    c.settle_wait_ms = 0;
    CHECK_INT(np_alert_rules_new(&c, &r), 0);
    for (int64_t t = 0; t <= 150; t++) {
        if (t >= 100 || (t / 5) % 2 == 0) {
            hear(r, "s", t * S);
        }
        np_alert_rules_tick(r, t * S);
        drain(r, &o, t * S);
    }
    CHECK_INT(o.n, 2);
    CHECK_INT(count_kind(&o, NP_ALERT_SITE_DOWN, false), 1);
    CHECK_INT(count_kind(&o, NP_ALERT_SITE_UP, false), 1);
    out_free(&o);
    np_alert_rules_free(r);
}

static int64_t maint_to;
static bool maint(void *ctx, const char *site, int64_t t)
{
    (void)ctx;
    return strcmp(site, "m") == 0 && t < maint_to;
}

/* Down and back inside maintenance: suppressed records only. Down in
 * maintenance and still down after it: DOWN then. */
static void test_maintenance(void)
{
    struct np_alert_rules_config c;
    struct np_alert_rules *r;
    struct out o = {0};
    base_cfg(&c);
    c.in_maintenance = maint;
    c.settle_wait_ms = 0;
    maint_to = 100 * S;
    CHECK_INT(np_alert_rules_new(&c, &r), 0);
    for (int64_t t = 0; t <= 40; t++) {
        if (t <= 10 || t >= 20) {
            hear(r, "m", t * S);
        }
        np_alert_rules_tick(r, t * S);
        drain(r, &o, t * S);
    }
    CHECK_INT(o.n, 2);
    CHECK_INT(count_kind(&o, NP_ALERT_SITE_DOWN, true), 1);
    CHECK_INT(count_kind(&o, NP_ALERT_SITE_UP, true), 1);
    out_free(&o);
    np_alert_rules_free(r);

    maint_to = 30 * S;
    CHECK_INT(np_alert_rules_new(&c, &r), 0);
    for (int64_t t = 0; t <= 60; t++) {
        if (t <= 10 || t >= 50) {
            hear(r, "m", t * S);
        }
        np_alert_rules_tick(r, t * S);
        drain(r, &o, t * S);
    }
    CHECK_INT(count_kind(&o, NP_ALERT_SITE_DOWN, true), 1);
    CHECK_INT(count_kind(&o, NP_ALERT_SITE_DOWN, false), 1);
    CHECK_INT(count_kind(&o, NP_ALERT_SITE_UP, false), 1);
    for (size_t i = 0; i < o.n; i++) {
        if (o.v[i]->kind == NP_ALERT_SITE_DOWN && !o.v[i]->suppressed) {
            CHECK(o.at[i] >= 30 * S && o.at[i] <= 32 * S);
        }
    }
    out_free(&o);
    np_alert_rules_free(r);
}

static void test_reminder_and_early_return(void)
{
    struct np_alert_rules_config c;
    struct np_alert_rules *r;
    struct out o = {0};
    base_cfg(&c);
    c.reminder_ms = 10 * S;
    c.digest_window_ms = 5 * S;
    CHECK_INT(np_alert_rules_new(&c, &r), 0);
    for (int64_t t = 0; t <= 60; t++) {
        if (t <= 5) {
            hear(r, "long", t * S);
        }
        /* "short" is silent 4 s: down at 3 s of silence, back before the
         * digest window ends: nothing at all */
        if (t <= 20 || t >= 25) {
            hear(r, "short", t * S);
        }
        np_alert_rules_tick(r, t * S);
        drain(r, &o, t * S);
    }
    CHECK_INT(count_kind(&o, NP_ALERT_SITE_DOWN, false), 1);
    CHECK_INT(count_kind(&o, NP_ALERT_SITE_REMINDER, false),
              4); /* due 18, 28, 38, 48; each waits the 5 s window */
    for (size_t i = 0; i < o.n; i++) {
        CHECK_STR(o.v[i]->site, "long");
    }
    out_free(&o);
    np_alert_rules_free(r);
}

/* After a restart: restored as notified down; heard -> UP, never a 2nd DOWN. */
static void test_restore(void)
{
    struct np_alert_rules_config c;
    struct np_alert_rules *r;
    struct out o = {0};
    base_cfg(&c);
    c.settle_wait_ms = 0;
    CHECK_INT(np_alert_rules_new(&c, &r), 0);
    CHECK_INT(np_alert_rules_restore(r, "back", 1000, true, 50 * S), 0);
    CHECK_INT(np_alert_rules_restore(r, "bad id!", 1000, true, 50 * S), -EINVAL);
    for (int64_t t = 50; t <= 80; t++) {
        if (t >= 60) {
            hear(r, "back", t * S);
        }
        np_alert_rules_tick(r, t * S);
        drain(r, &o, t * S);
    }
    CHECK_INT(o.n, 1);
    if (o.n == 1) {
        CHECK_INT(o.v[0]->kind, NP_ALERT_SITE_UP);
        CHECK_INT(o.v[0]->start_ms, 1000);
    }
    out_free(&o);
    np_alert_rules_free(r);
}

static void test_conditions(void)
{
    struct np_alert_rules_config c;
    struct np_alert_rules *r;
    struct out o = {0};
    base_cfg(&c);
    c.iface_hold_ms = 5 * S;
    c.util_threshold = 0.9;
    c.util_duration_ms = 10 * S;
    CHECK_INT(np_alert_rules_new(&c, &r), 0);
    for (int64_t t = 0; t <= 100; t++) {
        int64_t now = t * S;
        hear(r, "c", now);
        struct np_alert_input in = {.site = "c", .subject = "edge/eth1", .time_ms = now};
        if (t == 1 || t == 4 || t == 10 || t == 30) {
            in.kind = NP_ALERT_IN_IFACE;
            in.up = t == 4 || t == 30; /* down 1..4 (short: nothing), 10..30 */
            CHECK_INT(np_alert_rules_input(r, &in, now), 0);
        }
        in.kind = NP_ALERT_IN_UTIL;
        in.value = (t >= 40 && t < 45) || (t >= 50 && t < 70) ? 0.95 : (t >= 70 ? 0.88 : 0.5);
        CHECK_INT(np_alert_rules_input(r, &in, now), 0);
        struct np_alert_input d = {
            .kind = NP_ALERT_IN_DISK, .time_ms = now, .value = t >= 80 && t < 90 ? 0.05 : 0.5};
        CHECK_INT(np_alert_rules_input(r, &d, now), 0);
        np_alert_rules_tick(r, now);
        drain(r, &o, now);
    }
    CHECK_INT(count_kind(&o, NP_ALERT_IFACE_DOWN, false), 1);
    CHECK_INT(count_kind(&o, NP_ALERT_IFACE_UP, false), 1);
    CHECK_INT(count_kind(&o, NP_ALERT_UTIL_HIGH, false), 1);
    CHECK_INT(count_kind(&o, NP_ALERT_UTIL_OK, false), 0); /* 0.88: above util_clear */
    CHECK_INT(count_kind(&o, NP_ALERT_DISK_LOW, false), 1);
    CHECK_INT(count_kind(&o, NP_ALERT_DISK_OK, false), 1);
    CHECK_INT(o.n, 5);
    for (size_t i = 0; i < o.n; i++) {
        if (o.v[i]->kind == NP_ALERT_IFACE_DOWN) {
            CHECK_INT(o.at[i], 15 * S);
            CHECK_STR(o.v[i]->subject, "edge/eth1");
        }
        if (o.v[i]->kind == NP_ALERT_UTIL_HIGH) {
            CHECK_INT(o.at[i], 60 * S);
        }
        for (size_t j = 0; j < i; j++) {
            CHECK(strcmp(o.v[i]->key, o.v[j]->key) != 0);
        }
    }
    out_free(&o);

    /* an uplink down learned after it ended: nothing; live: after the hold */
    struct np_alert_input u = {
        .kind = NP_ALERT_IN_UPLINK, .site = "c", .time_ms = 100 * S, .end_ms = 101 * S};
    CHECK_INT(np_alert_rules_input(r, &u, 200 * S), 0);
    u.end_ms = 0;
    u.time_ms = 199 * S;
    CHECK_INT(np_alert_rules_input(r, &u, 200 * S), 0);
    hear(r, "c", 200 * S);
    np_alert_rules_tick(r, 200 * S);
    drain(r, &o, 200 * S);
    CHECK_INT(o.n, 0);
    hear(r, "c", 261 * S);
    np_alert_rules_tick(r, 261 * S);
    drain(r, &o, 261 * S);
    CHECK_INT(count_kind(&o, NP_ALERT_UPLINK_DOWN, false), 1);
    out_free(&o);
    struct np_alert_input dr = {
        .kind = NP_ALERT_IN_DROPPED, .site = "c", .start_ms = 5, .end_ms = 9};
    CHECK_INT(np_alert_rules_input(r, &dr, 262 * S), 0);
    drain(r, &o, 262 * S);
    CHECK_INT(count_kind(&o, NP_ALERT_SPOOL_DROPPED, false), 1);
    out_free(&o);
    struct np_alert_input bad = {.kind = NP_ALERT_IN_HEARD, .site = "a\r\nBcc: x"};
    CHECK_INT(np_alert_rules_input(r, &bad, 0), -EINVAL);
    np_alert_rules_free(r);
}

static void util_sample(struct np_alert_rules *r, int64_t t_s, double v, struct out *o)
{
    struct np_alert_input in = {.kind = NP_ALERT_IN_UTIL,
                                .site = "u",
                                .subject = "edge/wan0",
                                .time_ms = t_s * S,
                                .start_ms = (t_s - 60) * S,
                                .value = v};
    CHECK_INT(np_alert_rules_input(r, &in, t_s * S), 0);
    np_alert_rules_tick(r, t_s * S);
    drain(r, o, t_s * S);
}

/* Utilisation on 60 s samples: 90 % for 15 min, cleared below 80 % for 5 min. */
static void test_utilisation(void)
{
    struct np_alert_rules_config c;
    struct np_alert_rules *r;
    struct out o = {0};
    base_cfg(&c);
    CHECK(c.util_threshold == 0.9 && c.util_clear == 0.8);
    CHECK_INT(c.util_duration_ms, 900 * S);
    CHECK_INT(c.util_clear_ms, 300 * S);
    CHECK_INT(np_alert_rules_new(&c, &r), 0);
    int64_t t = 60;
    /* 14 high minutes, one dip to 89 %, 14 more: never 15 in a row */
    for (int i = 0; i < 29; i++, t += 60) {
        util_sample(r, t, i == 14 ? 0.89 : 0.95, &o);
    }
    CHECK_INT(o.n, 0);
    /* the 15th high minute in a row notifies: the samples cover 15 min */
    util_sample(r, t, 0.97, &o);
    CHECK_INT(o.n, 1);
    CHECK_INT(o.v[0]->kind, NP_ALERT_UTIL_HIGH);
    CHECK_STR(o.v[0]->subject, "edge/wan0");
    CHECK_INT(o.v[0]->start_ms, (t - 15 * 60) * S);
    t += 60;
    /* hovering between clear and threshold (85 %), and silence: no notice */
    for (int i = 0; i < 20; i++, t += 60) {
        util_sample(r, t, 0.85, &o);
    }
    np_alert_rules_tick(r, (t + 3600) * S);
    drain(r, &o, (t + 3600) * S);
    CHECK_INT(o.n, 1);
    /* below 80 % for 4 min, one 81 %, then 5 min below: one UTIL_OK */
    for (int i = 0; i < 9; i++, t += 60) {
        util_sample(r, t, i == 4 ? 0.81 : 0.5, &o);
    }
    CHECK_INT(o.n, 1);
    util_sample(r, t, 0.5, &o);
    CHECK_INT(o.n, 2);
    CHECK_INT(o.v[1]->kind, NP_ALERT_UTIL_OK);
    CHECK(strcmp(o.v[0]->key, o.v[1]->key) != 0);
    /* high again with a gap of 10 min in the samples: starts over */
    t += 60;
    for (int i = 0; i < 10; i++, t += 60) {
        util_sample(r, t, 0.99, &o);
    }
    t += 600;
    for (int i = 0; i < 10; i++, t += 60) {
        util_sample(r, t, 0.99, &o);
    }
    CHECK_INT(o.n, 2);
    /* a sample seen again (replayed batch) changes nothing */
    util_sample(r, t - 60, 0.1, &o);
    CHECK_INT(o.n, 2);
    out_free(&o);
    np_alert_rules_free(r);
}

/* SLA: the input from a month's budget; one notice per site and month. */
static void test_sla(void)
{
    struct np_alert_input in;
    /* 30 days at 99.5 %: 3.6 h allowed; 1 h used: 72 % left, 99.86 % at best */
    int64_t month = 30LL * 86400 * S, allowed = 3 * 3600 * S + 36 * 60 * S;
    np_alert_sla_input("s", 0, month, allowed, 3600 * S, 0.995, 10, &in);
    CHECK(in.budget_left > 0.72 && in.budget_left < 0.73);
    CHECK(in.value > 0.9986 && in.value < 0.9987);
    CHECK(in.threshold == 0.995 && in.start_ms == 0 && in.end_ms == month);
    np_alert_sla_input("s", 0, month, 0, 5, 0.995, 10, &in);
    CHECK(in.budget_left < 0);
    np_alert_sla_input("s", 0, month, 0, 0, 0.995, 10, &in);
    CHECK(in.budget_left > 0 && in.value == 1.0);

    struct np_alert_rules_config c;
    struct np_alert_rules *r;
    struct out o = {0};
    base_cfg(&c);
    CHECK(c.sla && c.sla_budget_left == 0);
    CHECK_INT(np_alert_rules_new(&c, &r), 0);
    int64_t used[] = {0, 3 * 3600 * S, allowed, allowed + 1, allowed * 2, allowed + 1};
    for (size_t i = 0; i < sizeof used / sizeof used[0]; i++) {
        np_alert_sla_input("s", 0, month, allowed, used[i], 0.995, (int64_t)i * 60 * S, &in);
        CHECK_INT(np_alert_rules_input(r, &in, (int64_t)i * 60 * S), 0);
        np_alert_rules_tick(r, (int64_t)i * 60 * S);
        drain(r, &o, (int64_t)i * 60 * S);
    }
    CHECK_INT(o.n, 1); /* over budget from allowed + 1 on, once */
    CHECK_INT(o.v[0]->kind, NP_ALERT_SLA_RISK);
    CHECK_INT(o.at[0], 3 * 60 * S);
    CHECK(o.v[0]->value < 0.995 && o.v[0]->threshold == 0.995);
    /* the next month: a clean slate, its own notice (another key) */
    np_alert_sla_input("s", month, 2 * month, allowed, 0, 0.995, month + 1, &in);
    CHECK_INT(np_alert_rules_input(r, &in, month + 1), 0);
    np_alert_sla_input("s", month, 2 * month, allowed, allowed + 1, 0.995, month + 2, &in);
    CHECK_INT(np_alert_rules_input(r, &in, month + 2), 0);
    drain(r, &o, month + 2);
    CHECK_INT(o.n, 2);
    CHECK(strcmp(o.v[0]->key, o.v[1]->key) != 0);
    out_free(&o);
    np_alert_rules_free(r);
    /* an early warning: sla_budget_left = 25 % fires at 80 % used */
    c.sla_budget_left = 0.25;
    CHECK_INT(np_alert_rules_new(&c, &r), 0);
    np_alert_sla_input("s", 0, month, allowed, allowed / 10 * 8, 0.995, 1, &in);
    CHECK_INT(np_alert_rules_input(r, &in, 1), 0);
    drain(r, &o, 1);
    CHECK_INT(count_kind(&o, NP_ALERT_SLA_RISK, false), 1);
    out_free(&o);
    np_alert_rules_free(r);
}

/* An interface down notified before a restart: its UP after it notifies. */
static void test_restore_cond(void)
{
    struct np_alert_rules_config c;
    struct np_alert_rules *r;
    struct out o = {0};
    enum np_alert_kind off;
    base_cfg(&c);
    CHECK(np_alert_kind_cond(NP_ALERT_IFACE_DOWN, &off) && off == NP_ALERT_IFACE_UP);
    CHECK(!np_alert_kind_cond(NP_ALERT_IFACE_UP, NULL));
    CHECK(!np_alert_kind_cond(NP_ALERT_SLA_RISK, NULL));
    CHECK_INT(np_alert_rules_new(&c, &r), 0);
    CHECK_INT(np_alert_rules_restore_cond(r, NP_ALERT_SITE_DOWN, "s", NULL, 1, 0, 0), -EINVAL);
    CHECK_INT(np_alert_rules_restore_cond(r, NP_ALERT_IFACE_DOWN, "s", "sw/eth3", 5 * S, 0, 0), 0);
    CHECK_INT(np_alert_rules_restore_cond(r, NP_ALERT_DISK_LOW, "", NULL, 5 * S, 0.05, 0.1), 0);
    hear(r, "s", 100 * S);
    struct np_alert_input in = {.kind = NP_ALERT_IN_IFACE,
                                .site = "s",
                                .subject = "sw/eth3",
                                .time_ms = 99 * S,
                                .up = true};
    CHECK_INT(np_alert_rules_input(r, &in, 100 * S), 0);
    /* again (the event replayed): nothing more */
    CHECK_INT(np_alert_rules_input(r, &in, 101 * S), 0);
    drain(r, &o, 101 * S);
    CHECK_INT(o.n, 1);
    CHECK_INT(o.v[0]->kind, NP_ALERT_IFACE_UP);
    CHECK_INT(o.v[0]->start_ms, 5 * S);
    CHECK_STR(o.v[0]->subject, "sw/eth3");
    out_free(&o);
    np_alert_rules_free(r);
}

/* Many interfaces (conds kept sorted): each its own condition, in any order. */
static void test_many_interfaces(void)
{
    struct np_alert_rules_config c;
    struct np_alert_rules *r;
    struct out o = {0};
    base_cfg(&c);
    c.util_duration_ms = 2 * S;
    CHECK_INT(np_alert_rules_new(&c, &r), 0);
    for (int64_t t = 1; t <= 3; t++) {
        for (unsigned k = 0; k < 300; k++) {
            unsigned i = (k * 7919u) % 300u; /* a permutation of 0..299 */
            char site[16], sub[32];
            snprintf(site, sizeof site, "s%u", i % 17);
            snprintf(sub, sizeof sub, "sw/port%u", i);
            struct np_alert_input in = {.kind = NP_ALERT_IN_UTIL,
                                        .site = site,
                                        .subject = sub,
                                        .time_ms = t * S,
                                        .value = i % 2 ? 0.95 : 0.5};
            CHECK_INT(np_alert_rules_input(r, &in, t * S), 0);
        }
        drain(r, &o, t * S);
    }
    CHECK_INT(count_kind(&o, NP_ALERT_UTIL_HIGH, false), 150);
    for (size_t i = 1; i < o.n; i++) {
        CHECK(strcmp(o.v[i - 1]->key, o.v[i]->key) != 0);
    }
    out_free(&o);
    np_alert_rules_free(r);
}

static void test_names(void)
{
    enum np_alert_kind k;
    enum np_alert_severity s;
    for (int i = 0; i < NP_ALERT_KIND_COUNT; i++) {
        CHECK_INT(np_alert_kind_parse(np_alert_kind_name((enum np_alert_kind)i), &k), 0);
        CHECK_INT(k, i);
    }
    CHECK_INT(np_alert_severity_parse("warning", &s), 0);
    CHECK_INT(s, NP_ALERT_WARNING);
    CHECK_INT(np_alert_severity_parse("loud", &s), -EINVAL);
    struct np_alert_rules_config c;
    struct np_alert_rules *r;
    np_alert_rules_defaults(&c);
    CHECK_INT(c.site_down_after_ms, 120000);
    c.site_down_after_ms = 0;
    CHECK_INT(np_alert_rules_new(&c, &r), -EINVAL);
}

int main(void)
{
    test_down_up_settled();
    test_settle_wait();
    test_digest();
    test_flapping();
    test_hold_down();
    test_maintenance();
    test_reminder_and_early_return();
    test_restore();
    test_conditions();
    test_utilisation();
    test_sla();
    test_restore_cond();
    test_many_interfaces();
    test_names();
    return check_done("test_alert_rules");
}
