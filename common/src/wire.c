#include "netpulse/wire.h"
