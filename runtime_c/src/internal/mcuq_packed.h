/* Sub-byte weights: reading one value of a packed int4, ternary (int2) or binary (int1) weight array.
 * Internal to the runtime.
 *
 * Layout (mcuq.quant.packing, TFLite's dense int4 packing): the whole tensor is one bit stream in C order, little
 * end first, with no padding at channel boundaries. With bits = 4, 2 or 1 and per = 8 / bits values per byte,
 * value k is the bits-wide field at bit (k % per) * bits of byte k / per.
 *   bits 4: two's complement, [-7, 7] (narrow range, as int8's [-127, 127]);
 *   bits 2: two's complement, ternary {-1, 0, 1};
 *   bits 1: binary, field 1 is +1 and field 0 is -1 (no zero).
 * bits 8 reads the array as int8, so one kernel can take either. */
#ifndef MCUQ_PACKED_H
#define MCUQ_PACKED_H

#include <stdint.h>

static inline int32_t mcuq_packed_weight(const uint8_t *w, int32_t bits, int32_t k)
{
    uint32_t byte;
    uint32_t field;
    switch (bits) {
    case 4:
        byte = w[k >> 1];
        field = (byte >> ((uint32_t)(k & 1) * 4u)) & 0xFu;
        return (int32_t)field - (int32_t)((field & 0x8u) << 1);
    case 2:
        byte = w[k >> 2];
        field = (byte >> ((uint32_t)(k & 3) * 2u)) & 0x3u;
        return (int32_t)field - (int32_t)((field & 0x2u) << 1);
    case 1:
        byte = w[k >> 3];
        field = (byte >> (uint32_t)(k & 7)) & 0x1u;
        return (int32_t)(field << 1) - 1;
    default:
        return (int32_t)(int8_t)w[k];
    }
}

#endif /* MCUQ_PACKED_H */
