#ifndef MCUQ_SOFTMAX_H
#define MCUQ_SOFTMAX_H
#include "mcuq.h"
#endif
