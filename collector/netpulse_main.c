/* netpulse: the command-line tool for people; everything is in cli.c. */
#include "cli.h"

int main(int argc, char **argv)
{
    return np_cli_main(argc, argv);
}
