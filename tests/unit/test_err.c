#include "netpulse/err.h"

#include "check.h"

#include <errno.h>

int main(void)
{
    struct np_err err = {0};
    CHECK_STR(np_strerror(0), "success");
    CHECK_STR(np_strerror(NP_ECONFIG), "invalid configuration");
    CHECK_STR(np_strerror(NP_EAUTH), "authentication failed");
    CHECK_STR(np_strerror(-ENOENT), "No such file or directory");
    CHECK_STR(np_strerror(12345), "unknown error");
    CHECK_STR(np_strerror(NP_ELAST), "unknown error");
    for (int c = NP_EBASE; c < NP_ELAST; c++) {
        CHECK(np_strerror(c) != NULL && strcmp(np_strerror(c), "unknown error") != 0);
    }
    CHECK_INT(np_err_set(&err, NP_EPROTO, "batch: sample %d: bad", 12), NP_EPROTO);
    CHECK_INT(err.code, NP_EPROTO);
    CHECK_STR(err.msg, "batch: sample 12: bad");
    CHECK_INT(np_err_set(NULL, NP_EPROTO, "ignored"), NP_EPROTO);
    char longmsg[600];
    memset(longmsg, 'x', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = '\0';
    np_err_set(&err, NP_ETOOBIG, "%s", longmsg);
    CHECK_INT((int)strlen(err.msg), (int)sizeof err.msg - 1);
    np_err_clear(&err);
    CHECK_INT(err.code, 0);
    CHECK_STR(err.msg, "");
    return check_done("test_err");
}
