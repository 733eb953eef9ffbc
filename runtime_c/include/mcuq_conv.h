#ifndef MCUQ_CONV_H
#define MCUQ_CONV_H
#include "mcuq.h"
#endif
