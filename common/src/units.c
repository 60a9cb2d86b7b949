#include "netpulse/units.h"
