#ifndef NP_COMMON_WIRE_H
#define NP_COMMON_WIRE_H
#endif
