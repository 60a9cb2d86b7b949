#include "netpulse/log.h"
