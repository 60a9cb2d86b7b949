/* netpulse: the command-line tool for people; everything is in cli.c. */
#include "cli.h"

#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
    /* Times are UTC everywhere, also on the report's rrd graphs (see
     * netpulse-collector's main). */
    setenv("TZ", "UTC", 1);
    tzset();
    return np_cli_main(argc, argv);
}
