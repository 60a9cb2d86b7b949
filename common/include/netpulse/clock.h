#ifndef NP_COMMON_CLOCK_H
#define NP_COMMON_CLOCK_H
#endif
