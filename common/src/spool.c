#include "netpulse/spool.h"
