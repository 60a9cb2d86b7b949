#include "netpulse/config.h"
