/* Fuzzes np_config_load_string(): the input is a config text, parsed against a
 * table with a singleton and a named section that between them use every
 * option type, a required key and a secret (whose KEY_file form reads real
 * files: only regular ones, at most 4 KiB). On success every query runs once,
 * then the config is freed; leaks and memory errors are the sanitizers' to
 * report. */
#include "netpulse/config.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_all {
    char *name; /* named sections only */
    char *str;
    char *secret;
    bool flag;
    int64_t count;
    int64_t wait_ms;
    uint64_t cap_bytes;
    uint64_t rate_bps;
    double share;
    int mode;
    struct np_strlist list;
    char *need;
};

static const char *const fuzz_modes[] = {"one", "two", "three", NULL};

/* Every type once; the named section adds a required key. */
/* clang-format off */
#define FUZZ_COMMON_OPTS                                                                          \
    {.name = "str", .type = NP_OPT_STRING, .offset = offsetof(struct fuzz_all, str),              \
     .def = "dflt"},                                                                              \
    {.name = "secret", .type = NP_OPT_SECRET, .offset = offsetof(struct fuzz_all, secret)},       \
    {.name = "flag", .type = NP_OPT_BOOL, .offset = offsetof(struct fuzz_all, flag),              \
     .def = "yes"},                                                                               \
    {.name = "count", .type = NP_OPT_INT, .offset = offsetof(struct fuzz_all, count),             \
     .def = "5", .min = -100, .max = 100},                                                        \
    {.name = "wait", .type = NP_OPT_DURATION, .offset = offsetof(struct fuzz_all, wait_ms),       \
     .def = "10s", .min = 1, .max = 86400000},                                                    \
    {.name = "cap", .type = NP_OPT_SIZE, .offset = offsetof(struct fuzz_all, cap_bytes),          \
     .def = "1MiB", .min = 0, .max = INFINITY},                                                   \
    {.name = "rate", .type = NP_OPT_RATE, .offset = offsetof(struct fuzz_all, rate_bps),          \
     .def = "100Mbps"},                                                                           \
    {.name = "share", .type = NP_OPT_RATIO, .offset = offsetof(struct fuzz_all, share),           \
     .def = "99.5%", .min = 0, .max = 1},                                                         \
    {.name = "mode", .type = NP_OPT_ENUM, .offset = offsetof(struct fuzz_all, mode),              \
     .def = "two", .choices = fuzz_modes},                                                        \
    {.name = "list", .type = NP_OPT_LIST, .offset = offsetof(struct fuzz_all, list),              \
     .def = "a, b"}
/* clang-format on */

static const struct np_opt fuzz_single_opts[] = {FUZZ_COMMON_OPTS};
static const struct np_opt fuzz_named_opts[] = {
    FUZZ_COMMON_OPTS,
    {.name = "need",
     .type = NP_OPT_STRING,
     .offset = offsetof(struct fuzz_all, need),
     .flags = NP_OPT_REQUIRED},
};

static const struct np_section_spec fuzz_specs[] = {
    {.name = "main",
     .size = sizeof(struct fuzz_all),
     .opts = fuzz_single_opts,
     .n_opts = sizeof fuzz_single_opts / sizeof fuzz_single_opts[0]},
    {.name = "item",
     .named = true,
     .size = sizeof(struct fuzz_all),
     .name_offset = offsetof(struct fuzz_all, name),
     .opts = fuzz_named_opts,
     .n_opts = sizeof fuzz_named_opts / sizeof fuzz_named_opts[0]},
    {.name = "empty", .size = 1},
};

/* Keeps the reads above from being optimised out. */
static volatile size_t fuzz_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';

    struct np_config *cfg = NULL;
    struct np_err err;
    if (np_config_load_string(text, "fuzz.conf", fuzz_specs, 3, &cfg, &err) == 0) {
        const struct fuzz_all *m = np_config_section(cfg, "main");
        /* Touch every owned string so ASan sees any dangling pointer. */
        size_t sum = strlen(m->str) + strlen(m->secret);
        for (size_t i = 0; i < m->list.count; i++) {
            sum += strlen(m->list.items[i]);
        }
        size_t n = np_config_count(cfg, "item");
        for (size_t i = 0; i < n; i++) {
            const struct fuzz_all *it = np_config_instance(cfg, "item", i);
            sum += strlen(it->name) + strlen(it->str) + strlen(it->need) +
                   (size_t)np_config_line(cfg, it, NULL) +
                   (size_t)np_config_line(cfg, it, "secret_file");
        }
        fuzz_sink = sum + strlen(np_config_path(cfg));
    } else if (cfg != NULL || err.msg[0] == '\0') {
        abort(); /* an error must leave *out NULL and say why */
    }
    np_config_free(cfg);
    free(text);
    return 0;
}
