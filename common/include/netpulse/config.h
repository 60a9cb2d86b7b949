#ifndef NP_COMMON_CONFIG_H
#define NP_COMMON_CONFIG_H
#endif
