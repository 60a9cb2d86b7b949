#include "netpulse/clock.h"
