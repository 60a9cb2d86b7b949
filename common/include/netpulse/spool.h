#ifndef NP_COMMON_SPOOL_H
#define NP_COMMON_SPOOL_H
#endif
