#ifndef NP_COMMON_UNITS_H
#define NP_COMMON_UNITS_H
#endif
