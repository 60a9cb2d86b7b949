#ifndef NP_COMMON_LOG_H
#define NP_COMMON_LOG_H
#endif
