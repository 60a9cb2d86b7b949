#include "netpulse/counters.h"
